/* info.c — `clkv devices` (a list or JSON) and `clkv inspect` (a model summary). */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* profile: with "profile_text", the merged profile as clkv devices --profile prints it. */
static int device_json(FILE *f, const clkv_device_info *d, int profile) {
  fprintf(f, "{\"index\":%d,\"platform_index\":%d,\"name\":", d->index, d->platform_index);
  cli_json_str(f, d->name);
  fputs(",\"vendor_name\":", f);
  cli_json_str(f, d->vendor_name);
  fputs(",\"platform\":", f);
  cli_json_str(f, d->platform_name);
  fputs(",\"driver_version\":", f);
  cli_json_str(f, d->driver_version);
  fputs(",\"cl_version\":", f);
  cli_json_str(f, d->cl_version);
  fputs(",\"clc_version\":", f);
  cli_json_str(f, d->clc_version);
  fprintf(f, ",\"type\":\"%s\",\"vendor\":\"%s\",\"arch\":", clkv_device_type_name(d->type),
          clkv_vendor_name(d->vendor));
  cli_json_str(f, d->arch);
  fprintf(f,
          ",\"compute_units\":%u,\"clock_mhz\":%u,\"global_mem_bytes\":%" PRIu64
          ",\"local_mem_bytes\":%" PRIu64 ",\"max_alloc_bytes\":%" PRIu64
          ",\"max_workgroup_size\":%zu,\"fp16\":%s,\"fp64\":%s,\"subgroups\":%s,"
          "\"subgroup_size\":%u,\"vec_width_float\":%u,\"vec_width_half\":%u,\"extensions\":",
          d->compute_units, d->clock_mhz, d->global_mem_bytes, d->local_mem_bytes,
          d->max_alloc_bytes, d->max_workgroup_size, d->has_fp16 ? "true" : "false",
          d->has_fp64 ? "true" : "false", d->has_subgroups ? "true" : "false", d->subgroup_size,
          d->vec_width_float, d->vec_width_half);
  cli_json_str(f, d->extensions);
  fputs(",\"profile\":", f);
  cli_json_str(f, d->profile);
  fputs(",\"quirks\":", f);
  cli_json_str(f, d->quirks);
  if (profile) {
    clkv_error err;
    char *text = clkv_device_profile(d, &err);
    if (!text) return cli_die(err.status, err.message);
    fputs(",\"profile_text\":", f);
    cli_json_str(f, text);
    free(text);
  }
  fputc('}', f);
  return 0;
}

/* One device as `clkv devices` lists it; with the profile's values when asked. */
static int device_text(const clkv_device_info *d, int profile) {
  printf("[%d] %s\n", d->index, d->name);
  printf("    platform      %s (driver %s)\n", d->platform_name, d->driver_version);
  printf("    type          %s, vendor %s, arch %s\n", clkv_device_type_name(d->type),
         clkv_vendor_name(d->vendor), d->arch);
  printf("    OpenCL        %s / %s\n", d->cl_version, d->clc_version);
  printf("    compute units %u @ %u MHz\n", d->compute_units, d->clock_mhz);
  printf("    memory        global %.0f MiB, max alloc %.0f MiB, local %.0f KiB%s\n",
         mib(d->global_mem_bytes), mib(d->max_alloc_bytes), d->local_mem_bytes / 1024.0,
         d->local_mem_is_global ? " (emulated in global)" : "");
  printf("    workgroup     max %zu, subgroups %s", d->max_workgroup_size,
         d->has_subgroups ? "yes" : "no");
  if (d->subgroup_size) printf(" (size %u)", d->subgroup_size);
  printf("\n    fp16 %s, fp64 %s, preferred vector width float %u half %u\n",
         d->has_fp16 ? "yes" : "no", d->has_fp64 ? "yes" : "no", d->vec_width_float,
         d->vec_width_half);
  printf("    profile       %s\n", d->profile);
  printf("    quirks        %s\n", d->quirks[0] ? d->quirks : "none");
  if (!profile) return 0;
  clkv_error err;
  char *text = clkv_device_profile(d, &err);
  if (!text) return cli_die(err.status, err.message);
  printf("%s\n", text);
  free(text);
  return 0;
}

typedef struct devices_opts {
  int json, profile;
} devices_opts;

static int cli_devices(const cli_cmd *c, int argc, char **argv) {
  devices_opts o = {0};
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  clkv_device_info *devs = NULL;
  size_t n = 0;
  clkv_error err;
  clkv_status st = clkv_devices_list(&devs, &n, &err);
  if (st) return cli_die(st, err.message);
  rc = 0;
  if (o.json) {
    fputs("[", stdout);
    for (size_t i = 0; i < n && !rc; i++) {
      if (i) fputs(",\n ", stdout);
      rc = device_json(stdout, &devs[i], o.profile);
    }
    if (!rc) fputs("]\n", stdout);
  }
  for (size_t i = 0; !o.json && i < n && !rc; i++) rc = device_text(&devs[i], o.profile);
  free(devs);
  return rc;
}

static const cli_opt devices_rows[] = {
    {.name = "--json", .kind = CLI_FLAG, CLI_AT(devices_opts, json),
     .help = "print a JSON array, one object per device"},
    {.name = "--profile", .kind = CLI_FLAG, CLI_AT(devices_opts, profile),
     .help = "also print every platform profile value and the file:line it came from (with "
             "--json: as each device's \"profile_text\")"},
};

const cli_cmd cli_devices_cmd = {
    .name = "devices", .args = "[options]",
    .about = "list OpenCL devices, their capabilities and platform profile",
    .opts = devices_rows, .n_opts = sizeof devices_rows / sizeof devices_rows[0],
    .size = sizeof(devices_opts), .positional = CLI_NO_POSITIONAL, .run = cli_devices};

static void inspect_json(const char *path, const clkv_file_info *fi) {
  const clkv_model_info *m = &fi->model;
  printf("{\"path\":");
  cli_json_str(stdout, path);
  printf(",\"gguf_version\":%u,\"architecture\":", fi->gguf_version);
  cli_json_str(stdout, m->architecture);
  printf(",\"name\":");
  cli_json_str(stdout, m->name);
  printf(",\"n_layers\":%d,\"n_embd\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,\"head_dim\":%d,"
         "\"n_ff\":%d,\"n_vocab\":%d,\"n_ctx_train\":%d,\"rms_eps\":%g,\"rope_base\":%g,"
         "\"tokenizer\":",
         m->n_layers, m->n_embd, m->n_heads, m->n_kv_heads, m->head_dim, m->n_ff, m->n_vocab,
         m->n_ctx_train, m->rms_eps, m->rope_base);
  cli_json_str(stdout, m->tokenizer);
  printf(",\"chat_template\":%s,\"chat_template_kind\":\"%s\",\"bos_id\":%d,\"eos_id\":%d,"
         "\"n_kv\":%" PRIu64 ",\"n_tensors\":%" PRIu64 ",\"tensor_bytes\":%" PRIu64
         ",\"file_bytes\":%" PRIu64 ",\"runnable\":%s,\"why_not\":",
         m->has_chat_template ? "true" : "false", fi->chat_template, m->bos_id, m->eos_id,
         fi->n_kv, fi->n_tensors, fi->tensor_bytes, fi->file_bytes,
         fi->runnable ? "true" : "false");
  cli_json_str(stdout, fi->why_not);
  printf(",\"types\":{");
  for (int i = 0; i < fi->n_types; i++)
    printf("%s\"%s\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", i ? "," : "",
           fi->by_type[i].type, fi->by_type[i].count, fi->by_type[i].bytes);
  printf("}}\n");
}

static void inspect_text(const char *path, const clkv_file_info *fi) {
  const clkv_model_info *m = &fi->model;
  printf("%s\n", path);
  printf("  GGUF v%u, %" PRIu64 " metadata keys, %" PRIu64 " tensors, %.1f MiB of tensor data\n",
         fi->gguf_version, fi->n_kv, fi->n_tensors, mib(fi->tensor_bytes));
  printf("  name            %s\n", m->name);
  printf("  architecture    %s\n", m->architecture);
  printf("  layers          %d\n", m->n_layers);
  printf("  embedding       %d\n", m->n_embd);
  printf("  heads           %d (KV heads %d, head size %d)\n", m->n_heads, m->n_kv_heads,
         m->head_dim);
  printf("  feed-forward    %d\n", m->n_ff);
  printf("  vocabulary      %d\n", m->n_vocab);
  printf("  context         %d\n", m->n_ctx_train);
  printf("  RMSNorm eps     %g, RoPE base %g\n", m->rms_eps, m->rope_base);
  printf("  tokenizer       %s (BOS %d, EOS %d)\n", m->tokenizer, m->bos_id, m->eos_id);
  printf("  chat template   %s\n", m->has_chat_template ? fi->chat_template : "none");
  printf("  tensors by type\n");
  for (int i = 0; i < fi->n_types; i++)
    printf("    %-8s %5" PRIu64 " tensors %9.2f MiB\n", fi->by_type[i].type,
           fi->by_type[i].count, mib(fi->by_type[i].bytes));
  printf("  runnable        %s%s%s\n", fi->runnable ? "yes" : "no", fi->runnable ? "" : ": ",
         fi->why_not);
}

typedef struct inspect_opts {
  const char *model;
  int json;
} inspect_opts;

static int cli_inspect(const cli_cmd *c, int argc, char **argv) {
  inspect_opts o = {0};
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  const char *path = cli_model_path(o.model);
  clkv_file_info fi;
  clkv_error err;
  clkv_status st = clkv_model_inspect(path, &fi, &err);
  if (st) {
    fprintf(stderr, "clkv: cannot read %s\n", path);
    return cli_die(st, err.message);
  }
  if (o.json) inspect_json(path, &fi);
  else inspect_text(path, &fi);
  return 0;
}

static const cli_opt inspect_rows[] = {
    {.flag = "-m", .name = "--model", .kind = CLI_STR, .value = "MODEL",
     CLI_AT(inspect_opts, model), .help = "the GGUF file (or give it bare: clkv inspect FILE)"},
    {.name = "--json", .kind = CLI_FLAG, CLI_AT(inspect_opts, json),
     .help = "print one JSON object"},
};

const cli_cmd cli_inspect_cmd = {
    .name = "inspect", .args = "[options] [MODEL]",
    .about = "summarize a GGUF model file (default: the default model)",
    .opts = inspect_rows, .n_opts = sizeof inspect_rows / sizeof inspect_rows[0],
    .size = sizeof(inspect_opts), .positional = offsetof(inspect_opts, model),
    .run = cli_inspect};

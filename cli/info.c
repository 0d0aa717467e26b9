/* info.c — `clkv devices` (a list or JSON) and `clkv inspect` (a model summary). */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

#define TXT(s) cli_json_text((s), strlen(s))

/* profile: with "profile_text", the merged profile as clkv devices --profile prints it;
 * NULL (said on stderr) when that cannot be made. */
static json_t *device_json(const clkv_device_info *d, int profile) {
  json_t *j = json_pack(
      "{s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:i, s:i, s:I, s:I, s:I}",
      "index", d->index, "platform_index", d->platform_index, "name", TXT(d->name),
      "vendor_name", TXT(d->vendor_name), "platform", TXT(d->platform_name), "driver_version",
      TXT(d->driver_version), "cl_version", TXT(d->cl_version), "clc_version",
      TXT(d->clc_version), "type", clkv_device_type_name(d->type), "vendor",
      clkv_vendor_name(d->vendor), "arch", TXT(d->arch), "compute_units", (int)d->compute_units,
      "clock_mhz", (int)d->clock_mhz, "global_mem_bytes", (json_int_t)d->global_mem_bytes,
      "local_mem_bytes", (json_int_t)d->local_mem_bytes, "max_alloc_bytes",
      (json_int_t)d->max_alloc_bytes);
  json_t *more = json_pack(
      "{s:I, s:b, s:b, s:b, s:i, s:i, s:i, s:o, s:o, s:o}", "max_workgroup_size",
      (json_int_t)d->max_workgroup_size, "fp16", d->has_fp16, "fp64", d->has_fp64, "subgroups",
      d->has_subgroups, "subgroup_size", (int)d->subgroup_size, "vec_width_float",
      (int)d->vec_width_float, "vec_width_half", (int)d->vec_width_half, "extensions",
      TXT(d->extensions), "profile", TXT(d->profile), "quirks", TXT(d->quirks));
  if (j && more) json_object_update(j, more);
  json_decref(more);
  if (j && profile) {
    clkv_error err;
    char *text = clkv_device_profile(d, &err);
    if (!text) {
      cli_die(err.status, err.message);
      json_decref(j);
      return NULL;
    }
    json_object_set_new(j, "profile_text", TXT(text));
    free(text);
  }
  return j;
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
    json_t *all = json_array();
    for (size_t i = 0; i < n && !rc; i++) {
      json_t *d = device_json(&devs[i], o.profile);
      if (!d) rc = 1;
      else json_array_append_new(all, d);
    }
    if (!rc && cli_json_write(stdout, all) == 0) fputc('\n', stdout);
    if (rc) json_decref(all);
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
  json_t *types = json_object();
  for (int i = 0; i < fi->n_types; i++)
    json_object_set_new(types, fi->by_type[i].type,
                        json_pack("{s:I, s:I}", "count", (json_int_t)fi->by_type[i].count,
                                  "bytes", (json_int_t)fi->by_type[i].bytes));
  json_t *j = json_pack(
      "{s:o, s:i, s:o, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:o}", "path",
      TXT(path), "gguf_version", (int)fi->gguf_version, "architecture", TXT(m->architecture),
      "name", TXT(m->name), "n_layers", m->n_layers, "n_embd", m->n_embd, "n_heads", m->n_heads,
      "n_kv_heads", m->n_kv_heads, "head_dim", m->head_dim, "n_ff", m->n_ff, "n_vocab",
      m->n_vocab, "n_ctx_train", m->n_ctx_train, "rms_eps", (double)m->rms_eps, "rope_base",
      (double)m->rope_base, "tokenizer", TXT(m->tokenizer));
  json_t *more = json_pack(
      "{s:b, s:o, s:i, s:i, s:I, s:I, s:I, s:I, s:b, s:o, s:o}", "chat_template",
      m->has_chat_template, "chat_template_kind", TXT(fi->chat_template), "bos_id", m->bos_id,
      "eos_id", m->eos_id, "n_kv", (json_int_t)fi->n_kv, "n_tensors", (json_int_t)fi->n_tensors,
      "tensor_bytes", (json_int_t)fi->tensor_bytes, "file_bytes", (json_int_t)fi->file_bytes,
      "runnable", fi->runnable, "why_not", TXT(fi->why_not), "types", types);
  if (j && more) json_object_update(j, more);
  json_decref(more);
  if (cli_json_write(stdout, j) == 0) fputc('\n', stdout);
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

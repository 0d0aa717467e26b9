/* cli_main.c — the clkv command: dispatch, `devices`, `inspect`, `cache clear`. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(f,
          "clkv %s — LLM text generation on any OpenCL device\n\n"
          "usage: clkv <command> [options]\n\n"
          "commands:\n"
          "  devices [--json] [--profile]   list OpenCL devices, their capabilities and platform\n"
          "                                 profile (--profile: every value and its origin)\n"
          "  inspect [MODEL] [--json]       summarize a GGUF model file\n"
          "  generate [options]             generate text from a prompt (clkv generate --help)\n"
          "  chat [options]                 interactive chat with the model\n"
          "  bench device|gen|ops [...]     benchmarks (runs clkv_bench beside this program)\n"
          "  tune [-m MODEL] [--budget S]   tune kernel launch shapes for this device (saved)\n"
          "  cache clear [--keep-tuning]    remove cached compiled kernels and tuning files\n\n"
          "The default model is models/%s (scripts/setup fetches it).\n"
          "Environment: CLKV_DEVICE (index or name), CLKV_CACHE_DIR, CLKV_KERNEL_DIR, CLKV_MODEL,\n"
          "CLKV_PLATFORMS_DIR (platform profiles replacing or adding to the built-in ones).\n",
          CLKV_VERSION_STRING, CLKV_DEFAULT_MODEL);
}

const char *cli_model_path(const char *given) {
  static char buf[4096];
  if (given) return given;
  const char *e = getenv("CLKV_MODEL");
  if (e && *e) return e;
  snprintf(buf, sizeof buf, "models/%s", CLKV_DEFAULT_MODEL);
  if (access(buf, R_OK) == 0) return buf;
  const char *c = getenv("CLKV_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
  if (c && *c) snprintf(buf, sizeof buf, "%s/%s", c, CLKV_DEFAULT_MODEL);
  else if (x && *x) snprintf(buf, sizeof buf, "%s/clkv/%s", x, CLKV_DEFAULT_MODEL);
  else snprintf(buf, sizeof buf, "%s/.cache/clkv/%s", h ? h : ".", CLKV_DEFAULT_MODEL);
  if (access(buf, R_OK) == 0) return buf;
  snprintf(buf, sizeof buf, "models/%s", CLKV_DEFAULT_MODEL);
  return buf;
}

void cli_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p == '\r') fputs("\\r", f);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

int cli_parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || errno || *end || x < lo || x > hi) {
    fprintf(stderr, "clkv: %s needs a whole number from %ld to %ld (got '%s')\n", opt, lo, hi,
            v ? v : "");
    return 0;
  }
  *out = x;
  return 1;
}

int cli_parse_float(const char *opt, const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double x = v ? strtod(v, &end) : 0;
  if (!v || errno || *end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "clkv: %s needs a number from %g to %g (got '%s')\n", opt, lo, hi, v ? v : "");
    return 0;
  }
  *out = x;
  return 1;
}

int cli_die(clkv_status st, const char *msg) {
  fprintf(stderr, "clkv: error: %s (%s)\n", msg && *msg ? msg : clkv_status_str(st),
          clkv_status_name(st));
  return 1;
}

/* `clkv cache clear [--keep-tuning]`: program binaries, and the tuning files unless kept. */
static int cli_cache(int argc, char **argv) {
  int keep_tuning = argc == 3 && !strcmp(argv[2], "--keep-tuning");
  if (argc < 2 || strcmp(argv[1], "clear") || (argc > 2 && !keep_tuning) || argc > 3) {
    fprintf(stderr, "usage: clkv cache clear [--keep-tuning]\n");
    return 2;
  }
  clkv_error err;
  unsigned removed = 0, tuned = 0;
  clkv_status st = clkv_cache_clear(NULL, &removed, &err);
  if (st) return cli_die(st, err.message);
  if (!keep_tuning && (st = clkv_cache_clear_tuning(NULL, &tuned, &err))) return cli_die(st, err.message);
  printf("removed %u cached program binaries", removed);
  if (keep_tuning) printf(" (tuning files kept)\n");
  else printf(" and %u tuning files\n", tuned);
  return 0;
}

/* `clkv bench ...` runs the clkv_bench program installed beside clkv. */
static int cli_bench(int argc, char **argv, const char *argv0) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) exe[n] = 0;
  else snprintf(exe, sizeof exe, "%s", argv0);
  char *slash = strrchr(exe, '/');
  char path[4200];
  if (slash) {
    *slash = 0;
    snprintf(path, sizeof path, "%s/clkv_bench", exe);
  } else {
    snprintf(path, sizeof path, "clkv_bench");
  }
  argv[0] = path;
  (void)argc;
  execv(path, argv);
  fprintf(stderr, "clkv: cannot run %s: %s (build the benchmarks: scripts/build)\n", path,
          strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--version")) {
    printf("clkv %s\n", CLKV_VERSION_STRING);
    return 0;
  }
  if (!strcmp(cmd, "devices")) return cli_devices(argc - 1, argv + 1);
  if (!strcmp(cmd, "inspect")) return cli_inspect(argc - 1, argv + 1);
  if (!strcmp(cmd, "generate")) return cli_generate(argc - 1, argv + 1, 0);
  if (!strcmp(cmd, "chat")) return cli_generate(argc - 1, argv + 1, 1);
  if (!strcmp(cmd, "tune")) return cli_tune(argc - 1, argv + 1);
  if (!strcmp(cmd, "cache")) return cli_cache(argc - 1, argv + 1);
  if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1, argv[0]);
  fprintf(stderr, "clkv: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}

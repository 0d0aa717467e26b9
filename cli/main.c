/* main.c — the clkv command: the list of subcommands, dispatch, `cache clear`, `bench`, and
 * what the subcommands share (default model path, JSON strings, errors). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cli_cache(const cli_cmd *c, int argc, char **argv);
static int cli_bench(const cli_cmd *c, int argc, char **argv);

typedef struct cache_opts {
  const char *action; /* "clear" */
  int keep_tuning;
} cache_opts;

static const cli_opt cache_rows[] = {
    {.name = "--keep-tuning", .kind = CLI_FLAG, CLI_AT(cache_opts, keep_tuning),
     .help = "keep the per-device tuning files written by clkv tune"},
};

static const cli_cmd cache_cmd = {
    .name = "cache", .args = "clear [options]",
    .about = "remove cached compiled kernels and tuning files",
    .opts = cache_rows, .n_opts = sizeof cache_rows / sizeof cache_rows[0],
    .size = sizeof(cache_opts), .positional = offsetof(cache_opts, action), .run = cli_cache};

static const cli_cmd bench_cmd = {
    .name = "bench", .args = "device|gen|ops|kv|kvq|serve|spec [options]",
    .about = "benchmarks (runs clkv_bench beside this program; clkv bench --help)",
    .run = cli_bench};

/* The subcommands, in the order `clkv --help` lists them. */
static const cli_cmd *const commands[] = {&cli_devices_cmd, &cli_inspect_cmd, &cli_generate_cmd,
                                          &cli_chat_cmd,    &cli_serve_cmd,   &cli_perplexity_cmd,
                                          &cli_tune_cmd,    &cli_quantize_cmd, &cache_cmd,
                                          &bench_cmd};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static const char *argv0; /* how clkv was run, where /proc/self/exe is not there */

static void usage(FILE *f) {
  fprintf(f, "clkv %s — LLM text generation on any OpenCL device\n\n"
             "usage: clkv <command> [options]    (clkv <command> --help lists its options)\n"
             "       clkv --version\n\ncommands:\n", CLKV_VERSION_STRING);
  for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->about);
  fprintf(f,
          "\nThe default model is models/%s (scripts/setup fetches it).\n"
          "Environment: CLKV_DEVICE (index or name), CLKV_CACHE_DIR, CLKV_KERNEL_DIR, CLKV_MODEL,\n"
          "CLKV_PLATFORMS_DIR (platform profiles replacing or adding to the built-in ones).\n",
          CLKV_DEFAULT_MODEL);
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

int cli_die(clkv_status st, const char *msg) {
  fprintf(stderr, "clkv: error: %s (%s)\n", msg && *msg ? msg : clkv_status_str(st),
          clkv_status_name(st));
  return 1;
}

/* `clkv cache clear [--keep-tuning]`: program binaries, and the tuning files unless kept. */
static int cli_cache(const cli_cmd *c, int argc, char **argv) {
  cache_opts o = {0};
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  if (!o.action || strcmp(o.action, "clear")) {
    cli_usage(stderr, c, &(cache_opts){0});
    return 2;
  }
  clkv_error err;
  unsigned removed = 0, tuned = 0;
  clkv_status st = clkv_cache_clear(NULL, &removed, &err);
  if (st) return cli_die(st, err.message);
  if (!o.keep_tuning && (st = clkv_cache_clear_tuning(NULL, &tuned, &err)))
    return cli_die(st, err.message);
  printf("removed %u cached program binaries", removed);
  if (o.keep_tuning) printf(" (tuning files kept)\n");
  else printf(" and %u tuning files\n", tuned);
  return 0;
}

/* `clkv bench ...` runs the clkv_bench program installed beside clkv, options and all. */
static int cli_bench(const cli_cmd *c, int argc, char **argv) {
  (void)c;
  (void)argc;
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
  execv(path, argv);
  fprintf(stderr, "clkv: cannot run %s: %s (build the benchmarks: scripts/build)\n", path,
          strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  argv0 = argv[0];
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--version")) {
    printf("clkv %s\n", CLKV_VERSION_STRING);
    return 0;
  }
  for (int i = 0; i < N_COMMANDS; i++)
    if (!strcmp(cmd, commands[i]->name)) return commands[i]->run(commands[i], argc - 1, argv + 1);
  fprintf(stderr, "clkv: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}

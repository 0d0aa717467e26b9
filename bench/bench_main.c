/* bench_main.c — clkv_bench: dispatches to the benchmark subcommands listed in one table
 * (adding a subcommand is one line here plus its bench_<name>.c). */
#include "bench_util.h"

#include <stdio.h>
#include <string.h>

int bench_device_main(int argc, char **argv);
int bench_gen_main(int argc, char **argv);
int bench_ops_main(int argc, char **argv);
int bench_kv_main(int argc, char **argv);
int bench_kvq_main(int argc, char **argv);
int bench_serve_main(int argc, char **argv);
int bench_spec_main(int argc, char **argv);

static const struct bench_command {
  const char *name;
  bench_main_fn run;
  const char *help;
} commands[] = {
    {"device", bench_device_main,
     "device microbenchmarks (bandwidth, compute, launch latency, transfers), beside clpeak"},
    {"kv", bench_kv_main, "paged vs contiguous KV memory; TTFT with a cached system prompt"},
    {"kvq", bench_kvq_main, "Q8/Q4 KV: memory per token, top-1 agreement and KL vs F16 KV"},
    {"gen", bench_gen_main, "end-to-end prefill/decode tokens/s, latency, roofline fractions"},
    {"ops", bench_ops_main, "per-op mat-vec and attention GB/s and GFLOP/s vs the device"},
    {"serve", bench_serve_main, "clkv serve at concurrency 1/4/16: req/s, tok/s, TTFT, ITL"},
    {"spec", bench_spec_main, "decode tok/s with and without speculative decoding (look-up)"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: clkv_bench <command> [options]   (<command> --help for its options)\n\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "clkv_bench: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}

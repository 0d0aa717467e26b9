/* tune.c — `clkv tune [-m MODEL] [--budget SECONDS] [--device D]`: tunes the kernel launch
 * shapes for a model's shapes on one device (clkv_tune), which saves them to the per-device
 * tuning file that clkv_model_load applies, and prints tuned against default times. */
#include "cli.h"

#include <math.h>
#include <unistd.h>

typedef struct tune_opts {
  const char *model, *device;
  double budget;
} tune_opts;

static void bar(void *user, unsigned done, unsigned total, const char *what) {
  (void)user;
  if (!isatty(2)) return;
  const int w = 30;
  int fill = total ? (int)(w * (double)done / total) : w;
  if (fill > w) fill = w;
  fprintf(stderr, "\r[%.*s%*s] %2u/%-2u %-36.36s", fill, "##############################",
          w - fill, "", done, total, what);
  if (done >= total) fputc('\n', stderr);
  fflush(stderr);
}

static void print_report(const clkv_tune_report *r) {
  printf("%-15s %-32s %10s  %-32s %10s  %6s\n", "kernel", "default shape", "default ms",
         "tuned shape", "tuned ms", "ratio");
  for (int k = 0; k < r->n_kernels; k++) {
    const clkv_tune_kernel *t = &r->kernels[k];
    printf("%-15s %-32s %10.3f  %-32s %10.3f  %6.3f\n", t->name, t->default_shape,
           t->default_ms, t->tuned_shape, t->tuned_ms,
           isfinite(t->default_ms) && t->default_ms > 0 ? t->tuned_ms / t->default_ms : NAN);
  }
  int first = 1;
  for (int k = 0; k < r->n_kernels; k++) { /* what the other prefill path took */
    const clkv_tune_kernel *t = &r->kernels[k];
    if (!t->is_prefill_path) continue;
    if (t->runner_up[0])
      printf("%-15s %s lost: %.3f ms against %s %.3f ms\n", t->name, t->runner_up,
             t->runner_up_ms, t->tuned_shape, t->tuned_ms);
    else if (first)
      printf("prefill GEMM: no CLBlast candidate was timed (%s)\n",
             r->clblast_available ? "budget reached" : "CLBlast unavailable here");
    first = 0;
  }
  printf("%u candidates checked and timed (%s) in %.1f s%s\nsaved %s\n", r->candidates_checked,
         r->wall_clock ? "wall clock" : "events", r->elapsed_s,
         r->budget_hit ? " (a stage used up its share of the budget; best so far kept)" : "",
         r->tuning_file);
  if (r->wall_clock && r->timer_note[0]) printf("note: %s\n", r->timer_note);
}

static int cli_tune(const cli_cmd *c, int argc, char **argv) {
  clkv_tune_params tp = clkv_tune_default_params();
  tune_opts o = {.budget = tp.budget_s};
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  clkv_error err;
  clkv_file_info fi;
  clkv_status st = clkv_model_inspect(cli_model_path(o.model), &fi, &err);
  if (st) return cli_die(st, err.message);
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o.device;
  rp.profiling = 1;
  clkv_runtime *rt;
  if ((st = clkv_runtime_create(&rp, &rt, &err))) return cli_die(st, err.message);
  tp.budget_s = o.budget;
  tp.weight_type = clkv_file_main_type(&fi);
  fprintf(stderr, "tuning for %s (%s weights) on %s, budget %.0f s\n", fi.model.name,
          tp.weight_type, clkv_runtime_device(rt)->name, tp.budget_s);
  clkv_tune_report r;
  if ((st = clkv_tune(rt, &fi, &tp, bar, NULL, &r, &err))) {
    clkv_runtime_free(rt);
    return cli_die(st, err.message);
  }
  print_report(&r);
  clkv_runtime_free(rt);
  return 0;
}

static const cli_opt tune_rows[] = {
    {.flag = "-m", .name = "--model", .kind = CLI_STR, .value = "MODEL", CLI_AT(tune_opts, model),
     .help = "the model whose shapes (and main weight type) are tuned [default: as for generate]"},
    {.name = "--budget", .kind = CLI_NUM, .value = "SECONDS", CLI_AT(tune_opts, budget), .lo = 1,
     .hi = 86400, .help = "about how long the search may take; the defaults are always timed"},
    {.name = "--device", .kind = CLI_STR, .value = "D", CLI_AT(tune_opts, device),
     .help = "device index or name substring, as clkv devices lists them"},
};

const cli_cmd cli_tune_cmd = {
    .name = "tune", .args = "[options]",
    .about = "tune kernel launch shapes for this device (saved per device)",
    .opts = tune_rows, .n_opts = sizeof tune_rows / sizeof tune_rows[0],
    .size = sizeof(tune_opts), .positional = CLI_NO_POSITIONAL, .run = cli_tune,
    .notes = "The shapes are saved to a tuning file per device and driver that generate and chat\n"
             "then apply (their --stats says so); clkv cache clear removes it (docs/TUNING.md).\n"};

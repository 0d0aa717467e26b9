/* cli_tune.c — `clkv tune [-m MODEL] [--budget SECONDS] [--device D]`: tunes the kernel
 * launch shapes for a model's shapes on one device, saves them to the per-device tuning
 * file that clkv_model_load applies, and prints tuned against default times. */
#include "cli.h"
#include "tune/tuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The computable weight type holding the most bytes (the model's main type). */
static uint32_t main_wtype(const clkv_file_info *fi) {
  uint32_t best = GGML_T_F32;
  uint64_t most = 0;
  for (int i = 0; i < fi->n_types; i++)
    for (uint32_t id = 0; id < 64; id++) {
      const clkv__ggml_type_info *t = clkv__ggml_type_get(id);
      if (t && !strcmp(t->name, fi->by_type[i].type) && clkv__wtype_slot(id) >= 0 &&
          fi->by_type[i].bytes > most)
        best = id, most = fi->by_type[i].bytes;
    }
  return best;
}

int cli_tune(int argc, char **argv) {
  const char *model = NULL, *device = NULL;
  double budget = 60;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-m") && i + 1 < argc) model = argv[++i];
    else if (!strcmp(a, "--device") && i + 1 < argc) device = argv[++i];
    else if (!strcmp(a, "--budget") && i + 1 < argc) {
      if (!cli_parse_float(a, argv[++i], 1, 86400, &budget)) return 2;
    } else {
      fprintf(stderr, "usage: clkv tune [-m MODEL] [--budget SECONDS (60)] [--device D]\n");
      return !strcmp(a, "-h") || !strcmp(a, "--help") ? 0 : 2;
    }
  }
  clkv_error err;
  clkv_file_info fi;
  const char *path = cli_model_path(model);
  clkv_status st = clkv_model_inspect(path, &fi, &err);
  if (st) return cli_die(st, err.message);
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = device;
  rp.profiling = 1;
  clkv_runtime *rt;
  if ((st = clkv_runtime_create(&rp, &rt, &err))) return cli_die(st, err.message);
  uint32_t wtype = main_wtype(&fi);
  fprintf(stderr, "tuning for %s (%s weights) on %s, budget %.0f s\n", fi.model.name,
          clkv__ggml_type_get(wtype)->name, rt->info.name, budget);
  clkv__tune_report r;
  st = clkv__tune(rt, &fi.model, wtype, budget, bar, NULL, &r, &err);
  if (!st) st = clkv__tuning_save(rt, &r.tuned, &err);
  if (st) {
    clkv_runtime_free(rt);
    return cli_die(st, err.message);
  }
  printf("%-15s %-32s %10s  %-32s %10s  %6s\n", "kernel", "default shape", "default ms",
         "tuned shape", "tuned ms", "ratio");
  for (int k = 0; k < CLKV__TK_COUNT; k++) {
    const clkv__tune_kernel *t = &r.k[k];
    printf("%-15s %-32s %10.3f  %-32s %10.3f  %6.3f\n", t->name, t->default_shape,
           t->default_ms, t->tuned_shape, t->tuned_ms,
           isfinite(t->default_ms) && t->default_ms > 0 ? t->tuned_ms / t->default_ms : NAN);
  }
  for (int k = CLKV__TK_GEMM_QKV; k < CLKV__TK_COUNT; k++) { /* what the other path took */
    const clkv__tune_kernel *t = &r.k[k];
    if (t->runner_up[0])
      printf("%-15s %s lost: %.3f ms against %s %.3f ms\n", t->name, t->runner_up,
             t->runner_up_ms, t->tuned_shape, t->tuned_ms);
    else if (k == CLKV__TK_GEMM_QKV)
      printf("prefill GEMM: no CLBlast candidate was timed (%s)\n",
             clkv__gemm_available(rt, CLKV__GEMM_CLBLAST, NULL, 0) ? "budget reached"
                                                                   : "CLBlast unavailable here");
  }
  char file[1200];
  clkv__tuning_path(rt, file, sizeof file);
  printf("%u candidates checked and timed (%s) in %.1f s%s\nsaved %s\n", r.candidates_checked,
         r.wall_clock ? "wall clock" : "events", r.elapsed_s,
         r.budget_hit ? " (a stage used up its share of the budget; best so far kept)" : "", file);
  clkv_runtime_free(rt);
  return 0;
}

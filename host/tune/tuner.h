/* tuner.h — the autotuner: searches the launch shapes of the matvec and attention kernels
 * for one model's shapes on one device, checking each candidate against plain C before
 * timing it, and the per-device tuning file that host/tune/tunables.c loads at start-up. */
#ifndef CLKV_TUNER_H
#define CLKV_TUNER_H

#include "model/model.h"
#include "tune/tunables.h"

/* The tuned kernels, CLKV__TK_*, are in tune/tunables.h (the tunables name their kernel). */

/* One tuned kernel: its default and tuned shapes ("ksplit=1 rg=4 rows=2") and median times.
 * For a gemm kind the shapes are the path ("own", "clblast") and the default is own with
 * the tuned prefill matvec shape. */
typedef struct clkv__tune_kernel {
  char name[32];            /* "matvec.decode", "attn.prefill", ... */
  char default_shape[64], tuned_shape[64];
  double default_ms, tuned_ms;
  double default_spread_ms, tuned_spread_ms; /* the spread of those times (see clkv__timing) */
  unsigned tried, failed;   /* candidates timed / rejected by the correctness check */
  char runner_up[64];       /* the fastest candidate that lost ("" if none), and its time */
  double runner_up_ms;
} clkv__tune_kernel;

typedef struct clkv__tune_report {
  clkv__tune_kernel k[CLKV__TK_COUNT];
  clkv__tunables defaults, tuned;
  unsigned candidates_checked; /* every timed candidate passed the check first */
  double elapsed_s;
  int budget_hit;           /* the search stopped early; best so far kept */
  int wall_clock;           /* 1: timed by wall clock (no profiling queue), else events */
} clkv__tune_report;

/* A candidate's repeated timings: their median and spread (1.4826 × the median absolute
 * deviation, an estimate of the standard deviation that one disturbed run does not move). */
typedef struct clkv__timing {
  double median_ms, spread_ms;
  int runs;
} clkv__timing;

/* A candidate must be faster than this share of the best's time, beyond both spreads, too. */
#define CLKV__TUNE_MIN_GAIN 0.02

/* 1 if cand is faster than best beyond the noise: cand's median plus its spread below best's
 * median minus its spread, and by at least CLKV__TUNE_MIN_GAIN; any timed candidate beats a
 * best that failed (an infinite median). The tuner's only decision rule. */
int clkv__tune_beats(const clkv__timing *cand, const clkv__timing *best);

/* The median and spread of t[0..n) (sorts t in place). */
clkv__timing clkv__timing_of(double *t, int n);

/* Progress: done of total candidates, and what is running now. */
typedef void (*clkv__tune_progress)(void *user, unsigned done, unsigned total, const char *what);

/* Tunes for the shapes of a model (projection sizes, heads) with synthetic weights of type
 * wtype, within about budget_s seconds (defaults are always measured). Does not write the
 * tuning file (clkv__tuning_save does). */
clkv_status clkv__tune(clkv_runtime *rt, const clkv_model_info *shape, uint32_t wtype,
                       double budget_s, clkv__tune_progress progress, void *user,
                       clkv__tune_report *out, clkv_error *err);

/* Writes t to the tuning file (temp file, then rename). */
clkv_status clkv__tuning_save(const clkv_runtime *rt, const clkv__tunables *t, clkv_error *err);

#endif /* CLKV_TUNER_H */

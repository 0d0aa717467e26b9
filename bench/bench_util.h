/* bench_util.h — what the clkv_bench subcommands share: the subcommand signature, a
 * calibrated repeat-and-median timer, event timing of one kernel launch, and a small JSON
 * writer. Benchmarks warm up, time with events where the device does the work, and report
 * medians. */
#ifndef CLKV_BENCH_UTIL_H
#define CLKV_BENCH_UTIL_H

#include "clkv_internal.h"

#include <stdio.h>

/* A subcommand: argv[0] is its name. Returns the process exit code. */
typedef int (*bench_main_fn)(int argc, char **argv);

/* Wall-clock seconds from a monotonic clock. */
double bench_now_s(void);
/* Median of v[0..n) (sorts v in place); NaN when n == 0. */
double bench_median(double *v, int n);

/* One timed operation: does the work once and stores its duration in *seconds. */
typedef clkv_status (*bench_op)(void *user, double *seconds, clkv_error *err);

typedef struct bench_time {
  double median_s; /* per operation: median over reps of each rep's mean */
  double min_s, max_s;
  double spread_s; /* 1.4826 × the median absolute deviation of the reps' means (≈ stddev) */
  int reps, iters; /* reps × iters operations were timed after the warm-up */
} bench_time;

/* Runs op once to warm up, once more to calibrate, then reps repetitions of `iters`
 * operations, with iters chosen so that all reps take about target_s seconds in all. */
clkv_status bench_measure(bench_op op, void *user, double target_s, int reps, bench_time *out,
                          clkv_error *err);

/* Enqueues k once on rt->queue (rt must have profiling on), clFinish-es, and returns the event's
 * START→END time in *seconds; *queued_to_start_s (may be NULL) gets QUEUED→START. */
clkv_status bench_kernel_once(clkv_runtime *rt, cl_kernel k, cl_uint dims, const size_t *global,
                              const size_t *local, double *seconds, double *queued_to_start_s,
                              clkv_error *err);

/* A kernel launch as a bench_op (user points to a bench_launch). */
typedef struct bench_launch {
  clkv_runtime *rt;
  cl_kernel kernel;
  cl_uint dims;
  size_t global[3];
  size_t local[3];
  int has_local;
} bench_launch;
clkv_status bench_launch_op(void *user, double *seconds, clkv_error *err);

/* A minimal streaming JSON writer: nested objects of numbers and strings. Non-finite
 * numbers are written as null. */
typedef struct bench_json {
  FILE *f;
  int depth;
  int count[16]; /* members written so far at each depth */
} bench_json;
void bench_json_begin(bench_json *j, FILE *f);
void bench_json_object(bench_json *j, const char *key); /* opens "key": { */
void bench_json_close(bench_json *j);                   /* closes the innermost object */
void bench_json_num(bench_json *j, const char *key, double v);
void bench_json_str(bench_json *j, const char *key, const char *s);
void bench_json_end(bench_json *j); /* closes every open object and ends the line */

#endif /* CLKV_BENCH_UTIL_H */

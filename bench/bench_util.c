/* bench_util.c — calibrated repeat-and-median timing, event timing of kernel launches, and
 * the small JSON writer shared by the clkv_bench subcommands. */
#include "bench_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  if (n <= 0) return NAN;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define BENCH_MAX_REPS 64
#define BENCH_MAX_ITERS 100000

clkv_status bench_measure(bench_op op, void *user, double target_s, int reps, bench_time *out,
                          clkv_error *err) {
  clkv_status st;
  double t = 0, per_rep[BENCH_MAX_REPS];
  if (reps < 1) reps = 1;
  if (reps > BENCH_MAX_REPS) reps = BENCH_MAX_REPS;
  CLKV_TRY(op(user, &t, err)); /* warm-up: first-use costs (compilation, page faults) */
  CLKV_TRY(op(user, &t, err)); /* calibration */
  double total_ops = t > 0 ? target_s / t : BENCH_MAX_ITERS;
  long iters = (long)(total_ops / reps);
  if (iters < 1) iters = 1;
  if (iters > BENCH_MAX_ITERS) iters = BENCH_MAX_ITERS;
  out->min_s = INFINITY;
  out->max_s = 0;
  for (int r = 0; r < reps; ++r) {
    double sum = 0;
    for (long i = 0; i < iters; ++i) {
      CLKV_TRY(op(user, &t, err));
      sum += t;
      if (t < out->min_s) out->min_s = t;
      if (t > out->max_s) out->max_s = t;
    }
    per_rep[r] = sum / (double)iters;
  }
  out->reps = reps;
  out->iters = (int)iters;
  out->median_s = bench_median(per_rep, reps);
  for (int r = 0; r < reps; ++r) per_rep[r] = fabs(per_rep[r] - out->median_s);
  out->spread_s = 1.4826 * bench_median(per_rep, reps);
  return CLKV_OK;
fail:
  return st;
}

static double event_ns(cl_event ev, cl_profiling_info what, cl_int *rc) {
  cl_ulong v = 0;
  *rc = clGetEventProfilingInfo(ev, what, sizeof v, &v, NULL);
  return (double)v;
}

clkv_status bench_kernel_once(clkv_runtime *rt, cl_kernel k, cl_uint dims, const size_t *global,
                              const size_t *local, double *seconds, double *queued_to_start_s,
                              clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_event ev = NULL;
  cl_int rc_q = CL_SUCCESS, rc_s = CL_SUCCESS, rc_e = CL_SUCCESS;
  double wall = bench_now_s();
  CLKV_CL_TRY(clEnqueueNDRangeKernel(rt->queue, k, dims, NULL, global, local, 0, NULL, &ev));
  CLKV_CL_TRY(clFinish(rt->queue)); /* lower latency than clWaitForEvents on PoCL */
  if (!rt->profiling) { /* events wrong here (rt->timer_note): the wall clock, no queue time */
    *seconds = bench_now_s() - wall;
    if (queued_to_start_s) *queued_to_start_s = NAN;
    goto fail;
  }
  double q = event_ns(ev, CL_PROFILING_COMMAND_QUEUED, &rc_q);
  double s = event_ns(ev, CL_PROFILING_COMMAND_START, &rc_s);
  double e = event_ns(ev, CL_PROFILING_COMMAND_END, &rc_e);
  CLKV_CL_TRY(rc_s != CL_SUCCESS ? rc_s : rc_e);
  *seconds = (e - s) * 1e-9;
  if (queued_to_start_s) {
    CLKV_CL_TRY(rc_q);
    *queued_to_start_s = (s - q) * 1e-9;
  }
fail:
  if (ev) clReleaseEvent(ev);
  return st;
}

clkv_status bench_launch_op(void *user, double *seconds, clkv_error *err) {
  bench_launch *l = user;
  return bench_kernel_once(l->rt, l->kernel, l->dims, l->global, l->has_local ? l->local : NULL,
                           seconds, NULL, err);
}

/* ---- JSON ---- */

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static void json_key(bench_json *j, const char *key) {
  if (j->count[j->depth]++) fputs(", ", j->f);
  json_string(j->f, key);
  fputs(": ", j->f);
}

void bench_json_begin(bench_json *j, FILE *f) {
  memset(j, 0, sizeof *j);
  j->f = f;
  fputc('{', f);
}

void bench_json_object(bench_json *j, const char *key) {
  if (j->depth + 1 >= (int)(sizeof j->count / sizeof j->count[0])) return;
  json_key(j, key);
  fputc('{', j->f);
  j->count[++j->depth] = 0;
}

void bench_json_close(bench_json *j) {
  if (j->depth == 0) return;
  fputc('}', j->f);
  j->depth--;
}

void bench_json_num(bench_json *j, const char *key, double v) {
  json_key(j, key);
  if (isfinite(v)) fprintf(j->f, "%.6g", v);
  else fputs("null", j->f);
}

void bench_json_str(bench_json *j, const char *key, const char *s) {
  json_key(j, key);
  if (s) json_string(j->f, s);
  else fputs("null", j->f);
}

void bench_json_end(bench_json *j) {
  while (j->depth > 0) bench_json_close(j);
  fputs("}\n", j->f);
}

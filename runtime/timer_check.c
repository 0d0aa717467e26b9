/* timer_check.c — checks a device's profiling timestamps against the wall clock once, with a
 * compute-bound probe kernel long enough that launch overhead does not matter (timer_check.h). */
#include "timer_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_ITEMS 1024
#define PROBE_RUNS 5
#define PROBE_MAX_ITERS (1u << 26)

/* A dependent multiply-add chain per work-item: no memory traffic to speak of, and a loop
 * the compiler cannot fold (float arithmetic is not reassociated). */
static const char probe_src[] =
    "__kernel void clkv_timer_probe(__global float *x, uint iters, float a, float b) {\n"
    "  size_t i = get_global_id(0);\n"
    "  float v = x[i];\n"
    "  for (uint k = 0; k < iters; k++) v = v * a + b;\n"
    "  x[i] = v;\n"
    "}\n";

int clkv__timer_judge(double event_ms, double wall_ms, char *why, size_t cap) {
  char tmp[1];
  if (!why) why = tmp, cap = sizeof tmp;
  why[0] = '\0';
  if (!isfinite(wall_ms) || wall_ms <= 0) {
    snprintf(why, cap, "the wall clock measured %g ms", wall_ms);
    return 0;
  }
  if (!isfinite(event_ms) || event_ms <= 0) {
    snprintf(why, cap, "the events report %.3g ms, zero or negative, for %.3f ms of wall clock",
             event_ms, wall_ms);
    return 0;
  }
  if (event_ms > wall_ms * CLKV__TIMER_MAX_OVER + CLKV__TIMER_SLACK_MS) {
    snprintf(why, cap, "the events report %.3f ms, more than the %.3f ms of wall clock around them",
             event_ms, wall_ms);
    return 0;
  }
  if (event_ms * CLKV__TIMER_MAX_UNDER < wall_ms) {
    snprintf(why, cap, "the events report %.3g ms where the wall clock measured %.3f ms (%.3gx less)",
             event_ms, wall_ms, wall_ms / event_ms);
    return 0;
  }
  snprintf(why, cap, "%.3f ms by events, %.3f ms by the wall clock", event_ms, wall_ms);
  return 1;
}

/* One launch of the probe: its event time (START→END, negative if END < START) and the wall
 * clock around enqueue and clFinish, in ms. */
static clkv_status probe_once(clkv_runtime *rt, cl_kernel k, cl_uint iters, double *ev_ms,
                              double *wall_ms, clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_event ev = NULL;
  cl_ulong t0 = 0, t1 = 0;
  size_t global = PROBE_ITEMS;
  CLKV_CL_TRY(clSetKernelArg(k, 1, sizeof iters, &iters));
  double w = clkv__now_ms();
  CLKV_CL_TRY(clEnqueueNDRangeKernel(rt->queue, k, 1, NULL, &global, NULL, 0, NULL, &ev));
  CLKV_CL_TRY(clFinish(rt->queue));
  *wall_ms = clkv__now_ms() - w;
  CLKV_CL_TRY(clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL));
  CLKV_CL_TRY(clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL));
  *ev_ms = ((double)t1 - (double)t0) * 1e-6;
fail:
  if (ev) clReleaseEvent(ev);
  return st;
}

/* The fastest of PROBE_RUNS launches of `iters` (on a loaded machine the least disturbed
 * one: a late JIT or a descheduled thread only slows), its event and wall times. */
static clkv_status probe_fastest(clkv_runtime *rt, cl_kernel k, cl_uint iters, double *ev_ms,
                                 double *wall_ms, clkv_error *err) {
  clkv_status st = CLKV_OK;
  double e = 0, w = 0;
  *wall_ms = INFINITY;
  for (int r = 0; r < PROBE_RUNS; r++) {
    CLKV_TRY(probe_once(rt, k, iters, &e, &w, err));
    if (w < *wall_ms) *wall_ms = w, *ev_ms = e;
  }
fail:
  return st;
}

/* Grows the probe until its fastest launch lasts CLKV__TIMER_PROBE_MS by the wall clock, then
 * times it at that size and at 3 times it, and returns the differences: what the extra work
 * took by each clock, without the launch and wake-up latency both sizes pay (several ms on
 * a loaded machine, where PoCL's events then look 3.5x short of the wall clock). Where the
 * difference is lost in noise, the longer launch's times. */
static clkv_status probe_times(clkv_runtime *rt, cl_kernel k, double *ev_ms, double *wall_ms,
                               clkv_error *err) {
  clkv_status st = CLKV_OK;
  double e1 = 0, w1 = 0, e3 = 0, w3 = 0;
  cl_uint iters = 64;
  for (int r = 0; r < 2; r++) CLKV_TRY(probe_once(rt, k, iters, &e1, &w1, err)); /* warm-up, JIT */
  for (int round = 0; round < 16; round++) {
    CLKV_TRY(probe_fastest(rt, k, iters, &e1, &w1, err));
    if (w1 >= CLKV__TIMER_PROBE_MS || iters >= PROBE_MAX_ITERS / 3) break;
    double grow = w1 > 0 ? ceil(1.25 * CLKV__TIMER_PROBE_MS / w1) : 16;
    iters = (cl_uint)fmin((double)PROBE_MAX_ITERS / 3, iters * fmin(16, fmax(2, grow)));
  }
  CLKV_TRY(probe_fastest(rt, k, 3 * iters, &e3, &w3, err));
  if (w3 - w1 >= 0.5 * w1) *ev_ms = e3 - e1, *wall_ms = w3 - w1;
  else *ev_ms = e3, *wall_ms = w3;
fail:
  return st;
}

clkv_status clkv__timer_check(clkv_runtime *rt, clkv__timer_verdict *out, clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_program prog = NULL;
  cl_kernel k = NULL;
  cl_mem x = NULL;
  const char *src = probe_src, *force = getenv("CLKV_TIMERS");
  char why[160];
  memset(out, 0, sizeof *out);
  out->event_ms = out->wall_ms = NAN;
  if (force && (!strcmp(force, "wall") || !strcmp(force, "events"))) {
    out->trusted = !strcmp(force, "events");
    snprintf(out->note, sizeof out->note, "CLKV_TIMERS=%s: timing by %s, unchecked", force,
             out->trusted ? "events" : "the wall clock");
    return CLKV_OK;
  }
  const float a = 0.999f, b = 0.5f, zero = 0;
  CLKV_CL_CREATE(prog, clCreateProgramWithSource(rt->context, 1, &src, NULL, &clkv__e));
  CLKV_CL_TRY(clBuildProgram(prog, 1, &rt->device, "", NULL, NULL));
  CLKV_CL_CREATE(k, clCreateKernel(prog, "clkv_timer_probe", &clkv__e));
  CLKV_CL_CREATE(x, clCreateBuffer(rt->context, CL_MEM_READ_WRITE, PROBE_ITEMS * sizeof(float),
                                   NULL, &clkv__e));
  CLKV_CL_TRY(clEnqueueFillBuffer(rt->queue, x, &zero, sizeof zero, 0, PROBE_ITEMS * sizeof(float),
                                  0, NULL, NULL));
  CLKV_CL_TRY(clSetKernelArg(k, 0, sizeof x, &x));
  CLKV_CL_TRY(clSetKernelArg(k, 2, sizeof a, &a));
  CLKV_CL_TRY(clSetKernelArg(k, 3, sizeof b, &b));
  CLKV_TRY(probe_times(rt, k, &out->event_ms, &out->wall_ms, err));
  out->trusted = clkv__timer_judge(out->event_ms, out->wall_ms, why, sizeof why);
  snprintf(out->note, sizeof out->note, "%s: %.120s; timing by %s",
           out->trusted ? "event timers agree with the wall clock" : "event timers are wrong",
           why, out->trusted ? "events" : "the wall clock");
fail:
  if (st != CLKV_OK)
    snprintf(out->note, sizeof out->note, "event timers not checked (the probe kernel failed: "
             "%.100s); timing by the wall clock", err ? err->message : "OpenCL error");
  if (x) clReleaseMemObject(x);
  if (k) clReleaseKernel(k);
  if (prog) clReleaseProgram(prog);
  return st;
}

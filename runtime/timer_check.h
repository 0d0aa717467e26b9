/* timer_check.h — are a device's profiling timestamps (CL_PROFILING_COMMAND_START/END) worth
 * trusting? One probe kernel timed both by its event and by the wall clock around clFinish;
 * where they disagree (Mesa's rusticl on llvmpipe reports a fraction of the real time, so
 * clpeak shows 28,000 GB/s), the benchmarks and the tuner time by the wall clock instead. */
#ifndef CLKV_TIMER_CHECK_H
#define CLKV_TIMER_CHECK_H

#include "clkv_internal.h"

/* The event time may be at most this much above the wall clock around it (clock
 * granularity), and at most this factor below it (noise: the probe compares what 2x more
 * work adds by each clock, so that launch latency and the thread wake-ups of a loaded
 * machine cancel; PoCL agrees within 1% when idle, where rusticl on llvmpipe reports 1 ns
 * for 6 ms). */
#define CLKV__TIMER_MAX_OVER 1.10
#define CLKV__TIMER_SLACK_MS 0.05
#define CLKV__TIMER_MAX_UNDER 3.0
#define CLKV__TIMER_PROBE_MS 4.0

typedef struct clkv__timer_verdict {
  int trusted;      /* 1: the events agree with the wall clock */
  double event_ms;  /* what 2x more probe work added by the events (START→END) */
  double wall_ms;   /* ... and by the wall clock around enqueue and clFinish */
  char note[200];   /* one line for people: what was measured and what is used */
} clkv__timer_verdict;

/* The decision alone: 1 when an event time of event_ms is believable for a launch the wall
 * clock measured at wall_ms; else 0 with the reason in why (may be NULL). */
int clkv__timer_judge(double event_ms, double wall_ms, char *why, size_t cap);

/* Times the probe on rt's queue (created with CL_QUEUE_PROFILING_ENABLE) by both clocks and
 * judges (about 20 × CLKV__TIMER_PROBE_MS plus one small build). $CLKV_TIMERS=wall forces the
 * wall clock, =events trusts the events unchecked. An OpenCL failure returns its status (the
 * verdict then says the events are not trusted). */
clkv_status clkv__timer_check(clkv_runtime *rt, clkv__timer_verdict *out, clkv_error *err);

#endif /* CLKV_TIMER_CHECK_H */

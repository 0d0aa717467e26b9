/* bench_peaks.h — the device's limits for the rooflines of `clkv_bench gen` and `clkv_bench ops`:
 * read bandwidth, fp32 and int8 multiply-add throughput. Each is the best of the OpenCL
 * microbenchmarks of `clkv_bench device` (bench_device.c) and, on a CPU device, native loops on
 * every core of the host (bench_native.c), so that nothing clkv runs can exceed them. */
#ifndef CLKV_BENCH_PEAKS_H
#define CLKV_BENCH_PEAKS_H

#include "bench_util.h"
#include "clkv_internal.h"

#include <stddef.h>

typedef struct bench_peaks {
  double gbps;    /* read bandwidth from memory (a buffer far larger than the caches), 1e9 B/s */
  double gflops;  /* fp32 multiply-add throughput, 1e9 flop/s (2 per FMA lane) */
  double gops;    /* int8 dot-product throughput, 1e9 op/s (2 per multiply-add); NaN: none */
  double compute; /* the faster of gflops and gops: the most multiply-adds the device does */
  double cl_gbps, cl_gflops, cl_gops;             /* what the OpenCL kernels reached */
  double native_gbps, native_gflops, native_gops; /* native loops (CPU devices), else NaN */
  const char *fp32_isa, *int8_isa;                /* the native loops' instructions, or "-" */
  int native_threads;
  int cpu;        /* the native loops ran: read_gbps() can measure a working set natively */
  double seconds; /* time the measurement took */
} bench_peaks;

/* Measures all of them on rt's device (rt must have profiling on) with target_s seconds per
 * measurement (0.02–0.05 s gives a figure within the noise). */
clkv_status bench_device_peaks(clkv_runtime *rt, double target_s, bench_peaks *out,
                               clkv_error *err);

/* Folds a second measurement into *into, keeping the better of each limit. */
void bench_peaks_merge(bench_peaks *into, const bench_peaks *other);

/* The read bandwidth limit for an op whose data (`bytes`) is read over and over, as the ops
 * of `clkv_bench ops` are: on a CPU device natively measured for a working set of that size
 * (cache-resident when small, cached per size), never below pk->gbps; elsewhere pk->gbps. */
double bench_peaks_read_gbps(const bench_peaks *pk, double bytes, double target_s);

/* The limits and where each comes from: two lines of text, or a "limits" JSON object. */
void bench_peaks_print(FILE *f, const bench_peaks *pk);
void bench_peaks_json(bench_json *j, const bench_peaks *pk);

/* bench_native.c: the host's own limits, every core (bench_native_threads()) running. */
int bench_native_threads(void);
double bench_native_fp32_gflops(double target_s, const char **isa);
double bench_native_int8_gops(double target_s, const char **isa); /* NaN without int8 dot */
double bench_native_read_gbps(size_t bytes, double target_s);

#endif /* CLKV_BENCH_PEAKS_H */

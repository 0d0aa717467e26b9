/* bench_peaks.h — the device's measured limits (best global-memory read bandwidth, best fp32
 * compute) for the rooflines of `clkv_bench gen` and `clkv_bench ops`; measured with the
 * kernels of `clkv_bench device` (bench_device.c). */
#ifndef CLKV_BENCH_PEAKS_H
#define CLKV_BENCH_PEAKS_H

#include "clkv_internal.h"

typedef struct bench_peaks {
  double gbps;   /* best read bandwidth over the vector widths, 1e9 B/s */
  double gflops; /* best fp32 mad-chain throughput over the vector widths, 1e9 flop/s */
  double seconds; /* time the measurement took */
} bench_peaks;

/* Measures both on rt's device (rt must have profiling on) with a 256 MiB buffer and
 * target_s seconds per measurement (0.02–0.05 s gives a figure within the noise). */
clkv_status bench_device_peaks(clkv_runtime *rt, double target_s, bench_peaks *out,
                               clkv_error *err);

#endif /* CLKV_BENCH_PEAKS_H */

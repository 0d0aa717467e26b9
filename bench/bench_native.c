/* bench_native.c — the host CPU's own limits, measured by native C loops on every core: fp32
 * FMA throughput, int8 dot-product throughput and read bandwidth. For a CPU OpenCL device they
 * bound what any kernel can reach (an OpenCL compiler cannot beat a hand-vectorized loop on the
 * same cores), so the rooflines of `clkv_bench gen` and `clkv_bench ops` take the better of
 * these and the OpenCL microbenchmarks. x86 paths use function target attributes chosen by a
 * runtime CPU check, so the rest of the build keeps its flags; other hosts get a plain C loop. */
#include "bench_peaks.h"
#include "bench_util.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NATIVE_X86 1
#include <immintrin.h>
#endif

/* What one thread does: `kind` over `iters` steps; returns ops (or bytes) done. */
enum { K_FP32, K_INT8, K_READ };

typedef struct native_job {
  int kind, isa; /* isa: 2 = AVX-512 (+VNNI for int8), 1 = AVX2/FMA, 0 = plain C */
  long iters;
  const unsigned char *buf;
  size_t bytes;
  double work;   /* out: flops, int8 ops or bytes */
  double cpu_s;  /* out: the thread's time doing it */
  float sink;    /* out: keeps the result alive */
} native_job;

#ifdef NATIVE_X86
/* Twelve accumulators in named variables (an array of vectors is kept in memory by GCC). */
#define ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* ---- fp32: 12 independent FMA chains, enough to fill two FMA pipes of 4-cycle latency ---- */
__attribute__((target("avx512f"))) static void fp32_avx512(native_job *j) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)i);
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c);
#define SUM(i) s = _mm512_add_ps(s, a##i);
  ACC12(DECL)
  for (long n = 0; n < j->iters; ++n) { ACC12(STEP) }
  __m512 s = _mm512_setzero_ps();
  ACC12(SUM)
  j->sink = _mm512_reduce_add_ps(s);
  j->work = (double)j->iters * 12 * 16 * 2;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"))) static void fp32_avx2(native_job *j) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)i);
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, c);
#define SUM(i) s = _mm256_add_ps(s, a##i);
  ACC12(DECL)
  for (long n = 0; n < j->iters; ++n) { ACC12(STEP) }
  __m256 s = _mm256_setzero_ps();
  ACC12(SUM)
  float f[8];
  _mm256_storeu_ps(f, s);
  j->sink = f[0] + f[7];
  j->work = (double)j->iters * 12 * 8 * 2;
#undef DECL
#undef STEP
#undef SUM
}

/* ---- int8: u8·s8 dot products into int32, 64 multiply-adds (128 ops) per instruction ---- */
__attribute__((target("avx512f,avx512vnni"))) static void int8_vnni(native_job *j) {
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
/* in asm: GCC 12 copies each accumulator around the intrinsic's tied operand, twice a step */
#define STEP(i) __asm__("vpdpbusd %2, %1, %0" : "+v"(a##i) : "v"(x), "v"(y));
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  ACC12(DECL)
  for (long n = 0; n < j->iters; ++n) { ACC12(STEP) }
  __m512i s = _mm512_setzero_si512();
  ACC12(SUM)
  j->sink = (float)_mm512_reduce_add_epi32(s);
  j->work = (double)j->iters * 12 * 64 * 2;
#undef DECL
#undef STEP
#undef SUM
}

/* without VNNI: pmaddubsw (u8·s8 pairs → s16) then pmaddwd by ones (→ s32) and an add */
__attribute__((target("avx2"))) static void int8_avx2(native_job *j) {
  const __m256i y = _mm256_set1_epi8(-2), one = _mm256_set1_epi16(1); /* a chain: a feeds a */
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define STEP(i) a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(a##i, y), one));
#define SUM(i) s = _mm256_add_epi32(s, a##i);
  ACC12(DECL)
  for (long n = 0; n < j->iters; ++n) { ACC12(STEP) }
  __m256i s = _mm256_setzero_si256();
  ACC12(SUM)
  j->sink = (float)_mm256_extract_epi32(s, 0);
  j->work = (double)j->iters * 12 * 32 * 2;
#undef DECL
#undef STEP
#undef SUM
}

/* ---- read: sum the buffer in 64-byte loads with 4 accumulators ---- */
__attribute__((target("avx512f"))) static void read_avx512(native_job *j) {
  const size_t n = j->bytes / 256;
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  for (long r = 0; r < j->iters; ++r) {
    const __m512i *p = (const __m512i *)j->buf;
    for (size_t i = 0; i < n; ++i, p += 4) {
      s0 = _mm512_add_epi32(s0, _mm512_load_si512(p));
      s1 = _mm512_add_epi32(s1, _mm512_load_si512(p + 1));
      s2 = _mm512_add_epi32(s2, _mm512_load_si512(p + 2));
      s3 = _mm512_add_epi32(s3, _mm512_load_si512(p + 3));
    }
  }
  s0 = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
  j->sink = (float)_mm512_reduce_add_epi32(s0);
  j->work = (double)j->iters * (double)(n * 256);
}

static int cpu_isa(int kind) {
  __builtin_cpu_init();
  if (kind == K_INT8) {
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f")) return 2;
    return __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  if (__builtin_cpu_supports("avx512f")) return 2;
  if (kind == K_READ) return 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}
#else
static int cpu_isa(int kind) { (void)kind; return 0; }
#endif

/* plain C: what the compiler makes of it (the limit on a host without the paths above) */
static void plain(native_job *j) {
  if (j->kind == K_READ) {
    const uint64_t *p = (const uint64_t *)j->buf;
    const size_t n = j->bytes / 32;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (long r = 0; r < j->iters; ++r)
      for (size_t i = 0; i < n; ++i, p += 4) s0 += p[0], s1 += p[1], s2 += p[2], s3 += p[3];
    j->sink = (float)(s0 + s1 + s2 + s3);
    j->work = (double)j->iters * (double)(n * 32);
    return;
  }
  float a[16];
  for (int i = 0; i < 16; ++i) a[i] = (float)i;
  for (long n = 0; n < j->iters; ++n)
    for (int i = 0; i < 16; ++i) a[i] = a[i] * 0.999999f + 1e-7f;
  j->sink = a[0] + a[15];
  j->work = (double)j->iters * 16 * 2;
}

static void run_kind(native_job *j) {
#ifdef NATIVE_X86
  if (j->kind == K_FP32 && j->isa == 2) { fp32_avx512(j); return; }
  if (j->kind == K_FP32 && j->isa == 1) { fp32_avx2(j); return; }
  if (j->kind == K_INT8 && j->isa == 2) { int8_vnni(j); return; }
  if (j->kind == K_INT8 && j->isa == 1) { int8_avx2(j); return; }
  if (j->kind == K_READ && j->isa == 2) { read_avx512(j); return; }
#endif
  plain(j);
}

/* Each thread times itself by the wall clock from its own start (thread CPU time would
 * ignore time-sharing, but in this VM it undercounts by ~2.5×: steal time is not charged). */
static void *run_job(void *p) {
  native_job *j = p;
  double t0 = bench_now_s();
  run_kind(j);
  j->cpu_s = bench_now_s() - t0;
  return NULL;
}

/* One timing: `threads` threads each doing proto->iters steps (each on its own slice of buf
 * when there is one); the sum of each thread's work per second; *dt gets the longest
 * thread's time. */
static double run_threads(const native_job *proto, int threads, const unsigned char *buf,
                          size_t per_thread, double *dt) {
  enum { MAXT = 256 };
  pthread_t tid[MAXT];
  native_job jobs[MAXT];
  int ok[MAXT] = {0};
  if (threads > MAXT) threads = MAXT;
  double rate = 0;
  for (int i = 0; i < threads; ++i) {
    jobs[i] = *proto;
    jobs[i].work = jobs[i].cpu_s = 0;
    if (buf) jobs[i].buf = buf + per_thread * (size_t)i, jobs[i].bytes = per_thread;
    if (i > 0) ok[i] = pthread_create(&tid[i], NULL, run_job, &jobs[i]) == 0;
  }
  run_job(&jobs[0]);
  *dt = 0;
  for (int i = 0; i < threads; ++i) {
    if (i > 0 && !ok[i]) continue;
    if (i > 0) pthread_join(tid[i], NULL);
    if (jobs[i].cpu_s > 0) rate += jobs[i].work / jobs[i].cpu_s;
    *dt = fmax(*dt, jobs[i].cpu_s);
  }
  return rate > 0 ? rate : NAN;
}

/* The best of `reps` timings, each about target_s long (iterations grown until a run is
 * long enough to time): a limit is the fastest the hardware was seen going. */
static double measure(int kind, int threads, size_t bytes, double target_s, int reps,
                      const char **isa_name) {
  static const char *const names[3][3] = {{"C", "AVX2 FMA", "AVX-512 FMA"},
                                          {"C", "AVX2 pmaddubsw", "AVX-512 VNNI"},
                                          {"C", "C", "AVX-512"}};
  native_job proto = {.kind = kind, .isa = cpu_isa(kind), .iters = 1};
  if (isa_name) *isa_name = names[kind][proto.isa];
  if (kind == K_INT8 && proto.isa == 0) return NAN; /* no int8 dot instructions to time */
  unsigned char *buf = NULL;
  size_t per = 0;
  if (kind == K_READ) {
    per = (bytes / (size_t)threads + 255) / 256 * 256;
    if (per < 256) per = 256;
    if (posix_memalign((void **)&buf, 64, per * (size_t)threads)) return NAN;
    for (size_t i = 0; i < per * (size_t)threads; ++i) buf[i] = (unsigned char)i;
  }
  double dt = 0;
  run_threads(&proto, threads, buf, per, &dt); /* warm-up: page faults, clocks */
  while (dt < target_s / 16 && proto.iters < (1L << 40)) {
    proto.iters *= 4;
    run_threads(&proto, threads, buf, per, &dt);
  }
  proto.iters = (long)fmax(1, (double)proto.iters * target_s / fmax(dt, 1e-7));
  double best = 0;
  for (int r = 0; r < reps; ++r) best = fmax(best, run_threads(&proto, threads, buf, per, &dt));
  free(buf);
  return best;
}

int bench_native_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

double bench_native_fp32_gflops(double target_s, const char **isa) {
  return measure(K_FP32, bench_native_threads(), 0, target_s, 5, isa) * 1e-9;
}

double bench_native_int8_gops(double target_s, const char **isa) {
  return measure(K_INT8, bench_native_threads(), 0, target_s, 5, isa) * 1e-9;
}

double bench_native_read_gbps(size_t bytes, double target_s) {
  return measure(K_READ, bench_native_threads(), bytes, target_s, 5, NULL) * 1e-9;
}

/* ---- combining measurements ---- */
void bench_peaks_merge(bench_peaks *into, const bench_peaks *o) {
  into->gbps = fmax(into->gbps, o->gbps);
  into->gflops = fmax(into->gflops, o->gflops);
  into->gops = fmax(into->gops, o->gops);
  into->compute = fmax(into->compute, o->compute);
  into->cl_gbps = fmax(into->cl_gbps, o->cl_gbps);
  into->cl_gflops = fmax(into->cl_gflops, o->cl_gflops);
  into->cl_gops = fmax(into->cl_gops, o->cl_gops);
  into->native_gbps = fmax(into->native_gbps, o->native_gbps);
  into->native_gflops = fmax(into->native_gflops, o->native_gflops);
  into->native_gops = fmax(into->native_gops, o->native_gops);
}

/* Working sets measured so far (the same op size recurs across types and phases). */
static struct {
  size_t bytes;
  double gbps;
} sized[64];
static int n_sized;

double bench_peaks_read_gbps(const bench_peaks *pk, double bytes, double target_s) {
  if (!pk->cpu || !(bytes > 0)) return pk->gbps;
  /* sizes within 1/8 of each other share a measurement */
  size_t b = (size_t)bytes;
  for (int i = 0; i < n_sized; ++i)
    if (b >= sized[i].bytes - sized[i].bytes / 8 && b <= sized[i].bytes + sized[i].bytes / 8)
      return fmax(pk->gbps, sized[i].gbps);
  double g = bench_native_read_gbps(b, target_s);
  if (n_sized < 64) sized[n_sized].bytes = b, sized[n_sized++].gbps = g;
  return fmax(pk->gbps, g);
}

static const char *src(double v, double cl) { return v > cl ? "native" : "OpenCL"; }

void bench_peaks_print(FILE *f, const bench_peaks *pk) {
  fprintf(f, "device limits (best of OpenCL kernels and, on a CPU, native loops on %d threads):\n"
             "  read %.2f GB/s (OpenCL %.2f, native %.2f)  fp32 %.1f GFLOP/s (OpenCL %.1f, "
             "native %s %.1f)  int8 %.1f GOP/s (OpenCL %.1f, native %s %.1f)\n",
          pk->native_threads, pk->gbps, pk->cl_gbps, pk->native_gbps, pk->gflops, pk->cl_gflops,
          pk->fp32_isa, pk->native_gflops, pk->gops, pk->cl_gops, pk->int8_isa, pk->native_gops);
}

void bench_peaks_json(bench_json *j, const bench_peaks *pk) {
  bench_json_object(j, "limits");
  bench_json_num(j, "read_gbps", pk->gbps);
  bench_json_str(j, "read_from", src(pk->native_gbps, pk->cl_gbps));
  bench_json_num(j, "fp32_gflops", pk->gflops);
  bench_json_str(j, "fp32_from", src(pk->native_gflops, pk->cl_gflops));
  bench_json_num(j, "int8_gops", pk->gops);
  bench_json_str(j, "int8_from", src(pk->native_gops, pk->cl_gops));
  bench_json_num(j, "opencl_read_gbps", pk->cl_gbps);
  bench_json_num(j, "opencl_fp32_gflops", pk->cl_gflops);
  bench_json_num(j, "opencl_int8_gops", pk->cl_gops);
  bench_json_num(j, "native_read_gbps", pk->native_gbps);
  bench_json_num(j, "native_fp32_gflops", pk->native_gflops);
  bench_json_num(j, "native_int8_gops", pk->native_gops);
  bench_json_str(j, "native_fp32_isa", pk->fp32_isa);
  bench_json_str(j, "native_int8_isa", pk->int8_isa);
  bench_json_num(j, "native_threads", pk->native_threads);
  bench_json_close(j);
}

/* bench.cl - microbenchmark kernels for `clkv_bench device`: global-memory read bandwidth per
 * vector width, fp32/fp16 multiply-add chains, int8 dot products, and an empty kernel for
 * launch latency. Results are written out only to keep the compiler from removing the work. */

#define BW_FETCH 16 /* loads per work-item in the bandwidth kernels (unrolled below) */
#ifndef CP_ITERS
#define CP_ITERS 64 /* outer iterations of the compute kernels (16 multiply-adds each) */
#endif

/* Horizontal sums of vector types, so each work-item writes one scalar. */
#define HSUM1(v) (v)
#define HSUM2(v) ((v).s0 + (v).s1)
#define HSUM4(v) (HSUM2((v).lo) + HSUM2((v).hi))
#define HSUM8(v) (HSUM4((v).lo) + HSUM4((v).hi))
#define HSUM16(v) (HSUM8((v).lo) + HSUM8((v).hi))

/* Read bandwidth, two access orders (the host reports the faster one per width):
 * - bw_lo_*: work-group g reads a contiguous span of BW_FETCH * local_size elements,
 *   consecutive work-items on consecutive addresses, steps of local_size;
 * - bw_go_*: work-item i reads i, i + global_size, i + 2 * global_size, ...
 * Both read every element of src exactly once. */
/* Straight-line loads (no inner loop) vectorize best across work-items on CPU devices. */
#define BW_LOAD4(acc, src, i, step)                                                        \
  acc += src[i]; i += step; acc += src[i]; i += step;                                      \
  acc += src[i]; i += step; acc += src[i]; i += step;
#define BW_KERNEL_AT(NAME, T, W, FIRST, STEP)                                              \
  __kernel void NAME(__global const T *src, __global float *dst) {                        \
    size_t i = (FIRST), step = (STEP);                                                     \
    T acc = (T)(0.0f);                                                                     \
    BW_LOAD4(acc, src, i, step) BW_LOAD4(acc, src, i, step)                                \
    BW_LOAD4(acc, src, i, step) BW_LOAD4(acc, src, i, step)                                \
    dst[get_global_id(0)] = HSUM##W(acc);                                                  \
  }
#define BW_KERNEL(T, W)                                                                    \
  BW_KERNEL_AT(bw_lo_##T, T, W, get_group_id(0) * get_local_size(0) * BW_FETCH +          \
               get_local_id(0), get_local_size(0))                                         \
  BW_KERNEL_AT(bw_go_##T, T, W, get_global_id(0), get_global_size(0))

BW_KERNEL(float, 1)
BW_KERNEL(float2, 2)
BW_KERNEL(float4, 4)
BW_KERNEL(float8, 8)
BW_KERNEL(float16, 16)

/* Compute: two dependent multiply-add chains per work-item, 16 mads per step, CP_ITERS
 * steps: flops per work-item = CP_ITERS * 16 * 2 * vector width. */
#define MAD2(x, y) x = mad(y, x, y); y = mad(x, y, x);
#define MAD16(x, y) MAD2(x, y) MAD2(x, y) MAD2(x, y) MAD2(x, y) \
                    MAD2(x, y) MAD2(x, y) MAD2(x, y) MAD2(x, y)

#define COMPUTE_KERNEL(NAME, T, S, W)                                                      \
  __kernel void NAME(__global float *out, float a) {                                      \
    T x = (T)((S)a);                                                                       \
    T y = (T)((S)get_local_id(0));                                                         \
    for (int i = 0; i < CP_ITERS; ++i) { MAD16(x, y) }                                     \
    out[get_global_id(0)] = (float)(HSUM##W(y));                                           \
  }

COMPUTE_KERNEL(mad_float, float, float, 1)
COMPUTE_KERNEL(mad_float2, float2, float, 2)
COMPUTE_KERNEL(mad_float4, float4, float, 4)
COMPUTE_KERNEL(mad_float8, float8, float, 8)
COMPUTE_KERNEL(mad_float16, float16, float, 16)

#ifdef cl_khr_fp16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
COMPUTE_KERNEL(mad_half, half, half, 1)
COMPUTE_KERNEL(mad_half2, half2, half, 2)
COMPUTE_KERNEL(mad_half4, half4, half, 4)
COMPUTE_KERNEL(mad_half8, half8, half, 8)
COMPUTE_KERNEL(mad_half16, half16, half, 16)
#endif

/* int8 dot: four independent char4 . char4 -> int dot products per step (8 ops each: 4
 * multiplies, 4 adds); the char4 operands advance by a wrapping add each step so nothing
 * is loop-invariant. ops per work-item = (CP_ITERS * 4) steps * 4 dots * 8 = CP_ITERS * 128. */
#define DOT4(a, b) ((int)(a).x * (b).x + (int)(a).y * (b).y + (int)(a).z * (b).z + (int)(a).w * (b).w)
#define DOT_STEP                                                                          \
  acc.s0 += DOT4(a0, b); acc.s1 += DOT4(a1, b); acc.s2 += DOT4(a2, b); acc.s3 += DOT4(a3, b); \
  a0 += b; a1 += b; a2 += b; a3 += b;

__kernel void dot_int8(__global int *out, int seed) {
  char l = (char)get_local_id(0);
  char4 b = (char4)((char)seed, (char)(seed + 1), (char)(seed + 2), (char)(seed + 3));
  char4 a0 = (char4)(l, 1, 2, 3), a1 = (char4)(4, l, 5, 6);
  char4 a2 = (char4)(7, 8, l, 9), a3 = (char4)(10, 11, 12, l);
  int4 acc = (int4)(0);
  for (int i = 0; i < CP_ITERS * 4; ++i) { DOT_STEP }
  out[get_global_id(0)] = acc.s0 + acc.s1 + acc.s2 + acc.s3;
}

/* Launch latency: does nothing. */
__kernel void empty(__global int *out) { (void)out; }

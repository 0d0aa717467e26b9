/* common.cl — prepended to every clkv program: type ids, weight block layouts and the
 * dequantization and dot products of 32-element blocks. OpenCL C 1.2; needs
 * no fp16 arithmetic (vload_half/vstore_half work everywhere). */

/* GGML type ids (the same numbers as GGUF). */
#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q8_0 8
#define T_BF16 30

/* Bytes of one 32-element block of each type. */
#define BLOCK_BYTES_OF(t)                                                                  \
  ((t) == T_F32 ? 128 : (t) == T_F16 ? 64 : (t) == T_BF16 ? 64 : (t) == T_Q8_0 ? 34       \
   : (t) == T_Q4_0 ? 18 : (t) == T_Q4_1 ? 20 : 0)

/* Block layouts: Q8_0 {half d; char q[32]} -> d*q; Q4_0 {half d; uchar q[16]} -> d*(nib-8);
 * Q4_1 {half d, m; uchar q[16]} -> d*nib+m; element j is the low nibble of q[j], element
 * j+16 the high nibble. Blocks are handled as four float8 pieces: elements 0-7, 8-15,
 * 16-23, 24-31 (float8 keeps AVX2 CPUs free of register spills and is cheap on GPUs). */

/* The quantized values of block b as four float8, and the scale d and offset m such that
 * weight = d * q + m. */
inline void clkv_q32(const __global uchar *row, uint b, int t, float8 *q0, float8 *q1, float8 *q2,
                     float8 *q3, float *d, float *m) {
  if (t == T_F32) {
    const __global float *p = (const __global float *)row + b * 32;
    *q0 = vload8(0, p); *q1 = vload8(1, p); *q2 = vload8(2, p); *q3 = vload8(3, p);
    *d = 1.0f; *m = 0.0f;
  } else if (t == T_F16) {
    const __global half *p = (const __global half *)row + b * 32;
    *q0 = vload_half8(0, p); *q1 = vload_half8(1, p); *q2 = vload_half8(2, p); *q3 = vload_half8(3, p);
    *d = 1.0f; *m = 0.0f;
  } else if (t == T_BF16) {
    const __global ushort *p = (const __global ushort *)row + b * 32;
    *q0 = as_float8(convert_uint8(vload8(0, p)) << 16);
    *q1 = as_float8(convert_uint8(vload8(1, p)) << 16);
    *q2 = as_float8(convert_uint8(vload8(2, p)) << 16);
    *q3 = as_float8(convert_uint8(vload8(3, p)) << 16);
    *d = 1.0f; *m = 0.0f;
  } else if (t == T_Q8_0) {
    const __global uchar *p = row + b * 34;
    *d = vload_half(0, (const __global half *)p);
    *m = 0.0f;
    const __global char *qp = (const __global char *)(p + 2);
    *q0 = convert_float8(vload8(0, qp)); *q1 = convert_float8(vload8(1, qp));
    *q2 = convert_float8(vload8(2, qp)); *q3 = convert_float8(vload8(3, qp));
  } else if (t == T_Q4_0) {
    const __global uchar *p = row + b * 18;
    *d = vload_half(0, (const __global half *)p);
    *m = -8.0f * *d;
    const uchar8 a = vload8(0, p + 2), c = vload8(1, p + 2);
    *q0 = convert_float8(a & (uchar)15); *q1 = convert_float8(c & (uchar)15);
    *q2 = convert_float8(a >> (uchar)4); *q3 = convert_float8(c >> (uchar)4);
  } else { /* T_Q4_1 */
    const __global uchar *p = row + b * 20;
    *d = vload_half(0, (const __global half *)p);
    *m = vload_half(1, (const __global half *)p);
    const uchar8 a = vload8(0, p + 4), c = vload8(1, p + 4);
    *q0 = convert_float8(a & (uchar)15); *q1 = convert_float8(c & (uchar)15);
    *q2 = convert_float8(a >> (uchar)4); *q3 = convert_float8(c >> (uchar)4);
  }
}

inline float clkv_hsum8(float8 v) {
  float4 a = v.lo + v.hi;
  float2 b = a.lo + a.hi;
  return b.x + b.y;
}

/* Dot product of block b of a row with x (32 values as four float8, xs = their sum):
 * d * sum(q * x) + m * sum(x), so the offset costs one multiply per block. */
inline float clkv_dot32(const __global uchar *row, uint b, int t, float8 x0, float8 x1, float8 x2,
                        float8 x3, float xs) {
  float8 q0, q1, q2, q3;
  float d, m;
  clkv_q32(row, b, t, &q0, &q1, &q2, &q3, &d, &m);
  return d * clkv_hsum8(q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3) + m * xs;
}

/* Block b dequantized: four float8 of weights. */
inline void clkv_deq32(const __global uchar *row, uint b, int t, float8 *w0, float8 *w1, float8 *w2,
                       float8 *w3) {
  float d, m;
  clkv_q32(row, b, t, w0, w1, w2, w3, &d, &m);
  *w0 = *w0 * d + m; *w1 = *w1 * d + m; *w2 = *w2 * d + m; *w3 = *w3 * d + m;
}

/* KV cache geometry: head size, KV heads, tokens per block (the host passes all three). */
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef N_KV
#define N_KV 1
#endif
#ifndef KV_BS
#define KV_BS 16
#endif

/* Location of a token's K (or V) row for one kv head inside the paged cache.
 * Cache layout: [layer][block][kv_head][BS tokens][head_dim], blocks numbered per layer. */
inline size_t clkv_kv_index(uint layer_base, uint phys_block, uint kvh, uint n_kv, uint slot,
                            uint bs, uint hd) {
  return ((((size_t)layer_base + phys_block) * n_kv + kvh) * bs + slot) * hd;
}

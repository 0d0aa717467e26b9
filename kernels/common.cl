/* common.cl — prepended to every clkv program (after contract.h): weight block layouts, the
 * dequantization and dot products of 32-element pieces, the KV cache layout. OpenCL C 1.2;
 * needs no fp16 arithmetic (vload_half/vstore_half work everywhere). */

/* ---- fp16 loads: vload_half, or integer bit operations where the driver emulates
 * vload_half in software (PoCL 3.1 on CPUs: ~25 scalar instructions per value, no
 * vcvtph2ps); the platform profile's quirk soft_half builds with -DCLKV_SOFT_HALF=1. ---- */
#ifndef CLKV_SOFT_HALF
#define CLKV_SOFT_HALF 0
#endif

/* x86 with F16C (PoCL's CPU device): the conversions below are vcvtph2ps, one instruction
 * instead of ~10 for a block's scale (Gemma 3 270M decode +7%, its Q8_0 head) or ~12 for
 * eight F16 weights; exact, but a signalling nan comes back quiet. */
#if defined(__F16C__) && defined(__x86_64__)
#define CLKV_F16C 1
typedef short clkv_v8s __attribute__((ext_vector_type(8)));
#endif

/* The float value of the fp16 bits h, exact for every value: the 15 bits of exponent and
 * mantissa shifted into a float and scaled by 2^112 (rebiasing the exponent: exact for normal
 * and subnormal halves, which become float subnormals first), inf and nan (payload kept) by a
 * select. No branch: the form with one branch per case cost ~10 jumps per weight block in the
 * decode mat-vec. Needs float subnormals, which the devices with the soft_half quirk (PoCL's
 * CPU device) keep; the fp16 test checks every value on the test device. */
static inline float clkv_half_bits(uint h) {
#if defined(CLKV_F16C)
  return __builtin_ia32_vcvtph2ps((clkv_v8s)((short)h, 0, 0, 0, 0, 0, 0, 0))[0];
#else
  const uint em = h & 0x7fffu, s = (h & 0x8000u) << 16;
  const uint v = select(as_uint(as_float(em << 13) * 0x1p112f), (em << 13) | 0x7f800000u,
                        (uint)(em >= 0x7c00u));
  return as_float(v | s);
#endif
}

/* The same for eight values. */
static inline float8 clkv_half_bits8(ushort8 h) {
#if defined(CLKV_F16C)
  const float __attribute__((vector_size(32))) f = __builtin_ia32_vcvtph2ps256(as_short8(h));
  return (float8)(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
#else
  const uint8 u = convert_uint8(h), em = u & 0x7fffu;
  uint8 v = select(as_uint8(convert_float8(em) * 0x1p-24f), (em << 13) + 0x38000000u,
                   em >= 0x0400u);
  v = select(v, (em << 13) | 0x7f800000u, em >= 0x7c00u);
  return as_float8(v | ((u & 0x8000u) << 16));
#endif
}

/* Element i of the fp16 array at p (byte address; 2-byte aligned), as float: the block scales
 * of every weight type. */
static inline float clkv_ld_half(const __global uchar *p, uint i) {
#if CLKV_SOFT_HALF
  return clkv_half_bits(((const __global ushort *)p)[i]);
#else
  return vload_half(i, (const __global half *)p);
#endif
}

/* Elements 0 and 1 of the fp16 array at p (a block's d and m, or d and dmin): one conversion
 * for both with F16C. */
static inline float2 clkv_ld_half2(const __global uchar *p) {
#if CLKV_SOFT_HALF && defined(CLKV_F16C)
  const short2 h = vload2(0, (const __global short *)p);
  const float __attribute__((vector_size(16))) f =
      __builtin_ia32_vcvtph2ps((clkv_v8s)(h.x, h.y, 0, 0, 0, 0, 0, 0));
  return (float2)(f[0], f[1]);
#else
  return (float2)(clkv_ld_half(p, 0), clkv_ld_half(p, 1));
#endif
}

/* Elements 8i .. 8i+7 of the fp16 array at p. */
static inline float8 clkv_ld_half8(const __global half *p, uint i) {
#if CLKV_SOFT_HALF
  return clkv_half_bits8(vload8(i, (const __global ushort *)p));
#else
  return vload_half8(i, p);
#endif
}

/* Bytes of a row of cols elements of weight type t (cols a multiple of its block). */
static inline size_t clkv_row_bytes(int t, uint cols) {
  return (size_t)(cols / clkv__wt_block_elems(t)) * clkv__wt_block_bytes(t);
}

/* Block layouts: Q8_0 {half d; char q[32]} -> d*q; Q4_0 {half d; uchar q[16]} -> d*(nib-8);
 * Q4_1 {half d, m; uchar q[16]} -> d*nib+m; element j is the low nibble of q[j], element
 * j+16 the high nibble. Blocks are handled as four float8 pieces: elements 0-7, 8-15,
 * 16-23, 24-31 (float8 keeps AVX2 CPUs free of register spills and is cheap on GPUs). */

/* ---- the other runnable layouts (byte offsets; host/format/quant.c decodes the same) ----
 * Q5_0 {half d; uchar qh[4]; uchar qs[16]}: q = nibble | bit j of qh << 4, weight d*(q-16);
 * Q5_1 {half d, m; uchar qh[4]; uchar qs[16]}: weight d*q + m;
 * IQ4_NL {half d; uchar qs[16]}: weight d * clkv_iq4nl[nibble].
 * The K-quants are 256-element super-blocks; block b of a row is sub-block b % 8 of
 * super-block b / 8, elements 32j .. 32j+31 for sub-block j:
 * Q4_K {half d, dmin; uchar sc[12]; uchar qs[128]}: sub-block j reads nibbles (low for even
 *   j, high for odd) of qs[32(j/2) ..], 6-bit scale s and min n packed in sc:
 *   weight d*s*q - dmin*n;
 * Q5_K {half d, dmin; uchar sc[12]; uchar qh[32]; uchar qs[128]}: as Q4_K, plus bit j of
 *   qh[l] << 4 for element l;
 * Q6_K {uchar ql[128]; uchar qh[64]; char sc[16]; half d}: weight d*sc*(q-32), a scale per 16;
 * Q3_K {uchar hmask[32]; uchar qs[64]; uchar sc[12]; half d}: 2-bit q minus 4 where bit j of
 *   hmask[l] is clear, 6-bit signed scales per 16: weight d*(s-32)*q;
 * Q2_K {uchar sc[16]; uchar qs[64]; half d, dmin}: 2-bit q, per 16 a 4-bit scale (low) and
 *   min (high): weight d*s*q - dmin*n;
 * IQ4_XS {half d; ushort sh; uchar sl[4]; uchar qs[128]}: 6-bit scale per 32 (low 4 bits in
 *   sl, high 2 in sh), weight d*(s-32)*clkv_iq4nl[nibble]. */

/* The 16 values of a 4-bit non-linear index (IQ4_NL, IQ4_XS). */
__constant float clkv_iq4nl[16] = {-127.0f, -104.0f, -83.0f, -65.0f, -49.0f, -35.0f, -22.0f, -10.0f,
                                   1.0f,    13.0f,   25.0f,  38.0f,  53.0f,  69.0f,  89.0f,  113.0f};

/* Bits 0..7 of h as eight 0/1 lanes. */
static inline uchar8 clkv_bits8(uchar h) {
  return ((uchar8)(h) >> (uchar8)(0, 1, 2, 3, 4, 5, 6, 7)) & (uchar)1;
}

static inline float8 clkv_iq4_8(uchar8 n) {
  return (float8)(clkv_iq4nl[n.s0], clkv_iq4nl[n.s1], clkv_iq4nl[n.s2], clkv_iq4nl[n.s3],
                  clkv_iq4nl[n.s4], clkv_iq4nl[n.s5], clkv_iq4nl[n.s6], clkv_iq4nl[n.s7]);
}

/* Q5_0 (has_min 0) and Q5_1 (has_min 1). */
static inline void clkv_q32_q5(const __global uchar *p, int has_min, float8 *q0, float8 *q1, float8 *q2,
                        float8 *q3, float *d, float *m) {
  *d = clkv_ld_half(p, 0);
  *m = has_min ? clkv_ld_half(p, 1) : -16.0f * *d;
  const __global uchar *h = p + (has_min ? 4 : 2);
  const uchar8 a = vload8(0, h + 4), c = vload8(1, h + 4);
  *q0 = convert_float8((a & (uchar)15) | (clkv_bits8(h[0]) << (uchar)4));
  *q1 = convert_float8((c & (uchar)15) | (clkv_bits8(h[1]) << (uchar)4));
  *q2 = convert_float8((a >> (uchar)4) | (clkv_bits8(h[2]) << (uchar)4));
  *q3 = convert_float8((c >> (uchar)4) | (clkv_bits8(h[3]) << (uchar)4));
}

/* Q4_K/Q5_K: the scale and offset of sub-block j of the super-block at p (weight = d q + m). */
static inline void clkv_k45_scale(const __global uchar *p, uint j, float *d, float *m) {
  const __global uchar *s = p + 4;
  uint sc, mn;
  if (j < 4) {
    sc = s[j] & 63u;
    mn = s[j + 4] & 63u;
  } else {
    sc = (s[j + 4] & 15u) | ((uint)(s[j - 4] >> 6) << 4);
    mn = (uint)(s[j + 4] >> 4) | ((uint)(s[j] >> 6) << 4);
  }
  const float2 dm = clkv_ld_half2(p);
  *d = dm.x * (float)sc;
  *m = -dm.y * (float)mn;
}

/* Q4_K (five 0) and Q5_K (five 1): sub-block j of the super-block at p. */
static inline void clkv_q32_k45(const __global uchar *p, uint j, int five, float8 *q0, float8 *q1,
                         float8 *q2, float8 *q3, float *d, float *m) {
  clkv_k45_scale(p, j, d, m);
  const __global uchar *qs = p + (five ? 48 : 16) + 32 * (j / 2);
  const uchar sh = (uchar)(4 * (j & 1));
  uchar8 a0 = (vload8(0, qs) >> sh) & (uchar)15, a1 = (vload8(1, qs) >> sh) & (uchar)15;
  uchar8 a2 = (vload8(2, qs) >> sh) & (uchar)15, a3 = (vload8(3, qs) >> sh) & (uchar)15;
  if (five) {
    const __global uchar *qh = p + 16;
    const uchar hj = (uchar)j;
    a0 |= ((vload8(0, qh) >> hj) & (uchar)1) << (uchar)4;
    a1 |= ((vload8(1, qh) >> hj) & (uchar)1) << (uchar)4;
    a2 |= ((vload8(2, qh) >> hj) & (uchar)1) << (uchar)4;
    a3 |= ((vload8(3, qh) >> hj) & (uchar)1) << (uchar)4;
  }
  *q0 = convert_float8(a0); *q1 = convert_float8(a1);
  *q2 = convert_float8(a2); *q3 = convert_float8(a3);
}

/* Q6_K: sub-block j of the super-block at p; the two scales of 16 folded into q. */
static inline void clkv_q32_q6k(const __global uchar *p, uint j, float8 *q0, float8 *q1, float8 *q2,
                         float8 *q3, float *d, float *m) {
  const uint n = j / 4, k = j % 4;
  const __global uchar *ql = p + 64 * n + 32 * (k & 1), *qh = p + 128 + 32 * n;
  const __global char *sc = (const __global char *)(p + 192 + 8 * n + 2 * k);
  const uchar ls = (uchar)(4 * (k >> 1)), hs = (uchar)(2 * k);
  const float s0 = (float)sc[0], s1 = (float)sc[1];
#define CLKV_Q6(i) (convert_float8(((vload8(i, ql) >> ls) & (uchar)15) | \
                                   (((vload8(i, qh) >> hs) & (uchar)3) << (uchar)4)) - 32.0f)
  *q0 = CLKV_Q6(0) * s0; *q1 = CLKV_Q6(1) * s0; *q2 = CLKV_Q6(2) * s1; *q3 = CLKV_Q6(3) * s1;
#undef CLKV_Q6
  *d = clkv_ld_half(p, 104);
  *m = 0.0f;
}

/* Q3_K scale i (0..15) of the 12 packed bytes s, minus 32. */
static inline float clkv_q3k_scale(const __global uchar *s, uint i) {
  const uint lo = i < 8 ? (s[i] & 15u) : (uint)(s[i - 8] >> 4);
  const uint hi = ((uint)s[8 + i % 4] >> (2 * (i / 4))) & 3u;
  return (float)((int)(lo | (hi << 4)) - 32);
}

/* Q3_K: sub-block j of the super-block at p; scales folded into q. */
static inline void clkv_q32_q3k(const __global uchar *p, uint j, float8 *q0, float8 *q1, float8 *q2,
                         float8 *q3, float *d, float *m) {
  const __global uchar *qs = p + 32 + 32 * (j / 4);
  const uchar sh = (uchar)(2 * (j % 4)), hj = (uchar)j;
  const float s0 = clkv_q3k_scale(p + 96, 2 * j), s1 = clkv_q3k_scale(p + 96, 2 * j + 1);
#define CLKV_Q3(i) (convert_float8((vload8(i, qs) >> sh) & (uchar)3) - \
                    4.0f + 4.0f * convert_float8((vload8(i, p) >> hj) & (uchar)1))
  *q0 = CLKV_Q3(0) * s0; *q1 = CLKV_Q3(1) * s0; *q2 = CLKV_Q3(2) * s1; *q3 = CLKV_Q3(3) * s1;
#undef CLKV_Q3
  *d = clkv_ld_half(p, 54);
  *m = 0.0f;
}

/* Q2_K: sub-block j of the super-block at p; two (scale, min) pairs, so the weights
 * themselves come back (d 1, m 0). */
static inline void clkv_q32_q2k(const __global uchar *p, uint j, float8 *q0, float8 *q1, float8 *q2,
                         float8 *q3, float *d, float *m) {
  const __global uchar *qs = p + 16 + 32 * (j / 4);
  const uchar sh = (uchar)(2 * (j % 4)), s0 = p[2 * j], s1 = p[2 * j + 1];
  const float D = clkv_ld_half(p, 40), M = clkv_ld_half(p, 41);
  const float d0 = D * (float)(s0 & 15), m0 = M * (float)(s0 >> 4);
  const float d1 = D * (float)(s1 & 15), m1 = M * (float)(s1 >> 4);
  *q0 = convert_float8((vload8(0, qs) >> sh) & (uchar)3) * d0 - m0;
  *q1 = convert_float8((vload8(1, qs) >> sh) & (uchar)3) * d0 - m0;
  *q2 = convert_float8((vload8(2, qs) >> sh) & (uchar)3) * d1 - m1;
  *q3 = convert_float8((vload8(3, qs) >> sh) & (uchar)3) * d1 - m1;
  *d = 1.0f;
  *m = 0.0f;
}

/* IQ4_NL (a 32-block at p, scale d) and IQ4_XS (sub-block j of the super-block at p). */
static inline void clkv_q32_iq4(const __global uchar *qs, float8 *q0, float8 *q1, float8 *q2, float8 *q3) {
  const uchar8 a = vload8(0, qs), c = vload8(1, qs);
  *q0 = clkv_iq4_8(a & (uchar)15); *q1 = clkv_iq4_8(c & (uchar)15);
  *q2 = clkv_iq4_8(a >> (uchar)4); *q3 = clkv_iq4_8(c >> (uchar)4);
}
static inline float clkv_iq4xs_scale(const __global uchar *p, uint j) {
  const uint sh = (uint)p[2] | ((uint)p[3] << 8);
  const uint ls = (((uint)p[4 + j / 2] >> (4 * (j % 2))) & 15u) | (((sh >> (2 * j)) & 3u) << 4);
  return clkv_ld_half(p, 0) * (float)((int)ls - 32);
}

/* The quantized values of block b as four float8, and the scale d and offset m such that
 * weight = d * q + m. */
static inline void clkv_q32(const __global uchar *row, uint b, int t, float8 *q0, float8 *q1, float8 *q2,
                     float8 *q3, float *d, float *m) {
  if (t == GGML_T_F32) {
    const __global float *p = (const __global float *)row + b * 32;
    *q0 = vload8(0, p); *q1 = vload8(1, p); *q2 = vload8(2, p); *q3 = vload8(3, p);
    *d = 1.0f; *m = 0.0f;
  } else if (t == GGML_T_F16) {
    const __global half *p = (const __global half *)row + b * 32;
    *q0 = clkv_ld_half8(p, 0); *q1 = clkv_ld_half8(p, 1); *q2 = clkv_ld_half8(p, 2); *q3 = clkv_ld_half8(p, 3);
    *d = 1.0f; *m = 0.0f;
  } else if (t == GGML_T_BF16) {
    const __global ushort *p = (const __global ushort *)row + b * 32;
    *q0 = as_float8(convert_uint8(vload8(0, p)) << 16);
    *q1 = as_float8(convert_uint8(vload8(1, p)) << 16);
    *q2 = as_float8(convert_uint8(vload8(2, p)) << 16);
    *q3 = as_float8(convert_uint8(vload8(3, p)) << 16);
    *d = 1.0f; *m = 0.0f;
  } else if (t == GGML_T_Q8_0) {
    const __global uchar *p = row + b * 34;
    *d = clkv_ld_half(p, 0);
    *m = 0.0f;
    const __global char *qp = (const __global char *)(p + 2);
    *q0 = convert_float8(vload8(0, qp)); *q1 = convert_float8(vload8(1, qp));
    *q2 = convert_float8(vload8(2, qp)); *q3 = convert_float8(vload8(3, qp));
  } else if (t == GGML_T_Q4_0) {
    const __global uchar *p = row + b * 18;
    *d = clkv_ld_half(p, 0);
    *m = -8.0f * *d;
    const uchar8 a = vload8(0, p + 2), c = vload8(1, p + 2);
    *q0 = convert_float8(a & (uchar)15); *q1 = convert_float8(c & (uchar)15);
    *q2 = convert_float8(a >> (uchar)4); *q3 = convert_float8(c >> (uchar)4);
  } else if (t == GGML_T_Q4_1) {
    const __global uchar *p = row + b * 20;
    const float2 dm = clkv_ld_half2(p);
    *d = dm.x;
    *m = dm.y;
    const uchar8 a = vload8(0, p + 4), c = vload8(1, p + 4);
    *q0 = convert_float8(a & (uchar)15); *q1 = convert_float8(c & (uchar)15);
    *q2 = convert_float8(a >> (uchar)4); *q3 = convert_float8(c >> (uchar)4);
  } else if (t == GGML_T_Q5_0 || t == GGML_T_Q5_1) {
    clkv_q32_q5(row + b * clkv__wt_block_bytes(t), t == GGML_T_Q5_1, q0, q1, q2, q3, d, m);
  } else if (t == GGML_T_IQ4_NL) {
    const __global uchar *p = row + b * 18;
    *d = clkv_ld_half(p, 0);
    *m = 0.0f;
    clkv_q32_iq4(p + 2, q0, q1, q2, q3);
  } else { /* a K-quant or IQ4_XS: sub-block b % 8 of super-block b / 8 */
    const __global uchar *p = row + (b / 8) * clkv__wt_block_bytes(t);
    const uint j = b % 8;
    if (t == GGML_T_Q4_K || t == GGML_T_Q5_K) {
      clkv_q32_k45(p, j, t == GGML_T_Q5_K, q0, q1, q2, q3, d, m);
    } else if (t == GGML_T_Q6_K) {
      clkv_q32_q6k(p, j, q0, q1, q2, q3, d, m);
    } else if (t == GGML_T_Q3_K) {
      clkv_q32_q3k(p, j, q0, q1, q2, q3, d, m);
    } else if (t == GGML_T_Q2_K) {
      clkv_q32_q2k(p, j, q0, q1, q2, q3, d, m);
    } else { /* GGML_T_IQ4_XS */
      *d = clkv_iq4xs_scale(p, j);
      *m = 0.0f;
      clkv_q32_iq4(p + 8 + 16 * j, q0, q1, q2, q3);
    }
  }
}

static inline float clkv_hsum8(float8 v) {
  float4 a = v.lo + v.hi;
  float2 b = a.lo + a.hi;
  return b.x + b.y;
}

/* Block b of a row times x (32 values as four float8, xs = their sum), accumulated without
 * a horizontal sum: acc += d * (q * x) lane-wise and off += m * xs; the row's dot product
 * is hsum8(acc) + off once all blocks are in (a decode mat-vec spends much of a block's
 * work in the horizontal sum otherwise). */
static inline void clkv_dot32_acc(const __global uchar *row, uint b, int t, float8 x0, float8 x1,
                           float8 x2, float8 x3, float xs, float8 *acc, float *off) {
  float8 q0, q1, q2, q3;
  float d, m;
  clkv_q32(row, b, t, &q0, &q1, &q2, &q3, &d, &m);
  *acc += d * (q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3);
  *off += m * xs;
}

/* ---- CPU decode of Q4_K, Q5_K, Q6_K a super-block at a time (matvec.cl, KSPLIT 1): the
 * super-block's fp16 scales and its 8 (Q6_K: 16) sub-block scales decoded once per row and
 * 256 values, not per 32-value sub-block (PoCL: two soft fp16 conversions with branches and
 * the 6-bit unpacking, scalar, per sub-block cost more than the sub-block's dot product). */

/* The scales of the super-block at p as float8 lanes (sub-block j in lane j): Q4_K/Q5_K:
 * a = d * scale, b = dmin * min; Q6_K: a = d * scale of 16-values 0..7, b = 8..15. */
static inline void clkv_kq_scales(const __global uchar *p, int t, float8 *a, float8 *b) {
  if (t == GGML_T_Q6_K) {
    const float d = clkv_ld_half(p, 104);
    const __global char *sc = (const __global char *)(p + 192);
    *a = convert_float8(vload8(0, sc)) * d;
    *b = convert_float8(vload8(1, sc)) * d;
  } else {
    const uchar4 s0 = vload4(1, p), s1 = vload4(2, p), s2 = vload4(3, p); /* bytes 4..15 */
    const uchar8 sc = (uchar8)(s0 & (uchar)63, (s2 & (uchar)15) | ((s0 >> (uchar)6) << (uchar)4));
    const uchar8 mn = (uchar8)(s1 & (uchar)63, (s2 >> (uchar)4) | ((s1 >> (uchar)6) << (uchar)4));
    const float2 dm = clkv_ld_half2(p);
    *a = convert_float8(sc) * dm.x;
    *b = convert_float8(mn) * dm.y;
  }
}

/* Lane i (a compile-time constant once inlined and unrolled) of v. */
static inline float clkv_lane8(float8 v, int i) {
  return i == 0 ? v.s0 : i == 1 ? v.s1 : i == 2 ? v.s2 : i == 3 ? v.s3
       : i == 4 ? v.s4 : i == 5 ? v.s5 : i == 6 ? v.s6 : v.s7;
}

/* Sub-block j (a compile-time constant once unrolled) of the super-block at p times x0..x3,
 * lane-wise and scaled (a, b: clkv_kq_scales); Q4_K/Q5_K leave out the min (the caller
 * subtracts b times the sub-block sums of x once per super-block). */
static inline float8 clkv_kq_dot(const __global uchar *p, int j, int t, float8 a, float8 b,
                                 float8 x0, float8 x1, float8 x2, float8 x3) {
  if (t == GGML_T_Q6_K) {
    const uint n = j / 4, k = j % 4;
    const __global uchar *ql = p + 64 * n + 32 * (k & 1), *qh = p + 128 + 32 * n;
    const uchar ls = (uchar)(4 * (k >> 1)), hs = (uchar)(2 * k);
    const uchar16 l0 = vload16(0, ql), l1 = vload16(1, ql), h0 = vload16(0, qh), h1 = vload16(1, qh);
    /* q - 32 in bytes (-32..31), then to float */
    const char16 c0 = as_char16((((l0 >> ls) & (uchar)15) | (((h0 >> hs) & (uchar)3) << (uchar)4)) -
                                (uchar)32);
    const char16 c1 = as_char16((((l1 >> ls) & (uchar)15) | (((h1 >> hs) & (uchar)3) << (uchar)4)) -
                                (uchar)32);
    const float8 s = j < 4 ? a : b;
    const float s0 = clkv_lane8(s, 2 * (j % 4)), s1 = clkv_lane8(s, 2 * (j % 4) + 1);
    const float16 v0 = convert_float16(c0) * (float16)(x0, x1), v1 = convert_float16(c1) * (float16)(x2, x3);
    return s0 * (v0.lo + v0.hi) + s1 * (v1.lo + v1.hi);
  } else {
    const int five = t == GGML_T_Q5_K;
    const __global uchar *qs = p + (five ? 48 : 16) + 32 * (j / 2);
    const uchar sh = (uchar)(4 * (j & 1));
    uchar16 q0 = (vload16(0, qs) >> sh) & (uchar)15, q1 = (vload16(1, qs) >> sh) & (uchar)15;
    if (five) {
      const uchar hj = (uchar)j;
      q0 |= ((vload16(0, p + 16) >> hj) & (uchar)1) << (uchar)4;
      q1 |= ((vload16(1, p + 16) >> hj) & (uchar)1) << (uchar)4;
    }
    const float16 v = convert_float16(q0) * (float16)(x0, x1) + convert_float16(q1) * (float16)(x2, x3);
    return clkv_lane8(a, j) * (v.lo + v.hi);
  }
}

/* Piece k (values 8k .. 8k+7; k a compile-time constant once inlined) of block b's quantized
 * values, with the block's d and m: what clkv_q32 gives, of which the compiler keeps the one
 * piece (and the loads it needs). A GPU decode mat-vec that dequantizes and multiplies 8 values
 * at a time instead of 32 holds a quarter of the block in registers (gfx1030: 138 -> <= 128
 * VGPRs, 7 -> 8 of 16 waves). */
static inline float8 clkv_q8p(const __global uchar *row, uint b, int t, int k, float *d, float *m) {
  float8 q0, q1, q2, q3;
  clkv_q32(row, b, t, &q0, &q1, &q2, &q3, d, m);
  return k == 0 ? q0 : k == 1 ? q1 : k == 2 ? q2 : q3;
}

/* Block b dequantized: four float8 of weights. */
static inline void clkv_deq32(const __global uchar *row, uint b, int t, float8 *w0, float8 *w1, float8 *w2,
                       float8 *w3) {
  float d, m;
  clkv_q32(row, b, t, w0, w1, w2, w3, &d, &m);
  *w0 = *w0 * d + m; *w1 = *w1 * d + m; *w2 = *w2 * d + m; *w3 = *w3 * d + m;
}

/* ---- int8 activations (the idea of llama.cpp's Q8_1): the mat-vec input quantized once per
 * 32-value block to char q with scale dx = max|x| / 127 and sx = dx * sum(q); a weight block's
 * dot product with it then runs in integers: d * dx * sum(qw * q) + m * sx, for weight =
 * d * qw + m. -DINT8=1: portable (short products, int sums); 2: x86's pmaddubsw/pmaddwd
 * through clang builtins where the compiler targets AVX2 (PoCL's CPU device), else as 1. ---- */

/* v rounded to the nearest integer (ties to even) for |v| < 2^22: adding 1.5 * 2^23 leaves
 * the integer in the float's low mantissa bits. Float adds only: PoCL's convert_int8_rte and
 * rint are long branch-free library sequences (~25 instructions for eight values). */
static inline int8 clkv_round8(float8 v) { return as_int8(v + 12582912.0f) - 0x4B400000; }

/* The 32 values x0..x3 quantized: the integers in q0..q3, returns (dx, sx). */
static inline float2 clkv_quant32_i(float8 x0, float8 x1, float8 x2, float8 x3, int8 *q0,
                                    int8 *q1, int8 *q2, int8 *q3) {
  const float8 a = fmax(fmax(fabs(x0), fabs(x1)), fmax(fabs(x2), fabs(x3)));
  const float4 a4 = fmax(a.lo, a.hi);
  const float2 a2 = fmax(a4.lo, a4.hi);
  const float amax = fmax(a2.x, a2.y), id = amax > 0.0f ? 127.0f / amax : 0.0f;
  *q0 = clkv_round8(x0 * id); *q1 = clkv_round8(x1 * id);
  *q2 = clkv_round8(x2 * id); *q3 = clkv_round8(x3 * id);
  const int8 s8 = *q0 + *q1 + *q2 + *q3;
  const int4 s4 = s8.lo + s8.hi;
  const int2 s2 = s4.lo + s4.hi;
  return (float2)(amax / 127.0f, amax / 127.0f * (float)(s2.x + s2.y));
}

/* Quantizes the 32 values x0..x3 to q (32 chars, 8-byte aligned) and returns (dx, sx). The
 * stores are char8 writes through a pointer: PoCL's vstore8 writes byte by byte. */
static inline float2 clkv_quant32_q8(float8 x0, float8 x1, float8 x2, float8 x3, __local char *q) {
  int8 q0, q1, q2, q3;
  const float2 r = clkv_quant32_i(x0, x1, x2, x3, &q0, &q1, &q2, &q3);
  __local char8 *q8 = (__local char8 *)q;
  q8[0] = convert_char8(q0); q8[1] = convert_char8(q1);
  q8[2] = convert_char8(q2); q8[3] = convert_char8(q3);
  return r;
}

/* The 32 lanes (elements 0-15 in the first char16, 16-31 in the second) that are 16 where bit
 * i of the 32-bit little-endian h is set, else 0: Q5's fifth bits, without variable shifts. */
static inline void clkv_hbits32(const __global uchar *h, uchar16 *lo, uchar16 *hi) {
  const uchar16 m = (uchar16)(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
  const uchar16 a = (uchar16)((uchar8)(h[0]), (uchar8)(h[1]));
  const uchar16 c = (uchar16)((uchar8)(h[2]), (uchar8)(h[3]));
  *lo = as_uchar16((a & m) != (uchar)0) & (uchar)16;
  *hi = as_uchar16((c & m) != (uchar)0) & (uchar)16;
}

/* Weight block b (type t, CLKV_INT8_TYPE) as 32 integers (wl: elements 0-15, wh: 16-31;
 * unsigned but for CLKV_INT8_SIGNED types) with its d and m: weight = d * q + m (Q4_0, Q5_0:
 * m = -8 d, -16 d, as the float path). */
static inline void clkv_iw32(const __global uchar *row, uint b, int t, char16 *wl, char16 *wh,
                             float *d, float *m) {
  if (t == GGML_T_Q8_0) {
    const __global uchar *p = row + b * 34;
    *d = clkv_ld_half(p, 0);
    *m = 0.0f;
    *wl = vload16(0, (const __global char *)(p + 2));
    *wh = vload16(1, (const __global char *)(p + 2));
  } else if (t == GGML_T_Q4_0 || t == GGML_T_Q4_1) {
    const __global uchar *p = row + b * (t == GGML_T_Q4_1 ? 20 : 18);
    const uchar16 raw = vload16(0, p + (t == GGML_T_Q4_1 ? 4 : 2));
    const float2 dm = t == GGML_T_Q4_1 ? clkv_ld_half2(p) : (float2)(clkv_ld_half(p, 0), 0.0f);
    *d = dm.x;
    *m = t == GGML_T_Q4_1 ? dm.y : -8.0f * dm.x;
    *wl = as_char16(raw & (uchar)15);
    *wh = as_char16(raw >> (uchar)4);
  } else { /* Q5_0, Q5_1 */
    const __global uchar *p = row + b * (t == GGML_T_Q5_1 ? 24 : 22);
    const __global uchar *h = p + (t == GGML_T_Q5_1 ? 4 : 2);
    const uchar16 raw = vload16(0, h + 4);
    uchar16 hl, hh;
    clkv_hbits32(h, &hl, &hh);
    const float2 dm = t == GGML_T_Q5_1 ? clkv_ld_half2(p) : (float2)(clkv_ld_half(p, 0), 0.0f);
    *d = dm.x;
    *m = t == GGML_T_Q5_1 ? dm.y : -16.0f * dm.x;
    *wl = as_char16((raw & (uchar)15) | hl);
    *wh = as_char16((raw >> (uchar)4) | hh);
  }
}

/* Prefill's int8 tiles: K-quant block b (Q4_K, Q5_K, Q6_K: sub-block b % 8 of super-block
 * b / 8) as 32 integers, as clkv_iw32: weight = d q + m for elements 0-15, d2 q + m for
 * 16-31. Q6_K: signed q, its two scales of 16, m = 0; Q4_K, Q5_K: d2 = d. */
static inline void clkv_iw32k(const __global uchar *row, uint b, int t, char16 *wl, char16 *wh,
                              float *d, float *d2, float *m) {
  const __global uchar *p = row + (b / 8) * clkv__wt_block_bytes(t);
  const uint j = b % 8;
  if (t == GGML_T_Q6_K) {
    const uint n = j / 4, k = j % 4;
    const __global uchar *ql = p + 64 * n + 32 * (k & 1), *qh = p + 128 + 32 * n;
    const __global char *sc = (const __global char *)(p + 192 + 8 * n + 2 * k);
    const uchar ls = (uchar)(4 * (k >> 1)), hs = (uchar)(2 * k);
    const uchar16 a = ((vload16(0, ql) >> ls) & (uchar)15) | (((vload16(0, qh) >> hs) & (uchar)3) << (uchar)4);
    const uchar16 c = ((vload16(1, ql) >> ls) & (uchar)15) | (((vload16(1, qh) >> hs) & (uchar)3) << (uchar)4);
    const float D = clkv_ld_half(p, 104);
    *wl = as_char16(a) - (char)32;
    *wh = as_char16(c) - (char)32;
    *d = D * (float)sc[0];
    *d2 = D * (float)sc[1];
    *m = 0.0f;
  } else { /* Q4_K, Q5_K */
    const int five = t == GGML_T_Q5_K;
    clkv_k45_scale(p, j, d, m);
    *d2 = *d;
    const __global uchar *qs = p + (five ? 48 : 16) + 32 * (j / 2);
    const uchar sh = (uchar)(4 * (j & 1));
    uchar16 a = (vload16(0, qs) >> sh) & (uchar)15, c = (vload16(1, qs) >> sh) & (uchar)15;
    if (five) {
      const __global uchar *qh = p + 16;
      const uchar hj = (uchar)j;
      a |= ((vload16(0, qh) >> hj) & (uchar)1) << (uchar)4;
      c |= ((vload16(1, qh) >> hj) & (uchar)1) << (uchar)4;
    }
    *wl = as_char16(a);
    *wh = as_char16(c);
  }
}

#if defined(INT8) && INT8 == 2 && defined(__AVX2__)
#define CLKV_INT8_X86 1
typedef char clkv_v32c __attribute__((ext_vector_type(32)));
typedef short clkv_v16s __attribute__((ext_vector_type(16)));
typedef int clkv_v8i __attribute__((ext_vector_type(8)));
/* two char16 as one 32-byte vector: a shuffle, not a union (a union went through memory) */
#define CLKV_CAT32(a, b) __builtin_shufflevector((a), (b), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, \
    12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31)
#endif

/* The x block as the dot wants it: xl, xh (elements 0-15, 16-31) of the 32 chars at q. */
static inline void clkv_ix32(const __local char *q, char16 *xl, char16 *xh) {
  *xl = ((const __local char16 *)q)[0]; /* 16-byte aligned: q is a block of the local xq */
  *xh = ((const __local char16 *)q)[1];
}

/* sum(qw * qx) of a weight block (clkv_iw32) and an x block (clkv_ix32) in eight int lanes
 * (their total is the block's dot product). t: whether qw is signed (CLKV_INT8_SIGNED). */
static inline int8 clkv_idot32(int t, char16 wl, char16 wh, char16 xl, char16 xh) {
#if defined(CLKV_INT8_X86)
  clkv_v32c w = CLKV_CAT32(wl, wh), x = CLKV_CAT32(xl, xh);
  if (CLKV_INT8_SIGNED(t)) { /* u8 x s8 products: |w| by x with w's sign */
    x = __builtin_ia32_psignb256(x, w);
    w = __builtin_ia32_psignb256(w, w); /* |w|; -128 stays 0x80, which is 128 unsigned */
  }
  const clkv_v16s p = __builtin_ia32_pmaddubsw256(w, x); /* |pairs| <= 2*128*127 */
  return as_int8(__builtin_ia32_pmaddwd256(p, (clkv_v16s)(1)));
#else
  const short16 p = convert_short16(wl) * convert_short16(xl) + convert_short16(wh) * convert_short16(xh);
  return convert_int8(p.even) + convert_int8(p.odd);
#endif
}

/* acc (float8) += block b of row wr (type t) times the x block (xl, xh) with scale and sum
 * xd = (dx, sx); off += the weight offset's share: the integer dot's one step, for the decode
 * mat-vec (x in local memory) and the fused step (x in global memory). */
#define CLKV_I8_STEP(wr, b, t, xl, xh, xd, acc, off)                                            \
  do {                                                                                        \
    char16 wl_, wh_;                                                                          \
    float d_;                                                                                 \
    float m_;                                                                                 \
    clkv_iw32((wr), (b), (t), &wl_, &wh_, &d_, &m_);                                          \
    (acc) += convert_float8(clkv_idot32((t), wl_, wh_, (xl), (xh))) * (d_ * (xd).x);          \
    if (!CLKV_INT8_SIGNED(t)) /* Q8_0's m is 0: no offset (the product stays otherwise) */    \
      (off) += m_ * (xd).y;                                                                   \
  } while (0)

/* RoPE of the pair (y0, y1) = elements (2i, 2i+1) of a head, at angle pos · inv_freq[i]:
 * the one rotation of both the mat-vec (matvec.cl) and the CLBlast (gemm.cl) QKV epilogues. */
static inline float2 clkv_rope_pair(float2 y, int pos, float inv_f) {
  float c;
  const float s = sincos((float)pos * inv_f, &c);
  return (float2)(y.x * c - y.y * s, y.x * s + y.y * c);
}

/* silu(g) · u: one SwiGLU output from its gate and up values, for both SwiGLU epilogues. */
static inline float clkv_silu_mul(float g, float u) { return g / (1.0f + exp(-g)) * u; }

/* gelu_tanh(g) · u = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) · u, the GeGLU output. */
static inline float clkv_gelu_mul(float g, float u) {
  return 0.5f * g * (1.0f + tanh(0.7978845608028654f * (g + 0.044715f * g * g * g))) * u;
}

/* The gated activation of epilogue e (CLKV__EPI_SWIGLU or CLKV__EPI_GEGLU). */
#define CLKV_GLU(e, g, u) ((e) == CLKV__EPI_GEGLU ? clkv_gelu_mul(g, u) : clkv_silu_mul(g, u))

/* KV cache geometry: head size, KV heads, tokens per block (the host passes all three),
 * and the precision KV_TYPE (kernels/contract.h): CLKV__KV_F16, CLKV__KV_Q8 (a half scale
 * per KV_QG values of a row) or CLKV__KV_Q4 (a half scale and offset per KV_QG values);
 * KV_QG = 32, or head_dim when that is smaller. */
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef N_KV
#define N_KV 1
#endif
#ifndef KV_BS
#define KV_BS 16
#endif
#ifndef KV_TYPE
#define KV_TYPE CLKV__KV_F16
#endif
#ifndef KV_QG
#define KV_QG 32
#endif

/* One block of one layer (K or V) is KV_BLOCK_BYTES contiguous bytes: rows (kv head, slot)
 * of HEAD_DIM values — F16: half; Q8: char q, value = q * d; Q4: value i of a row in the
 * low (even i) or high (odd i) nibble of byte i/2, value = nib * d + m — then, for Q8/Q4,
 * the half scales per row and group: Q8 [row][HEAD_DIM / KV_QG] d; Q4 [row][group] (d, m).
 * Blocks are numbered per layer: block b of layer l starts at byte
 * (l * n_blocks + b) * KV_BLOCK_BYTES. host/ops/ops.c clkv__kv_block_bytes mirrors this. */
#define KV_ROWS (N_KV * KV_BS)
#if KV_TYPE == CLKV__KV_F16
#define KV_ROW_QBYTES (HEAD_DIM * 2)
#define KV_ROW_SCALES 0
#elif KV_TYPE == CLKV__KV_Q8
#define KV_ROW_QBYTES HEAD_DIM
#define KV_ROW_SCALES (HEAD_DIM / KV_QG)
#else
#define KV_ROW_QBYTES (HEAD_DIM / 2)
#define KV_ROW_SCALES (2 * HEAD_DIM / KV_QG)
#endif
#define KV_BLOCK_BYTES (KV_ROWS * (KV_ROW_QBYTES + 2 * KV_ROW_SCALES))

/* Byte offset of physical block blk of the layer whose first block is layer_base. */
static inline size_t clkv_kv_block(uint layer_base, int blk) {
  return ((size_t)layer_base + (size_t)blk) * KV_BLOCK_BYTES;
}

/* Values d0 .. d0+3 (d0 % 4 == 0) of row (kvh, slot) of the block at byte offset base. */
static inline float4 clkv_kv_load4(const __global uchar *c, size_t base, uint kvh, uint slot, uint d0) {
  const uint row = kvh * KV_BS + slot;
#if KV_TYPE == CLKV__KV_F16
  return vload_half4(0, (const __global half *)(c + base) + (size_t)row * HEAD_DIM + d0);
#else
  const __global half *sp = (const __global half *)(c + base + KV_ROWS * KV_ROW_QBYTES);
#if KV_TYPE == CLKV__KV_Q8
  const float d = clkv_ld_half((const __global uchar *)sp, row * KV_ROW_SCALES + d0 / KV_QG);
  return convert_float4(vload4(0, (const __global char *)(c + base) + row * HEAD_DIM + d0)) * d;
#else
  const uint g = row * KV_ROW_SCALES + 2 * (d0 / KV_QG);
  const float d = clkv_ld_half((const __global uchar *)sp, g), m = clkv_ld_half((const __global uchar *)sp, g + 1);
  const uchar2 b = vload2(0, c + base + row * KV_ROW_QBYTES + d0 / 2);
  return convert_float4((uchar4)(b.x & 15, b.x >> 4, b.y & 15, b.y >> 4)) * d + m;
#endif
#endif
}

/* x rounded to the nearest value half holds (ties away from zero; normal range), so that
 * writer and reader use the same scale and offset. */
static inline float clkv_round_half(float x) {
  return as_float((as_uint(clamp(x, -65504.0f, 65504.0f)) + 0x1000u) & 0xffffe000u);
}

/* Stores values d, d+1 (d even) of row (kvh, slot) of the block at byte offset base. For
 * Q8/Q4, lo and hi are the smallest and largest value of their group (KV_QG values); the
 * pair that starts a group also stores the group's scale (and Q4's offset). */
static inline void clkv_kv_store2(__global uchar *c, size_t base, uint kvh, uint slot, uint d, float y0,
                           float y1, float lo, float hi) {
  const uint row = kvh * KV_BS + slot;
#if KV_TYPE == CLKV__KV_F16
  vstore_half2_rte((float2)(y0, y1), 0, (__global half *)(c + base) + (size_t)row * HEAD_DIM + d);
#else
  __global half *sp = (__global half *)(c + base + KV_ROWS * KV_ROW_QBYTES);
  const uint g = row * KV_ROW_SCALES + (KV_TYPE == CLKV__KV_Q8 ? 1 : 2) * (d / KV_QG);
#if KV_TYPE == CLKV__KV_Q8 /* symmetric: q in -127..127, value q * sc */
  const float sc = clkv_round_half(fmax(-lo, hi) / 127.0f), m = 0.0f;
  const int qmin = -127, qmax = 127;
#else /* asymmetric: q in 0..15, value q * sc + m */
  const float sc = clkv_round_half((hi - lo) / 15.0f), m = clkv_round_half(lo);
  const int qmin = 0, qmax = 15;
  if (d % KV_QG == 0) vstore_half_rte(m, g + 1, sp);
#endif
  if (d % KV_QG == 0) vstore_half_rte(sc, g, sp);
  const int q0 = sc > 0.0f ? clamp((int)rint((y0 - m) / sc), qmin, qmax) : 0;
  const int q1 = sc > 0.0f ? clamp((int)rint((y1 - m) / sc), qmin, qmax) : 0;
#if KV_TYPE == CLKV__KV_Q8
  vstore2((char2)((char)q0, (char)q1), 0, (__global char *)(c + base) + row * HEAD_DIM + d);
#else
  c[base + row * KV_ROW_QBYTES + d / 2] = (uchar)(q0 | (q1 << 4));
#endif
#endif
}

/* ---- the finish of one head of an unfused q/k/v projection (kernels/norm.cl for every token
 * of a batch, kernels/fused.cl for the decode step): + bias (b: the head's rows of q, k, v
 * concatenated), RMSNorm of a q or k head (weights w: qn or kn), RoPE of q and k in adjacent
 * pairs, then k and v into the paged cache (a Q8/Q4 group's range from the head). v: the
 * head's HEAD_DIM values; kr: its row within q, k or v; bt: the sequence's block table. ---- */
#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif
#ifndef HAS_QK_NORM
#define HAS_QK_NORM 0
#endif

static inline void clkv_head_finish(__global float *v, int is_q, int is_k, uint kr,
                             __global const float *b, __global const float *w, float eps,
                             __global const float *inv_freq, __global uchar *kc,
                             __global uchar *vc, __global const int *bt, int pos,
                             uint layer_base) {
#if HAS_BIAS
  for (uint i = 0; i < HEAD_DIM; i++) v[i] += b[i];
#endif
#if HAS_QK_NORM
  if (is_q || is_k) {
    float ss = 0.0f;
    for (uint i = 0; i < HEAD_DIM; i++) ss += v[i] * v[i];
    const float s = rsqrt(ss / (float)HEAD_DIM + eps);
    for (uint i = 0; i < HEAD_DIM; i++) v[i] = v[i] * s * w[i];
  }
#endif
  if (is_q || is_k)
    for (uint i = 0; i < HEAD_DIM; i += 2) {
      const float2 y = clkv_rope_pair((float2)(v[i], v[i + 1]), pos, inv_freq[i / 2]);
      v[i] = y.x;
      v[i + 1] = y.y;
    }
  if (is_q) return;
  const size_t base = clkv_kv_block(layer_base, bt[pos / KV_BS]);
  for (uint g = 0; g < HEAD_DIM; g += KV_QG) {
    float lo = v[g], hi = v[g];
    for (uint i = g + 1; i < g + KV_QG; i++) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    for (uint i = g; i < g + KV_QG; i += 2)
      clkv_kv_store2(is_k ? kc : vc, base, kr / HEAD_DIM, pos % KV_BS, i, v[i], v[i + 1], lo, hi);
  }
}

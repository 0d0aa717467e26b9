/* quant.c — half/bfloat16 conversions (round to nearest even) and row encode/decode of the
 * GGML block formats: decode F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 Q2_K..Q6_K IQ4_NL
 * IQ4_XS, encode F32 F16 BF16 Q8_0 Q4_0 Q4_1 as the reference quantizers do (the other
 * encoders are in quant_k.c). */
#include "format/quant_int.h"

#include <math.h>
#include <string.h>

/* ---- scalar conversions ---- */
static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float clkv__fp16_to_fp32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (mant << 13)); /* inf / nan */
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    uint32_t e = 113; /* subnormal: normalize, 2^-14 is biased exponent 113 in fp32 */
    while (!(mant & 0x400)) {
      mant <<= 1;
      e--;
    }
    return bits_f32(sign | (e << 23) | ((mant & 0x3ff) << 13));
  }
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t clkv__fp32_to_fp16(float f) {
  uint32_t x = f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff)); /* quiet nan */
  if (ax >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* inf, or rounds up past 65504 */
  uint32_t e = ax >> 23;
  if (e < 113) { /* result is subnormal (or zero): units of 2^-24 */
    uint32_t shift = 126 - e;
    if (shift > 24) return sign; /* below half of the smallest subnormal */
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t h = ((e - 112) << 10) | ((ax >> 13) & 0x3ff);
  uint32_t rem = ax & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry moves into the exponent */
  return (uint16_t)(sign | h);
}

float clkv__bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t clkv__fp32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
  return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- little helpers over block bytes ---- */
static float half_at(const uint8_t *p) { return clkv__fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8))); }
static void put_half(uint8_t *p, float f) {
  uint16_t h = clkv__fp32_to_fp16(f);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}
static uint32_t u32_at(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- 32-element blocks ---- */
/* Q8_0 {f16 d; i8 qs[32]}, Q8_1 {f16 d; f16 s; i8 qs[32]}: x = d*q */
static void dq_q8(const uint8_t *b, float *y, int qs_at) {
  float d = half_at(b);
  for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[qs_at + j];
}

/* Q4_0 {f16 d; u8 qs[16]}: element j low nibble of qs[j], j+16 high nibble; x = d*(q-8) */
static void dq_q4_0(const uint8_t *b, float *y) {
  float d = half_at(b);
  for (int j = 0; j < 16; j++) {
    y[j] = d * (float)((b[2 + j] & 0xf) - 8);
    y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
  }
}

/* Q4_1 {f16 d; f16 m; u8 qs[16]}: x = d*q + m */
static void dq_q4_1(const uint8_t *b, float *y) {
  float d = half_at(b), m = half_at(b + 2);
  for (int j = 0; j < 16; j++) {
    y[j] = d * (float)(b[4 + j] & 0xf) + m;
    y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
  }
}

/* Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: fifth bit j of qh; x = d*(q-16).
 * Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: x = d*q + m. */
static void dq_q5(const uint8_t *b, float *y, int has_min) {
  float d = half_at(b), m = has_min ? half_at(b + 2) : -16.0f * d;
  const uint8_t *p = b + (has_min ? 4 : 2);
  uint32_t qh = u32_at(p);
  const uint8_t *qs = p + 4;
  for (int j = 0; j < 16; j++) {
    int lo = (qs[j] & 0xf) | (int)(((qh >> j) & 1) << 4);
    int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    y[j] = d * (float)lo + m;
    y[j + 16] = d * (float)hi + m;
  }
}

/* ---- 256-element K-quant super-blocks ---- */
/* The 6-bit scale and min of sub-block j, packed in 12 bytes (Q4_K, Q5_K). */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

/* Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]};
 * Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}. */
static void dq_q45_k(const uint8_t *b, float *y, int five) {
  float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
  for (int g = 0; g < 4; g++) { /* 64 elements: low nibbles then high nibbles of 32 bytes */
    for (int h = 0; h < 2; h++) {
      uint8_t sc, mn;
      scale_min_k4(2 * g + h, scales, &sc, &mn);
      float dl = d * sc, ml = dmin * mn;
      for (int l = 0; l < 32; l++) {
        int q = h ? qs[l] >> 4 : qs[l] & 0xf;
        if (five && (qh[l] >> (2 * g + h) & 1)) q += 16;
        *y++ = dl * (float)q - ml;
      }
    }
    qs += 32;
  }
}

/* Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}. */
static void dq_q6_k(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t *sc = (const int8_t *)(b + 192);
  float d = half_at(b + 208);
  for (int n = 0; n < 2; n++) {
    for (int l = 0; l < 32; l++) {
      int is = l / 16;
      int q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) - 32;
      int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
      int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * (float)q1;
      y[l + 32] = d * sc[is + 2] * (float)q2;
      y[l + 64] = d * sc[is + 4] * (float)q3;
      y[l + 96] = d * sc[is + 6] * (float)q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

/* Q2_K {u8 scales[16] (low nibble scale, high nibble min); u8 qs[64]; f16 d; f16 dmin}. */
static void dq_q2_k(const uint8_t *b, float *y) {
  const uint8_t *scales = b, *q = b + 16;
  float d = half_at(b + 80), dmin = half_at(b + 82);
  int is = 0;
  for (int n = 0; n < 2; n++) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; half++) {
        uint8_t s = scales[is++];
        float dl = d * (float)(s & 0xf), ml = dmin * (float)(s >> 4);
        for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

/* Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 6-bit scales); f16 d}. */
static void dq_q3_k(const uint8_t *b, float *y) {
  const uint8_t *hm = b, *q = b + 32, *s = b + 96;
  float d = half_at(b + 108);
  int8_t scales[16];
  for (int j = 0; j < 16; j++) {
    int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = (int8_t)((lo | (hi << 4)) - 32);
  }
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 2; n++) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; half++) {
        float dl = d * (float)scales[is++];
        for (int l = 16 * half; l < 16 * half + 16; l++)
          *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      }
      m = (uint8_t)(m << 1);
    }
    q += 32;
  }
}

/* IQ4_NL {f16 d; u8 qs[16]}: x = d * k_iq4[nibble] (element j low nibble of qs[j], j+16
 * high); IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: 8 groups of 32 like
 * IQ4_NL blocks at scale d * (ls - 32), ls 4 bits from scales_l and 2 from scales_h. */
static const float k_iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
static void dq_iq4(const uint8_t *qs, float d, float *y) {
  for (int j = 0; j < 16; j++) {
    y[j] = d * k_iq4[qs[j] & 0xf];
    y[j + 16] = d * k_iq4[qs[j] >> 4];
  }
}
static void dq_iq4_nl(const uint8_t *b, float *y) { dq_iq4(b + 2, half_at(b), y); }
static void dq_iq4_xs(const uint8_t *b, float *y) {
  const float d = half_at(b);
  const unsigned sh = b[2] | (unsigned)b[3] << 8;
  for (int j = 0; j < 8; j++) {
    const int ls = ((b[4 + j / 2] >> (4 * (j % 2))) & 0xf) | (int)(((sh >> (2 * j)) & 3) << 4);
    dq_iq4(b + 8 + 16 * j, d * (float)(ls - 32), y + 32 * j);
  }
}

/* ---- decoders by type: one block of block_size elements each ---- */
typedef void (*block_decoder)(const uint8_t *b, float *y);

static void dq_f32(const uint8_t *b, float *y) { memcpy(y, b, 4); }
static void dq_f16(const uint8_t *b, float *y) { *y = half_at(b); }
static void dq_bf16(const uint8_t *b, float *y) { *y = clkv__bf16_to_fp32((uint16_t)(b[0] | (b[1] << 8))); }
static void dq_q8_0(const uint8_t *b, float *y) { dq_q8(b, y, 2); }
static void dq_q8_1(const uint8_t *b, float *y) { dq_q8(b, y, 4); }
static void dq_q5_0(const uint8_t *b, float *y) { dq_q5(b, y, 0); }
static void dq_q5_1(const uint8_t *b, float *y) { dq_q5(b, y, 1); }
static void dq_q4_k(const uint8_t *b, float *y) { dq_q45_k(b, y, 0); }
static void dq_q5_k(const uint8_t *b, float *y) { dq_q45_k(b, y, 1); }

/* Every runnable type (kernels/contract.h) needs its decoder here. */
static const block_decoder k_decoders[GGML_T_COUNT] = {
    [GGML_T_F32] = dq_f32,   [GGML_T_F16] = dq_f16,   [GGML_T_BF16] = dq_bf16,
    [GGML_T_Q4_0] = dq_q4_0, [GGML_T_Q4_1] = dq_q4_1, [GGML_T_Q5_0] = dq_q5_0,
    [GGML_T_Q5_1] = dq_q5_1, [GGML_T_Q8_0] = dq_q8_0, [GGML_T_Q8_1] = dq_q8_1,
    [GGML_T_Q2_K] = dq_q2_k, [GGML_T_Q3_K] = dq_q3_k, [GGML_T_Q4_K] = dq_q4_k,
    [GGML_T_Q5_K] = dq_q5_k, [GGML_T_Q6_K] = dq_q6_k, [GGML_T_IQ4_NL] = dq_iq4_nl,
    [GGML_T_IQ4_XS] = dq_iq4_xs,
};

clkv_status clkv__dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n) {
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(type);
  if (!ti || !k_decoders[type]) return CLKV_ERR_UNSUPPORTED;
  if (n % ti->block_size || (n && (!src || !dst))) return CLKV_ERR_INVALID_ARG;
  const uint8_t *b = src;
  for (uint64_t i = 0; i < n / ti->block_size; i++, b += ti->type_size, dst += ti->block_size)
    k_decoders[type](b, dst);
  return CLKV_OK;
}

/* ---- encoders ---- */
/* (int8_t)(v) of the reference, clamped first so no input (nan, inf) is undefined. */
static int clamp_q(float v, int hi) {
  if (!(v >= 0.0f)) return 0;
  if (v >= (float)hi) return hi;
  return (int)v;
}

static void q_q8_0(const float *x, uint8_t *b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void q_q4_0(const float *x, uint8_t *b) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; j++)
    if (fabsf(x[j]) > amax) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 16; j++) {
    int lo = clamp_q(x[j] * id + 8.5f, 15), hi = clamp_q(x[j + 16] * id + 8.5f, 15);
    b[2 + j] = (uint8_t)(lo | (hi << 4));
  }
}

static void q_q4_1(const float *x, uint8_t *b) {
  float min = x[0], max = x[0];
  for (int j = 1; j < 32; j++) {
    min = fminf(min, x[j]);
    max = fmaxf(max, x[j]);
  }
  float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, min);
  for (int j = 0; j < 16; j++) {
    int lo = clamp_q((x[j] - min) * id + 0.5f, 15), hi = clamp_q((x[j + 16] - min) * id + 0.5f, 15);
    b[4 + j] = (uint8_t)(lo | (hi << 4));
  }
}

/* ---- encoders by type ---- */
typedef void (*block_encoder)(const float *x, uint8_t *b);

static void q_f32(const float *x, uint8_t *b) { memcpy(b, x, 4); }
static void q_f16(const float *x, uint8_t *b) { put_half(b, *x); }
static void q_bf16(const float *x, uint8_t *b) {
  uint16_t h = clkv__fp32_to_bf16(*x);
  b[0] = (uint8_t)h;
  b[1] = (uint8_t)(h >> 8);
}

/* Every runnable type needs its encoder here (the kernel tests and the benchmarks make their
 * weights with it). */
static const block_encoder k_encoders[GGML_T_COUNT] = {
    [GGML_T_F32] = q_f32,   [GGML_T_F16] = q_f16,   [GGML_T_BF16] = q_bf16,
    [GGML_T_Q4_0] = q_q4_0, [GGML_T_Q4_1] = q_q4_1, [GGML_T_Q8_0] = q_q8_0,
    [GGML_T_Q5_0] = clkv__enc_q5_0, [GGML_T_Q5_1] = clkv__enc_q5_1,
    [GGML_T_Q2_K] = clkv__enc_q2_k, [GGML_T_Q3_K] = clkv__enc_q3_k,
    [GGML_T_Q4_K] = clkv__enc_q4_k, [GGML_T_Q5_K] = clkv__enc_q5_k,
    [GGML_T_Q6_K] = clkv__enc_q6_k, [GGML_T_IQ4_NL] = clkv__enc_iq4_nl,
    [GGML_T_IQ4_XS] = clkv__enc_iq4_xs,
};

size_t clkv__quantize_row(uint32_t type, const float *src, void *dst, uint64_t n) {
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(type);
  if (!ti || !k_encoders[type] || n % ti->block_size || (n && (!src || !dst))) return 0;
  uint8_t *b = dst;
  const uint64_t nb = n / ti->block_size;
  for (uint64_t i = 0; i < nb; i++) k_encoders[type](src + i * ti->block_size, b + i * ti->type_size);
  return (size_t)(nb * ti->type_size);
}

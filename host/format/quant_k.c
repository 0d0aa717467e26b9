/* quant_k.c — encoders of the 5-bit, K-quant and IQ4 block formats (Q5_0 Q5_1 Q2_K..Q6_K
 * IQ4_NL IQ4_XS): per group of 16 or 32 values a scale (and min) fitted by least squares over
 * a few candidate starts, then the group scales themselves quantized into the block's
 * super-block scale. Layouts are those of host/format/quant.c's decoders. */
#include "format/quant_int.h"

#include <math.h>
#include <string.h>

static void put_half(uint8_t *p, float f) {
  uint16_t h = clkv__fp32_to_fp16(f);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}
static float round_half(float f) { return clkv__fp16_to_fp32(clkv__fp32_to_fp16(f)); }

/* nearest integer to v clamped to [lo, hi]; nan gives lo. */
static int qclamp(float v, int lo, int hi) {
  if (!(v >= (float)lo)) return lo;
  if (v >= (float)hi) return hi;
  return (int)lrintf(v);
}

/* ---- fitting one group ---- */
/* Asymmetric: x ≈ s*q - mn, q in [0, qmax], s >= 0, mn >= 0 (the offset is never positive,
 * as K-quant mins are stored unsigned). Tries starts around (max - min) / qmax, refits s and
 * mn by least squares for each rounding, keeps the smallest squared error. */
static void fit_asym(const float *x, int n, int qmax, float *s_out, float *mn_out) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
  *s_out = 0.0f;
  *mn_out = -lo;
  if (!(hi > lo)) return;
  float best = INFINITY;
  for (int step = -4; step <= 8; step++) {
    const float is = ((float)qmax + 0.1f * (float)step) / (hi - lo);
    float sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; i++) {
      const float q = (float)qclamp((x[i] - lo) * is, 0, qmax);
      sq += q, sqq += q * q, sx += x[i], sqx += q * x[i];
    }
    const float det = (float)n * sqq - sq * sq;
    if (!(det > 0.0f)) continue;
    float s = ((float)n * sqx - sq * sx) / det, o = (sqq * sx - sq * sqx) / det;
    if (o > 0.0f) o = 0.0f, s = sqx / sqq;
    if (!(s > 0.0f)) continue;
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float e = s * (float)qclamp((x[i] - o) / s, 0, qmax) + o - x[i];
      err += e * e;
    }
    if (err < best) best = err, *s_out = s, *mn_out = -o;
  }
  if (best == INFINITY) *s_out = (hi - lo) / (float)qmax;
}

/* Symmetric: x ≈ s*q, q in [-nmax, nmax-1]; s may be negative so the largest magnitude can
 * use the wider negative end. Starts from max/-nmax and max/(nmax-1), refits by least squares. */
static float fit_sym(const float *x, int n, int nmax) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; i++)
    if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
  if (!(amax > 0.0f)) return 0.0f;
  float best = INFINITY, best_s = max / (float)-nmax;
  for (int step = -6; step <= 6; step++) {
    const float is = ((float)-nmax + 0.1f * (float)step) / max;
    float sqq = 0, sqx = 0;
    for (int i = 0; i < n; i++) {
      const float q = (float)qclamp(x[i] * is, -nmax, nmax - 1);
      sqq += q * q, sqx += q * x[i];
    }
    if (!(sqq > 0.0f)) continue;
    const float s = sqx / sqq;
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float e = s * (float)qclamp(x[i] / s, -nmax, nmax - 1) - x[i];
      err += e * e;
    }
    if (err < best) best = err, best_s = s;
  }
  return best_s;
}

/* ---- 32-element blocks ---- */
/* Q5_0 {f16 d; u8 qh[4]; u8 qs[16]} and Q5_1 {f16 d; f16 m; ...}: as the reference: Q5_0 maps
 * the value of largest magnitude to -16, Q5_1 spans min..max in 31 steps. */
static void enc_q5(const float *x, uint8_t *b, int has_min) {
  float d, m, id;
  if (has_min) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) lo = fminf(lo, x[j]), hi = fmaxf(hi, x[j]);
    d = (hi - lo) / 31.0f, m = lo;
    put_half(b, d);
    put_half(b + 2, m);
  } else {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
      if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    d = max / -16.0f, m = 0.0f;
    put_half(b, d);
  }
  id = d != 0.0f ? 1.0f / d : 0.0f;
  uint8_t *qh = b + (has_min ? 4 : 2), *qs = qh + 4;
  uint32_t h = 0;
  for (int j = 0; j < 16; j++) {
    const float add = has_min ? 0.5f : 16.5f;
    const int lo = qclamp(floorf((x[j] - m) * id + add), 0, 31);
    const int hi = qclamp(floorf((x[j + 16] - m) * id + add), 0, 31);
    qs[j] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
    h |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
  }
  for (int i = 0; i < 4; i++) qh[i] = (uint8_t)(h >> (8 * i));
}
void clkv__enc_q5_0(const float *x, uint8_t *b) { enc_q5(x, b, 0); }
void clkv__enc_q5_1(const float *x, uint8_t *b) { enc_q5(x, b, 1); }

/* ---- IQ4: the 16 non-linear values ---- */
static const float k_iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static int iq4_nearest(float v) {
  int best = 0;
  for (int k = 1; k < 16; k++)
    if (fabsf(k_iq4[k] - v) < fabsf(k_iq4[best] - v)) best = k;
  return best;
}

/* The scale of 32 values for the IQ4 table: the largest magnitude at -127 or 113, then
 * least squares on the chosen indices; returns the scale with the smallest error. */
static float iq4_fit(const float *x) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < 32; i++)
    if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
  if (!(amax > 0.0f)) return 0.0f;
  float best = INFINITY, best_s = max / -127.0f;
  for (int step = -8; step <= 8; step++) {
    const float s0 = max / (-127.0f + 2.0f * (float)step);
    float svv = 0, svx = 0;
    for (int i = 0; i < 32; i++) {
      const float v = k_iq4[iq4_nearest(x[i] / s0)];
      svv += v * v, svx += v * x[i];
    }
    const float s = svx / svv;
    float err = 0;
    for (int i = 0; i < 32; i++) {
      const float e = s * k_iq4[iq4_nearest(x[i] / s)] - x[i];
      err += e * e;
    }
    if (err < best) best = err, best_s = s;
  }
  return best_s;
}

/* 32 indices at scale s into 16 bytes: element j low nibble of byte j, j+16 high nibble. */
static void iq4_pack(const float *x, float s, uint8_t *qs) {
  const float is = s != 0.0f ? 1.0f / s : 0.0f;
  for (int j = 0; j < 16; j++)
    qs[j] = (uint8_t)(iq4_nearest(x[j] * is) | (iq4_nearest(x[j + 16] * is) << 4));
}

/* IQ4_NL {f16 d; u8 qs[16]} */
void clkv__enc_iq4_nl(const float *x, uint8_t *b) {
  const float d = round_half(iq4_fit(x));
  put_half(b, d);
  iq4_pack(x, d, b + 2);
}

/* IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: 6-bit scales (ls - 32). */
void clkv__enc_iq4_xs(const float *x, uint8_t *b) {
  float s[8], smax = 0.0f, amax = 0.0f;
  for (int j = 0; j < 8; j++) {
    s[j] = iq4_fit(x + 32 * j);
    if (fabsf(s[j]) > amax) amax = fabsf(s[j]), smax = s[j];
  }
  const float d = round_half(smax / -32.0f), id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  uint16_t sh = 0;
  memset(b + 4, 0, 4);
  for (int j = 0; j < 8; j++) {
    const int ls = qclamp(s[j] * id, -32, 31) + 32;
    b[4 + j / 2] |= (uint8_t)((ls & 15) << (4 * (j % 2)));
    sh |= (uint16_t)((ls >> 4) << (2 * j));
    iq4_pack(x + 32 * j, d * (float)(ls - 32), b + 8 + 16 * j);
  }
  b[2] = (uint8_t)sh;
  b[3] = (uint8_t)(sh >> 8);
}

/* ---- 256-element K-quant super-blocks ---- */
/* Group scales (and mins) to integers under one fp16 super-scale: d = max / top. */
static float super_scale(const float *s, int n, float top, uint8_t *p) {
  float max = 0.0f;
  for (int i = 0; i < n; i++) max = fmaxf(max, s[i]);
  const float d = round_half(max / top);
  put_half(p, d);
  return d;
}

/* Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}, Q5_K {...; u8 qh[32]; u8 qs[128]}:
 * 8 groups of 32, 6-bit scale and min each (packing: scale_min_k4 in quant.c). */
static void enc_k45(const float *x, uint8_t *b, int five) {
  const int qmax = five ? 31 : 15;
  float s[8], mn[8];
  for (int j = 0; j < 8; j++) fit_asym(x + 32 * j, 32, qmax, &s[j], &mn[j]);
  const float d = super_scale(s, 8, 63.0f, b), dm = super_scale(mn, 8, 63.0f, b + 2);
  uint8_t *sc = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
  memset(sc, 0, 12);
  memset(b + 16, 0, five ? 160 : 128);
  for (int j = 0; j < 8; j++) {
    const int ls = d > 0.0f ? qclamp(s[j] / d, 0, 63) : 0;
    const int lm = dm > 0.0f ? qclamp(mn[j] / dm, 0, 63) : 0;
    if (j < 4) {
      sc[j] = (uint8_t)ls;
      sc[j + 4] = (uint8_t)lm;
    } else {
      sc[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
      sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
      sc[j] |= (uint8_t)((lm >> 4) << 6);
    }
    const float ds = d * (float)ls, off = dm * (float)lm;
    for (int l = 0; l < 32; l++) {
      const int q = ds > 0.0f ? qclamp((x[32 * j + l] + off) / ds, 0, qmax) : 0;
      qs[32 * (j / 2) + l] |= (uint8_t)((q & 15) << (4 * (j & 1)));
      if (five) qh[l] |= (uint8_t)((q >> 4) << j);
    }
  }
}
void clkv__enc_q4_k(const float *x, uint8_t *b) { enc_k45(x, b, 0); }
void clkv__enc_q5_k(const float *x, uint8_t *b) { enc_k45(x, b, 1); }

/* The signed scales of the 16 groups of 16 (symmetric, q in [-nmax, nmax-1]) and their
 * fp16 super-scale d such that s[g] ≈ d * ls[g], ls in [lo, hi]. */
static float group_scales16(const float *x, int nmax, int lo, int hi, int top_neg, int *ls,
                            uint8_t *dp) {
  float s[16], amax = 0.0f, max = 0.0f;
  for (int g = 0; g < 16; g++) {
    s[g] = fit_sym(x + 16 * g, 16, nmax);
    if (fabsf(s[g]) > amax) amax = fabsf(s[g]), max = s[g];
  }
  const float d = round_half(top_neg ? max / (float)lo : amax / (float)hi);
  put_half(dp, d);
  for (int g = 0; g < 16; g++) ls[g] = d != 0.0f ? qclamp(s[g] / d, lo, hi) : 0;
  return d;
}

/* q of element e in [-nmax, nmax-1] at group scale d*ls (0 where the scale is 0). */
static int q_sym(float x, float ds, int nmax) {
  return ds != 0.0f ? qclamp(x / ds, -nmax, nmax - 1) : 0;
}

/* Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: q-32 in 6 bits, element e of half n
 * (e / 128), quarter k ((e % 128) / 32), lane l: low 4 bits in ql[64n + 32(k&1) + l] (high
 * nibble for k >= 2), top 2 bits in qh[32n + l] at bit 2k; scale e / 16. */
void clkv__enc_q6_k(const float *x, uint8_t *b) {
  int ls[16];
  const float d = group_scales16(x, 32, -127, 127, 0, ls, b + 208);
  memset(b, 0, 192);
  for (int g = 0; g < 16; g++) b[192 + g] = (uint8_t)(int8_t)ls[g];
  for (int e = 0; e < 256; e++) {
    const int n = e / 128, k = (e % 128) / 32, l = e % 32;
    const int u = q_sym(x[e], d * (float)ls[e / 16], 32) + 32;
    b[64 * n + 32 * (k & 1) + l] |= (uint8_t)((u & 15) << (4 * (k >> 1)));
    b[128 + 32 * n + l] |= (uint8_t)((u >> 4) << (2 * k));
  }
}

/* Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: q+4 in 3 bits, element e of half n,
 * shift s ((e % 128) / 32), lane l: 2 bits in qs[32n + l] at bit 2s, the third in hmask[l] at
 * bit 4n + s; scale e / 16 as 6 bits (ls + 32): low 4 in scales[i] (i < 8) or the high nibble
 * of scales[i - 8], top 2 in scales[8 + i % 4] at bit 2(i / 4). */
void clkv__enc_q3_k(const float *x, uint8_t *b) {
  int ls[16];
  const float d = group_scales16(x, 4, -32, 31, 1, ls, b + 108);
  memset(b, 0, 108);
  for (int i = 0; i < 16; i++) {
    const int v = ls[i] + 32;
    b[96 + i % 8] |= (uint8_t)((v & 15) << (i < 8 ? 0 : 4));
    b[96 + 8 + i % 4] |= (uint8_t)((v >> 4) << (2 * (i / 4)));
  }
  for (int e = 0; e < 256; e++) {
    const int n = e / 128, s = (e % 128) / 32, l = e % 32;
    const int u = q_sym(x[e], d * (float)ls[e / 16], 4) + 4;
    b[32 + 32 * n + l] |= (uint8_t)((u & 3) << (2 * s));
    b[l] |= (uint8_t)((u >> 2) << (4 * n + s));
  }
}

/* Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: q in 2 bits at qs[32n + l] bit 2s (as
 * Q3_K); group e / 16 has a 4-bit scale (low nibble) and min (high nibble). */
void clkv__enc_q2_k(const float *x, uint8_t *b) {
  float s[16], mn[16];
  for (int g = 0; g < 16; g++) fit_asym(x + 16 * g, 16, 3, &s[g], &mn[g]);
  const float d = super_scale(s, 16, 15.0f, b + 80), dm = super_scale(mn, 16, 15.0f, b + 82);
  memset(b, 0, 80);
  for (int g = 0; g < 16; g++) {
    const int ls = d > 0.0f ? qclamp(s[g] / d, 0, 15) : 0;
    const int lm = dm > 0.0f ? qclamp(mn[g] / dm, 0, 15) : 0;
    b[g] = (uint8_t)(ls | (lm << 4));
    const float ds = d * (float)ls, off = dm * (float)lm;
    for (int i = 16 * g; i < 16 * g + 16; i++) {
      const int n = i / 128, sh = (i % 128) / 32, l = i % 32;
      const int q = ds > 0.0f ? qclamp((x[i] + off) / ds, 0, 3) : 0;
      b[16 + 32 * n + l] |= (uint8_t)(q << (2 * sh));
    }
  }
}

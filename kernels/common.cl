/* common.cl — prepended to every clkv program: type ids, weight block layouts and the
 * dequantization of one 32-element block into two float16 vectors. OpenCL C 1.2; needs
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

/* Dequantizes block b of a row of type t: elements 0..15 into *lo, 16..31 into *hi.
 * Layouts: Q8_0 {half d; char q[32]} → d*q; Q4_0 {half d; uchar q[16]} → d*(nib-8);
 * Q4_1 {half d, m; uchar q[16]} → d*nib+m; element j is the low nibble of q[j], element
 * j+16 the high nibble. */
inline void clkv_dequant32(const __global uchar *row, uint b, int t, float16 *lo, float16 *hi) {
  if (t == T_F32) {
    const __global float *p = (const __global float *)row + b * 32;
    *lo = vload16(0, p);
    *hi = vload16(1, p);
  } else if (t == T_F16) {
    const __global half *p = (const __global half *)row + b * 32;
    *lo = vload_half16(0, p);
    *hi = vload_half16(1, p);
  } else if (t == T_BF16) {
    const __global ushort *p = (const __global ushort *)row + b * 32;
    *lo = as_float16(convert_uint16(vload16(0, p)) << 16);
    *hi = as_float16(convert_uint16(vload16(1, p)) << 16);
  } else if (t == T_Q8_0) {
    const __global uchar *p = row + b * 34;
    float d = vload_half(0, (const __global half *)p);
    *lo = convert_float16(as_char16(vload16(0, p + 2))) * d;
    *hi = convert_float16(as_char16(vload16(1, p + 2))) * d;
  } else if (t == T_Q4_0) {
    const __global uchar *p = row + b * 18;
    float d = vload_half(0, (const __global half *)p);
    uchar16 q = vload16(0, p + 2);
    *lo = (convert_float16(q & (uchar)15) - 8.0f) * d;
    *hi = (convert_float16(q >> (uchar)4) - 8.0f) * d;
  } else { /* T_Q4_1 */
    const __global uchar *p = row + b * 20;
    float d = vload_half(0, (const __global half *)p);
    float m = vload_half(1, (const __global half *)p);
    uchar16 q = vload16(0, p + 4);
    *lo = convert_float16(q & (uchar)15) * d + m;
    *hi = convert_float16(q >> (uchar)4) * d + m;
  }
}

inline float clkv_hsum16(float16 v) {
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}

/* Location of a token's K (or V) row for one kv head inside the paged cache.
 * Cache layout: [layer][block][kv_head][BS tokens][head_dim], blocks numbered per layer. */
inline size_t clkv_kv_index(uint layer_base, uint phys_block, uint kvh, uint n_kv, uint slot,
                            uint bs, uint hd) {
  return ((((size_t)layer_base + phys_block) * n_kv + kvh) * bs + slot) * hd;
}

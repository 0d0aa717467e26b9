/* gemm.cl — the kernels around a CLBlast GEMM for prefill (host/ops/gemm.c): RMSNorm of the
 * input rows, dequantization of a row tile of the weights, and the epilogue of
 * kernels/matvec.cl (EPI, kernels/contract.h: STORE, ADD, QKV: RoPE + K/V into the paged
 * cache, SWIGLU over interleaved gate/up rows) applied to the GEMM's output T = norm(X) · Wᵀ.
 * GEMM_HALF 1: the GEMM operands and T are F16 (CLBlastHgemm), else F32. Halves are only
 * stored and loaded (vstore_half/vload_half), so this file needs no cl_khr_fp16. */
#ifndef WTYPE
#define WTYPE GGML_T_Q4_1
#endif
#ifndef EPI
#define EPI CLKV__EPI_STORE
#endif
#ifndef NORM
#define NORM 0
#endif
#ifndef GEMM_HALF
#define GEMM_HALF 0
#endif
#ifndef NORM_WG
#define NORM_WG 32
#endif

#if GEMM_HALF
#define GTYPE half
#define GSTORE(v, i, p) vstore_half_rte((v), (i), (p))
#define GSTORE8(v, i, p) vstore_half8_rte((v), (i), (p))
#define GLOAD(i, p) vload_half((i), (p))
#else
#define GTYPE float
#define GSTORE(v, i, p) ((p)[i] = (v))
#define GSTORE8(v, i, p) vstore8((v), (i), (p))
#define GLOAD(i, p) ((p)[i])
#endif

/* Xn[t] = rmsnorm(X[x_row0 + t]) · norm_w (NORM 1), or X[x_row0 + t] converted (NORM 0).
 * One work-group of NORM_WG per token. */
__kernel __attribute__((reqd_work_group_size(NORM_WG, 1, 1)))
void clkv_gemm_norm(__global const float *X, uint x_row0, uint cols,
                    __global const float *norm_w, float eps, __global GTYPE *Xn) {
  const uint t = get_group_id(1), l = get_local_id(0);
  const __global float *x = X + (size_t)(x_row0 + t) * cols;
  __global GTYPE *o = Xn + (size_t)t * cols;
#if NORM
  __local float part[NORM_WG];
  float ss = 0.0f;
  for (uint i = l; i < cols; i += NORM_WG) ss += x[i] * x[i];
  part[l] = ss;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = NORM_WG / 2; s > 0; s >>= 1) {
    if (l < s) part[l] += part[l + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float scale = rsqrt(part[0] / (float)cols + eps);
  for (uint i = l; i < cols; i += NORM_WG) GSTORE(x[i] * scale * norm_w[i], i, o);
#else
  for (uint i = l; i < cols; i += NORM_WG) GSTORE(x[i], i, o);
#endif
}

/* D[r][:] = dequantized row row0 + r of W, for a tile of rows; one 32-block per work-item
 * (dim0 = blocks of a row, dim1 = rows of the tile). */
__kernel void clkv_gemm_dequant(__global const uchar *W, uint cols, uint row0,
                                __global GTYPE *D) {
  const uint b = get_global_id(0), r = get_global_id(1);
  const __global uchar *row = W + (size_t)(row0 + r) * clkv_row_bytes(WTYPE, cols);
  float8 w0, w1, w2, w3;
  clkv_deq32(row, b, WTYPE, &w0, &w1, &w2, &w3);
  const size_t o = ((size_t)r * cols + b * 32) / 8;
  GSTORE8(w0, o, D);
  GSTORE8(w1, o + 1, D);
  GSTORE8(w2, o + 2, D);
  GSTORE8(w3, o + 3, D);
}

/* Writes the pair y of K or V row kr (a row of kv_rows values) of one token into the paged
 * cache through clkv_kv_store2: the only cache write of this path. For Q8/Q4 the scale
 * (and offset) are those of the pair's group of KV_QG values, whose smallest and largest
 * value this work-item finds in T itself (tk: the token's row of T from the group's K or V
 * part; the values of k rotated as they are stored). */
static inline void kv_store(__global uchar *cache, size_t base, uint kr, uint slot, float2 y,
                     __global const GTYPE *tk, int rope, int pos,
                     __global const float *inv_freq) {
  float lo = 0.0f, hi = 0.0f;
#if KV_TYPE != CLKV__KV_F16
  const uint g0 = kr / KV_QG * KV_QG;
  lo = INFINITY;
  hi = -INFINITY;
  for (uint j = g0; j < g0 + KV_QG; j += 2) {
    float2 v = (float2)(GLOAD(j, tk), GLOAD(j + 1, tk));
    if (rope) v = clkv_rope_pair(v, pos, inv_freq[(j % HEAD_DIM) / 2]);
    lo = fmin(lo, fmin(v.x, v.y));
    hi = fmax(hi, fmax(v.x, v.y));
  }
#else
  (void)tk, (void)rope, (void)pos, (void)inv_freq;
#endif
  clkv_kv_store2(cache, base, kr / HEAD_DIM, slot, kr % HEAD_DIM, y.x, y.y, lo, hi);
}

/* The epilogue over T (n_tok, rows): dim0 = rows (STORE, ADD) or row pairs (QKV, SWIGLU),
 * dim1 = tokens. The arguments match clkv_matvec's epilogue arguments. */
__kernel void clkv_gemm_epilogue(__global const GTYPE *T, uint rows, uint n_tok,
                                 __global float *Y,
                                 __global uchar *kc, __global uchar *vc, __global const int *btab,
                                 __global const int *tok_seq, __global const int *tok_pos,
                                 __global const float *inv_freq, uint q_rows, uint kv_rows,
                                 uint layer_base, uint max_blocks) {
  const uint i = get_global_id(0), t = get_global_id(1);
  if (t >= n_tok) return;
  const size_t tr = (size_t)t * rows;
#if EPI == CLKV__EPI_STORE || EPI == CLKV__EPI_ADD
  if (i >= rows) return;
#if EPI == CLKV__EPI_STORE
  Y[tr + i] = GLOAD(tr + i, T);
#else
  Y[tr + i] += GLOAD(tr + i, T);
#endif
#else
  const uint R = 2 * i;
  if (R >= rows) return;
  float2 y = (float2)(GLOAD(tr + R, T), GLOAD(tr + R + 1, T));
#if CLKV__EPI_GATED(EPI)
  Y[(size_t)t * (rows / 2) + i] = CLKV_GLU(EPI, y.x, y.y);
#else
  const int pos = tok_pos[t];
  if (R < q_rows + kv_rows) y = clkv_rope_pair(y, pos, inv_freq[(R % HEAD_DIM) / 2]); /* q, k */
  if (R < q_rows) {
    vstore2(y, 0, Y + (size_t)t * q_rows + R);
  } else {
    const uint is_v = R >= q_rows + kv_rows, part = q_rows + (is_v ? kv_rows : 0);
    const size_t base = clkv_kv_block(layer_base, btab[tok_seq[t] * max_blocks + pos / KV_BS]);
    kv_store(is_v ? vc : kc, base, R - part, pos % KV_BS, y, T + tr + part, !is_v, pos, inv_freq);
  }
#endif
#endif
}

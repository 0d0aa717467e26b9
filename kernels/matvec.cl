/* matvec.cl — the quantized mat-vec / small mat-mat family: Y = W · norm(X) for a batch of
 * tokens, W in its stored GGUF type, with a fused epilogue:
 *   EPI (kernels/contract.h) STORE, ADD to Y (residual), QKV (RoPE on q and k, k and v written
 *   straight into the paged KV cache in its precision KV_TYPE), SWIGLU over interleaved
 *   gate/up rows. For a quantized KV cache the workgroup's rows (RG * ROWS) are a multiple
 *   of KV_QG, so each scale group's range is found in local memory.
 * NORM 1 fuses RMSNorm of X (weight norm_w) into the product: one kernel per projection.
 * Work: dim0 = KSPLIT threads share a row (split over blocks), dim1 = row groups (ROWS rows
 * each, RG groups per workgroup), dim2 = token tiles of TT tokens. */
#ifndef WTYPE
#define WTYPE GGML_T_Q4_1
#endif
#ifndef EPI
#define EPI CLKV__EPI_STORE
#endif
#ifndef NORM
#define NORM 0
#endif
#ifndef KSPLIT
#define KSPLIT 1
#endif
#ifndef RG
#define RG 8
#endif
#ifndef ROWS
#define ROWS 2
#endif
#ifndef TT
#define TT 1
#endif


#if (EPI == CLKV__EPI_QKV || EPI == CLKV__EPI_SWIGLU) && (ROWS % 2) != 0
#error "QKV and SwiGLU epilogues need an even ROWS"
#endif
#define KV_GROUPED (EPI == CLKV__EPI_QKV && KV_TYPE != CLKV__KV_F16)
#if KV_GROUPED && (RG * ROWS) % KV_QG != 0
#error "a quantized KV cache needs RG * ROWS to be a multiple of KV_QG"
#endif

__kernel __attribute__((reqd_work_group_size(KSPLIT, RG, 1)))
void clkv_matvec(__global const uchar *W, uint rows, uint cols,
                 __global const float *X, uint x_row0, uint n_tok,
                 __global const float *norm_w, float eps,
                 __global float *Y,
                 __global uchar *kc, __global uchar *vc, __global const int *btab,
                 __global const int *tok_seq, __global const int *tok_pos,
                 __global const float *inv_freq, uint q_rows, uint kv_rows,
                 uint layer_base, uint max_blocks) {
  const uint ks = get_local_id(0);
  const uint r0 = (get_group_id(1) * RG + get_local_id(1)) * ROWS;
  const uint t0 = get_group_id(2) * TT;
  const uint nb = cols / 32;
  const size_t row_bytes = clkv_row_bytes(WTYPE, cols);

  float sum[ROWS][TT], ssum[TT];
  float8 ss[TT];
#if TT == 1
  float8 acc[ROWS];
  float off[ROWS];
  for (int r = 0; r < ROWS; r++) acc[r] = (float8)(0.0f), off[r] = 0.0f;
#endif
  for (int t = 0; t < TT; t++) {
    ss[t] = (float8)(0.0f);
    for (int r = 0; r < ROWS; r++) sum[r][t] = 0.0f;
  }

  for (uint b = ks; b < nb; b += KSPLIT) {
    float8 x[TT][4];
    float xs[TT];
#if NORM
    const __global float *np = norm_w + b * 32;
    const float8 n0 = vload8(0, np), n1 = vload8(1, np), n2 = vload8(2, np), n3 = vload8(3, np);
#endif
    for (int t = 0; t < TT; t++) {
      if (t0 + t < n_tok) {
        const __global float *xp = X + (size_t)(x_row0 + t0 + t) * cols + b * 32;
        x[t][0] = vload8(0, xp); x[t][1] = vload8(1, xp);
        x[t][2] = vload8(2, xp); x[t][3] = vload8(3, xp);
      } else {
        x[t][0] = x[t][1] = x[t][2] = x[t][3] = (float8)(0.0f);
      }
#if NORM
      ss[t] += x[t][0] * x[t][0] + x[t][1] * x[t][1] + x[t][2] * x[t][2] + x[t][3] * x[t][3];
      x[t][0] *= n0; x[t][1] *= n1; x[t][2] *= n2; x[t][3] *= n3;
#endif
      xs[t] = clkv_hsum8(x[t][0] + x[t][1] + x[t][2] + x[t][3]);
    }
    for (int r = 0; r < ROWS; r++) {
      if (r0 + r < rows) {
        const __global uchar *row = W + (size_t)(r0 + r) * row_bytes;
#if TT == 1
        clkv_dot32_acc(row, b, WTYPE, x[0][0], x[0][1], x[0][2], x[0][3], xs[0], &acc[r], &off[r]);
#else
        float8 w0, w1, w2, w3;
        clkv_deq32(row, b, WTYPE, &w0, &w1, &w2, &w3);
        for (int t = 0; t < TT; t++)
          sum[r][t] += clkv_hsum8(w0 * x[t][0] + w1 * x[t][1] + w2 * x[t][2] + w3 * x[t][3]);
#endif
      }
    }
  }
  for (int t = 0; t < TT; t++) ssum[t] = clkv_hsum8(ss[t]);
#if TT == 1
  for (int r = 0; r < ROWS; r++) sum[r][0] = clkv_hsum8(acc[r]) + off[r];
#endif

#if KSPLIT > 1
  /* Combine the KSPLIT partial sums of each row (and of the norm). */
  __local float red[RG][ROWS * TT + TT][KSPLIT];
  const uint lg = get_local_id(1);
  for (int t = 0; t < TT; t++) {
    red[lg][ROWS * TT + t][ks] = ssum[t];
    for (int r = 0; r < ROWS; r++) red[lg][r * TT + t][ks] = sum[r][t];
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = KSPLIT / 2; s > 0; s >>= 1) {
    if (ks < s)
      for (int i = 0; i < ROWS * TT + TT; i++) red[lg][i][ks] += red[lg][i][ks + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#if KV_GROUPED
  const int live = ks == 0; /* the other lanes stay for the scale-group barrier */
#else
  if (ks != 0) return;
  const int live = 1;
#endif
  for (int t = 0; t < TT; t++) {
    ssum[t] = red[lg][ROWS * TT + t][0];
    for (int r = 0; r < ROWS; r++) sum[r][t] = red[lg][r * TT + t][0];
  }
#else
  const int live = 1;
#endif
#if KV_GROUPED
  __local float kvl[TT][RG * ROWS]; /* this workgroup's K/V values, for the group scales */
  const uint lrow = get_local_id(1) * ROWS;
#endif

  for (int t = 0; t < TT && live; t++) {
    const uint tt = t0 + t;
    if (tt >= n_tok) break;
#if NORM
    const float scale = rsqrt(ssum[t] / (float)cols + eps);
#else
    const float scale = 1.0f;
#endif
#if EPI == CLKV__EPI_STORE || EPI == CLKV__EPI_ADD
    for (int r = 0; r < ROWS; r++) {
      if (r0 + r >= rows) break;
#if EPI == CLKV__EPI_STORE
      Y[(size_t)tt * rows + r0 + r] = sum[r][t] * scale;
#else
      Y[(size_t)tt * rows + r0 + r] += sum[r][t] * scale;
#endif
    }
#elif EPI == CLKV__EPI_SWIGLU
    for (int r = 0; r < ROWS; r += 2) {
      if (r0 + r >= rows) break;
      const float g = sum[r][t] * scale, u = sum[r + 1][t] * scale;
      Y[(size_t)tt * (rows / 2) + (r0 + r) / 2] = clkv_silu_mul(g, u);
    }
#elif EPI == CLKV__EPI_QKV
    const int pos = tok_pos[tt];
    const int seq = tok_seq[tt];
    for (int r = 0; r < ROWS; r += 2) {
      const uint R = r0 + r;
      if (R >= rows) break;
      float y0 = sum[r][t] * scale, y1 = sum[r + 1][t] * scale;
      if (R < q_rows + kv_rows) { /* RoPE on q and k */
        const float2 y = clkv_rope_pair((float2)(y0, y1), pos, inv_freq[(R % HEAD_DIM) / 2]);
        y0 = y.x;
        y1 = y.y;
      }
      if (R < q_rows) {
        Y[(size_t)tt * q_rows + R] = y0;
        Y[(size_t)tt * q_rows + R + 1] = y1;
      } else {
#if KV_GROUPED
        kvl[t][lrow + r] = y0;
        kvl[t][lrow + r + 1] = y1;
#else
        const uint is_v = R >= q_rows + kv_rows;
        const uint kr = R - q_rows - (is_v ? kv_rows : 0);
        const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + pos / KV_BS]);
        clkv_kv_store2(is_v ? vc : kc, base, kr / HEAD_DIM, pos % KV_BS, kr % HEAD_DIM, y0, y1,
                       0.0f, 0.0f);
#endif
      }
    }
#endif
  }
#if KV_GROUPED
  /* Each pair of K/V values is quantized with its group's range. */
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int t = 0; t < TT && live; t++) {
    const uint tt = t0 + t;
    if (tt >= n_tok) break;
    const int pos = tok_pos[tt];
    const int seq = tok_seq[tt];
    for (int r = 0; r < ROWS; r += 2) {
      const uint R = r0 + r;
      if (R >= rows) break;
      if (R < q_rows) continue;
      const uint g0 = (lrow + r) / KV_QG * KV_QG;
      float lo = kvl[t][g0], hi = lo;
      for (int j = 1; j < KV_QG; j++) {
        lo = fmin(lo, kvl[t][g0 + j]);
        hi = fmax(hi, kvl[t][g0 + j]);
      }
      const uint is_v = R >= q_rows + kv_rows;
      const uint kr = R - q_rows - (is_v ? kv_rows : 0);
      const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + pos / KV_BS]);
      clkv_kv_store2(is_v ? vc : kc, base, kr / HEAD_DIM, pos % KV_BS, kr % HEAD_DIM,
                     kvl[t][lrow + r], kvl[t][lrow + r + 1], lo, hi);
    }
  }
#endif
}

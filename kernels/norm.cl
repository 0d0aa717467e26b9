/* norm.cl — the steps some architectures add around the fused projections
 * (host/model/arch.c): the QKV finish (bias, per-head RMSNorm of q and k, RoPE, k and v into
 * the paged cache) after an unfused q/k/v projection, and the post-norm residual add. */
/* HAS_BIAS, HAS_QK_NORM: see clkv_head_finish in common.cl */

/* Tq (n_tok, q_rows), Tk and Tv (n_tok, kv_rows): a token's q, k, v rows as the STORE
 * mat-vecs wrote them. One work-item per (head of q, k or v, token): + bias (q, k, v
 * concatenated), RMSNorm of a q or k head (weights qn, kn: head_dim each), RoPE of q and k in
 * adjacent pairs (NeoX models have their q/k rows permuted at load); q stays in Tq (the
 * attention's input), k and v go into the cache (a Q8/Q4 group's range from the head). */
__kernel void clkv_qkv_finish(__global float *Tq, __global float *Tk, __global float *Tv,
                              uint q_rows, uint kv_rows, uint n_tok,
                              __global const float *bias, __global const float *qn,
                              __global const float *kn, float eps,
                              __global const float *inv_freq,
                              __global uchar *kc, __global uchar *vc, __global const int *btab,
                              __global const int *tok_seq, __global const int *tok_pos,
                              uint layer_base, uint max_blocks) {
  const uint h = get_global_id(0), t = get_global_id(1);
  const uint r0 = h * HEAD_DIM; /* row in q, k, v concatenated */
  if (r0 >= q_rows + 2 * kv_rows || t >= n_tok) return;
  const int is_q = r0 < q_rows, is_k = !is_q && r0 < q_rows + kv_rows;
  const uint kr = is_q ? r0 : r0 - q_rows - (is_k ? 0 : kv_rows); /* row in its part */
  __global float *v = is_q ? Tq + (size_t)t * q_rows + kr
                           : (is_k ? Tk : Tv) + (size_t)t * kv_rows + kr;
  clkv_head_finish(v, is_q, is_k, kr, bias + r0, is_q ? qn : kn, eps, inv_freq, kc, vc,
                   btab + tok_seq[t] * max_blocks, tok_pos[t], layer_base);
}

/* X[t] += RMSNorm(T[t]) · w for each token (cols values a row); one work-item per token. */
__kernel void clkv_norm_add(__global float *X, __global const float *T, __global const float *w,
                            uint cols, uint n_tok, float eps) {
  const uint t = get_global_id(0);
  if (t >= n_tok) return;
  __global const float *y = T + (size_t)t * cols;
  float ss = 0.0f;
  for (uint i = 0; i < cols; i++) ss += y[i] * y[i];
  const float s = rsqrt(ss / (float)cols + eps);
  for (uint i = 0; i < cols; i++) X[(size_t)t * cols + i] += y[i] * s * w[i];
}

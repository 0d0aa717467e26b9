/* fused.cl — one persistent launch for everything of a single sequence's decode step between
 * two attention launches (host/engine/fused.c): the o-projection and residual, the FFN norm,
 * gate/up and activation, the down projection and residual, then the next layer's norm, QKV,
 * RoPE and KV write — or, after the last layer, the final norm and the logits.
 *
 * Why: on PoCL's CPU device each launch lets the worker threads fall asleep, and waking one
 * costs more than a short mat-vec (docs/PERF-NOTES: "Why launches hurt"). Here a few
 * work-groups (one work-item each, about one per core) walk all the mat-vecs of the step.
 *
 * How the phases synchronize, and why it cannot deadlock: each phase's rows are cut into
 * chunks, and the chunks into one contiguous range per work-group, each range with its own
 * claim counter; a work-group *claims* chunks (atomic_inc) from its own range in order, then
 * from the others' ranges, until every range runs past its end, computes each chunk it
 * claimed, and counts it in the phase's done counter. It then waits until done reaches the number of chunks before
 * it starts the next phase. Every chunk it waits for was claimed by a work-group that is
 * running (claiming is something a running work-group does) and that finishes its chunks
 * without waiting for anyone: nobody ever waits for a work-group that has not started. One
 * lone work-group (one worker thread, or work-groups run one after another) claims every
 * chunk itself; one that starts after the others finds every phase claimed and done and falls
 * through. Data of phase p is read only after phase p is done; a phase's inputs that others
 * overwrite later (x, read for the norm) are read only while holding a claimed, unfinished
 * chunk of that phase, so no writer of the next phase can have started.
 * The counters must be zero at launch: the last work-group to leave (the exit counter) resets
 * them; it is the only one still touching them, and the next launch (in-order queue) starts
 * after it.
 *
 * Single token (n_tok 1), weight types per projection fixed at build (WT_*), GLU the gated
 * epilogue (CLKV__EPI_SWIGLU or GEGLU); the architecture's extra steps (host/model/arch.c) as
 * extra phases: post-norms (POST) and split q/k/v with bias and per-head norms (SPLIT). Built for any device; selected by `decode.path` 2. */
#ifndef WT_O
#define WT_O GGML_T_Q4_1
#endif
#ifndef WT_GU
#define WT_GU GGML_T_Q4_1
#endif
#ifndef WT_DOWN
#define WT_DOWN GGML_T_Q4_1
#endif
#ifndef WT_Q /* the next layer's q, k, v rows (one type when not SPLIT: the stacked wqkv) */
#define WT_Q GGML_T_Q4_1
#endif
#ifndef WT_K
#define WT_K WT_Q
#endif
#ifndef WT_V
#define WT_V WT_Q
#endif
#ifndef SPLIT /* 1: q, k, v apart, finished per head (bias, per-head norms, RoPE, K/V write) */
#define SPLIT 0
#endif
/* HAS_BIAS, HAS_QK_NORM: see clkv_head_finish in common.cl */
#ifndef POST /* 1: post-norms: x += RMSNorm(branch) · w, the branch staged in tmp */
#define POST 0
#endif
#ifndef WT_OUT
#define WT_OUT GGML_T_Q8_0
#endif
#ifndef GLU
#define GLU CLKV__EPI_SWIGLU
#endif
/* int8 activations (decode.dot 2 and 3, as the mat-vec's INT8 1 and 2: kernels/common.cl) for
 * the projections whose type has an integer dot: each work-group quantizes a phase's input
 * once, when it claims its first chunk, into its own part of xq8 (FZ_XMAX chars, then
 * FZ_XMAX / 32 float2), and takes its rows one after another with integer dots. */
#ifndef INT8
#define INT8 0
#endif
#ifndef FZ_XMAX
#define FZ_XMAX 4096
#endif
#define FZ_I8(t) (INT8 != 0 && CLKV_INT8_TYPE(t))

/* Rows per chunk: even (gate/up pairs, RoPE pairs), a multiple of 4 (rows computed together)
 * and of KV_QG (a quantized KV cache's scale group lies inside one chunk). */
#define FZ_CH 32
/* Chunks of the logits phase are FZ_OUT_CH pieces of FZ_CH rows (fewer claims). */
#define FZ_OUT_CH 8
#if FZ_CH % KV_QG != 0
#error "a chunk (FZ_CH rows) must hold whole KV scale groups"
#endif

/* Phases, and the counters: done per phase (FZ_C(p)), the exit counter, then a claim
 * counter per phase and work-group (FZ_C(FZ_RANGE + p * groups + g)); the host sizes the
 * buffer (host/engine/fused.c, fz_counters). OP, DP: the post-norm adds; FIN: the split
 * QKV's per-head finish. */
#define FZ_O 0
#define FZ_OP 1
#define FZ_GU 2
#define FZ_DOWN 3
#define FZ_DP 4
#define FZ_QKV 5
#define FZ_FIN 6
#define FZ_OUT 7
#define FZ_EXIT 8
#define FZ_RANGE 9
#define FZ_N_PHASE 8
/* Each counter on its own 64-byte line: a work-group spinning on one does not take the line
 * of the counters the others are claiming from. */
#define FZ_C(i) ((i) * 16)
/* flags: which phases this launch runs */
#define FZ_F_FFN 1u  /* o, gate/up, down of the layer just attended */
#define FZ_F_QKV 2u  /* the next layer's QKV */
#define FZ_F_OUT 4u  /* the final norm and the logits */

/* Rows r0 .. r0+n (n ≤ FZ_CH; rows past `rows` repeat the last row and are not used) of W
 * (type t, cols) times v — times nw elementwise when norm — into out[0 .. n). */
__attribute__((always_inline)) inline void fz_rows(const __global uchar *W, int t, uint rows,
                                                   uint cols, uint r0, uint n,
                                                   const __global float *v,
                                                   const __global float *nw, int norm,
                                                   float *out) {
  const uint nb = cols / 32;
  const size_t rb = clkv_row_bytes(t, cols);
  for (uint i = 0; i < n; i += 4) {
    const __global uchar *w0 = W + (size_t)min(r0 + i, rows - 1) * rb;
    const __global uchar *w1 = W + (size_t)min(r0 + i + 1, rows - 1) * rb;
    const __global uchar *w2 = W + (size_t)min(r0 + i + 2, rows - 1) * rb;
    const __global uchar *w3 = W + (size_t)min(r0 + i + 3, rows - 1) * rb;
    float8 a0 = (float8)(0.0f), a1 = a0, a2 = a0, a3 = a0;
    float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f;
    for (uint b = 0; b < nb; b++) {
      const __global float *xp = v + b * 32;
      float8 x0 = vload8(0, xp), x1 = vload8(1, xp), x2 = vload8(2, xp), x3 = vload8(3, xp);
      if (norm) {
        const __global float *np = nw + b * 32;
        x0 *= vload8(0, np); x1 *= vload8(1, np); x2 *= vload8(2, np); x3 *= vload8(3, np);
      }
      const float xs = clkv_hsum8(x0 + x1 + x2 + x3);
      clkv_dot32_acc(w0, b, t, x0, x1, x2, x3, xs, &a0, &o0);
      clkv_dot32_acc(w1, b, t, x0, x1, x2, x3, xs, &a1, &o1);
      clkv_dot32_acc(w2, b, t, x0, x1, x2, x3, xs, &a2, &o2);
      clkv_dot32_acc(w3, b, t, x0, x1, x2, x3, xs, &a3, &o3);
    }
    out[i] = clkv_hsum8(a0) + o0;
    out[i + 1] = clkv_hsum8(a1) + o1;
    out[i + 2] = clkv_hsum8(a2) + o2;
    out[i + 3] = clkv_hsum8(a3) + o3;
  }
}

/* fz_rows for the K-quants (Q4_K, Q5_K, Q6_K: CLKV_KQUANT_SB) a super-block at a time, as the
 * mat-vec's CLKV_KQ_SB: each row's scales decoded once per 256 values (common.cl
 * clkv_kq_scales, clkv_kq_dot), four rows side by side. */
#define CLKV_KQUANT_SB(t) ((t) >= 12 && (t) <= 14)
__attribute__((always_inline)) inline void fz_rows_kq(const __global uchar *W, int t, uint rows,
                                                      uint cols, uint r0, uint n,
                                                      const __global float *v,
                                                      const __global float *nw, int norm,
                                                      float *out) {
  const size_t rb = clkv_row_bytes(t, cols);
  const uint sbytes = clkv__wt_block_bytes(t);
  for (uint i = 0; i < n; i += 4) {
    const __global uchar *w[4];
    float8 acc[4];
    _Pragma("unroll") for (int r = 0; r < 4; r++) {
      w[r] = W + (size_t)min(r0 + i + r, rows - 1) * rb;
      acc[r] = (float8)(0.0f);
    }
    for (uint sb = 0; sb < cols / 256; sb++) {
      const __global uchar *p[4];
      float8 a[4], b[4];
      _Pragma("unroll") for (int r = 0; r < 4; r++) {
        p[r] = w[r] + (size_t)sb * sbytes;
        clkv_kq_scales(p[r], t, &a[r], &b[r]);
      }
      float xs[8];
      _Pragma("unroll") for (int j = 0; j < 8; j++) {
        const __global float *xp = v + sb * 256 + j * 32;
        float8 x0 = vload8(0, xp), x1 = vload8(1, xp), x2 = vload8(2, xp), x3 = vload8(3, xp);
        if (norm) {
          const __global float *np = nw + sb * 256 + j * 32;
          x0 *= vload8(0, np); x1 *= vload8(1, np); x2 *= vload8(2, np); x3 *= vload8(3, np);
        }
        xs[j] = clkv_hsum8(x0 + x1 + x2 + x3);
        _Pragma("unroll") for (int r = 0; r < 4; r++)
          acc[r] += clkv_kq_dot(p[r], j, t, a[r], b[r], x0, x1, x2, x3);
      }
      if (t != GGML_T_Q6_K) { /* the mins: dmin * min_j times sub-block j's sum of x */
        const float8 xs8 = (float8)(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], xs[6], xs[7]);
        _Pragma("unroll") for (int r = 0; r < 4; r++) acc[r] -= b[r] * xs8;
      }
    }
    _Pragma("unroll") for (int r = 0; r < 4; r++) out[i + r] = clkv_hsum8(acc[r]);
  }
}

/* This work-group's quantized copy of v (times nw elementwise when norm), cols values. */
static inline void fz_quant(const __global float *v, const __global float *nw, int norm,
                            uint cols, __global char *xq8) {
  __global float2 *qd = (__global float2 *)(xq8 + FZ_XMAX);
  for (uint b = 0; b < cols / 32; b++) {
    const __global float *xp = v + b * 32;
    float8 x0 = vload8(0, xp), x1 = vload8(1, xp), x2 = vload8(2, xp), x3 = vload8(3, xp);
    if (norm) {
      const __global float *np = nw + b * 32;
      x0 *= vload8(0, np); x1 *= vload8(1, np); x2 *= vload8(2, np); x3 *= vload8(3, np);
    }
    int8 q0, q1, q2, q3;
    qd[b] = clkv_quant32_i(x0, x1, x2, x3, &q0, &q1, &q2, &q3);
    __global char8 *q = (__global char8 *)(xq8 + b * 32);
    q[0] = convert_char8(q0); q[1] = convert_char8(q1);
    q[2] = convert_char8(q2); q[3] = convert_char8(q3);
  }
}

/* fz_rows with int8 activations: the input quantized by fz_quant into xq8; one row at a time
 * (one stream of weights), even and odd blocks in two accumulators. */
__attribute__((always_inline)) inline void fz_rows_i8(const __global uchar *W, int t, uint rows,
                                                      uint cols, uint r0, uint n,
                                                      const __global char *xq8, float *out) {
  const uint nb = cols / 32;
  const size_t rb = clkv_row_bytes(t, cols);
  const __global float2 *qd = (const __global float2 *)(xq8 + FZ_XMAX);
  for (uint i = 0; i < n; i++) {
    const __global uchar *w = W + (size_t)min(r0 + i, rows - 1) * rb;
    float8 a0 = (float8)(0.0f), a1 = a0;
    float o0 = 0.0f, o1 = 0.0f;
    uint b = 0;
    for (; b + 1 < nb; b += 2) {
      const __global char16 *x = (const __global char16 *)(xq8 + b * 32);
      CLKV_I8_STEP(w, b, t, x[0], x[1], qd[b], a0, o0);
      CLKV_I8_STEP(w, b + 1, t, x[2], x[3], qd[b + 1], a1, o1);
    }
    if (b < nb) {
      const __global char16 *x = (const __global char16 *)(xq8 + b * 32);
      CLKV_I8_STEP(w, b, t, x[0], x[1], qd[b], a0, o0);
    }
    out[i] = clkv_hsum8(a0 + a1) + o0 + o1;
  }
}

/* Rows r0 .. r0+n of W · (v ∘ nw when norm) into out: fz_rows_i8 for a type with an integer
 * dot under INT8 (the input already quantized into xq8), fz_rows_kq for a K-quant, else fz_rows. */
#define FZ_MV(W, t, rows, cols, r0, n, v, nw, norm, xq8, out)                                    \
  do {                                                                                          \
    if (FZ_I8(t)) fz_rows_i8(W, t, rows, cols, r0, n, xq8, out);                                 \
    else if (CLKV_KQUANT_SB(t)) fz_rows_kq(W, t, rows, cols, r0, n, v, nw, norm, out);           \
    else fz_rows(W, t, rows, cols, r0, n, v, nw, norm, out);                                     \
  } while (0)

/* 1 / RMS of the n values at x (with eps): the fused norm's scale. */
static inline float fz_norm_scale(const __global float *x, uint n, float eps) {
  float8 s = (float8)(0.0f);
  for (uint i = 0; i < n; i += 8) {
    const float8 v = vload8(0, x + i);
    s += v * v;
  }
  return rsqrt(clkv_hsum8(s) / (float)n + eps);
}

/* The next chunk of phase p for this work-group, or -1 when all nch are claimed. Work-group
 * g owns chunks [g·nch/G, (g+1)·nch/G) and takes them in order before it helps the others
 * with theirs, so each core streams its own rows front to back, which the hardware prefetchers
 * follow. (Taking turns chunk by chunk from one counter made both cores miss the cache: with
 * two work-groups SmolLM2 decoded 152-161 tok/s that way against 170-179 for one; with
 * ranges 257-275. docs/TUNING.md "Fused decode".) The plain read skips an exhausted range without
 * taking its line for writing; a stale value is only ever too low (counters rise until the
 * launch ends), and the atomic decides. */
static inline int fz_claim(volatile __global int *ctr, int p, int nch) {
  const int G = (int)get_num_groups(0), g = (int)get_group_id(0);
  for (int k = 0; k < G; k++) {
    const int h = g + k < G ? g + k : g + k - G, lo = h * nch / G, hi = (h + 1) * nch / G;
    volatile __global int *r = &ctr[FZ_C(FZ_RANGE + p * G + h)];
    if (*r >= hi - lo) continue;
    const int c = lo + atomic_inc(r);
    if (c < hi) return c;
  }
  return -1;
}

/* A claimed chunk of phase p is finished: its writes first, then the count. */
static inline void fz_done(volatile __global int *ctr, int p) {
  mem_fence(CLK_GLOBAL_MEM_FENCE);
  atomic_inc(&ctr[FZ_C(p)]);
}

/* Waits until all nch chunks of phase p are finished (all claimed: see the top). */
static inline void fz_wait(volatile __global int *ctr, int p, int nch) {
  /* a plain (volatile) read while spinning, so the line stays shared; then an atomic one */
  while (ctr[FZ_C(p)] < nch || atomic_add(&ctr[FZ_C(p)], 0) < nch) {
  }
  mem_fence(CLK_GLOBAL_MEM_FENCE);
}

static inline int fz_chunks(uint rows, uint per) { return (int)((rows + per - 1) / per); }

/* Phase p of a post-norm: x += RMSNorm(tmp) · w, by chunks of rows; then the wait. */
static inline void fz_post_add(volatile __global int *ctr, int p, __global float *x,
                        __global const float *tmp, __global const float *w, uint n_embd,
                        float eps) {
  const int nch = fz_chunks(n_embd, FZ_CH);
  float s = 0.0f;
  int first = 1, c;
  while ((c = fz_claim(ctr, p, nch)) >= 0) {
    if (first) s = fz_norm_scale(tmp, n_embd, eps), first = 0;
    const uint r0 = (uint)c * FZ_CH, end = min(r0 + FZ_CH, n_embd);
    for (uint r = r0; r < end; r++) x[r] += tmp[r] * s * w[r];
    fz_done(ctr, p);
  }
  fz_wait(ctr, p, nch);
}

/* A projection back into the residual stream, as one phase: x += W · in, or with post-norms
 * tmp = W · in (fz_post_add then adds its norm to x). */
__attribute__((always_inline)) inline void fz_residual(volatile __global int *ctr, int p,
                                                       const __global uchar *W, int t,
                                                       uint n_embd, uint cols,
                                                       const __global float *in,
                                                       __global float *x, __global float *tmp,
                                                       __global char *xq8) {
  float out[FZ_CH];
  int c, first = 1;
  const int nc = fz_chunks(n_embd, FZ_CH);
  while ((c = fz_claim(ctr, p, nc)) >= 0) {
    if (first && FZ_I8(t)) fz_quant(in, in, 0, cols, xq8);
    first = 0;
    const uint r0 = (uint)c * FZ_CH, n = min((uint)FZ_CH, n_embd - r0);
    FZ_MV(W, t, n_embd, cols, r0, n, in, in, 0, xq8, out);
    for (uint i = 0; i < n; i++) {
#if POST
      tmp[r0 + i] = out[i];
#else
      x[r0 + i] += out[i];
#endif
    }
    fz_done(ctr, p);
  }
  fz_wait(ctr, p, nc);
}

/* The split QKV's finish of head h (q heads, then k, then v): clkv_head_finish (common.cl),
 * as kernels/norm.cl's clkv_qkv_finish does for each token of a batch. */
static inline void fz_finish_head(uint h, __global float *q, __global float *tk, __global float *tv,
                           uint q_rows, uint kv_rows, __global const float *bias,
                           __global const float *qn, __global const float *kn, float eps,
                           __global const float *inv_freq, __global uchar *kc,
                           __global uchar *vc, __global const int *btab, int seq, int pos,
                           uint layer_base, uint max_blocks) {
  const uint r0 = h * HEAD_DIM;
  const int is_q = r0 < q_rows, is_k = !is_q && r0 < q_rows + kv_rows;
  const uint kr = is_q ? r0 : r0 - q_rows - (is_k ? 0 : kv_rows);
  __global float *v = is_q ? q + kr : (is_k ? tk : tv) + kr;
  clkv_head_finish(v, is_q, is_k, kr, bias + r0, is_q ? qn : kn, eps, inv_freq, kc, vc,
                   btab + seq * max_blocks, pos, layer_base);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void clkv_fused_decode(volatile __global int *ctr, uint flags, float eps,
                       __global float *x, uint n_embd, __global float *tmp,
                       /* o, gate/up, down of the layer just attended */
                       __global const float *att, __global const uchar *Wo, uint q_rows,
                       __global const float *post_attn_norm,
                       __global const float *ffn_norm, __global const uchar *Wgu,
                       __global float *ff, uint n_ff, __global const uchar *Wdown,
                       __global const float *post_ffn_norm,
                       /* the next layer's QKV (Wq alone when not SPLIT: the stacked wqkv) */
                       __global const float *attn_norm, __global const uchar *Wq,
                       __global const uchar *Wk, __global const uchar *Wv,
                       __global float *q, __global float *tk, __global float *tv, uint kv_rows,
                       __global const float *bias, __global const float *q_norm,
                       __global const float *k_norm,
                       __global uchar *kc, __global uchar *vc, __global const int *btab,
                       __global const int *tok_seq, __global const int *tok_pos,
                       __global const float *inv_freq, uint layer_base, uint max_blocks,
                       /* the logits */
                       __global const float *out_norm, __global const uchar *Wout,
                       __global float *logits, uint n_vocab,
                       /* int8 activations: FZ_XMAX + FZ_XMAX / 32 * 8 bytes per work-group */
                       __global char *xq8_all) {
  float out[FZ_CH];
  __global char *xq8 = xq8_all + get_group_id(0) * (FZ_XMAX + FZ_XMAX / 32 * 8);
  int c;
  if (flags & FZ_F_FFN) {
    fz_residual(ctr, FZ_O, Wo, WT_O, n_embd, q_rows, att, x, tmp, xq8); /* x += Wo · att */
#if POST
    fz_post_add(ctr, FZ_OP, x, tmp, post_attn_norm, n_embd, eps);
#endif
    /* ff = act(gate) · up of norm(x), over interleaved (gate, up) rows */
    const int n_gu = fz_chunks(2 * n_ff, FZ_CH);
    float s = 0.0f;
    int first = 1;
    while ((c = fz_claim(ctr, FZ_GU, n_gu)) >= 0) {
      if (first) {
        s = fz_norm_scale(x, n_embd, eps), first = 0;
        if (FZ_I8(WT_GU)) fz_quant(x, ffn_norm, 1, n_embd, xq8);
      }
      const uint r0 = (uint)c * FZ_CH, n = min((uint)FZ_CH, 2 * n_ff - r0);
      FZ_MV(Wgu, WT_GU, 2 * n_ff, n_embd, r0, n, x, ffn_norm, 1, xq8, out);
      for (uint i = 0; i < n; i += 2) ff[(r0 + i) / 2] = CLKV_GLU(GLU, out[i] * s, out[i + 1] * s);
      fz_done(ctr, FZ_GU);
    }
    fz_wait(ctr, FZ_GU, n_gu);
    fz_residual(ctr, FZ_DOWN, Wdown, WT_DOWN, n_embd, n_ff, ff, x, tmp, xq8); /* x += Wdown · ff */
#if POST
    fz_post_add(ctr, FZ_DP, x, tmp, post_ffn_norm, n_embd, eps);
#endif
  }
  if (flags & FZ_F_QKV) {
    const uint rows = q_rows + 2 * kv_rows;
    const int n_q = fz_chunks(rows, FZ_CH);
    const int pos = tok_pos[0], seq = tok_seq[0];
    float s = 0.0f;
    int first = 1;
#if SPLIT
    /* q, k, v of norm(x) to q, tk, tv (q_rows and kv_rows: multiples of FZ_CH), then each
     * head finished */
    while ((c = fz_claim(ctr, FZ_QKV, n_q)) >= 0) {
      if (first) {
        s = fz_norm_scale(x, n_embd, eps), first = 0;
        if (FZ_I8(WT_Q) || FZ_I8(WT_K) || FZ_I8(WT_V)) fz_quant(x, attn_norm, 1, n_embd, xq8);
      }
      const uint r0 = (uint)c * FZ_CH;
      __global float *dst;
      if (r0 < q_rows) {
        FZ_MV(Wq, WT_Q, q_rows, n_embd, r0, FZ_CH, x, attn_norm, 1, xq8, out);
        dst = q + r0;
      } else if (r0 < q_rows + kv_rows) {
        FZ_MV(Wk, WT_K, kv_rows, n_embd, r0 - q_rows, FZ_CH, x, attn_norm, 1, xq8, out);
        dst = tk + (r0 - q_rows);
      } else {
        FZ_MV(Wv, WT_V, kv_rows, n_embd, r0 - q_rows - kv_rows, FZ_CH, x, attn_norm, 1, xq8, out);
        dst = tv + (r0 - q_rows - kv_rows);
      }
      for (uint i = 0; i < FZ_CH; i++) dst[i] = out[i] * s;
      fz_done(ctr, FZ_QKV);
    }
    fz_wait(ctr, FZ_QKV, n_q);
    const int n_h = (int)(rows / HEAD_DIM);
    while ((c = fz_claim(ctr, FZ_FIN, n_h)) >= 0) {
      fz_finish_head((uint)c, q, tk, tv, q_rows, kv_rows, bias, q_norm, k_norm, eps, inv_freq,
                     kc, vc, btab, seq, pos, layer_base, max_blocks);
      fz_done(ctr, FZ_FIN);
    }
#else
    /* q (RoPE) to q; k (RoPE) and v into the paged cache at the token's position */
    while ((c = fz_claim(ctr, FZ_QKV, n_q)) >= 0) {
      if (first) {
        s = fz_norm_scale(x, n_embd, eps), first = 0;
        if (FZ_I8(WT_Q)) fz_quant(x, attn_norm, 1, n_embd, xq8);
      }
      const uint r0 = (uint)c * FZ_CH, n = min((uint)FZ_CH, rows - r0);
      FZ_MV(Wq, WT_Q, rows, n_embd, r0, n, x, attn_norm, 1, xq8, out);
      for (uint i = 0; i < n; i += 2) {
        const uint R = r0 + i;
        float2 y = (float2)(out[i], out[i + 1]) * s;
        if (R < q_rows + kv_rows) y = clkv_rope_pair(y, pos, inv_freq[(R % HEAD_DIM) / 2]);
        out[i] = y.x;
        out[i + 1] = y.y;
        if (R < q_rows) q[R] = y.x, q[R + 1] = y.y;
      }
      if (r0 + n > q_rows) {
        const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + pos / KV_BS]);
        for (uint g = 0; g < n; g += KV_QG) { /* whole scale groups (q_rows, FZ_CH: multiples) */
          if (r0 + g < q_rows) continue;
          float lo = out[g], hi = out[g];
          for (uint i = g + 1; i < g + KV_QG; i++) lo = fmin(lo, out[i]), hi = fmax(hi, out[i]);
          for (uint i = g; i < g + KV_QG; i += 2) {
            const uint R = r0 + i, is_v = R >= q_rows + kv_rows;
            const uint kr = R - q_rows - (is_v ? kv_rows : 0);
            clkv_kv_store2(is_v ? vc : kc, base, kr / HEAD_DIM, pos % KV_BS, kr % HEAD_DIM,
                           out[i], out[i + 1], lo, hi);
          }
        }
      }
      fz_done(ctr, FZ_QKV);
    }
#endif
    /* the attention launch after this one reads q and the cache: no wait needed */
  }
  if (flags & FZ_F_OUT) {
    /* logits = Wout · norm(x) */
    const uint per = FZ_CH * FZ_OUT_CH;
    const int n_l = fz_chunks(n_vocab, per);
    float s = 0.0f;
    int first = 1;
    while ((c = fz_claim(ctr, FZ_OUT, n_l)) >= 0) {
      if (first) {
        s = fz_norm_scale(x, n_embd, eps), first = 0;
        if (FZ_I8(WT_OUT)) fz_quant(x, out_norm, 1, n_embd, xq8);
      }
      const uint end = min((uint)c * per + per, n_vocab);
      for (uint r0 = (uint)c * per; r0 < end; r0 += FZ_CH) {
        const uint n = min((uint)FZ_CH, end - r0);
        FZ_MV(Wout, WT_OUT, n_vocab, n_embd, r0, n, x, out_norm, 1, xq8, out);
        for (uint i = 0; i < n; i++) logits[r0 + i] = out[i] * s;
      }
      fz_done(ctr, FZ_OUT);
    }
  }
  /* The last work-group out resets the counters for the next launch. */
  mem_fence(CLK_GLOBAL_MEM_FENCE);
  if (atomic_inc(&ctr[FZ_C(FZ_EXIT)]) == (int)get_num_groups(0) - 1)
    for (int i = 0; i < FZ_RANGE + FZ_N_PHASE * (int)get_num_groups(0); i++)
      atomic_xchg(&ctr[FZ_C(i)], 0);
}

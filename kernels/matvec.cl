/* matvec.cl — the quantized mat-vec / small mat-mat family: Y = W · norm(X) for a batch of
 * tokens, W in its stored GGUF type (WTYPE), then one epilogue (EPI, kernels/contract.h), an
 * inline function each: STORE, ADD to Y (residual), QKV (RoPE on q and k, k and v written
 * straight into the paged KV cache in its precision KV_TYPE), SWIGLU over interleaved gate/up
 * rows. For a quantized KV cache the workgroup's rows (RG * ROWS) are a multiple of KV_QG, so
 * each scale group's range is found in local memory.
 * NORM 1 fuses RMSNorm of X (weight norm_w) into the product: one kernel per projection.
 * Work: dim0 = KSPLIT threads share a row (split over blocks), dim1 = row groups (ROWS rows
 * each, RG groups per workgroup), dim2 = token tiles of TT tokens.
 * INT8 (USE_INT8 below): x quantized to 8 bits per 32-block once per work-group into the local
 * buffers xq (cols chars) and xf (2 floats per block, then one per work-item), integer dots. */
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
#ifndef INT8
#define INT8 0
#endif
/* PFORM 2 (prefill.form, docs/TUNING.md): prefill on CPUs as an outer product (below). */
#ifndef PFORM
#define PFORM 1
#endif
#define USE_OUTER (PFORM == 2 && TT > 1 && TT % 8 == 0 && KSPLIT == 1)
/* the outer product writes its outputs itself but for QKV's (RoPE first, then the cache) */
#define OUTER_EPI (USE_OUTER && EPI != CLKV__EPI_QKV)
/* the outer product's vector of tokens: float8, or float16 where TT allows (-DPVW=16) */
#ifndef PVW
#define PVW 16
#endif
#if TT % PVW != 0
#undef PVW
#define PVW 8
#endif
#if PVW == 16
#define pvec float16
#define PV_LOAD vload16
#define PV_STORE vstore16
#else
#define pvec float8
#define PV_LOAD vload8
#define PV_STORE vstore8
#endif
/* The outer product with int8 activations (prefill.dot 2 and 3 under prefill.form 2, the types
 * with an integer dot; docs/TUNING.md): x quantized per 32-block as in decode, stored as
 * unsigned bytes (q + 128) in 4-byte words transposed by token (xw[block][word][TT]), so that
 * one u8 x s8 dot of four bytes per lane (x86 VNNI's vpdpbusd) takes PVW tokens' words against
 * one broadcast word of a weight row: sum((q + 128) * w) = sum(q * w) + 128 * sum(w), the
 * second term taken off by starting the lanes at -128 * sum(w). */
#define USE_OUTER_I8 (USE_OUTER && INT8 != 0 && CLKV_INT8_TILE_TYPE(WTYPE))
#if USE_OUTER_I8
#if PVW == 16
#define pveci int16
#define PVI_LOAD vload16
#define convert_pvec convert_float16
#else
#define pveci int8
#define PVI_LOAD vload8
#define convert_pvec convert_float8
#endif
/* a + the dot of each lane's four u8 of x with the four s8 of w (w in memory, broadcast):
 * vpdpbusd where the host has AVX512-VNNI (-DCLKV_X86_VNNI, host/ops/ops.c), else in plain
 * integer arithmetic. Inline assembly: PoCL compiles for a CPU model without VNNI
 * (skylake-avx512 on this EPYC), and its work-group functions drop a kernel's target
 * attribute (the builtin then fails instruction selection). */
#if INT8 == 2 && defined(CLKV_X86_VNNI) && defined(__AVX512F__)
/* w: word i of the array at p, addressed as a constant offset from one register (an "m"
 * operand per word made the compiler keep, and spill, a pointer per word) */
#if PVW == 16
#define PVI_DP(a, x, p, i) \
  __asm__("vpdpbusd %c3(%2)%{1to16%}, %1, %0" : "+v"(a) : "v"(x), "r"(p), "i"(4 * (i)), "m"(*(const int(*)[ROWS * 8])(p)))
#else
#define PVI_DP(a, x, p, i) \
  __asm__("vpdpbusd %c3(%2)%{1to8%}, %1, %0" : "+v"(a) : "v"(x), "r"(p), "i"(4 * (i)), "m"(*(const int(*)[ROWS * 8])(p)))
#endif
#else
static inline pveci pvi_dp(pveci a, pveci x, int w) {
  const char4 c = as_char4(w);
  return a + (x & 255) * (int)c.x + ((x >> 8) & 255) * (int)c.y + ((x >> 16) & 255) * (int)c.z +
         ((x >> 24) & 255) * (int)c.w;
}
#define PVI_DP(a, x, p, i) ((a) = pvi_dp((a), (x), (p)[i]))
#endif
#endif
/* int8 activations (kernels/common.cl): for one token per work-group and the types with an
 * integer dot; the work-group first quantizes its token's (normed) x into local memory. */
#define USE_INT8 (INT8 != 0 && TT == 1 && CLKV_INT8_TYPE(WTYPE))
/* The decode block loop in 8-value pieces (below): at GPU shapes; PoCL's (KSPLIT 1) keeps the
 * whole-block form. Not for the K-quants (Q2_K .. Q6_K), whose sub-block scales the compiler
 * then keeps per piece (gfx1030: 155-187 VGPRs whole, 174-254 in pieces). -DCLKV_PIECES=0/1
 * overrides. */
#define CLKV_KQUANT(t) ((t) >= 10 && (t) <= 14) /* numeric: used in #if (contract.h ids) */
/* F32, IQ4_NL, IQ4_XS in pieces: Intel's compiler (ocloc, tgllp/dg2) then uses 128-1024 bytes
 * of scratch (none whole), so only on AMD (gfx1030: 105-127 VGPRs against 177-247 whole). */
#define CLKV_PIECES_AMD_ONLY(t) ((t) == 0 || (t) == 20 || (t) == 23)
#ifndef CLKV_PIECES
#if KSPLIT > 1 && TT == 1 && !USE_INT8 && !CLKV_KQUANT(WTYPE) && \
    (!CLKV_PIECES_AMD_ONLY(WTYPE) || defined(__AMDGCN__))
#define CLKV_PIECES 1
#else
#define CLKV_PIECES 0
#endif
#endif

/* The CPU decode of Q4_K, Q5_K, Q6_K (12..14, contract.h ids): a super-block of 256 values at
 * a time, its scales decoded once per row (common.cl, clkv_kq_scales); the loops over its 8
 * sub-blocks and the rows unrolled, so the accumulators stay in registers. -DCLKV_KQ_SB=0/1
 * overrides. */
#ifndef CLKV_KQ_SB
#if KSPLIT == 1 && TT == 1 && !USE_INT8 && WTYPE >= 12 && WTYPE <= 14
#define CLKV_KQ_SB 1
#else
#define CLKV_KQ_SB 0
#endif
#endif

#if (EPI == CLKV__EPI_QKV || CLKV__EPI_GATED(EPI)) && (ROWS % 2) != 0
#error "QKV and SwiGLU epilogues need an even ROWS"
#endif
#define KV_GROUPED (EPI == CLKV__EPI_QKV && KV_TYPE != CLKV__KV_F16)
/* The private arrays indexed by row and token (sum, ss, x, acc, ...) stay in registers only
 * where every index is a constant: at GPU shapes (KSPLIT > 1) the loops over ROWS and TT are
 * unrolled, or GPUs keep the arrays in stack/scratch memory (NVIDIA: 688 bytes of stack at
 * TT=4, 2.7 KB at TT=16). Not at CPU shapes: unrolled, PoCL's prefill ran 1.3-1.6x slower. */
#if KSPLIT > 1
#define CLKV_UNROLL _Pragma("unroll")
#else
#define CLKV_UNROLL
#endif
/* The decode (TT 1) loops over ROWS unrolled on every device: at the CPU shape PoCL kept the
 * ROWS accumulators of a non-unrolled loop in memory, a store and a reload per block and row
 * (the loop then waits on store-to-load forwarding). */
#if KSPLIT > 1 || TT == 1
#define CLKV_UNROLL_ROWS _Pragma("unroll")
#else
#define CLKV_UNROLL_ROWS
#endif
#if KV_GROUPED && (RG * ROWS) % KV_QG != 0
#error "a quantized KV cache needs RG * ROWS to be a multiple of KV_QG"
#endif

/* ---- epilogues: the product of row r0 + r for token t of the tile (token tt of the batch)
 * is s[r][t] * scale; rows past `rows` (the matrix's) are skipped ---- */

/* STORE: Y[tt][row] = product. */
static inline void clkv_epi_store(float s[ROWS][TT], int t, float scale, uint tt, uint r0,
                           uint rows, __global float *Y) {
  CLKV_UNROLL for (int r = 0; r < ROWS; r++) {
    if (r0 + r >= rows) break;
    Y[(size_t)tt * rows + r0 + r] = s[r][t] * scale;
  }
}

/* ADD: Y[tt][row] += product (the residual stream). */
static inline void clkv_epi_add(float s[ROWS][TT], int t, float scale, uint tt, uint r0,
                         uint rows, __global float *Y) {
  CLKV_UNROLL for (int r = 0; r < ROWS; r++) {
    if (r0 + r >= rows) break;
    Y[(size_t)tt * rows + r0 + r] += s[r][t] * scale;
  }
}

/* SWIGLU, GEGLU: rows come in (gate, up) pairs; Y[tt][pair] = act(gate) · up. */
static inline void clkv_epi_swiglu(float s[ROWS][TT], int t, float scale, uint tt, uint r0,
                            uint rows, __global float *Y) {
  CLKV_UNROLL for (int r = 0; r < ROWS; r += 2) {
    if (r0 + r >= rows) break;
    Y[(size_t)tt * (rows / 2) + (r0 + r) / 2] = CLKV_GLU(EPI, s[r][t] * scale, s[r + 1][t] * scale);
  }
}

/* Where QKV writes: rows [0, q_rows) are q, to Y (n_tok, q_rows); then kv_rows of k and
 * kv_rows of v, into the paged cache kc / vc at each token's (tok_seq, tok_pos). */
typedef struct clkv_qkv_dst {
  __global float *Y;
  __global uchar *kc, *vc;
  __global const int *btab, *tok_seq, *tok_pos;
  __global const float *inv_freq;
  uint rows, q_rows, kv_rows, layer_base, max_blocks;
} clkv_qkv_dst;

/* The pair (y0, y1) of K or V row R of the token at (seq, pos) into the cache; lo and hi are
 * its scale group's range (used by a quantized cache only). */
static inline void clkv_qkv_store_pair(const clkv_qkv_dst *d, uint R, int seq, int pos, float y0,
                                float y1, float lo, float hi) {
  const uint is_v = R >= d->q_rows + d->kv_rows;
  const uint kr = R - d->q_rows - (is_v ? d->kv_rows : 0);
  const size_t base = clkv_kv_block(d->layer_base, d->btab[seq * d->max_blocks + pos / KV_BS]);
  clkv_kv_store2(is_v ? d->vc : d->kc, base, kr / HEAD_DIM, pos % KV_BS, kr % HEAD_DIM, y0, y1,
                 lo, hi);
}

/* QKV: row pairs rotated (q and k), q stored, k and v written to the cache — or, for a
 * quantized cache, staged in stage[r] (this work-item's rows of the workgroup's local copy)
 * until clkv_qkv_store_groups knows each scale group's range. */
static inline void clkv_epi_qkv(const clkv_qkv_dst *d, float s[ROWS][TT], int t, float scale,
                         uint tt, uint r0, __local float *stage) {
  const int pos = d->tok_pos[tt];
  const int seq = d->tok_seq[tt];
  CLKV_UNROLL for (int r = 0; r < ROWS; r += 2) {
    const uint R = r0 + r;
    if (R >= d->rows) break;
    float y0 = s[r][t] * scale, y1 = s[r + 1][t] * scale;
    if (!USE_OUTER && R < d->q_rows + d->kv_rows) { /* RoPE on q and k (the outer product's: done) */
      const float2 y = clkv_rope_pair((float2)(y0, y1), pos, d->inv_freq[(R % HEAD_DIM) / 2]);
      y0 = y.x;
      y1 = y.y;
    }
    if (R < d->q_rows) {
      d->Y[(size_t)tt * d->q_rows + R] = y0;
      d->Y[(size_t)tt * d->q_rows + R + 1] = y1;
    } else {
#if KV_GROUPED
      stage[r] = y0;
      stage[r + 1] = y1;
#else
      clkv_qkv_store_pair(d, R, seq, pos, y0, y1, 0.0f, 0.0f);
#endif
    }
  }
}

/* QKV into a quantized cache, after the workgroup's barrier: each staged K/V pair of token tt
 * quantized with its scale group's range (kvl: the workgroup's staged rows of the token;
 * lrow: this work-item's first row in it). */
static inline void clkv_qkv_store_groups(const clkv_qkv_dst *d, __local const float *kvl, uint lrow,
                                  uint tt, uint r0) {
  const int pos = d->tok_pos[tt];
  const int seq = d->tok_seq[tt];
  CLKV_UNROLL for (int r = 0; r < ROWS; r += 2) {
    const uint R = r0 + r;
    if (R >= d->rows) break;
    if (R < d->q_rows) continue;
    const uint g0 = (lrow + r) / KV_QG * KV_QG;
    float lo = kvl[g0], hi = lo;
    for (int j = 1; j < KV_QG; j++) {
      lo = fmin(lo, kvl[g0 + j]);
      hi = fmax(hi, kvl[g0 + j]);
    }
    clkv_qkv_store_pair(d, R, seq, pos, kvl[lrow + r], kvl[lrow + r + 1], lo, hi);
  }
}

#if USE_OUTER
/* r[0..7] (8 rows of 8) transposed in place: r[j] then holds element j of each row. */
static inline void clkv_tr8(float8 r[8]) {
  const uint8 lo = (uint8)(0, 8, 1, 9, 4, 12, 5, 13), hi = (uint8)(2, 10, 3, 11, 6, 14, 7, 15);
  const uint8 a = (uint8)(0, 1, 8, 9, 4, 5, 12, 13), c = (uint8)(2, 3, 10, 11, 6, 7, 14, 15);
  const uint8 l = (uint8)(0, 1, 2, 3, 8, 9, 10, 11), h = (uint8)(4, 5, 6, 7, 12, 13, 14, 15);
  float8 t[8], s[8];
  _Pragma("unroll") for (int k = 0; k < 8; k += 2) {
    t[k] = shuffle2(r[k], r[k + 1], lo);
    t[k + 1] = shuffle2(r[k], r[k + 1], hi);
  }
  _Pragma("unroll") for (int k = 0; k < 8; k += 4) {
    s[k] = shuffle2(t[k], t[k + 2], a);
    s[k + 1] = shuffle2(t[k], t[k + 2], c);
    s[k + 2] = shuffle2(t[k + 1], t[k + 3], a);
    s[k + 3] = shuffle2(t[k + 1], t[k + 3], c);
  }
  _Pragma("unroll") for (int k = 0; k < 4; k++) {
    r[k] = shuffle2(s[k], s[k + 4], l);
    r[k + 4] = shuffle2(s[k], s[k + 4], h);
  }
}
#endif

#if KV_GROUPED
#define KV_STAGE(t) (&kvl[t][lrow])
#else
#define KV_STAGE(t) ((__local float *)0)
#endif

/* The block loop stays in the kernel's body: moved into an inline function, PoCL's CPU code
 * for the decode shape (ROWS 4) ran up to 1.5x slower, with the same results. */
/* AMD (clang's amdgcn target): the decode mat-vec asks for at least half the waves per SIMD,
 * 8 of 16 on RDNA's wave32 (<= 128 VGPRs), 4 of 8 on GCN/CDNA's wave64 (<= 128 of 512); the
 * 8-value pieces make it fit without scratch (scripts/gpu-report, docs/GPU.md) for the weight
 * types below; the others (Q5_0/Q5_1 and the K-quants) would spill to fit. */
/* F32 F16 BF16 Q4_0 Q4_1 Q8_0 IQ4_NL IQ4_XS (contract.h ids: used in #if) */
#define CLKV_WAVES_FIT(t) ((t) <= 3 || (t) == 8 || (t) == 20 || (t) == 23 || (t) == 30)
#if defined(__AMDGCN__) && CLKV_PIECES && CLKV_WAVES_FIT(WTYPE) && !defined(CLKV_NO_WAVES_HINT)
#if defined(__AMDGCN_WAVEFRONT_SIZE) && __AMDGCN_WAVEFRONT_SIZE == 32
#define CLKV_MATVEC_HINT __attribute__((amdgpu_waves_per_eu(8)))
#elif WTYPE != 8 && WTYPE != 23 /* Q8_0 and IQ4_XS spill at 128 on gfx90a */
#define CLKV_MATVEC_HINT __attribute__((amdgpu_waves_per_eu(4)))
#else
#define CLKV_MATVEC_HINT
#endif
#else
#define CLKV_MATVEC_HINT
#endif
__kernel __attribute__((reqd_work_group_size(KSPLIT, RG, 1))) CLKV_MATVEC_HINT
void clkv_matvec(__global const uchar *W, uint rows, uint cols,
                 __global const float *X, uint x_row0, uint n_tok,
                 __global const float *norm_w, float eps,
                 __global float *Y,
                 __global uchar *kc, __global uchar *vc, __global const int *btab,
                 __global const int *tok_seq, __global const int *tok_pos,
                 __global const float *inv_freq, uint q_rows, uint kv_rows,
                 uint layer_base, uint max_blocks, __local char *xq, __local float *xf) {
  const uint ks = get_local_id(0);
  const uint r0 = (get_group_id(1) * RG + get_local_id(1)) * ROWS;
  const uint t0 = get_group_id(2) * TT;
  const uint nb = cols / 32;
  const size_t row_bytes = clkv_row_bytes(WTYPE, cols);
#if USE_OUTER && !USE_OUTER_I8
  __local float wl[RG][ROWS][32]; /* each work-item's dequantized block (the outer product) */
#endif

  float sum[ROWS][TT], ssum[TT];
  float8 ss[TT];
#if TT == 1
  float8 acc[ROWS];
  float off[ROWS];
  CLKV_UNROLL for (int r = 0; r < ROWS; r++) acc[r] = (float8)(0.0f), off[r] = 0.0f;
#endif
  CLKV_UNROLL for (int t = 0; t < TT; t++) {
    ss[t] = (float8)(0.0f);
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) sum[r][t] = 0.0f;
  }

#if USE_INT8
  { /* x (times the norm weight) to int8, each work-item a share of the blocks */
    const uint li = get_local_id(1) * KSPLIT + ks;
    float8 ssp = (float8)(0.0f);
    for (uint b = li; b < nb; b += KSPLIT * RG) {
      const __global float *xp = X + (size_t)(x_row0 + t0) * cols + b * 32;
      float8 x0 = vload8(0, xp), x1 = vload8(1, xp), x2 = vload8(2, xp), x3 = vload8(3, xp);
#if NORM
      const __global float *np = norm_w + b * 32;
      ssp += x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3;
      x0 *= vload8(0, np); x1 *= vload8(1, np); x2 *= vload8(2, np); x3 *= vload8(3, np);
#endif
      vstore2(clkv_quant32_q8(x0, x1, x2, x3, xq + b * 32), b, xf);
    }
    xf[2 * nb + li] = clkv_hsum8(ssp);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  /* (re)set after the barrier: nothing of this work-item's state then lives across it, which
   * on PoCL would move the accumulators into memory) */
  ss[0] = (float8)(0.0f);
  CLKV_UNROLL for (int r = 0; r < ROWS; r++) acc[r] = (float8)(0.0f), off[r] = 0.0f;
  if (ks == 0) /* the norm's sum of squares once per row group (the split lanes add up) */
    for (uint i = 0; i < KSPLIT * RG; i++) ss[0].s0 += xf[2 * nb + i];
#if KSPLIT == 1
  /* One row at a time, its blocks in order: the work-item reads one stream of weights, which
   * the CPU's prefetchers follow (the output head, 29 MB of Q8_0 from DRAM: 4.8 ms with the
   * ROWS rows read side by side, 1.2 ms one after another, one PoCL thread). x comes from
   * the local copy (L1). Two accumulators, even and odd blocks, halve the add chain.
   * No branch: a row past the matrix's reads the last one, and the epilogue skips it. */
  CLKV_UNROLL_ROWS for (int r = 0; r < ROWS; r++) {
    const __global uchar *wr = W + (size_t)min(r0 + r, rows - 1) * row_bytes;
    float8 a0 = (float8)(0.0f), a1 = (float8)(0.0f);
    float o0 = 0.0f, o1 = 0.0f;
    uint b = ks;
    for (; b + KSPLIT < nb; b += 2 * KSPLIT) {
      char16 xl, xh;
      clkv_ix32(xq + b * 32, &xl, &xh);
      CLKV_I8_STEP(wr, b, WTYPE, xl, xh, vload2(b, xf), a0, o0);
      clkv_ix32(xq + (b + KSPLIT) * 32, &xl, &xh);
      CLKV_I8_STEP(wr, b + KSPLIT, WTYPE, xl, xh, vload2(b + KSPLIT, xf), a1, o1);
    }
    if (b < nb) {
      char16 xl, xh;
      clkv_ix32(xq + b * 32, &xl, &xh);
      CLKV_I8_STEP(wr, b, WTYPE, xl, xh, vload2(b, xf), a0, o0);
    }
    acc[r] = a0 + a1;
    off[r] = o0 + o1;
  }
#else
  /* GPU shapes (KSPLIT > 1; the tuner may choose int8 there): the blocks outer, the ROWS rows
   * side by side (the row-by-row loop above gave Intel's tgllp 1024 bytes of scratch). */
  for (uint b = ks; b < nb; b += KSPLIT) {
    char16 xl, xh;
    clkv_ix32(xq + b * 32, &xl, &xh);
    const float2 xds = vload2(b, xf);
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) {
      if (r0 + r < rows)
        CLKV_I8_STEP(W + (size_t)(r0 + r) * row_bytes, b, WTYPE, xl, xh, xds, acc[r], off[r]);
    }
  }
#endif
#elif CLKV_KQ_SB
  {
    const __global float *xrow = X + (size_t)(x_row0 + min(t0, n_tok - 1)) * cols;
    const uint nsb = cols / 256, sbytes = clkv__wt_block_bytes(WTYPE);
    for (uint sb = 0; sb < nsb; sb++) {
      /* no branch: a row past the matrix's reads the last one, and the epilogue skips it */
      const __global uchar *p[ROWS];
      float8 a[ROWS], b[ROWS];
      _Pragma("unroll") for (int r = 0; r < ROWS; r++) {
        p[r] = W + (size_t)min(r0 + r, rows - 1) * row_bytes + (size_t)sb * sbytes;
        clkv_kq_scales(p[r], WTYPE, &a[r], &b[r]);
      }
      float xs[8];
      _Pragma("unroll") for (int j = 0; j < 8; j++) {
        const __global float *xp = xrow + sb * 256 + j * 32;
        float8 x0 = vload8(0, xp), x1 = vload8(1, xp), x2 = vload8(2, xp), x3 = vload8(3, xp);
#if NORM
        const __global float *np = norm_w + sb * 256 + j * 32;
        ss[0] += x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3;
        x0 *= vload8(0, np); x1 *= vload8(1, np); x2 *= vload8(2, np); x3 *= vload8(3, np);
#endif
        xs[j] = clkv_hsum8(x0 + x1 + x2 + x3);
        _Pragma("unroll") for (int r = 0; r < ROWS; r++)
          acc[r] += clkv_kq_dot(p[r], j, WTYPE, a[r], b[r], x0, x1, x2, x3);
      }
#if WTYPE != 14 /* the mins of Q4_K/Q5_K: dmin * min_j times sub-block j's sum of x */
      const float8 xs8 = (float8)(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], xs[6], xs[7]);
      _Pragma("unroll") for (int r = 0; r < ROWS; r++) acc[r] -= b[r] * xs8;
#endif
    }
  }
#elif CLKV_PIECES
  /* GPU decode: the block in four pieces of 8 values (x, its norm weight, each row's
   * dequantized piece), so a quarter of the block is live at a time (docs/GPU.md). */
  /* No branch in the block: a row (token) past the matrix's reads the last one, and the
   * epilogue skips it; branches around each piece serialize its loads. */
  const __global float *xrow = X + (size_t)(x_row0 + min(t0, n_tok - 1)) * cols;
  for (uint b = ks; b < nb; b += KSPLIT) {
    const __global float *xp = xrow + b * 32;
#if NORM
    const __global float *np = norm_w + b * 32;
#endif
    float8 xsv = (float8)(0.0f), part[ROWS];
    float d[ROWS], m[ROWS];
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) part[r] = (float8)(0.0f);
    CLKV_UNROLL for (int k = 0; k < 4; k++) {
      float8 xk = vload8(k, xp);
#if NORM
      ss[0] += xk * xk;
      xk *= vload8(k, np);
#endif
      xsv += xk;
      CLKV_UNROLL for (int r = 0; r < ROWS; r++)
        part[r] += clkv_q8p(W + (size_t)min(r0 + r, rows - 1) * row_bytes, b, WTYPE, k, &d[r],
                            &m[r]) * xk;
    }
    const float xs = clkv_hsum8(xsv);
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) acc[r] += d[r] * part[r], off[r] += m[r] * xs;
  }
#elif USE_OUTER
  /* Prefill on CPUs (prefill.form 2): the work-group's token tile of x (times the norm
   * weight), transposed into local memory once (xt[cols][TT]; xq holds cols * TT floats),
   * and each token's sum of squares (xf[TT]); then each work-item takes its ROWS rows x TT
   * tokens as an outer product: per column, ROWS dequantized weights (from the local copy
   * wl) broadcast against the column's TT tokens in float8s, ROWS * TT / 8 accumulators in
   * registers and no horizontal sum in the block loop. The int8 tiles (USE_OUTER_I8) take the
   * same shape with x quantized instead of transposed as floats (below). */
  pvec acc[ROWS][TT / PVW];
  { /* work-item li: for each group of 8 tokens, the blocks li, li + RG, ...: the float form
     * stores them as 8 x 8 tiles of x transposed (xt[cols][TT]); the int8 tiles quantize each
     * token's block (8 words of q + 128; its dx and sx beside) and transpose the 8 x 8 words */
    const uint li = get_local_id(1);
    for (uint g = 0; g < TT / 8; g++) {
      const __global float *xp[8];
      int live[8];
      float8 ssv[8];
      _Pragma("unroll") for (int i = 0; i < 8; i++) {
        live[i] = t0 + g * 8 + i < n_tok;
        xp[i] = X + (size_t)(x_row0 + min(t0 + g * 8 + i, n_tok - 1)) * cols;
        ssv[i] = (float8)(0.0f);
      }
      for (uint b = li; b < nb; b += RG) {
#if USE_OUTER_I8
        __local float *xw = (__local float *)xq, *xd = xw + nb * 8 * TT, *xs = xd + nb * TT;
        float8 v[8];
        _Pragma("unroll") for (int i = 0; i < 8; i++) {
          const __global float *p = xp[i] + b * 32;
          float8 x0 = vload8(0, p), x1 = vload8(1, p), x2 = vload8(2, p), x3 = vload8(3, p);
          if (!live[i]) x0 = x1 = x2 = x3 = (float8)(0.0f);
          ssv[i] += x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3;
#if NORM
          const __global float *np = norm_w + b * 32;
          x0 *= vload8(0, np); x1 *= vload8(1, np); x2 *= vload8(2, np); x3 *= vload8(3, np);
#endif
          int8 q0, q1, q2, q3;
          const float2 ds = clkv_quant32_i(x0, x1, x2, x3, &q0, &q1, &q2, &q3);
          v[i] = as_float8((int8)(as_int2(convert_char8(q0)), as_int2(convert_char8(q1)),
                                  as_int2(convert_char8(q2)), as_int2(convert_char8(q3))) ^
                           (int)0x80808080);
          xd[b * TT + g * 8 + i] = ds.x;
          xs[b * TT + g * 8 + i] = ds.y;
        }
        clkv_tr8(v);
        _Pragma("unroll") for (int j = 0; j < 8; j++) vstore8(v[j], 0, xw + (b * 8 + j) * TT + g * 8);
#else
        __local float *xt = (__local float *)xq;
        _Pragma("unroll") for (int q = 0; q < 4; q++) {
          const uint k = b * 32 + q * 8;
          float8 v[8];
#if NORM
          const float8 nw = vload8(0, norm_w + k);
#endif
          _Pragma("unroll") for (int i = 0; i < 8; i++) {
            v[i] = live[i] ? vload8(0, xp[i] + k) : (float8)(0.0f);
            ssv[i] = fma(v[i], v[i], ssv[i]);
#if NORM
            v[i] *= nw;
#endif
          }
          clkv_tr8(v);
          _Pragma("unroll") for (int j = 0; j < 8; j++) vstore8(v[j], 0, xt + (k + j) * TT + g * 8);
        }
#endif
      }
      _Pragma("unroll") for (int i = 0; i < 8; i++) xf[li * TT + g * 8 + i] = clkv_hsum8(ssv[i]);
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
#if USE_OUTER_I8
  { /* per block: each row's 32 integers as 8 words (wq) and -128 * their sum; per PVW tokens,
     * the block's 8 words of x in registers, each row's 8 dots from that start, converted to
     * float once and scaled by d * dx, plus the weight offset m * sx */
    __local const int *xw = (__local const int *)xq;
    __local const float *xd = (__local const float *)xw + nb * 8 * TT, *xs = xd + nb * TT;
    _Pragma("unroll") for (int r = 0; r < ROWS; r++)
      _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) acc[r][j] = (pvec)(0.0f);
    for (uint b = 0; b < nb; b++) {
      int wq[ROWS * 8];
      int w0[ROWS], w1[ROWS];
      float wd[ROWS], wd2[ROWS], wm[ROWS];
      _Pragma("unroll") for (int r = 0; r < ROWS; r++) {
        char16 wl, wh;
        const __global uchar *wr = W + (size_t)min(r0 + r, rows - 1) * row_bytes;
#if CLKV_INT8_TYPE(WTYPE)
        clkv_iw32(wr, b, WTYPE, &wl, &wh, &wd[r], &wm[r]);
        wd2[r] = wd[r];
#else
        clkv_iw32k(wr, b, WTYPE, &wl, &wh, &wd[r], &wd2[r], &wm[r]);
#endif
        vstore8((int8)(as_int4(wl), as_int4(wh)), r, wq);
        const short8 sl = convert_short16(wl).lo + convert_short16(wl).hi;
        const short8 sh = convert_short16(wh).lo + convert_short16(wh).hi;
#if CLKV_INT8_TWO_SCALES(WTYPE) /* each half its own start: its own scale */
        const short4 l4 = sl.lo + sl.hi, h4 = sh.lo + sh.hi;
        w0[r] = -128 * ((int)l4.x + (int)l4.y + (int)l4.z + (int)l4.w);
        w1[r] = -128 * ((int)h4.x + (int)h4.y + (int)h4.z + (int)h4.w);
#else
        const short8 s8 = sl + sh;
        const short4 s4 = s8.lo + s8.hi;
        w0[r] = -128 * ((int)s4.x + (int)s4.y + (int)s4.z + (int)s4.w);
        w1[r] = 0;
#endif
      }
      _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) {
        __local const int *xb = xw + b * 8 * TT + j * PVW;
        pveci xv[8];
        _Pragma("unroll") for (int k = 0; k < 8; k++) xv[k] = PVI_LOAD(0, xb + k * TT);
        const pvec dx = PV_LOAD(0, xd + b * TT + j * PVW), sx = PV_LOAD(0, xs + b * TT + j * PVW);
        _Pragma("unroll") for (int r = 0; r < ROWS; r++) {
          pveci a = (pveci)(w0[r]);
#if CLKV_INT8_TWO_SCALES(WTYPE) /* Q6_K: words 0-3 and 4-7 summed apart */
          pveci a2 = (pveci)(w1[r]);
          _Pragma("unroll") for (int k = 0; k < 4; k++) PVI_DP(a, xv[k], wq, r * 8 + k);
          _Pragma("unroll") for (int k = 4; k < 8; k++) PVI_DP(a2, xv[k], wq, r * 8 + k);
          acc[r][j] = fma(convert_pvec(a2), dx * wd2[r], acc[r][j]);
#else
          _Pragma("unroll") for (int k = 0; k < 8; k++) PVI_DP(a, xv[k], wq, r * 8 + k);
#endif
          acc[r][j] = fma(convert_pvec(a), dx * wd[r], acc[r][j]);
          if (!CLKV_INT8_NO_M(WTYPE)) /* Q8_0's and Q6_K's m is 0 */
            acc[r][j] = fma((pvec)(wm[r]), sx, acc[r][j]);
        }
      }
    }
  }
#else
  {
    __local const float *xt = (__local const float *)xq;
    __local float (*wd)[32] = wl[get_local_id(1)];
    _Pragma("unroll") for (int r = 0; r < ROWS; r++)
      _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) acc[r][j] = (pvec)(0.0f);
    for (uint b = 0; b < nb; b++) {
      _Pragma("unroll") for (int r = 0; r < ROWS; r++) {
        float8 w0, w1, w2, w3;
        clkv_deq32(W + (size_t)min(r0 + r, rows - 1) * row_bytes, b, WTYPE, &w0, &w1, &w2, &w3);
        vstore8(w0, 0, wd[r]); vstore8(w1, 1, wd[r]); vstore8(w2, 2, wd[r]); vstore8(w3, 3, wd[r]);
      }
      __local const float *xb = xt + (size_t)b * 32 * TT;
      for (int k = 0; k < 32; k++) {
        pvec xv[TT / PVW];
        _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) xv[j] = PV_LOAD(j, xb + k * TT);
        _Pragma("unroll") for (int r = 0; r < ROWS; r++) {
          const pvec w = (pvec)(wd[r][k]);
          _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) acc[r][j] = fma(w, xv[j], acc[r][j]);
        }
      }
    }
  }
#endif
  {
    /* the tile's sums of squares (RG shares per token), PVW tokens at a time: scalar, the
     * adds grew with RG in every work-item */
    pvec ssq[TT / PVW];
    for (int j = 0; j < TT / PVW; j++) {
      ssq[j] = (pvec)(0.0f);
      for (int g = 0; g < RG; g++) ssq[j] += PV_LOAD(0, xf + g * TT + PVW * j);
    }
#if EPI == CLKV__EPI_QKV
    /* RoPE here, PVW tokens at a time (vector cos and sin), not per token in the epilogue:
     * scalar, it was about half of the QKV kernel's time */
    {
      pvec posv[TT / PVW];
      for (int j = 0; j < TT / PVW; j++) {
        float p[PVW];
        for (int i = 0; i < PVW; i++) p[i] = (float)tok_pos[min(t0 + PVW * j + i, n_tok - 1)];
        posv[j] = PV_LOAD(0, p);
      }
      _Pragma("unroll") for (int r = 0; r < ROWS; r += 2) {
        const uint R = r0 + r;
        if (R < rows && R < q_rows + kv_rows) {
          const float f = inv_freq[(R % HEAD_DIM) / 2];
          _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) {
            pvec c;
            const pvec sn = sincos(posv[j] * f, &c);
            const pvec y0 = acc[r][j], y1 = acc[r + 1][j];
            acc[r][j] = y0 * c - y1 * sn;
            acc[r + 1][j] = y0 * sn + y1 * c;
          }
        }
      }
    }
#endif
#if OUTER_EPI
    /* The gated activation (vector exp or tanh), the store or the add here, PVW tokens at a
     * time, written to Y; the epilogue below then has nothing to do (scalar there, the gated
     * one was ~30% of the gate/up kernel; PVW tokens of one row, a row of Y apart each,
     * became a 64-bit-indexed scatter). */
    {
      pvec sc[TT / PVW];
      for (int j = 0; j < TT / PVW; j++) {
#if NORM
        sc[j] = rsqrt(ssq[j] / (float)cols + eps);
#else
        sc[j] = (pvec)(1.0f);
#endif
      }
#if CLKV__EPI_GATED(EPI)
#define OUT_N (ROWS / 2) /* outputs per token: one per (gate, up) pair */
      float o[OUT_N][TT];
      _Pragma("unroll") for (int r = 0; r < ROWS; r += 2) {
        _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) {
          const pvec g = acc[r][j] * sc[j], u = acc[r + 1][j] * sc[j];
#if EPI == CLKV__EPI_GEGLU
          const pvec y = 0.5f * g * (1.0f + tanh(0.7978845608028654f * (g + 0.044715f * g * g * g))) * u;
#else
          const pvec y = g / (1.0f + exp(-g)) * u;
#endif
          PV_STORE(y, j, o[r / 2]);
        }
      }
#else
#define OUT_N ROWS
      float o[OUT_N][TT];
      _Pragma("unroll") for (int r = 0; r < ROWS; r++)
        _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) PV_STORE(acc[r][j] * sc[j], j, o[r]);
#endif
      /* per token its OUT_N outputs side by side (not vectorized across the tokens: a scatter) */
      const uint ycols = rows / (ROWS / OUT_N), y0 = r0 / (ROWS / OUT_N);
      _Pragma("clang loop vectorize(disable)") for (int t = 0; t < TT && t0 + t < n_tok; t++) {
        __global float *yp = Y + (size_t)(t0 + t) * ycols + y0;
        _Pragma("unroll") for (int p = 0; p < OUT_N; p++) {
          if (y0 + p < ycols) {
#if EPI == CLKV__EPI_ADD
            yp[p] += o[p][t];
#else
            yp[p] = o[p][t];
#endif
          }
        }
      }
#undef OUT_N
    }
#endif
    _Pragma("unroll") for (int r = 0; r < ROWS; r++)
      _Pragma("unroll") for (int j = 0; j < TT / PVW; j++) PV_STORE(acc[r][j], j, sum[r]);
    float s2[TT];
    for (int j = 0; j < TT / PVW; j++) PV_STORE(ssq[j], j, s2);
    for (int t = 0; t < TT; t++) ss[t] = (float8)(s2[t], 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f);
  }
#else
  for (uint b = ks; b < nb; b += KSPLIT) {
    float8 x[TT][4];
    float xs[TT];
#if NORM
    const __global float *np = norm_w + b * 32;
    const float8 n0 = vload8(0, np), n1 = vload8(1, np), n2 = vload8(2, np), n3 = vload8(3, np);
#endif
    CLKV_UNROLL for (int t = 0; t < TT; t++) {
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
#if TT == 1
    /* no branch: a row past the matrix's reads the last one, and the epilogue skips it */
    CLKV_UNROLL_ROWS for (int r = 0; r < ROWS; r++)
      clkv_dot32_acc(W + (size_t)min(r0 + r, rows - 1) * row_bytes, b, WTYPE, x[0][0], x[0][1],
                     x[0][2], x[0][3], xs[0], &acc[r], &off[r]);
#else
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) {
      if (r0 + r < rows) {
        const __global uchar *row = W + (size_t)(r0 + r) * row_bytes;
        float8 w0, w1, w2, w3;
        clkv_deq32(row, b, WTYPE, &w0, &w1, &w2, &w3);
        CLKV_UNROLL for (int t = 0; t < TT; t++)
          sum[r][t] += clkv_hsum8(w0 * x[t][0] + w1 * x[t][1] + w2 * x[t][2] + w3 * x[t][3]);
      }
    }
#endif
  }
#endif
  CLKV_UNROLL for (int t = 0; t < TT; t++) ssum[t] = clkv_hsum8(ss[t]);
#if TT == 1
  CLKV_UNROLL for (int r = 0; r < ROWS; r++) sum[r][0] = clkv_hsum8(acc[r]) + off[r];
#endif

#if KSPLIT > 1
  /* Combine the KSPLIT partial sums of each row (and of the norm). */
  __local float red[RG][ROWS * TT + TT][KSPLIT];
  const uint lg = get_local_id(1);
  CLKV_UNROLL for (int t = 0; t < TT; t++) {
    red[lg][ROWS * TT + t][ks] = ssum[t];
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) red[lg][r * TT + t][ks] = sum[r][t];
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
  CLKV_UNROLL for (int t = 0; t < TT; t++) {
    ssum[t] = red[lg][ROWS * TT + t][0];
    CLKV_UNROLL for (int r = 0; r < ROWS; r++) sum[r][t] = red[lg][r * TT + t][0];
  }
#else
  const int live = !OUTER_EPI; /* the outer product's own epilogue: done */
#endif
#if KV_GROUPED
  __local float kvl[TT][RG * ROWS]; /* this workgroup's K/V values, for the group scales */
  const uint lrow = get_local_id(1) * ROWS;
#endif

  const clkv_qkv_dst dst = {.Y = Y, .kc = kc, .vc = vc, .btab = btab, .tok_seq = tok_seq,
                           .tok_pos = tok_pos, .inv_freq = inv_freq, .rows = rows,
                           .q_rows = q_rows, .kv_rows = kv_rows, .layer_base = layer_base,
                           .max_blocks = max_blocks};
  CLKV_UNROLL for (int t = 0; t < TT && live; t++) {
    const uint tt = t0 + t;
    if (tt >= n_tok) break;
#if NORM
    const float scale = rsqrt(ssum[t] / (float)cols + eps);
#else
    const float scale = 1.0f;
#endif
#if EPI == CLKV__EPI_STORE
    clkv_epi_store(sum, t, scale, tt, r0, rows, Y);
#elif EPI == CLKV__EPI_ADD
    clkv_epi_add(sum, t, scale, tt, r0, rows, Y);
#elif CLKV__EPI_GATED(EPI)
    clkv_epi_swiglu(sum, t, scale, tt, r0, rows, Y);
#else
    clkv_epi_qkv(&dst, sum, t, scale, tt, r0, KV_STAGE(t));
#endif
  }
#if KV_GROUPED
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int t = 0; t < TT && live; t++) {
    if (t0 + t >= n_tok) break;
    clkv_qkv_store_groups(&dst, kvl[t], lrow, t0 + t, r0);
  }
#endif
}

/* attention.cl — attention over the paged KV cache (F16, Q8 or Q4; layout in common.cl):
 *   clkv_attn_paged: any batch of tokens (decode: one per sequence), one workgroup per
 *     (token, head), ATT_WG threads split the positions, online softmax, then combined;
 *   clkv_attn_prefill: a chunk of consecutive tokens of one sequence, tiled flash-style:
 *     TQ queries per workgroup share K/V tiles of TK positions in local memory; causal.
 * GQA: query head h reads kv head h / (n_heads / N_KV). */
#ifndef ATT_WG
#define ATT_WG 16
#endif
#ifndef TQ
#define TQ 16
#endif
#ifndef TK
#define TK 32
#endif
#ifndef WINDOW
#define WINDOW 0 /* sliding window: a position attends to the last WINDOW positions; 0 = all */
#endif
#define HD4 (HEAD_DIM / 4)
/* acc[] (and the prefill's qv[]), HD4 float4 each, stay in registers only where every index is
 * a constant: the loops over them are unrolled, or GPUs keep them in stack/scratch memory. */
#define CLKV_UNROLL _Pragma("unroll")
/* Loops over local memory or global loads, unrolled four at a time: fully unrolled (LLVM's
 * default for constant trip counts) the AMD compiler issues all their loads at once, up to
 * 256 VGPRs per lane in the paged kernel; by four it needs about 60. */
#define CLKV_UNROLL_4 _Pragma("unroll 4")

/* CLKV_ATT_CPU: the paged kernel's path for CPUs, chosen where the OpenCL compiler targets
 * an x86 vector ISA (PoCL, Intel's CPU runtime): whole KV rows in 16-wide registers. */
#ifndef CLKV_ATT_CPU
#if (defined(__AVX512F__) || defined(__AVX2__)) && HEAD_DIM % 16 == 0
#define CLKV_ATT_CPU 1
#else
#define CLKV_ATT_CPU 0
#endif
#endif

/* QPK: query heads per KV head (the host passes n_heads / N_KV; 1: not known). The CPU form
 * takes a KV head's QPK query heads in one work-group (ATT_G > 1), so each K and V row is
 * loaded and converted from fp16 once, not once per query head (the conversion is most of the
 * work per position); the other work-groups of the group return at once. Only where the
 * heads' q and sums fit the 32 AVX-512 registers (QPK * HD16 <= 16: SmolLM2's 3 x 4, not
 * Gemma 3's 4 x 16). */
#ifndef QPK
#define QPK 1
#endif
#if CLKV_ATT_CPU && QPK > 1 && QPK * HEAD_DIM / 16 <= 16
#define ATT_G QPK
#else
#define ATT_G 1
#endif

#if CLKV_ATT_CPU
#define HD16 (HEAD_DIM / 16)

/* Values d0 .. d0+15 (d0 % 16 == 0) of KV row (kvh, slot). F16 is converted by integer ops:
 * vload_half is a software routine of ~25 instructions a value on PoCL 3.1 (docs/PERF-NOTES):
 * the magnitude's bits shifted into a float's place and scaled by 2^112 rebias the exponent
 * exactly, subnormals included, then the sign goes back in (inf and NaN, which the cache
 * never holds, are not kept). */
static inline float16 clkv_attn_kv16(const __global uchar *c, size_t base, uint kvh, uint slot, uint d0) {
#if KV_TYPE == CLKV__KV_F16
  const uint16 u = convert_uint16(vload16(
      0, (const __global ushort *)(c + base) + (size_t)(kvh * KV_BS + slot) * HEAD_DIM + d0));
  return as_float16(as_uint16(as_float16((u & 0x7fffu) << 13) * 0x1p112f) | ((u & 0x8000u) << 16));
#else
  return (float16)(clkv_kv_load4(c, base, kvh, slot, d0), clkv_kv_load4(c, base, kvh, slot, d0 + 4),
                   clkv_kv_load4(c, base, kvh, slot, d0 + 8), clkv_kv_load4(c, base, kvh, slot, d0 + 12));
#endif
}
#endif /* CLKV_ATT_CPU */

/* The first position that position p attends to. */
static inline int clkv_attn_first(int p) { return WINDOW > 0 && p >= WINDOW ? p - WINDOW + 1 : 0; }

__kernel __attribute__((reqd_work_group_size(ATT_WG, 1, 1)))
void clkv_attn_paged(__global const float *Q, __global const uchar *kc, __global const uchar *vc,
                     __global const int *btab, __global const int *tok_seq,
                     __global const int *tok_pos, __global float *O, uint n_heads,
                     uint layer_base, uint max_blocks, float scale) {
  const uint lid = get_local_id(0);
  const uint h = get_group_id(0);
  const uint t = get_group_id(1);
  const uint kvh = h / (n_heads / N_KV);
  const int pos = tok_pos[t];
  const int seq = tok_seq[t];
#if ATT_G > 1
  if (h % ATT_G != 0) return; /* the group's first work-group does its ATT_G heads */
#endif

  /* q is the same for every lane: one copy in local memory. Each lane's output accumulator is
   * a column of la (transposed: lanes read neighbouring float4), not HD4 float4 registers:
   * with q, K and V values in flight those took 170-210 registers per lane on GPUs. */
  __local float4 lq[HD4];
  __local float4 la[ATT_G][HD4][ATT_WG];
  __local float lm[ATT_WG], ll[ATT_WG];
  float m[ATT_G], l[ATT_G];
  for (int g = 0; g < ATT_G; g++) m[g] = -INFINITY, l[g] = 0.0f;
#if CLKV_ATT_CPU
  /* CPU: a lane's loop over its positions is not vectorized across lanes (its trip count
   * differs per lane), so each lane works on whole rows in 16-wide vectors held in registers
   * (AVX-512 has 32), then leaves its sums in la for the combination below. m = -inf with l = 0
   * (a lane without blocks) gives exp(m - M) = 0 there. */
  float16 q16[ATT_G][HD16], a16[ATT_G][HD16];
  CLKV_UNROLL for (int g = 0; g < ATT_G; g++) {
    const __global float *q = Q + ((size_t)t * n_heads + h + g) * HEAD_DIM;
    CLKV_UNROLL for (int i = 0; i < HD16; i++) {
      q16[g][i] = vload16(i, q) * scale;
      a16[g][i] = (float16)(0.0f);
    }
  }
  /* lanes take whole KV blocks in turn: one block-table read, contiguous rows, and the
   * running sums rescaled once per block, not once per position */
  const int first = clkv_attn_first(pos);
  for (int b = first / KV_BS + (int)lid; b <= pos / KV_BS; b += ATT_WG) {
    const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + b]);
    const int p0 = b * KV_BS;
    float sc[ATT_G][KV_BS], bm[ATT_G];
    CLKV_UNROLL for (int g = 0; g < ATT_G; g++) bm[g] = -INFINITY;
    for (int j = 0; j < KV_BS; j++) {
      const int p = p0 + j;
      float16 d[ATT_G];
      float16 k = clkv_attn_kv16(kc, base, kvh, (uint)j, 0);
      CLKV_UNROLL for (int g = 0; g < ATT_G; g++) d[g] = q16[g][0] * k;
      CLKV_UNROLL for (int i = 1; i < HD16; i++) {
        k = clkv_attn_kv16(kc, base, kvh, (uint)j, 16 * i);
        CLKV_UNROLL for (int g = 0; g < ATT_G; g++) d[g] += q16[g][i] * k;
      }
      CLKV_UNROLL for (int g = 0; g < ATT_G; g++) {
        const float8 d8 = d[g].lo + d[g].hi;
        const float4 d4 = d8.lo + d8.hi;
        sc[g][j] = p >= first && p <= pos ? (d4.x + d4.y) + (d4.z + d4.w) : -INFINITY;
        bm[g] = fmax(bm[g], sc[g][j]);
      }
    }
    float mn[ATT_G];
    CLKV_UNROLL for (int g = 0; g < ATT_G; g++) {
      mn[g] = fmax(m[g], bm[g]);
      const float corr = exp(m[g] - mn[g]);
      l[g] *= corr;
      CLKV_UNROLL for (int i = 0; i < HD16; i++) a16[g][i] *= corr;
    }
    for (int j = 0; j < KV_BS; j++) {
      if (p0 + j < first || p0 + j > pos) continue;
      float w[ATT_G];
      CLKV_UNROLL for (int g = 0; g < ATT_G; g++) {
        w[g] = exp(sc[g][j] - mn[g]);
        l[g] += w[g];
      }
      CLKV_UNROLL for (int i = 0; i < HD16; i++) {
        const float16 v = clkv_attn_kv16(vc, base, kvh, (uint)j, 16 * i);
        CLKV_UNROLL for (int g = 0; g < ATT_G; g++) a16[g][i] += w[g] * v;
      }
    }
    CLKV_UNROLL for (int g = 0; g < ATT_G; g++) m[g] = mn[g];
  }
  CLKV_UNROLL for (int g = 0; g < ATT_G; g++)
    CLKV_UNROLL for (int i = 0; i < HD16; i++) {
      la[g][4 * i][lid] = a16[g][i].s0123;
      la[g][4 * i + 1][lid] = a16[g][i].s4567;
      la[g][4 * i + 2][lid] = a16[g][i].s89ab;
      la[g][4 * i + 3][lid] = a16[g][i].scdef;
    }
  barrier(CLK_LOCAL_MEM_FENCE);
#else
  const __global float *q = Q + ((size_t)t * n_heads + h) * HEAD_DIM;
  CLKV_UNROLL_4 for (uint i = lid; i < HD4; i += ATT_WG) lq[i] = vload4(i, q) * scale;
  CLKV_UNROLL_4 for (int i = 0; i < HD4; i++) la[0][i][lid] = (float4)(0.0f);
  barrier(CLK_LOCAL_MEM_FENCE);
  CLKV_UNROLL_4 for (int p = clkv_attn_first(pos) + lid; p <= pos; p += ATT_WG) {
    const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + p / KV_BS]);
    const uint slot = p % KV_BS;
    float s = 0.0f;
    CLKV_UNROLL_4 for (int i = 0; i < HD4; i++) s += dot(lq[i], clkv_kv_load4(kc, base, kvh, slot, 4 * i));
    const float mn = fmax(m[0], s);
    const float corr = exp(m[0] - mn), w = exp(s - mn);
    l[0] = l[0] * corr + w;
    CLKV_UNROLL_4 for (int i = 0; i < HD4; i++)
      la[0][i][lid] = la[0][i][lid] * corr + w * clkv_kv_load4(vc, base, kvh, slot, 4 * i);
    m[0] = mn;
  }
#endif

  /* the lanes' partial sums combined, head by head */
  for (int g = 0; g < ATT_G; g++) {
    lm[lid] = m[g];
    ll[lid] = l[g];
    barrier(CLK_LOCAL_MEM_FENCE);
    float M = -INFINITY;
    CLKV_UNROLL_4 for (int j = 0; j < ATT_WG; j++) M = fmax(M, lm[j]);
    barrier(CLK_LOCAL_MEM_FENCE);
    /* each lane's rescale factor once, not ATT_WG exp() per lane and output column */
    lm[lid] = exp(m[g] - M);
    barrier(CLK_LOCAL_MEM_FENCE);
    float L = 0.0f;
    CLKV_UNROLL_4 for (int j = 0; j < ATT_WG; j++) L += ll[j] * lm[j];
    __global float *o = O + ((size_t)t * n_heads + h + g) * HEAD_DIM;
    CLKV_UNROLL_4 for (uint c = lid; c < HD4; c += ATT_WG) {
      float4 s = (float4)(0.0f);
      CLKV_UNROLL_4 for (int j = 0; j < ATT_WG; j++) s += la[g][c][j] * lm[j];
      vstore4(s / L, c, o);
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* lm and ll are the next head's */
  }
}

/* The prefill kernel keeps its accumulator (HD4 float4) and PF_QR float4 of q in registers,
 * the rest of q in local memory (a column per lane). At head size 128, q and the accumulator
 * (256 floats) do not fit in a GPU's 255 registers (clang/LLVM 15: sm_90 136 bytes of stack
 * and spills, gfx1030 620 bytes of scratch): half of q moves to local memory (8 KiB at TQ 32;
 * sm_90: no stack), on AMD all of it (16 KiB; the AMD compiler hoists the tile's loads and
 * still spills with half: 328 bytes of scratch, 72 with none). Smaller heads keep q whole. */
#ifndef PF_QR
#if HEAD_DIM <= 64
#define PF_QR HD4
#elif defined(__AMDGCN__)
#define PF_QR 0
#else
#define PF_QR (HD4 / 2)
#endif
#endif
/* CLKV_PF_TILE: the tile at once, for AMD at head size > 64. The key-at-a-time loop rescales
 * the accumulator for every key (acc * corr + w * v: the AMD compiler puts each new value in
 * another register than the old one), inside branches on the causal mask: gfx1030 needed 256
 * VGPRs and 72 bytes of scratch at head 128 even with q wholly in local memory. Here a lane first scores the tile's
 * keys (into Ps, its column), rescales the accumulator once by the tile's maximum, then adds
 * w * v in place (a fused multiply-add per value): 179 VGPRs, no scratch; no branch on the
 * causal mask (masked keys score -inf, weigh 0) and none on `valid` (a lane past the chunk
 * computes for nothing, it stores nothing). Elsewhere it is worse (sm_90 and gfx1030 at head
 * 64 more registers, Intel twice the scratch), and PoCL keeps the loop it was measured with;
 * the kernel tests force it on (-DCLKV_PF_TILE=1). */
#ifndef CLKV_PF_TILE
#if HEAD_DIM > 64 && defined(__AMDGCN__)
#define CLKV_PF_TILE 1
#else
#define CLKV_PF_TILE 0
#endif
#endif
/* CLKV_ATT_PF_CPU: the prefill kernel's path for CPUs (where CLKV_ATT_CPU is chosen, TK a
 * multiple of 8); the other devices keep the form below it. */
#ifndef CLKV_ATT_PF_CPU
#if CLKV_ATT_CPU && TK % 8 == 0 && HEAD_DIM % 8 == 0
#define CLKV_ATT_PF_CPU 1
#else
#define CLKV_ATT_PF_CPU 0
#endif
#endif
#define HD8 (HEAD_DIM / 8)
__kernel __attribute__((reqd_work_group_size(TQ, 1, 1)))
void clkv_attn_prefill(__global const float *Q, __global const uchar *kc,
                       __global const uchar *vc, __global const int *btab, uint seq,
                       uint pos0, uint n_tok, __global float *O, uint n_heads,
                       uint layer_base, uint max_blocks, float scale) {
  const uint lid = get_local_id(0);
  const uint tile = get_group_id(0);
  const uint h = get_group_id(1);
  const uint kvh = h / (n_heads / N_KV);
  const uint qi = tile * TQ + lid;
  const int valid = qi < n_tok;
  const uint mypos = pos0 + qi;
  const uint last = pos0 + min(n_tok, (tile + 1) * TQ) - 1;
#if CLKV_ATT_PF_CPU
  __local float Qc[TQ][HEAD_DIM], Kc[HEAD_DIM][TK], Vc[TK][HEAD_DIM];
  /* CPUs: a work-item per query, the key tile at a time. Keys transposed in local memory
   * (Kc[d][j]) so eight keys' scores are one float8, a broadcast q[d] times a row of Kt;
   * one exp per query-key pair and one rescale of the accumulator per tile (flash
   * attention's form); acc += w_j V_j with w_j broadcast against float8 rows of V. */
  const __global float *q = Q + ((size_t)(valid ? qi : 0) * n_heads + h) * HEAD_DIM;
  for (int i = 0; i < HD4; i++) vstore4(vload4(i, q) * scale, i, Qc[lid]);
  const uint lo = (uint)clkv_attn_first((int)(pos0 + tile * TQ));
  const uint mylo = (uint)clkv_attn_first((int)mypos);
  float8 acc[HD8];
  _Pragma("unroll") for (int i = 0; i < HD8; i++) acc[i] = (float8)(0.0f);
  float m = -INFINITY, l = 0.0f;
  for (uint kb = lo / TK * TK; kb <= last; kb += TK) {
    for (uint e = lid; e < TK * HD4; e += TQ) {
      const uint j = e / HD4, c = e % HD4, kp = kb + j;
      float4 k4 = (float4)(0.0f), v4 = (float4)(0.0f);
      if (kp <= last && kp >= lo) {
        const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + kp / KV_BS]);
        k4 = clkv_kv_load4(kc, base, kvh, kp % KV_BS, 4 * c);
        v4 = clkv_kv_load4(vc, base, kvh, kp % KV_BS, 4 * c);
      }
      Kc[4 * c][j] = k4.x; Kc[4 * c + 1][j] = k4.y; Kc[4 * c + 2][j] = k4.z; Kc[4 * c + 3][j] = k4.w;
      vstore4(v4, c, Vc[j]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (valid && kb <= mypos && kb + TK > mylo) {
      float8 s[TK / 8];
      _Pragma("unroll") for (int g = 0; g < TK / 8; g++) s[g] = (float8)(0.0f);
      for (int d = 0; d < HEAD_DIM; d++) {
        const float8 qd = (float8)(Qc[lid][d]);
        _Pragma("unroll") for (int g = 0; g < TK / 8; g++) s[g] = fma(qd, vload8(g, Kc[d]), s[g]);
      }
      float mt = m;
      const int8 j8 = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
      _Pragma("unroll") for (int g = 0; g < TK / 8; g++) {
        const int8 p = (int)(kb + 8 * g) + j8;
        s[g] = select((float8)(-INFINITY), s[g], p <= (int)mypos && p >= (int)mylo);
        const float8 a = s[g];
        const float4 a4 = fmax(a.lo, a.hi);
        const float2 a2 = fmax(a4.lo, a4.hi);
        mt = fmax(mt, fmax(a2.x, a2.y));
      }
      const float corr = exp(m - mt);
      float8 ws = (float8)(0.0f);
      _Pragma("unroll") for (int g = 0; g < TK / 8; g++) {
        s[g] = exp(s[g] - mt);
        ws += s[g];
      }
      l = l * corr + clkv_hsum8(ws);
      _Pragma("unroll") for (int i = 0; i < HD8; i++) acc[i] *= corr;
      _Pragma("unroll") for (int g = 0; g < TK / 8; g++) {
        float w[8];
        vstore8(s[g], 0, w);
        for (int jj = 0; jj < 8; jj++) {
          const float8 wj = (float8)(w[jj]);
          const __local float *vr = Vc[8 * g + jj];
          _Pragma("unroll") for (int i = 0; i < HD8; i++) acc[i] = fma(wj, vload8(i, vr), acc[i]);
        }
      }
      m = mt;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (valid) {
    __global float *o = O + ((size_t)qi * n_heads + h) * HEAD_DIM;
    _Pragma("unroll") for (int i = 0; i < HD8; i++) vstore8(acc[i] / l, i, o);
  }
#else
  float4 qv[PF_QR > 0 ? PF_QR : 1], acc[HD4];
  const __global float *q = Q + ((size_t)(valid ? qi : 0) * n_heads + h) * HEAD_DIM;
  CLKV_UNROLL for (int i = 0; i < PF_QR; i++) qv[i] = vload4(i, q) * scale;
  CLKV_UNROLL for (int i = 0; i < HD4; i++) acc[i] = (float4)(0.0f);
#if PF_QR < HD4
  /* the rest of q in local memory, a column per lane (neighbouring lanes, neighbouring words) */
  __local float4 Qs[HD4 - PF_QR][TQ];
#if CLKV_PF_TILE /* fully unrolled, the AMD compiler issued all 32 loads at once: scratch */
  CLKV_UNROLL_4
#endif
  for (int i = PF_QR; i < HD4; i++) Qs[i - PF_QR][lid] = vload4(i, q) * scale;
#endif
  float m = -INFINITY, l = 0.0f;

  __local float4 Kt[TK][HD4], Vt[TK][HD4];
#if CLKV_PF_TILE
  __local float Ps[TK][TQ]; /* the tile's scores, then weights: a column per lane */
#endif
  /* the tile's first query sees the furthest back; positions before it may be released */
  const uint lo = (uint)clkv_attn_first((int)(pos0 + tile * TQ));
  const uint mylo = (uint)clkv_attn_first((int)mypos);
  for (uint kb = lo / TK * TK; kb <= last; kb += TK) {
    for (uint e = lid; e < TK * HD4; e += TQ) {
      const uint kp = kb + e / HD4, c = e % HD4;
      if (kp <= last && kp >= lo) {
        const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + kp / KV_BS]);
        Kt[e / HD4][c] = clkv_kv_load4(kc, base, kvh, kp % KV_BS, 4 * c);
        Vt[e / HD4][c] = clkv_kv_load4(vc, base, kvh, kp % KV_BS, 4 * c);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#if CLKV_PF_TILE
    {
      /* the tile's loaded keys (the same for every lane): from lo, up to the chunk's last */
      const uint j0 = max(lo, kb) - kb, jt = min((uint)TK, last + 1 - kb);
      float mt = m;
      for (uint j = j0; j < jt; j++) {
        float s = 0.0f;
        CLKV_UNROLL for (int i = 0; i < PF_QR; i++) s += dot(qv[i], Kt[j][i]);
#if PF_QR < HD4
        CLKV_UNROLL_4 for (int i = PF_QR; i < HD4; i++) s += dot(Qs[i - PF_QR][lid], Kt[j][i]);
#endif
        s = kb + j <= mypos && kb + j >= mylo ? s : -INFINITY;
        Ps[j][lid] = s;
        mt = fmax(mt, s);
      }
      /* no key seen yet (mt -inf): every weight exp(-inf) = 0, nothing rescaled */
      const float mref = mt == -INFINITY ? 0.0f : mt, corr = exp(m - mref);
      l *= corr;
      CLKV_UNROLL for (int i = 0; i < HD4; i++) acc[i] *= corr;
      for (uint j = j0; j < jt; j++) {
        const float w = exp(Ps[j][lid] - mref);
        l += w;
        CLKV_UNROLL for (int i = 0; i < HD4; i++) acc[i] = mad(w, Vt[j][i], acc[i]);
      }
      m = mt;
    }
#else
    if (valid) {
      for (uint j = 0; j < TK && kb + j <= mypos; j++) {
        if (kb + j < mylo) continue;
        float s = 0.0f;
        CLKV_UNROLL for (int i = 0; i < PF_QR; i++) s += dot(qv[i], Kt[j][i]);
#if PF_QR < HD4
        CLKV_UNROLL_4 for (int i = PF_QR; i < HD4; i++) s += dot(Qs[i - PF_QR][lid], Kt[j][i]);
#endif
        const float mn = fmax(m, s);
        const float corr = exp(m - mn), w = exp(s - mn);
        l = l * corr + w;
        CLKV_UNROLL for (int i = 0; i < HD4; i++) acc[i] = acc[i] * corr + w * Vt[j][i];
        m = mn;
      }
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (valid) {
    __global float *o = O + ((size_t)qi * n_heads + h) * HEAD_DIM;
    CLKV_UNROLL for (int i = 0; i < HD4; i++) vstore4(acc[i] / l, i, o);
  }
#endif
}

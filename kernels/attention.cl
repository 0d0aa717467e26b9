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

/* The first position that position p attends to. */
inline int clkv_attn_first(int p) { return WINDOW > 0 && p >= WINDOW ? p - WINDOW + 1 : 0; }

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
  const __global float *q = Q + ((size_t)t * n_heads + h) * HEAD_DIM;

  /* q is the same for every lane: one copy in local memory. Each lane's output accumulator is
   * a column of la (transposed: lanes read neighbouring float4), not HD4 float4 registers:
   * with q, K and V values in flight those took 170-210 registers per lane on GPUs. */
  __local float4 lq[HD4];
  __local float4 la[HD4][ATT_WG];
  __local float lm[ATT_WG], ll[ATT_WG];
  CLKV_UNROLL_4 for (uint i = lid; i < HD4; i += ATT_WG) lq[i] = vload4(i, q) * scale;
  CLKV_UNROLL_4 for (int i = 0; i < HD4; i++) la[i][lid] = (float4)(0.0f);
  barrier(CLK_LOCAL_MEM_FENCE);
  float m = -INFINITY, l = 0.0f;
  CLKV_UNROLL_4 for (int p = clkv_attn_first(pos) + lid; p <= pos; p += ATT_WG) {
    const size_t base = clkv_kv_block(layer_base, btab[seq * max_blocks + p / KV_BS]);
    const uint slot = p % KV_BS;
    float s = 0.0f;
    CLKV_UNROLL_4 for (int i = 0; i < HD4; i++) s += dot(lq[i], clkv_kv_load4(kc, base, kvh, slot, 4 * i));
    const float mn = fmax(m, s);
    const float corr = exp(m - mn), w = exp(s - mn);
    l = l * corr + w;
    CLKV_UNROLL_4 for (int i = 0; i < HD4; i++)
      la[i][lid] = la[i][lid] * corr + w * clkv_kv_load4(vc, base, kvh, slot, 4 * i);
    m = mn;
  }

  lm[lid] = m;
  ll[lid] = l;
  barrier(CLK_LOCAL_MEM_FENCE);
  float M = -INFINITY;
  CLKV_UNROLL_4 for (int j = 0; j < ATT_WG; j++) M = fmax(M, lm[j]);
  barrier(CLK_LOCAL_MEM_FENCE);
  /* each lane's rescale factor once, not ATT_WG exp() per lane and output column */
  lm[lid] = exp(m - M);
  barrier(CLK_LOCAL_MEM_FENCE);
  float L = 0.0f;
  CLKV_UNROLL_4 for (int j = 0; j < ATT_WG; j++) L += ll[j] * lm[j];
  __global float *o = O + ((size_t)t * n_heads + h) * HEAD_DIM;
  CLKV_UNROLL_4 for (uint c = lid; c < HD4; c += ATT_WG) {
    float4 s = (float4)(0.0f);
    CLKV_UNROLL_4 for (int j = 0; j < ATT_WG; j++) s += la[c][j] * lm[j];
    vstore4(s / L, c, o);
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

  float4 qv[PF_QR > 0 ? PF_QR : 1], acc[HD4];
  const __global float *q = Q + ((size_t)(valid ? qi : 0) * n_heads + h) * HEAD_DIM;
  CLKV_UNROLL for (int i = 0; i < PF_QR; i++) qv[i] = vload4(i, q) * scale;
  CLKV_UNROLL for (int i = 0; i < HD4; i++) acc[i] = (float4)(0.0f);
#if PF_QR < HD4
  /* the rest of q in local memory, a column per lane (neighbouring lanes, neighbouring words) */
  __local float4 Qs[HD4 - PF_QR][TQ];
  for (int i = PF_QR; i < HD4; i++) Qs[i - PF_QR][lid] = vload4(i, q) * scale;
#endif
  float m = -INFINITY, l = 0.0f;

  __local float4 Kt[TK][HD4], Vt[TK][HD4];
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
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (valid) {
    __global float *o = O + ((size_t)qi * n_heads + h) * HEAD_DIM;
    CLKV_UNROLL for (int i = 0; i < HD4; i++) vstore4(acc[i] / l, i, o);
  }
}

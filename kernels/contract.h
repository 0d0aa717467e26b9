/* contract.h — the numbers the host (C) and the kernels (OpenCL C) must agree on: GGML weight
 * types, mat-vec epilogue ids, KV cache types. Included by the C code and prepended to every
 * program (runtime/program.c), so there is one copy. Common subset of C11 and OpenCL C 1.2. */
#ifndef CLKV_CONTRACT_H
#define CLKV_CONTRACT_H

/* One row per GGML tensor type, numbered as in ggml.h and GGUF (the id is also the kernels'
 * -DWTYPE): X(NAME, id, elements per block, bytes per block, runnable). Sizes as in ggml's
 * type traits. Runnable: clkv's kernels compute with it, so it has a branch in clkv_q32
 * (kernels/common.cl) and a block decoder and encoder in host/format/quant.c; the loader,
 * `clkv inspect`, the tests and the benchmarks take the list from here. */
#define CLKV_GGML_TYPES(X)       \
  X(F32, 0, 1, 4, 1)             \
  X(F16, 1, 1, 2, 1)             \
  X(Q4_0, 2, 32, 18, 1)          \
  X(Q4_1, 3, 32, 20, 1)          \
  /* 4, 5: Q4_2, Q4_3, removed */ \
  X(Q5_0, 6, 32, 22, 1)          \
  X(Q5_1, 7, 32, 24, 1)          \
  X(Q8_0, 8, 32, 34, 1)          \
  X(Q8_1, 9, 32, 36, 0)          \
  X(Q2_K, 10, 256, 84, 1)        \
  X(Q3_K, 11, 256, 110, 1)       \
  X(Q4_K, 12, 256, 144, 1)       \
  X(Q5_K, 13, 256, 176, 1)       \
  X(Q6_K, 14, 256, 210, 1)       \
  X(Q8_K, 15, 256, 292, 0)       \
  X(IQ2_XXS, 16, 256, 66, 0)     \
  X(IQ2_XS, 17, 256, 74, 0)      \
  X(IQ3_XXS, 18, 256, 98, 0)     \
  X(IQ1_S, 19, 256, 50, 0)       \
  X(IQ4_NL, 20, 32, 18, 1)       \
  X(IQ3_S, 21, 256, 110, 0)      \
  X(IQ2_S, 22, 256, 82, 0)       \
  X(IQ4_XS, 23, 256, 136, 1)     \
  X(I8, 24, 1, 1, 0)             \
  X(I16, 25, 1, 2, 0)            \
  X(I32, 26, 1, 4, 0)            \
  X(I64, 27, 1, 8, 0)            \
  X(F64, 28, 1, 8, 0)            \
  X(IQ1_M, 29, 256, 56, 0)       \
  X(BF16, 30, 1, 2, 1)           \
  /* 31-33: removed */           \
  X(TQ1_0, 34, 256, 54, 0)       \
  X(TQ2_0, 35, 256, 66, 0)       \
  X(MXFP4, 39, 32, 17, 0)

/* GGML_T_F32, GGML_T_Q4_1, ...: the ids by name, on both sides. */
#define CLKV__WT_ENUM(name, id, elems, bytes, run) GGML_T_##name = id,
typedef enum clkv__ggml_type_id {
  CLKV_GGML_TYPES(CLKV__WT_ENUM)
  GGML_T_COUNT = 40 /* every id is below this */
} clkv__ggml_type_id;
#undef CLKV__WT_ENUM

/* The number of runnable types (a model's kernel variants are kept per runnable type). */
#define CLKV__WT_RUN(name, id, elems, bytes, run) +(run)
#define CLKV__N_WTYPES (0 CLKV_GGML_TYPES(CLKV__WT_RUN))

#ifdef __OPENCL_VERSION__
#define CLKV__CONTRACT_FN inline
#else
#define CLKV__CONTRACT_FN static inline
#endif

/* Elements and bytes of one block of type t; 0 for an id that is not a type. */
#define CLKV__WT_ELEMS(name, id, elems, bytes, run) case id: return elems;
#define CLKV__WT_BYTES(name, id, elems, bytes, run) case id: return bytes;
CLKV__CONTRACT_FN unsigned clkv__wt_block_elems(int t) {
  switch (t) { CLKV_GGML_TYPES(CLKV__WT_ELEMS) default: return 0; }
}
CLKV__CONTRACT_FN unsigned clkv__wt_block_bytes(int t) {
  switch (t) { CLKV_GGML_TYPES(CLKV__WT_BYTES) default: return 0; }
}
#undef CLKV__WT_ELEMS
#undef CLKV__WT_BYTES

/* The weight types with an integer dot against int8 activations (clkv_idot32 in
 * kernels/common.cl, -DINT8); the others keep the float dot. Numbers, not the enum, so that
 * kernels can choose with #if: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (host/ops/ops.c checks them);
 * CLKV_INT8_SIGNED: those whose integers are signed (Q8_0). Not the K-quants: their float
 * dot a super-block at a time (CLKV_KQ_SB) was faster on PoCL than an integer dot a block at
 * a time (Q4_K 40 against 11 GFLOP/s, Q6_K 29 against 17; docs/TUNING.md). */
#define CLKV_INT8_TYPE(t) (((t) >= 2 && (t) <= 3) || ((t) >= 6 && (t) <= 8))
#define CLKV_INT8_SIGNED(t) ((t) == 8)
/* Prefill's int8 tiles (kernels/matvec.cl, many tokens per weight block) take the K-quants
 * Q4_K, Q5_K and Q6_K too: a 32-block of Q4_K/Q5_K is d·sc·q - dmin·m, of Q6_K two halves of
 * 16 with a scale each (CLKV_INT8_TWO_SCALES) and no offset (CLKV_INT8_NO_M). */
#define CLKV_INT8_TILE_TYPE(t) (CLKV_INT8_TYPE(t) || ((t) >= 12 && (t) <= 14))
#define CLKV_INT8_TWO_SCALES(t) ((t) == 14)
#define CLKV_INT8_NO_M(t) ((t) == 8 || (t) == 14)

/* The mat-vec epilogue (-DEPI=id, kernels/matvec.cl and kernels/gemm.cl): what the kernel does
 * with a row's dot products. Plain numbers, so that a kernel can choose with #if. */
#define CLKV__EPI_STORE 0  /* Y = W·x (the logits, after the final norm) */
#define CLKV__EPI_ADD 1    /* Y += W·x (the residual) */
#define CLKV__EPI_QKV 2    /* RoPE on q and k; k and v into the paged KV cache */
#define CLKV__EPI_SWIGLU 3 /* silu(gate) · up over interleaved gate/up rows */
#define CLKV__EPI_GEGLU 4  /* gelu_tanh(gate) · up, the same layout (Gemma) */
#define CLKV__N_EPI 5
/* The epilogues over (gate, up) row pairs. */
#define CLKV__EPI_GATED(e) ((e) == CLKV__EPI_SWIGLU || (e) == CLKV__EPI_GEGLU)

/* The KV cache precision (-DKV_TYPE=id; layout in kernels/common.cl): the values of the public
 * clkv_kv_type in include/clkv.h (host/ops/ops.c checks that they agree). */
#define CLKV__KV_F16 0
#define CLKV__KV_Q8 1
#define CLKV__KV_Q4 2

#endif /* CLKV_CONTRACT_H */

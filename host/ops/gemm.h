/* gemm.h — the prefill GEMM path through CLBlast (host/ops/gemm.c): input rows normalized,
 * weights dequantized by row tiles, CLBlast's GEMM, then the matvec's epilogue. Internal. */
#ifndef CLKV_GEMM_H
#define CLKV_GEMM_H

#include "ops/ops.h"

/* The prefill GEMM path's kernels (kernels/gemm.cl) for one weight type and epilogue. */
typedef struct clkv__gemm_kernels {
  cl_kernel norm, deq, epi;
} clkv__gemm_kernels;

/* 1 if mode can run on rt; else 0 and why (what is missing and what to do) in why. */
int clkv__gemm_available(const clkv_runtime *rt, int mode, char *why, size_t cap);

/* Scratch of the path, sized by the largest matrix and token count it serves (F32 sizes;
 * the F16 mode uses half of each). */
typedef struct clkv__gemm_scratch {
  cl_mem xn;                /* (max_tok, max_cols) normalized input */
  cl_mem w;                 /* (w_elems) a tile of dequantized weight rows */
  cl_mem t;                 /* (max_tok, max_rows) GEMM output before the epilogue */
  size_t max_tok, max_rows, max_cols, w_elems;
} clkv__gemm_scratch;
clkv_status clkv__gemm_scratch_init(clkv_runtime *rt, size_t max_tok, size_t max_rows,
                                    size_t max_cols, clkv__gemm_scratch *s, clkv_error *err);
void clkv__gemm_scratch_release(clkv__gemm_scratch *s);

void clkv__gemm_options(int mode, uint32_t wtype, int epi, int head_dim, int n_kv,
                        int kv_block, int kv_type, char *buf, size_t cap);
/* The three kernels of a variant (caller releases with clkv__gemm_kernels_release). */
clkv_status clkv__gemm_kernels_create(clkv_runtime *rt, const char *opts, clkv__gemm_kernels *k,
                                      clkv_error *err);
void clkv__gemm_kernels_release(clkv__gemm_kernels *k);
/* Y = epilogue(norm(X) · Wᵀ): the arguments and the result of clkv__matvec_enqueue with the
 * same epi. *touched is set once Y or the KV cache may have been written: a failure before
 * that can be retried on the matvec path. */
clkv_status clkv__gemm_enqueue(clkv_runtime *rt, const clkv__gemm_kernels *k, int mode,
                               const clkv__gemm_scratch *s, int epi, const clkv__mv_args *a,
                               int *touched, clkv_error *err);
#endif /* CLKV_GEMM_H */

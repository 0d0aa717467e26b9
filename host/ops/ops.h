/* ops.h — one description of each kernel launch (build options, argument order, ND-range),
 * shared by the engine, the tuner, the kernel tests and the benchmarks. Internal to clkv. */
#ifndef CLKV_OPS_H
#define CLKV_OPS_H

#include "contract.h" /* the epilogue ids CLKV__EPI_* and CLKV__N_EPI, the KV type ids */
#include "tune/tunables.h"

typedef struct clkv__mv_args {
  cl_mem W;                 /* weights, rows × cols in type wtype */
  unsigned rows, cols;
  cl_mem X;                 /* input rows (n_tok, cols), starting at row x_row0 */
  unsigned x_row0, n_tok;
  cl_mem norm_w;            /* RMSNorm weight (cols) when the variant fuses the norm */
  float eps;
  cl_mem Y;                 /* output; see the epilogue in kernels/matvec.cl */
  /* fused QKV epilogue only (may be any valid buffer otherwise) */
  cl_mem kc, vc, btab, tok_seq, tok_pos, inv_freq;
  unsigned q_rows, kv_rows, layer_base, max_blocks;
} clkv__mv_args;

/* KV cache precision (clkv_kv_type): the scale group of Q8/Q4 (32, or head_dim when that is
 * smaller) and the bytes of one block of one layer, K or V (layout in kernels/common.cl). */
int clkv__kv_qg(int head_dim);
size_t clkv__kv_block_bytes(int kv_type, int n_kv, int kv_block, int head_dim);
/* The launch shape actually used: for the QKV epilogue with a quantized cache, row groups
 * widened so that a scale group stays inside one workgroup (at most max_wg threads). */
clkv__mv_shape clkv__matvec_fit(const clkv__mv_shape *s, int epi, int kv_type, int head_dim,
                                size_t max_wg);
/* 1 if the epilogue's projection reads RMSNorm(X) (QKV, SwiGLU, the logits' store). */
int clkv__epi_norm(int epi);
/* Options for a matvec variant (shape already fitted) and the rows each work-item computes. */
void clkv__matvec_options(const clkv__mv_shape *s, uint32_t wtype, int epi, int head_dim,
                          int n_kv, int kv_block, int kv_type, char *buf, size_t cap);
unsigned clkv__matvec_rows(const clkv__mv_shape *s, int epi);
/* The variant's -DINT8 (kernels/common.cl): 0 float dot, 1 int8 activations, 2 int8 with x86
 * builtins — the shape's dot (decode.dot) minus 1 for one token per work-item; for the outer
 * product (prefill.form 2) 1 at dot 2, and at dot 3 2 where the host CPU has AVX512-VNNI
 * (-DCLKV_X86_VNNI: vpdpbusd), else 0 (the float outer product); else 0. */
unsigned clkv__matvec_int8(const clkv__mv_shape *s);
/* 1 where the variant takes prefill's outer-product form (-DPFORM=2, kernels/matvec.cl):
 * prefill.form 2, TT a multiple of 8 and KSPLIT 1. */
int clkv__matvec_outer(const clkv__mv_shape *s);
clkv_status clkv__matvec_enqueue(clkv_runtime *rt, cl_kernel k, const clkv__mv_shape *s, int epi,
                                 const clkv__mv_args *a, clkv_error *err);

typedef struct clkv__attn_args {
  cl_mem Q;                 /* (n_tok, n_heads*head_dim) */
  cl_mem kc, vc, btab;
  cl_mem tok_seq, tok_pos;  /* paged (decode) variant */
  unsigned seq, pos0;       /* prefill variant: one sequence, consecutive positions */
  unsigned n_tok, n_heads, layer_base, max_blocks;
  float scale;
  cl_mem O;                 /* (n_tok, n_heads*head_dim) */
} clkv__attn_args;

/* window: the model's sliding window (0 = none); n_heads: query heads (their number per KV
 * head lets the CPU form take a KV head's query heads together, attention.cl QPK). */
void clkv__attn_options(const clkv__tunables *t, int head_dim, int n_kv, int n_heads,
                        int kv_block, int kv_type, int window, char *buf, size_t cap);
clkv_status clkv__attn_enqueue(clkv_runtime *rt, cl_kernel k, const clkv__tunables *t, int prefill,
                               const clkv__attn_args *a, clkv_error *err);
clkv_status clkv__embed_enqueue(clkv_runtime *rt, cl_kernel k, cl_mem E, unsigned cols,
                                unsigned n_vocab, cl_mem ids, unsigned n_tok, cl_mem X,
                                clkv_error *err);

/* Checks every kernel's launch shape in t against the device's limits (work-group size,
 * local memory, the private arrays the kernels declare) before anything is built:
 * CLKV_ERR_INVALID_ARG naming each value and where it came from, or CLKV_OK. */
clkv_status clkv__shapes_check(const clkv_runtime *rt, const clkv__tunables *t, int head_dim,
                               int kv_type, clkv_error *err);

/* kernels/norm.cl: the QKV finish after an unfused projection (bias, per-head q/k norm,
 * RoPE, k and v into the cache) and the post-norm residual add. */
typedef struct clkv__qkv_finish_args {
  cl_mem Tq, Tk, Tv;        /* (n_tok, q_rows), (n_tok, kv_rows) x2; q finished in place */
  unsigned q_rows, kv_rows, n_tok;
  cl_mem bias;              /* (rows) when built with HAS_BIAS; any buffer otherwise */
  cl_mem q_norm, k_norm;    /* (head_dim) each when built with HAS_QK_NORM */
  float eps;
  cl_mem inv_freq;          /* (head_dim/2) RoPE frequencies */
  cl_mem kc, vc, btab, tok_seq, tok_pos;
  unsigned layer_base, max_blocks;
} clkv__qkv_finish_args;
void clkv__qkv_finish_options(int head_dim, int n_kv, int kv_block, int kv_type, int bias,
                              int qk_norm, char *buf, size_t cap);
clkv_status clkv__qkv_finish_enqueue(clkv_runtime *rt, cl_kernel k, int head_dim,
                                     const clkv__qkv_finish_args *a, clkv_error *err);
/* X[t] += RMSNorm(T[t]) · w for n_tok rows of cols values. */
clkv_status clkv__norm_add_enqueue(clkv_runtime *rt, cl_kernel k, cl_mem X, cl_mem T, cl_mem w,
                                   unsigned cols, unsigned n_tok, float eps, clkv_error *err);

#endif /* CLKV_OPS_H */

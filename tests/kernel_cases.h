/* kernel_cases.h — the kernel cases both tests/test_kernels.c and `clkv_bench ops` iterate:
 * mat-vec projections sized for each (small and awkward; the default model), the attention
 * kernels, and the weight types (every runnable row of kernels/contract.h). */
#ifndef CLKV_KERNEL_CASES_H
#define CLKV_KERNEL_CASES_H

#include "engine/engine.h"

#include <stddef.h>

/* The benchmark's model: SmolLM2-135M, the default model. */
#define KC_DIM 576
#define KC_FF 1536
#define KC_VOCAB 49152
#define KC_N_HEADS 9
#define KC_N_KV 3
#define KC_HEAD_DIM 64
#define KC_KV_BS 16
#define KC_CHUNK 128  /* tokens of a benchmark prefill */
#define KC_TEST_TOKENS 5 /* tokens of a test: a partial tile for TT 3 and 8 */

/* Weight type i of the cases, i = 0 .. CLKV__N_WTYPES-1: every runnable type, in id order. */
static inline uint32_t kc_wtype(int i) { return clkv__wtype_of_slot(i); }

/* cols rounded up to a whole number of type t's blocks (the K-quants' rows are multiples of
 * 256: a case of 96 or 576 columns runs at 256 or 768 in those types). */
static inline unsigned kc_cols(unsigned cols, uint32_t t) {
  const unsigned b = clkv__wt_block_elems((int)t);
  return (cols + b - 1) / b * b;
}

/* One mat-vec case: a projection as the engine launches it (kernels/matvec.cl clkv_matvec
 * through clkv__matvec_enqueue, or the CLBlast prefill path through clkv__gemm_enqueue). */
typedef struct kc_matvec {
  const char *name;              /* the weight, as GGUF names it */
  int epi;                       /* CLKV__EPI_*; the norm is fused where clkv__epi_norm says */
  unsigned rows, cols;           /* the benchmark's: at the default model */
  unsigned test_rows, test_cols; /* the tests': rows not a multiple of a row group, few blocks */
  int decode_only;               /* the logits: a prefill computes them for its last token only */
} kc_matvec;
extern const kc_matvec kc_matvecs[];
extern const size_t kc_n_matvecs;

/* The launch shapes (ksplit, rg, rows, tt, dot) the tests check each mat-vec case in; the
 * benchmark times the device's default tunables instead. */
extern const clkv__mv_shape kc_test_shapes[];
extern const size_t kc_n_test_shapes;
/* Whether the tests check type t in shape s. A type's block decoding takes two paths: the
 * decode dot (TT 1, shape 0) and the dequantized block (TT > 1), which shape 2 runs with 4
 * threads splitting a row (the strided block walk); shapes 1 and 3 repeat those paths, so
 * they run only for the types tested before the K-quants and for Q4_K (one 256-element
 * type in every shape) — each (type, shape, epilogue) is a program build, the bulk of the
 * suite's time on a cold cache. */
int kc_test_shape_for(size_t s, uint32_t t);

/* The attention kernels (kernels/attention.cl through clkv__attn_enqueue): decode over the
 * paged cache, and the tiled causal prefill. The benchmark runs each at the default model's
 * heads for every context in kc_bench_ctx; the tests at each head layout in kc_test_heads. */
typedef struct kc_attn {
  const char *kernel;
  int prefill;
  const char *extra; /* build options after the engine's (the tests' forced GPU forms), or NULL */
} kc_attn;
extern const kc_attn kc_attns[];
extern const size_t kc_n_attns;
extern const unsigned kc_bench_ctx[];
extern const size_t kc_n_bench_ctx;
typedef struct kc_heads {
  const char *name;
  int n_heads, n_kv;
} kc_heads;
extern const kc_heads kc_test_heads[];
extern const size_t kc_n_test_heads;

#endif /* CLKV_KERNEL_CASES_H */

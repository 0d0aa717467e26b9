/* model.h — the loaded model (weights on the device in their stored type, tokenizer,
 * chat template), the kernel variants it needs, and the engine context (paged KV cache,
 * activation buffers, sequences). Internal to clkv. */
#ifndef CLKV_MODEL_H
#define CLKV_MODEL_H

#include "chat.h"
#include "clkv_internal.h"
#include "gguf.h"
#include "kv_pool.h"
#include "tokenizer.h"

/* A weight matrix on the device: rows × cols (cols contiguous), stored type. */
typedef struct clkv__weight {
  cl_mem buf;
  uint32_t type;
  uint32_t rows, cols;
  size_t bytes;
} clkv__weight;

typedef struct clkv__layer {
  cl_mem attn_norm, ffn_norm; /* (dim) F32 */
  clkv__weight wqkv;          /* (q_rows + 2*kv_rows, dim): q, k, v rows concatenated */
  clkv__weight wo;            /* (dim, q_rows) */
  clkv__weight wgu;           /* (2*n_ff, dim): gate and up rows interleaved */
  clkv__weight wdown;         /* (dim, n_ff) */
} clkv__layer;

/* Kernel variants: matvec by (weight type slot, epilogue, phase). */
enum { CLKV__EPI_STORE = 0, CLKV__EPI_ADD = 1, CLKV__EPI_QKV = 2, CLKV__EPI_SWIGLU = 3 };
enum { CLKV__PH_DECODE = 0, CLKV__PH_PREFILL = 1 };
#define CLKV__N_WTYPES 6 /* F32 F16 BF16 Q8_0 Q4_0 Q4_1 */
/* How a prefill projection is computed: our quantized matvec kernels, or the weights
 * dequantized by row tiles and multiplied by CLBlast (F32 Sgemm, F16 Hgemm). */
enum { CLKV__GEMM_OWN = 0, CLKV__GEMM_CLBLAST = 1, CLKV__GEMM_CLBLAST16 = 2, CLKV__GEMM_MODES };
/* The four projections of a layer: the shape classes the prefill path is chosen for. */
enum { CLKV__PROJ_QKV = 0, CLKV__PROJ_O, CLKV__PROJ_GU, CLKV__PROJ_DOWN, CLKV__N_PROJ };

/* Launch shape of the matvec family for one phase (tunables, from platforms/ defaults). */
typedef struct clkv__mv_shape {
  unsigned ksplit, rg, rows, tt;
} clkv__mv_shape;

typedef struct clkv__tunables {
  clkv__mv_shape mv[2];     /* [phase] */
  unsigned att_wg;          /* decode attention threads per (token, head) */
  unsigned tq, tk;          /* prefill attention tiles */
  unsigned gemm[CLKV__N_PROJ]; /* [projection] prefill path, CLKV__GEMM_*; 0 (own) default */
} clkv__tunables;

/* The prefill GEMM path's kernels (kernels/gemm.cl) for one weight type and epilogue. */
typedef struct clkv__gemm_kernels {
  cl_kernel norm, deq, epi;
} clkv__gemm_kernels;

struct clkv_model {
  clkv_runtime *rt;
  clkv_model_info info;
  clkv_model_params params;
  int n_ctx;                /* context used (≤ n_ctx_train) */
  int q_rows, kv_rows;      /* n_heads*head_dim, n_kv_heads*head_dim */
  clkv_tokenizer *tok;
  clkv_chat_kind chat;
  char *default_system;     /* from the template, may be NULL */
  char bos_text[64], eos_text[64];
  clkv__weight tok_embd;    /* (n_vocab, dim) */
  clkv__weight output;      /* (n_vocab, dim); tok_embd's buffer when tied */
  int tied;
  cl_mem out_norm;          /* (dim) */
  cl_mem inv_freq;          /* (head_dim/2) RoPE frequencies */
  clkv__layer *layers;      /* (n_layers) */
  size_t weight_bytes;
  clkv__tunables tun;
  char tuning_source[1200]; /* the tuning file applied, or "defaults" */
  cl_kernel k_mv[CLKV__N_WTYPES][4][2]; /* lazily created */
  clkv__gemm_kernels k_gemm[CLKV__N_WTYPES][4][2]; /* [type][epi][F32, F16], lazily */
  int gemm[CLKV__N_PROJ];   /* prefill path in use per projection (tun.gemm, or own where
                               CLBlast cannot run) */
  char gemm_note[320];      /* "qkv=own o=clblast ...", and why a request was not honoured */
  cl_kernel k_embed;
  cl_kernel k_attn_paged, k_attn_prefill;
  char *path;               /* the GGUF file loaded (the disk tier keys on its contents) */
  clkv_error err;
};

/* host/model_meta.c: hyperparameters from metadata, validated (clear error otherwise). */
clkv_status clkv__model_hparams(const gguf_file *f, clkv_model_info *info, clkv_error *err);
int clkv__wtype_slot(uint32_t type); /* 0..5, or -1 if not computable */

/* host/model.c: the launch shape of a matvec variant (tunables fitted to the KV type), and
 * the kernel variant for a weight type, epilogue and phase (created on first use). */
clkv__mv_shape clkv__model_mv_shape(const clkv_model *m, int epi, int phase);
clkv_status clkv__model_matvec_kernel(clkv_model *m, uint32_t wtype, int epi, int phase,
                                      cl_kernel *out, clkv_error *err);

/* ---- ops (host/ops.c): one description of each kernel launch, shared by the engine,
 * the kernel tests and the benchmarks ---- */
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

/* window: the model's sliding window (0 = none). */
void clkv__attn_options(const clkv__tunables *t, int head_dim, int n_kv, int kv_block, int kv_type,
                        int window, char *buf, size_t cap);
clkv_status clkv__attn_enqueue(clkv_runtime *rt, cl_kernel k, const clkv__tunables *t, int prefill,
                               const clkv__attn_args *a, clkv_error *err);
clkv_status clkv__embed_enqueue(clkv_runtime *rt, cl_kernel k, cl_mem E, unsigned cols,
                                unsigned n_vocab, cl_mem ids, unsigned n_tok, cl_mem X,
                                clkv_error *err);

/* ---- the prefill GEMM path (host/gemm.c) ---- */
const char *clkv__gemm_mode_name(int mode);   /* "own", "clblast", "clblast16" */
int clkv__gemm_mode_parse(const char *s);     /* a CLKV__GEMM_* value, or -1 */
const char *clkv__proj_name(int proj);        /* "qkv", "o", "gu", "down" */
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
/* host/model.c: the variant for a weight type, epilogue and mode (created on first use). */
clkv_status clkv__model_gemm_kernels(clkv_model *m, uint32_t wtype, int epi, int mode,
                                     const clkv__gemm_kernels **out, clkv_error *err);
/* At load: m->gemm from m->tun.gemm, each mode that cannot run here replaced by own with a
 * one-line warning on stderr (it was asked for by the tuning file or CLKV_PREFILL_GEMM). */
void clkv__model_gemm_init(clkv_model *m);
/* Sets the prefill path of projection proj (-1: all) to mode, if it can run here; else
 * returns CLKV_ERR_UNSUPPORTED saying why, and changes nothing. Refreshes gemm_note. */
clkv_status clkv__model_set_gemm(clkv_model *m, int proj, int mode, clkv_error *err);

/* ---- the engine context (host/engine.c) ---- */
/* One tier of the KV cache in a few large buffers ("arenas"), each no larger than the
 * device allows in one allocation: arena a holds layers [a*layers, (a+1)*layers), each
 * layer n_blocks blocks of block_bytes (kernels/common.cl), K and V in separate arenas. */
#define CLKV__MAX_ARENAS 64
typedef struct clkv__kv_tier {
  int n_blocks, layers, n_arenas; /* blocks per layer; layers per arena; arenas */
  cl_mem k[CLKV__MAX_ARENAS], v[CLKV__MAX_ARENAS];
} clkv__kv_tier;
/* Where block b of layer l lives in a tier: its arena and byte offset. */
void clkv__kv_locate(const clkv_context *c, const clkv__kv_tier *t, int layer, int block, int is_v,
                     cl_mem *mem, size_t *offset);
struct clkv_context {
  clkv_model *m;
  clkv_context_params params;
  int n_seq_max;
  int max_tok;              /* tokens per forward call: max(chunk, n_seq_max) */
  int max_blocks;           /* blocks per sequence (n_ctx / block size, rounded up) */
  int n_blocks;             /* physical device blocks per layer */
  int n_host_blocks;        /* host-tier blocks per layer (0: no host tier) */
  size_t block_bytes;       /* one block of one layer, K or V */
  clkv__kv_tier dev, host;  /* the K/V arenas of the device and host tiers */
  clkv_kv_pool *pool;       /* block tables, refcounts, prefix cache, tiers (runtime/kv_pool.h) */
  uint64_t uploaded_gen;    /* pool generation whose tables are on the device */
  int32_t *btab;            /* (n_seq_max, max_blocks) host copy of the block tables */
  cl_mem d_btab, d_ids, d_seq, d_pos;
  cl_mem x, q, att, ff, logits;
  clkv__gemm_scratch gemm;  /* the prefill GEMM path's scratch, made on its first use */
  float *h_logits;          /* (n_seq_max, n_vocab) */
  int32_t *h_ids, *h_seq, *h_pos;
  struct clkv__kv_disk *disk; /* disk tier of the prefix cache, NULL when off (kv_disk.c) */
  int kept_seq;             /* reuse_last: the last request's sequence, or -1 */
  clkv_error err;
};

/* Starts a sequence for a prompt: with the prefix cache on, the leading full blocks already
 * cached are taken (their K/V are reused; *cached tokens need no computing). */
clkv_status clkv__seq_start(clkv_context *ctx, const int32_t *prompt, int n, int *seq,
                            int *cached);
void clkv__seq_end(clkv_context *ctx, int seq);
/* Executes the pool's pending block copies and uploads changed block tables. */
clkv_status clkv__kv_sync(clkv_context *ctx);
/* One forward pass. PREFILL: n tokens appended to sequence seq (positions continue from
 * its length); the logits of the last go to logits row 0. DECODE: one token for each of n
 * sequences; logits row i. On failure ctx->err says why; end the sequence. */
clkv_status clkv__forward_prefill(clkv_context *ctx, int seq, const int32_t *ids, int n,
                                  int want_logits);
clkv_status clkv__forward_decode(clkv_context *ctx, const int *seqs, const int32_t *ids, int n);
/* Decode in two steps, for a scheduler that handles a full cache by preempting: reserve the
 * next position of one sequence (CLKV_ERR_CONTEXT_FULL, nothing changed, when no block is
 * free or evictable), then run the forward pass for sequences all reserved this way. */
clkv_status clkv__decode_reserve(clkv_context *ctx, int seq, int32_t id);
clkv_status clkv__forward_decode_reserved(clkv_context *ctx, const int *seqs, const int32_t *ids,
                                          int n);

#endif /* CLKV_MODEL_H */

/* engine.h — the engine context: the paged KV cache (block pool, arenas, disk tier),
 * activation buffers and sequences, and the forward passes over them. Internal to clkv. */
#ifndef CLKV_ENGINE_H
#define CLKV_ENGINE_H

#include "kv/kv_arena.h"
#include "kv/kv_pool.h"
#include "model/model.h"

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
  clkv__kv_pool *pool;      /* block tables, refcounts, prefix cache, tiers (kv/kv_pool.h) */
  uint64_t uploaded_gen;    /* pool generation whose tables are on the device */
  int32_t *btab;            /* (n_seq_max, max_blocks) host copy of the block tables */
  /* Device buffers. T = max_tok: a forward pass computes T tokens at most (a prefill
   * chunk of one sequence, or one decode token of each of n_seq_max sequences). */
  cl_mem d_btab;            /* (n_seq_max, max_blocks) int32 physical block ids, -1 none */
  cl_mem d_ids;             /* (T) int32 the pass's token ids */
  cl_mem d_seq, d_pos;      /* (T) int32 each token's sequence and position */
  cl_mem x;                 /* (T, n_embd) F32 the residual stream */
  cl_mem q;                 /* (T, q_rows) F32 queries after RoPE (K/V go to the cache) */
  cl_mem att;               /* (T, q_rows) F32 attention output, heads concatenated */
  cl_mem ff;                /* (T, n_ff) F32 silu(gate) * up, the down projection's input */
  cl_mem tk, tv;            /* (T, kv_rows) F32 k and v before the QKV finish (split layers) */
  cl_mem tmp;               /* (T, n_embd) F32 a branch's output before its post-norm */
  cl_mem logits_all;        /* (max_tok, n_vocab) F32 every position's logits (clkv_seq_eval),
                               made on first use */
  cl_mem logits;            /* (n_seq_max, n_vocab) F32: the last prefill token's in row 0,
                               else decode token i's in row i */
  clkv__gemm_scratch gemm;  /* the prefill GEMM path's scratch, made on its first use */
  struct clkv__fused *fused; /* the fused decode path's state (engine/fused.h), made on first use */
  float *h_logits;          /* (n_seq_max, n_vocab) host copy of logits' rows in use */
  int32_t *h_ids, *h_seq, *h_pos; /* (T) host copies of d_ids, d_seq, d_pos */
  struct clkv__kv_disk *disk; /* disk tier of the prefix cache, NULL when off (kv_disk.c) */
  int kept_seq;             /* reuse_last: the last request's sequence, or -1 */
  struct clkv_context *draft; /* speculative decoding's draft model (spec_draft.c), or NULL */
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
/* As clkv__forward_prefill, with the logits of the last n_logits tokens (rows in order) into
 * dev (n_logits × n_vocab floats on the device) and read back to host; dev and host may be
 * NULL for n_logits ≤ 1 (the context's row 0). The check that ids fit precedes the work. */
clkv_status clkv__forward_prefill_rows(clkv_context *ctx, int seq, const int32_t *ids, int n,
                                       int n_logits, cl_mem dev, float *host);
/* layers.c: the kernels a pass needs (made on first use); the batch's ids, sequences and
 * positions to the device; the layers and the logits of rows [logits_row0, +n_logits) into
 * out (prefill_seq < 0: decode). */
typedef struct clkv__logits_dst {
  cl_mem dev;  /* at least n_logits rows of n_vocab floats */
  float *host; /* the same, read back */
} clkv__logits_dst;
clkv_status clkv__ensure_kernels(clkv_context *ctx, clkv_error *err);
clkv_status clkv__upload_batch(clkv_context *ctx, int n, clkv_error *err);
clkv_status clkv__run_layers(clkv_context *ctx, int n, int phase, int prefill_seq, int pos0,
                             int logits_row0, int n_logits, clkv__logits_dst out,
                             clkv_error *err);
clkv_status clkv__forward_decode(clkv_context *ctx, const int *seqs, const int32_t *ids, int n);
/* Decode in two steps, for a scheduler that handles a full cache by preempting: reserve the
 * next position of one sequence (CLKV_ERR_CONTEXT_FULL, nothing changed, when no block is
 * free or evictable), then run the forward pass for sequences all reserved this way. */
clkv_status clkv__decode_reserve(clkv_context *ctx, int seq, int32_t id);
clkv_status clkv__forward_decode_reserved(clkv_context *ctx, const int *seqs, const int32_t *ids,
                                          int n);

#endif /* CLKV_ENGINE_H */

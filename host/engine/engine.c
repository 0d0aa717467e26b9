/* engine.c — the engine context: a paged KV cache (fixed-size blocks from a free list,
 * one block table per sequence), activation buffers, and the forward passes: prefill
 * (consecutive tokens of one sequence, tiled causal attention) and decode (one token for
 * each of a batch of sequences, paged attention). Five launches per layer (two for a
 * single sequence's decode step on the fused path, engine/fused.h); in prefill a
 * projection may take the CLBlast path instead (host/gemm.c). */
#include "engine/fused.h"
#include "kv/kv_disk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

clkv_context_params clkv_context_default_params(void) {
  return (clkv_context_params){
      .n_seq_max = 0,
      .prefix_cache = 1,
      .kv_host_blocks = 0,
      .kv_device_blocks = 0,
      .evict = CLKV_KV_LRU,
      .kv_mem_bytes = 0,
      .kv_mem_fraction = 0.0,
      .prefix_cache_dir = NULL,
      .reuse_last = 0,
  };
}

/* Device bytes a context needs besides the KV blocks: activations, logits, tables. */
static uint64_t other_bytes(const clkv_context *c) {
  const clkv_model_info *I = &c->m->info;
  const uint64_t T = (uint64_t)c->max_tok;
  return 4 * (T * (2 * (uint64_t)I->n_embd + 2 * (uint64_t)c->m->q_rows + (uint64_t)I->n_ff +
                   2 * (uint64_t)c->m->kv_rows + 3) +
              (uint64_t)c->n_seq_max * ((uint64_t)I->n_vocab + (uint64_t)c->max_blocks));
}

static double mib(uint64_t b) { return (double)b / 1048576.0; }

/* The number of device blocks: an explicit count, a byte budget, a fraction of the memory
 * the weights leave, or by default enough for every sequence to reach the context length
 * within 90% of that memory. At least one sequence must be able to reach the context. */
static clkv_status size_device_tier(clkv_context *c, const clkv_context_params *cp,
                                    clkv_error *err) {
  const uint64_t per_block = (uint64_t)c->block_bytes * 2 * (uint64_t)c->m->info.n_layers;
  const uint64_t total = c->m->rt->info.global_mem_bytes, used = c->m->weight_bytes + other_bytes(c);
  const uint64_t left = total > used ? total - used : 0;
  const uint64_t need_one = (uint64_t)c->max_blocks * per_block;
  const char *kt = clkv_kv_type_name(c->m->params.kv_type);
  uint64_t n;
  const char *how;
  if (cp->kv_device_blocks) n = (uint64_t)cp->kv_device_blocks, how = "the requested block count";
  else if (cp->kv_mem_bytes) n = cp->kv_mem_bytes / per_block, how = "--kv-mem";
  else if (cp->kv_mem_fraction > 0) n = (uint64_t)(cp->kv_mem_fraction * (double)left) / per_block,
                                    how = "--kv-mem (fraction of free device memory)";
  else {
    const uint64_t want = (uint64_t)c->max_blocks * (uint64_t)c->n_seq_max;
    const uint64_t fit = (uint64_t)(0.9 * (double)left) / per_block;
    n = want < fit ? want : fit;
    how = "device memory";
  }
  if (n < (uint64_t)c->max_blocks)
    return clkv__err(err, CLKV_ERR_DEVICE_MEMORY,
                     "the KV cache gets %llu blocks (%.1f MiB, from %s) but one sequence at the "
                     "context length %d needs %d blocks (%.1f MiB of %s K/V); the weights take "
                     "%.1f MiB of the device's %.1f MiB. Lower --ctx, use --kv-type q8 or q4, "
                     "or raise --kv-mem", (unsigned long long)n, mib(n * per_block), how,
                     c->m->n_ctx, c->max_blocks, mib(need_one), kt, mib(c->m->weight_bytes),
                     mib(total));
  if (n * per_block > left)
    return clkv__err(err, CLKV_ERR_DEVICE_MEMORY,
                     "the weights (%.1f MiB), buffers (%.1f MiB) and KV cache (%.1f MiB, %llu "
                     "blocks) do not fit in the device's %.1f MiB; lower --kv-mem or --ctx, or "
                     "use --kv-type q8 or q4", mib(c->m->weight_bytes), mib(other_bytes(c)),
                     mib(n * per_block), (unsigned long long)n, mib(total));
  if (n > (uint64_t)INT32_MAX / 2) n = (uint64_t)INT32_MAX / 2;
  c->n_blocks = (int)n;
  return CLKV_OK;
}

/* The model identity and KV layout mixed into every prefix-cache hash. */
static uint64_t prefix_seed(const clkv_model *m) {
  clkv__sha256 h;
  unsigned char d[32];
  clkv__sha256_init(&h);
  clkv__sha256_update(&h, &m->info, sizeof m->info);
  clkv__sha256_update(&h, &m->params.kv_block, sizeof m->params.kv_block);
  const char *kt = clkv_kv_type_name(m->params.kv_type);
  clkv__sha256_update(&h, kt, strlen(kt));
  clkv__sha256_final(&h, d);
  uint64_t v;
  memcpy(&v, d, sizeof v);
  return v;
}

/* The sizes that follow from the model and the parameters (before any allocation). */
static void context_sizes(clkv_context *c, clkv_model *m, const clkv_context_params *cp) {
  const int bs = m->params.kv_block;
  c->m = m;
  c->params = *cp;
  c->n_seq_max = cp->n_seq_max > 0 ? cp->n_seq_max : m->params.max_seqs;
  c->max_tok = m->params.chunk > c->n_seq_max ? m->params.chunk : c->n_seq_max;
  c->max_blocks = (m->n_ctx + bs - 1) / bs;
  c->n_host_blocks = cp->kv_host_blocks;
  c->block_bytes = clkv__kv_block_bytes(m->params.kv_type, m->info.n_kv_heads, bs,
                                        m->info.head_dim);
  c->uploaded_gen = (uint64_t)-1;
  c->kept_seq = -1;
}

/* The block pool, after the disk tier is opened: it keys the prefix seed on the model file
 * and may grow the host tier to hold the blocks it finds (it keeps its own copy of the
 * path). */
static clkv_status create_pool(clkv_context *c, clkv_error *err) {
  const clkv_model_info *I = &c->m->info;
  clkv__kv_pool_params pp = {
      .n_device_blocks = c->n_blocks,
      .block_tokens = c->m->params.kv_block,
      .max_seqs = c->n_seq_max,
      .max_blocks_per_seq = c->max_blocks,
      .policy = (clkv__kv_evict_policy)c->params.evict,
      /* blocks out of every position's reach are released (when every layer has the window) */
      .sliding_window = clkv__arch_pool_window(c->m->arch, I->sliding_window),
      .prefix_seed = prefix_seed(c->m),
      .bytes_per_block = c->block_bytes * 2 * (size_t)I->n_layers,
  };
  clkv_status st = clkv__kv_disk_open(c, c->params.prefix_cache_dir, &pp.prefix_seed,
                                      &c->n_host_blocks, err);
  if (st) return st;
  c->params.prefix_cache_dir = NULL;
  pp.n_host_blocks = c->n_host_blocks;
  return clkv__kv_pool_create(&pp, &c->pool, err);
}

/* Host copies of the tables and batch inputs, and the logits read back. */
static clkv_status alloc_host_buffers(clkv_context *c, clkv_error *err) {
  c->btab = malloc(sizeof(int32_t) * (size_t)c->n_seq_max * (size_t)c->max_blocks);
  c->h_logits = malloc(sizeof(float) * (size_t)c->n_seq_max * (size_t)c->m->info.n_vocab);
  c->h_ids = malloc(sizeof(int32_t) * (size_t)c->max_tok);
  c->h_seq = malloc(sizeof(int32_t) * (size_t)c->max_tok);
  c->h_pos = malloc(sizeof(int32_t) * (size_t)c->max_tok);
  if (!c->btab || !c->h_logits || !c->h_ids || !c->h_seq || !c->h_pos)
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory creating the context");
  return CLKV_OK;
}

/* The KV arenas of both tiers, the tables, batch inputs and activations on the device
 * (shapes in engine.h). */
static clkv_status alloc_device_buffers(clkv_context *c, clkv_error *err) {
  clkv_runtime *rt = c->m->rt;
  const clkv_model_info *I = &c->m->info;
  const size_t T = (size_t)c->max_tok, i32 = sizeof(int32_t), f32 = sizeof(float);
  const int L = I->n_layers;
  clkv_status st = clkv__kv_tier_alloc(rt, &c->dev, L, c->n_blocks, c->block_bytes,
                                       CL_MEM_READ_WRITE, "device", err);
  if (!st && c->n_host_blocks)
    st = clkv__kv_tier_alloc(rt, &c->host, L, c->n_host_blocks, c->block_bytes,
                             CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, "host-tier", err);
  if (st) return st;
  const cl_mem_flags in = CL_MEM_READ_ONLY, rw = CL_MEM_READ_WRITE;
  c->d_btab = clkv__buffer_new(rt, i32 * (size_t)c->n_seq_max * (size_t)c->max_blocks, in,
                               "block tables", err, &st);
  c->d_ids = clkv__buffer_new(rt, i32 * T, in, "token ids", err, &st);
  c->d_seq = clkv__buffer_new(rt, i32 * T, in, "token sequences", err, &st);
  c->d_pos = clkv__buffer_new(rt, i32 * T, in, "token positions", err, &st);
  c->x = clkv__buffer_new(rt, f32 * T * (size_t)I->n_embd, rw, "activations", err, &st);
  c->q = clkv__buffer_new(rt, f32 * T * (size_t)c->m->q_rows, rw, "queries", err, &st);
  c->att = clkv__buffer_new(rt, f32 * T * (size_t)c->m->q_rows, rw, "attention output", err, &st);
  c->ff = clkv__buffer_new(rt, f32 * T * (size_t)I->n_ff, rw, "feed-forward buffer", err, &st);
  c->tk = clkv__buffer_new(rt, f32 * T * (size_t)c->m->kv_rows, rw, "keys", err, &st);
  c->tv = clkv__buffer_new(rt, f32 * T * (size_t)c->m->kv_rows, rw, "values", err, &st);
  c->tmp = clkv__buffer_new(rt, f32 * T * (size_t)I->n_embd, rw, "branch output", err, &st);
  c->logits = clkv__buffer_new(rt, f32 * (size_t)c->n_seq_max * (size_t)I->n_vocab,
                               CL_MEM_WRITE_ONLY, "logits", err, &st);
  return st;
}

clkv_status clkv_context_create(clkv_model *m, const clkv_context_params *p, clkv_context **out,
                                clkv_error *err) {
  if (!m || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "model and out are required");
  *out = NULL;
  const clkv_context_params cp = p ? *p : clkv_context_default_params();
  if (cp.kv_host_blocks < 0 || cp.kv_device_blocks < 0 || cp.evict < CLKV_KV_LRU ||
      cp.evict > CLKV_KV_FIFO || !(cp.kv_mem_fraction >= 0.0 && cp.kv_mem_fraction <= 1.0))
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "context params out of range");
  clkv_context *c = calloc(1, sizeof *c);
  if (!c) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  context_sizes(c, m, &cp);
  clkv_status st = size_device_tier(c, &cp, err);
  if (st) {
    free(c);
    return st;
  }
  if ((st = create_pool(c, err)) || (st = alloc_host_buffers(c, err)) ||
      (st = alloc_device_buffers(c, err)))
    goto fail;
  clkv__kv_disk_load(c);
  *out = c;
  return CLKV_OK;
fail:
  clkv_context_free(c);
  return st;
}

void clkv_context_free(clkv_context *c) {
  if (!c) return;
  clkv__kv_disk_close(c); /* writes the cached blocks, so before the buffers go */
  clkv__kv_tier_free(&c->dev);
  clkv__kv_tier_free(&c->host);
  cl_mem *bufs[] = {&c->d_btab, &c->d_ids, &c->d_seq, &c->d_pos, &c->x, &c->q, &c->att, &c->ff,
                    &c->tk, &c->tv, &c->tmp, &c->logits, &c->logits_all};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (*bufs[i]) clReleaseMemObject(*bufs[i]);
  clkv__gemm_scratch_release(&c->gemm);
  clkv__fused_free(c->fused);
  clkv__kv_pool_free(c->pool);
  free(c->btab);
  free(c->h_logits);
  free(c->h_ids);
  free(c->h_seq);
  free(c->h_pos);
  free(c);
}

const char *clkv_last_error(const clkv_context *ctx) {
  return ctx ? ctx->err.message : "no context";
}

/* ---- blocks ---- */
void clkv_context_kv_stats(const clkv_context *c, clkv_kv_stats *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  if (!c) return;
  clkv__kv_pool_stats s;
  clkv__kv_pool_stats_get(c->pool, &s);
  o->block_tokens = c->m->params.kv_block;
  o->device_blocks_total = s.blocks_total[0];
  o->device_blocks_used = s.blocks_used[0];
  o->device_blocks_cached = s.blocks_cached[0];
  o->device_blocks_free = s.blocks_free[0];
  o->host_blocks_total = s.blocks_total[1];
  o->host_blocks_used = s.blocks_used[1];
  o->host_blocks_cached = s.blocks_cached[1];
  o->host_blocks_free = s.blocks_free[1];
  o->device_bytes_used = s.bytes_used[0] + s.bytes_cached[0];
  o->host_bytes_used = s.bytes_used[1] + s.bytes_cached[1];
  o->prompt_tokens = s.prompt_tokens;
  o->prefix_hit_tokens = s.prefix_hit_tokens;
  o->evictions = s.evictions;
  o->swaps_out = s.swap_out_blocks;
  o->swaps_in = s.swap_in_blocks;
  o->bytes_moved = s.bytes_moved;
  o->cow_copies = s.cow_copies;
  o->kv_type = c->m->params.kv_type;
  o->bytes_per_token = (uint64_t)c->block_bytes * 2 * (uint64_t)c->m->info.n_layers /
                       (uint64_t)c->m->params.kv_block;
  clkv__kv_disk_stats(c, o);
}

clkv_status clkv__seq_start(clkv_context *c, const int32_t *prompt, int n, int *seq, int *cached) {
  clkv_status st = clkv__kv_seq_new(c->pool, seq, &c->err);
  if (st) return st;
  int32_t hit = 0;
  if (c->params.prefix_cache && n > 0) {
    st = clkv__kv_seq_prefill_begin(c->pool, *seq, prompt, n, &hit, &c->err);
    if (st) {
      clkv__kv_seq_free(c->pool, *seq);
      return st;
    }
  }
  *cached = hit;
  return CLKV_OK;
}

void clkv__seq_end(clkv_context *c, int seq) { clkv__kv_seq_free(c->pool, seq); }

/* Copies one block (every layer, K and V) between tiers (or within the device tier). */
static clkv_status copy_block(clkv_context *c, const clkv__kv_tier *from, int src,
                              const clkv__kv_tier *to, int dst) {
  clkv_status st = CLKV_OK;
  clkv_error *err = &c->err;
  for (int l = 0; l < c->m->info.n_layers; l++)
    for (int v = 0; v < 2; v++) {
      cl_mem sm, dm;
      size_t so, dof;
      clkv__kv_locate(from, l, src, v, &sm, &so);
      clkv__kv_locate(to, l, dst, v, &dm, &dof);
      CLKV_CL_TRY(clEnqueueCopyBuffer(c->m->rt->queue, sm, dm, so, dof, c->block_bytes, 0, NULL, NULL));
    }
fail:
  return st;
}

clkv_status clkv__kv_sync(clkv_context *c) {
  const clkv__kv_op *ops;
  size_t n;
  clkv_status st = CLKV_OK;
  clkv__kv_pool_take_ops(c->pool, &ops, &n);
  for (size_t i = 0; i < n && !st; i++) {
    const clkv__kv_op *o = &ops[i];
    if (o->kind == CLKV_KV_OP_COPY_D2D) st = copy_block(c, &c->dev, o->src, &c->dev, o->dst);
    else if (o->kind == CLKV_KV_OP_MOVE_D2H) st = copy_block(c, &c->dev, o->src, &c->host, o->dst);
    else st = copy_block(c, &c->host, o->src, &c->dev, o->dst);
  }
  if (st) return st;
  const uint64_t gen = clkv__kv_pool_generation(c->pool);
  if (gen != c->uploaded_gen) {
    for (int s = 0; s < c->n_seq_max; s++) {
      const int32_t *t = clkv__kv_seq_block_table(c->pool, s);
      int32_t *row = c->btab + (size_t)s * c->max_blocks;
      if (t) memcpy(row, t, sizeof(int32_t) * (size_t)c->max_blocks);
      else for (int b = 0; b < c->max_blocks; b++) row[b] = -1;
    }
    clkv_error *err = &c->err;
    CLKV_CL_TRY(clEnqueueWriteBuffer(c->m->rt->queue, c->d_btab, CL_TRUE, 0,
                                     sizeof(int32_t) * (size_t)c->n_seq_max * (size_t)c->max_blocks,
                                     c->btab, 0, NULL, NULL));
    c->uploaded_gen = gen;
  }
fail:
  return st;
}

static clkv_status check_ids(clkv_context *c, const int32_t *ids, int n) {
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= c->m->info.n_vocab)
      return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "token id %d is outside the vocabulary "
                       "(0..%d)", ids[i], c->m->info.n_vocab - 1);
  return CLKV_OK;
}

/* Positions must stay inside the context; the pool's tables are as wide as it. */
static clkv_status check_room(clkv_context *c, int seq, int n) {
  const int len = clkv__kv_seq_len(c->pool, seq);
  if (len < 0 || clkv__kv_seq_swapped(c->pool, seq))
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "sequence %d is not active on the device", seq);
  if (len + n > c->m->n_ctx)
    return clkv__err(&c->err, CLKV_ERR_CONTEXT_FULL,
                     "the sequence needs %d positions but the context holds %d; shorten the "
                     "prompt or the output, or raise --ctx (the model allows %d)", len + n,
                     c->m->n_ctx, c->m->info.n_ctx_train);
  return CLKV_OK;
}

clkv_status clkv__forward_prefill(clkv_context *c, int seq, const int32_t *ids, int n,
                                  int want_logits) {
  return clkv__forward_prefill_rows(c, seq, ids, n, want_logits ? 1 : 0, NULL, NULL);
}

clkv_status clkv__forward_prefill_rows(clkv_context *c, int seq, const int32_t *ids, int n,
                                       int n_logits, cl_mem dev, float *host) {
  clkv_status st;
  if (n < 1 || n > c->max_tok || seq < 0 || seq >= c->n_seq_max)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "prefill of %d tokens for sequence %d", n, seq);
  if (n_logits < 0 || n_logits > n || (n_logits > 1 && (!dev || !host)))
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "logits of %d rows of a %d-token pass", n_logits, n);
  if ((st = check_ids(c, ids, n)) || (st = check_room(c, seq, n))) return st;
  const int pos0 = clkv__kv_seq_len(c->pool, seq);
  if ((st = clkv__ensure_kernels(c, &c->err))) return st;
  if ((st = clkv__kv_seq_append(c->pool, seq, ids, n, &c->err))) return st;
  if ((st = clkv__kv_sync(c))) return st;
  for (int i = 0; i < n; i++) {
    c->h_ids[i] = ids[i];
    c->h_seq[i] = seq;
    c->h_pos[i] = pos0 + i;
  }
  if ((st = clkv__upload_batch(c, n, &c->err))) return st;
  const clkv__logits_dst out = {.dev = dev ? dev : c->logits, .host = host ? host : c->h_logits};
  st = clkv__run_layers(c, n, CLKV__PH_PREFILL, seq, pos0, n - n_logits, n_logits, out, &c->err);
  if (!st) clkv__kv_seq_commit(c->pool, seq);
  return st;
}

clkv_status clkv__decode_reserve(clkv_context *c, int seq, int32_t id) {
  clkv_status st;
  if (seq < 0 || seq >= c->n_seq_max)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "sequence %d does not exist", seq);
  if ((st = check_ids(c, &id, 1)) || (st = check_room(c, seq, 1))) return st;
  return clkv__kv_seq_append(c->pool, seq, &id, 1, &c->err);
}

clkv_status clkv__forward_decode_reserved(clkv_context *c, const int *seqs, const int32_t *ids,
                                          int n) {
  clkv_status st;
  if (n < 1 || n > c->n_seq_max)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "decode batch of %d (at most %d)", n, c->n_seq_max);
  if ((st = clkv__ensure_kernels(c, &c->err))) return st;
  for (int i = 0; i < n; i++) {
    c->h_ids[i] = ids[i];
    c->h_seq[i] = seqs[i];
    c->h_pos[i] = clkv__kv_seq_len(c->pool, seqs[i]) - 1;
  }
  if ((st = clkv__kv_sync(c))) return st;
  if ((st = clkv__upload_batch(c, n, &c->err))) return st;
  st = clkv__run_layers(c, n, CLKV__PH_DECODE, -1, 0, 0, n,
                  (clkv__logits_dst){.dev = c->logits, .host = c->h_logits}, &c->err);
  if (!st)
    for (int i = 0; i < n; i++) clkv__kv_seq_commit(c->pool, seqs[i]);
  return st;
}

clkv_status clkv__forward_decode(clkv_context *c, const int *seqs, const int32_t *ids, int n) {
  clkv_status st;
  if (n < 1 || n > c->n_seq_max)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "decode batch of %d (at most %d)", n, c->n_seq_max);
  for (int i = 0; i < n; i++)
    if ((st = clkv__decode_reserve(c, seqs[i], ids[i]))) return st;
  return clkv__forward_decode_reserved(c, seqs, ids, n);
}

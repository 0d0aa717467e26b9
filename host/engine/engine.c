/* engine.c — the engine context: a paged KV cache (fixed-size blocks from a free list,
 * one block table per sequence), activation buffers, and the forward passes: prefill
 * (consecutive tokens of one sequence, tiled causal attention) and decode (one token for
 * each of a batch of sequences, paged attention). Five launches per layer; in prefill a
 * projection may take the CLBlast path instead (host/gemm.c). */
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
                    &c->tk, &c->tv, &c->tmp, &c->logits};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (*bufs[i]) clReleaseMemObject(*bufs[i]);
  clkv__gemm_scratch_release(&c->gemm);
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

/* ---- launches ---- */
/* The prefill GEMM path for one projection (scratch made on first use). */
static clkv_status run_gemm(clkv_context *c, const clkv__weight *w, int epi, int mode,
                            const clkv__mv_args *a, int *touched, clkv_error *err) {
  clkv_model *m = c->m;
  const clkv__gemm_kernels *k;
  clkv_status st = clkv__model_gemm_kernels(m, w->type, epi, mode, &k, err);
  if (st) return st;
  if (!c->gemm.t) {
    const clkv_model_info *I = &m->info;
    size_t rows = (size_t)m->q_rows + 2 * (size_t)m->kv_rows, cols = (size_t)I->n_embd;
    rows = rows > 2 * (size_t)I->n_ff ? rows : 2 * (size_t)I->n_ff;
    cols = cols > (size_t)I->n_ff ? cols : (size_t)I->n_ff;
    cols = cols > (size_t)m->q_rows ? cols : (size_t)m->q_rows;
    if ((st = clkv__gemm_scratch_init(m->rt, (size_t)c->max_tok, rows, cols, &c->gemm, err)))
      return st;
  }
  return clkv__gemm_enqueue(m->rt, k, mode, &c->gemm, epi, a, touched, err);
}

/* Layer l's RoPE frequencies (windowed layers may have their own base). */
static cl_mem layer_freq(const clkv_model *m, int l) {
  return m->inv_freq_local && clkv__arch_layer_window(m->arch, m->info.sliding_window, l)
             ? m->inv_freq_local
             : m->inv_freq;
}

/* Y = W · norm(X[x_row0 .. x_row0+n)) with the epilogue epi. proj: which layer projection
 * (its prefill path may be CLBlast, see host/gemm.c), or -1. */
static clkv_status run_matvec(clkv_context *c, const clkv__weight *w, int epi, int phase,
                              int proj, cl_mem X, unsigned x_row0, unsigned n, cl_mem norm_w,
                              cl_mem Y, unsigned layer, clkv_error *err) {
  clkv_model *m = c->m;
  const clkv__mv_args a = {
      .W = w->buf, .rows = w->rows, .cols = w->cols, .X = X, .x_row0 = x_row0, .n_tok = n,
      .norm_w = norm_w ? norm_w : m->out_norm, .eps = m->info.rms_eps, .Y = Y,
      .kc = c->dev.k[layer / (unsigned)c->dev.layers], .vc = c->dev.v[layer / (unsigned)c->dev.layers],
      .btab = c->d_btab, .tok_seq = c->d_seq, .tok_pos = c->d_pos,
      .inv_freq = layer_freq(m, (int)layer), .q_rows = (unsigned)m->q_rows, .kv_rows = (unsigned)m->kv_rows,
      .layer_base = layer % (unsigned)c->dev.layers * (unsigned)c->n_blocks,
      .max_blocks = (unsigned)c->max_blocks};
  clkv_status st;
  if (phase == CLKV__PH_PREFILL && proj >= 0 && m->gemm[proj] != CLKV__GEMM_OWN) {
    int touched = 0;
    st = run_gemm(c, w, epi, m->gemm[proj], &a, &touched, err);
    if (!st || touched) return st;
    /* Nothing written yet: this projection goes back to our kernels for good. */
    fprintf(stderr, "clkv: warning: prefill GEMM %s via %s failed, using own kernels: %s\n",
            clkv__proj_name(proj), clkv__gemm_mode_name(m->gemm[proj]), err->message);
    clkv__model_set_gemm(m, proj, CLKV__GEMM_OWN, NULL); /* cannot fail */
  }
  cl_kernel k;
  if ((st = clkv__model_matvec_kernel(m, w->type, epi, phase, &k, err))) return st;
  const clkv__mv_shape sh = clkv__model_mv_shape(m, epi, phase);
  return clkv__matvec_enqueue(m->rt, k, &sh, epi, &a, err);
}

/* An attention variant: windowed (the model's window) or global. */
static clkv_status attn_kernels(clkv_model *m, int windowed, clkv_error *err) {
  clkv_status st = CLKV_OK;
  if (m->k_attn[windowed][0]) return CLKV_OK;
  char opts[256];
  clkv__attn_options(&m->tun, m->info.head_dim, m->info.n_kv_heads, m->params.kv_block,
                     m->params.kv_type, windowed ? m->info.sliding_window : 0, opts, sizeof opts);
  CLKV_TRY(clkv__kernel_create(m->rt, "attention.cl", opts, "clkv_attn_paged", &m->k_attn[windowed][0], err));
  CLKV_TRY(clkv__kernel_create(m->rt, "attention.cl", opts, "clkv_attn_prefill", &m->k_attn[windowed][1], err));
fail:
  return st;
}

/* The QKV finish and post-norm kernels (kernels/norm.cl), for models with split or
 * post-normed layers. */
static clkv_status arch_kernels(clkv_model *m, clkv_error *err) {
  clkv_status st = CLKV_OK;
  char opts[256];
  int split = 0;
  for (int l = 0; l < m->info.n_layers; l++) split |= m->layers[l].split;
  if (!m->k_qkv_finish && split) {
    clkv__qkv_finish_options(m->info.head_dim, m->info.n_kv_heads, m->params.kv_block,
                             m->params.kv_type, m->arch->qkv_bias, m->arch->qk_norm, opts,
                             sizeof opts);
    CLKV_TRY(clkv__kernel_create(m->rt, "norm.cl", opts, "clkv_qkv_finish", &m->k_qkv_finish, err));
  }
  if (!m->k_norm_add && m->arch->post_norms)
    CLKV_TRY(clkv__kernel_create(m->rt, "norm.cl", opts, "clkv_norm_add", &m->k_norm_add, err));
fail:
  return st;
}

static clkv_status ensure_kernels(clkv_context *c, clkv_error *err) {
  clkv_model *m = c->m;
  clkv_status st = CLKV_OK;
  if (!m->k_embed) {
    char opts[96];
    const float scale = m->arch->embd_scale_sqrt ? sqrtf((float)m->info.n_embd) : 1.0f;
    uint32_t bits;
    memcpy(&bits, &scale, sizeof bits);
    snprintf(opts, sizeof opts, "-DWTYPE=%u -DEMB_SCALE=as_float(0x%08xu)", m->tok_embd.type, bits);
    CLKV_TRY(clkv__kernel_create(m->rt, "embed.cl", opts, "clkv_get_rows", &m->k_embed, err));
  }
  for (int l = 0; l < m->info.n_layers; l++)
    CLKV_TRY(attn_kernels(m, clkv__arch_layer_window(m->arch, m->info.sliding_window, l) > 0, err));
  CLKV_TRY(arch_kernels(m, err));
fail:
  return st;
}

/* Uploads ids/seq/pos for n tokens. */
static clkv_status upload_batch(clkv_context *c, int n, clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_command_queue qu = c->m->rt->queue;
  const size_t b = sizeof(int32_t) * (size_t)n;
  CLKV_CL_TRY(clEnqueueWriteBuffer(qu, c->d_ids, CL_FALSE, 0, b, c->h_ids, 0, NULL, NULL));
  CLKV_CL_TRY(clEnqueueWriteBuffer(qu, c->d_seq, CL_FALSE, 0, b, c->h_seq, 0, NULL, NULL));
  CLKV_CL_TRY(clEnqueueWriteBuffer(qu, c->d_pos, CL_FALSE, 0, b, c->h_pos, 0, NULL, NULL));
fail:
  return st;
}

static clkv_status run_embed(clkv_context *c, int n, clkv_error *err) {
  clkv_model *m = c->m;
  return clkv__embed_enqueue(m->rt, m->k_embed, m->tok_embd.buf, (unsigned)m->info.n_embd,
                             (unsigned)m->info.n_vocab, c->d_ids, (unsigned)n, c->x, err);
}

static clkv_status run_attention(clkv_context *c, int layer, int n, int prefill_seq, int pos0,
                                 clkv_error *err) {
  clkv_model *m = c->m;
  const int prefill = prefill_seq >= 0;
  const clkv__attn_args a = {
      .Q = c->q, .kc = c->dev.k[layer / c->dev.layers], .vc = c->dev.v[layer / c->dev.layers],
      .btab = c->d_btab, .tok_seq = c->d_seq,
      .tok_pos = c->d_pos, .seq = prefill ? (unsigned)prefill_seq : 0, .pos0 = (unsigned)pos0,
      .n_tok = (unsigned)n, .n_heads = (unsigned)m->info.n_heads,
      .layer_base = (unsigned)(layer % c->dev.layers) * (unsigned)c->n_blocks,
      .max_blocks = (unsigned)c->max_blocks,
      .scale = 1.0f / sqrtf((float)m->info.head_dim), .O = c->att};
  const int windowed = clkv__arch_layer_window(m->arch, m->info.sliding_window, layer) > 0;
  return clkv__attn_enqueue(m->rt, m->k_attn[windowed][prefill], &m->tun,
                            prefill, &a, err);
}

/* q, k, v of layer l apart (split layers): three normalized projections, then the finish
 * (bias, per-head norm, RoPE, k and v into the cache). */
static clkv_status run_qkv_split(clkv_context *c, int l, int n, int phase, clkv_error *err) {
  clkv_model *m = c->m;
  const clkv__layer *L = &m->layers[l];
  clkv_status st = CLKV_OK;
  const unsigned u = (unsigned)n, lu = (unsigned)l;
  CLKV_TRY(run_matvec(c, &L->wq, CLKV__EPI_STORE, phase, CLKV__PROJ_QKV, c->x, 0, u, L->attn_norm, c->q, lu, err));
  CLKV_TRY(run_matvec(c, &L->wk, CLKV__EPI_STORE, phase, CLKV__PROJ_QKV, c->x, 0, u, L->attn_norm, c->tk, lu, err));
  CLKV_TRY(run_matvec(c, &L->wv, CLKV__EPI_STORE, phase, CLKV__PROJ_QKV, c->x, 0, u, L->attn_norm, c->tv, lu, err));
  const clkv__qkv_finish_args a = {
      .Tq = c->q, .Tk = c->tk, .Tv = c->tv, .q_rows = (unsigned)m->q_rows,
      .kv_rows = (unsigned)m->kv_rows, .n_tok = u, .bias = L->bqkv ? L->bqkv : c->q,
      .q_norm = L->q_norm ? L->q_norm : c->q, .k_norm = L->k_norm ? L->k_norm : c->q,
      .eps = m->info.rms_eps, .inv_freq = layer_freq(m, l),
      .kc = c->dev.k[l / c->dev.layers], .vc = c->dev.v[l / c->dev.layers], .btab = c->d_btab,
      .tok_seq = c->d_seq, .tok_pos = c->d_pos,
      .layer_base = (unsigned)(l % c->dev.layers) * (unsigned)c->n_blocks,
      .max_blocks = (unsigned)c->max_blocks};
  st = clkv__qkv_finish_enqueue(m->rt, m->k_qkv_finish, m->info.head_dim, &a, err);
fail:
  return st;
}

/* x += W · in, or with a post-norm x += RMSNorm(W · in) · post (W · in summed into a zeroed
 * scratch, so the CLBlast path's accumulate works unchanged). */
static clkv_status run_residual(clkv_context *c, const clkv__weight *w, int phase, int proj,
                                cl_mem in, cl_mem post, int n, int l, clkv_error *err) {
  clkv_model *m = c->m;
  clkv_status st = CLKV_OK;
  if (!post)
    return run_matvec(c, w, CLKV__EPI_ADD, phase, proj, in, 0, (unsigned)n, NULL, c->x,
                      (unsigned)l, err);
  const float zero = 0.0f;
  const size_t bytes = sizeof(float) * (size_t)n * (size_t)m->info.n_embd;
  CLKV_CL_TRY(clEnqueueFillBuffer(m->rt->queue, c->tmp, &zero, sizeof zero, 0, bytes, 0, NULL, NULL));
  CLKV_TRY(run_matvec(c, w, CLKV__EPI_ADD, phase, proj, in, 0, (unsigned)n, NULL, c->tmp,
                      (unsigned)l, err));
  st = clkv__norm_add_enqueue(m->rt, m->k_norm_add, c->x, c->tmp, post, (unsigned)m->info.n_embd,
                              (unsigned)n, m->info.rms_eps, err);
fail:
  return st;
}

/* One layer, as the architecture describes it (host/model/arch.c). */
static clkv_status run_layer(clkv_context *c, int l, int n, int phase, int prefill_seq, int pos0,
                             clkv_error *err) {
  clkv_model *m = c->m;
  const clkv__layer *L = &m->layers[l];
  clkv_status st = CLKV_OK;
  const int gate = m->arch->act == CLKV__ACT_GELU_TANH ? CLKV__EPI_GEGLU : CLKV__EPI_SWIGLU;
  if (L->split) CLKV_TRY(run_qkv_split(c, l, n, phase, err));
  else CLKV_TRY(run_matvec(c, &L->wqkv, CLKV__EPI_QKV, phase, CLKV__PROJ_QKV, c->x, 0,
                           (unsigned)n, L->attn_norm, c->q, (unsigned)l, err));
  CLKV_TRY(run_attention(c, l, n, prefill_seq, pos0, err));
  CLKV_TRY(run_residual(c, &L->wo, phase, CLKV__PROJ_O, c->att, L->post_attn_norm, n, l, err));
  CLKV_TRY(run_matvec(c, &L->wgu, gate, phase, CLKV__PROJ_GU, c->x, 0, (unsigned)n,
                      L->ffn_norm, c->ff, (unsigned)l, err));
  CLKV_TRY(run_residual(c, &L->wdown, phase, CLKV__PROJ_DOWN, c->ff, L->post_ffn_norm, n, l, err));
fail:
  return st;
}

/* The layers and the logits, for n tokens already uploaded. prefill_seq < 0: decode. */
static clkv_status run_layers(clkv_context *c, int n, int phase, int prefill_seq, int pos0,
                              int logits_row0, int n_logits, clkv_error *err) {
  clkv_model *m = c->m;
  clkv_status st = CLKV_OK;
  CLKV_TRY(run_embed(c, n, err));
  for (int l = 0; l < m->info.n_layers; l++)
    CLKV_TRY(run_layer(c, l, n, phase, prefill_seq, pos0, err));
  if (n_logits > 0) {
    CLKV_TRY(run_matvec(c, &m->output, CLKV__EPI_STORE, CLKV__PH_DECODE, -1, c->x,
                        (unsigned)logits_row0, (unsigned)n_logits, m->out_norm, c->logits, 0, err));
    CLKV_CL_TRY(clEnqueueReadBuffer(m->rt->queue, c->logits, CL_TRUE, 0,
                                    sizeof(float) * (size_t)n_logits * (size_t)m->info.n_vocab,
                                    c->h_logits, 0, NULL, NULL));
    const float cap = m->arch->logit_softcap;
    if (cap > 0)
      for (size_t i = 0; i < (size_t)n_logits * (size_t)m->info.n_vocab; i++)
        c->h_logits[i] = cap * tanhf(c->h_logits[i] / cap);
  } else {
    CLKV_CL_TRY(clFinish(m->rt->queue));
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
  clkv_status st;
  if (n < 1 || n > c->max_tok || seq < 0 || seq >= c->n_seq_max)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "prefill of %d tokens for sequence %d", n, seq);
  if ((st = check_ids(c, ids, n)) || (st = check_room(c, seq, n))) return st;
  const int pos0 = clkv__kv_seq_len(c->pool, seq);
  if ((st = ensure_kernels(c, &c->err))) return st;
  if ((st = clkv__kv_seq_append(c->pool, seq, ids, n, &c->err))) return st;
  if ((st = clkv__kv_sync(c))) return st;
  for (int i = 0; i < n; i++) {
    c->h_ids[i] = ids[i];
    c->h_seq[i] = seq;
    c->h_pos[i] = pos0 + i;
  }
  if ((st = upload_batch(c, n, &c->err))) return st;
  st = run_layers(c, n, CLKV__PH_PREFILL, seq, pos0, n - 1, want_logits ? 1 : 0, &c->err);
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
  if ((st = ensure_kernels(c, &c->err))) return st;
  for (int i = 0; i < n; i++) {
    c->h_ids[i] = ids[i];
    c->h_seq[i] = seqs[i];
    c->h_pos[i] = clkv__kv_seq_len(c->pool, seqs[i]) - 1;
  }
  if ((st = clkv__kv_sync(c))) return st;
  if ((st = upload_batch(c, n, &c->err))) return st;
  st = run_layers(c, n, CLKV__PH_DECODE, -1, 0, 0, n, &c->err);
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

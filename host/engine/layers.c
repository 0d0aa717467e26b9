/* layers.c — the launches of a forward pass: the embedding, each layer as its architecture
 * describes it (host/model/arch.c: fused or split QKV, window and RoPE base per layer,
 * post-norms, the gated activation), the logits; the kernel variants made on first use. */
#include "engine/fused.h"

#include <math.h>
#include <string.h>

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
  clkv__attn_options(&m->tun, m->info.head_dim, m->info.n_kv_heads, m->info.n_heads,
                     m->params.kv_block,
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

clkv_status clkv__ensure_kernels(clkv_context *c, clkv_error *err) {
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

clkv_status clkv__upload_batch(clkv_context *c, int n, clkv_error *err) {
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
  const clkv__weight *w[3] = {&L->wq, &L->wk, &L->wv};
  const cl_mem out[3] = {c->q, c->tk, c->tv};
  for (int i = 0; i < 3; i++)
    CLKV_TRY(run_matvec(c, w[i], CLKV__EPI_STORE, phase, CLKV__PROJ_QKV, c->x, 0, u,
                        L->attn_norm, out[i], lu, err));
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


/* One token's decode step the fused way (engine/fused.h): the embedding, then per layer the
 * attention and one launch for the rest; the logits come with the last where
 * clkv__fused_logits says so. */
static clkv_status run_fused(clkv_context *c, cl_mem logits, clkv_error *err) {
  clkv_model *m = c->m;
  clkv_status st = CLKV_OK;
  const int L = m->info.n_layers;
  CLKV_TRY(run_embed(c, 1, err));
  CLKV_TRY(clkv__fused_step(c, -1, layer_freq(m, 0), logits, err));
  for (int l = 0; l < L; l++) {
    CLKV_TRY(run_attention(c, l, 1, -1, 0, err));
    CLKV_TRY(clkv__fused_step(c, l, l + 1 < L ? layer_freq(m, l + 1) : NULL, logits, err));
  }
fail:
  return st;
}

clkv_status clkv__run_layers(clkv_context *c, int n, int phase, int prefill_seq, int pos0,
                             int logits_row0, int n_logits, clkv__logits_dst out,
                             clkv_error *err) {
  clkv_model *m = c->m;
  clkv_status st = CLKV_OK;
  const int fused = clkv__fused_usable(c, n, phase, n_logits);
  const double t0 = fused ? clkv__now_ms() : 0;
  if (fused) {
    CLKV_TRY(run_fused(c, out.dev, err));
  } else {
    CLKV_TRY(run_embed(c, n, err));
    for (int l = 0; l < m->info.n_layers; l++)
      CLKV_TRY(run_layer(c, l, n, phase, prefill_seq, pos0, err));
  }
  if (n_logits > 0) {
    /* several rows of one sequence (every position's logits) share each weight block */
    const int ph = n_logits > 1 && prefill_seq >= 0 ? CLKV__PH_PREFILL : CLKV__PH_DECODE;
    if (!fused || !clkv__fused_logits(c))
      CLKV_TRY(run_matvec(c, &m->output, CLKV__EPI_STORE, ph, -1, c->x, (unsigned)logits_row0,
                          (unsigned)n_logits, m->out_norm, out.dev, 0, err));
    CLKV_CL_TRY(clEnqueueReadBuffer(m->rt->queue, out.dev, CL_TRUE, 0,
                                    sizeof(float) * (size_t)n_logits * (size_t)m->info.n_vocab,
                                    out.host, 0, NULL, NULL));
    if (fused) clkv__fused_observe(c, (clkv__now_ms() - t0) * 1e-3);
    const float cap = m->arch->logit_softcap;
    if (cap > 0)
      for (size_t i = 0; i < (size_t)n_logits * (size_t)m->info.n_vocab; i++)
        out.host[i] = cap * tanhf(out.host[i] / cap);
  } else {
    CLKV_CL_TRY(clFinish(m->rt->queue));
  }
fail:
  return st;
}


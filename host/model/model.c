/* model.c — loads a llama-family GGUF onto the device: weights uploaded once in their
 * stored type (q/k/v rows concatenated, gate/up rows interleaved, for the fused kernels),
 * tokenizer and chat template; creates the kernel variants on first use. */
#include "model/model.h"
#include "tune/tunables.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

clkv_model_params clkv_model_default_params(void) {
  clkv_model_params p = {0, 16, 128, 4, CLKV_KV_F16};
  return p;
}

/* Finds a 2-D tensor with ne = [cols, rows] in a runnable type. */
static clkv_status find_matrix(const clkv__gguf_file *f, const char *name, uint64_t cols,
                               uint64_t rows, const clkv__gguf_tensor **out, clkv_error *err) {
  const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, name);
  if (!t) return clkv__err(err, CLKV_ERR_FORMAT, "tensor %s is missing from the model", name);
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
    return clkv__err(err, CLKV_ERR_FORMAT, "tensor %s is %llux%llu, expected %llux%llu", name,
                     (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                     (unsigned long long)cols, (unsigned long long)rows);
  if (clkv__wtype_slot(t->type) < 0) {
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(t->type);
    return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                     "tensor %s has type %s, which clkv cannot compute yet (supported: %s); use "
                     "a model quantized to one of these", name, ti && ti->name ? ti->name : "?",
                     clkv__wtype_names());
  }
  if (cols % 32)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED, "tensor %s has rows of %llu elements; clkv needs "
                     "a multiple of 32", name, (unsigned long long)cols);
  *out = t;
  return CLKV_OK;
}

static clkv_status upload(clkv_model *m, const void *data, size_t bytes, cl_mem *out,
                          const char *what, clkv_error *err) {
  clkv_status st = CLKV_OK;
  if ((uint64_t)bytes > m->rt->info.max_alloc_bytes)
    return clkv__err(err, CLKV_ERR_DEVICE_MEMORY,
                     "%s needs one buffer of %zu bytes but the device allows at most %llu; use a "
                     "smaller model or another device", what, bytes,
                     (unsigned long long)m->rt->info.max_alloc_bytes);
  CLKV_CL_CREATE(*out, clCreateBuffer(m->rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                      bytes, (void *)data, &clkv__e));
  m->weight_bytes += bytes;
  return CLKV_OK;
fail:
  return st;
}

/* Uploads several same-type matrices as one: rows stacked (interleave 0) or alternating
 * row by row (interleave 1, two matrices of equal shape). */
static clkv_status upload_matrix(clkv_model *m, const clkv__gguf_tensor *const *ts, int n,
                                 int interleave, clkv__weight *w, clkv_error *err) {
  uint64_t rows = 0;
  for (int i = 0; i < n; i++) {
    if (ts[i]->type != ts[0]->type)
      return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                       "tensors %s and %s have different types; the fused kernel needs one type",
                       ts[0]->name, ts[i]->name);
    rows += ts[i]->ne[1];
  }
  const size_t row_bytes = clkv__ggml_row_bytes(ts[0]->type, ts[0]->ne[0]);
  w->type = ts[0]->type;
  w->cols = (uint32_t)ts[0]->ne[0];
  w->rows = (uint32_t)rows;
  w->bytes = row_bytes * rows;
  if (n == 1) return upload(m, ts[0]->data, w->bytes, &w->buf, ts[0]->name, err);
  unsigned char *tmp = malloc(w->bytes);
  if (!tmp) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory repacking %s", ts[0]->name);
  if (!interleave) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
      memcpy(tmp + off, ts[i]->data, ts[i]->n_bytes);
      off += ts[i]->n_bytes;
    }
  } else {
    for (uint64_t r = 0; r < ts[0]->ne[1]; r++)
      for (int i = 0; i < n; i++)
        memcpy(tmp + (r * n + i) * row_bytes, (const unsigned char *)ts[i]->data + r * row_bytes,
               row_bytes);
  }
  clkv_status st = upload(m, tmp, w->bytes, &w->buf, ts[0]->name, err);
  free(tmp);
  return st;
}

static clkv_status upload_vector(clkv_model *m, const clkv__gguf_file *f, const char *name, uint64_t n,
                                 cl_mem *out, clkv_error *err) {
  const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, name);
  if (!t) return clkv__err(err, CLKV_ERR_FORMAT, "tensor %s is missing from the model", name);
  if (t->n_elements != n)
    return clkv__err(err, CLKV_ERR_FORMAT, "tensor %s has %llu elements, expected %llu", name,
                     (unsigned long long)t->n_elements, (unsigned long long)n);
  float *tmp = malloc(n * sizeof(float));
  if (!tmp) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  clkv_status st = clkv__dequantize_row(t->type, t->data, tmp, n);
  if (st) {
    free(tmp);
    return clkv__err(err, st, "tensor %s: cannot decode its type", name);
  }
  st = upload(m, tmp, n * sizeof(float), out, name, err);
  free(tmp);
  return st;
}

static clkv_status load_layers(clkv_model *m, const clkv__gguf_file *f, clkv_error *err) {
  const clkv_model_info *I = &m->info;
  clkv_status st = CLKV_OK;
  for (int l = 0; l < I->n_layers; l++) {
    clkv__layer *L = &m->layers[l];
    char n[8][96];
    const char *suffix[8] = {"attn_q", "attn_k", "attn_v", "attn_output",
                             "ffn_gate", "ffn_up", "ffn_down", NULL};
    for (int i = 0; suffix[i]; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s.weight", l, suffix[i]);
    const clkv__gguf_tensor *t[7];
    const uint64_t D = (uint64_t)I->n_embd, F = (uint64_t)I->n_ff;
    CLKV_TRY(find_matrix(f, n[0], D, (uint64_t)m->q_rows, &t[0], err));
    CLKV_TRY(find_matrix(f, n[1], D, (uint64_t)m->kv_rows, &t[1], err));
    CLKV_TRY(find_matrix(f, n[2], D, (uint64_t)m->kv_rows, &t[2], err));
    CLKV_TRY(find_matrix(f, n[3], (uint64_t)m->q_rows, D, &t[3], err));
    CLKV_TRY(find_matrix(f, n[4], D, F, &t[4], err));
    CLKV_TRY(find_matrix(f, n[5], D, F, &t[5], err));
    CLKV_TRY(find_matrix(f, n[6], F, D, &t[6], err));
    CLKV_TRY(upload_matrix(m, t, 3, 0, &L->wqkv, err));
    CLKV_TRY(upload_matrix(m, &t[3], 1, 0, &L->wo, err));
    CLKV_TRY(upload_matrix(m, &t[4], 2, 1, &L->wgu, err));
    CLKV_TRY(upload_matrix(m, &t[6], 1, 0, &L->wdown, err));
    char nn[96];
    snprintf(nn, sizeof nn, "blk.%d.attn_norm.weight", l);
    CLKV_TRY(upload_vector(m, f, nn, D, &L->attn_norm, err));
    snprintf(nn, sizeof nn, "blk.%d.ffn_norm.weight", l);
    CLKV_TRY(upload_vector(m, f, nn, D, &L->ffn_norm, err));
  }
fail:
  return st;
}

static clkv_status load_weights(clkv_model *m, const clkv__gguf_file *f, clkv_error *err) {
  const clkv_model_info *I = &m->info;
  clkv_status st = CLKV_OK;
  const clkv__gguf_tensor *te, *to;
  CLKV_TRY(find_matrix(f, "token_embd.weight", (uint64_t)I->n_embd, (uint64_t)I->n_vocab, &te, err));
  CLKV_TRY(upload_matrix(m, &te, 1, 0, &m->tok_embd, err));
  if (clkv__gguf_find_tensor(f, "output.weight")) {
    CLKV_TRY(find_matrix(f, "output.weight", (uint64_t)I->n_embd, (uint64_t)I->n_vocab, &to, err));
    CLKV_TRY(upload_matrix(m, &to, 1, 0, &m->output, err));
  } else {
    m->output = m->tok_embd;
    m->tied = 1;
  }
  CLKV_TRY(upload_vector(m, f, "output_norm.weight", (uint64_t)I->n_embd, &m->out_norm, err));
  /* RoPE frequencies base^(-2i/d), computed in double once. */
  int half = I->head_dim / 2;
  float *freq = malloc(sizeof(float) * (size_t)half);
  if (!freq) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  for (int i = 0; i < half; i++)
    freq[i] = (float)pow((double)I->rope_base, -2.0 * i / (double)I->head_dim);
  st = upload(m, freq, sizeof(float) * (size_t)half, &m->inv_freq, "rope", err);
  free(freq);
  if (st) return st;
  m->layers = calloc((size_t)I->n_layers, sizeof *m->layers);
  if (!m->layers) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  return load_layers(m, f, err);
fail:
  return st;
}

static clkv_status load_chat(clkv_model *m, const clkv__gguf_file *f) {
  clkv__gguf_str s;
  if (clkv__gguf_get_strv(f, "tokenizer.chat_template", &s) && s.len) {
    char *t = malloc(s.len + 1);
    if (!t) return CLKV_ERR_NO_MEMORY;
    memcpy(t, s.data, s.len);
    t[s.len] = 0;
    m->chat = clkv__chat_detect(t);
    m->default_system = clkv__chat_default_system(t);
    free(t);
  }
  int32_t bos = clkv__tokenizer_bos(m->tok), eos = clkv__tokenizer_eos(m->tok);
  const char *p;
  if (bos >= 0 && (p = clkv__tokenizer_token(m->tok, bos))) snprintf(m->bos_text, sizeof m->bos_text, "%s", p);
  if (eos >= 0 && (p = clkv__tokenizer_token(m->tok, eos))) snprintf(m->eos_text, sizeof m->eos_text, "%s", p);
  return CLKV_OK;
}

clkv_status clkv_model_load(clkv_runtime *rt, const char *path, const clkv_model_params *p,
                            clkv_model **out, clkv_error *err) {
  if (!rt || !path || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "runtime, path and out are required");
  *out = NULL;
  clkv_model_params mp = p ? *p : clkv_model_default_params();
  if (mp.kv_block != 8 && mp.kv_block != 16 && mp.kv_block != 32)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "KV block size %d: use 8, 16 or 32", mp.kv_block);
  if (mp.kv_type < CLKV_KV_F16 || mp.kv_type > CLKV_KV_Q4)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "KV type %d: use f16, q8 or q4", (int)mp.kv_type);
  if (mp.chunk < 1 || mp.chunk > 4096 || mp.max_seqs < 1 || mp.max_seqs > 256 || mp.n_ctx < 0)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "model params out of range (chunk 1..4096, "
                     "max_seqs 1..256, n_ctx >= 0)");
  clkv__gguf_file *f = NULL;
  clkv_status st = clkv__gguf_open(path, &f, err);
  if (st) return st;
  clkv_model *m = calloc(1, sizeof *m);
  if (!m) {
    clkv__gguf_close(f);
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  }
  m->rt = rt;
  m->params = mp;
  if (!(m->path = strdup(path))) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
    goto fail;
  }
  CLKV_TRY(clkv__model_hparams(f, &m->info, err));
  m->n_ctx = mp.n_ctx ? mp.n_ctx : (m->info.n_ctx_train < 2048 ? m->info.n_ctx_train : 2048);
  if (m->n_ctx > m->info.n_ctx_train) m->n_ctx = m->info.n_ctx_train;
  m->info.n_ctx = m->n_ctx;
  m->q_rows = m->info.n_heads * m->info.head_dim;
  m->kv_rows = m->info.n_kv_heads * m->info.head_dim;
  CLKV_TRY(clkv__tokenizer_load(f, &m->tok, err));
  if (clkv__tokenizer_n_vocab(m->tok) != m->info.n_vocab) {
    st = clkv__err(err, CLKV_ERR_FORMAT, "the tokenizer has %d tokens but the embedding %d",
                   clkv__tokenizer_n_vocab(m->tok), m->info.n_vocab);
    goto fail;
  }
  if ((st = load_chat(m, f))) {
    clkv__err(err, st, "out of host memory");
    goto fail;
  }
  clkv__tunables_load(rt, &m->tun, m->tuning_source, sizeof m->tuning_source);
  CLKV_TRY(clkv__shapes_check(rt, &m->tun, m->info.head_dim, m->params.kv_type, err));
  clkv__model_gemm_init(m);
  CLKV_TRY(load_weights(m, f, err));
  clkv__gguf_close(f);
  *out = m;
  return CLKV_OK;
fail:
  clkv__gguf_close(f);
  clkv_model_free(m);
  return st;
}

static void release_mem(cl_mem *b) {
  if (*b) clReleaseMemObject(*b);
  *b = NULL;
}

void clkv_model_free(clkv_model *m) {
  if (!m) return;
  for (int i = 0; i < CLKV__N_WTYPES; i++)
    for (int e = 0; e < CLKV__N_EPI; e++)
      for (int p = 0; p < 2; p++)
        if (m->k_mv[i][e][p]) clReleaseKernel(m->k_mv[i][e][p]);
  for (int i = 0; i < CLKV__N_WTYPES; i++)
    for (int e = 0; e < CLKV__N_EPI; e++)
      for (int h = 0; h < 2; h++) clkv__gemm_kernels_release(&m->k_gemm[i][e][h]);
  if (m->k_embed) clReleaseKernel(m->k_embed);
  if (m->k_attn_paged) clReleaseKernel(m->k_attn_paged);
  if (m->k_attn_prefill) clReleaseKernel(m->k_attn_prefill);
  if (m->layers) {
    for (int l = 0; l < m->info.n_layers; l++) {
      clkv__layer *L = &m->layers[l];
      release_mem(&L->attn_norm);
      release_mem(&L->ffn_norm);
      release_mem(&L->wqkv.buf);
      release_mem(&L->wo.buf);
      release_mem(&L->wgu.buf);
      release_mem(&L->wdown.buf);
    }
    free(m->layers);
  }
  if (!m->tied) release_mem(&m->output.buf);
  release_mem(&m->tok_embd.buf);
  release_mem(&m->out_norm);
  release_mem(&m->inv_freq);
  clkv__tokenizer_free(m->tok);
  free(m->default_system);
  free(m->path);
  free(m);
}

void clkv_model_get_info(const clkv_model *m, clkv_model_info *out) {
  if (m && out) *out = m->info;
}

clkv__mv_shape clkv__model_mv_shape(const clkv_model *m, int epi, int phase) {
  return clkv__matvec_fit(&m->tun.mv[phase], epi, m->params.kv_type, m->info.head_dim,
                          m->rt->info.max_workgroup_size);
}

const char *clkv_kv_type_name(clkv_kv_type t) {
  return t == CLKV_KV_F16 ? "f16" : t == CLKV_KV_Q8 ? "q8" : t == CLKV_KV_Q4 ? "q4" : "?";
}

clkv_status clkv__model_matvec_kernel(clkv_model *m, uint32_t wtype, int epi, int phase,
                                      cl_kernel *out, clkv_error *err) {
  int slot = clkv__wtype_slot(wtype);
  if (slot < 0) return clkv__err(err, CLKV_ERR_UNSUPPORTED, "no kernel for weight type %u", wtype);
  cl_kernel *k = &m->k_mv[slot][epi][phase];
  if (!*k) {
    char opts[512];
    const clkv__mv_shape sh = clkv__model_mv_shape(m, epi, phase);
    clkv__matvec_options(&sh, wtype, epi, m->info.head_dim, m->info.n_kv_heads,
                         m->params.kv_block, m->params.kv_type, opts, sizeof opts);
    clkv_status st = clkv__kernel_create(m->rt, "matvec.cl", opts, "clkv_matvec", k, err);
    if (st) return st;
  }
  *out = *k;
  return CLKV_OK;
}

clkv_status clkv__model_gemm_kernels(clkv_model *m, uint32_t wtype, int epi, int mode,
                                     const clkv__gemm_kernels **out, clkv_error *err) {
  int slot = clkv__wtype_slot(wtype);
  if (slot < 0 || mode == CLKV__GEMM_OWN)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED, "no prefill GEMM kernels for type %u, mode %s",
                     wtype, clkv__gemm_mode_name(mode));
  clkv__gemm_kernels *k = &m->k_gemm[slot][epi][mode == CLKV__GEMM_CLBLAST16];
  if (!k->epi) {
    char opts[512];
    clkv__gemm_options(mode, wtype, epi, m->info.head_dim, m->info.n_kv_heads,
                       m->params.kv_block, m->params.kv_type, opts, sizeof opts);
    clkv_status st = clkv__gemm_kernels_create(m->rt, opts, k, err);
    if (st) return st;
  }
  *out = k;
  return CLKV_OK;
}

const char *clkv_model_tuning_source(const clkv_model *m) {
  return m && m->tuning_source[0] ? m->tuning_source : "defaults";
}

/* ---- the prefill path of each projection ---- */

/* "qkv=own o=own gu=clblast down=clblast", then why a request was not honoured. */
static void gemm_note(clkv_model *m, const char *why) {
  size_t n = 0;
  for (int p = 0; p < CLKV__N_PROJ && n < sizeof m->gemm_note; p++)
    n += (size_t)snprintf(m->gemm_note + n, sizeof m->gemm_note - n, "%s%s=%s", p ? " " : "",
                          clkv__proj_name(p), clkv__gemm_mode_name(m->gemm[p]));
  if (why && *why && n < sizeof m->gemm_note)
    snprintf(m->gemm_note + n, sizeof m->gemm_note - n, " (%s)", why);
}

void clkv__model_gemm_init(clkv_model *m) {
  char why[256] = "";
  for (int p = 0; p < CLKV__N_PROJ; p++) {
    m->gemm[p] = (int)m->tun.gemm[p];
    char w[256];
    if (!clkv__gemm_available(m->rt, m->gemm[p], w, sizeof w)) {
      if (!why[0]) {
        memcpy(why, w, sizeof why);
        fprintf(stderr, "clkv: warning: prefill GEMM %s cannot run here, own kernels used "
                "instead: %s\n", clkv__gemm_mode_name(m->gemm[p]), w);
      }
      m->gemm[p] = CLKV__GEMM_OWN;
    }
  }
  gemm_note(m, why);
}

clkv_status clkv__model_set_gemm(clkv_model *m, int proj, int mode, clkv_error *err) {
  char why[256];
  if (proj < -1 || proj >= CLKV__N_PROJ)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "projection %d (use -1 for all, 0..3)", proj);
  if (!clkv__gemm_available(m->rt, mode, why, sizeof why))
    return clkv__err(err, CLKV_ERR_UNSUPPORTED, "prefill GEMM %s: %s",
                     clkv__gemm_mode_name(mode), why);
  for (int p = 0; p < CLKV__N_PROJ; p++)
    if (proj < 0 || p == proj) m->gemm[p] = mode;
  gemm_note(m, NULL);
  return CLKV_OK;
}

const char *clkv_model_prefill_gemm(const clkv_model *m) {
  return m ? m->gemm_note : "no model";
}

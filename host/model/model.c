/* model.c — loads a GGUF model (an architecture of host/model/arch.c) onto the device:
 * weights uploaded once in their stored type (q/k/v rows concatenated or apart, q/k rows in
 * adjacent-pair RoPE order, gate/up rows interleaved, for the fused kernels), tokenizer and
 * chat template; creates the kernel variants on first use. */
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

/* Uploads rows gathered from several tensors of one type as one matrix: src[i] is row i. */
static clkv_status upload_rows(clkv_model *m, const unsigned char *const *src, uint64_t rows,
                               const clkv__gguf_tensor *t0, clkv__weight *w, clkv_error *err) {
  const size_t row_bytes = clkv__ggml_row_bytes(t0->type, t0->ne[0]);
  w->type = t0->type;
  w->cols = (uint32_t)t0->ne[0];
  w->rows = (uint32_t)rows;
  w->bytes = row_bytes * rows;
  unsigned char *tmp = malloc(w->bytes);
  if (!tmp) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory repacking %s", t0->name);
  for (uint64_t r = 0; r < rows; r++) memcpy(tmp + r * row_bytes, src[r], row_bytes);
  clkv_status st = upload(m, tmp, w->bytes, &w->buf, t0->name, err);
  free(tmp);
  return st;
}

/* The source row of row r of a head-major block of q or k rows: itself, or for NeoX RoPE the
 * order 0, h/2, 1, h/2+1, ... inside each head (pairs (i, i+h/2) become adjacent). */
static uint64_t head_row(const clkv_model *m, uint64_t r) {
  if (!m->arch->rope_neox) return r;
  const uint64_t hd = (uint64_t)m->info.head_dim, j = r % hd;
  return r - j + (j % 2 ? hd / 2 + j / 2 : j / 2);
}

/* A matrix made of parts (rows of each part's tensor, from row first on, n rows each), q/k
 * parts (rope 1) in head_row order; parts stacked, or interleaved row by row (gate/up). */
typedef struct mat_part {
  const clkv__gguf_tensor *t;
  uint64_t first, n;
  int rope;
} mat_part;

static clkv_status upload_parts(clkv_model *m, const mat_part *p, int np, int interleave,
                                clkv__weight *w, clkv_error *err) {
  uint64_t rows = 0;
  for (int i = 0; i < np; i++) {
    if (p[i].t->type != p[0].t->type)
      return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                       "tensors %s and %s have different types; the fused kernel needs one type",
                       p[0].t->name, p[i].t->name);
    rows += p[i].n;
  }
  if (np == 1 && !p[0].rope && p[0].first == 0) {
    *w = (clkv__weight){.type = p[0].t->type, .cols = (uint32_t)p[0].t->ne[0],
                        .rows = (uint32_t)rows, .bytes = p[0].t->n_bytes};
    return upload(m, p[0].t->data, w->bytes, &w->buf, p[0].t->name, err);
  }
  const unsigned char **src = malloc(sizeof *src * rows);
  if (!src) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  const size_t rb = clkv__ggml_row_bytes(p[0].t->type, p[0].t->ne[0]);
  for (uint64_t r = 0, i = 0; i < (uint64_t)np; i++)
    for (uint64_t j = 0; j < p[i].n; j++, r++) {
      const uint64_t dst = interleave ? j * (uint64_t)np + i : r;
      const uint64_t row = p[i].first + (p[i].rope ? head_row(m, j) : j);
      src[dst] = (const unsigned char *)p[i].t->data + row * rb;
    }
  clkv_status st = upload_rows(m, src, rows, p[0].t, w, err);
  free(src);
  return st;
}

/* A vector of n values as F32; rope: q/k head order (per-head norms, biases of q/k parts:
 * the first n_rope values). Optional ones (req 0) that are missing leave *out NULL. */
static clkv_status upload_vector_perm(clkv_model *m, const clkv__gguf_file *f, const char *name,
                                      uint64_t n, uint64_t n_rope, int req, cl_mem *out,
                                      clkv_error *err) {
  const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, name);
  if (!t && !req) return CLKV_OK;
  if (!t) return clkv__err(err, CLKV_ERR_FORMAT, "tensor %s is missing from the model", name);
  if (t->n_elements != n)
    return clkv__err(err, CLKV_ERR_FORMAT, "tensor %s has %llu elements, expected %llu", name,
                     (unsigned long long)t->n_elements, (unsigned long long)n);
  float *tmp = malloc(n * sizeof(float) * 2);
  if (!tmp) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  float *v = tmp + n;
  clkv_status st = clkv__dequantize_row(t->type, t->data, tmp, n);
  if (st) {
    free(tmp);
    return clkv__err(err, st, "tensor %s: cannot decode its type", name);
  }
  for (uint64_t i = 0; i < n; i++) v[i] = i < n_rope ? tmp[head_row(m, i)] : tmp[i];
  st = upload(m, v, n * sizeof(float), out, name, err);
  free(tmp);
  return st;
}

static clkv_status upload_vector(clkv_model *m, const clkv__gguf_file *f, const char *name,
                                 uint64_t n, cl_mem *out, clkv_error *err) {
  return upload_vector_perm(m, f, name, n, 0, 1, out, err);
}

/* "blk.<l>.<what>.<kind>" */
static const char *tname(char *buf, size_t cap, int l, const char *what, const char *kind) {
  snprintf(buf, cap, "blk.%d.%s.%s", l, what, kind);
  return buf;
}

/* q, k, v of layer l: one fused tensor or three; fused into wqkv unless the architecture
 * needs a step before RoPE or the types differ (split: wq, wk, wv apart). */
static clkv_status load_qkv(clkv_model *m, const clkv__gguf_file *f, int l, clkv__layer *L,
                            clkv_error *err) {
  const uint64_t D = (uint64_t)m->info.n_embd, Q = (uint64_t)m->q_rows, K = (uint64_t)m->kv_rows;
  clkv_status st = CLKV_OK;
  char n[3][96];
  mat_part p[3];
  if (m->arch->fused_qkv) {
    const clkv__gguf_tensor *t;
    CLKV_TRY(find_matrix(f, tname(n[0], 96, l, "attn_qkv", "weight"), D, Q + 2 * K, &t, err));
    p[0] = (mat_part){t, 0, Q, 1}, p[1] = (mat_part){t, Q, K, 1}, p[2] = (mat_part){t, Q + K, K, 0};
  } else {
    const char *w[3] = {"attn_q", "attn_k", "attn_v"};
    const uint64_t rows[3] = {Q, K, K};
    for (int i = 0; i < 3; i++) {
      CLKV_TRY(find_matrix(f, tname(n[i], 96, l, w[i], "weight"), D, rows[i], &p[i].t, err));
      p[i].first = 0, p[i].n = rows[i], p[i].rope = i < 2;
    }
  }
  L->split = clkv__arch_split_qkv(m->arch) || p[0].t->type != p[1].t->type ||
             p[0].t->type != p[2].t->type;
  if (!L->split) return upload_parts(m, p, 3, 0, &L->wqkv, err);
  CLKV_TRY(upload_parts(m, &p[0], 1, 0, &L->wq, err));
  CLKV_TRY(upload_parts(m, &p[1], 1, 0, &L->wk, err));
  CLKV_TRY(upload_parts(m, &p[2], 1, 0, &L->wv, err));
fail:
  return st;
}

/* Biases (q, k, v concatenated) and per-head q/k norms, as the architecture has them. */
static clkv_status load_qkv_extras(clkv_model *m, const clkv__gguf_file *f, int l,
                                   clkv__layer *L, clkv_error *err) {
  const clkv__arch *a = m->arch;
  const uint64_t Q = (uint64_t)m->q_rows, K = (uint64_t)m->kv_rows;
  const uint64_t hd = (uint64_t)m->info.head_dim;
  clkv_status st = CLKV_OK;
  char n[96];
  if (a->qk_norm) {
    CLKV_TRY(upload_vector_perm(m, f, tname(n, 96, l, "attn_q_norm", "weight"), hd, hd, 1,
                                &L->q_norm, err));
    CLKV_TRY(upload_vector_perm(m, f, tname(n, 96, l, "attn_k_norm", "weight"), hd, hd, 1,
                                &L->k_norm, err));
  }
  if (a->qkv_bias) {
    float *b = calloc(Q + 2 * K, sizeof *b);
    if (!b) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
    const char *w[3] = {"attn_q", "attn_k", "attn_v"};
    const uint64_t off[3] = {0, Q, Q + K}, len[3] = {Q, K, K};
    for (int i = 0; i < 3 && !st; i++) {
      const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, tname(n, 96, l, w[i], "bias"));
      if (!t || t->n_elements != len[i] || t->type != GGML_T_F32) {
        st = clkv__err(err, CLKV_ERR_FORMAT, "tensor %s is missing or not %llu F32 values", n,
                       (unsigned long long)len[i]);
        break;
      }
      for (uint64_t j = 0; j < len[i]; j++)
        b[off[i] + j] = ((const float *)t->data)[i < 2 ? head_row(m, j) : j];
    }
    if (!st) st = upload(m, b, sizeof *b * (Q + 2 * K), &L->bqkv, "biases", err);
    free(b);
  }
fail:
  return st;
}

/* The feed-forward: gate and up interleaved into wgu (two tensors, or one holding gate rows
 * then up rows), down; the norms the architecture places around the layer's two branches. */
static clkv_status load_ffn_norms(clkv_model *m, const clkv__gguf_file *f, int l,
                                  clkv__layer *L, clkv_error *err) {
  const uint64_t D = (uint64_t)m->info.n_embd, F = (uint64_t)m->info.n_ff;
  clkv_status st = CLKV_OK;
  char n[96];
  mat_part p[2], d;
  if (m->arch->fused_gate_up) {
    const clkv__gguf_tensor *t;
    CLKV_TRY(find_matrix(f, tname(n, 96, l, "ffn_up", "weight"), D, 2 * F, &t, err));
    p[0] = (mat_part){t, 0, F, 0}, p[1] = (mat_part){t, F, F, 0};
  } else {
    CLKV_TRY(find_matrix(f, tname(n, 96, l, "ffn_gate", "weight"), D, F, &p[0].t, err));
    CLKV_TRY(find_matrix(f, tname(n, 96, l, "ffn_up", "weight"), D, F, &p[1].t, err));
    p[0].first = p[1].first = 0, p[0].n = p[1].n = F, p[0].rope = p[1].rope = 0;
  }
  CLKV_TRY(upload_parts(m, p, 2, 1, &L->wgu, err));
  CLKV_TRY(find_matrix(f, tname(n, 96, l, "ffn_down", "weight"), F, D, &d.t, err));
  d.first = 0, d.n = D, d.rope = 0;
  CLKV_TRY(upload_parts(m, &d, 1, 0, &L->wdown, err));
  CLKV_TRY(upload_vector(m, f, tname(n, 96, l, "attn_norm", "weight"), D, &L->attn_norm, err));
  CLKV_TRY(upload_vector(m, f, tname(n, 96, l, "ffn_norm", "weight"), D, &L->ffn_norm, err));
  if (m->arch->post_norms) {
    CLKV_TRY(upload_vector(m, f, tname(n, 96, l, "post_attention_norm", "weight"), D,
                           &L->post_attn_norm, err));
    CLKV_TRY(upload_vector(m, f, tname(n, 96, l, "post_ffw_norm", "weight"), D,
                           &L->post_ffn_norm, err));
  }
fail:
  return st;
}

static clkv_status load_layers(clkv_model *m, const clkv__gguf_file *f, clkv_error *err) {
  clkv_status st = CLKV_OK;
  for (int l = 0; l < m->info.n_layers; l++) {
    clkv__layer *L = &m->layers[l];
    char n[96];
    mat_part o;
    CLKV_TRY(load_qkv(m, f, l, L, err));
    CLKV_TRY(load_qkv_extras(m, f, l, L, err));
    CLKV_TRY(find_matrix(f, tname(n, 96, l, "attn_output", "weight"), (uint64_t)m->q_rows,
                         (uint64_t)m->info.n_embd, &o.t, err));
    o.first = 0, o.n = (uint64_t)m->info.n_embd, o.rope = 0;
    CLKV_TRY(upload_parts(m, &o, 1, 0, &L->wo, err));
    CLKV_TRY(load_ffn_norms(m, f, l, L, err));
  }
fail:
  return st;
}

/* RoPE frequencies base^(-2i/d), computed in double once. */
static clkv_status upload_freq(clkv_model *m, double base, cl_mem *out, clkv_error *err) {
  const int half = m->info.head_dim / 2;
  float *freq = malloc(sizeof(float) * (size_t)half);
  if (!freq) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  for (int i = 0; i < half; i++) freq[i] = (float)pow(base, -2.0 * i / (double)m->info.head_dim);
  clkv_status st = upload(m, freq, sizeof(float) * (size_t)half, out, "rope", err);
  free(freq);
  return st;
}

static clkv_status load_weights(clkv_model *m, const clkv__gguf_file *f, clkv_error *err) {
  const clkv_model_info *I = &m->info;
  clkv_status st = CLKV_OK;
  const clkv__gguf_tensor *te, *to;
  CLKV_TRY(find_matrix(f, "token_embd.weight", (uint64_t)I->n_embd, (uint64_t)I->n_vocab, &te, err));
  const mat_part pe = {te, 0, (uint64_t)I->n_vocab, 0};
  CLKV_TRY(upload_parts(m, &pe, 1, 0, &m->tok_embd, err));
  if (clkv__gguf_find_tensor(f, "output.weight")) {
    CLKV_TRY(find_matrix(f, "output.weight", (uint64_t)I->n_embd, (uint64_t)I->n_vocab, &to, err));
    const mat_part po = {to, 0, (uint64_t)I->n_vocab, 0};
    CLKV_TRY(upload_parts(m, &po, 1, 0, &m->output, err));
  } else {
    m->output = m->tok_embd;
    m->tied = 1;
  }
  CLKV_TRY(upload_vector(m, f, "output_norm.weight", (uint64_t)I->n_embd, &m->out_norm, err));
  CLKV_TRY(upload_freq(m, (double)I->rope_base, &m->inv_freq, err));
  if (m->arch->rope_base_local > 0 && I->sliding_window > 0)
    CLKV_TRY(upload_freq(m, (double)m->arch->rope_base_local, &m->inv_freq_local, err));
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
  m->arch = clkv__arch_find(m->info.architecture); /* found: the hyperparameters checked it */
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
  for (int w = 0; w < 2; w++)
    for (int p = 0; p < 2; p++)
      if (m->k_attn[w][p]) clReleaseKernel(m->k_attn[w][p]);
  if (m->k_qkv_finish) clReleaseKernel(m->k_qkv_finish);
  if (m->k_norm_add) clReleaseKernel(m->k_norm_add);
  if (m->layers) {
    for (int l = 0; l < m->info.n_layers; l++) {
      clkv__layer *L = &m->layers[l];
      cl_mem *v[] = {&L->attn_norm, &L->ffn_norm, &L->post_attn_norm, &L->post_ffn_norm,
                     &L->q_norm, &L->k_norm, &L->bqkv, &L->wq.buf, &L->wk.buf, &L->wv.buf};
      for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) release_mem(v[i]);
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
  release_mem(&m->inv_freq_local);
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

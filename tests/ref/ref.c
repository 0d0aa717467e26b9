/* ref.c — the plain-C reference (the oracle): single F32 ops and a llama2.c-style forward
 * pass over a GGUF llama model dequantized to F32. Clarity over speed; accumulations in
 * double (matvec dot products, rmsnorm sum of squares, softmax sums). */
#include "ref.h"

#include "clkv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- single ops ---- */

void ref_matvec(const float *W, const float *x, float *y, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *w = W + (size_t)r * (size_t)cols;
    double acc = 0.0;
    for (int c = 0; c < cols; c++) acc += (double)w[c] * (double)x[c];
    y[r] = (float)acc;
  }
}

/* out = x / sqrt(mean(x^2) + eps) * w; the sum of squares in double, the scale in float
 * (as ggml's rms_norm followed by a multiply by the weight). out may alias x. */
void ref_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
  float scale = 1.0f / sqrtf((float)(ss / n) + eps);
  for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* llama.cpp NORM mode (ggml rope mode 0): theta_i = pos * base^(-2i/head_dim) rotates the
 * adjacent pair (x[2i], x[2i+1]). */
void ref_rope(float *x, int head_dim, int pos, float base) {
  for (int i = 0; i < head_dim / 2; i++) {
    double theta = (double)pos * pow((double)base, -2.0 * i / head_dim);
    float c = (float)cos(theta), s = (float)sin(theta);
    float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

void ref_rope_neox(float *x, int head_dim, int pos, float base) {
  const int h = head_dim / 2;
  for (int i = 0; i < h; i++) {
    double theta = (double)pos * pow((double)base, -2.0 * i / head_dim);
    float c = (float)cos(theta), s = (float)sin(theta);
    float x0 = x[i], x1 = x[i + h];
    x[i] = x0 * c - x1 * s;
    x[i + h] = x0 * s + x1 * c;
  }
}

void ref_geglu(float *out, const float *gate, const float *up, int n) {
  for (int i = 0; i < n; i++) {
    double g = gate[i];
    out[i] = (float)(0.5 * g * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (g + 0.044715 * g * g * g))) * up[i]);
  }
}

void ref_softmax(float *x, int n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int i = 1; i < n; i++)
    if (x[i] > mx) mx = x[i];
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sum);
}

void ref_swiglu(float *out, const float *gate, const float *up, int n) {
  for (int i = 0; i < n; i++) {
    float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

void ref_attention_head(float *out, const float *q, const float *k, const float *v, int n_ctx,
                        int head_dim, int k_stride, int v_stride) {
  float *score = n_ctx > 0 ? malloc((size_t)n_ctx * sizeof *score) : NULL;
  if (!score) { /* nothing to attend to (or no memory): a zero output */
    memset(out, 0, (size_t)head_dim * sizeof *out);
    return;
  }
  const double scale = 1.0 / sqrt((double)head_dim);
  for (int t = 0; t < n_ctx; t++) {
    const float *kt = k + (size_t)t * (size_t)k_stride;
    double dot = 0.0;
    for (int d = 0; d < head_dim; d++) dot += (double)q[d] * (double)kt[d];
    score[t] = (float)(dot * scale);
  }
  ref_softmax(score, n_ctx);
  for (int d = 0; d < head_dim; d++) {
    double acc = 0.0;
    for (int t = 0; t < n_ctx; t++) acc += (double)score[t] * (double)v[(size_t)t * (size_t)v_stride + d];
    out[d] = (float)acc;
  }
  free(score);
}

float ref_round_f16(float x) { return clkv__fp16_to_fp32(clkv__fp32_to_fp16(x)); }

/* x rounded to a 10-bit mantissa, ties away from zero (half's normal range). */
static float round_half(float x) {
  x = fminf(fmaxf(x, -65504.0f), 65504.0f);
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u = (u + 0x1000u) & 0xffffe000u;
  memcpy(&x, &u, sizeof x);
  return x;
}

void ref_kv_quantize(float *x, int n, int qg, int type) {
  for (int g = 0; g < n; g += qg) {
    const int e = g + qg < n ? g + qg : n;
    float lo = x[g], hi = x[g];
    for (int i = g; i < e; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    /* Q8: q in -127..127, value q*s; Q4: q in 0..15, value q*s + m */
    const float s = type == 1 ? round_half(fmaxf(-lo, hi) / 127.0f) : round_half((hi - lo) / 15.0f);
    const float m = type == 1 ? 0.0f : round_half(lo);
    const float qmin = type == 1 ? -127.0f : 0.0f, qmax = type == 1 ? 127.0f : 15.0f;
    for (int i = g; i < e; i++) {
      float q = s > 0.0f ? rintf((x[i] - m) / s) : 0.0f;
      q = q > qmax ? qmax : q < qmin ? qmin : q;
      x[i] = q * s + m;
    }
  }
}

/* ---- model loading ---- */

/* Dequantizes tensor `name` to a malloc'd F32 [rows][cols] array; rows == 0 means a 1-D
 * tensor of cols elements. NULL with err set when it is missing, misshaped or undecodable. */
static float *load_f32(const clkv__gguf_file *f, const char *name, uint64_t cols, uint64_t rows,
                       clkv_error *err) {
  const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, name);
  if (!t) {
    clkv__err(err, CLKV_ERR_NOT_FOUND,
              "tensor '%s' is missing: this is not a complete llama model; convert it again "
              "with llama.cpp's convert_hf_to_gguf.py", name);
    return NULL;
  }
  int one_d = rows == 0;
  if (one_d) rows = 1;
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1 ||
      (one_d && t->n_dims != 1)) {
    clkv__err(err, CLKV_ERR_FORMAT,
              "tensor '%s' has shape [%llu, %llu, %llu, %llu] but the hyperparameters ask for "
              "[%llu, %llu]: the file's metadata and tensors disagree", name,
              (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
              (unsigned long long)t->ne[2], (unsigned long long)t->ne[3],
              (unsigned long long)cols, (unsigned long long)rows);
    return NULL;
  }
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(t->type);
  uint64_t row_bytes = clkv__ggml_row_bytes(t->type, cols);
  if (!ti || row_bytes == 0 || row_bytes * rows > t->n_bytes) {
    clkv__err(err, CLKV_ERR_UNSUPPORTED,
              "tensor '%s' has type %u (%s) with rows of %llu elements, which the reference "
              "cannot read; use a model quantized to one of %s", name, t->type,
              ti && ti->name ? ti->name : "unknown", (unsigned long long)cols, clkv__wtype_names());
    return NULL;
  }
  float *out = malloc(cols * rows * sizeof *out);
  if (!out) {
    clkv__err(err, CLKV_ERR_NO_MEMORY, "no host memory for %llu x %llu floats of tensor '%s'",
              (unsigned long long)rows, (unsigned long long)cols, name);
    return NULL;
  }
  const unsigned char *src = t->data;
  for (uint64_t r = 0; r < rows; r++) {
    if (clkv__dequantize_row(t->type, src + r * row_bytes, out + r * cols, cols) != CLKV_OK) {
      clkv__err(err, CLKV_ERR_UNSUPPORTED,
                "tensor '%s': cannot dequantize type %s; use a model quantized to one of %s",
                name, ti->name ? ti->name : "unknown", clkv__wtype_names());
      free(out);
      return NULL;
    }
  }
  return out;
}

/* "<arch>.<key>" as an int in [lo, hi]; def when absent (def < 0: required). */
static int get_hparam(const clkv__gguf_file *f, const char *arch, const char *key, int64_t def,
                      int64_t lo, int64_t hi, int *out, clkv_error *err) {
  char full[160];
  snprintf(full, sizeof full, "%s.%s", arch, key);
  int64_t v;
  if (!clkv__gguf_get_i64(f, full, &v)) {
    if (def < 0) {
      clkv__err(err, CLKV_ERR_FORMAT, "metadata key '%s' is missing: the file lacks the "
                "model's hyperparameters; convert it again with llama.cpp", full);
      return 0;
    }
    v = def;
  }
  if (v < lo || v > hi) {
    clkv__err(err, CLKV_ERR_FORMAT, "metadata '%s' = %lld is outside [%lld, %lld]", full,
              (long long)v, (long long)lo, (long long)hi);
    return 0;
  }
  *out = (int)v;
  return 1;
}

/* "<arch>.<key>" as a float, def when absent. */
static float get_fparam(const clkv__gguf_file *f, const char *arch, const char *key, float def) {
  char full[160];
  double d;
  snprintf(full, sizeof full, "%s.%s", arch, key);
  return clkv__gguf_get_f64(f, full, &d) ? (float)d : def;
}

static int read_hparams(ref_model *m, const clkv__gguf_file *f, int n_ctx, clkv_error *err) {
  char arch[64] = "";
  if (!clkv__gguf_get_str(f, "general.architecture", arch, sizeof arch)) {
    clkv__err(err, CLKV_ERR_FORMAT, "metadata 'general.architecture' is missing: not a model file");
    return 0;
  }
  if (!(m->arch = clkv__arch_find(arch))) {
    clkv__err(err, CLKV_ERR_UNSUPPORTED, "architecture '%s' is not supported by the reference; "
              "it runs %s", arch, clkv__arch_names());
    return 0;
  }
  const int64_t big = 1 << 20;
  int ctx_train, key_len = 0, val_len = 0, rope_dims = 0, window = 0;
  if (!get_hparam(f, arch, "block_count", -1, 1, 4096, &m->n_layers, err) ||
      !get_hparam(f, arch, "embedding_length", -1, 1, big, &m->dim, err) ||
      !get_hparam(f, arch, "feed_forward_length", -1, 1, big, &m->n_ff, err) ||
      !get_hparam(f, arch, "attention.head_count", -1, 1, 4096, &m->n_heads, err) ||
      !get_hparam(f, arch, "attention.head_count_kv", m->n_heads, 1, 4096, &m->n_kv_heads, err) ||
      !get_hparam(f, arch, "context_length", 2048, 1, 1 << 24, &ctx_train, err) ||
      !get_hparam(f, arch, "attention.key_length", 0, 0, 4096, &key_len, err) ||
      !get_hparam(f, arch, "attention.value_length", 0, 0, 4096, &val_len, err) ||
      !get_hparam(f, arch, "rope.dimension_count", 0, 0, 4096, &rope_dims, err) ||
      !get_hparam(f, arch, "attention.sliding_window", 0, 0, 1 << 24, &window, err))
    return 0;
  m->head_dim = key_len ? key_len : m->dim / m->n_heads;
  if ((!key_len && m->dim % m->n_heads) || (val_len && val_len != m->head_dim) ||
      m->n_heads % m->n_kv_heads || m->head_dim % 2) {
    clkv__err(err, CLKV_ERR_UNSUPPORTED, "heads do not divide evenly (dim %d, %d heads, %d kv "
              "heads, key length %d, value length %d): not a plain llama layout", m->dim,
              m->n_heads, m->n_kv_heads, key_len, val_len);
    return 0;
  }
  if (rope_dims && rope_dims != m->head_dim) {
    clkv__err(err, CLKV_ERR_UNSUPPORTED, "partial RoPE (%d of %d dims) is not supported by "
              "the reference", rope_dims, m->head_dim);
    return 0;
  }
  m->eps = get_fparam(f, arch, "attention.layer_norm_rms_epsilon", 1e-5f);
  m->rope_base = get_fparam(f, arch, "rope.freq_base", 10000.0f);
  m->rope_base_local = m->arch->rope_base_local > 0 ? m->arch->rope_base_local : m->rope_base;
  m->window = window < ctx_train ? window : 0;
  const clkv__gguf_tensor *emb = clkv__gguf_find_tensor(f, "token_embd.weight");
  if (!emb || emb->n_dims != 2 || emb->ne[1] < 1 || emb->ne[1] > (uint64_t)1 << 24) {
    clkv__err(err, emb ? CLKV_ERR_FORMAT : CLKV_ERR_NOT_FOUND, "tensor 'token_embd.weight' is "
              "%s: convert the model again with llama.cpp", emb ? "not a [dim, n_vocab] matrix" : "missing");
    return 0;
  }
  m->n_vocab = (int)emb->ne[1];
  int vocab_meta = 0;
  if (!get_hparam(f, arch, "vocab_size", 0, 0, 1 << 24, &vocab_meta, err)) return 0;
  if (vocab_meta && vocab_meta != m->n_vocab) {
    clkv__err(err, CLKV_ERR_FORMAT, "%s.vocab_size is %d but token_embd.weight has %d rows",
              arch, vocab_meta, m->n_vocab);
    return 0;
  }
  if (n_ctx < 0) {
    clkv__err(err, CLKV_ERR_INVALID_ARG, "n_ctx %d is negative; pass 0 for the model's own", n_ctx);
    return 0;
  }
  m->n_ctx = n_ctx ? n_ctx : (ctx_train < 2048 ? ctx_train : 2048);
  return 1;
}

static int alloc_state(ref_model *m) {
  size_t kv = (size_t)m->n_layers * (size_t)m->n_ctx * (size_t)(m->n_kv_heads * m->head_dim);
  size_t qd = (size_t)m->n_heads * (size_t)m->head_dim, d = (size_t)m->dim;
  size_t wide = qd > d ? qd : d;
  m->k_cache = calloc(kv, sizeof(float));
  m->v_cache = calloc(kv, sizeof(float));
  m->x = calloc(d, sizeof(float));
  m->xb = calloc(wide, sizeof(float));
  m->xb2 = calloc(wide, sizeof(float));
  m->q = calloc(qd, sizeof(float));
  m->hb = calloc((size_t)m->n_ff, sizeof(float));
  m->hb2 = calloc((size_t)m->n_ff, sizeof(float));
  m->att = calloc((size_t)m->n_ctx, sizeof(float));
  m->logits = calloc((size_t)m->n_vocab, sizeof(float));
  return m->k_cache && m->v_cache && m->x && m->xb && m->xb2 && m->q && m->hb && m->hb2 &&
         m->att && m->logits;
}

/* One tensor of layer l ("blk.<l>.<name>.<kind>"); optional ones may be missing. */
static int load_blk(const clkv__gguf_file *f, int l, const char *name, const char *kind,
                    uint64_t cols, uint64_t rows, float **dst, clkv_error *err) {
  char full[128];
  snprintf(full, sizeof full, "blk.%d.%s.%s", l, name, kind);
  return (*dst = load_f32(f, full, cols, rows, err)) != NULL;
}

/* Layer l's weights as its architecture names and places them (host/model/arch.c): q, k, v
 * apart or fused, gate and up apart or fused (gate rows first), biases, norms. */
static int load_layer(ref_model *m, const clkv__gguf_file *f, int l, clkv_error *err) {
  const clkv__arch *a = m->arch;
  ref_layer *L = &m->layers[l];
  const uint64_t d = (uint64_t)m->dim, qd = (uint64_t)(m->n_heads * m->head_dim);
  const uint64_t kvd = (uint64_t)(m->n_kv_heads * m->head_dim), ff = (uint64_t)m->n_ff;
  const uint64_t hd = (uint64_t)m->head_dim;
  if (!load_blk(f, l, "attn_norm", "weight", d, 0, &L->attn_norm, err)) return 0;
  if (a->fused_qkv) {
    if (!load_blk(f, l, "attn_qkv", "weight", d, qd + 2 * kvd, &L->qkv, err)) return 0;
    L->wq = L->qkv, L->wk = L->qkv + qd * d, L->wv = L->qkv + (qd + kvd) * d;
  } else if (!load_blk(f, l, "attn_q", "weight", d, qd, &L->wq, err) ||
             !load_blk(f, l, "attn_k", "weight", d, kvd, &L->wk, err) ||
             !load_blk(f, l, "attn_v", "weight", d, kvd, &L->wv, err)) {
    return 0;
  }
  if (a->fused_gate_up) {
    if (!load_blk(f, l, "ffn_up", "weight", d, 2 * ff, &L->gate_up, err)) return 0;
    L->w_gate = L->gate_up, L->w_up = L->gate_up + ff * d;
  } else if (!load_blk(f, l, "ffn_gate", "weight", d, ff, &L->w_gate, err) ||
             !load_blk(f, l, "ffn_up", "weight", d, ff, &L->w_up, err)) {
    return 0;
  }
  if (!load_blk(f, l, "attn_output", "weight", qd, d, &L->wo, err) ||
      !load_blk(f, l, "ffn_norm", "weight", d, 0, &L->ffn_norm, err) ||
      !load_blk(f, l, "ffn_down", "weight", ff, d, &L->w_down, err))
    return 0;
  if (a->qkv_bias && (!load_blk(f, l, "attn_q", "bias", qd, 0, &L->bq, err) ||
                      !load_blk(f, l, "attn_k", "bias", kvd, 0, &L->bk, err) ||
                      !load_blk(f, l, "attn_v", "bias", kvd, 0, &L->bv, err)))
    return 0;
  if (a->qk_norm && (!load_blk(f, l, "attn_q_norm", "weight", hd, 0, &L->q_norm, err) ||
                     !load_blk(f, l, "attn_k_norm", "weight", hd, 0, &L->k_norm, err)))
    return 0;
  if (a->post_norms &&
      (!load_blk(f, l, "post_attention_norm", "weight", d, 0, &L->post_attn_norm, err) ||
       !load_blk(f, l, "post_ffw_norm", "weight", d, 0, &L->post_ffn_norm, err)))
    return 0;
  return 1;
}

ref_model *ref_model_load(const clkv__gguf_file *f, int n_ctx, clkv_error *err) {
  if (!f) {
    clkv__err(err, CLKV_ERR_INVALID_ARG, "ref_model_load: no clkv__gguf_file given");
    return NULL;
  }
  ref_model *m = calloc(1, sizeof *m);
  if (!m) {
    clkv__err(err, CLKV_ERR_NO_MEMORY, "no host memory for the reference model");
    return NULL;
  }
  m->kv_f16 = 1;
  if (!read_hparams(m, f, n_ctx, err)) goto fail;
  const uint64_t d = (uint64_t)m->dim;
  m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
  if (!m->layers) {
    clkv__err(err, CLKV_ERR_NO_MEMORY, "no host memory for %d layers", m->n_layers);
    goto fail;
  }
  if (!(m->tok_embd = load_f32(f, "token_embd.weight", d, (uint64_t)m->n_vocab, err)) ||
      !(m->out_norm = load_f32(f, "output_norm.weight", d, 0, err)))
    goto fail;
  if (clkv__gguf_find_tensor(f, "output.weight")) {
    if (!(m->output = load_f32(f, "output.weight", d, (uint64_t)m->n_vocab, err))) goto fail;
  } else {
    m->output = m->tok_embd; /* tied embeddings */
  }
  for (int l = 0; l < m->n_layers; l++)
    if (!load_layer(m, f, l, err)) goto fail;
  if (!alloc_state(m)) {
    clkv__err(err, CLKV_ERR_NO_MEMORY, "no host memory for a KV cache of %d positions; pass "
              "a smaller n_ctx", m->n_ctx);
    goto fail;
  }
  return m;
fail:
  ref_model_free(m);
  return NULL;
}

void ref_model_free(ref_model *m) {
  if (!m) return;
  if (m->layers) {
    for (int l = 0; l < m->n_layers; l++) {
      ref_layer *L = &m->layers[l];
      if (L->qkv) free(L->qkv);
      else free(L->wq), free(L->wk), free(L->wv);
      if (L->gate_up) free(L->gate_up);
      else free(L->w_gate), free(L->w_up);
      free(L->attn_norm); free(L->wo); free(L->ffn_norm); free(L->w_down);
      free(L->bq); free(L->bk); free(L->bv); free(L->q_norm); free(L->k_norm);
      free(L->post_attn_norm); free(L->post_ffn_norm);
    }
    free(m->layers);
  }
  if (m->output != m->tok_embd) free(m->output);
  free(m->tok_embd);
  free(m->out_norm);
  free(m->k_cache); free(m->v_cache);
  free(m->x); free(m->xb); free(m->xb2); free(m->q); free(m->hb); free(m->hb2);
  free(m->att); free(m->logits);
  free(m);
}

/* ---- forward pass ---- */

/* q, k, v of the token at pos into m->q and the layer's cache row: projections, biases,
 * per-head norms, RoPE (adjacent or NeoX pairs, the layer's base), then the cache's rounding. */
static void attn_qkv(ref_model *m, const ref_layer *L, int l, float *k, float *v, int pos) {
  const int dim = m->dim, hd = m->head_dim, qd = m->n_heads * hd, kvd = m->n_kv_heads * hd;
  const clkv__arch *a = m->arch;
  ref_rmsnorm(m->xb, m->x, L->attn_norm, dim, m->eps);
  ref_matvec(L->wq, m->xb, m->q, qd, dim);
  ref_matvec(L->wk, m->xb, k, kvd, dim);
  ref_matvec(L->wv, m->xb, v, kvd, dim);
  if (L->bq)
    for (int i = 0; i < qd; i++) m->q[i] += L->bq[i];
  if (L->bk)
    for (int i = 0; i < kvd; i++) k[i] += L->bk[i], v[i] += L->bv[i];
  const float base = clkv__arch_layer_window(a, m->window, l) ? m->rope_base_local : m->rope_base;
  for (int h = 0; h < m->n_heads + m->n_kv_heads; h++) {
    float *x = h < m->n_heads ? m->q + h * hd : k + (h - m->n_heads) * hd;
    if (L->q_norm) ref_rmsnorm(x, x, h < m->n_heads ? L->q_norm : L->k_norm, hd, m->eps);
    if (a->rope_neox) ref_rope_neox(x, hd, pos, base);
    else ref_rope(x, hd, pos, base);
  }
  if (m->kv_type)
    for (int h = 0; h < m->n_kv_heads; h++) {
      const int qg = hd % 32 == 0 ? 32 : hd;
      ref_kv_quantize(k + h * hd, hd, qg, m->kv_type);
      ref_kv_quantize(v + h * hd, hd, qg, m->kv_type);
    }
  else if (m->kv_f16)
    for (int i = 0; i < kvd; i++) {
      k[i] = ref_round_f16(k[i]);
      v[i] = ref_round_f16(v[i]);
    }
}

/* x += y, or x += RMSNorm(y) * post when the architecture norms the branch's output. */
static void residual(ref_model *m, float *y, const float *post) {
  if (post) ref_rmsnorm(y, y, post, m->dim, m->eps);
  for (int i = 0; i < m->dim; i++) m->x[i] += y[i];
}

const float *ref_forward(ref_model *m, int32_t token, int pos) {
  if (!m || token < 0 || token >= m->n_vocab || pos < 0 || pos >= m->n_ctx) return NULL;
  const int dim = m->dim, hd = m->head_dim, ff = m->n_ff;
  const int qd = m->n_heads * hd, kvd = m->n_kv_heads * hd, group = m->n_heads / m->n_kv_heads;
  float *x = m->x;
  const float escale = m->arch->embd_scale_sqrt ? sqrtf((float)dim) : 1.0f;
  for (int i = 0; i < dim; i++) x[i] = m->tok_embd[(size_t)token * (size_t)dim + i] * escale;
  for (int l = 0; l < m->n_layers; l++) {
    const ref_layer *L = &m->layers[l];
    float *kl = m->k_cache + (size_t)l * (size_t)m->n_ctx * (size_t)kvd; /* (n_ctx, kvd) */
    float *vl = m->v_cache + (size_t)l * (size_t)m->n_ctx * (size_t)kvd;
    attn_qkv(m, L, l, kl + (size_t)pos * (size_t)kvd, vl + (size_t)pos * (size_t)kvd, pos);
    const int window = clkv__arch_layer_window(m->arch, m->window, l);
    for (int h = 0; h < m->n_heads; h++) {
      int kvh = h / group;
      const int first = window > 0 && pos >= window ? pos - window + 1 : 0;
      ref_attention_head(m->xb2 + h * hd, m->q + h * hd, kl + (size_t)first * kvd + kvh * hd,
                         vl + (size_t)first * kvd + kvh * hd, pos + 1 - first, hd, kvd, kvd);
    }
    ref_matvec(L->wo, m->xb2, m->xb, dim, qd);
    residual(m, m->xb, L->post_attn_norm);

    /* feed-forward: x += W_down (act(W_gate xb) * (W_up xb)) */
    ref_rmsnorm(m->xb, x, L->ffn_norm, dim, m->eps);
    ref_matvec(L->w_gate, m->xb, m->hb, ff, dim);
    ref_matvec(L->w_up, m->xb, m->hb2, ff, dim);
    if (m->arch->act == CLKV__ACT_GELU_TANH) ref_geglu(m->hb, m->hb, m->hb2, ff);
    else ref_swiglu(m->hb, m->hb, m->hb2, ff);
    ref_matvec(L->w_down, m->hb, m->xb, dim, ff);
    residual(m, m->xb, L->post_ffn_norm);
  }
  ref_rmsnorm(x, x, m->out_norm, dim, m->eps);
  ref_matvec(m->output, x, m->logits, m->n_vocab, dim);
  const float cap = m->arch->logit_softcap;
  if (cap > 0)
    for (int i = 0; i < m->n_vocab; i++) m->logits[i] = cap * tanhf(m->logits[i] / cap);
  return m->logits;
}

static int32_t argmax(const float *x, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

/* The stop token, when reached, is stored in out and counted. */
int ref_generate_greedy(ref_model *m, const int32_t *prompt, int n_prompt, int n,
                        int32_t stop_id, int32_t *out) {
  if (!m || !prompt || n_prompt < 1 || n_prompt > m->n_ctx) return 0;
  const float *logits = NULL;
  for (int i = 0; i < n_prompt; i++)
    if (!(logits = ref_forward(m, prompt[i], i))) return 0;
  int got = 0;
  for (int pos = n_prompt; got < n;) {
    int32_t t = argmax(logits, m->n_vocab);
    out[got++] = t;
    if ((stop_id >= 0 && t == stop_id) || got == n || pos >= m->n_ctx) break;
    if (!(logits = ref_forward(m, t, pos++))) break;
  }
  return got;
}

/* tiny.c — writes tiny llama GGUF models with seeded random weights (quantized into the
 * requested types) and a gpt2-style byte tokenizer, so tests run a whole model in
 * milliseconds. */
#include "ref.h"

#include "clkv_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ref_tiny_params ref_tiny_default(void) {
  ref_tiny_params p = {0};
  p.n_layers = 2;
  p.dim = 64;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.n_ff = 128;
  p.n_vocab = 320; /* 256 byte tokens, 62 plain tokens, <|bos|>, <|eos|> */
  p.n_ctx = 256;
  p.wtype = GGML_T_Q4_1;
  p.etype = GGML_T_Q8_0;
  p.tied = 1;
  p.seed = 1234;
  p.rope_base = 10000.0f;
  return p;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static float uniform_pm1(uint64_t *s) { /* uniform in [-1, 1) */
  return (float)((double)(splitmix64(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* Adds a [rows][cols] weight (ne = [cols, rows]) of uniform values in [-scale, scale) around
 * center, encoded as type. rows == 0: a 1-D tensor of cols elements. */
static clkv_status add_weight(clkv__gguf_writer *w, const char *name, uint32_t type, uint64_t cols,
                              uint64_t rows, float center, float scale, uint64_t *rng,
                              clkv_error *err) {
  uint32_t n_dims = rows ? 2 : 1;
  if (!rows) rows = 1;
  uint64_t row_bytes = clkv__ggml_row_bytes(type, cols);
  if (row_bytes == 0)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "tiny model: tensor '%s' cannot be stored as "
                     "type %u with rows of %llu elements; pick dims that are multiples of its "
                     "block (32; 256 for the K-quants and IQ4_XS) and a type among %s", name,
                     type, (unsigned long long)cols, clkv__wtype_names());
  float *row = malloc(cols * sizeof *row);
  unsigned char *data = malloc(row_bytes * rows);
  clkv_status st = CLKV_OK;
  if (!row || !data) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "tiny model: no memory for tensor '%s'", name);
    goto done;
  }
  for (uint64_t r = 0; r < rows; r++) {
    for (uint64_t c = 0; c < cols; c++) row[c] = center + scale * uniform_pm1(rng);
    if (clkv__quantize_row(type, row, data + r * row_bytes, cols) != row_bytes) {
      st = clkv__err(err, CLKV_ERR_UNSUPPORTED, "tiny model: cannot encode tensor '%s' as "
                     "type %u; use one of %s", name, type, clkv__wtype_names());
      goto done;
    }
  }
  const uint64_t ne[2] = {cols, rows};
  clkv__gguf_writer_add_tensor(w, name, type, n_dims, ne, data, (size_t)(row_bytes * rows));
done:
  free(row);
  free(data);
  return st;
}

/* UTF-8 of code point cp (< 0x800 here) into out; returns the length. */
static int utf8_put(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2;
}

/* GPT-2's byte→unicode order: the printable bytes 33..126, 161..172, 174..255 map to
 * themselves and come first; the others map to 256, 257, ... in increasing byte order.
 * Token id i is the unicode text of the i-th byte of that order. */
static void gpt2_byte_tokens(char tok[256][4]) {
  int id = 0, extra = 0;
  int printable[256] = {0};
  for (int b = 0; b < 256; b++) printable[b] = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  for (int b = 0; b < 256; b++)
    if (printable[b]) tok[id][utf8_put(tok[id], (unsigned)b)] = 0, id++;
  for (int b = 0; b < 256; b++)
    if (!printable[b]) tok[id][utf8_put(tok[id], 256u + (unsigned)extra++)] = 0, id++;
}

static clkv_status add_tokenizer(clkv__gguf_writer *w, int n_vocab, clkv_error *err) {
  char bytes[256][4];
  gpt2_byte_tokens(bytes);
  char **text = calloc((size_t)n_vocab, sizeof *text);
  int32_t *type = malloc((size_t)n_vocab * sizeof *type);
  clkv_status st = CLKV_OK;
  if (!text || !type) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "tiny model: no memory for the vocabulary");
    goto done;
  }
  for (int i = 0; i < n_vocab; i++) {
    char buf[32];
    if (i < 256) snprintf(buf, sizeof buf, "%s", bytes[i]);
    else if (i == n_vocab - 2) snprintf(buf, sizeof buf, "<|bos|>");
    else if (i == n_vocab - 1) snprintf(buf, sizeof buf, "<|eos|>");
    else snprintf(buf, sizeof buf, "<|tok_%d|>", i);
    type[i] = i >= n_vocab - 2 ? 3 : 1; /* 3 control, 1 normal */
    if (!(text[i] = malloc(strlen(buf) + 1))) {
      st = clkv__err(err, CLKV_ERR_NO_MEMORY, "tiny model: no memory for the vocabulary");
      goto done;
    }
    strcpy(text[i], buf);
  }
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt2");
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)text, (size_t)n_vocab);
  clkv__gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", type, (size_t)n_vocab);
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", NULL, 0);
  clkv__gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n_vocab - 2));
  clkv__gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n_vocab - 1));
  clkv__gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
done:
  if (text)
    for (int i = 0; i < n_vocab; i++) free(text[i]);
  free(text);
  free(type);
  return st;
}

static clkv_status check_params(const ref_tiny_params *p, clkv_error *err) {
  if (!p || p->n_layers < 1 || p->dim < 2 || p->n_heads < 1 || p->n_kv_heads < 1 ||
      p->n_ff < 1 || p->n_ctx < 1 || (!p->head_dim && p->dim % p->n_heads) ||
      p->n_heads % p->n_kv_heads || (p->head_dim ? p->head_dim : p->dim / p->n_heads) % 2)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "tiny model: inconsistent sizes (need dim "
                     "divisible by n_heads into an even head_dim, n_heads divisible by "
                     "n_kv_heads, all sizes positive)");
  if (p->n_vocab < 258)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "tiny model: n_vocab %d is too small; it needs "
                     "256 byte tokens plus <|bos|> and <|eos|> (>= 258)", p->n_vocab);
  if (p->arch && !clkv__arch_find(p->arch))
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "tiny model: unknown architecture '%s' (%s)",
                     p->arch, clkv__arch_names());
  return CLKV_OK;
}

/* The hyperparameters under "<arch>." keys. */
static void add_hparams(clkv__gguf_writer *w, const ref_tiny_params *p, const char *arch, int hd) {
  char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
  clkv__gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)p->n_layers);
  clkv__gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)p->n_ctx);
  clkv__gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)p->dim);
  clkv__gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)p->n_ff);
  clkv__gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)p->n_heads);
  clkv__gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)p->n_kv_heads);
  clkv__gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->rms_eps > 0 ? p->rms_eps : 1e-5f);
  clkv__gguf_writer_set_f32(w, KEY("rope.freq_base"), p->rope_base > 0 ? p->rope_base : 10000.0f);
  if (p->sliding_window > 0)
    clkv__gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)p->sliding_window);
  if (p->head_dim) {
    clkv__gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)hd);
    clkv__gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)hd);
  }
  clkv__gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)hd);
  clkv__gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)p->n_vocab);
#undef KEY
}

/* One layer's tensors, fused or apart, with the biases and norms the architecture has. */
static clkv_status add_layer(clkv__gguf_writer *w, const ref_tiny_params *p, const clkv__arch *a,
                             int l, int hd, uint64_t *rng, clkv_error *err) {
  const uint64_t d = (uint64_t)p->dim, qd = (uint64_t)(p->n_heads * hd);
  const uint64_t kvd = (uint64_t)(p->n_kv_heads * hd), ff = (uint64_t)p->n_ff;
  const float sd = 1.0f / sqrtf((float)p->dim), sf = 1.0f / sqrtf((float)p->n_ff);
  const float sq = 1.0f / sqrtf((float)qd);
  const struct { const char *name, *kind; int on; uint32_t type; uint64_t cols, rows; float center, scale; } t[] = {
      {"attn_norm", "weight", 1, GGML_T_F32, d, 0, 1.0f, 0.1f},
      {"attn_qkv", "weight", a->fused_qkv, p->wtype, d, qd + 2 * kvd, 0, sd},
      {"attn_q", "weight", !a->fused_qkv, p->wtype, d, qd, 0, sd},
      {"attn_k", "weight", !a->fused_qkv, p->wtype, d, kvd, 0, sd},
      {"attn_v", "weight", !a->fused_qkv, p->wtype, d, kvd, 0, sd},
      {"attn_q", "bias", a->qkv_bias, GGML_T_F32, qd, 0, 0, 0.5f},
      {"attn_k", "bias", a->qkv_bias, GGML_T_F32, kvd, 0, 0, 0.5f},
      {"attn_v", "bias", a->qkv_bias, GGML_T_F32, kvd, 0, 0, 0.5f},
      {"attn_q_norm", "weight", a->qk_norm, GGML_T_F32, (uint64_t)hd, 0, 1.0f, 0.3f},
      {"attn_k_norm", "weight", a->qk_norm, GGML_T_F32, (uint64_t)hd, 0, 1.0f, 0.3f},
      {"attn_output", "weight", 1, p->wtype, qd, d, 0, sq},
      {"post_attention_norm", "weight", a->post_norms, GGML_T_F32, d, 0, 1.0f, 0.1f},
      {"ffn_norm", "weight", 1, GGML_T_F32, d, 0, 1.0f, 0.1f},
      {"ffn_gate", "weight", !a->fused_gate_up, p->wtype, d, ff, 0, sd},
      {"ffn_up", "weight", 1, p->wtype, d, a->fused_gate_up ? 2 * ff : ff, 0, sd},
      {"ffn_down", "weight", 1, p->wtype, ff, d, 0, sf},
      {"post_ffw_norm", "weight", a->post_norms, GGML_T_F32, d, 0, 1.0f, 0.1f},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (!t[i].on) continue;
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.%s", l, t[i].name, t[i].kind);
    clkv_status st = add_weight(w, name, t[i].type, t[i].cols, t[i].rows, t[i].center,
                                t[i].scale, rng, err);
    if (st != CLKV_OK) return st;
  }
  return CLKV_OK;
}

clkv_status ref_tiny_write(const ref_tiny_params *p, const char *path, clkv_error *err) {
  clkv_status st = check_params(p, err);
  if (st != CLKV_OK) return st;
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  if (!w) return clkv__err(err, CLKV_ERR_NO_MEMORY, "tiny model: no memory for the writer");
  const char *arch = p->arch ? p->arch : "llama";
  const int hd = p->head_dim ? p->head_dim : p->dim / p->n_heads;
  const uint64_t d = (uint64_t)p->dim;
  clkv__gguf_writer_set_str(w, "general.architecture", arch);
  clkv__gguf_writer_set_str(w, "general.name", "clkv-tiny");
  clkv__gguf_writer_set_u32(w, "general.alignment", 32);
  add_hparams(w, p, arch, hd);
  if ((st = add_tokenizer(w, p->n_vocab, err)) != CLKV_OK) goto done;
  if (p->chat_template) clkv__gguf_writer_set_str(w, "tokenizer.chat_template", p->chat_template);

  uint64_t rng = p->seed;
  const float sd = 1.0f / sqrtf((float)p->dim);
  if ((st = add_weight(w, "token_embd.weight", p->etype, d, (uint64_t)p->n_vocab, 0, 1.0f, &rng, err)) ||
      (st = add_weight(w, "output_norm.weight", GGML_T_F32, d, 0, 1.0f, 0.1f, &rng, err)))
    goto done;
  if (!p->tied &&
      (st = add_weight(w, "output.weight", p->wtype, d, (uint64_t)p->n_vocab, 0, sd, &rng, err)))
    goto done;
  for (int l = 0; l < p->n_layers; l++)
    if ((st = add_layer(w, p, clkv__arch_find(arch), l, hd, &rng, err)) != CLKV_OK) goto done;
  st = clkv__gguf_writer_save(w, path, err);
done:
  clkv__gguf_writer_free(w);
  return st;
}

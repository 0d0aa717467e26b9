/* model_meta.c — reads and validates a model's hyperparameters from GGUF metadata (the
 * architecture from host/model/arch.c's table), and `clkv_model_inspect` (a file summary
 * that needs no device). */
#include "text/chat.h"
#include "clkv_internal.h"
#include "format/gguf.h"
#include "model/arch.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int get_int(const clkv__gguf_file *f, const char *arch, const char *suffix, int64_t *v) {
  char key[160];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  return clkv__gguf_get_i64(f, key, v);
}

static int get_float(const clkv__gguf_file *f, const char *arch, const char *suffix, double *v) {
  char key[160];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  return clkv__gguf_get_f64(f, key, v);
}

/* general.architecture: present and one of the table's (host/model/arch.c). */
static clkv_status read_architecture(const clkv__gguf_file *f, clkv_model_info *info,
                                     clkv_error *err) {
  if (!clkv__gguf_get_str(f, "general.architecture", info->architecture, sizeof info->architecture))
    return clkv__err(err, CLKV_ERR_FORMAT,
                     "the file has no general.architecture; it is not a GGUF model file");
  clkv__gguf_get_str(f, "general.name", info->name, sizeof info->name);
  if (!clkv__arch_find(info->architecture))
    return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                     "architecture '%s' is not supported; clkv runs %s", info->architecture,
                     clkv__arch_names());
  return CLKV_OK;
}

/* The head size: attention.key_length when given (Gemma 3, Qwen 3 have heads wider than
 * embedding/heads), checked against the query weight's rows; else embedding/heads. */
static clkv_status read_head_dim(const clkv__gguf_file *f, const char *a, clkv_model_info *info,
                                 clkv_error *err) {
  int64_t v;
  info->head_dim = info->n_embd / info->n_heads;
  if (!get_int(f, a, "attention.key_length", &v) || v == info->head_dim) {
    if (info->n_embd % info->n_heads)
      return clkv__err(err, CLKV_ERR_FORMAT, "embedding length %d is not a multiple of %d heads",
                       info->n_embd, info->n_heads);
    return CLKV_OK;
  }
  const clkv__gguf_tensor *q = clkv__gguf_find_tensor(f, "blk.0.attn_q.weight");
  int64_t vl;
  if (v <= 0 || v > 4096 || !q || q->ne[1] != (uint64_t)(v * info->n_heads) ||
      (get_int(f, a, "attention.value_length", &vl) && vl != v))
    return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                     "key length %lld differs from embedding/heads (%d) and from the query "
                     "weight's rows per head: not supported", (long long)v, info->head_dim);
  info->head_dim = (int)v;
  return CLKV_OK;
}

/* Layers, widths and heads: required ones present, all in range, heads dividing evenly,
 * keys and RoPE covering whole heads. */
static clkv_status read_shape(const clkv__gguf_file *f, const char *a, clkv_model_info *info,
                              clkv_error *err) {
  int64_t v;
  struct { const char *key; int *dst; int required; } ints[] = {
      {"block_count", &info->n_layers, 1},          {"embedding_length", &info->n_embd, 1},
      {"attention.head_count", &info->n_heads, 1},  {"feed_forward_length", &info->n_ff, 1},
      {"context_length", &info->n_ctx_train, 0},    {"attention.head_count_kv", &info->n_kv_heads, 0},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (!get_int(f, a, ints[i].key, &v)) {
      if (ints[i].required)
        return clkv__err(err, CLKV_ERR_FORMAT, "metadata %s.%s is missing", a, ints[i].key);
      continue;
    }
    if (v <= 0 || v > (1 << 24))
      return clkv__err(err, CLKV_ERR_FORMAT, "metadata %s.%s = %lld is out of range", a,
                       ints[i].key, (long long)v);
    *ints[i].dst = (int)v;
  }
  if (!info->n_kv_heads) info->n_kv_heads = info->n_heads;
  if (!info->n_ctx_train) info->n_ctx_train = 2048;
  clkv_status st = read_head_dim(f, a, info, err);
  if (st) return st;
  if (get_int(f, a, "rope.dimension_count", &v) && v != info->head_dim)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                     "partial RoPE (%lld of %d dims) is not supported", (long long)v,
                     info->head_dim);
  if (info->n_heads % info->n_kv_heads)
    return clkv__err(err, CLKV_ERR_FORMAT, "%d heads are not a multiple of %d KV heads",
                     info->n_heads, info->n_kv_heads);
  return CLKV_OK;
}

/* The real a.key into *out (def when absent): CLKV_OK, or CLKV_ERR_FORMAT when it is not a
 * finite number in (lo, hi]. */
static clkv_status get_real(const clkv__gguf_file *f, const char *a, const char *key, double def,
                            double lo, double hi, double *out, clkv_error *err) {
  double d;
  *out = get_float(f, a, key, &d) ? d : def;
  if (isfinite(*out) && *out > lo && *out <= hi) return CLKV_OK;
  return clkv__err(err, CLKV_ERR_FORMAT, "metadata %s.%s = %g is out of range (more than %g, at "
                   "most %g): the file is damaged", a, key, *out, lo, hi);
}

/* Norm epsilon, RoPE base (no scaling), sliding window, and a head size the kernels take. */
static clkv_status read_attention(const clkv__gguf_file *f, const char *a, clkv_model_info *info,
                                  clkv_error *err) {
  double d, eps, base;
  int64_t v;
  clkv_status st;
  if ((st = get_real(f, a, "attention.layer_norm_rms_epsilon", 1e-5, 0, 0.1, &eps, err)) ||
      (st = get_real(f, a, "rope.freq_base", 10000, 1, 1e12, &base, err)))
    return st;
  info->rms_eps = (float)eps;
  info->rope_base = (float)base;
  if (get_float(f, a, "rope.scaling.factor", &d) && !isfinite(d))
    return clkv__err(err, CLKV_ERR_FORMAT, "metadata %s.rope.scaling.factor = %g is not a "
                     "number: the file is damaged", a, d);
  if (get_float(f, a, "rope.scaling.factor", &d) && d != 1.0 && d != 0.0) {
    char type[32] = "";
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    clkv__gguf_get_str(f, key, type, sizeof type);
    if (strcmp(type, "none"))
      return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                       "RoPE scaling '%s' (factor %g) is not supported yet", type, d);
  }
  if (get_int(f, a, "attention.sliding_window", &v) && v > 0 && v < info->n_ctx_train)
    info->sliding_window = (int)v; /* each position attends to the last v positions */
  if (info->head_dim % 4 || info->head_dim > 256)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED, "head size %d is not supported (multiple of 4, "
                     "at most 256)", info->head_dim);
  return CLKV_OK;
}

/* Tokenizer kind, chat template, special tokens and the vocabulary size, which the token
 * embedding's shape must agree with. */
static clkv_status read_vocab(const clkv__gguf_file *f, const char *a, clkv_model_info *info,
                              clkv_error *err) {
  int64_t v;
  clkv__gguf_get_str(f, "tokenizer.ggml.model", info->tokenizer, sizeof info->tokenizer);
  clkv__gguf_str tmpl;
  info->has_chat_template = clkv__gguf_get_strv(f, "tokenizer.chat_template", &tmpl) && tmpl.len > 0;
  info->bos_id = info->eos_id = -1;
  if (clkv__gguf_get_i64(f, "tokenizer.ggml.bos_token_id", &v)) info->bos_id = (int)v;
  if (clkv__gguf_get_i64(f, "tokenizer.ggml.eos_token_id", &v)) info->eos_id = (int)v;
  const clkv__gguf_value *toks = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  if (toks) info->n_vocab = (int)toks->v.arr.n;
  else if (get_int(f, a, "vocab_size", &v)) info->n_vocab = (int)v;
  const clkv__gguf_tensor *te = clkv__gguf_find_tensor(f, "token_embd.weight");
  if (!te)
    return clkv__err(err, CLKV_ERR_FORMAT, "tensor token_embd.weight is missing");
  if (!info->n_vocab) info->n_vocab = (int)te->ne[1];
  if (te->ne[0] != (uint64_t)info->n_embd || te->ne[1] != (uint64_t)info->n_vocab)
    return clkv__err(err, CLKV_ERR_FORMAT,
                     "token_embd.weight is %llux%llu, expected %dx%d (embedding x vocabulary)",
                     (unsigned long long)te->ne[0], (unsigned long long)te->ne[1], info->n_embd,
                     info->n_vocab);
  return CLKV_OK;
}

clkv_status clkv__model_hparams(const clkv__gguf_file *f, clkv_model_info *info, clkv_error *err) {
  memset(info, 0, sizeof *info);
  clkv_status st;
  if ((st = read_architecture(f, info, err))) return st;
  const char *a = info->architecture;
  if ((st = read_shape(f, a, info, err)) || (st = read_attention(f, a, info, err)) ||
      (st = read_vocab(f, a, info, err)))
    return st;
  return CLKV_OK;
}

/* Checks that every tensor type is one the kernels compute; names the first that is not. */
static void check_runnable(const clkv__gguf_file *f, clkv_file_info *out) {
  out->runnable = 1;
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    const clkv__gguf_tensor *t = &f->tensors[i];
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(t->type);
    if (clkv__wtype_slot(t->type) < 0) {
      out->runnable = 0;
      snprintf(out->why_not, sizeof out->why_not,
               "tensor %s has type %s, which clkv cannot compute yet (supported: %s)", t->name,
               ti && ti->name ? ti->name : "?", clkv__wtype_names());
      return;
    }
  }
}

clkv_status clkv_model_inspect(const char *path, clkv_file_info *out, clkv_error *err) {
  if (!path || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "path and out are required");
  memset(out, 0, sizeof *out);
  clkv__gguf_file *f = NULL;
  clkv_status st = clkv__gguf_open(path, &f, err);
  if (st) return st;
  out->gguf_version = f->version;
  out->n_kv = f->n_kv;
  out->n_tensors = f->n_tensors;
  out->file_bytes = f->size;
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    const clkv__gguf_tensor *t = &f->tensors[i];
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(t->type);
    const char *name = ti && ti->name ? ti->name : "?";
    out->tensor_bytes += t->n_bytes;
    int j = 0;
    while (j < out->n_types && strcmp(out->by_type[j].type, name)) j++;
    if (j == out->n_types) {
      if (j == (int)(sizeof out->by_type / sizeof out->by_type[0])) continue;
      snprintf(out->by_type[j].type, sizeof out->by_type[j].type, "%s", name);
      out->n_types++;
    }
    out->by_type[j].count++;
    out->by_type[j].bytes += t->n_bytes;
  }
  clkv__gguf_str tmpl = {.len = 0, .data = NULL};
  snprintf(out->chat_template, sizeof out->chat_template, "none");
  if (clkv__gguf_get_strv(f, "tokenizer.chat_template", &tmpl) && tmpl.len) {
    char *s = malloc(tmpl.len + 1);
    if (s) {
      memcpy(s, tmpl.data, tmpl.len);
      s[tmpl.len] = 0;
      snprintf(out->chat_template, sizeof out->chat_template, "%s",
               clkv__chat_kind_name(clkv__chat_detect(s)));
      free(s);
    }
  }
  clkv_error herr;
  st = clkv__model_hparams(f, &out->model, &herr);
  if (st) {
    out->runnable = 0;
    snprintf(out->why_not, sizeof out->why_not, "%.250s", herr.message);
    st = CLKV_OK; /* the file itself is valid: report what we know */
  } else {
    check_runnable(f, out);
  }
  clkv__gguf_close(f);
  return st;
}

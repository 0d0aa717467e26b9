/* tokenizer.c — the tokenizer object: built from the GGUF's tokenizer.ggml.* metadata
 * (vocabulary hash, merge table, decoded pieces, special tokens), the encode entry point
 * (special-token matching, then BPE or SentencePiece), pieces, and the UTF-8 stream. */
#include "text/tokenizer_int.h"

#include "clkv_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

void clkv__ids_push(clkv__ids *l, int32_t id) {
  if (l->oom) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    int32_t *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->oom = 1;
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = id;
}

static uint32_t hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

int32_t clkv__tok_find(const clkv__tokenizer *t, const char *s, size_t len) {
  uint32_t mask = t->hash_cap - 1;
  for (uint32_t h = hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
    int32_t id = t->hash[h];
    if (id < 0) return -1;
    if (t->tok_len[id] == len && !memcmp(t->tok_blob + t->tok_off[id], s, len)) return id;
  }
}

static uint32_t pow2_at_least(uint64_t n) {
  uint32_t c = 16;
  while (c < n) c <<= 1;
  return c;
}

static uint64_t mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

static const clkv__merge *merge_find(const clkv__tokenizer *t, uint64_t key) {
  uint32_t mask = t->merge_cap - 1;
  for (uint32_t h = (uint32_t)mix64(key) & mask;; h = (h + 1) & mask) {
    if (t->merges[h].key == key) return &t->merges[h];
    if (t->merges[h].key == UINT64_MAX) return NULL;
  }
}

/* ---- loading ---- */

/* Element i of a scalar GGUF array as an integer / a float. */
static int64_t arr_int(const clkv__gguf_value *a, uint64_t i) {
  const unsigned char *p = a->v.arr.data;
  switch (a->v.arr.type) {
  case GGUF_V_UINT8: return p[i];
  case GGUF_V_INT8: return (int8_t)p[i];
  case GGUF_V_UINT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
  case GGUF_V_INT16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
  case GGUF_V_UINT32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
  case GGUF_V_INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
  case GGUF_V_UINT64: case GGUF_V_INT64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
  default: return 0;
  }
}

static float arr_float(const clkv__gguf_value *a, uint64_t i) {
  const unsigned char *p = a->v.arr.data;
  if (a->v.arr.type == GGUF_V_FLOAT32) { float v; memcpy(&v, p + 4 * i, 4); return v; }
  if (a->v.arr.type == GGUF_V_FLOAT64) { double v; memcpy(&v, p + 8 * i, 8); return (float)v; }
  return 0.0f;
}

static int is_int_type(clkv__gguf_vtype t) {
  return t <= GGUF_V_INT32 || t == GGUF_V_UINT64 || t == GGUF_V_INT64;
}

static int32_t meta_id(const clkv__gguf_file *f, const char *key, int32_t dflt, int n_vocab) {
  int64_t v;
  if (!clkv__gguf_get_i64(f, key, &v)) v = dflt;
  return v >= 0 && v < n_vocab ? (int32_t)v : -1;
}

static void hash_insert(clkv__tokenizer *t, int32_t id) {
  uint32_t mask = t->hash_cap - 1;
  const char *s = t->tok_blob + t->tok_off[id];
  for (uint32_t h = hash_bytes(s, t->tok_len[id]) & mask;; h = (h + 1) & mask) {
    int32_t o = t->hash[h];
    if (o < 0 || (t->tok_len[o] == t->tok_len[id] && !memcmp(t->tok_blob + t->tok_off[o], s, t->tok_len[id]))) {
      t->hash[h] = id; /* a duplicate text keeps the last id, as a dict would */
      return;
    }
  }
}

/* Decoded bytes of token id into out (room for 4 * len + 1); returns the length. */
static size_t decode_token(const clkv__tokenizer *t, int32_t id, char *out) {
  const char *s = t->tok_blob + t->tok_off[id];
  size_t len = t->tok_len[id], o = 0;
  int ty = t->type[id];
  if (ty == TT_UNUSED) return 0;
  if (ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER) {
    memcpy(out, s, len);
    return len;
  }
  if (t->kind == CLKV_TOK_SPM) {
    unsigned v;
    char tail;
    if (ty == TT_BYTE && len == 6 && sscanf(s, "<0x%2X>%c", &v, &tail) == 1) {
      out[0] = (char)v;
      return 1;
    }
    for (size_t i = 0; i < len;) {
      if (i + 3 <= len && !memcmp(s + i, "\xe2\x96\x81", 3)) {
        out[o++] = ' ';
        i += 3;
      } else {
        out[o++] = s[i++];
      }
    }
    return o;
  }
  for (size_t i = 0, n; i < len; i += n) { /* GPT-2: code points back to bytes */
    uint32_t cp = clkv__utf8_next(s + i, len - i, &n);
    int b = clkv__cp_to_byte(cp);
    if (b >= 0) out[o++] = (char)b;
    else o += (memcpy(out + o, s + i, n), n);
  }
  return o;
}

static int is_eog_text(const char *s) {
  static const char *const names[] = {"<|im_end|>", "<|eot_id|>", "<|end|>", "</s>",
                                      "<|endoftext|>", "<|eom_id|>", "<end_of_turn>",
                                      "<|end_of_text|>"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(s, names[i])) return 1;
  return 0;
}

static clkv_status pretok_from_name(clkv__tokenizer *t, const char *pre, clkv_error *err) {
  static const struct { const char *name; clkv__pretok p; } table[] = {
      {"", PRETOK_GPT2},           {"default", PRETOK_GPT2},    {"gpt2", PRETOK_GPT2},
      {"gpt-2", PRETOK_GPT2},      {"mpt", PRETOK_GPT2},        {"olmo", PRETOK_GPT2},
      {"jais", PRETOK_GPT2},       {"smollm", PRETOK_DIGITS_GPT2},
      {"starcoder", PRETOK_DIGITS_GPT2}, {"refact", PRETOK_DIGITS_GPT2},
      {"command-r", PRETOK_DIGITS_GPT2}, {"codeshell", PRETOK_DIGITS_GPT2},
      {"exaone", PRETOK_DIGITS_GPT2},    {"minerva-7b", PRETOK_DIGITS_GPT2},
      {"llama-bpe", PRETOK_LLAMA3}, {"llama3", PRETOK_LLAMA3},  {"llama-v3", PRETOK_LLAMA3},
      {"dbrx", PRETOK_LLAMA3},     {"smaug-bpe", PRETOK_LLAMA3}, {"qwen2", PRETOK_QWEN2},
      {"stablelm2", PRETOK_QWEN2}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (!strcmp(pre, table[i].name)) {
      t->pretok = table[i].p;
      t->ignore_merges = table[i].p == PRETOK_LLAMA3;
      return CLKV_OK;
    }
  }
  return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                   "tokenizer.ggml.pre '%s' is not a pre-tokenizer clkv knows (it knows gpt2, "
                   "smollm, starcoder, llama-bpe, qwen2 and their aliases); use a model "
                   "converted with one of these",
                   pre);
}

static clkv_status load_merges(clkv__tokenizer *t, const clkv__gguf_file *f, clkv_error *err) {
  const clkv__gguf_value *m = clkv__gguf_get_arr(f, "tokenizer.ggml.merges");
  if (!m || m->v.arr.n == 0) return CLKV_OK;
  if (m->v.arr.type != GGUF_V_STRING || !m->v.arr.items)
    return clkv__err(err, CLKV_ERR_FORMAT, "tokenizer.ggml.merges is not an array of strings");
  if (m->v.arr.n > INT32_MAX / 2)
    return clkv__err(err, CLKV_ERR_FORMAT, "tokenizer.ggml.merges has too many entries");
  t->merge_cap = pow2_at_least(m->v.arr.n * 2);
  t->merges = malloc(t->merge_cap * sizeof *t->merges);
  char *buf = malloc(1024);
  if (!t->merges || !buf) {
    free(buf);
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "no memory for %u merges", (unsigned)m->v.arr.n);
  }
  for (uint32_t i = 0; i < t->merge_cap; i++) t->merges[i].key = UINT64_MAX;
  for (uint64_t r = 0; r < m->v.arr.n; r++) {
    const clkv__gguf_str *s = &m->v.arr.items[r].v.str;
    const char *sp = s->len > 1 ? memchr(s->data + 1, ' ', s->len - 1) : NULL;
    if (!sp || s->len >= 1024) continue; /* not "left right": skip, as other readers do */
    size_t ll = (size_t)(sp - s->data), rl = s->len - ll - 1;
    int32_t a = clkv__tok_find(t, s->data, ll), b = clkv__tok_find(t, sp + 1, rl);
    memcpy(buf, s->data, ll);
    memcpy(buf + ll, sp + 1, rl);
    int32_t c = clkv__tok_find(t, buf, ll + rl);
    if (a < 0 || b < 0 || c < 0) continue;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t mask = t->merge_cap - 1, h = (uint32_t)mix64(key) & mask;
    while (t->merges[h].key != UINT64_MAX && t->merges[h].key != key) h = (h + 1) & mask;
    if (t->merges[h].key == key) continue; /* the first (lowest) rank wins */
    t->merges[h] = (clkv__merge){key, (int32_t)r, c};
  }
  free(buf);
  return CLKV_OK;
}

static clkv_status load_vocab(clkv__tokenizer *t, const clkv__gguf_file *f, clkv_error *err) {
  const clkv__gguf_value *toks = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  if (!toks || toks->v.arr.type != GGUF_V_STRING || !toks->v.arr.items || toks->v.arr.n == 0)
    return clkv__err(err, CLKV_ERR_FORMAT,
                     "tokenizer.ggml.tokens is missing or not an array of strings; the GGUF "
                     "has no usable vocabulary");
  uint64_t n = toks->v.arr.n, total = 0;
  if (n > INT32_MAX / 4) return clkv__err(err, CLKV_ERR_FORMAT, "vocabulary of %llu tokens is too large", (unsigned long long)n);
  for (uint64_t i = 0; i < n; i++) total += toks->v.arr.items[i].v.str.len + 1;
  if (total > UINT32_MAX / 4)
    return clkv__err(err, CLKV_ERR_FORMAT, "vocabulary texts take %llu bytes, too many", (unsigned long long)total);
  const clkv__gguf_value *types = clkv__gguf_get_arr(f, "tokenizer.ggml.token_type");
  const clkv__gguf_value *scores = clkv__gguf_get_arr(f, "tokenizer.ggml.scores");
  if (types && (types->v.arr.n != n || !is_int_type(types->v.arr.type))) types = NULL;
  if (scores && (scores->v.arr.n != n || (scores->v.arr.type != GGUF_V_FLOAT32 && scores->v.arr.type != GGUF_V_FLOAT64))) scores = NULL;

  t->n_vocab = (int)n;
  t->hash_cap = pow2_at_least(n * 2);
  t->tok_blob = malloc(total);
  t->piece_blob = malloc(total * 4);
  t->tok_off = malloc(n * sizeof *t->tok_off);
  t->tok_len = malloc(n * sizeof *t->tok_len);
  t->piece_off = malloc(n * sizeof *t->piece_off);
  t->piece_len = malloc(n * sizeof *t->piece_len);
  t->type = malloc(n);
  t->eog = calloc(n, 1);
  t->score = malloc(n * sizeof *t->score);
  t->hash = malloc(t->hash_cap * sizeof *t->hash);
  t->special = malloc(n * sizeof *t->special);
  if (!t->tok_blob || !t->piece_blob || !t->tok_off || !t->tok_len || !t->piece_off ||
      !t->piece_len || !t->type || !t->eog || !t->score || !t->hash || !t->special)
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "no memory for a vocabulary of %llu tokens", (unsigned long long)n);
  memset(t->hash, 0xFF, t->hash_cap * sizeof *t->hash);
  uint32_t off = 0;
  for (uint64_t i = 0; i < n; i++) {
    const clkv__gguf_str *s = &toks->v.arr.items[i].v.str;
    memcpy(t->tok_blob + off, s->data, s->len);
    t->tok_blob[off + s->len] = 0;
    t->tok_off[i] = off;
    t->tok_len[i] = (uint32_t)s->len;
    off += (uint32_t)s->len + 1;
    int64_t ty = types ? arr_int(types, i) : TT_NORMAL;
    t->type[i] = (uint8_t)(ty >= TT_NORMAL && ty <= TT_BYTE ? ty : TT_NORMAL);
    t->score[i] = scores ? arr_float(scores, i) : 0.0f;
    hash_insert(t, (int32_t)i);
  }
  return CLKV_OK;
}

clkv_status clkv__tokenizer_load(const clkv__gguf_file *f, clkv__tokenizer **out, clkv_error *err) {
  clkv_status st = CLKV_OK;
  char model[64] = "", pre[64] = "";
  if (!f || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv__tokenizer_load needs a file and an output pointer");
  *out = NULL;
  if (!clkv__gguf_get_str(f, "tokenizer.ggml.model", model, sizeof model))
    return clkv__err(err, CLKV_ERR_FORMAT, "the GGUF has no tokenizer.ggml.model; it holds no tokenizer");
  clkv__tokenizer *t = calloc(1, sizeof *t);
  if (!t) return clkv__err(err, CLKV_ERR_NO_MEMORY, "no memory for the tokenizer");
  if (!strcmp(model, "gpt2")) t->kind = CLKV_TOK_GPT2;
  else if (!strcmp(model, "llama")) t->kind = CLKV_TOK_SPM;
  else {
    st = clkv__err(err, CLKV_ERR_UNSUPPORTED,
                   "tokenizer.ggml.model '%s' is not supported; clkv reads 'gpt2' (byte-level "
                   "BPE) and 'llama' (SentencePiece) tokenizers", model);
    goto fail;
  }
  CLKV_TRY(load_vocab(t, f, err));
  if (t->kind == CLKV_TOK_GPT2) {
    clkv__gguf_get_str(f, "tokenizer.ggml.pre", pre, sizeof pre);
    CLKV_TRY(pretok_from_name(t, pre, err));
    CLKV_TRY(load_merges(t, f, err));
  }
  int spm = t->kind == CLKV_TOK_SPM;
  t->bos = meta_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, t->n_vocab);
  t->eos = meta_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, t->n_vocab);
  t->eot = meta_id(f, "tokenizer.ggml.eot_token_id", -1, t->n_vocab);
  t->unk = meta_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, t->n_vocab);
  if (!clkv__gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos)) t->add_bos = spm;
  if (!clkv__gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix)) t->add_space_prefix = spm;

  uint32_t poff = 0;
  for (int i = 0; i < t->n_vocab; i++) {
    t->piece_off[i] = poff;
    t->piece_len[i] = (uint32_t)decode_token(t, i, t->piece_blob + poff);
    poff += t->piece_len[i];
    t->piece_blob[poff++] = 0;
    int ty = t->type[i];
    if ((ty == TT_CONTROL || ty == TT_USER) && t->tok_len[i] > 0) t->special[t->n_special++] = i;
    t->eog[i] = (ty == TT_CONTROL && is_eog_text(t->tok_blob + t->tok_off[i])) || i == t->eos || i == t->eot;
  }
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    t->byte_id[b] = spm ? clkv__tok_find(t, name, 6) : -1;
  }
  *out = t;
  return CLKV_OK;
fail:
  clkv__tokenizer_free(t);
  return st;
}

void clkv__tokenizer_free(clkv__tokenizer *t) {
  if (!t) return;
  free(t->tok_blob);
  free(t->tok_off);
  free(t->tok_len);
  free(t->piece_blob);
  free(t->piece_off);
  free(t->piece_len);
  free(t->type);
  free(t->eog);
  free(t->score);
  free(t->hash);
  free(t->merges);
  free(t->special);
  free(t);
}

/* ---- accessors ---- */

clkv__tok_kind clkv__tokenizer_kind(const clkv__tokenizer *t) { return t ? t->kind : CLKV_TOK_GPT2; }
int clkv__tokenizer_n_vocab(const clkv__tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t clkv__tokenizer_bos(const clkv__tokenizer *t) { return t ? t->bos : -1; }
int32_t clkv__tokenizer_eos(const clkv__tokenizer *t) { return t ? t->eos : -1; }
int clkv__tokenizer_add_bos(const clkv__tokenizer *t) { return t && t->add_bos && t->bos >= 0; }

int clkv__tokenizer_is_eog(const clkv__tokenizer *t, int32_t id) {
  return t && id >= 0 && id < t->n_vocab && t->eog[id];
}

const char *clkv__tokenizer_piece(const clkv__tokenizer *t, int32_t id, int render_special,
                                 size_t *len) {
  *len = 0;
  if (!t || id < 0 || id >= t->n_vocab) return "";
  int ty = t->type[id];
  if (!render_special && (ty == TT_CONTROL || ty == TT_UNKNOWN)) return "";
  *len = t->piece_len[id];
  return t->piece_blob + t->piece_off[id];
}

const char *clkv__tokenizer_token(const clkv__tokenizer *t, int32_t id) {
  if (!t || id < 0 || id >= t->n_vocab) return NULL;
  return t->tok_blob + t->tok_off[id];
}

/* BPE merge lookup for the GPT-2 flavour: lower rank merges first. */
int clkv__bpe_pair(const clkv__tokenizer *t, const char *text, const clkv__sym *a,
                   const clkv__sym *b, double *prio, int32_t *merged) {
  (void)text;
  if (a->id < 0 || b->id < 0 || !t->merges) return 0;
  const clkv__merge *m = merge_find(t, (uint64_t)(uint32_t)a->id << 32 | (uint32_t)b->id);
  if (!m) return 0;
  *prio = -(double)m->rank;
  *merged = m->result;
  return 1;
}

/* ---- encode ---- */

/* Every stretch of raw text starts the text or follows a special token. */
static int encode_raw(const clkv__tokenizer *t, const char *s, size_t n, clkv__ids *out) {
  if (n == 0) return 0;
  return t->kind == CLKV_TOK_SPM ? clkv__spm_encode(t, s, n, out) : clkv__bpe_encode(t, s, n, out);
}

int clkv__tokenizer_encode(const clkv__tokenizer *t, const char *text, size_t len, int add_bos,
                          int parse_special, int32_t *ids, int cap) {
  if (!t || (!text && len) || (!ids && cap > 0)) return CLKV_ERR_INVALID_ARG;
  clkv__ids out = {0};
  int rc = 0;
  if (add_bos && t->bos >= 0) clkv__ids_push(&out, t->bos);
  size_t seg = 0, i = 0;
  while (parse_special && t->n_special && i < len) {
    int32_t best = -1;
    uint32_t best_len = 0;
    for (int k = 0; k < t->n_special; k++) {
      int32_t id = t->special[k];
      uint32_t l = t->tok_len[id];
      const char *s = t->tok_blob + t->tok_off[id];
      if (l > best_len && l <= len - i && s[0] == text[i] && !memcmp(s, text + i, l)) {
        best = id;
        best_len = l;
      }
    }
    if (best < 0) {
      i++;
      continue;
    }
    if ((rc = encode_raw(t, text + seg, i - seg, &out)) < 0) goto done;
    clkv__ids_push(&out, best);
    i += best_len;
    seg = i;
  }
  if ((rc = encode_raw(t, text + seg, len - seg, &out)) < 0) goto done;
  if (out.oom) rc = CLKV_ERR_NO_MEMORY;
  else if (out.n > INT32_MAX) rc = CLKV_ERR_INVALID_ARG;
  else {
    size_t room = cap > 0 ? (size_t)cap : 0;
    if (out.n && room) memcpy(ids, out.v, (out.n < room ? out.n : room) * sizeof *ids);
    rc = (int)out.n;
  }
done:
  free(out.v);
  return rc;
}

/* ---- streaming UTF-8 ---- */

static size_t put_bytes(char *out, size_t cap, size_t o, const char *b, size_t n) {
  for (size_t i = 0; i < n && o < cap; i++) out[o++] = b[i];
  return o;
}

size_t clkv__utf8_stream_push(clkv__utf8_stream *s, const char *piece, size_t len, char *out,
                             size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)piece[i];
    if (s->n_pending > 0) {
      size_t need = clkv__utf8_len((unsigned char)s->pending[0]);
      if ((c & 0xC0) == 0x80) {
        s->pending[s->n_pending++] = (char)c;
        if ((size_t)s->n_pending == need) {
          o = put_bytes(out, cap, o, s->pending, need);
          s->n_pending = 0;
        }
        continue;
      }
      /* a cut character: pass its bytes through, then treat c afresh */
      o = put_bytes(out, cap, o, s->pending, (size_t)s->n_pending);
      s->n_pending = 0;
    }
    if (clkv__utf8_len(c) > 1) s->pending[s->n_pending++] = (char)c;
    else o = put_bytes(out, cap, o, (const char *)&c, 1);
  }
  return o;
}

size_t clkv__utf8_stream_flush(clkv__utf8_stream *s, char *out, size_t cap) {
  size_t o = put_bytes(out, cap, 0, s->pending, (size_t)s->n_pending);
  s->n_pending = 0;
  return o;
}

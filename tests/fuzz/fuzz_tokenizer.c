/* fuzz_tokenizer.c — libFuzzer harness: a vocabulary and a text from the input, written into
 * a GGUF (the writer), read back and loaded as a tokenizer (GPT-2 BPE or SentencePiece), then
 * encode, piece by piece decode and the streaming UTF-8 decoder. In round-trip mode (every
 * byte has a token, every token is normal) decode(encode(text)) must give the text back.
 *
 * Input: flags byte, then fields split by NUL: the text, then vocabulary entries. An entry's
 * first byte picks its type (1 + c % 6) and score (c - 128); 'M' makes it a GPT-2 merge. */
#include "fuzz.h"
#include "format/gguf.h"
#include "text/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum { F_SPM = 1, F_PRE = 6, F_ROUND = 8, F_BOS = 16, F_SPECIAL = 32, F_SPACE = 64, F_META = 128 };
enum { MAX_ENTRIES = 1024, N_EXTRA = 257 }; /* 256 byte tokens and SentencePiece's "▁" */

typedef struct vocab {
  const char *tok[MAX_ENTRIES + N_EXTRA];
  int32_t type[MAX_ENTRIES + N_EXTRA];
  float score[MAX_ENTRIES + N_EXTRA];
  const char *merge[MAX_ENTRIES];
  int n_tok, n_merge;
  char bytes[256][8]; /* the byte tokens' texts */
} vocab;

/* GPT-2's byte → printable character (as the GGUF's tokens spell the bytes). */
static void gpt2_byte_text(int b, char out[8]) {
  int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  unsigned cp = (unsigned)b;
  if (!printable) {
    unsigned k = 0;
    for (int x = 0; x < b; x++) k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
    cp = 256 + k;
  }
  if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
  else out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

/* Splits the fields after the text into tokens and merges (fields point into buf). */
static void fill_vocab(vocab *v, char *buf, size_t n, int flags) {
  const int round = flags & F_ROUND;
  for (size_t i = 0; i < n && v->n_tok < MAX_ENTRIES;) {
    char *f = buf + i;
    size_t len = strlen(f);
    i += len + 1;
    if (len == 0) continue;
    unsigned char c = (unsigned char)f[0];
    if (c == 'M' && !(flags & F_SPM)) {
      if (v->n_merge < MAX_ENTRIES) v->merge[v->n_merge++] = f + 1;
      continue;
    }
    v->tok[v->n_tok] = f + 1;
    v->type[v->n_tok] = round ? 1 : 1 + c % 6;
    v->score[v->n_tok++] = (float)c - 128.0f;
  }
  if (!round) return;
  for (int b = 0; b < 256; b++) { /* last: a duplicate text keeps the byte token */
    if (flags & F_SPM) snprintf(v->bytes[b], sizeof v->bytes[b], "<0x%02X>", b);
    else gpt2_byte_text(b, v->bytes[b]);
    v->tok[v->n_tok] = v->bytes[b];
    v->type[v->n_tok] = flags & F_SPM ? 6 : 1;
    v->score[v->n_tok++] = -1000.0f;
  }
  if (flags & F_SPM) {
    v->tok[v->n_tok] = "\xe2\x96\x81";
    v->type[v->n_tok] = 1;
    v->score[v->n_tok++] = 0.0f;
  }
}

/* The vocabulary as a GGUF, read back; NULL when there is no token. */
static clkv__gguf_file *write_gguf(const vocab *v, int flags, void **bytes) {
  static const char *const pre[] = {"gpt2", "smollm", "llama-bpe", "qwen2"};
  if (v->n_tok == 0) return NULL;
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", flags & F_SPM ? "llama" : "gpt2");
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.pre", pre[(flags & F_PRE) >> 1]);
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->tok, (size_t)v->n_tok);
  if (flags & (F_META | F_ROUND)) {
    clkv__gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v->type, (size_t)v->n_tok);
    clkv__gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v->score, (size_t)v->n_tok);
  }
  if (v->n_merge) clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", v->merge, (size_t)v->n_merge);
  clkv__gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", (flags & F_SPACE) != 0);
  if (flags & F_META) { /* ids the loader must range-check */
    clkv__gguf_writer_set_i32(w, "tokenizer.ggml.bos_token_id", v->n_tok - 1);
    clkv__gguf_writer_set_i32(w, "tokenizer.ggml.eos_token_id", v->n_tok);
    clkv__gguf_writer_set_i32(w, "tokenizer.ggml.unknown_token_id", 0);
  }
  size_t size = 0;
  *bytes = clkv__gguf_writer_serialize(w, &size);
  clkv__gguf_writer_free(w);
  clkv__gguf_file *f = NULL;
  clkv_error err;
  if (!*bytes || clkv__gguf_open_memory(*bytes, size, &f, &err) != CLKV_OK) abort();
  return f;
}

/* Decodes ids piece by piece and through the streaming decoder; both must agree. Returns
 * the decoded bytes (malloc'd), *n their count. */
static char *decode(const clkv__tokenizer *t, const int32_t *ids, int n, size_t *out_n) {
  size_t cap = 64, o = 0, so = 0;
  for (int i = 0; i < n; i++) {
    size_t len;
    clkv__tokenizer_piece(t, ids[i], 1, &len);
    cap += len;
  }
  char *out = malloc(cap), *streamed = malloc(cap + 8 * (size_t)n + 8);
  clkv__utf8_stream s = {{0}, 0};
  for (int i = 0; i < n; i++) {
    size_t len;
    const char *p = clkv__tokenizer_piece(t, ids[i], 1, &len);
    memcpy(out + o, p, len);
    o += len;
    so += clkv__utf8_stream_push(&s, p, len, streamed + so, len + 8);
    if (!clkv__tokenizer_token(t, ids[i])) abort();
    (void)clkv__tokenizer_is_eog(t, ids[i]);
  }
  so += clkv__utf8_stream_flush(&s, streamed + so, 8);
  if (so != o || memcmp(out, streamed, o)) abort(); /* the stream drops or adds nothing */
  free(streamed);
  *out_n = o;
  return out;
}

static int has_spm_space(const char *s, size_t n) {
  for (size_t i = 0; i + 3 <= n; i++)
    if (!memcmp(s + i, "\xe2\x96\x81", 3)) return 1;
  return 0;
}

/* The text again from its ids, where it must hold. */
static void check_round_trip(const clkv__tokenizer *t, const char *text, size_t len, int flags,
                             const char *got, size_t n) {
  if (flags & F_SPM) {
    if (has_spm_space(text, len)) return; /* "▁" in the text decodes as a space */
    const size_t pre = (flags & F_SPACE) && len ? 1 : 0; /* no text, no space prefix */
    if (n != len + pre || (pre && got[0] != ' ') || memcmp(got + pre, text, len)) abort();
  } else if (n != len || memcmp(got, text, len)) {
    abort();
  }
  (void)t;
}

static void run(const clkv__tokenizer *t, const char *text, size_t len, int flags) {
  const int round = flags & F_ROUND;
  const int bos = !round && (flags & F_BOS), special = (flags & F_SPECIAL) != 0;
  int n = clkv__tokenizer_encode(t, text, len, bos, special, NULL, 0);
  if (n < 0) return;
  int32_t *ids = malloc(sizeof *ids * ((size_t)n + 1));
  if (clkv__tokenizer_encode(t, text, len, bos, special, ids, n) != n) abort();
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= clkv__tokenizer_n_vocab(t)) abort();
  size_t got_n;
  char *got = decode(t, ids, n, &got_n);
  if (round) check_round_trip(t, text, len, flags, got, got_n);
  free(got);
  free(ids);
}

int clkv_fuzz_tokenizer(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 16) return 0;
  const int flags = data[0];
  char *buf = malloc(size); /* the fields, NUL-terminated */
  memcpy(buf, data + 1, size - 1);
  buf[size - 1] = 0;
  const size_t text_len = strlen(buf);
  vocab *v = calloc(1, sizeof *v);
  if (text_len + 1 < size) fill_vocab(v, buf + text_len + 1, size - 1 - (text_len + 1), flags);
  void *bytes = NULL;
  clkv__gguf_file *f = write_gguf(v, flags, &bytes);
  clkv__tokenizer *t = NULL;
  clkv_error err;
  if (f && clkv__tokenizer_load(f, &t, &err) == CLKV_OK) {
    clkv__gguf_close(f);
    f = NULL;
    run(t, buf, text_len, flags);
  }
  clkv__tokenizer_free(t);
  clkv__gguf_close(f);
  free(bytes);
  free(v);
  free(buf);
  return 0;
}

#ifndef CLKV_FUZZ_REPLAY
CLKV_FUZZ_TARGET(clkv_fuzz_tokenizer)
#endif

/* test_tokenizer.c — the tokenizer (host/tokenizer*.c): merge order, special tokens,
 * SentencePiece space prefix / scores / byte fallback on tiny hand-made GGUFs, the UTF-8
 * stream, and the default model's tokenizer against the Hugging Face peer
 * (tests/peer/tokenizer_peer.py), id for id. Runs under ASan+UBSan too. */
#include "text/tokenizer.h"
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tiny tokenizers built in memory ---- */

typedef struct tiny {
  void *buf;
  clkv__tokenizer *tok;
} tiny;

/* Serializes w (and frees it), opens it, loads the tokenizer; returns the load status. */
static clkv_status tiny_load(clkv__gguf_writer *w, tiny *out) {
  size_t size = 0;
  clkv_error err = {0};
  clkv__gguf_file *f = NULL;
  out->tok = NULL;
  out->buf = clkv__gguf_writer_serialize(w, &size);
  clkv__gguf_writer_free(w);
  cr_assert_not_null(out->buf);
  cr_assert_eq(clkv__gguf_open_memory(out->buf, size, &f, &err), CLKV_OK, "%s", err.message);
  clkv_status st = clkv__tokenizer_load(f, &out->tok, &err);
  clkv__gguf_close(f); /* the tokenizer keeps its own copies */
  return st;
}

static void tiny_free(tiny *t) {
  clkv__tokenizer_free(t->tok);
  free(t->buf);
}

static int32_t id_of(const clkv__tokenizer *t, const char *s) {
  for (int i = 0; i < clkv__tokenizer_n_vocab(t); i++)
    if (!strcmp(clkv__tokenizer_token(t, i), s)) return i;
  cr_assert_fail("token %s not in the vocabulary", s);
  return -1;
}

static int enc(const clkv__tokenizer *t, const char *s, int bos, int special, int32_t *ids, int cap) {
  int n = clkv__tokenizer_encode(t, s, strlen(s), bos, special, ids, cap);
  cr_assert_geq(n, 0, "encode(\"%s\") failed with %d", s, n);
  cr_assert_leq(n, cap);
  return n;
}

/* Asserts that ids == the tokens named in want (NULL-terminated). */
static void expect(const clkv__tokenizer *t, const int32_t *ids, int n, const char *const *want) {
  int k = 0;
  while (want[k]) k++;
  cr_assert_eq(n, k, "got %d tokens, expected %d (first: %s)", n, k, n ? clkv__tokenizer_token(t, ids[0]) : "-");
  for (int i = 0; i < n; i++)
    cr_assert_str_eq(clkv__tokenizer_token(t, ids[i]), want[i], "token %d", i);
}

/* GPT-2 vocabulary: a b c ab bc abc Ġ Ġa, the characters of "<|end|>", and the control
 * token <|end|>. merges_bc_first picks which of "a b" / "b c" ranks first. */
static clkv__gguf_writer *gpt2_writer(int merges_bc_first, const char *model, const char *pre) {
  static const char *const toks[] = {"<|end|>", "a", "b", "c", "ab", "bc", "abc", "\xc4\xa0",
                                     "\xc4\xa0" "a", "<", "|", "e", "n", "d", ">"};
  int32_t types[15];
  for (int i = 0; i < 15; i++) types[i] = i == 0 ? 3 : 1;
  const char *m1[] = {"b c", "a b", "a bc", "\xc4\xa0 a"};
  const char *m2[] = {"a b", "b c", "a bc", "\xc4\xa0 a"};
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", model);
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 15);
  clkv__gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 15);
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges_bc_first ? m1 : m2, 4);
  clkv__gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 0);
  return w;
}

Test(tokenizer, bpe_merges_lowest_rank_first) {
  tiny a, b;
  int32_t ids[16];
  cr_assert_eq(tiny_load(gpt2_writer(1, "gpt2", "gpt2"), &a), CLKV_OK);
  cr_assert_eq(tiny_load(gpt2_writer(0, "gpt2", "gpt2"), &b), CLKV_OK);
  cr_assert_eq(clkv__tokenizer_kind(a.tok), CLKV_TOK_GPT2);
  /* "b c" first: a + bc → abc; "a b" first: ab + c, and "ab c" is no merge */
  int n = enc(a.tok, "abc", 0, 0, ids, 16);
  expect(a.tok, ids, n, (const char *const[]){"abc", NULL});
  n = enc(b.tok, "abc", 0, 0, ids, 16);
  expect(b.tok, ids, n, (const char *const[]){"ab", "c", NULL});
  /* the space is byte-mapped to Ġ and belongs to the following word */
  n = enc(a.tok, "abc a", 0, 0, ids, 16);
  expect(a.tok, ids, n, (const char *const[]){"abc", "\xc4\xa0" "a", NULL});
  size_t len;
  cr_assert_str_eq(clkv__tokenizer_piece(a.tok, id_of(a.tok, "\xc4\xa0" "a"), 0, &len), " a");
  cr_assert_eq(len, 2);
  /* no BOS in this vocabulary: add_bos changes nothing */
  cr_assert_eq(clkv__tokenizer_bos(a.tok), -1);
  cr_assert_eq(enc(a.tok, "abc", 1, 0, ids, 16), 1);
  tiny_free(&a);
  tiny_free(&b);
}

/* A pair listed twice in the merges keeps its first (lowest) rank: "b c" first and again
 * last still merges before "a b". */
Test(tokenizer, bpe_duplicate_merge_keeps_first_rank) {
  static const char *const toks[] = {"a", "b", "c", "ab", "bc", "abc"};
  const char *merges[] = {"b c", "a b", "a bc", "b c"};
  int32_t types[6] = {1, 1, 1, 1, 1, 1}, ids[8];
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt2");
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 6);
  clkv__gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 6);
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 4);
  tiny a;
  cr_assert_eq(tiny_load(w, &a), CLKV_OK);
  const int n = enc(a.tok, "abc", 0, 0, ids, 8);
  expect(a.tok, ids, n, (const char *const[]){"abc", NULL});
  tiny_free(&a);
}

Test(tokenizer, special_tokens_only_when_parsed) {
  tiny a;
  int32_t ids[32];
  cr_assert_eq(tiny_load(gpt2_writer(1, "gpt2", "gpt2"), &a), CLKV_OK);
  int n = enc(a.tok, "ab<|end|>c", 0, 1, ids, 32);
  expect(a.tok, ids, n, (const char *const[]){"ab", "<|end|>", "c", NULL});
  n = enc(a.tok, "ab<|end|>c", 0, 0, ids, 32);
  expect(a.tok, ids, n, (const char *const[]){"ab", "<", "|", "e", "n", "d", "|", ">", "c", NULL});
  int32_t end = id_of(a.tok, "<|end|>");
  cr_assert(clkv__tokenizer_is_eog(a.tok, end));
  cr_assert_not(clkv__tokenizer_is_eog(a.tok, id_of(a.tok, "a")));
  size_t len = 99;
  cr_assert_str_eq(clkv__tokenizer_piece(a.tok, end, 0, &len), "");
  cr_assert_eq(len, 0);
  cr_assert_str_eq(clkv__tokenizer_piece(a.tok, end, 1, &len), "<|end|>");
  cr_assert_eq(len, 7);
  tiny_free(&a);
}

Test(tokenizer, bad_ids_and_small_buffers) {
  tiny a;
  cr_assert_eq(tiny_load(gpt2_writer(1, "gpt2", "gpt2"), &a), CLKV_OK);
  size_t len = 5;
  int nv = clkv__tokenizer_n_vocab(a.tok);
  cr_assert_eq(nv, 15);
  cr_assert_str_eq(clkv__tokenizer_piece(a.tok, -1, 1, &len), "");
  cr_assert_eq(len, 0);
  cr_assert_str_eq(clkv__tokenizer_piece(a.tok, nv, 1, &len), "");
  cr_assert_null(clkv__tokenizer_token(a.tok, nv));
  cr_assert_not(clkv__tokenizer_is_eog(a.tok, -3));
  cr_assert_not(clkv__tokenizer_is_eog(a.tok, nv + 7));
  /* cap too small: returns what is needed, writes only cap ids */
  int32_t ids[4] = {-7, -7, -7, -7};
  cr_assert_eq(clkv__tokenizer_encode(a.tok, "ab ab ab", 8, 0, 0, ids, 2), 5);
  cr_assert_neq(ids[1], -7);
  cr_assert_eq(ids[2], -7);
  cr_assert_eq(clkv__tokenizer_encode(a.tok, "ab", 2, 0, 0, NULL, 0), 1);
  cr_assert_eq(clkv__tokenizer_encode(a.tok, "", 0, 0, 1, ids, 4), 0);
  cr_assert_eq(clkv__tokenizer_encode(NULL, "ab", 2, 0, 0, ids, 4), CLKV_ERR_INVALID_ARG);
  clkv__tokenizer_free(NULL);
  tiny_free(&a);
}

Test(tokenizer, load_errors) {
  tiny a;
  cr_assert_eq(tiny_load(gpt2_writer(1, "bert", "gpt2"), &a), CLKV_ERR_UNSUPPORTED);
  cr_assert_null(a.tok);
  tiny_free(&a);
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
  cr_assert_eq(tiny_load(w, &a), CLKV_ERR_FORMAT); /* no tokens */
  tiny_free(&a);
  cr_assert_eq(tiny_load(gpt2_writer(1, "gpt2", "no-such-pre"), &a), CLKV_ERR_UNSUPPORTED);
  tiny_free(&a);
}

/* SentencePiece: <unk> <s> </s>, the 256 byte tokens, ▁ and a few pieces with scores. */
static clkv_status spm_load(tiny *out) {
  enum { N = 3 + 256 + 9 };
  static char bytes[256][8];
  const char *toks[N];
  float scores[N];
  int32_t types[N];
  const char *words[] = {"\xe2\x96\x81", "h", "e", "l", "o", "ll", "\xe2\x96\x81h", "llo",
                         "\xe2\x96\x81he"};
  float wscore[] = {-10, -10, -10, -10, -10, -1, -2, -3, -4};
  toks[0] = "<unk>", toks[1] = "<s>", toks[2] = "</s>";
  types[0] = 2, types[1] = 3, types[2] = 3;
  for (int i = 0; i < 256; i++) {
    snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
    toks[3 + i] = bytes[i], types[3 + i] = 6;
  }
  for (int i = 0; i < 9; i++) toks[259 + i] = words[i], types[259 + i] = 1;
  for (int i = 0; i < N; i++) scores[i] = i >= 259 ? wscore[i - 259] : 0.0f;
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N);
  clkv__gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, N);
  clkv__gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, N);
  return tiny_load(w, out);
}

/* Concatenated pieces of ids (render_special as given); returns the length. */
static size_t detok(const clkv__tokenizer *t, const int32_t *ids, int n, int special, char *out) {
  size_t o = 0, l;
  for (int i = 0; i < n; i++) {
    const char *p = clkv__tokenizer_piece(t, ids[i], special, &l);
    memcpy(out + o, p, l);
    o += l;
  }
  out[o] = 0;
  return o;
}

Test(tokenizer, spm_scores_space_prefix_byte_fallback) {
  tiny a;
  int32_t ids[32];
  char text[128];
  cr_assert_eq(spm_load(&a), CLKV_OK);
  const clkv__tokenizer *t = a.tok;
  cr_assert_eq(clkv__tokenizer_kind(t), CLKV_TOK_SPM);
  cr_assert_eq(clkv__tokenizer_bos(t), 1); /* SentencePiece defaults: BOS 1, EOS 2, add BOS */
  cr_assert_eq(clkv__tokenizer_eos(t), 2);
  cr_assert(clkv__tokenizer_add_bos(t));
  cr_assert(clkv__tokenizer_is_eog(t, 2));
  /* ll (-1) before ▁h (-2), then llo (-3), then ▁he (-4); "▁hello" is no token */
  int n = enc(t, "hello", 1, 0, ids, 32);
  expect(t, ids, n, (const char *const[]){"<s>", "\xe2\x96\x81he", "llo", NULL});
  cr_assert_str_eq((detok(t, ids, n, 0, text), text), " hello");
  /* é is no token: its two bytes; spaces become ▁ */
  n = enc(t, "h\xc3\xa9 o", 0, 0, ids, 32);
  expect(t, ids, n, (const char *const[]){"\xe2\x96\x81h", "<0xC3>", "<0xA9>", "\xe2\x96\x81", "o", NULL});
  cr_assert_eq(detok(t, ids, n, 0, text), 6);
  cr_assert_str_eq(text, " h\xc3\xa9 o");
  /* a special token is matched, and the text after it gets the space prefix again */
  n = enc(t, "<s>hello</s>", 0, 1, ids, 32);
  expect(t, ids, n, (const char *const[]){"<s>", "\xe2\x96\x81he", "llo", "</s>", NULL});
  cr_assert_str_eq((detok(t, ids, n, 1, text), text), "<s> hello</s>");
  /* a byte token decodes to its byte, even NUL */
  size_t l;
  const char *p = clkv__tokenizer_piece(t, 3, 0, &l);
  cr_assert_eq(l, 1);
  cr_assert_eq(p[0], 0);
  tiny_free(&a);
}

/* ---- the UTF-8 stream ---- */

Test(tokenizer, utf8_stream_never_cuts_a_character) {
  const char emoji[] = "\xf0\x9f\x98\x80"; /* 😀 */
  clkv__utf8_stream s = {0};
  char out[32];
  for (int i = 0; i < 3; i++) cr_assert_eq(clkv__utf8_stream_push(&s, emoji + i, 1, out, sizeof out), 0);
  cr_assert_eq(clkv__utf8_stream_push(&s, emoji + 3, 1, out, sizeof out), 4);
  cr_assert_eq(memcmp(out, emoji, 4), 0);
  /* ASCII goes straight through; a character split across pieces comes out whole */
  size_t n = clkv__utf8_stream_push(&s, "a\xc3", 2, out, sizeof out);
  cr_assert_eq(n, 1);
  cr_assert_eq(out[0], 'a');
  n = clkv__utf8_stream_push(&s, "\xa9!", 2, out, sizeof out);
  cr_assert_eq(n, 3);
  cr_assert_eq(memcmp(out, "\xc3\xa9!", 3), 0);
  /* invalid bytes are not held: a stray continuation byte, a cut sequence */
  n = clkv__utf8_stream_push(&s, "\x80" "\xe2x", 3, out, sizeof out);
  cr_assert_eq(n, 3);
  cr_assert_eq(memcmp(out, "\x80\xe2x", 3), 0);
  /* flush gives back an incomplete tail */
  cr_assert_eq(clkv__utf8_stream_push(&s, "\xf0\x9f", 2, out, sizeof out), 0);
  cr_assert_eq(clkv__utf8_stream_flush(&s, out, sizeof out), 2);
  cr_assert_eq(clkv__utf8_stream_flush(&s, out, sizeof out), 0);
}

/* ---- the default model, against the Hugging Face peer ---- */

static const char *model_path(void) {
  const char *p = getenv("CLKV_MODEL");
  if (!p) p = CLKV_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  return access(p, R_OK) == 0 ? p : NULL;
}

static clkv__tokenizer *load_model_tokenizer(const char *path) {
  clkv__gguf_file *f = NULL;
  clkv__tokenizer *t = NULL;
  clkv_error err = {0};
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__tokenizer_load(f, &t, &err), CLKV_OK, "%s", err.message);
  clkv__gguf_close(f);
  return t;
}

Test(tokenizer, default_model_facts) {
  const char *path = model_path();
  if (!path) cr_skip_test("default model not found (run scripts/setup or set CLKV_MODEL)");
  clkv__tokenizer *t = load_model_tokenizer(path);
  cr_assert_eq(clkv__tokenizer_kind(t), CLKV_TOK_GPT2);
  cr_assert_eq(clkv__tokenizer_n_vocab(t), 49152);
  cr_assert_eq(clkv__tokenizer_bos(t), 1);
  cr_assert_eq(clkv__tokenizer_eos(t), 2);
  cr_assert_not(clkv__tokenizer_add_bos(t));
  cr_assert_str_eq(clkv__tokenizer_token(t, 2), "<|im_end|>");
  cr_assert(clkv__tokenizer_is_eog(t, 2));
  cr_assert(clkv__tokenizer_is_eog(t, 0)); /* <|endoftext|> */
  cr_assert_not(clkv__tokenizer_is_eog(t, 1));
  int32_t ids[64];
  cr_assert_eq(enc(t, "<|im_start|>", 0, 1, ids, 64), 1);
  cr_assert_eq(ids[0], 1);
  int n = enc(t, "<|im_start|>", 0, 0, ids, 64);
  cr_assert_gt(n, 1);
  for (int i = 0; i < n; i++) cr_assert_gt(ids[i], 16, "a control token came out of plain text");
  /* digits are split one by one (the smollm pre-tokenizer) */
  cr_assert_eq(enc(t, "2024", 0, 0, ids, 64), 4);
  clkv__tokenizer_free(t);
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static size_t unhex(const char *s, const char *end, char *out) {
  size_t n = 0;
  for (; s + 1 < end; s += 2) out[n++] = (char)(hexval(s[0]) << 4 | hexval(s[1]));
  return n;
}

/* Runs the peer on the GGUF at path over tests/data/tokenizer_texts.json (output in dir)
 * and compares every text id for id, plus decode(encode(text)) == text. A peer that was
 * configured (CLKV_PYTHON) but did not run is a failure: its checks would go missing. */
static void compare_with_peer(const char *py, const char *path, const char *dir) {
  char out_path[256], cmd[4096];
  snprintf(out_path, sizeof out_path, "%s/peer.txt", dir);
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/peer/tokenizer_peer.py' '%s' '%s/tests/data/tokenizer_texts.json' '%s'",
           py, CLKV_SOURCE_DIR, path, CLKV_SOURCE_DIR, out_path);
  const int rc = system(cmd);
  cr_assert_eq(rc, 0, "the peer failed (status %d): %s", rc, cmd);
  clkv__tokenizer *t = load_model_tokenizer(path);
  FILE *f = fopen(out_path, "r");
  cr_assert_not_null(f);
  static char line[1 << 16], text[1 << 15], dec[1 << 15], mine[1 << 15];
  static int32_t want[8192], got[8192];
  int lines = 0;
  while (fgets(line, sizeof line, f)) {
    char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    cr_assert(t1 && t2, "bad peer line %d", lines);
    size_t tl = unhex(line, t1, text), dl = unhex(t2 + 1, t2 + strlen(t2), dec);
    int nw = 0;
    for (char *q = t1 + 1; q < t2;) {
      want[nw++] = (int32_t)strtol(q, &q, 10);
      while (*q == ' ') q++;
    }
    text[tl] = 0;
    int ng = clkv__tokenizer_encode(t, text, tl, 0, 1, got, 8192);
    cr_expect_eq(ng, nw, "%s text %d \"%s\": %d ids, the peer has %d", path, lines, text, ng, nw);
    for (int i = 0; i < ng && i < nw; i++)
      cr_expect_eq(got[i], want[i], "%s text %d \"%s\": id %d is %d, the peer has %d", path, lines,
                   text, i, got[i], want[i]);
    size_t ml = detok(t, got, ng, 1, mine);
    cr_expect(ml == tl && !memcmp(mine, text, tl), "text %d: decode(encode) differs: \"%s\"", lines, mine);
    cr_expect(dl == tl && !memcmp(dec, text, tl), "text %d: the peer's own decode differs", lines);
    lines++;
  }
  fclose(f);
  remove(out_path);
  clkv__tokenizer_free(t);
  cr_assert_geq(lines, 20, "the peer wrote %d lines", lines);
}

Test(tokenizer, matches_hf_peer_on_texts) {
  const char *path = model_path(), *py = getenv("CLKV_PYTHON");
  if (!path) cr_skip_test("default model not found (run scripts/setup or set CLKV_MODEL)");
  if (!py || !*py) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  char dir[] = "/tmp/clkv_tok_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  compare_with_peer(py, path, dir);
  rmdir(dir);
}

/* Writes the default model's vocabulary and merges into a tokenizer-only GGUF that names
 * another pre-tokenizer. */
static void write_with_pre(const char *model, const char *pre, const char *out) {
  clkv__gguf_file *f = NULL;
  clkv_error err = {0};
  cr_assert_eq(clkv__gguf_open(model, &f, &err), CLKV_OK, "%s", err.message);
  const clkv__gguf_value *tok = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  const clkv__gguf_value *mer = clkv__gguf_get_arr(f, "tokenizer.ggml.merges");
  const clkv__gguf_value *typ = clkv__gguf_get_arr(f, "tokenizer.ggml.token_type");
  cr_assert(tok && mer && typ && typ->v.arr.type == GGUF_V_INT32);
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
  const clkv__gguf_value *arrs[2] = {tok, mer};
  const char *keys[2] = {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"};
  for (int a = 0; a < 2; a++) {
    size_t n = arrs[a]->v.arr.n;
    char **s = malloc(n * sizeof *s);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) s[i] = strndup(arrs[a]->v.arr.items[i].v.str.data, arrs[a]->v.arr.items[i].v.str.len);
    clkv__gguf_writer_set_arr_str(w, keys[a], (const char *const *)s, n);
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
  }
  int32_t *types = malloc(typ->v.arr.n * sizeof *types);
  cr_assert_not_null(types);
  memcpy(types, typ->v.arr.data, typ->v.arr.n * sizeof *types);
  clkv__gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, typ->v.arr.n);
  free(types);
  clkv__gguf_close(f);
  cr_assert_eq(clkv__gguf_writer_save(w, out, &err), CLKV_OK, "%s", err.message);
  clkv__gguf_writer_free(w);
}

/* Gemma 3's SentencePiece vocabulary (262,144 pieces, byte fallback, no space prefix), when
 * scripts/setup has fetched it (CLKV_GEMMA overrides the path), against the peer. */
Test(tokenizer, gemma_sentencepiece_matches_hf_peer, .timeout = 600) {
  const char *py = getenv("CLKV_PYTHON"), *env = getenv("CLKV_GEMMA");
  char path[512];
  snprintf(path, sizeof path, "%s", env && *env ? env : CLKV_SOURCE_DIR "/models/gemma-3-270m-q4_k_m.gguf");
  if (access(path, R_OK)) cr_skip_test("%s not found (run scripts/setup)", path);
  if (!py || !*py) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  char dir[] = "/tmp/clkv_tok_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  compare_with_peer(py, path, dir); /* a peer that fails to run fails the test */
  rmdir(dir);
}

/* The Llama 3 and plain GPT-2 pre-tokenizers, on the same vocabulary, against the peer. */
Test(tokenizer, other_pretokenizers_match_hf_peer) {
  const char *path = model_path(), *py = getenv("CLKV_PYTHON");
  if (!path) cr_skip_test("default model not found (run scripts/setup or set CLKV_MODEL)");
  if (!py || !*py) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  char dir[] = "/tmp/clkv_tok_XXXXXX", file[128];
  cr_assert_not_null(mkdtemp(dir));
  const char *pres[] = {"llama-bpe", "gpt2"};
  for (int i = 0; i < 2; i++) {
    snprintf(file, sizeof file, "%s/%s.gguf", dir, pres[i]);
    write_with_pre(path, pres[i], file);
    compare_with_peer(py, file, dir);
    remove(file);
  }
  rmdir(dir);
}

/* The EOS id ends generation whatever its text (the tiny models' "<|eos|>" is no known
 * end-of-turn text); BOS and plain tokens do not. */
Test(tokenizer, eos_id_ends_generation_whatever_its_text) {
  char dir[] = "/tmp/clkv_tok_XXXXXX", path[64];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/tiny.gguf", dir);
  const ref_tiny_params tp = ref_tiny_default();
  clkv_error err;
  cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
  clkv__tokenizer *t = load_model_tokenizer(path);
  remove(path);
  rmdir(dir);
  cr_assert_str_eq(clkv__tokenizer_token(t, tp.n_vocab - 1), "<|eos|>");
  cr_assert(clkv__tokenizer_is_eog(t, tp.n_vocab - 1), "EOS is not end-of-generation");
  cr_assert(!clkv__tokenizer_is_eog(t, tp.n_vocab - 2), "BOS is end-of-generation");
  cr_assert(!clkv__tokenizer_is_eog(t, 65), "a byte token is end-of-generation");
  clkv__tokenizer_free(t);
}

/* test_ref.c — the plain-C reference itself (tests/ref): single ops against hand-computed
 * values, tiny random models written, loaded and run (deterministic, stale-KV-proof, clear
 * errors), and the real model ($CLKV_MODEL) answering "Paris" at temperature 0. */
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double PI = 3.14159265358979323846;

#define NEAR(a, b, tol) cr_expect(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.7g, want %.7g", #a, (double)(a), (double)(b))

/* ---- single ops ---- */

Test(ref, matvec_by_hand) {
  const float W[6] = {1, 2, 3, 4, 5, 6}; /* [[1 2 3] [4 5 6]] */
  const float x[3] = {1, 0, -1};
  float y[2];
  ref_matvec(W, x, y, 2, 3);
  NEAR(y[0], -2, 0);
  NEAR(y[1], -2, 0);
  const float x2[3] = {0.5f, 1, 2};
  ref_matvec(W, x2, y, 2, 3);
  NEAR(y[0], 8.5, 1e-6);
  NEAR(y[1], 19, 1e-6);
}

Test(ref, rmsnorm_by_hand) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
  float out[4];
  ref_rmsnorm(out, x, w, 4, 0.0f); /* mean(x^2) = 7.5 */
  const double s = 1.0 / sqrt(7.5);
  NEAR(out[0], 1 * s, 1e-6);
  NEAR(out[1], 2 * s, 1e-6);
  NEAR(out[2], 6 * s, 1e-6);
  NEAR(out[3], 2 * s, 1e-6);
  ref_rmsnorm(out, x, w, 4, 0.5f); /* eps inside the root */
  NEAR(out[0], 1.0 / sqrt(8.0), 1e-6);
}

Test(ref, rope_identity_at_pos_0_and_quarter_turns) {
  float x[8] = {0.3f, -1.2f, 2.0f, 0.7f, -0.1f, 4.0f, 1.5f, -2.5f}, y[8];
  memcpy(y, x, sizeof x);
  ref_rope(y, 8, 0, 10000.0f);
  for (int i = 0; i < 8; i++) NEAR(y[i], x[i], 0);
  /* head_dim 4, base (2/pi)^2: pair 1 turns by pos * base^(-1/2) = pi/2 at pos 1, pair 0 by
   * 1 radian. (1, 0) → (cos, sin); (0, 1) → (-1, 0). */
  const float base = (float)(4.0 / (PI * PI));
  float a[4] = {1, 0, 0, 1};
  ref_rope(a, 4, 1, base);
  NEAR(a[0], cos(1.0), 1e-6);
  NEAR(a[1], sin(1.0), 1e-6);
  NEAR(a[2], -1, 1e-6);
  NEAR(a[3], 0, 1e-6);
  /* pair 0 always turns by pos radians: pos 3 */
  float b[2] = {2, 0};
  ref_rope(b, 2, 3, 10000.0f);
  NEAR(b[0], 2 * cos(3.0), 1e-6);
  NEAR(b[1], 2 * sin(3.0), 1e-6);
}

Test(ref, softmax_sums_to_one) {
  float x[2] = {0.0f, logf(3.0f)};
  ref_softmax(x, 2);
  NEAR(x[0], 0.25, 1e-6);
  NEAR(x[1], 0.75, 1e-6);
  float y[5] = {1000, 999, -5, 0, 1000}; /* large values: no overflow */
  ref_softmax(y, 5);
  double sum = 0;
  for (int i = 0; i < 5; i++) sum += y[i];
  NEAR(sum, 1.0, 1e-6);
  NEAR(y[0], y[4], 0);
  NEAR(y[0] / y[1], exp(1.0), 1e-4);
}

Test(ref, swiglu_and_f16_rounding) {
  const float g[3] = {0, 20, -1}, u[3] = {5, 2, 3};
  float o[3];
  ref_swiglu(o, g, u, 3);
  NEAR(o[0], 0, 0);
  NEAR(o[1], 40, 1e-5);
  NEAR(o[2], -1.0 / (1.0 + exp(1.0)) * 3.0, 1e-6);
  NEAR(ref_round_f16(1.0f), 1.0, 0);
  NEAR(ref_round_f16(0.1f), 0.0999755859375, 0);
  NEAR(ref_round_f16(65504.0f), 65504.0, 0);
}

Test(ref, attention_one_position_returns_v) {
  const float q[4] = {1, -2, 3, 0.5f}, k[4] = {0.2f, 0.1f, -3, 9}, v[4] = {7, -1, 0.25f, 3};
  float out[4];
  ref_attention_head(out, q, k, v, 1, 4, 4, 4);
  for (int d = 0; d < 4; d++) NEAR(out[d], v[d], 1e-6);
  /* two positions (stride 6: kv heads interleaved); q·k = 0 and 2 → scaled by 1/2 */
  const float q2[4] = {1, 1, 0, 0};
  const float k2[10] = {0, 0, 0, 0, 99, 99, 1, 1, 0, 0};
  const float v2[10] = {1, 2, 3, 4, 99, 99, 5, 6, 7, 8};
  ref_attention_head(out, q2, k2, v2, 2, 4, 6, 6);
  const double p1 = exp(1.0) / (1.0 + exp(1.0));
  NEAR(out[0], 1 + 4 * p1, 1e-5);
  NEAR(out[3], 4 + 4 * p1, 1e-5);
}

/* ---- tiny random models ---- */

static char tmpdir[64];
static void mk_tmp(void) {
  strcpy(tmpdir, "/tmp/clkv_ref_XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}
static void rm_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  cr_expect_eq(system(cmd), 0);
}

/* Writes p to <tmp>/name, opens and loads it. Caller frees with ref_model_free/clkv__gguf_close. */
static ref_model *tiny_load(const ref_tiny_params *p, const char *name, clkv__gguf_file **f) {
  char path[160];
  clkv_error err = {0};
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  cr_assert_eq(ref_tiny_write(p, path, &err), CLKV_OK, "ref_tiny_write: %s", err.message);
  cr_assert_eq(clkv__gguf_open(path, f, &err), CLKV_OK, "clkv__gguf_open: %s", err.message);
  ref_model *m = ref_model_load(*f, 0, &err);
  cr_assert_not_null(m, "ref_model_load: %s", err.message);
  return m;
}

static void run_tokens(ref_model *m, const int32_t *ids, int n, float *last_logits) {
  const float *lg = NULL;
  for (int i = 0; i < n; i++) {
    lg = ref_forward(m, ids[i], i);
    cr_assert_not_null(lg, "ref_forward(token %d, pos %d) failed", ids[i], i);
  }
  memcpy(last_logits, lg, (size_t)m->n_vocab * sizeof *lg);
}

Test(ref, tiny_model_loads_and_runs_deterministically, .init = mk_tmp, .fini = rm_tmp) {
  ref_tiny_params p = ref_tiny_default();
  clkv__gguf_file *f1, *f2;
  ref_model *a = tiny_load(&p, "a.gguf", &f1);
  ref_model *b = tiny_load(&p, "b.gguf", &f2);
  cr_expect_eq(a->n_layers, 2);
  cr_expect_eq(a->dim, 64);
  cr_expect_eq(a->n_heads, 4);
  cr_expect_eq(a->n_kv_heads, 2);
  cr_expect_eq(a->head_dim, 16);
  cr_expect_eq(a->n_ff, 128);
  cr_expect_eq(a->n_vocab, 320);
  cr_expect_eq(a->n_ctx, 256);
  cr_expect_eq(a->output, a->tok_embd, "tied model should share the embedding");
  const int32_t ids[6] = {5, 300, 17, 17, 318, 0};
  float la[320], lb[320];
  run_tokens(a, ids, 6, la);
  run_tokens(b, ids, 6, lb);
  double amax = 0;
  for (int i = 0; i < 320; i++) {
    cr_assert(isfinite(la[i]), "logit %d is %f", i, la[i]);
    amax = fmax(amax, fabs(la[i]));
  }
  cr_expect_gt(amax, 1e-3, "logits are all ~0: the forward pass does nothing");
  cr_expect_eq(memcmp(la, lb, sizeof la), 0, "two loads of the same model disagree");
  cr_expect_null(ref_forward(a, 320, 0), "token out of range must be refused");
  cr_expect_null(ref_forward(a, 1, 256), "position past n_ctx must be refused");
  ref_model_free(a);
  ref_model_free(b);
  clkv__gguf_close(f1);
  clkv__gguf_close(f2);
}

Test(ref, stale_kv_entries_do_not_leak, .init = mk_tmp, .fini = rm_tmp) {
  ref_tiny_params p = ref_tiny_default();
  clkv__gguf_file *f1, *f2;
  ref_model *a = tiny_load(&p, "a.gguf", &f1);
  ref_model *b = tiny_load(&p, "b.gguf", &f2);
  int32_t junk[12], ids[7] = {3, 1, 4, 1, 5, 9, 2};
  for (int i = 0; i < 12; i++) junk[i] = (int32_t)(i * 37 % 320);
  float la[320], lb[320];
  run_tokens(a, junk, 12, la); /* fills positions 0..11 of a's cache */
  run_tokens(a, ids, 7, la);   /* then recomputes 0..6 over them */
  run_tokens(b, ids, 7, lb);   /* a fresh model */
  cr_expect_eq(memcmp(la, lb, sizeof la), 0, "logits at the last position depend on stale KV");
  /* and the greedy helper agrees with a hand-driven argmax loop */
  ref_model *c = ref_model_load(f1, 64, NULL);
  cr_assert_not_null(c);
  cr_expect_eq(c->n_ctx, 64);
  int32_t got[5], want[5];
  cr_assert_eq(ref_generate_greedy(c, ids, 7, 5, -1, got), 5);
  const float *lg = ref_forward(b, ids[6], 6);
  for (int i = 0; i < 5; i++) {
    want[i] = 0;
    for (int j = 1; j < 320; j++)
      if (lg[j] > lg[want[i]]) want[i] = j;
    lg = ref_forward(b, want[i], 7 + i);
    cr_expect_eq(got[i], want[i], "greedy token %d: %d vs %d", i, got[i], want[i]);
  }
  /* stop_id stops at its first occurrence and is counted */
  int first = 0;
  while (want[first] != want[2]) first++;
  cr_expect_eq(ref_generate_greedy(c, ids, 7, 5, want[2], got), first + 1);
  ref_model_free(c);
  ref_model_free(a);
  ref_model_free(b);
  clkv__gguf_close(f1);
  clkv__gguf_close(f2);
}

Test(ref, weight_types_and_untied_output, .init = mk_tmp, .fini = rm_tmp) {
  const int32_t ids[4] = {10, 200, 319, 42};
  float ref32[320], l[320];
  cr_assert_eq(clkv__wtype_of_slot(0), GGML_T_F32, "F32 first: the others compare with it");
  for (int t = 0; t < CLKV__N_WTYPES; t++) { /* every runnable type (kernels/contract.h) */
    const uint32_t type = clkv__wtype_of_slot(t);
    ref_tiny_params p = ref_tiny_default();
    p.wtype = type;
    p.etype = type;
    p.tied = 0;
    if (clkv__wt_block_elems((int)type) > (unsigned)p.dim) /* K-quants: rows of 256 */
      p.dim = p.n_ff = (int)clkv__wt_block_elems((int)type);
    clkv__gguf_file *f;
    char name[32];
    snprintf(name, sizeof name, "t%d.gguf", t);
    ref_model *m = tiny_load(&p, name, &f);
    cr_expect_neq(m->output, m->tok_embd);
    run_tokens(m, ids, 4, t == 0 ? ref32 : l);
    if (type == GGML_T_F16) { /* F16 weights: close to F32 */
      double worst = 0, big = 0;
      for (int i = 0; i < 320; i++) {
        worst = fmax(worst, fabs(l[i] - ref32[i]));
        big = fmax(big, fabs(ref32[i]));
      }
      cr_expect_lt(worst, 1e-2 * (1 + big), "F16 vs F32 logits differ by %g", worst);
    }
    for (int i = 0; i < 320 && t; i++) cr_assert(isfinite(l[i]));
    ref_model_free(m);
    clkv__gguf_close(f);
  }
}

Test(ref, tiny_tokenizer_metadata, .init = mk_tmp, .fini = rm_tmp) {
  ref_tiny_params p = ref_tiny_default();
  clkv__gguf_file *f;
  ref_model *m = tiny_load(&p, "tok.gguf", &f);
  char s[64];
  cr_assert(clkv__gguf_get_str(f, "tokenizer.ggml.model", s, sizeof s));
  cr_expect_str_eq(s, "gpt2");
  cr_assert(clkv__gguf_get_str(f, "general.name", s, sizeof s));
  cr_expect_str_eq(s, "clkv-tiny");
  uint64_t u;
  cr_expect(clkv__gguf_get_u64(f, "tokenizer.ggml.bos_token_id", &u) && u == 318);
  cr_expect(clkv__gguf_get_u64(f, "tokenizer.ggml.eos_token_id", &u) && u == 319);
  int b = 1;
  cr_expect(clkv__gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) && b == 0);
  const clkv__gguf_value *tok = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  cr_assert(tok && tok->v.arr.n == 320 && tok->v.arr.items);
  const struct { int id; const char *text; } want[] = {
      {0, "!"}, {93, "~"}, {94, "\xC2\xA1"}, {187, "\xC3\xBF"}, /* bytes 33, 126, 161, 255 */
      {188, "\xC4\x80"}, {220, "\xC4\xA0"}, /* byte 0 → U+0100, byte 32 (space) → 'Ġ' */
      {256, "<|tok_256|>"}, {318, "<|bos|>"}, {319, "<|eos|>"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    clkv__gguf_str t = tok->v.arr.items[want[i].id].v.str;
    cr_expect(t.len == strlen(want[i].text) && !memcmp(t.data, want[i].text, t.len),
              "token %d is '%.*s', want '%s'", want[i].id, (int)t.len, t.data, want[i].text);
  }
  const clkv__gguf_value *ty = clkv__gguf_get_arr(f, "tokenizer.ggml.token_type");
  cr_assert(ty && ty->v.arr.n == 320 && ty->v.arr.type == GGUF_V_INT32);
  const int32_t *tv = ty->v.arr.data;
  cr_expect(tv[0] == 1 && tv[317] == 1 && tv[318] == 3 && tv[319] == 3);
  const clkv__gguf_value *merges = clkv__gguf_get_arr(f, "tokenizer.ggml.merges");
  cr_expect(merges && merges->v.arr.n == 0);
  ref_tiny_params bad = p;
  bad.n_vocab = 256;
  clkv_error err = {0};
  cr_expect_eq(ref_tiny_write(&bad, "/nonexistent/x.gguf", &err), CLKV_ERR_INVALID_ARG);
  cr_expect(strstr(err.message, "258") != NULL, "%s", err.message);
  ref_model_free(m);
  clkv__gguf_close(f);
}

/* A file with llama metadata but an incomplete or wrong set of tensors. */
static clkv_status write_partial(const char *path, const char *arch, int norm_len) {
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "general.architecture", arch);
  clkv__gguf_writer_set_u32(w, "llama.block_count", 1);
  clkv__gguf_writer_set_u32(w, "llama.embedding_length", 32);
  clkv__gguf_writer_set_u32(w, "llama.feed_forward_length", 64);
  clkv__gguf_writer_set_u32(w, "llama.attention.head_count", 2);
  static float zeros[64 * 300];
  const uint64_t ne_e[2] = {32, 300}, ne_n[1] = {(uint64_t)norm_len};
  clkv__gguf_writer_add_tensor(w, "token_embd.weight", GGML_T_F32, 2, ne_e, zeros, 32 * 300 * 4);
  clkv__gguf_writer_add_tensor(w, "output_norm.weight", GGML_T_F32, 1, ne_n, zeros, (size_t)norm_len * 4);
  clkv_error err;
  clkv_status st = clkv__gguf_writer_save(w, path, &err);
  clkv__gguf_writer_free(w);
  return st;
}

Test(ref, clear_errors_for_bad_models, .init = mk_tmp, .fini = rm_tmp) {
  const struct { const char *arch; int norm_len; clkv_status st; const char *needle; } cases[] = {
      {"gpt2", 32, CLKV_ERR_UNSUPPORTED, "gpt2"},
      {"llama", 64, CLKV_ERR_FORMAT, "output_norm.weight"},
      {"llama", 32, CLKV_ERR_NOT_FOUND, "blk.0.attn_norm.weight"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[160];
    snprintf(path, sizeof path, "%s/bad%zu.gguf", tmpdir, i);
    cr_assert_eq(write_partial(path, cases[i].arch, cases[i].norm_len), CLKV_OK);
    clkv__gguf_file *f;
    clkv_error err = {0};
    cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
    ref_model *m = ref_model_load(f, 0, &err);
    cr_expect_null(m);
    cr_expect_eq(err.status, cases[i].st, "case %zu: status %d: %s", i, err.status, err.message);
    cr_expect(strstr(err.message, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
              err.message, cases[i].needle);
    ref_model_free(m);
    clkv__gguf_close(f);
  }
  ref_model_free(NULL);
  cr_expect_null(ref_model_load(NULL, 0, NULL));
}

/* ---- the real model ---- */

/* GPT-2 byte-level decoding of one token's text into raw bytes (appended to out). */
static size_t gpt2_decode(const char *s, size_t len, char *out) {
  int printable[256], rank[512] = {0}, extra = 0;
  for (int b = 0; b < 256; b++) {
    printable[b] = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    if (!printable[b]) rank[256 + extra++] = b;
  }
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)s[i];
    unsigned cp = c;
    if (c >= 0xC0 && i + 1 < len) {
      cp = ((c & 0x1Fu) << 6) | ((unsigned char)s[i + 1] & 0x3Fu);
      i += 2;
    } else {
      i += 1;
    }
    out[n++] = (char)(cp < 256 ? cp : cp < 512 ? (unsigned)rank[cp] : '?');
  }
  return n;
}

Test(ref, real_model_answers_paris) {
  const char *path = getenv("CLKV_MODEL");
  if (!path || !*path) path = CLKV_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (access(path, R_OK) != 0) cr_skip_test("no model at %s (set CLKV_MODEL)", path);
  /* "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging
   * Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n
   * <|im_start|>assistant\n", checked against HF `tokenizers` built from this GGUF's vocab
   * and merges (Digits + ByteLevel pre-tokenizer). */
  static const int32_t prompt[] = {1,    9690, 198,   2683, 359,   253,  5356,  5646, 11173, 3365,
                                   3511, 308,  34519, 28,   7018,  411,  407,   19712, 8182, 2,
                                   198,  1,    4093,  198,  1780,  314,  260,   3575, 282,   4649,
                                   47,   2,    198,   1,    520,   9531, 198};
  const int n_prompt = (int)(sizeof prompt / sizeof prompt[0]);
  clkv__gguf_file *f;
  clkv_error err = {0};
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  ref_model *m = ref_model_load(f, 128, &err);
  cr_assert_not_null(m, "%s", err.message);
  cr_expect_eq(m->n_layers, 30);
  cr_expect_eq(m->n_vocab, 49152);
  int32_t out[16];
  cr_assert_eq(ref_generate_greedy(m, prompt, n_prompt, 16, -1, out), 16);
  const clkv__gguf_value *tok = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  cr_assert(tok && tok->v.arr.items);
  char text[1024], ids[256];
  size_t n = 0, k = 0;
  for (int i = 0; i < 16; i++) {
    clkv__gguf_str t = tok->v.arr.items[out[i]].v.str;
    if (n + t.len < sizeof text) n += gpt2_decode(t.data, t.len, text + n);
    k += (size_t)snprintf(ids + k, sizeof ids - k, "%s%d", i ? ", " : "", out[i]);
  }
  text[n] = 0;
  cr_log_info("reference greedy ids: [%s]", ids);
  cr_log_info("reference greedy text: %s", text);
  cr_expect(strstr(text, "Paris") != NULL, "generated text lacks 'Paris': %s", text);
  ref_model_free(m);
  clkv__gguf_close(f);
}

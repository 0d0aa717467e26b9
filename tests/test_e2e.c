/* test_e2e.c — the whole forward pass against the plain-C reference: tiny random models of
 * every weight type (GQA and not) with prompts crossing block and chunk boundaries, logits
 * compared at every step; greedy tokens on the real model; and the error paths a user
 * meets (context too long, empty prompt, unsupported type, unknown device), through the
 * API and the CLI. */
#include "engine/engine.h"
#include "test_util.h"
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static clkv_error err;

static void setup(void) { tu_init("e2e"); }
static void teardown(void) { tu_fini(); }

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 900);

static float max_abs(const float *a, int n) {
  float m = 0;
  for (int i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i]));
  return m;
}

static int argmax(const float *a, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (a[i] > a[b]) b = i;
  return b;
}

/* Logits of engine and reference agree within 2e-3 * (1 + max |ref|). */
static void expect_logits(const float *got, const float *want, int n, const char *what, int step) {
  const float lim = 2e-3f * (1.0f + max_abs(want, n));
  for (int i = 0; i < n; i++)
    cr_assert(fabsf(got[i] - want[i]) <= lim, "%s step %d logit %d: %g vs %g (limit %g)", what,
              step, i, (double)got[i], (double)want[i], (double)lim);
}

/* Writes a tiny model as tu_tmpdir/name; path receives its full name. */
static void write_tiny(const ref_tiny_params *tp, const char *name, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", tu_tmpdir, name);
  cr_assert_eq(ref_tiny_write(tp, path, &err), CLKV_OK, "%s", err.message);
}

static clkv_model *load_tiny_kv(const char *path, int kv_block, int chunk, int n_ctx,
                                clkv_kv_type kv_type) {
  clkv_model_params mp = clkv_model_default_params();
  mp.kv_type = kv_type;
  mp.kv_block = kv_block;
  mp.chunk = chunk;
  mp.n_ctx = n_ctx;
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  return m;
}

static clkv_model *load_tiny(const char *path, int kv_block, int chunk, int n_ctx) {
  return load_tiny_kv(path, kv_block, chunk, n_ctx, CLKV_KV_F16);
}

/* Writes a tiny model, runs prompt (chunked prefill) + greedy decode on both paths and
 * compares logits at the end of prefill and at every decode step. gemm: the prefill path
 * of every projection (CLKV__GEMM_*), set on the model without checking it can run here
 * (a mode that cannot must fall back to our kernels). */
static void check_tiny_full(uint32_t wtype, int n_heads, int n_kv, int kv_block, int chunk,
                            int tied, clkv_kv_type kv_type, int window, int gemm) {
  ref_tiny_params tp = ref_tiny_default();
  tp.sliding_window = window;
  tp.wtype = wtype;
  tp.n_heads = n_heads;
  tp.n_kv_heads = n_kv;
  tp.tied = tied;
  tp.seed = 1000 + wtype * 7 + (uint64_t)n_kv;
  tp.rms_eps = tp.seed % 2 ? 1e-5f : 0.05f;             /* an eps either side reads wrongly shows */
  tp.rope_base = tp.seed % 3 ? 10000.0f : 500000.0f; /* so does a RoPE base */
  if (clkv__wt_block_elems((int)wtype) > (unsigned)tp.dim) /* K-quants: rows of 256 */
    tp.dim = tp.n_ff = (int)clkv__wt_block_elems((int)wtype);
  char name[64], path[400];
  snprintf(name, sizeof name, "tiny-%u-%d-%d-w%d.gguf", wtype, n_heads, n_kv, window);
  write_tiny(&tp, name, path, sizeof path);

  clkv__gguf_file *f;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  ref_model *ref = ref_model_load(f, 128, &err);
  cr_assert(ref, "%s", err.message);
  ref->kv_type = (int)kv_type;
  ref->window = window;

  clkv_model *m = load_tiny_kv(path, kv_block, chunk, 128, kv_type);
  for (int p = 0; p < CLKV__N_PROJ; p++) m->gemm[p] = gemm;
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);

  const int n_prompt = 45, n_gen = 12, V = tp.n_vocab;
  int32_t prompt[45];
  for (int i = 0; i < n_prompt; i++) prompt[i] = (int32_t)((i * 37 + 11) % (V - 2));
  const float *rl = NULL;
  for (int i = 0; i < n_prompt; i++) rl = ref_forward(ref, prompt[i], i);
  int seq, cached;
  cr_assert_eq(clkv__seq_start(ctx, prompt, n_prompt, &seq, &cached), CLKV_OK, "%s", ctx->err.message);
  cr_assert_eq(cached, 0);
  for (int pos = 0; pos < n_prompt; pos += chunk) {
    int len = n_prompt - pos < chunk ? n_prompt - pos : chunk;
    cr_assert_eq(clkv__forward_prefill(ctx, seq, prompt + pos, len, pos + len == n_prompt),
                 CLKV_OK, "%s", ctx->err.message);
  }
  char what[96];
  snprintf(what, sizeof what, "%s nh %d nkv %d bs %d chunk %d kv %s window %d gemm %s",
           clkv__ggml_type_get(wtype)->name, n_heads, n_kv, kv_block, chunk,
           clkv_kv_type_name(kv_type), window, clkv__gemm_mode_name(gemm));
  expect_logits(ctx->h_logits, rl, V, what, 0);
  int pos = n_prompt;
  for (int s = 1; s <= n_gen; s++, pos++) {
    int32_t tok = argmax(rl, V);
    cr_assert_eq(argmax(ctx->h_logits, V), tok, "%s: greedy token differs at step %d", what, s);
    rl = ref_forward(ref, tok, pos);
    cr_assert_eq(clkv__forward_decode(ctx, &seq, &tok, 1), CLKV_OK, "%s", ctx->err.message);
    expect_logits(ctx->h_logits, rl, V, what, s);
  }
  if (window) { /* blocks wholly out of reach went back: fewer held than positions need */
    clkv_kv_stats ks;
    clkv_context_kv_stats(ctx, &ks);
    cr_assert_lt(ks.device_blocks_used, (pos + kv_block - 1) / kv_block, "%s: %d blocks held", what,
                 ks.device_blocks_used);
  }
  clkv__seq_end(ctx, seq);
  clkv_context_free(ctx);
  clkv_model_free(m);
  ref_model_free(ref);
  clkv__gguf_close(f);
}

static void check_tiny_kv(uint32_t wtype, int n_heads, int n_kv, int kv_block, int chunk, int tied,
                          clkv_kv_type kv_type) {
  check_tiny_full(wtype, n_heads, n_kv, kv_block, chunk, tied, kv_type, 0, CLKV__GEMM_OWN);
}

static void check_tiny(uint32_t wtype, int n_heads, int n_kv, int kv_block, int chunk, int tied) {
  check_tiny_kv(wtype, n_heads, n_kv, kv_block, chunk, tied, CLKV_KV_F16);
}

Test(e2e, tiny_models_prefill_through_clblast_match_reference) {
  char why[256];
  if (!clkv__gemm_available(tu_rt, CLKV__GEMM_CLBLAST, why, sizeof why)) cr_skip_test("%s", why);
  for (int i = 0; i < CLKV__N_WTYPES; i++) /* every runnable type (kernels/contract.h) */
    check_tiny_full(clkv__wtype_of_slot(i), 4, 2, 16, 16, 1, CLKV_KV_F16, 0, CLKV__GEMM_CLBLAST);
  /* one chunk, untied; and the K/V write into Q8 and Q4 caches */
  check_tiny_full(GGML_T_Q4_1, 4, 4, 8, 45, 0, CLKV_KV_F16, 0, CLKV__GEMM_CLBLAST);
  check_tiny_full(GGML_T_Q4_1, 4, 2, 16, 16, 1, CLKV_KV_Q8, 0, CLKV__GEMM_CLBLAST);
  check_tiny_full(GGML_T_Q8_0, 4, 2, 8, 32, 0, CLKV_KV_Q4, 0, CLKV__GEMM_CLBLAST);
  check_tiny_full(GGML_T_Q4_1, 4, 2, 8, 16, 1, CLKV_KV_F16, 20, CLKV__GEMM_CLBLAST); /* window */
}

Test(e2e, prefill_gemm_that_cannot_run_falls_back_or_is_refused) {
  if (clkv__gemm_available(tu_rt, CLKV__GEMM_CLBLAST16, NULL, 0))
    cr_skip_test("the device has cl_khr_fp16: clblast16 can run");
  /* what the refusal names: the extension, or CLBlast missing from the build */
  const char *missing =
      clkv__gemm_available(tu_rt, CLKV__GEMM_CLBLAST, NULL, 0) ? "cl_khr_fp16" : "without CLBlast";
  /* forced past the checks: the engine finds out at the first prefill and falls back */
  check_tiny_full(GGML_T_Q8_0, 4, 2, 16, 16, 1, CLKV_KV_F16, 0, CLKV__GEMM_CLBLAST16);
  ref_tiny_params tp = ref_tiny_default();
  char path[400];
  write_tiny(&tp, "tiny-gemm16.gguf", path, sizeof path);
  clkv_model *m = load_tiny(path, 16, 16, 128);
  cr_assert_eq(clkv__model_set_gemm(m, -1, CLKV__GEMM_CLBLAST16, &err), CLKV_ERR_UNSUPPORTED);
  cr_assert(strstr(err.message, missing), "%s", err.message);
  cr_assert_eq(m->gemm[0], CLKV__GEMM_OWN, "a refused mode changes nothing");
  clkv_model_free(m);
  /* asked for through the environment: own, and the reason in the model's note */
  setenv("CLKV_PREFILL_GEMM", "clblast16", 1);
  m = load_tiny(path, 16, 16, 128);
  unsetenv("CLKV_PREFILL_GEMM");
  for (int p = 0; p < CLKV__N_PROJ; p++) cr_assert_eq(m->gemm[p], CLKV__GEMM_OWN);
  cr_assert(strstr(clkv_model_prefill_gemm(m), missing), "%s", clkv_model_prefill_gemm(m));
  clkv_model_free(m);
}

Test(e2e, tiny_models_every_weight_type_match_reference) {
  for (int i = 0; i < CLKV__N_WTYPES; i++) { /* every runnable type (kernels/contract.h) */
    check_tiny(clkv__wtype_of_slot(i), 4, 2, 16, 16, 1); /* GQA, 45 tokens = 3 chunks, crosses blocks */
    check_tiny(clkv__wtype_of_slot(i), 4, 4, 16, 32, 0); /* plain multi-head, untied output */
  }
}

Test(e2e, tiny_model_block_sizes_and_chunks) {
  check_tiny(GGML_T_Q4_1, 4, 2, 8, 7, 1);
  check_tiny(GGML_T_Q4_1, 4, 2, 32, 45, 1);
  check_tiny(GGML_T_Q8_0, 4, 1, 8, 128, 0); /* multi-query */
}

/* Q8 and Q4 KV: the kernels write and read the same values as the reference's quantized
 * cache (head_dim 16 here: one scale group per head row), for each block size. */
Test(e2e, tiny_models_quantized_kv_match_reference) {
  const clkv_kv_type kt[] = {CLKV_KV_Q8, CLKV_KV_Q4};
  for (int i = 0; i < 2; i++) {
    check_tiny_kv(GGML_T_Q4_1, 4, 2, 8, 16, 1, kt[i]);
    check_tiny_kv(GGML_T_Q8_0, 4, 4, 16, 7, 0, kt[i]);
    check_tiny_kv(GGML_T_F16, 4, 1, 32, 45, 1, kt[i]);
  }
}

/* A model with a sliding window: each position attends to its last 20 (prefill tiles and
 * decode), and the blocks out of reach are released as the sequence grows. */
Test(e2e, sliding_window_matches_reference_and_frees_blocks) {
  check_tiny_full(GGML_T_Q4_1, 4, 2, 8, 16, 1, CLKV_KV_F16, 20, CLKV__GEMM_OWN);
  check_tiny_full(GGML_T_Q8_0, 4, 4, 16, 45, 0, CLKV_KV_Q8, 13, CLKV__GEMM_OWN);
}

/* ---- the paged KV cache: prefix reuse and the host tier ---- */
typedef struct idlist {
  int32_t ids[64];
  int n;
} idlist;

static int on_id(void *u, int32_t id, const char *text, size_t len);

static clkv_model *load_tiny_model_for_turns(void) {
  ref_tiny_params tp = ref_tiny_default();
  char path[400];
  write_tiny(&tp, "turns.gguf", path, sizeof path);
  return load_tiny(path, 8, 16, 128);
}

/* Multi-turn: with reuse_last the second turn continues the first turn's sequence and
 * computes only its new tokens (not even the first turn's partial last block); its tokens
 * are those of a fresh context computing everything. */
Test(e2e, reuse_last_prefills_only_the_new_turn) {
  clkv_model *m = load_tiny_model_for_turns();
  clkv_context_params cp = clkv_context_default_params();
  cp.reuse_last = 1;
  clkv_context *chat, *fresh;
  cr_assert_eq(clkv_context_create(m, &cp, &chat, &err), CLKV_OK, "%s", err.message);
  cp.reuse_last = 0;
  cp.prefix_cache = 0;
  cr_assert_eq(clkv_context_create(m, &cp, &fresh, &err), CLKV_OK, "%s", err.message);
  int32_t turn[128];
  for (int i = 0; i < 21; i++) turn[i] = (int32_t)((i * 31 + 7) % 250);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 10;
  idlist a = {.n = 0}, b = {.n = 0}, c = {.n = 0};
  clkv_gen_stats s1, s2, s3;
  cr_assert_eq(clkv_generate_ids(chat, turn, 21, &gp, on_id, &a, &s1), CLKV_OK, "%s", clkv_last_error(chat));
  cr_assert_eq(a.n, 10);
  /* next prompt: the whole first turn, its reply, then 9 new tokens */
  int n = 21;
  for (int i = 0; i < a.n; i++) turn[n++] = a.ids[i];
  for (int i = 0; i < 9; i++) turn[n++] = (int32_t)(200 + i);
  cr_assert_eq(clkv_generate_ids(chat, turn, n, &gp, on_id, &b, &s2), CLKV_OK, "%s", clkv_last_error(chat));
  /* kept: 21 + 9 fed tokens (the 10th reply token was never fed) */
  cr_assert_eq(s2.prefill_tokens, n - 30, "prefilled %d of %d", s2.prefill_tokens, n);
  cr_assert_eq(clkv_generate_ids(fresh, turn, n, &gp, on_id, &c, &s3), CLKV_OK, "%s", clkv_last_error(fresh));
  cr_assert_eq(s3.prefill_tokens, n);
  cr_assert_eq(b.n, c.n);
  for (int i = 0; i < b.n; i++) cr_assert_eq(b.ids[i], c.ids[i], "token %d", i);
  /* a prompt that does not continue it starts over */
  turn[0] = (turn[0] + 1) % 250;
  b.n = 0;
  cr_assert_eq(clkv_generate_ids(chat, turn, 25, &gp, on_id, &b, &s2), CLKV_OK, "%s", clkv_last_error(chat));
  cr_assert_eq(s2.prefill_tokens, 25);
  clkv_kv_stats ks;
  clkv_context_kv_stats(chat, &ks);
  cr_assert_gt(ks.device_blocks_used, 0); /* the kept sequence */
  cr_assert_eq(clkv__kv_pool_check(chat->pool, &err), CLKV_OK, "%s", err.message);
  clkv_context_free(chat);
  clkv_context_free(fresh);
  clkv_model_free(m);
}

static int on_id(void *u, int32_t id, const char *text, size_t len) {
  (void)text;
  (void)len;
  idlist *l = u;
  if (id >= 0 && l->n < 64) l->ids[l->n++] = id;
  return 0;
}

static clkv_model *tiny_model(const char *name, int kv_block, int n_ctx) {
  ref_tiny_params tp = ref_tiny_default();
  char path[400];
  write_tiny(&tp, name, path, sizeof path);
  return load_tiny(path, kv_block, 16, n_ctx);
}

Test(e2e, prefix_cache_reuses_blocks_with_identical_tokens) {
  clkv_model *m = tiny_model("prefix.gguf", 16, 128);
  clkv_context_params cp = clkv_context_default_params();
  clkv_context *on, *off;
  cr_assert_eq(clkv_context_create(m, &cp, &on, &err), CLKV_OK, "%s", err.message);
  cp.prefix_cache = 0;
  cr_assert_eq(clkv_context_create(m, &cp, &off, &err), CLKV_OK, "%s", err.message);
  int32_t prompt[45];
  for (int i = 0; i < 45; i++) prompt[i] = (int32_t)((i * 29 + 5) % 300);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 20;
  idlist ref_ids = {.n = 0}, first = {.n = 0}, second = {.n = 0};
  clkv_gen_stats s0, s1, s2;
  cr_assert_eq(clkv_generate_ids(off, prompt, 45, &gp, on_id, &ref_ids, &s0), CLKV_OK, "%s", clkv_last_error(off));
  cr_assert_eq(clkv_generate_ids(on, prompt, 45, &gp, on_id, &first, &s1), CLKV_OK, "%s", clkv_last_error(on));
  cr_assert_eq(clkv_generate_ids(on, prompt, 45, &gp, on_id, &second, &s2), CLKV_OK, "%s", clkv_last_error(on));
  cr_assert_eq(s0.prefill_tokens, 45);
  cr_assert_eq(s1.prefill_tokens, 45);
  /* the second run computes only what is not in the cache: the first 45 + 19 generated
   * tokens filled 4 blocks of 16, so 32 of 45 prompt tokens... or more: 45 = 2 full
   * blocks + 13, and block 3 (tokens 32..47) mixes prompt and generated tokens */
  cr_assert_eq(s2.prefill_tokens, 45 - 32, "prefilled %d", s2.prefill_tokens);
  cr_assert_eq(first.n, ref_ids.n);
  cr_assert_eq(second.n, ref_ids.n);
  for (int i = 0; i < ref_ids.n; i++) {
    cr_assert_eq(first.ids[i], ref_ids.ids[i], "token %d", i);
    cr_assert_eq(second.ids[i], ref_ids.ids[i], "token %d (prefix-cached run)", i);
  }
  clkv_kv_stats ks;
  clkv_context_kv_stats(on, &ks);
  cr_assert_eq(ks.prompt_tokens, 90);
  cr_assert_eq(ks.prefix_hit_tokens, 32);
  cr_assert(ks.device_blocks_cached >= 2, "%d cached", ks.device_blocks_cached);
  cr_assert_eq(ks.device_blocks_used, 0); /* no sequence is live */
  clkv_context_free(on);
  clkv_context_free(off);
  clkv_model_free(m);
}

Test(e2e, swap_to_host_tier_and_back_gives_identical_logits) {
  clkv_model *m = tiny_model("swap.gguf", 8, 128);
  clkv_context_params cp = clkv_context_default_params();
  cp.kv_host_blocks = 32;
  cp.prefix_cache = 0;
  clkv_context *a, *b;
  cr_assert_eq(clkv_context_create(m, &cp, &a, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv_context_create(m, &cp, &b, &err), CLKV_OK, "%s", err.message);
  int32_t prompt[30];
  for (int i = 0; i < 30; i++) prompt[i] = (int32_t)((i * 13 + 3) % 300);
  int sa, sb, ca, cb;
  cr_assert_eq(clkv__seq_start(a, prompt, 30, &sa, &ca), CLKV_OK);
  cr_assert_eq(clkv__seq_start(b, prompt, 30, &sb, &cb), CLKV_OK);
  cr_assert_eq(clkv__forward_prefill(a, sa, prompt, 16, 0), CLKV_OK, "%s", a->err.message);
  cr_assert_eq(clkv__forward_prefill(a, sa, prompt + 16, 14, 1), CLKV_OK, "%s", a->err.message);
  cr_assert_eq(clkv__forward_prefill(b, sb, prompt, 16, 0), CLKV_OK, "%s", b->err.message);
  cr_assert_eq(clkv__forward_prefill(b, sb, prompt + 16, 14, 1), CLKV_OK, "%s", b->err.message);
  const int V = m->info.n_vocab;
  for (int step = 0; step < 10; step++) {
    int32_t tok = argmax(a->h_logits, V);
    cr_assert_eq(argmax(b->h_logits, V), tok, "step %d", step);
    if (step == 4) {
      /* swap b's sequence out, scribble over the device cache, bring it back */
      cr_assert_eq(clkv__kv_seq_swap_out(b->pool, sb, &err), CLKV_OK, "%s", err.message);
      cr_assert_eq(clkv__kv_sync(b), CLKV_OK, "%s", b->err.message);
      cr_assert(clkv__kv_seq_swapped(b->pool, sb));
      const float junk = 1e4f;
      for (int ar = 0; ar < b->dev.n_arenas; ar++) {
        size_t bytes;
        cr_assert_eq(clGetMemObjectInfo(b->dev.k[ar], CL_MEM_SIZE, sizeof bytes, &bytes, NULL), CL_SUCCESS);
        cr_assert_eq(clEnqueueFillBuffer(tu_rt->queue, b->dev.k[ar], &junk, sizeof junk, 0, bytes, 0,
                                         NULL, NULL), CL_SUCCESS);
      }
      cr_assert_eq(clkv__kv_seq_swap_in(b->pool, sb, &err), CLKV_OK, "%s", err.message);
      cr_assert_eq(clkv__kv_sync(b), CLKV_OK, "%s", b->err.message);
      clkv_kv_stats ks;
      clkv_context_kv_stats(b, &ks);
      cr_assert(ks.swaps_out >= 4 && ks.swaps_in == ks.swaps_out && ks.bytes_moved > 0);
    }
    cr_assert_eq(clkv__forward_decode(a, &sa, &tok, 1), CLKV_OK, "%s", a->err.message);
    cr_assert_eq(clkv__forward_decode(b, &sb, &tok, 1), CLKV_OK, "%s", b->err.message);
    for (int i = 0; i < V; i++)
      cr_assert_eq(a->h_logits[i], b->h_logits[i], "step %d logit %d", step, i);
  }
  clkv_context_free(a);
  clkv_context_free(b);
  clkv_model_free(m);
}

/* Greedy ids of a context (prompt of 40 tokens, 12 generated). */
static void greedy_ids(clkv_context *c, int32_t *out) {
  int32_t prompt[40];
  for (int i = 0; i < 40; i++) prompt[i] = (int32_t)((i * 29 + 5) % 250);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 12;
  idlist s = {.n = 0};
  cr_assert_eq(clkv_generate_ids(c, prompt, 40, &gp, on_id, &s, NULL), CLKV_OK, "%s", clkv_last_error(c));
  cr_assert_eq(s.n, 12);
  memcpy(out, s.ids, sizeof(int32_t) * 12);
}

/* The KV cache split over several arenas (as on a device whose largest allocation is
 * small) gives the same tokens; a budget below one sequence's need is a clear error. */
Test(e2e, kv_arenas_and_memory_budget) {
  clkv_model *m = tiny_model("arena.gguf", 8, 128);
  clkv_context *one, *many;
  cr_assert_eq(clkv_context_create(m, NULL, &one, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(one->dev.n_arenas, 1);
  const uint64_t saved = tu_rt->info.max_alloc_bytes;
  /* room for one layer of K (or V) per buffer: one arena per layer */
  tu_rt->info.max_alloc_bytes = (uint64_t)one->n_blocks * one->block_bytes;
  clkv_context_params cp = clkv_context_default_params();
  cp.kv_host_blocks = 8;
  clkv_status st = clkv_context_create(m, &cp, &many, &err);
  tu_rt->info.max_alloc_bytes = saved;
  cr_assert_eq(st, CLKV_OK, "%s", err.message);
  cr_assert_eq(many->dev.n_arenas, m->info.n_layers);
  int32_t a[12], b[12];
  greedy_ids(one, a);
  greedy_ids(many, b);
  for (int i = 0; i < 12; i++) cr_assert_eq(a[i], b[i], "token %d", i);
  clkv_context_free(one);
  clkv_context_free(many);

  /* budgets: bytes, fraction, too small, out of range */
  const size_t per_block = clkv__kv_block_bytes(CLKV_KV_F16, m->info.n_kv_heads, 8, m->info.head_dim) * 2 *
                           (size_t)m->info.n_layers;
  cp = clkv_context_default_params();
  cp.kv_mem_bytes = per_block * 40 + per_block / 2;
  cr_assert_eq(clkv_context_create(m, &cp, &one, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(one->n_blocks, 40);
  greedy_ids(one, b);
  for (int i = 0; i < 12; i++) cr_assert_eq(a[i], b[i], "token %d with a 40-block budget", i);
  clkv_context_free(one);
  cp.kv_mem_bytes = per_block * 3; /* 128 positions need 16 blocks of 8 */
  cr_assert_eq(clkv_context_create(m, &cp, &one, &err), CLKV_ERR_DEVICE_MEMORY);
  cr_assert(strstr(err.message, "--kv-mem") && strstr(err.message, "16 blocks"), "%s", err.message);
  /* a fraction of the memory the weights leave: on a device said to hold 1000 x 100 blocks
   * it gives about 100; on one of 1000 x 10 blocks fewer than the 16 one sequence needs */
  cp.kv_mem_bytes = 0;
  cp.kv_mem_fraction = 0.001;
  const uint64_t saved_mem = tu_rt->info.global_mem_bytes;
  tu_rt->info.global_mem_bytes = 1000 * 100 * per_block;
  st = clkv_context_create(m, &cp, &one, &err);
  tu_rt->info.global_mem_bytes = saved_mem;
  cr_assert_eq(st, CLKV_OK, "%s", err.message);
  cr_assert(one->n_blocks >= 95 && one->n_blocks <= 100, "%d blocks", one->n_blocks);
  clkv_context_free(one);
  tu_rt->info.global_mem_bytes = 1000 * 10 * per_block;
  st = clkv_context_create(m, &cp, &one, &err);
  tu_rt->info.global_mem_bytes = saved_mem;
  cr_assert_eq(st, CLKV_ERR_DEVICE_MEMORY, "%s", err.message);
  cr_assert(strstr(err.message, "fraction"), "%s", err.message);
  cp.kv_mem_fraction = 1.5;
  cr_assert_eq(clkv_context_create(m, &cp, &one, &err), CLKV_ERR_INVALID_ARG);
  clkv_model_free(m);
}

/* Continuous batching: 6 requests of different lengths on 3 sequence slots give each the
 * tokens it gets alone — with room for all, when blocks run out and requests are swapped
 * to the host tier, and when they are released and recomputed. */
static void run_requests(clkv_context *c, clkv_request *r, idlist *out, int n, int32_t (*prompts)[40],
                         const int *lens, const int *gen) {
  for (int i = 0; i < n; i++) {
    out[i].n = 0;
    r[i] = (clkv_request){.ids = prompts[i], .n_ids = lens[i], .params = clkv_gen_default_params(),
                          .cb = on_id, .user = &out[i]};
    r[i].params.temperature = 0;
    r[i].params.max_tokens = gen[i];
  }
  cr_assert_eq(clkv_generate_batch(c, r, n), CLKV_OK, "%s", clkv_last_error(c));
  for (int i = 0; i < n; i++) cr_assert_eq(r[i].status, CLKV_OK, "request %d: %s", i, clkv_last_error(c));
}

Test(e2e, batch_preemption_gives_identical_tokens) {
  clkv_model *m = tiny_model("batch.gguf", 8, 64);
  enum { N = 6 };
  int32_t prompts[N][40];
  const int lens[N] = {12, 37, 5, 20, 29, 9}, gen[N] = {30, 12, 40, 25, 18, 33};
  for (int i = 0; i < N; i++)
    for (int j = 0; j < 40; j++) prompts[i][j] = (int32_t)((j * (i + 3) * 7 + i * 11 + 1) % 250);
  clkv_context_params cp = clkv_context_default_params();
  cp.n_seq_max = 1;
  clkv_context *solo;
  cr_assert_eq(clkv_context_create(m, &cp, &solo, &err), CLKV_OK, "%s", err.message);
  idlist want[N], got[N];
  clkv_request r[N];
  for (int i = 0; i < N; i++) run_requests(solo, &r[i], &want[i], 1, &prompts[i], &lens[i], &gen[i]);
  clkv_context_free(solo);
  /* room for all; 12 blocks of 8 (three sequences need up to 3 * 7) with a host tier;
   * 12 blocks without one (recompute) */
  const int blocks[3] = {0, 12, 12}, host[3] = {0, 64, 0};
  for (int v = 0; v < 3; v++) {
    cp = clkv_context_default_params();
    cp.n_seq_max = 3;
    cp.kv_device_blocks = blocks[v];
    cp.kv_host_blocks = host[v];
    cp.prefix_cache = v != 2;
    clkv_context *c;
    cr_assert_eq(clkv_context_create(m, &cp, &c, &err), CLKV_OK, "%s", err.message);
    run_requests(c, r, got, N, prompts, lens, gen);
    for (int i = 0; i < N; i++) {
      cr_assert_eq(got[i].n, want[i].n, "variant %d request %d: %d tokens, alone %d", v, i, got[i].n, want[i].n);
      for (int j = 0; j < got[i].n; j++)
        cr_assert_eq(got[i].ids[j], want[i].ids[j], "variant %d request %d token %d", v, i, j);
    }
    clkv_kv_stats ks;
    clkv_context_kv_stats(c, &ks);
    if (v == 1) cr_assert(ks.swaps_out > 0 && ks.swaps_in == ks.swaps_out, "swaps %llu/%llu",
                          (unsigned long long)ks.swaps_out, (unsigned long long)ks.swaps_in);
    if (v == 2) {
      int recomputed = 0;
      for (int i = 0; i < N; i++) recomputed += r[i].stats.prefill_tokens > lens[i];
      cr_assert(recomputed > 0, "no request was preempted and recomputed");
      /* the youngest yield: the request admitted first is never preempted */
      cr_assert_eq(r[0].stats.prefill_tokens, lens[0], "the oldest request was preempted");
    }
    cr_assert_eq(ks.device_blocks_used, 0);
    cr_assert_eq(clkv__kv_pool_check(c->pool, &err), CLKV_OK, "%s", err.message);
    clkv_context_free(c);
  }
  /* a bad request fails alone */
  clkv_context *c;
  cr_assert_eq(clkv_context_create(m, NULL, &c, &err), CLKV_OK, "%s", err.message);
  int lens2[2] = {0, 10}, gen2[2] = {5, 5};
  for (int i = 0; i < 2; i++) {
    got[i].n = 0;
    r[i] = (clkv_request){.ids = prompts[i], .n_ids = lens2[i], .params = clkv_gen_default_params(),
                          .cb = on_id, .user = &got[i]};
    r[i].params.max_tokens = gen2[i];
  }
  cr_assert_eq(clkv_generate_batch(c, r, 2), CLKV_OK, "%s", clkv_last_error(c));
  cr_assert_eq(r[0].status, CLKV_ERR_INVALID_ARG);
  cr_assert_eq(r[1].status, CLKV_OK);
  cr_assert_eq(got[1].n, 5);
  clkv_context_free(c);
  clkv_model_free(m);
}

Test(e2e, block_sizes_give_identical_greedy_tokens) {
  idlist out[3];
  const int sizes[3] = {8, 16, 32};
  int32_t prompt[40];
  for (int i = 0; i < 40; i++) prompt[i] = (int32_t)((i * 17 + 1) % 300);
  for (int k = 0; k < 3; k++) {
    char name[32];
    snprintf(name, sizeof name, "bs%d.gguf", sizes[k]);
    clkv_model *m = tiny_model(name, sizes[k], 128);
    clkv_context *c;
    cr_assert_eq(clkv_context_create(m, NULL, &c, &err), CLKV_OK, "%s", err.message);
    clkv_gen_params gp = clkv_gen_default_params();
    gp.temperature = 0;
    gp.max_tokens = 30;
    out[k].n = 0;
    cr_assert_eq(clkv_generate_ids(c, prompt, 40, &gp, on_id, &out[k], NULL), CLKV_OK, "%s", clkv_last_error(c));
    clkv_context_free(c);
    clkv_model_free(m);
  }
  for (int k = 1; k < 3; k++) {
    cr_assert_eq(out[k].n, out[0].n);
    for (int i = 0; i < out[0].n; i++)
      cr_assert_eq(out[k].ids[i], out[0].ids[i], "block %d token %d", sizes[k], i);
  }
}

/* ---- the real model ---- */

typedef struct collect {
  int32_t ids[256];
  int n;
  char text[4096];
  size_t len;
  int cancel_after; /* > 0: the callback asks to stop after this many tokens */
} collect;

static int on_tok(void *u, int32_t id, const char *text, size_t len) {
  collect *c = u;
  if (id >= 0 && c->n < 256) c->ids[c->n++] = id;
  if (c->len + len < sizeof c->text) {
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = 0;
  }
  return c->cancel_after > 0 && c->n >= c->cancel_after;
}

/* A context on a fresh tiny model (*m), and a 10-token prompt of bytes (i * mul + add). */
static clkv_context *tiny_context(const char *name, clkv_model **m, int32_t *prompt, int mul, int add) {
  *m = tiny_model(name, 16, 128);
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(*m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  for (int i = 0; i < 10; i++) prompt[i] = (int32_t)((i * mul + add) % 256);
  return ctx;
}

/* The first occurrence of any of stops in text[0..len), or -1 (text may hold NUL bytes). */
static long first_stop(const char *text, size_t len, const char *const *stops) {
  for (size_t at = 0; at < len; at++)
    for (int i = 0; stops[i]; i++) {
      const size_t sl = strlen(stops[i]);
      if (sl && at + sl <= len && !memcmp(text + at, stops[i], sl)) return (long)at;
    }
  return -1;
}

/* Generates again with stop strings: what streams is all's text up to the first
 * occurrence of any of them (exactly, nothing of the stop string itself), or all of it with
 * CLKV_STOP_LENGTH when none occurs. */
static void check_stop(clkv_context *ctx, const int32_t *prompt, clkv_gen_params gp,
                       const collect *all, const char *const *stops, const char *what) {
  collect cut = {.n = 0};
  clkv_gen_stats st;
  gp.stop = stops;
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 10, &gp, on_tok, &cut, &st), CLKV_OK, "%s", clkv_last_error(ctx));
  const long at = first_stop(all->text, all->len, stops);
  if (at < 0) {
    cr_assert_eq(st.stop_reason, CLKV_STOP_LENGTH, "%s", what);
    cr_assert_eq(cut.len, all->len, "%s", what);
  } else {
    cr_assert_eq(st.stop_reason, CLKV_STOP_STRING, "%s", what);
    cr_assert_eq(cut.len, (size_t)at, "%s: streamed %zu bytes, %ld precede the stop string", what,
                 cut.len, at);
    cr_assert_lt(st.generated_tokens, all->n, "%s: went on past the stop string", what);
  }
  cr_assert(!memcmp(cut.text, all->text, cut.len), "%s", what);
  for (int i = 0; i < cut.n; i++) cr_assert_eq(cut.ids[i], all->ids[i], "%s: token %d", what, i);
}

/* Each way a request stops, with the text it streamed: the token limit (all text flushed),
 * a stop string (text before it only: one string, several where the earliest occurrence
 * wins, one spanning several tokens, one at the very start, one that never occurs), the
 * callback cancelling (text so far). */
Test(e2e, stop_reasons_limit_stop_string_and_cancel) {
  clkv_model *m;
  int32_t prompt[10];
  clkv_context *ctx = tiny_context("stop.gguf", &m, prompt, 37, 65);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.repeat_penalty = 1000.0f; /* the tiny random model would repeat one token */
  gp.max_tokens = 12;
  collect all = {.n = 0}, cancel = {.n = 0, .cancel_after = 5};
  clkv_gen_stats st;
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 10, &gp, on_tok, &all, &st), CLKV_OK, "%s", clkv_last_error(ctx));
  cr_assert_eq(st.stop_reason, CLKV_STOP_LENGTH);
  cr_assert_eq(st.generated_tokens, 12);
  cr_assert_eq(all.n, 12);
  cr_assert_gt(all.len, 8, "the tiny model streamed %zu bytes", all.len);
  cr_assert_eq(strlen(all.text), all.len, "the text holds a NUL byte; pick another prompt");
  const size_t h = all.len / 2;
  char mid[3] = {all.text[h], all.text[h + 1], 0}, start[3] = {all.text[0], all.text[1], 0};
  char late[4] = {all.text[all.len - 3], all.text[all.len - 2], all.text[all.len - 1], 0};
  char span[6];
  memcpy(span, all.text + 2, 5); /* several tokens: the tiny model's pieces are 1-9 bytes */
  span[5] = 0;
  const char *one[] = {mid, NULL}, *several[] = {"\x01never", late, mid, NULL};
  const char *spanning[] = {span, NULL}, *at_start[] = {start, NULL}, *none[] = {"\x01never", NULL};
  check_stop(ctx, prompt, gp, &all, one, "one stop string");
  check_stop(ctx, prompt, gp, &all, several, "several stop strings");
  check_stop(ctx, prompt, gp, &all, spanning, "a stop string spanning tokens");
  check_stop(ctx, prompt, gp, &all, at_start, "a stop string at the start");
  check_stop(ctx, prompt, gp, &all, none, "a stop string that never occurs");
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 10, &gp, on_tok, &cancel, &st), CLKV_OK, "%s", clkv_last_error(ctx));
  cr_assert_eq(st.stop_reason, CLKV_STOP_CANCELLED);
  cr_assert_eq(st.generated_tokens, 5);
  cr_assert_eq(cancel.n, 5);
  cr_assert(cancel.len <= all.len && !memcmp(cancel.text, all.text, cancel.len));
  cr_assert_str_eq(clkv_stop_reason_name(CLKV_STOP_LENGTH), "length");
  cr_assert_str_eq(clkv_stop_reason_name(CLKV_STOP_EOS), "eos");
  cr_assert_str_eq(clkv_stop_reason_name(CLKV_STOP_STRING), "stop_string");
  cr_assert_str_eq(clkv_stop_reason_name(CLKV_STOP_CANCELLED), "cancelled");
  cr_assert_str_eq(clkv_stop_reason_name((clkv_stop_reason)7), "unknown");
  clkv_context_free(ctx);
  clkv_model_free(m);
}

/* The token limit ends a request without a decode step past it: the first token comes from
 * the prefill's logits, each later one from one decode step (counted in kernel launches). */
Test(e2e, token_limit_runs_no_decode_step_past_it) {
  clkv_model *m;
  int32_t prompt[10];
  clkv_context *ctx = tiny_context("limit.gguf", &m, prompt, 37, 65);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.repeat_penalty = 1000.0f;
  unsigned long long n[4];
  for (int k = 0; k < 4; k++) {
    gp.max_tokens = k;
    clkv_gen_stats st;
    const unsigned long long before = tu_rt->launches;
    cr_assert_eq(clkv_generate_ids(ctx, prompt, 10, &gp, NULL, NULL, &st), CLKV_OK, "%s", clkv_last_error(ctx));
    n[k] = tu_rt->launches - before;
    cr_assert_eq(st.generated_tokens, k);
    cr_assert_eq(st.stop_reason, CLKV_STOP_LENGTH);
  }
  cr_assert_eq(n[1], n[0], "one token took %llu launches, the prefill alone %llu", n[1], n[0]);
  cr_assert_gt(n[2], n[1]);
  cr_assert_eq(n[3] - n[2], n[2] - n[1], "each further token is one decode step");
  clkv_context_free(ctx);
  clkv_model_free(m);
}

static int same_ids(const collect *a, const collect *b) {
  return a->n == b->n && !memcmp(a->ids, b->ids, sizeof(int32_t) * (size_t)a->n);
}

/* One sampled run: 24 tokens, or fewer ending at the end-of-generation token (the whole
 * vocabulary is allowed); no id of the prompt or of the tokens so far comes back. */
static void sample_run(clkv_context *ctx, const int32_t *prompt, const clkv_gen_params *gp,
                       collect *c) {
  clkv_gen_stats st;
  *c = (collect){.n = 0};
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 10, gp, on_tok, c, &st), CLKV_OK, "%s", clkv_last_error(ctx));
  const int eos = st.stop_reason == CLKV_STOP_EOS;
  cr_assert(eos || (st.stop_reason == CLKV_STOP_LENGTH && c->n == 24), "seed %llu: %d tokens, %s",
            (unsigned long long)gp->seed, c->n, clkv_stop_reason_name(st.stop_reason));
  cr_assert_eq(st.generated_tokens, c->n + eos);
  for (int i = 0; i < c->n; i++) {
    for (int j = 0; j < 10; j++)
      cr_assert_neq(c->ids[i], prompt[j], "seed %llu token %d repeats the prompt", (unsigned long long)gp->seed, i);
    for (int j = 0; j < i; j++)
      cr_assert_neq(c->ids[i], c->ids[j], "seed %llu token %d repeats token %d", (unsigned long long)gp->seed, i, j);
  }
}

/* Sampling at temperature 1 with a strong repetition penalty, through the scheduler: a
 * seed gives the same tokens every time, other seeds other tokens, no id of the prompt or
 * of the tokens so far comes back (repeat_last_n covers them all), and the tokens are not
 * the greedy ones. */
Test(e2e, seeded_sampling_with_repeat_penalty) {
  clkv_model *m;
  int32_t prompt[10];
  clkv_context *ctx = tiny_context("sample.gguf", &m, prompt, 41, 3);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.top_k = 0, gp.top_p = 1.0f, gp.min_p = 0.0f; /* the whole vocabulary */
  gp.repeat_penalty = 1e6f, gp.repeat_last_n = 64;
  gp.max_tokens = 24;
  collect greedy, run[4], again;
  gp.temperature = 0.0f;
  sample_run(ctx, prompt, &gp, &greedy);
  gp.temperature = 1.0f;
  int differ = 0, from_greedy = 0, total = 0;
  for (int k = 0; k < 4; k++) {
    gp.seed = 1000 + (uint64_t)k;
    sample_run(ctx, prompt, &gp, &run[k]);
    differ += k > 0 && !same_ids(&run[k], &run[0]);
    from_greedy += !same_ids(&run[k], &greedy);
    total += run[k].n;
  }
  gp.seed = 1000;
  sample_run(ctx, prompt, &gp, &again);
  cr_assert(same_ids(&again, &run[0]), "seed 1000 gave other tokens the second time");
  cr_assert_eq(differ, 3, "other seeds gave the same tokens");
  cr_assert_eq(from_greedy, 4, "sampling at temperature 1 gave the greedy tokens");
  cr_assert_gt(total, 16, "the runs ended almost at once (%d tokens in all)", total);
  clkv_context_free(ctx);
  clkv_model_free(m);
}

Test(e2e, real_model_greedy_matches_reference_64_tokens) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  clkv_model *m;
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 256;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  clkv__gguf_file *f;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  ref_model *ref = ref_model_load(f, 256, &err);
  cr_assert(ref, "%s", err.message);
  const char *prompts[] = {
      "The history of the printing press begins",
      "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
      "<|im_start|>user\nName three primary colors.<|im_end|>\n<|im_start|>assistant\n",
  };
  for (int p = 0; p < 3; p++) {
    int32_t ids[128];
    int n = clkv_tokenize(m, prompts[p], 1, ids, 128);
    cr_assert(n > 0 && n < 128);
    int32_t want[64];
    int nw = ref_generate_greedy(ref, ids, n, 64, -1, want);
    cr_assert_eq(nw, 64);
    clkv_gen_params gp = clkv_gen_default_params();
    gp.temperature = 0;
    gp.max_tokens = 64;
    collect c = {.n = 0, .len = 0};
    /* the reference does not stop at EOS: compare up to an end-of-generation token */
    clkv_gen_stats st;
    cr_assert_eq(clkv_generate_ids(ctx, ids, n, &gp, on_tok, &c, &st), CLKV_OK, "%s", clkv_last_error(ctx));
    cr_assert(c.n >= 1);
    int cmp = c.n;
    for (int i = 0; i < cmp; i++)
      cr_assert_eq(c.ids[i], want[i], "prompt %d: token %d differs: %d vs reference %d", p, i,
                   c.ids[i], want[i]);
    if (st.stop_reason != CLKV_STOP_EOS) cr_assert_eq(c.n, 64, "prompt %d: %d tokens", p, c.n);
    cr_log_info("prompt %d: %d tokens equal to the reference", p, cmp);
  }
  ref_model_free(ref);
  clkv__gguf_close(f);
  clkv_context_free(ctx);
  clkv_model_free(m);
}

Test(e2e, real_model_answers_paris) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, NULL, &m, &err), CLKV_OK, "%s", err.message);
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  clkv_chat_message msg = {"user", "What is the capital of France?"};
  char *prompt = clkv_chat_format(m, &msg, 1, 1, &err);
  cr_assert(prompt, "%s", err.message);
  cr_assert(strstr(prompt, "<|im_start|>assistant\n"), "%s", prompt);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 48;
  collect c = {.n = 0, .len = 0};
  clkv_gen_stats st;
  cr_assert_eq(clkv_generate(ctx, prompt, &gp, on_tok, &c, &st), CLKV_OK, "%s", clkv_last_error(ctx));
  cr_log_info("answer: %s", c.text);
  cr_assert(strstr(c.text, "Paris"), "answer without Paris: %s", c.text);
  cr_assert_eq(st.prefill_tokens, st.prompt_tokens);
  free(prompt);
  clkv_context_free(ctx);
  clkv_model_free(m);
}

/* ---- errors ---- */
Test(e2e, prompt_longer_than_context_and_empty_prompt) {
  ref_tiny_params tp = ref_tiny_default();
  char path[400];
  write_tiny(&tp, "tiny.gguf", path, sizeof path);
  const clkv_model_params dp = clkv_model_default_params();
  clkv_model *m = load_tiny(path, dp.kv_block, dp.chunk, 32);
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  clkv_gen_params gp = clkv_gen_default_params();
  char longp[200];
  memset(longp, 'a', 199);
  longp[199] = 0;
  cr_assert_eq(clkv_generate(ctx, longp, &gp, NULL, NULL, NULL), CLKV_ERR_CONTEXT_FULL);
  cr_assert(strstr(clkv_last_error(ctx), "context"), "%s", clkv_last_error(ctx));
  cr_assert_eq(clkv_generate(ctx, "", &gp, NULL, NULL, NULL), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(clkv_last_error(ctx), "empty"), "%s", clkv_last_error(ctx));
  /* generation that runs into the end of the context stops cleanly */
  gp.max_tokens = 100;
  gp.temperature = 0;
  clkv_gen_stats st;
  gp.repeat_penalty = 1000.0f; /* the tiny model would repeat one token; no EOS either */
  cr_assert_eq(clkv_generate(ctx, "abc", &gp, NULL, NULL, &st), CLKV_OK, "%s", clkv_last_error(ctx));
  cr_assert_eq(st.stop_reason, CLKV_STOP_CONTEXT, "%s", clkv_stop_reason_name(st.stop_reason));
  cr_assert_eq(st.generated_tokens, 32 - 3, "the context holds 32 positions, the prompt takes 3");
  clkv_context_free(ctx);
  clkv_model_free(m);
}

/* Copies every metadata key of the kinds the tiny models use into a writer. */
static void copy_metadata(const clkv__gguf_file *f, clkv__gguf_writer *w) {
  for (uint64_t i = 0; i < f->n_kv; i++) {
    const clkv__gguf_kv *kv = &f->kv[i];
    const clkv__gguf_value *v = &kv->value;
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
    switch (v->type) {
    case GGUF_V_UINT32: clkv__gguf_writer_set_u32(w, key, (uint32_t)v->v.u64); break;
    case GGUF_V_INT32: clkv__gguf_writer_set_i32(w, key, (int32_t)v->v.i64); break;
    case GGUF_V_FLOAT32: clkv__gguf_writer_set_f32(w, key, (float)v->v.f64); break;
    case GGUF_V_BOOL: clkv__gguf_writer_set_bool(w, key, (int)v->v.u64); break;
    case GGUF_V_STRING: {
      char *s = strndup(v->v.str.data, v->v.str.len);
      clkv__gguf_writer_set_str(w, key, s);
      free(s);
      break;
    }
    case GGUF_V_ARRAY: {
      size_t n = v->v.arr.n;
      if (v->v.arr.type == GGUF_V_STRING) {
        char **strs = calloc(n ? n : 1, sizeof *strs);
        for (size_t j = 0; j < n; j++)
          strs[j] = strndup(v->v.arr.items[j].v.str.data, v->v.arr.items[j].v.str.len);
        clkv__gguf_writer_set_arr_str(w, key, (const char *const *)strs, n);
        for (size_t j = 0; j < n; j++) free(strs[j]);
        free(strs);
      } else if (v->v.arr.type == GGUF_V_INT32) {
        int32_t *a = malloc(sizeof(int32_t) * (n ? n : 1));
        memcpy(a, v->v.arr.data, sizeof(int32_t) * n);
        clkv__gguf_writer_set_arr_i32(w, key, a, n);
        free(a);
      } else if (v->v.arr.type == GGUF_V_FLOAT32) {
        float *a = malloc(sizeof(float) * (n ? n : 1));
        memcpy(a, v->v.arr.data, sizeof(float) * n);
        clkv__gguf_writer_set_arr_f32(w, key, a, n);
        free(a);
      }
      break;
    }
    default: break;
    }
  }
}

Test(e2e, unsupported_tensor_type_is_named) {
  ref_tiny_params tp = ref_tiny_default();
  char path[400], bad[400];
  write_tiny(&tp, "tiny.gguf", path, sizeof path);
  snprintf(bad, sizeof bad, "%s/q5.gguf", tu_tmpdir);
  /* copy every key and tensor, but store blk.0.attn_q.weight as MXFP4 (raw bytes) */
  clkv__gguf_file *f;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  copy_metadata(f, w);
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    const clkv__gguf_tensor *t = &f->tensors[i];
    if (!strcmp(t->name, "blk.0.attn_q.weight")) {
      size_t nb = clkv__ggml_row_bytes(GGML_T_MXFP4, t->ne[0]) * t->ne[1];
      void *z = calloc(1, nb);
      clkv__gguf_writer_add_tensor(w, t->name, GGML_T_MXFP4, t->n_dims, t->ne, z, nb);
      free(z);
    } else {
      clkv__gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
    }
  }
  cr_assert_eq(clkv__gguf_writer_save(w, bad, &err), CLKV_OK, "%s", err.message);
  clkv__gguf_writer_free(w);
  clkv__gguf_close(f);
  clkv_model *m = NULL;
  clkv_status st = clkv_model_load(tu_rt, bad, NULL, &m, &err);
  cr_assert_eq(st, CLKV_ERR_UNSUPPORTED, "%s", err.message);
  cr_assert_null(m);
  cr_assert(strstr(err.message, "MXFP4") && strstr(err.message, "blk.0.attn_q.weight"), "%s", err.message);
  cr_assert(strstr(err.message, clkv__wtype_names()), "names what runs: %s", err.message);
  clkv_file_info fi;
  cr_assert_eq(clkv_model_inspect(bad, &fi, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(fi.runnable, 0);
}

/* The hyperparameters of a small llama GGUF (one layer, width 32, 2 heads, ff 64, a 32 x 300
 * embedding), with one key changed: set to a number (as F32 when f32) or a string, or
 * dropped; no_embd leaves the embedding tensor out. */
typedef struct meta_edit {
  const char *key;
  double num;
  const char *str;
  int f32, drop;
} meta_edit;

static void put_meta(clkv__gguf_writer *w, const meta_edit *e) {
  if (e->drop) return;
  if (e->str) clkv__gguf_writer_set_str(w, e->key, e->str);
  else if (e->f32) clkv__gguf_writer_set_f32(w, e->key, (float)e->num);
  else clkv__gguf_writer_set_u32(w, e->key, (uint32_t)e->num);
}

static clkv_status hparams_with(const meta_edit *ed, int no_embd, clkv_model_info *info) {
  const meta_edit base[] = {
      {.key = "general.architecture", .str = "llama"}, {.key = "llama.block_count", .num = 1},
      {.key = "llama.embedding_length", .num = 32},   {.key = "llama.feed_forward_length", .num = 64},
      {.key = "llama.attention.head_count", .num = 2},
  };
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  int replaced = 0;
  for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
    const int hit = ed && !strcmp(ed->key, base[i].key);
    replaced |= hit;
    put_meta(w, hit ? ed : &base[i]);
  }
  if (ed && !replaced) put_meta(w, ed);
  static float zeros[32 * 300];
  const uint64_t ne[2] = {32, 300};
  if (!no_embd) clkv__gguf_writer_add_tensor(w, "token_embd.weight", GGML_T_F32, 2, ne, zeros, sizeof zeros);
  size_t size;
  void *data = clkv__gguf_writer_serialize(w, &size);
  clkv__gguf_writer_free(w);
  cr_assert(data);
  clkv__gguf_file *f;
  cr_assert_eq(clkv__gguf_open_memory(data, size, &f, &err), CLKV_OK, "%s", err.message);
  clkv_status st = clkv__model_hparams(f, info, &err);
  clkv__gguf_close(f);
  free(data);
  return st;
}

/* Each check of the model's metadata rejects a file with a message naming the problem. */
Test(e2e, model_metadata_errors_are_named) {
  clkv_model_info info;
  cr_assert_eq(hparams_with(NULL, 0, &info), CLKV_OK, "%s", err.message);
  cr_assert(info.n_layers == 1 && info.n_embd == 32 && info.n_heads == 2 && info.n_kv_heads == 2 &&
            info.head_dim == 16 && info.n_ff == 64 && info.n_vocab == 300 && info.n_ctx_train == 2048);
  const meta_edit window = {.key = "llama.attention.sliding_window", .num = 64};
  cr_assert_eq(hparams_with(&window, 0, &info), CLKV_OK, "%s", err.message);
  cr_assert_eq(info.sliding_window, 64);
  const struct { meta_edit e; int no_embd; clkv_status st; const char *want; } cases[] = {
      {{.key = "general.architecture", .drop = 1}, 0, CLKV_ERR_FORMAT, "no general.architecture"},
      {{.key = "general.architecture", .str = "gpt2"}, 0, CLKV_ERR_UNSUPPORTED, "'gpt2' is not supported"},
      {{.key = "llama.block_count", .drop = 1}, 0, CLKV_ERR_FORMAT, "llama.block_count is missing"},
      {{.key = "llama.embedding_length", .num = 0}, 0, CLKV_ERR_FORMAT, "= 0 is out of range"},
      {{.key = "llama.attention.head_count", .num = 3}, 0, CLKV_ERR_FORMAT, "not a multiple of 3 heads"},
      {{.key = "llama.attention.key_length", .num = 8}, 0, CLKV_ERR_UNSUPPORTED, "key length 8"},
      {{.key = "llama.rope.dimension_count", .num = 8}, 0, CLKV_ERR_UNSUPPORTED, "partial RoPE"},
      {{.key = "llama.attention.head_count_kv", .num = 3}, 0, CLKV_ERR_FORMAT, "multiple of 3 KV heads"},
      {{.key = "llama.rope.scaling.factor", .num = 4, .f32 = 1}, 0, CLKV_ERR_UNSUPPORTED, "RoPE scaling"},
      {{.key = "llama.attention.head_count", .num = 16}, 0, CLKV_ERR_UNSUPPORTED, "head size 2 "},
      {{.key = "general.name", .str = "no embedding"}, 1, CLKV_ERR_FORMAT, "token_embd.weight is missing"},
      {{.key = "llama.embedding_length", .num = 64}, 0, CLKV_ERR_FORMAT, "token_embd.weight is 32x300"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clkv_status st = hparams_with(&cases[i].e, cases[i].no_embd, &info);
    cr_assert_eq(st, cases[i].st, "%s: status %d (%s)", cases[i].e.key, st, err.message);
    cr_assert(strstr(err.message, cases[i].want), "%s: '%s' lacks '%s'", cases[i].e.key,
              err.message, cases[i].want);
  }
}

Test(e2e, unknown_device_is_an_error) {
  clkv_runtime_params p = clkv_runtime_default_params();
  p.device = "no-such-device-xyz";
  clkv_runtime *r2 = NULL;
  cr_assert_eq(clkv_runtime_create(&p, &r2, &err), CLKV_ERR_NO_DEVICE);
  cr_assert_null(r2);
  cr_assert(strlen(err.message) > 0);
}


Test(e2e, cli_errors_are_clear_and_nonzero) {
  char out[8192], args[1100];
  ref_tiny_params tp = ref_tiny_default();
  char path[400];
  write_tiny(&tp, "tiny.gguf", path, sizeof path);
  snprintf(args, sizeof args, "generate -m '%s' --ctx 16 -p 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'", path);
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 1 && strstr(out, "CLKV_ERR_CONTEXT_FULL"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p ''", path);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 1 && strstr(out, "empty"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' --device no-such-device -p hi", path);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 1 && strstr(out, "CLKV_ERR_NO_DEVICE"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s/missing.gguf' -p hi", tu_tmpdir);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 1 && strstr(out, "CLKV_ERR_IO"), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate --temp banana", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--temp"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hello -n 5 --temp 0 --ids", path);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0, "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hello -n 5 --temp 0 --stats --no-prefix-cache "
           "--kv-evict fifo --kv-host-blocks 4 --kv-block 8 --kv-type q8", path);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "[kv] q8,") && strstr(out, "device blocks") &&
            strstr(out, "[host] blocks 0 used, 0 cached, 4 free of 4") &&
            strstr(out, "[tuning] "), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate --kv-type q5", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--kv-type takes"), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate --kv-evict newest", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "lru, lfu or fifo"), "rc %d: %s", rc, out);
  /* --batch-file: a file of prompts, generated together; ids as when each runs alone */
  char pf[420];
  snprintf(pf, sizeof pf, "%s/prompts.txt", tu_tmpdir);
  FILE *fp = fopen(pf, "w");
  cr_assert(fp);
  fputs("hello\n\nworld wide\nabc\n", fp);
  fclose(fp);
  snprintf(args, sizeof args, "generate -m '%s' --batch-file '%s' -n 6 --temp 0 --ids --parallel 2",
           path, pf);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "[0]") && strstr(out, "[1]") && strstr(out, "[2]") &&
            !strstr(out, "[3]"), "rc %d: %s", rc, out);
  char alone[4096];
  snprintf(args, sizeof args, "generate -m '%s' -p 'world wide' -n 6 --temp 0 --ids", path);
  cr_assert_eq(tu_run_cli(args, alone, sizeof alone), 0, "%s", alone);
  alone[strcspn(alone, "\n")] = 0;
  char *trail = alone + strlen(alone);
  while (trail > alone && trail[-1] == ' ') *--trail = 0;
  char *line1 = strstr(out, "[1] ");
  cr_assert(line1 && !strncmp(line1 + 4, alone, strlen(alone)), "batch: %s\nalone: %s", out, alone);
  snprintf(args, sizeof args, "generate -m '%s' --batch-file /nonexistent/prompts.txt", path);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc != 0 && strstr(out, "cannot open"), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate --kv-mem lots", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--kv-mem takes"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hello --kv-mem 1K", path);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc != 0 && strstr(out, "raise --kv-mem"), "rc %d: %s", rc, out);
}

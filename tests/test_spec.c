/* test_spec.c — speculative decoding (host/engine/spec.c): greedy tokens with prompt look-up
 * drafting equal those without, alone and in batches, on a tiny random model and the real
 * one; the KV cache ends in the same state; the speculative sampling rule and whole
 * generations at temperature > 0 follow the target's distribution (chi-square at fixed
 * seeds). The pool's rollback itself is model-checked in test_kv_pool.c. */
#include "engine/sampler.h"
#include "engine/spec.h"
#include "ref/ref.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static clkv_error err;
static void setup(void) { tu_init("spec"); }
static void teardown(void) { tu_fini(); }
TestSuite(spec, .init = setup, .fini = teardown, .timeout = 600);

enum { MAXTOK = 256 };

typedef struct got {
  int32_t ids[MAXTOK];
  int n;
} got;

static int on_id(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  got *g = user;
  if (id >= 0 && g->n < MAXTOK) g->ids[g->n++] = id;
  return 0;
}

static clkv_model *tiny(uint64_t seed) {
  ref_tiny_params tp = ref_tiny_default();
  tp.seed = seed;
  char path[400];
  snprintf(path, sizeof path, "%s/spec%llu.gguf", tu_tmpdir, (unsigned long long)seed);
  cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
  clkv_model_params mp = clkv_model_default_params();
  mp.kv_block = 8;
  mp.chunk = 16;
  mp.n_ctx = 256;
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  return m;
}

static int g_blocks; /* > 0: the device KV blocks of the next contexts */

static clkv_context *context(clkv_model *m, int n_seq) {
  clkv_context_params cp = clkv_context_default_params();
  cp.n_seq_max = n_seq;
  cp.kv_device_blocks = g_blocks;
  clkv_context *c;
  cr_assert_eq(clkv_context_create(m, &cp, &c, &err), CLKV_OK, "%s", err.message);
  return c;
}

/* A prompt that repeats itself (look-up drafting finds its n-grams again). */
static int prompt(int i, int32_t *ids) {
  const int period = 5 + 3 * i, n = 20 + 9 * i;
  for (int j = 0; j < n; j++) ids[j] = (int32_t)((j % period) * (7 + i) + 3 * i + 1) % 250;
  return n;
}

static void assert_same(const got *a, const got *b, const char *what, int i) {
  cr_assert_eq(a->n, b->n, "%s %d: %d tokens, without speculation %d", what, i, a->n, b->n);
  for (int j = 0; j < a->n; j++)
    cr_assert_eq(a->ids[j], b->ids[j], "%s %d: token %d is %d, without speculation %d", what, i,
                 j, a->ids[j], b->ids[j]);
}

/* The cache after a finished generation: nothing referenced, and the same blocks cached and
 * free with or without speculation (rejected drafts leave nothing behind). */
static void assert_same_kv(const clkv_kv_stats *a, const clkv_kv_stats *b) {
  cr_assert_eq(a->device_blocks_used, 0, "%d blocks still referenced", a->device_blocks_used);
  cr_assert_eq(a->device_blocks_cached, b->device_blocks_cached, "cached: %d vs %d",
               a->device_blocks_cached, b->device_blocks_cached);
  cr_assert_eq(a->device_blocks_free, b->device_blocks_free);
  cr_assert_eq(a->prompt_tokens, b->prompt_tokens);
  cr_assert_eq(a->prefix_hit_tokens, b->prefix_hit_tokens);
}

static clkv_gen_params greedy(int n, int ngram) {
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = n;
  gp.lookup_ngram = ngram;
  gp.draft_always = 1; /* every draft found is verified, whatever the timings */
  return gp;
}

Test(spec, lookup_finds_the_latest_continuation) {
  const int32_t h[] = {1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3};
  int32_t out[8];
  cr_assert_eq(clkv__spec_lookup(h, 13, 3, out, 8), 6, "to the end of the history");
  cr_assert(out[0] == 7 && out[1] == 8 && out[2] == 5 && out[3] == 1 && out[5] == 3);
  cr_assert_eq(clkv__spec_lookup(h, 13, 3, out, 2), 2);
  cr_assert_eq(clkv__spec_lookup(h, 13, 4, out, 8), 0, "no earlier 4-gram 3 1 2 3 ... ends it");
  cr_assert_eq(clkv__spec_lookup(h, 13, 1, out, 1), 1);
  cr_assert_eq(out[0], 7, "1-gram: the latest earlier 3 is followed by 7");
  cr_assert_eq(clkv__spec_lookup(h, 3, 3, out, 8), 0);
}

/* Five prompts, each alone, on two tiny models: the same ids with look-up drafting as
 * without, the same KV cache state afterwards, and drafts that were actually verified. */
Test(spec, greedy_lookup_gives_the_same_tokens_alone) {
  int passes = 0, accepted = 0;
  for (uint64_t seed = 1; seed <= 2; seed++) {
    clkv_model *m = tiny(seed);
    for (int i = 0; i < 5; i++) {
      int32_t ids[80];
      const int n = prompt(i, ids);
      got want = {.n = 0}, g = {.n = 0};
      clkv_kv_stats kw, kg;
      clkv_context *c = context(m, 1);
      clkv_gen_params gp = greedy(60, 0);
      cr_assert_eq(clkv_generate_ids(c, ids, n, &gp, on_id, &want, NULL), CLKV_OK);
      clkv_context_kv_stats(c, &kw);
      clkv_context_free(c);
      c = context(m, 1);
      gp = greedy(60, 1 + i % 3);
      clkv_gen_stats st;
      cr_assert_eq(clkv_generate_ids(c, ids, n, &gp, on_id, &g, &st), CLKV_OK, "%s",
                   clkv_last_error(c));
      clkv_context_kv_stats(c, &kg);
      clkv_context_free(c);
      assert_same(&g, &want, "prompt", i);
      assert_same_kv(&kg, &kw);
      cr_assert_leq(st.accepted_tokens, st.drafted_tokens);
      passes += st.spec_passes;
      accepted += st.accepted_tokens;
    }
    clkv_model_free(m);
  }
  cr_assert_gt(passes, 10, "only %d verification passes", passes);
  cr_assert_gt(accepted, 10, "only %d drafts accepted", accepted);
}

/* A batch where every request drafts its own length (and some do not draft) gives each
 * request its solo tokens; also when blocks run short and requests are preempted. */
static void batch_case(int n_seq);
Test(spec, greedy_lookup_gives_the_same_tokens_in_batches) { batch_case(3); }
Test(spec, greedy_lookup_with_preemption_gives_the_same_tokens) {
  g_blocks = 33; /* the 5 sequences (7 to 14 blocks) do not fit together */
  batch_case(5);
  g_blocks = 0;
}

static void batch_case(int n_seq) {
  clkv_model *m = tiny(3);
  enum { N = 5 };
  int32_t ids[N][80];
  got want[N], g[N];
  clkv_request r[N];
  clkv_context *c = context(m, 1);
  for (int i = 0; i < N; i++) {
    const int n = prompt(i, ids[i]);
    want[i] = (got){.n = 0};
    clkv_gen_params gp = greedy(30 + 5 * i, 0);
    cr_assert_eq(clkv_generate_ids(c, ids[i], n, &gp, on_id, &want[i], NULL), CLKV_OK);
    g[i] = (got){.n = 0};
    r[i] = (clkv_request){.ids = ids[i], .n_ids = n, .params = greedy(30 + 5 * i, i % 4),
                          .cb = on_id, .user = &g[i]};
    r[i].params.draft_max = 2 + 3 * i;
  }
  clkv_context_free(c);
  c = context(m, n_seq);
  cr_assert_eq(clkv_generate_batch(c, r, N), CLKV_OK, "%s", clkv_last_error(c));
  int passes = 0;
  for (int i = 0; i < N; i++) {
    cr_assert_eq(r[i].status, CLKV_OK);
    assert_same(&g[i], &want[i], "request", i);
    passes += r[i].stats.spec_passes;
    cr_assert_leq(r[i].stats.drafted_tokens, r[i].stats.spec_passes * (2 + 3 * i));
  }
  cr_assert_gt(passes, 5);
  clkv_kv_stats k;
  clkv_context_kv_stats(c, &k);
  cr_assert_eq(k.device_blocks_used, 0);
  int prompts = 0;
  for (int i = 0; i < N; i++) prompts += r[i].n_ids;
  if (g_blocks) /* a preempted request is recomputed: its prompt is looked up again */
    cr_assert_gt(k.prompt_tokens, (uint64_t)prompts, "no request was preempted");
  clkv_context_free(c);
  clkv_model_free(m);
}

/* ---- the distribution at temperature > 0 ---- */
/* Whether counts[0..n) fit the probabilities p[0..n) (categories expected fewer than 5
 * times are pooled); chi-square against the 0.001 critical value (Wilson–Hilferty). */
static void assert_fits(const int *counts, const double *p, int n, int total, const char *what) {
  double chi = 0, pool_e = 0;
  int pool_o = 0, df = -1;
  for (int i = 0; i < n; i++) {
    const double e = p[i] * total;
    if (e < 5) {
      pool_e += e;
      pool_o += counts[i];
      continue;
    }
    chi += (counts[i] - e) * (counts[i] - e) / e;
    df++;
  }
  if (pool_e > 0) {
    chi += (pool_o - pool_e) * (pool_o - pool_e) / (pool_e > 1 ? pool_e : 1);
    df++;
  }
  cr_assert_gt(df, 0, "%s: too few categories", what);
  const double z = 3.09, a = 2.0 / (9.0 * df), crit = df * pow(1 - a + z * sqrt(a), 3);
  cr_assert_lt(chi, crit, "%s: chi-square %.1f over %d degrees of freedom (0.001 limit %.1f)",
               what, chi, df, crit);
  cr_log_info("%s: chi-square %.1f, %d degrees of freedom (limit %.1f)", what, chi, df, crit);
}

/* softmax(logits / t) */
static void softmax(const float *l, int n, double t, double *p) {
  double mx = l[0], sum = 0;
  for (int i = 1; i < n; i++) mx = l[i] > mx ? l[i] : mx;
  for (int i = 0; i < n; i++) sum += p[i] = exp((l[i] - mx) / t);
  for (int i = 0; i < n; i++) p[i] /= sum;
}

/* The sampler's rule alone: with a point-mass draft (look-up) and with a draft
 * distribution q, the tokens it returns are distributed as the target's p. */
Test(spec, speculative_rule_keeps_the_target_distribution) {
  enum { V = 12, DRAWS = 40000 };
  float logits[V], q[V];
  double p[V], qd[V];
  for (int i = 0; i < V; i++) logits[i] = (float)sin(i * 1.7) * 2.0f;
  for (int i = 0; i < V; i++) q[i] = 0;
  softmax(logits, V, 1.0, p);
  float ql[V];
  for (int i = 0; i < V; i++) ql[i] = (float)cos(i * 0.9) * 1.5f;
  softmax(ql, V, 1.0, qd);
  for (int i = 0; i < V; i++) q[i] = (float)qd[i];
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 1;
  gp.top_k = 0;
  gp.top_p = 1;
  gp.min_p = 0;
  for (int mode = 0; mode < 3; mode++) {
    gp.seed = 100 + (uint64_t)mode;
    clkv__sampler *s = clkv__sampler_new(&gp, V);
    int counts[V] = {0}, acc = 0;
    uint64_t x = 7;
    for (int d = 0; d < DRAWS; d++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      /* the draft: a fixed likely token, a fixed unlikely one, or drawn from q */
      int32_t draft = mode == 0 ? 3 : mode == 1 ? 7 : 0;
      if (mode == 2) {
        double u = (double)(x >> 11) / 9007199254740992.0, cum = 0;
        for (draft = 0; draft < V - 1; draft++)
          if (u < (cum += qd[draft])) break;
      }
      int ok;
      const int32_t t = clkv__sampler_sample_draft(s, logits, NULL, 0, draft,
                                                   mode == 2 ? q : NULL, &ok);
      cr_assert(!ok || t == draft);
      counts[t]++;
      acc += ok;
    }
    clkv__sampler_free(s);
    char what[64];
    snprintf(what, sizeof what, "rule, draft %s (accepted %d)", mode == 2 ? "model" : "look-up", acc);
    assert_fits(counts, p, V, DRAWS, what);
  }
}

/* Whole generations on a tiny model at temperature 8: the second token, verified by
 * speculative sampling when the first token occurred in the prompt (look-up drafts what
 * followed it) or always (a tiny draft model of another seed drafts it, with its own
 * distribution q), is distributed as the target says given the first: the expected counts are
 * the sum over runs of softmax(logits / 8) after the prompt and that run's first token
 * (clkv_seq_eval). */
static void sampled_fit(int with_draft_model) {
  clkv_model *m = tiny(5), *dm = with_draft_model ? tiny(6) : NULL;
  clkv_model_info info;
  clkv_model_get_info(m, &info);
  const int V = info.n_vocab;
  const float T = 8.0f;
  /* 200 distinct tokens: most first tokens occurred in the prompt, so most runs draft */
  int32_t ids[208];
  const int n = 200;
  for (int j = 0; j < n; j++) ids[j] = (j * 37 + 11) % 256;
  clkv_context *c = context(m, 1), *dc = dm ? context(dm, 1) : NULL;
  if (dc) cr_assert_eq(clkv_context_set_draft(c, dc), CLKV_OK, "%s", clkv_last_error(c));
  enum { RUNS = 1500 };
  int *first = calloc((size_t)V, sizeof(int)), *cnt = calloc((size_t)V, sizeof(int));
  int passes = 0, runs = 0;
  for (int r = 0; r < RUNS; r++) {
    clkv_gen_params gp = clkv_gen_default_params();
    gp.temperature = T;
    gp.top_k = 0;
    gp.top_p = 1;
    gp.min_p = 0;
    gp.seed = 1000 + (uint64_t)r;
    gp.max_tokens = 3; /* the pass after the first token drafts one, and may add a bonus */
    gp.lookup_ngram = dm ? 0 : 1;
    gp.draft_max = 1;
    gp.draft_always = 1;
    got g = {.n = 0};
    clkv_gen_stats st;
    cr_assert_eq(clkv_generate_ids(c, ids, n, &gp, on_id, &g, &st), CLKV_OK, "%s", clkv_last_error(c));
    if (g.n < 2) continue; /* the first token ended the text */
    first[g.ids[0]]++;
    cnt[g.ids[1]]++;
    runs++;
    passes += st.spec_passes;
  }
  cr_assert_gt(passes, RUNS / 4, "only %d of %d runs verified a draft", passes, RUNS);
  float *lg = malloc(sizeof(float) * (size_t)V);
  double *p = malloc(sizeof(double) * (size_t)V), *e = calloc((size_t)V, sizeof(double));
  for (int v = 0; v < V; v++) {
    if (!first[v]) continue;
    int seq;
    ids[n] = v;
    cr_assert_eq(clkv_seq_open(c, &seq), CLKV_OK);
    cr_assert_eq(clkv_seq_eval(c, seq, ids, n + 1, 0, lg), CLKV_OK, "%s", clkv_last_error(c));
    clkv_seq_close(c, seq);
    softmax(lg, V, T, p);
    for (int s2 = 0; s2 < V; s2++) e[s2] += first[v] * p[s2] / runs;
  }
  assert_fits(cnt, e, V, runs, dm ? "second token, draft model" : "second token, look-up");
  free(first);
  free(cnt);
  free(lg);
  free(p);
  free(e);
  if (dc) clkv_context_set_draft(c, NULL);
  clkv_context_free(dc);
  clkv_context_free(c);
  clkv_model_free(dm);
  clkv_model_free(m);
}

Test(spec, sampled_tokens_follow_the_target_distribution) { sampled_fit(0); }
Test(spec, sampled_tokens_with_a_draft_model_follow_the_target_distribution) { sampled_fit(1); }

/* The real model: five prompts, greedy, the same ids with look-up drafting. */
Test(spec, real_model_greedy_lookup_matches_plain_decoding) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 512;
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  const char *prompts[] = {
      "The cat sat on the mat. The dog sat on the log. The cat sat on the",
      "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n",
      "<|im_start|>user\nRepeat exactly: the quick brown fox jumps over the lazy dog.<|im_end|>\n"
      "<|im_start|>assistant\n",
      "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
      "Monday, Tuesday, Wednesday, Thursday, Friday. Monday, Tuesday,",
  };
  clkv_context *c = context(m, 1);
  int passes = 0;
  for (int i = 0; i < 5; i++) {
    int32_t ids[128];
    const int n = clkv_tokenize(m, prompts[i], 1, ids, 128);
    cr_assert(n > 0 && n < 128);
    got want = {.n = 0}, g = {.n = 0};
    clkv_gen_params gp = greedy(32, 0);
    cr_assert_eq(clkv_generate_ids(c, ids, n, &gp, on_id, &want, NULL), CLKV_OK);
    gp = greedy(32, 2);
    clkv_gen_stats st;
    cr_assert_eq(clkv_generate_ids(c, ids, n, &gp, on_id, &g, &st), CLKV_OK, "%s", clkv_last_error(c));
    assert_same(&g, &want, "prompt", i);
    passes += st.spec_passes;
  }
  cr_assert_gt(passes, 3);
  clkv_context_free(c);
  clkv_model_free(m);
}

/* ---- a draft model ---- */
/* Five prompts alone and a batch: a tiny draft model (another seed, the same vocabulary)
 * drafting for a tiny target gives the target's own greedy tokens. */
Test(spec, greedy_draft_model_gives_the_same_tokens) {
  clkv_model *m = tiny(1), *dm = tiny(2);
  clkv_context *c = context(m, 3), *dc = context(dm, 3);
  enum { N = 5 };
  int32_t ids[N][80];
  got want[N], g[N];
  clkv_request r[N];
  int passes = 0, accepted = 0;
  for (int i = 0; i < N; i++) {
    const int n = prompt(i, ids[i]);
    want[i] = g[i] = (got){.n = 0};
    clkv_gen_params gp = greedy(40, 0);
    cr_assert_eq(clkv_generate_ids(c, ids[i], n, &gp, on_id, &want[i], NULL), CLKV_OK);
    cr_assert_eq(clkv_context_set_draft(c, dc), CLKV_OK, "%s", clkv_last_error(c));
    gp.draft_max = 1 + i;
    clkv_gen_stats st;
    cr_assert_eq(clkv_generate_ids(c, ids[i], n, &gp, on_id, &g[i], &st), CLKV_OK, "%s",
                 clkv_last_error(c));
    cr_assert_eq(clkv_context_set_draft(c, NULL), CLKV_OK);
    assert_same(&g[i], &want[i], "prompt", i);
    passes += st.spec_passes;
    accepted += st.accepted_tokens;
    g[i] = (got){.n = 0};
    r[i] = (clkv_request){.ids = ids[i], .n_ids = n, .params = greedy(40, 0), .cb = on_id,
                          .user = &g[i]};
    r[i].params.draft_max = 2 + i;
  }
  cr_assert_gt(passes, 20, "only %d verification passes", passes);
  cr_log_info("draft model: %d passes, %d drafts accepted", passes, accepted);
  cr_assert_eq(clkv_context_set_draft(c, dc), CLKV_OK);
  cr_assert_eq(clkv_generate_batch(c, r, N), CLKV_OK, "%s", clkv_last_error(c));
  for (int i = 0; i < N; i++) assert_same(&g[i], &want[i], "batched request", i);
  clkv_kv_stats k;
  clkv_context_kv_stats(c, &k);
  cr_assert_eq(k.device_blocks_used, 0);
  clkv_context_kv_stats(dc, &k);
  cr_assert_eq(k.device_blocks_used, 0, "the draft's sequences were released");
  cr_assert_eq(clkv_context_set_draft(c, NULL), CLKV_OK);
  clkv_context_free(dc);
  clkv_context_free(c);
  clkv_model_free(dm);
  clkv_model_free(m);
}

Test(spec, draft_model_must_share_the_vocabulary) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  clkv_model *m = tiny(1), *big;
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 256;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &big, &err), CLKV_OK, "%s", err.message);
  clkv_context *c = context(m, 1), *dc = context(big, 1);
  cr_assert_eq(clkv_context_set_draft(c, dc), CLKV_ERR_UNSUPPORTED);
  cr_assert(strstr(clkv_last_error(c), "vocabulary"), "%s", clkv_last_error(c));
  cr_assert(strstr(clkv_last_error(c), "49152"), "%s", clkv_last_error(c));
  cr_assert_eq(clkv_context_set_draft(c, c), CLKV_ERR_INVALID_ARG);
  clkv_context_free(dc);
  clkv_context_free(c);
  clkv_model_free(big);
  clkv_model_free(m);
}

/* The command line: --lookup-ngram reports its counts in --stats and --json; a draft model
 * of another vocabulary is refused with the difference named. */
Test(spec, cli_reports_drafts_and_refuses_a_foreign_draft_model) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  static char out[1 << 16], args[1024];
  snprintf(args, sizeof args, "generate -m %s -p 'a b c a b c a b c a b' -n 12 --temp 0 --json "
           "--lookup-ngram 2 --draft-always", path);
  cr_assert_eq(tu_run_cli(args, out, sizeof out), 0, "%s", out);
  cr_assert(strstr(out, "\"spec\"") && strstr(out, "\"acceptance_rate\""), "%s", out);
  snprintf(args, sizeof args, "generate -m %s -p 'a b c a b c a b c a b' -n 12 --temp 0 --stats "
           "--lookup-ngram 2 --draft-always", path);
  cr_assert_eq(tu_run_cli(args, out, sizeof out), 0, "%s", out);
  cr_assert(strstr(out, "[spec] drafted"), "%s", out);
  ref_tiny_params tp = ref_tiny_default();
  char tiny_path[400];
  snprintf(tiny_path, sizeof tiny_path, "%s/foreign.gguf", tu_tmpdir);
  cr_assert_eq(ref_tiny_write(&tp, tiny_path, &err), CLKV_OK, "%s", err.message);
  snprintf(args, sizeof args, "generate -m %s --draft-model %s -p hi -n 2", path, tiny_path);
  cr_assert_neq(tu_run_cli(args, out, sizeof out), 0, "%s", out);
  cr_assert(strstr(out, "vocabulary"), "%s", out);
}

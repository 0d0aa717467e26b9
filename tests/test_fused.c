/* test_fused.c — the fused decode step (kernels/fused.cl, host/engine/fused.c) against the
 * five-launch path it replaces: logits of the same decode steps with decode.path 2 and
 * 1 (real model and tiny models of several weight and KV types), and greedy generation
 * with one PoCL worker thread (a claimed-chunk scheme must not wait for a work-group that
 * never starts) through the CLI in a child process. */
#include "engine/engine.h"
#include "engine/fused.h"
#include "test_util.h"
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static clkv_error err;

static void setup(void) { tu_init("fused"); }
static void teardown(void) { tu_fini(); }

TestSuite(fused, .init = setup, .fini = teardown, .timeout = 600);

static int argmax(const float *a, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (a[i] > a[b]) b = i;
  return b;
}

/* Prefills prompt into ctx, then decodes n_gen greedy steps; logits of each step into
 * out (n_gen rows of V). path: decode.path for the decode steps (2 fused, 1 not) (the prefill is not
 * affected by it). Returns whether the fused path was taken. */
static int decode_steps(clkv_model *m, const int32_t *prompt, int n_prompt, int n_gen,
                        unsigned path, float *out) {
  const int V = m->info.n_vocab;
  const unsigned saved = m->tun.decode_path;
  m->tun.decode_path = path;
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  int seq, cached;
  cr_assert_eq(clkv__seq_start(ctx, prompt, n_prompt, &seq, &cached), CLKV_OK, "%s", ctx->err.message);
  cr_assert_eq(clkv__forward_prefill(ctx, seq, prompt, n_prompt, 1), CLKV_OK, "%s", ctx->err.message);
  for (int s = 0; s < n_gen; s++) {
    int32_t tok = argmax(ctx->h_logits, V);
    cr_assert_eq(clkv__forward_decode(ctx, &seq, &tok, 1), CLKV_OK, "%s", ctx->err.message);
    memcpy(out + (size_t)s * V, ctx->h_logits, sizeof(float) * (size_t)V);
  }
  const int used = clkv__fused_usable(ctx, 1, CLKV__PH_DECODE, 1);
  clkv__seq_end(ctx, seq);
  clkv_context_free(ctx);
  m->tun.decode_path = saved;
  return used;
}

/* Decode with the fused path on and off: the same greedy tokens, logits within
 * tol * (1 + max |off|) (the sums run in another order). */
static void compare_on_off(clkv_model *m, const char *what, float tol) {
  const int V = m->info.n_vocab, n_gen = 8, n_prompt = 21;
  int32_t prompt[21];
  for (int i = 0; i < n_prompt; i++) prompt[i] = (int32_t)((i * 37 + 11) % (V - 2));
  float *on = malloc(sizeof(float) * (size_t)V * n_gen), *off = malloc(sizeof(float) * (size_t)V * n_gen);
  cr_assert(on && off);
  cr_assert(decode_steps(m, prompt, n_prompt, n_gen, 2, on), "%s: the fused path was not taken", what);
  cr_assert_not(decode_steps(m, prompt, n_prompt, n_gen, 1, off), "%s: decode.path 1 took it", what);
  for (int s = 0; s < n_gen; s++) {
    const float *a = on + (size_t)s * V, *b = off + (size_t)s * V;
    float mx = 0, worst = 0;
    for (int i = 0; i < V; i++) mx = fmaxf(mx, fabsf(b[i]));
    for (int i = 0; i < V; i++) worst = fmaxf(worst, fabsf(a[i] - b[i]));
    cr_assert_leq(worst, tol * (1 + mx), "%s step %d: logits differ by %g (max |logit| %g)", what,
                  s, (double)worst, (double)mx);
    cr_assert_eq(argmax(a, V), argmax(b, V), "%s step %d: greedy token differs", what, s);
  }
  free(on);
  free(off);
}

Test(fused, real_model_logits_match_the_five_launch_path) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 256;
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  compare_on_off(m, "real model", 1e-3f);
  clkv_model_free(m);
}

/* Tiny models of each architecture and several weight and KV types, fused on and off. */
static void tiny_models_on_off(const char *dot) {
  static const struct {
    const char *arch;
    uint32_t wtype;
    clkv_kv_type kv;
    int tied, head_dim, window, n_layers;
  } cases[] = {{"llama", GGML_T_Q4_1, CLKV_KV_F16, 0, 0, 0, 2},
               {"llama", GGML_T_Q8_0, CLKV_KV_Q8, 1, 0, 0, 2},
               {"llama", GGML_T_Q4_K, CLKV_KV_Q4, 0, 0, 0, 2},
               {"llama", GGML_T_F16, CLKV_KV_F16, 1, 0, 0, 2},
               /* post-norms, split q/k/v with per-head norms, GeGLU, windowed layers */
               {"gemma3", GGML_T_Q8_0, CLKV_KV_F16, 0, 32, 16, 6},
               {"gemma3", GGML_T_Q4_1, CLKV_KV_Q8, 0, 32, 16, 6},
               {"qwen2", GGML_T_Q4_1, CLKV_KV_F16, 0, 0, 0, 2}, /* q/k/v biases */
               {"qwen3", GGML_T_Q8_0, CLKV_KV_Q4, 0, 32, 0, 2}, /* per-head norms */
               /* Gemma 3 270M's layer types: Q5_0 (an integer dot), Q6_K (super-blocks) */
               {"gemma3", GGML_T_Q5_0, CLKV_KV_F16, 0, 32, 16, 6},
               {"llama", GGML_T_Q6_K, CLKV_KV_F16, 1, 0, 0, 2},
               {"llama", GGML_T_Q5_1, CLKV_KV_F16, 0, 0, 0, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ref_tiny_params tp = ref_tiny_default();
    tp.arch = cases[i].arch;
    tp.wtype = cases[i].wtype;
    tp.tied = cases[i].tied;
    tp.head_dim = cases[i].head_dim;
    tp.sliding_window = cases[i].window;
    tp.n_layers = cases[i].n_layers;
    tp.seed = 77 + i;
    /* the logits in the last fused launch (GPUs' default) for every other case, after it in
     * their own mat-vec (CPUs') for the rest: the tied cases (1, 3, 9) take the first */
    setenv("CLKV_FUSED_LOGITS", i % 2 ? "1" : "0", 1);
    if (clkv__wt_block_elems((int)tp.wtype) > (unsigned)tp.dim)
      tp.dim = tp.n_ff = (int)clkv__wt_block_elems((int)tp.wtype);
    char path[400];
    snprintf(path, sizeof path, "%s/tiny-fused-%zu.gguf", tu_tmpdir, i);
    cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
    clkv_model_params mp = clkv_model_default_params();
    mp.kv_type = cases[i].kv;
    mp.n_ctx = 128;
    clkv_model *m;
    cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
    char what[128];
    snprintf(what, sizeof what, "tiny %s %s kv %s, %s dot, logits %s", cases[i].arch,
             clkv__ggml_type_get(tp.wtype)->name, clkv_kv_type_name(cases[i].kv), dot,
             i % 2 ? "fused" : "apart");
    compare_on_off(m, what, 1e-3f);
    clkv_model_free(m);
  }
  unsetenv("CLKV_FUSED_LOGITS");
}

Test(fused, tiny_models_logits_match_the_five_launch_path) { tiny_models_on_off("float"); }

/* The same with int8 activations (decode.dot 3, PoCL's default; the suites run the float dot,
 * tests/test_util.c): both paths quantize the same inputs, so they agree as closely. (On the
 * real model they do not: a last-bit difference in a value can move its 8-bit rounding, and
 * 30 layers carry that to ~0.3 in a logit, so it is compared on the tiny models only.) */
Test(fused, tiny_models_int8_logits_match_the_five_launch_path) {
  setenv("CLKV_MV_DOT", "3", 1);
  tiny_models_on_off("int8");
}

/* Greedy text of `generate` with decode.path 2 (fused 1) or 1 (fused 0), PoCL's worker
 * threads limited to threads and groups work-groups per fused launch (0: the defaults, one
 * per compute unit = thread), in a child process (PoCL reads the limit at start). */
static void generate_text(const char *model, int f, int threads, int groups, char *out,
                          size_t cap) {
  char args[800], fv[8], tv[8], gv[8];
  snprintf(fv, sizeof fv, "%d", f ? 2 : 1);
  snprintf(tv, sizeof tv, "%d", threads);
  snprintf(gv, sizeof gv, "%d", groups);
  setenv("CLKV_DECODE_PATH", fv, 1);
  if (threads) setenv("POCL_MAX_PTHREAD_COUNT", tv, 1);
  if (groups) setenv("CLKV_FUSED_GROUPS", gv, 1);
  snprintf(args, sizeof args, "generate -m '%s' -p 'The three primary colors are' -n 24 --temp 0",
           model);
  const int rc = tu_run_cli(args, out, cap);
  unsetenv("CLKV_DECODE_PATH");
  unsetenv("POCL_MAX_PTHREAD_COUNT");
  unsetenv("CLKV_FUSED_GROUPS");
  cr_assert_eq(rc, 0, "generate (fused %d, %d threads, %d groups) failed: %s", f, threads,
               groups, out);
}

/* A work-group only waits for chunks another has claimed, never for one to arrive: with one
 * worker thread and four work-groups the first does everything and the rest fall through. */
Test(fused, one_worker_thread_finishes_and_gives_the_same_text) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  static char off[8192], got[8192];
  static const int runs[][2] = {{1, 0}, {1, 4}, {2, 0}, {2, 3}}; /* threads, groups */
  generate_text(path, 0, 1, 0, off, sizeof off);
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    generate_text(path, 1, runs[i][0], runs[i][1], got, sizeof got);
    cr_assert_str_eq(got, off, "%d worker threads, %d work-groups: fused and five-launch text "
                     "differ", runs[i][0], runs[i][1]);
  }
}

/* Steps of synthetic duration: t_max with decode.groups' work-groups, t_one with one. Returns
 * how many ran with one. */
static int feed(clkv_context *ctx, unsigned max, double t_max, double t_one, int steps) {
  int on_one = 0;
  for (int i = 0; i < steps; i++) {
    const unsigned g = clkv__fused_groups(ctx);
    cr_assert(g == 1 || g == max, "%u work-groups (%u or 1 expected)", g, max);
    on_one += g == 1;
    clkv__fused_observe(ctx, g == 1 ? t_one : t_max);
  }
  return on_one;
}

/* The measured choice between one work-group per core and one (host/engine/fused.c): the
 * faster keeps nearly every step, and when the machine changes so that the other is faster,
 * the context follows within a few windows. */
Test(fused, measured_work_groups_keep_the_faster) {
  const char *path = tu_real_model();
  if (!path) cr_skip_test("default model not found (run scripts/setup)");
  if (clkv_runtime_device(tu_rt)->type != CLKV_DEVICE_CPU || getenv("CLKV_FUSED_GROUPS"))
    cr_skip_test("the count is measured on CPU devices without CLKV_FUSED_GROUPS only");
  clkv_model_params mp = clkv_model_default_params();
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  m->tun.decode_path = 2;
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  cr_assert(clkv__fused_usable(ctx, 1, CLKV__PH_DECODE, 1), "the fused path is not taken");
  const unsigned max = clkv__fused_groups(ctx);
  if (max < 2) {
    clkv_context_free(ctx);
    clkv_model_free(m);
    cr_skip_test("one compute unit: nothing to choose");
  }
  /* all work-groups twice as fast: one work-group only on trial, one window in 33 */
  int one = feed(ctx, max, 1e-3, 2e-3, 600);
  cr_assert_lt(one, 600 / 10, "one work-group ran %d of 600 steps though slower", one);
  cr_assert_eq(clkv__fused_groups(ctx), max);
  /* then the other way round: after the switch, the rest mostly on one */
  feed(ctx, max, 3e-3, 2e-3, 60);
  one = feed(ctx, max, 3e-3, 2e-3, 600);
  cr_assert_gt(one, 600 - 600 / 10, "one work-group ran only %d of 600 steps though faster", one);
  clkv_context_free(ctx);
  clkv_model_free(m);
}

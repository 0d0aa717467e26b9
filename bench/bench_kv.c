/* bench_kv.c — `clkv_bench kv`: what the paged KV cache buys.
 *   1. Memory: a mixed-length workload of sequences placed by the real block pool
 *      (host/kv/kv_pool) against a contiguous max-context reservation per sequence.
 *   2. Time to first token for a chat whose long system prompt is already cached, against
 *      the same prompt with the prefix cache off (medians over several questions). */
#include "bench_util.h"
#include "kv/kv_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bench_kv_main(int argc, char **argv);

typedef struct kv_opts {
  const char *model;
  int json, quick, n_seqs, n_ctx;
} kv_opts;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* Places n_seqs sequences of mixed lengths (most short, a few long: length = 32 +
 * (n_ctx - 32) * u^3) in a pool and reports the bytes their blocks take. */
static clkv_status memory_case(const kv_opts *o, const clkv_model_info *mi, int block,
                               double *paged, double *contiguous, double *tokens) {
  const double per_token = 2.0 * mi->n_layers * mi->n_kv_heads * mi->head_dim * 2.0; /* K+V, F16 */
  clkv__kv_pool_params p = clkv__kv_pool_default_params();
  p.block_tokens = block;
  p.max_seqs = o->n_seqs;
  p.max_blocks_per_seq = (o->n_ctx + block - 1) / block;
  p.n_device_blocks = p.max_blocks_per_seq * o->n_seqs;
  p.bytes_per_block = (size_t)(per_token * block);
  clkv__kv_pool *pool;
  clkv_error err;
  clkv_status st = clkv__kv_pool_create(&p, &pool, &err);
  if (st) {
    fprintf(stderr, "bench kv: %s\n", err.message);
    return st;
  }
  int32_t *toks = malloc(sizeof(int32_t) * (size_t)o->n_ctx);
  if (!toks) {
    clkv__kv_pool_free(pool);
    return CLKV_ERR_NO_MEMORY;
  }
  rng = 0x9E3779B97F4A7C15ULL;
  double total = 0;
  for (int s = 0; s < o->n_seqs && !st; s++) {
    double u = urand();
    int len = 32 + (int)((o->n_ctx - 32) * u * u * u);
    for (int i = 0; i < len; i++) toks[i] = (int32_t)(s * 7919 + i);
    int id;
    if (!(st = clkv__kv_seq_new(pool, &id, &err))) st = clkv__kv_seq_append(pool, id, toks, len, &err);
    if (!st) clkv__kv_seq_commit(pool, id);
    total += len;
  }
  clkv__kv_pool_stats ks;
  clkv__kv_pool_stats_get(pool, &ks);
  *paged = (double)ks.bytes_used[CLKV_KV_TIER_DEVICE];
  *contiguous = per_token * o->n_ctx * o->n_seqs;
  *tokens = total;
  free(toks);
  clkv__kv_pool_free(pool);
  if (st) fprintf(stderr, "bench kv: %s\n", err.message);
  return st;
}

static double median_ttft(clkv_context *ctx, clkv_model *m, const char *system, int first_q,
                          int n_q, int *prefilled) {
  static const char *questions[] = {
      "What is the capital of France?", "Name a primary color.", "How many legs has a spider?",
      "What is 12 times 12?", "Which planet is the largest?", "What language is spoken in Peru?",
      "What is the boiling point of water?", "Who wrote Hamlet?"};
  double t[8];
  for (int i = 0; i < n_q; i++) {
    clkv_chat_message msgs[2] = {{"system", system}, {"user", questions[(first_q + i) % 8]}};
    clkv_error err;
    char *prompt = clkv_chat_format(m, msgs, 2, 1, &err);
    if (!prompt) return -1;
    clkv_gen_params gp = clkv_gen_default_params();
    gp.temperature = 0;
    gp.max_tokens = 1;
    clkv_gen_stats st;
    clkv_status s = clkv_generate(ctx, prompt, &gp, NULL, NULL, &st);
    free(prompt);
    if (s) {
      fprintf(stderr, "bench kv: %s\n", clkv_last_error(ctx));
      return -1;
    }
    t[i] = st.ttft_ms;
    *prefilled = st.prefill_tokens;
  }
  return bench_median(t, n_q);
}

int bench_kv_main(int argc, char **argv) {
  kv_opts o = {.model = NULL, .json = 0, .quick = 0, .n_seqs = 64, .n_ctx = 2048};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) o.json = 1;
    else if (!strcmp(argv[i], "--quick")) o.quick = 1;
    else if (!strcmp(argv[i], "-m") && i + 1 < argc) o.model = argv[++i];
    else {
      fprintf(stderr, "usage: clkv_bench kv [-m MODEL] [--json] [--quick]\n");
      return !strcmp(argv[i], "--help") ? 0 : 2;
    }
  }
  if (!o.model) o.model = getenv("CLKV_MODEL");
  if (!o.model) o.model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  clkv_file_info fi;
  clkv_error err;
  err.message[0] = 0;
  if (clkv_model_inspect(o.model, &fi, &err)) {
    fprintf(stderr, "bench kv: %s\n", err.message);
    return 1;
  }
  bench_json j;
  if (o.json) bench_json_begin(&j, stdout);
  else printf("KV memory: %d sequences of mixed length (context %d), %s\n", o.n_seqs, o.n_ctx, o.model);
  const int blocks[3] = {8, 16, 32};
  for (int b = 0; b < 3; b++) {
    double paged, contiguous, tokens;
    if (memory_case(&o, &fi.model, blocks[b], &paged, &contiguous, &tokens)) return 1;
    if (o.json) {
      char key[32];
      snprintf(key, sizeof key, "memory_block_%d", blocks[b]);
      bench_json_object(&j, key);
      bench_json_num(&j, "tokens", tokens);
      bench_json_num(&j, "paged_bytes", paged);
      bench_json_num(&j, "contiguous_bytes", contiguous);
      bench_json_num(&j, "paged_over_contiguous", paged / contiguous);
      bench_json_close(&j);
    } else {
      printf("  block %2d: %8.0f tokens, paged %8.1f MiB, contiguous %8.1f MiB, ratio %.3f\n",
             blocks[b], tokens, paged / 1048576.0, contiguous / 1048576.0, paged / contiguous);
    }
  }

  /* TTFT with a cached long system prompt */
  clkv_runtime *rt = NULL;
  clkv_model *m = NULL;
  clkv_context *on = NULL, *off = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  int rc = 1;
  if (clkv_runtime_create(&rp, &rt, &err) || clkv_model_load(rt, o.model, NULL, &m, &err)) {
    fprintf(stderr, "bench kv: %s\n", err.message);
    goto out;
  }
  clkv_context_params cp = clkv_context_default_params();
  if (clkv_context_create(m, &cp, &on, &err)) goto out;
  cp.prefix_cache = 0;
  if (clkv_context_create(m, &cp, &off, &err)) goto out;
  char system[4096] = "";
  const char *para = "You are the help desk of a large public library. Answer questions about "
                     "opening hours, lending rules, fees, events and the catalogue politely, "
                     "briefly and accurately. ";
  for (int i = 0; i < (o.quick ? 4 : 12); i++) strncat(system, para, sizeof system - strlen(system) - 1);
  const int n_q = o.quick ? 3 : 5;
  int pre_on = 0, pre_off = 0;
  median_ttft(on, m, system, 7, 1, &pre_on); /* warms the cache (and the kernels) */
  double t_off = median_ttft(off, m, system, 0, n_q, &pre_off);
  double t_on = median_ttft(on, m, system, 0, n_q, &pre_on);
  if (t_on < 0 || t_off < 0) goto out;
  clkv_kv_stats ks;
  clkv_context_kv_stats(on, &ks);
  if (o.json) {
    bench_json_object(&j, "ttft_cached_system_prompt");
    bench_json_num(&j, "ttft_ms_cached", t_on);
    bench_json_num(&j, "ttft_ms_uncached", t_off);
    bench_json_num(&j, "cached_over_uncached", t_on / t_off);
    bench_json_num(&j, "prefilled_tokens_cached", pre_on);
    bench_json_num(&j, "prefilled_tokens_uncached", pre_off);
    bench_json_num(&j, "prefix_hit_rate", ks.prompt_tokens ? (double)ks.prefix_hit_tokens / ks.prompt_tokens : 0);
    bench_json_close(&j);
    bench_json_end(&j);
  } else {
    printf("TTFT, chat with a cached system prompt (median of %d questions)\n", n_q);
    printf("  prefix cache on : %7.1f ms (prefilled %d tokens)\n", t_on, pre_on);
    printf("  prefix cache off: %7.1f ms (prefilled %d tokens)\n", t_off, pre_off);
    printf("  ratio on/off    : %7.3f; prefix hit rate %.2f\n", t_on / t_off,
           ks.prompt_tokens ? (double)ks.prefix_hit_tokens / ks.prompt_tokens : 0.0);
  }
  rc = 0;
out:
  if (rc && err.message[0]) fprintf(stderr, "bench kv: %s\n", err.message);
  clkv_context_free(on);
  clkv_context_free(off);
  clkv_model_free(m);
  clkv_runtime_free(rt);
  return rc;
}

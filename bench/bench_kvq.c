/* bench_kvq.c — `clkv_bench kvq`: what Q8 and Q4 KV precision cost in memory and quality.
 * A fixed English text is fed token by token (teacher forcing) through the default model
 * with an F16, a Q8 and a Q4 KV cache; at every position the next-token distributions are
 * compared with F16's: top-1 agreement and mean KL(F16 || Q). Memory is the device bytes
 * the cache's blocks take per token, read from the KV statistics. */
#include "bench_util.h"
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bench_kvq_main(int argc, char **argv);

static const char *const kText =
    "The river rises in the hills above the town and runs for forty miles to the sea. In "
    "the spring the melting snow fills it to the top of its banks, and the old stone bridge "
    "has been closed twice in the last ten years because the water came over the road. The "
    "town council has asked the engineers for a plan to raise the bridge, but the cost is "
    "high and the work would take two summers. Meanwhile the farmers on the east bank say "
    "that a new bridge further north would serve them better, since their markets are in "
    "the next valley. Nobody has yet decided which plan to follow, and the question will be "
    "put to a vote at the meeting in October, after the harvest is in.";

/* Log-softmax of l (n values) into out, in double. */
static void log_softmax(const float *l, int n, double *out) {
  double m = -INFINITY, s = 0;
  for (int i = 0; i < n; i++) m = fmax(m, l[i]);
  for (int i = 0; i < n; i++) s += exp((double)l[i] - m);
  const double ls = log(s) + m;
  for (int i = 0; i < n; i++) out[i] = (double)l[i] - ls;
}

static int argmax(const float *a, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (a[i] > a[b]) b = i;
  return b;
}

/* Runs the text with one KV type; logits (n_pos, vocab) into *out (malloc'd). */
static clkv_status run_type(clkv_runtime *rt, const char *path, clkv_kv_type t, const int32_t *ids,
                            int n, float **out, double *bytes_per_token, double *ms,
                            clkv_error *err) {
  clkv_model_params mp = clkv_model_default_params();
  mp.kv_type = t;
  mp.max_seqs = 1;
  clkv_model *m = NULL;
  clkv_context *c = NULL;
  clkv_status st = clkv_model_load(rt, path, &mp, &m, err);
  if (!st) st = clkv_context_create(m, NULL, &c, err);
  if (st) goto done;
  const int V = m->info.n_vocab;
  float *L = malloc(sizeof(float) * (size_t)n * (size_t)V);
  if (!L) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
    goto done;
  }
  int seq, cached;
  if ((st = clkv__seq_start(c, ids, 1, &seq, &cached)) ||
      (st = clkv__forward_prefill(c, seq, ids, 1, 1))) {
    *err = c->err;
    free(L);
    goto done;
  }
  memcpy(L, c->h_logits, sizeof(float) * (size_t)V);
  const double t0 = bench_now_s();
  for (int i = 1; i < n; i++) {
    if ((st = clkv__forward_decode(c, &seq, &ids[i], 1))) {
      *err = c->err;
      free(L);
      goto done;
    }
    memcpy(L + (size_t)i * V, c->h_logits, sizeof(float) * (size_t)V);
  }
  *ms = (bench_now_s() - t0) * 1000.0 / (n > 1 ? n - 1 : 1);
  clkv_kv_stats ks;
  clkv_context_kv_stats(c, &ks);
  *bytes_per_token = (double)ks.device_bytes_used / (double)n; /* whole blocks, as allocated */
  clkv__seq_end(c, seq);
  *out = L;
done:
  clkv_context_free(c);
  clkv_model_free(m);
  return st;
}

int bench_kvq_main(int argc, char **argv) {
  const char *model = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
    else {
      fprintf(stderr, "usage: clkv_bench kvq [-m MODEL] [--json]\n");
      return !strcmp(argv[i], "--help") ? 0 : 2;
    }
  }
  if (!model) model = getenv("CLKV_MODEL");
  if (!model) model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  clkv_error err;
  err.message[0] = 0;
  clkv_runtime *rt = NULL;
  clkv_model *m = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  float *L[3] = {NULL, NULL, NULL};
  double *a = NULL, *b = NULL;
  int32_t ids[512];
  int rc = 1;
  if (clkv_runtime_create(&rp, &rt, &err) || clkv_model_load(rt, model, NULL, &m, &err)) goto out;
  const int n = clkv_tokenize(m, kText, 1, ids, 512);
  const int V = m->info.n_vocab;
  clkv_model_free(m);
  m = NULL;
  if (n < 2 || n > 512) {
    snprintf(err.message, sizeof err.message, "the text has %d tokens", n);
    goto out;
  }
  double bpt[3], ms[3];
  for (int t = 0; t < 3; t++)
    if (run_type(rt, model, (clkv_kv_type)t, ids, n, &L[t], &bpt[t], &ms[t], &err)) goto out;
  a = malloc(sizeof(double) * (size_t)V);
  b = malloc(sizeof(double) * (size_t)V);
  if (!a || !b) goto out;
  bench_json j;
  if (json) bench_json_begin(&j, stdout);
  else printf("KV precision: %d tokens of fixed text, teacher-forced, against F16 KV (%s)\n", n, model);
  for (int t = 0; t < 3; t++) {
    int agree = 0;
    double kl = 0;
    for (int p = 0; p < n; p++) {
      const float *f = L[0] + (size_t)p * V, *q = L[t] + (size_t)p * V;
      agree += argmax(f, V) == argmax(q, V);
      log_softmax(f, V, a);
      log_softmax(q, V, b);
      double s = 0;
      for (int i = 0; i < V; i++) s += exp(a[i]) * (a[i] - b[i]);
      kl += s;
    }
    const char *name = clkv_kv_type_name((clkv_kv_type)t);
    if (json) {
      bench_json_object(&j, name);
      bench_json_num(&j, "tokens", n);
      bench_json_num(&j, "bytes_per_token", bpt[t]);
      bench_json_num(&j, "memory_vs_f16", bpt[t] / bpt[0]);
      bench_json_num(&j, "top1_agreement", (double)agree / n);
      bench_json_num(&j, "mean_kl", kl / n);
      bench_json_num(&j, "decode_ms_per_token", ms[t]);
      bench_json_close(&j);
    } else {
      printf("  %-3s: %8.0f bytes/token (%.3f of F16), top-1 agreement %.3f, mean KL %.5f nats, "
             "decode %.1f ms/token\n", name, bpt[t], bpt[t] / bpt[0], (double)agree / n, kl / n,
             ms[t]);
    }
  }
  if (json) bench_json_end(&j);
  rc = 0;
out:
  if (rc && err.message[0]) fprintf(stderr, "bench kvq: %s\n", err.message);
  for (int t = 0; t < 3; t++) free(L[t]);
  free(a);
  free(b);
  clkv_model_free(m);
  clkv_runtime_free(rt);
  return rc;
}

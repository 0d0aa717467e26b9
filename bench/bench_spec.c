/* bench_spec.c — `clkv_bench spec`: decode tokens/s with and without speculative decoding
 * by prompt look-up, on tasks that repeat their prompt (a function rewritten with renamed
 * variables; a paragraph quoted, then summarized), and with --draft-model for a draft
 * model drafting for -m's model (e.g. the default Q4_1 file drafting for its Q8_0
 * re-quantization by `clkv quantize`). Greedy, so both runs must give the same tokens
 * (checked); also the acceptance rate and mean accepted length. Medians of --reps runs
 * after a warm-up. */
#include "bench_util.h"

#include <stdlib.h>
#include <string.h>

int bench_spec_main(int argc, char **argv);

typedef struct task {
  const char *name, *text;
} task;

static const task kTasks[] = {
    {"rewrite",
     "Rewrite this Python function with the variable `total` renamed to `acc` and `items` "
     "renamed to `values`. Output only the code.\n\n"
     "def summarize(items, limit):\n"
     "    total = 0\n"
     "    count = 0\n"
     "    for item in items:\n"
     "        if item is None:\n"
     "            continue\n"
     "        if total + item > limit:\n"
     "            break\n"
     "        total = total + item\n"
     "        count = count + 1\n"
     "    average = total / count if count else 0\n"
     "    return total, count, average\n"},
    {"quote",
     "Read this paragraph:\n\n"
     "The river rises in the hills above the town and runs for forty miles to the sea. In the "
     "spring the melting snow fills it to the top of its banks, and the old stone bridge has "
     "been closed twice in the last ten years because the water came over the road. The town "
     "council has asked the engineers for a plan to raise the bridge, but the cost is high and "
     "the work would take two summers.\n\n"
     "Summarize it in two sentences, quoting its first sentence word for word."},
};

typedef struct run {
  double tok_s;        /* decode tokens/s: tokens after the first over the decode time */
  int n, drafted, accepted, passes;
  int32_t ids[1024];
} run;

static int on_id(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  run *r = user;
  if (id >= 0 && r->n < 1024) r->ids[r->n++] = id;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* reps greedy generations of prompt (ngram 0: no speculation); the median tokens/s. */
static int g_always; /* --always: draft_always, no cost model */

static clkv_status measure(clkv_context *c, const char *prompt, int n_tok, int ngram,
                           int draft_max, int reps, run *out) {
  double ts[16];
  for (int k = 0; k < reps; k++) {
    clkv_gen_params gp = clkv_gen_default_params();
    gp.temperature = 0;
    gp.max_tokens = n_tok;
    gp.lookup_ngram = ngram;
    gp.draft_max = draft_max;
    gp.draft_always = g_always;
    clkv_gen_stats st;
    memset(out, 0, sizeof *out);
    clkv_status s = clkv_generate(c, prompt, &gp, on_id, out, &st);
    if (s) return s;
    ts[k] = st.decode_ms > 0 ? (st.generated_tokens - 1) * 1000.0 / st.decode_ms : 0;
    out->drafted = st.drafted_tokens;
    out->accepted = st.accepted_tokens;
    out->passes = st.spec_passes;
  }
  qsort(ts, (size_t)reps, sizeof ts[0], cmp_double);
  out->tok_s = ts[reps / 2];
  return CLKV_OK;
}

static void report(bench_json *j, int json, const char *name, const run *a, const run *b) {
  const int same = a->n == b->n && !memcmp(a->ids, b->ids, sizeof(int32_t) * (size_t)a->n);
  const double rate = b->drafted ? (double)b->accepted / b->drafted : 0;
  const double mal = b->passes ? (double)b->accepted / b->passes : 0;
  if (!json) {
    printf("%-14s %6d %10.2f %10.2f %7.2fx %8d %8d %7.1f%% %6.2f %s\n", name, b->n, a->tok_s,
           b->tok_s, a->tok_s > 0 ? b->tok_s / a->tok_s : 0, b->drafted, b->accepted,
           100 * rate, mal, same ? "yes" : "NO");
    return;
  }
  bench_json_object(j, name);
  bench_json_num(j, "tokens", b->n);
  bench_json_num(j, "plain_tok_s", a->tok_s);
  bench_json_num(j, "spec_tok_s", b->tok_s);
  bench_json_num(j, "speedup", a->tok_s > 0 ? b->tok_s / a->tok_s : 0);
  bench_json_num(j, "drafted", b->drafted);
  bench_json_num(j, "accepted", b->accepted);
  bench_json_num(j, "passes", b->passes);
  bench_json_num(j, "acceptance_rate", rate);
  bench_json_num(j, "mean_accepted_length", mal);
  bench_json_num(j, "same_tokens", same);
  bench_json_close(j);
}

static int usage(FILE *f, int rc) {
  fprintf(f, "usage: clkv_bench spec [-m MODEL] [--draft-model FILE] [-n TOKENS (128)] "
             "[--lookup-ngram N (3)] [--draft-max N (0: auto)] [--always] [--reps R (1)] [--json]\n");
  return rc;
}

int bench_spec_main(int argc, char **argv) {
  const char *model = NULL, *draft = NULL;
  int json = 0, always = 0, n_tok = 128, ngram = 3, draft_max = 0, reps = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--always")) always = 1;
    else if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
    else if (!strcmp(argv[i], "--draft-model") && i + 1 < argc) draft = argv[++i];
    else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_tok = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--lookup-ngram") && i + 1 < argc) ngram = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--draft-max") && i + 1 < argc) draft_max = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else return usage(!strcmp(argv[i], "--help") ? stdout : stderr, !strcmp(argv[i], "--help") ? 0 : 2);
  }
  if (n_tok < 2 || n_tok > 1000 || ngram < 1 || reps < 1 || reps > 16 || draft_max < 0)
    return usage(stderr, 2);
  g_always = always;
  if (!model) model = getenv("CLKV_MODEL");
  if (!model) model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  clkv_error err;
  err.message[0] = 0;
  clkv_runtime *rt = NULL;
  clkv_model *m = NULL, *dm = NULL;
  clkv_context *c = NULL, *dc = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  clkv_model_params mp = clkv_model_default_params();
  mp.max_seqs = 1;
  int rc = 1;
  if (clkv_runtime_create(&rp, &rt, &err) || clkv_model_load(rt, model, &mp, &m, &err) ||
      clkv_context_create(m, NULL, &c, &err))
    goto out;
  if (draft && (clkv_model_load(rt, draft, &mp, &dm, &err) || clkv_context_create(dm, NULL, &dc, &err)))
    goto out;
  const int n_sources = draft ? 2 : 1;
  bench_json j;
  if (json) bench_json_begin(&j, stdout);
  else printf("%-14s %6s %10s %10s %8s %8s %8s %8s %6s %s\n", "task", "tokens", "plain t/s",
              "spec t/s", "speedup", "drafted", "accepted", "rate", "mean", "same");
  for (size_t t = 0; t < 2 * sizeof kTasks / sizeof kTasks[0]; t++) {
    const int pair = (int)(t / (sizeof kTasks / sizeof kTasks[0]));
    if (pair >= n_sources) break;
    const task *tk = &kTasks[t % (sizeof kTasks / sizeof kTasks[0])];
    char name[32];
    snprintf(name, sizeof name, "%s%s", tk->name, pair ? "+draft" : "");
    const clkv_chat_message msg = {"user", tk->text};
    char *prompt = clkv_chat_format(m, &msg, 1, 1, &err);
    run *a = calloc(2, sizeof *a);
    clkv_status st = prompt && a ? CLKV_OK : CLKV_ERR_NO_MEMORY;
    if (!st && t == 0) st = measure(c, prompt, 8, ngram, draft_max, 1, &a[0]); /* warm-up */
    if (!st) st = measure(c, prompt, n_tok, 0, 0, reps, &a[0]);
    if (!st && pair && (st = clkv_context_set_draft(c, dc)))
      fprintf(stderr, "clkv_bench spec: %s\n", clkv_last_error(c));
    if (!st) st = measure(c, prompt, n_tok, pair ? 0 : ngram, draft_max, reps, &a[1]);
    if (pair) clkv_context_set_draft(c, NULL);
    if (!st) report(&j, json, name, &a[0], &a[1]);
    free(a);
    free(prompt);
    if (st) {
      fprintf(stderr, "clkv_bench spec: %s: %s\n", name, clkv_last_error(c));
      goto out;
    }
  }
  if (json) bench_json_end(&j);
  rc = 0;
out:
  if (rc && err.message[0]) fprintf(stderr, "clkv_bench spec: %s\n", err.message);
  clkv_context_free(c);
  clkv_context_free(dc);
  clkv_model_free(dm);
  clkv_model_free(m);
  clkv_runtime_free(rt);
  return rc;
}

/* test_sched.c — the step-level scheduler (clkv_sched) on a tiny random model: requests
 * that join a running batch, cancel, log-probabilities, and submitters on other threads
 * give the tokens each request gets alone and leave no KV block behind. */
#include "ref/ref.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>

static clkv_error err;
static void setup(void) { tu_init("sched"); }
static void teardown(void) { tu_fini(); }
TestSuite(sched, .init = setup, .fini = teardown, .timeout = 300);

enum { MAXTOK = 64 };

/* What one request received through its events. */
typedef struct got {
  int32_t ids[MAXTOK];
  int n, dones, bad_logprobs;
  clkv_stop_reason reason;
  clkv_status status;
} got;

static int on_event(void *user, const clkv_token_event *ev) {
  got *g = user;
  if (ev->done) {
    g->dones++;
    g->reason = ev->stats->stop_reason;
    g->status = ev->status;
    return 0;
  }
  if (ev->id < 0) return 0;
  if (g->n < MAXTOK) g->ids[g->n++] = ev->id;
  /* greedy: the token is the most likely one, the list is sorted, log-probabilities <= 0 */
  if (!(ev->logprob <= 0) || (ev->n_top && ev->top_ids[0] != ev->id)) g->bad_logprobs++;
  for (int k = 1; k < ev->n_top; k++)
    if (ev->top_logprobs[k] > ev->top_logprobs[k - 1]) g->bad_logprobs++;
  if (ev->n_top && fabsf(ev->top_logprobs[0] - ev->logprob) > 1e-5f) g->bad_logprobs++;
  return 0;
}

static int on_id(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  got *g = user;
  if (id >= 0 && g->n < MAXTOK) g->ids[g->n++] = id;
  return 0;
}

static clkv_model *tiny(void) {
  ref_tiny_params tp = ref_tiny_default();
  char path[400];
  snprintf(path, sizeof path, "%s/sched.gguf", tu_tmpdir);
  cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
  clkv_model_params mp = clkv_model_default_params();
  mp.kv_block = 8;
  mp.chunk = 16;
  mp.n_ctx = 128;
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  return m;
}

static clkv_context *context(clkv_model *m, int n_seq) {
  clkv_context_params cp = clkv_context_default_params();
  cp.n_seq_max = n_seq;
  clkv_context *c;
  cr_assert_eq(clkv_context_create(m, &cp, &c, &err), CLKV_OK, "%s", err.message);
  return c;
}

enum { N = 4 };
static int32_t prompts[N][40];
static const int lens[N] = {12, 30, 5, 21}, gen[N] = {20, 9, 25, 14};

static clkv_request request(int i, got *g, int logprobs) {
  for (int j = 0; j < 40; j++) prompts[i][j] = (int32_t)((j * (i + 3) * 7 + i * 11 + 1) % 250);
  clkv_request r = {.ids = prompts[i], .n_ids = lens[i], .params = clkv_gen_default_params(),
                    .on_event = on_event, .user = g};
  r.params.temperature = 0;
  r.params.max_tokens = gen[i];
  r.params.logprobs = logprobs;
  return r;
}

/* Each request alone through clkv_generate_ids: the tokens the scheduler must give. */
static void solo(clkv_model *m, got *want) {
  clkv_context *c = context(m, 1);
  for (int i = 0; i < N; i++) {
    clkv_request r = request(i, &want[i], 0);
    want[i] = (got){.n = 0};
    cr_assert_eq(clkv_generate_ids(c, r.ids, r.n_ids, &r.params, on_id, &want[i], NULL), CLKV_OK);
  }
  clkv_context_free(c);
}

static void assert_idle(clkv_sched *s) {
  clkv_kv_stats k;
  clkv_sched_kv_stats(s, &k);
  cr_assert_eq(k.device_blocks_used, 0, "%d KV blocks still referenced", k.device_blocks_used);
  int w, r;
  clkv_sched_counts(s, &w, &r);
  cr_assert_eq(w + r, 0);
}

Test(sched, requests_joining_a_running_batch_get_their_solo_tokens) {
  clkv_model *m = tiny();
  got want[N], g[N] = {{.n = 0}};
  solo(m, want);
  clkv_context *c = context(m, 3);
  clkv_sched *s;
  cr_assert_eq(clkv_sched_create(c, &s), CLKV_OK);
  clkv_request r[N];
  for (int i = 0; i < N; i++) r[i] = request(i, &g[i], i % 2 ? 5 : 0);
  int active = 1, steps = 0, max_running = 0;
  for (int i = 0; i < 2; i++) cr_assert_eq(clkv_sched_submit(s, &r[i], NULL), CLKV_OK);
  for (; active && steps < 500; steps++) {
    if (steps == 3 || steps == 7) cr_assert_eq(clkv_sched_submit(s, &r[steps == 3 ? 2 : 3], NULL), CLKV_OK);
    cr_assert_eq(clkv_sched_step(s, &active), CLKV_OK, "%s", clkv_last_error(c));
    int running;
    clkv_sched_counts(s, NULL, &running);
    if (running > max_running) max_running = running;
    if (steps < 7) active = 1;
  }
  cr_assert_lt(steps, 500);
  cr_assert_geq(max_running, 2);
  for (int i = 0; i < N; i++) {
    cr_assert_eq(g[i].dones, 1, "request %d: %d done events", i, g[i].dones);
    cr_assert_eq(g[i].status, CLKV_OK);
    cr_assert_eq(g[i].n, want[i].n, "request %d: %d tokens, alone %d", i, g[i].n, want[i].n);
    for (int j = 0; j < g[i].n; j++) cr_assert_eq(g[i].ids[j], want[i].ids[j], "request %d token %d", i, j);
    cr_assert_eq(g[i].bad_logprobs, 0, "request %d: inconsistent log-probabilities", i);
  }
  assert_idle(s);
  clkv_sched_free(s);
  clkv_context_free(c);
  clkv_model_free(m);
}

Test(sched, cancel_frees_blocks_and_bad_prompts_are_refused) {
  clkv_model *m = tiny();
  clkv_context *c = context(m, 2);
  clkv_sched *s;
  cr_assert_eq(clkv_sched_create(c, &s), CLKV_OK);
  got g[2] = {{.n = 0}};
  clkv_request a = request(1, &g[0], 0), b = request(3, &g[1], 0);
  a.params.max_tokens = b.params.max_tokens = 60;
  uint64_t ida, idb;
  cr_assert_eq(clkv_sched_submit(s, &a, &ida), CLKV_OK);
  cr_assert_eq(clkv_sched_submit(s, &b, &idb), CLKV_OK);
  for (int i = 0; i < 5; i++) cr_assert_eq(clkv_sched_step(s, NULL), CLKV_OK);
  clkv_kv_stats k;
  clkv_sched_kv_stats(s, &k);
  cr_assert_gt(k.device_blocks_used, 0);
  clkv_sched_cancel(s, ida);
  clkv_sched_cancel(s, idb);
  clkv_sched_cancel(s, 12345); /* unknown: ignored */
  int active;
  cr_assert_eq(clkv_sched_step(s, &active), CLKV_OK);
  cr_assert_eq(active, 0);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(g[i].dones, 1);
    cr_assert_eq(g[i].reason, CLKV_STOP_CANCELLED);
    cr_assert_lt(g[i].n, 60);
  }
  assert_idle(s);
  clkv_sched_kv_stats(s, &k);
  cr_assert_gt(k.device_blocks_cached, 0, "the full prompt blocks stay in the prefix cache");
  clkv_request empty = request(0, &g[0], 0), huge = request(0, &g[0], 0);
  empty.n_ids = 0;
  huge.n_ids = 128;
  cr_assert_eq(clkv_sched_submit(s, &empty, NULL), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(clkv_sched_submit(s, &huge, NULL), CLKV_ERR_CONTEXT_FULL);
  clkv_sched_free(s);
  clkv_context_free(c);
  clkv_model_free(m);
}

/* Submitters on their own threads while this thread runs the engine loop. */
typedef struct submitter {
  clkv_sched *s;
  clkv_request r;
  got g;
} submitter;

static void *submit_thread(void *arg) {
  submitter *t = arg;
  return clkv_sched_submit(t->s, &t->r, NULL) ? arg : NULL;
}

Test(sched, submitters_on_other_threads) {
  clkv_model *m = tiny();
  got want[N];
  solo(m, want);
  clkv_context *c = context(m, 4);
  clkv_sched *s;
  cr_assert_eq(clkv_sched_create(c, &s), CLKV_OK);
  submitter t[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    t[i] = (submitter){.s = s, .g = {.n = 0}};
    t[i].r = request(i, &t[i].g, 0);
    cr_assert_eq(pthread_create(&th[i], NULL, submit_thread, &t[i]), 0);
  }
  int finished = 0;
  for (int steps = 0; finished < N && steps < 2000; steps++) {
    int active;
    cr_assert_eq(clkv_sched_step(s, &active), CLKV_OK);
    if (!active) clkv_sched_wait(s, 10);
    finished = 0;
    for (int i = 0; i < N; i++) finished += t[i].g.dones;
  }
  for (int i = 0; i < N; i++) {
    void *rv;
    pthread_join(th[i], &rv);
    cr_assert_null(rv);
    cr_assert_eq(t[i].g.dones, 1);
    cr_assert_eq(t[i].g.n, want[i].n);
    for (int j = 0; j < want[i].n; j++) cr_assert_eq(t[i].g.ids[j], want[i].ids[j]);
  }
  assert_idle(s);
  clkv_sched_free(s);
  clkv_context_free(c);
  clkv_model_free(m);
}

/* generate.c — the public generation API: requests go to a scheduler that runs them in
 * steps (continuous batching, preemption when blocks run out): prefill in chunks, then one
 * decode token of every running request per step, sampled on the host and streamed as
 * complete UTF-8 text to a callback, until end-of-generation, a stop string, the token
 * limit or the callback stops it (the tokenizer and chat-template entry points: text_api.c).
 * Requests with drafts verify them in passes of their own (spec.c). */
#include "engine/engine.h"
#include "engine/spec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

clkv_gen_params clkv_gen_default_params(void) {
  return (clkv_gen_params){
      .max_tokens = 128,
      .temperature = 0.8f,
      .top_k = 40,
      .top_p = 0.95f,
      .min_p = 0.05f,
      .repeat_penalty = 1.0f,
      .repeat_last_n = 64,
      .seed = 42,
      .add_special = 1,
      .stop = NULL,
      .lookup_ngram = 0,
      .draft_max = 0,
      .draft_min = 1,
      .draft_always = 0,
  };
}

const char *clkv_stop_reason_name(clkv_stop_reason reason) {
  switch (reason) {
  case CLKV_STOP_LENGTH: return "length";
  case CLKV_STOP_EOS: return "eos";
  case CLKV_STOP_STRING: return "stop_string";
  case CLKV_STOP_CANCELLED: return "cancelled";
  case CLKV_STOP_CONTEXT: return "context";
  }
  return "unknown";
}

/* ---- the scheduler: continuous batching with preemption ----
 * A batch runs in steps (batch_step): swapped requests come back, waiting ones are admitted
 * (prompt prefilled, first token sampled), then every running request decodes one token,
 * the youngest being preempted when blocks run out. Requests may join between steps
 * (batch_add) and leave when done (batch_reap). */
typedef struct batch {
  clkv_context *ctx;
  clkv__stream **g; /* (n, cap) every request not yet reaped, in submission order */
  int n, cap;
  clkv__stream **order; /* (n_order) admission order of running/swapped requests */
  int n_order;
  int keep;        /* keep the (single) request's sequence in ctx->kept_seq */
  int idle;        /* steps in a row that decoded nothing */
  /* the decode step being assembled: request, its sequence and its pending token */
  clkv__stream **step_req;  /* (n_seq_max) */
  int *step_seq;            /* (n_seq_max) */
  int32_t *step_tok;        /* (n_seq_max) */
  int n_step;
  /* requests verifying drafts this step (each its own pass), and their logit rows */
  clkv__stream **spec_req;  /* (n_seq_max) */
  int n_spec;
  float *spec_rows;         /* (spec_cap) drafts + 1 rows of n_vocab logits */
  size_t spec_cap;
} batch;

static int n_live(const batch *b) { return b->n_order; }

static void order_remove(batch *b, const clkv__stream *g) {
  for (int k = 0; k < b->n_order; k++)
    if (b->order[k] == g) {
      memmove(b->order + k, b->order + k + 1, sizeof(void *) * (size_t)(b->n_order - k - 1));
      b->n_order--;
      return;
    }
}

/* Finishes request g: its sequence is kept for the next call (reuse_last) or released. */
static void end_request(batch *b, clkv__stream *g) {
  if (g->seq >= 0 && b->keep) b->ctx->kept_seq = g->seq;
  else if (g->seq >= 0) clkv__seq_end(b->ctx, g->seq);
  g->seq = -1;
  order_remove(b, g);
  clkv__stream_finish(b->ctx, g);
}

/* Handles the result of stream_step for request g: finished, continuing, or failed. */
static clkv_status after_step(batch *b, clkv__stream *g, int r) {
  if (r < 0) return (clkv_status)r;
  if (r == 1) end_request(b, g);
  else g->state = CLKV__RQ_RUNNING;
  return CLKV_OK;
}

/* Prefills request g (its prompt, or after a recompute preemption its history without the
 * pending token) and, for a new request, samples its first token. CLKV_ERR_CONTEXT_FULL: no
 * room now; the request stays waiting. */
static clkv_status admit_request(batch *b, clkv__stream *g) {
  clkv_context *ctx = b->ctx;
  const int fresh = g->r->stats.generated_tokens == 0;
  const int n = fresh ? g->n_hist : g->n_hist - 1;
  const int chunk = ctx->m->params.chunk;
  int seq, cached;
  const double t0 = clkv__now_ms();
  clkv_status st = CLKV_OK;
  if (g->reuse_seq >= 0) { /* continues the kept sequence */
    seq = g->reuse_seq;
    cached = g->reuse_len;
    g->reuse_seq = -1;
  } else if ((st = clkv__seq_start(ctx, g->hist, n, &seq, &cached))) {
    return st;
  }
  int done = 0;
  for (int pos = cached; pos < n && !st; pos += chunk) {
    const int len = n - pos < chunk ? n - pos : chunk;
    st = clkv__forward_prefill(ctx, seq, g->hist + pos, len, fresh && pos + len == n);
    done += len;
  }
  if (st) {
    clkv__seq_end(ctx, seq);
    return st;
  }
  g->r->stats.prefill_tokens += done;
  g->seq = seq;
  b->order[b->n_order++] = g;
  g->state = CLKV__RQ_RUNNING;
  if (!fresh) return CLKV_OK;
  clkv__spec_admit(ctx, g);
  g->t_prefill = clkv__now_ms();
  g->r->stats.prefill_ms += g->t_prefill - t0;
  g->launches0 = ctx->m->rt->launches;
  return after_step(b, g, clkv__stream_step(ctx, g, ctx->h_logits));
}

/* Admits waiting requests in order while sequence slots and blocks last. A request that
 * cannot run even with nothing else holding memory fails alone. */
static clkv_status admit_waiting(batch *b) {
  for (int i = 0; i < b->n && n_live(b) < b->ctx->n_seq_max; i++) {
    clkv__stream *g = b->g[i];
    if (g->state != CLKV__RQ_WAITING) continue;
    const clkv_status s = admit_request(b, g);
    if (s == CLKV_ERR_CONTEXT_FULL && n_live(b) > 0) break; /* retry when others finish */
    if (s == CLKV_ERR_CONTEXT_FULL || s == CLKV_ERR_INVALID_ARG) {
      g->r->status = s;
      clkv__stream_finish(b->ctx, g);
      continue;
    }
    if (s) return s;
  }
  return CLKV_OK;
}

/* Swaps preempted requests back in, oldest first. Returns 1 when one is still out (no
 * room yet): then nothing is admitted, or the swapped request would starve. */
static int resume_swapped(batch *b) {
  for (int k = 0; k < b->n_order; k++) {
    clkv__stream *g = b->order[k];
    clkv_error e;
    if (g->state != CLKV__RQ_SWAPPED) continue;
    if (clkv__kv_seq_swap_in(b->ctx->pool, g->seq, &e)) return 1;
    g->state = CLKV__RQ_RUNNING;
  }
  return 0;
}

static int in_step(const batch *b, const clkv__stream *g) {
  for (int j = 0; j < b->n_step; j++)
    if (b->step_req[j] == g) return 1;
  for (int j = 0; j < b->n_spec; j++)
    if (b->spec_req[j] == g) return 1;
  return 0;
}

/* Makes room by preempting the most recently admitted running request not yet in the
 * decode step: swapped to the host tier when it has room, else its blocks are released
 * and it is recomputed later (its full blocks stay in the prefix cache). Returns 0 when
 * there was no one to preempt. */
static int preempt_youngest(batch *b) {
  for (int k = b->n_order - 1; k >= 0; k--) {
    clkv__stream *g = b->order[k];
    if (g->state != CLKV__RQ_RUNNING || in_step(b, g)) continue;
    clkv_error e;
    if (b->ctx->n_host_blocks && !clkv__kv_seq_swap_out(b->ctx->pool, g->seq, &e)) {
      g->state = CLKV__RQ_SWAPPED;
      return 1;
    }
    clkv__seq_end(b->ctx, g->seq);
    clkv__spec_release(b->ctx, g); /* its draft sequence too: the slot may be needed */
    g->seq = -1;
    g->state = CLKV__RQ_WAITING;
    order_remove(b, g);
    return 1;
  }
  return 0;
}

/* Reserves the next position of every running request, oldest first, and lists it in the
 * step; when blocks run out the youngest request not yet in the step is preempted
 * (possibly the one asking, which then sits this step out). */
static clkv_status reserve_step(batch *b) {
  b->n_step = b->n_spec = 0;
  for (int k = 0; k < b->n_order; k++) {
    clkv__stream *g = b->order[k];
    if (g->state != CLKV__RQ_RUNNING) continue;
    if (clkv__spec_plan(b->ctx, g)) { /* drafts reserved: verified in a pass of its own */
      b->spec_req[b->n_spec++] = g;
      continue;
    }
    clkv_status s;
    while ((s = clkv__decode_reserve(b->ctx, g->seq, g->pending)) == CLKV_ERR_CONTEXT_FULL &&
           preempt_youngest(b) && g->state == CLKV__RQ_RUNNING) {
    }
    if (g->state == CLKV__RQ_WAITING) k--; /* it left the order: the next one moved to k */
    if (g->state != CLKV__RQ_RUNNING) continue;
    if (s) return s;
    b->step_req[b->n_step] = g;
    b->step_seq[b->n_step] = g->seq;
    b->step_tok[b->n_step++] = g->pending;
  }
  return CLKV_OK;
}

/* The decode step: one forward pass over the reserved tokens, then each request samples,
 * streams its text and finishes or goes on; then each request with drafts verifies them. */
static clkv_status decode_step(batch *b) {
  clkv_context *ctx = b->ctx;
  const double t0 = clkv__now_ms();
  clkv_status st = b->n_step
      ? clkv__forward_decode_reserved(ctx, b->step_seq, b->step_tok, b->n_step) : CLKV_OK;
  const double ms = clkv__now_ms() - t0;
  for (int j = 0; j < b->n_step && !st; j++) {
    const float *logits = ctx->h_logits + (size_t)j * ctx->m->info.n_vocab;
    clkv__spec_decode_time(b->step_req[j], ms);
    st = after_step(b, b->step_req[j], clkv__stream_step(ctx, b->step_req[j], logits));
  }
  for (int j = 0; j < b->n_spec && !st; j++)
    st = after_step(b, b->spec_req[j],
                    clkv__spec_verify(ctx, b->spec_req[j], &b->spec_rows, &b->spec_cap));
  b->n_spec = 0;
  return st;
}

/* A step that decoded nothing: the batch is done when no request waits or is swapped out;
 * three such steps in a row (nothing admitted, resumed or decoded) are an error. */
static clkv_status idle_step(batch *b, int *done) {
  int left = 0;
  for (int i = 0; i < b->n; i++)
    left += b->g[i]->state == CLKV__RQ_WAITING || b->g[i]->state == CLKV__RQ_SWAPPED;
  if (!left) {
    *done = 1;
    return CLKV_OK;
  }
  if (++b->idle > 2)
    return clkv__err(&b->ctx->err, CLKV_ERR_CONTEXT_FULL,
                     "the KV cache cannot hold the waiting sequences (%s); raise --kv-mem or "
                     "lower --ctx", b->ctx->err.message);
  return CLKV_OK;
}

/* Stops the requests whose cancel flag is set: their blocks are freed now. */
static void apply_cancels(batch *b) {
  for (int i = 0; i < b->n; i++) {
    clkv__stream *g = b->g[i];
    if (!g->cancel || g->state == CLKV__RQ_DONE) continue;
    g->r->stats.stop_reason = CLKV_STOP_CANCELLED;
    if (g->seq >= 0) clkv__seq_end(b->ctx, g->seq);
    g->seq = -1;
    order_remove(b, g);
    clkv__stream_finish(b->ctx, g);
  }
}

/* One scheduler step: cancels, swapped requests come back, waiting ones are admitted, then
 * one decode token for every running request. *done when every request has finished. */
static clkv_status batch_step(batch *b, int *done) {
  clkv_status st;
  *done = 0;
  apply_cancels(b);
  if (!resume_swapped(b) && (st = admit_waiting(b))) return st;
  if ((st = reserve_step(b))) return st;
  if (b->n_step == 0 && b->n_spec == 0) return idle_step(b, done);
  b->idle = 0;
  return decode_step(b);
}

/* Takes the context's kept sequence (reuse_last) for g: a single kept request whose prompt
 * starts with all its tokens continues it; otherwise it is released. */
static void take_kept_sequence(batch *b, clkv__stream *g) {
  clkv_context *ctx = b->ctx;
  if (ctx->kept_seq < 0) return;
  const int len = clkv__kv_seq_len(ctx->pool, ctx->kept_seq);
  const int32_t *t = clkv__kv_seq_tokens(ctx->pool, ctx->kept_seq);
  const clkv_request *r = g->r;
  if (b->keep && g->state == CLKV__RQ_WAITING && len > 0 && len < r->n_ids && t &&
      !memcmp(t, r->ids, sizeof(int32_t) * (size_t)len)) {
    g->reuse_seq = ctx->kept_seq;
    g->reuse_len = len;
  } else {
    clkv__seq_end(ctx, ctx->kept_seq);
  }
  ctx->kept_seq = -1;
}

static clkv_status batch_init(batch *b, clkv_context *ctx, int keep) {
  *b = (batch){.ctx = ctx, .keep = keep};
  b->step_req = malloc(sizeof(void *) * (size_t)ctx->n_seq_max);
  b->step_seq = malloc(sizeof(int) * (size_t)ctx->n_seq_max);
  b->step_tok = malloc(sizeof(int32_t) * (size_t)ctx->n_seq_max);
  b->spec_req = malloc(sizeof(void *) * (size_t)ctx->n_seq_max);
  if (!b->step_req || !b->step_seq || !b->step_tok || !b->spec_req)
    return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  return CLKV_OK;
}

/* Adds request r (a bad one is kept, finished at once, with r->status saying why).
 * CLKV_ERR_NO_MEMORY when it could not be added. */
static clkv_status batch_add(batch *b, clkv_request *r, double t0, clkv__stream **out) {
  if (b->n == b->cap) {
    const int cap = b->cap ? 2 * b->cap : 16;
    clkv__stream **g = realloc(b->g, sizeof(void *) * (size_t)cap);
    if (g) b->g = g;
    clkv__stream **o = realloc(b->order, sizeof(void *) * (size_t)cap);
    if (o) b->order = o;
    if (!g || !o) return clkv__err(&b->ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
    b->cap = cap;
  }
  clkv__stream *g = calloc(1, sizeof *g);
  if (!g) return clkv__err(&b->ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  b->g[b->n++] = g;
  if (out) *out = g;
  if (clkv__stream_init(b->ctx, g, r, t0)) {
    if (r->status == CLKV_ERR_NO_MEMORY) return CLKV_ERR_NO_MEMORY;
    g->state = CLKV__RQ_DONE;
  }
  return CLKV_OK;
}

/* Releases request i's sequence and stream; st (a failure of the batch) becomes its status
 * when it had not finished. */
static void batch_drop(batch *b, int i, clkv_status st) {
  clkv__stream *g = b->g[i];
  if (g->reuse_seq >= 0) clkv__seq_end(b->ctx, g->reuse_seq); /* never admitted */
  if (g->seq >= 0) clkv__seq_end(b->ctx, g->seq);
  clkv__spec_release(b->ctx, g);
  order_remove(b, g);
  if (st && g->r->status == CLKV_OK && g->state != CLKV__RQ_DONE) g->r->status = st;
  clkv__stream_free(g);
  free(g);
  memmove(b->g + i, b->g + i + 1, sizeof(void *) * (size_t)(b->n - i - 1));
  b->n--;
}

/* Sends the done event of every finished request and forgets it. */
static void batch_reap(batch *b) {
  for (int i = 0; i < b->n; i++)
    if (b->g[i]->state == CLKV__RQ_DONE) {
      clkv__stream_done(b->g[i]); /* before batch_drop frees it */
      batch_drop(b, i--, CLKV_OK);
    }
}

/* Releases every request the batch still holds (with status st when not finished; each
 * gets its done event) and the batch's arrays. */
static void batch_free(batch *b, clkv_status st) {
  while (b->n > 0) {
    clkv__stream *g = b->g[0];
    if (st && g->r->status == CLKV_OK && g->state != CLKV__RQ_DONE) g->r->status = st;
    clkv__stream_done(g);
    batch_drop(b, 0, st);
  }
  free(b->g);
  free(b->order);
  free(b->step_req);
  free(b->step_seq);
  free(b->step_tok);
  free(b->spec_req);
  free(b->spec_rows);
}

/* Runs every request to completion; see clkv_generate_batch. */
static clkv_status run_batch(clkv_context *ctx, clkv_request *reqs, int n, double t0, int keep) {
  batch b;
  clkv_status st = batch_init(&b, ctx, keep && n == 1);
  for (int i = 0; i < n && !st; i++) st = batch_add(&b, &reqs[i], t0, NULL);
  if (!st && b.n > 0) take_kept_sequence(&b, b.g[0]);
  else if (ctx->kept_seq >= 0) {
    clkv__seq_end(ctx, ctx->kept_seq);
    ctx->kept_seq = -1;
  }
  int done = 0;
  while (!st && !done) st = batch_step(&b, &done);
  batch_free(&b, st);
  return st;
}

/* ---- clkv_sched: the batch above, fed between steps from other threads ---- */
typedef struct inbox_item {
  clkv_request *r;
  uint64_t id;
  double t0;       /* submitted at: TTFT counts from here */
} inbox_item;

struct clkv_sched {
  batch b;                   /* engine thread only */
  pthread_mutex_t mu;        /* guards everything below */
  pthread_cond_t cv;         /* signalled on submit and cancel */
  inbox_item *in;            /* (n_in, cap_in) submitted, not yet in the batch */
  int n_in, cap_in;
  uint64_t *cancel;          /* (n_cancel, cap_cancel) ids to cancel at the next step */
  int n_cancel, cap_cancel;
  uint64_t next_id;
  int waiting, running;      /* as of the last step */
  clkv_kv_stats kv;          /* as of the last step */
};

clkv_status clkv_sched_create(clkv_context *ctx, clkv_sched **out) {
  if (!ctx || !out) return CLKV_ERR_INVALID_ARG;
  clkv_sched *s = calloc(1, sizeof *s);
  if (!s) return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  clkv_status st = batch_init(&s->b, ctx, 0);
  if (st || pthread_mutex_init(&s->mu, NULL)) goto fail;
  if (pthread_cond_init(&s->cv, NULL)) {
    pthread_mutex_destroy(&s->mu);
    goto fail;
  }
  if (ctx->kept_seq >= 0) clkv__seq_end(ctx, ctx->kept_seq);
  ctx->kept_seq = -1;
  s->next_id = 1;
  clkv_context_kv_stats(ctx, &s->kv);
  *out = s;
  return CLKV_OK;
fail:
  batch_free(&s->b, CLKV_OK);
  free(s);
  return st ? st : clkv__err(&ctx->err, CLKV_ERR_INTERNAL, "cannot create a mutex");
}

/* Engine thread: moves submitted requests into the batch and marks cancelled ones. */
static clkv_status take_inbox(clkv_sched *s) {
  clkv_status st = CLKV_OK;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->n_in && !st; i++) {
    clkv__stream *g = NULL;
    st = batch_add(&s->b, s->in[i].r, s->in[i].t0, &g);
    if (g) g->id = s->in[i].id;
  }
  s->n_in = 0;
  for (int k = 0; k < s->n_cancel; k++)
    for (int i = 0; i < s->b.n; i++)
      if (s->b.g[i]->id == s->cancel[k]) s->b.g[i]->cancel = 1;
  s->n_cancel = 0;
  pthread_mutex_unlock(&s->mu);
  return st;
}

/* Engine thread: the counts and KV statistics other threads read. */
static void publish(clkv_sched *s) {
  int waiting = 0, running = 0;
  for (int i = 0; i < s->b.n; i++) {
    const int state = s->b.g[i]->state;
    waiting += state == CLKV__RQ_WAITING || state == CLKV__RQ_SWAPPED;
    running += state == CLKV__RQ_RUNNING;
  }
  clkv_kv_stats kv;
  clkv_context_kv_stats(s->b.ctx, &kv);
  pthread_mutex_lock(&s->mu);
  s->waiting = waiting + s->n_in;
  s->running = running;
  s->kv = kv;
  pthread_mutex_unlock(&s->mu);
}

clkv_status clkv_sched_step(clkv_sched *s, int *active) {
  if (!s) return CLKV_ERR_INVALID_ARG;
  batch *b = &s->b;
  int done = 0;
  clkv_status st = take_inbox(s);
  if (!st) st = batch_step(b, &done);
  if (st) { /* a device failure: every request ends with it */
    for (int i = 0; i < b->n; i++) b->g[i]->cancel = 1;
    apply_cancels(b);
    for (int i = 0; i < b->n; i++) b->g[i]->r->status = st;
  }
  batch_reap(b);
  publish(s);
  if (active) *active = b->n;
  return st;
}

clkv_status clkv_sched_submit(clkv_sched *s, clkv_request *r, uint64_t *id) {
  if (!s || !r || r->n_ids <= 0 || !r->ids) return CLKV_ERR_INVALID_ARG;
  if (r->n_ids >= s->b.ctx->m->n_ctx) return CLKV_ERR_CONTEXT_FULL;
  clkv_status st = CLKV_OK;
  pthread_mutex_lock(&s->mu);
  if (s->n_in == s->cap_in) {
    const int cap = s->cap_in ? 2 * s->cap_in : 16;
    inbox_item *in = realloc(s->in, sizeof *in * (size_t)cap);
    if (in) s->in = in, s->cap_in = cap;
    else st = CLKV_ERR_NO_MEMORY;
  }
  if (!st) {
    s->in[s->n_in++] = (inbox_item){.r = r, .id = s->next_id, .t0 = clkv__now_ms()};
    if (id) *id = s->next_id;
    s->next_id++;
    s->waiting++;
    pthread_cond_signal(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

void clkv_sched_cancel(clkv_sched *s, uint64_t id) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  if (s->n_cancel == s->cap_cancel) {
    const int cap = s->cap_cancel ? 2 * s->cap_cancel : 16;
    uint64_t *c = realloc(s->cancel, sizeof *c * (size_t)cap);
    if (c) s->cancel = c, s->cap_cancel = cap;
  }
  if (s->n_cancel < s->cap_cancel) s->cancel[s->n_cancel++] = id;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

void clkv_sched_wait(clkv_sched *s, int timeout_ms) {
  if (!s) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&s->mu);
  if (!s->n_in && !s->n_cancel) pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  pthread_mutex_unlock(&s->mu);
}

void clkv_sched_counts(clkv_sched *s, int *waiting, int *running) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  if (waiting) *waiting = s->waiting;
  if (running) *running = s->running;
  pthread_mutex_unlock(&s->mu);
}

void clkv_sched_kv_stats(clkv_sched *s, clkv_kv_stats *out) {
  if (!s || !out) return;
  pthread_mutex_lock(&s->mu);
  *out = s->kv;
  pthread_mutex_unlock(&s->mu);
}

void clkv_sched_free(clkv_sched *s) {
  if (!s) return;
  take_inbox(s);
  for (int i = 0; i < s->b.n; i++) s->b.g[i]->cancel = 1;
  apply_cancels(&s->b);
  batch_free(&s->b, CLKV_OK);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s->in);
  free(s->cancel);
  free(s);
}

clkv_status clkv_generate_batch(clkv_context *ctx, clkv_request *reqs, int n) {
  if (!ctx || (!reqs && n) || n < 0) return CLKV_ERR_INVALID_ARG;
  if (n == 0) return CLKV_OK;
  return run_batch(ctx, reqs, n, clkv__now_ms(), 0);
}

clkv_status clkv_generate(clkv_context *ctx, const char *prompt, const clkv_gen_params *p,
                          clkv_token_cb cb, void *user, clkv_gen_stats *stats) {
  if (!ctx || !prompt) return CLKV_ERR_INVALID_ARG;
  clkv_gen_params gp = p ? *p : clkv_gen_default_params();
  /* Every token covers at least one byte, except BOS and a SentencePiece space prefix, so
   * this capacity is nearly always enough and the prompt is tokenized once. */
  int cap = (int)strlen(prompt) + 8;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
  if (!ids) return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  int n = clkv_tokenize(ctx->m, prompt, gp.add_special, ids, cap);
  if (n > cap) {
    int32_t *more = realloc(ids, sizeof(int32_t) * (size_t)n);
    if (!more) {
      free(ids);
      return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
    }
    ids = more;
    n = clkv_tokenize(ctx->m, prompt, gp.add_special, ids, n);
  }
  if (n < 0) {
    free(ids);
    return clkv__err(&ctx->err, (clkv_status)n, "the prompt could not be tokenized");
  }
  clkv_status st = clkv_generate_ids(ctx, ids, n, &gp, cb, user, stats);
  free(ids);
  return st;
}

clkv_status clkv_generate_ids(clkv_context *ctx, const int32_t *ids, int n_ids,
                              const clkv_gen_params *p, clkv_token_cb cb, void *user,
                              clkv_gen_stats *stats) {
  if (!ctx || (!ids && n_ids)) return CLKV_ERR_INVALID_ARG;
  clkv_request r = {.ids = ids, .n_ids = n_ids, .params = p ? *p : clkv_gen_default_params(),
                    .cb = cb, .user = user};
  clkv_status st = run_batch(ctx, &r, 1, clkv__now_ms(), ctx->params.reuse_last);
  if (stats) *stats = r.stats;
  return st ? st : r.status;
}

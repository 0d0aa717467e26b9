/* generate.c — the public generation API: requests go to a scheduler that runs them in
 * steps (continuous batching, preemption when blocks run out): prefill in chunks, then one
 * decode token of every running request per step, sampled on the host and streamed as
 * complete UTF-8 text to a callback, until end-of-generation, a stop string, the token
 * limit or the callback stops it. Also the tokenizer and chat-template entry points. */
#include "engine/engine.h"
#include "engine/sampler.h"

#include <stdlib.h>
#include <string.h>

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

int clkv_tokenize(const clkv_model *m, const char *text, int add_special, int32_t *ids, int cap) {
  if (!m || !text) return CLKV_ERR_INVALID_ARG;
  int bos = add_special && clkv__tokenizer_add_bos(m->tok);
  return clkv__tokenizer_encode(m->tok, text, strlen(text), bos, 1, ids, cap);
}

const char *clkv_token_text(const clkv_model *m, int32_t id, size_t *len) {
  size_t l = 0;
  const char *s = m ? clkv__tokenizer_piece(m->tok, id, 0, &l) : "";
  if (len) *len = l;
  return s;
}

char *clkv_chat_format(const clkv_model *m, const clkv_chat_message *msgs, size_t n,
                       int add_assistant_prefix, clkv_error *err) {
  if (!m || (!msgs && n)) {
    clkv__err(err, CLKV_ERR_INVALID_ARG, "model and messages are required");
    return NULL;
  }
  return clkv__chat_render(m->chat, msgs, n, add_assistant_prefix, m->bos_text, m->eos_text,
                           m->default_system, err);
}

/* Text held back because it could be the start of a stop string. */
typedef struct text_out {
  char *buf;         /* all generated text */
  size_t len, cap;
  size_t emitted;    /* bytes of buf already given to the callback */
} text_out;

static int text_append(text_out *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    while (cap < t->len + n + 1) cap *= 2;
    char *b = realloc(t->buf, cap);
    if (!b) return -1;
    t->buf = b;
    t->cap = cap;
  }
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = 0;
  return 0;
}

/* Finds the earliest stop string in the text; returns its offset or -1. Sets *safe to the
 * number of bytes that can be emitted (no stop string can start before it). */
static long find_stop(const text_out *t, const char *const *stop, size_t *safe) {
  *safe = t->len;
  if (!stop) return -1;
  long hit = -1;
  for (int i = 0; stop[i]; i++) {
    size_t sl = strlen(stop[i]);
    if (!sl) continue;
    const char *p = strstr(t->buf + (t->emitted > sl ? t->emitted - sl : 0), stop[i]);
    if (p && (hit < 0 || p - t->buf < hit)) hit = p - t->buf;
    /* a suffix of the text that is a prefix of the stop string must wait */
    for (size_t k = sl - 1; k > 0; k--)
      if (k <= t->len && !memcmp(t->buf + t->len - k, stop[i], k)) {
        if (t->len - k < *safe) *safe = t->len - k;
        break;
      }
  }
  return hit;
}

static int emit(text_out *t, size_t upto, int32_t id, clkv_token_cb cb, void *user) {
  int r = 0;
  if (cb) r = cb(user, id, t->buf + t->emitted, upto > t->emitted ? upto - t->emitted : 0);
  if (upto > t->emitted) t->emitted = upto;
  return r;
}

/* ---- one request: its sampler, history, text and statistics ---- */
enum { RQ_WAITING, RQ_RUNNING, RQ_SWAPPED, RQ_DONE };

typedef struct gen_stream {
  clkv_request *r;
  clkv_gen_params gp;
  clkv__sampler *smp;
  int32_t *hist;           /* prompt, then every sampled token */
  int n_hist, n_prompt;
  text_out out;
  clkv__utf8_stream u8;
  double t_start, t_prefill, last, itl_sum;
  unsigned long long launches0;
  int state, seq;
  int32_t pending;         /* sampled, not yet in the KV cache */
  int reuse_seq, reuse_len; /* a kept sequence holding the first reuse_len prompt tokens */
} gen_stream;

static clkv_status stream_init(clkv_context *ctx, gen_stream *g, clkv_request *r, double t0) {
  const clkv_model *m = ctx->m;
  memset(g, 0, sizeof *g);
  g->r = r;
  g->gp = r->params;
  g->seq = -1;
  g->reuse_seq = -1;
  g->state = RQ_WAITING;
  g->t_start = t0;
  memset(&r->stats, 0, sizeof r->stats);
  r->status = CLKV_OK;
  if (r->n_ids <= 0 || !r->ids)
    return r->status = clkv__err(&ctx->err, CLKV_ERR_INVALID_ARG, "the prompt is empty; give some text");
  if (r->n_ids >= m->n_ctx)
    return r->status = clkv__err(&ctx->err, CLKV_ERR_CONTEXT_FULL,
                                 "the prompt has %d tokens but the context holds %d (one more is "
                                 "needed to generate); shorten the prompt or raise --ctx (the "
                                 "model allows %d)", r->n_ids, m->n_ctx, m->info.n_ctx_train);
  const int cap = r->n_ids + (g->gp.max_tokens > 0 ? g->gp.max_tokens : 0) + 1;
  g->hist = malloc(sizeof(int32_t) * (size_t)cap);
  g->smp = clkv__sampler_new(&g->gp, m->info.n_vocab);
  if (!g->hist || !g->smp)
    return r->status = clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  memcpy(g->hist, r->ids, sizeof(int32_t) * (size_t)r->n_ids);
  g->n_hist = g->n_prompt = r->n_ids;
  r->stats.prompt_tokens = r->n_ids;
  return CLKV_OK;
}

static void stream_free(gen_stream *g) {
  clkv__sampler_free(g->smp);
  free(g->hist);
  free(g->out.buf);
  g->smp = NULL;
  g->hist = NULL;
  g->out.buf = NULL;
}

/* Ends a request: flushes held-back text (unless a stop string or the callback ended it). */
static void stream_finish(clkv_context *ctx, gen_stream *g) {
  clkv_gen_stats *S = &g->r->stats;
  if (S->stop_reason == CLKV_STOP_LENGTH || S->stop_reason == CLKV_STOP_EOS ||
      S->stop_reason == CLKV_STOP_CONTEXT) {
    char buf[16];
    size_t nb = clkv__utf8_stream_flush(&g->u8, buf, sizeof buf);
    text_append(&g->out, buf, nb);
    if (g->out.len > g->out.emitted && g->r->cb)
      g->r->cb(g->r->user, -1, g->out.buf + g->out.emitted, g->out.len - g->out.emitted);
  }
  S->decode_ms = S->generated_tokens ? g->last - g->t_prefill : 0;
  S->mean_itl_ms = S->generated_tokens > 1 ? g->itl_sum / (S->generated_tokens - 1) : 0;
  S->launches_per_token = S->generated_tokens > 1
      ? (double)(ctx->m->rt->launches - g->launches0) / (S->generated_tokens - 1) : 0;
  g->state = RQ_DONE;
}

/* Samples the next token from logits; emits it. Returns 1 when the request is finished,
 * 0 when `pending` must be fed to the next decode step, or an error status. */
static int stream_step(clkv_context *ctx, gen_stream *g, const float *logits) {
  clkv_gen_stats *S = &g->r->stats;
  const clkv_model *m = ctx->m;
  if (S->generated_tokens >= g->gp.max_tokens) return 1; /* max_tokens 0 */
  int32_t tok = clkv__sampler_sample(g->smp, logits, g->hist, g->n_hist);
  double now = clkv__now_ms();
  if (S->generated_tokens == 0) S->ttft_ms = now - g->t_start;
  else g->itl_sum += now - g->last;
  g->last = now;
  g->hist[g->n_hist++] = tok;
  S->generated_tokens++;
  if (clkv__tokenizer_is_eog(m->tok, tok)) {
    S->stop_reason = CLKV_STOP_EOS;
    return 1;
  }
  size_t plen;
  const char *piece = clkv__tokenizer_piece(m->tok, tok, 0, &plen);
  char buf[256];
  size_t nb = clkv__utf8_stream_push(&g->u8, piece, plen < 200 ? plen : 200, buf, sizeof buf);
  if (text_append(&g->out, buf, nb))
    return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  size_t safe;
  long hit = find_stop(&g->out, g->gp.stop, &safe);
  if (hit >= 0) {
    emit(&g->out, (size_t)hit, tok, g->r->cb, g->r->user);
    S->stop_reason = CLKV_STOP_STRING;
    return 1;
  }
  if (emit(&g->out, safe, tok, g->r->cb, g->r->user)) {
    S->stop_reason = CLKV_STOP_CANCELLED;
    return 1;
  }
  if (S->generated_tokens == g->gp.max_tokens) return 1;
  if (g->n_hist >= m->n_ctx) {
    S->stop_reason = CLKV_STOP_CONTEXT;
    return 1;
  }
  g->pending = tok;
  return 0;
}

/* ---- the scheduler: continuous batching with preemption ----
 * A batch runs in steps (batch_step): swapped requests come back, waiting ones are admitted
 * (prompt prefilled, first token sampled), then every running request decodes one token,
 * the youngest being preempted when blocks run out. */
typedef struct batch {
  clkv_context *ctx;
  gen_stream *g;   /* (n) one per request */
  int n;
  int *order;      /* (n) admission order of running/swapped requests (indices into g) */
  int n_order;
  int keep;        /* keep the (single) request's sequence in ctx->kept_seq */
  int reuse, reuse_len; /* the kept sequence taken over for g[0] until handed to it, or -1 */
  int idle;        /* steps in a row that decoded nothing */
  /* the decode step being assembled: request, its sequence and its pending token */
  int *step_req, *step_seq; /* (n_seq_max) */
  int32_t *step_tok;        /* (n_seq_max) */
  int n_step;
} batch;

static int n_live(const batch *b) { return b->n_order; }

static void order_remove(batch *b, int i) {
  for (int k = 0; k < b->n_order; k++)
    if (b->order[k] == i) {
      memmove(b->order + k, b->order + k + 1, sizeof(int) * (size_t)(b->n_order - k - 1));
      b->n_order--;
      return;
    }
}

/* Finishes request i: its sequence is kept for the next call (reuse_last) or released. */
static void end_request(batch *b, int i) {
  gen_stream *g = &b->g[i];
  if (g->seq >= 0 && b->keep) b->ctx->kept_seq = g->seq;
  else if (g->seq >= 0) clkv__seq_end(b->ctx, g->seq);
  g->seq = -1;
  order_remove(b, i);
  stream_finish(b->ctx, g);
}

/* Handles the result of stream_step for request i: finished, continuing, or failed. */
static clkv_status after_step(batch *b, int i, int r) {
  if (r < 0) return (clkv_status)r;
  if (r == 1) end_request(b, i);
  else b->g[i].state = RQ_RUNNING;
  return CLKV_OK;
}

/* Prefills request i (its prompt, or after a recompute preemption its history without the
 * pending token) and, for a new request, samples its first token. CLKV_ERR_CONTEXT_FULL: no
 * room now; the request stays waiting. */
static clkv_status admit_request(batch *b, int i) {
  clkv_context *ctx = b->ctx;
  gen_stream *g = &b->g[i];
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
  b->order[b->n_order++] = i;
  g->state = RQ_RUNNING;
  if (!fresh) return CLKV_OK;
  g->t_prefill = clkv__now_ms();
  g->r->stats.prefill_ms += g->t_prefill - t0;
  g->launches0 = ctx->m->rt->launches;
  return after_step(b, i, stream_step(ctx, g, ctx->h_logits));
}

/* Admits waiting requests in order while sequence slots and blocks last. A request that
 * cannot run even with nothing else holding memory fails alone. */
static clkv_status admit_waiting(batch *b) {
  for (int i = 0; i < b->n && n_live(b) < b->ctx->n_seq_max; i++) {
    gen_stream *g = &b->g[i];
    if (g->state != RQ_WAITING) continue;
    const clkv_status s = admit_request(b, i);
    if (s == CLKV_ERR_CONTEXT_FULL && n_live(b) > 0) break; /* retry when others finish */
    if (s == CLKV_ERR_CONTEXT_FULL || s == CLKV_ERR_INVALID_ARG) {
      g->r->status = s;
      stream_finish(b->ctx, g);
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
    gen_stream *g = &b->g[b->order[k]];
    clkv_error e;
    if (g->state != RQ_SWAPPED) continue;
    if (clkv__kv_seq_swap_in(b->ctx->pool, g->seq, &e)) return 1;
    g->state = RQ_RUNNING;
  }
  return 0;
}

static int in_step(const batch *b, int i) {
  for (int j = 0; j < b->n_step; j++)
    if (b->step_req[j] == i) return 1;
  return 0;
}

/* Makes room by preempting the most recently admitted running request not yet in the
 * decode step: swapped to the host tier when it has room, else its blocks are released
 * and it is recomputed later (its full blocks stay in the prefix cache). Returns 0 when
 * there was no one to preempt. */
static int preempt_youngest(batch *b) {
  for (int k = b->n_order - 1; k >= 0; k--) {
    const int i = b->order[k];
    gen_stream *g = &b->g[i];
    if (g->state != RQ_RUNNING || in_step(b, i)) continue;
    clkv_error e;
    if (b->ctx->n_host_blocks && !clkv__kv_seq_swap_out(b->ctx->pool, g->seq, &e)) {
      g->state = RQ_SWAPPED;
      return 1;
    }
    clkv__seq_end(b->ctx, g->seq);
    g->seq = -1;
    g->state = RQ_WAITING;
    order_remove(b, i);
    return 1;
  }
  return 0;
}

/* Reserves the next position of every running request, oldest first, and lists it in the
 * step; when blocks run out the youngest request not yet in the step is preempted
 * (possibly the one asking, which then sits this step out). */
static clkv_status reserve_step(batch *b) {
  b->n_step = 0;
  for (int k = 0; k < b->n_order; k++) {
    const int i = b->order[k];
    gen_stream *g = &b->g[i];
    if (g->state != RQ_RUNNING) continue;
    clkv_status s;
    while ((s = clkv__decode_reserve(b->ctx, g->seq, g->pending)) == CLKV_ERR_CONTEXT_FULL &&
           preempt_youngest(b) && g->state == RQ_RUNNING) {
    }
    if (g->state == RQ_WAITING) k--; /* it left the order: the next one moved to k */
    if (g->state != RQ_RUNNING) continue;
    if (s) return s;
    b->step_req[b->n_step] = i;
    b->step_seq[b->n_step] = g->seq;
    b->step_tok[b->n_step++] = g->pending;
  }
  return CLKV_OK;
}

/* The decode step: one forward pass over the reserved tokens, then each request samples,
 * streams its text and finishes or goes on. */
static clkv_status decode_step(batch *b) {
  clkv_context *ctx = b->ctx;
  clkv_status st = clkv__forward_decode_reserved(ctx, b->step_seq, b->step_tok, b->n_step);
  for (int j = 0; j < b->n_step && !st; j++) {
    const float *logits = ctx->h_logits + (size_t)j * ctx->m->info.n_vocab;
    st = after_step(b, b->step_req[j], stream_step(ctx, &b->g[b->step_req[j]], logits));
  }
  return st;
}

/* A step that decoded nothing: the batch is done when no request waits or is swapped out;
 * three such steps in a row (nothing admitted, resumed or decoded) are an error. */
static clkv_status idle_step(batch *b, int *done) {
  int left = 0;
  for (int i = 0; i < b->n; i++) left += b->g[i].state == RQ_WAITING || b->g[i].state == RQ_SWAPPED;
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

/* One scheduler step: swapped requests come back, waiting ones are admitted, then one
 * decode token for every running request. *done when every request has finished. */
static clkv_status batch_step(batch *b, int *done) {
  clkv_status st;
  *done = 0;
  if (!resume_swapped(b) && (st = admit_waiting(b))) return st;
  if ((st = reserve_step(b))) return st;
  if (b->n_step == 0) return idle_step(b, done);
  b->idle = 0;
  return decode_step(b);
}

/* Takes the context's kept sequence (reuse_last): a single kept request whose prompt
 * starts with all its tokens continues it; otherwise it is released. */
static void take_kept_sequence(batch *b, const clkv_request *r) {
  clkv_context *ctx = b->ctx;
  b->reuse = -1;
  if (ctx->kept_seq < 0) return;
  const int len = clkv__kv_seq_len(ctx->pool, ctx->kept_seq);
  const int32_t *t = clkv__kv_seq_tokens(ctx->pool, ctx->kept_seq);
  if (b->keep && r->ids && len > 0 && len < r->n_ids && t &&
      !memcmp(t, r->ids, sizeof(int32_t) * (size_t)len)) {
    b->reuse = ctx->kept_seq;
    b->reuse_len = len;
  } else {
    clkv__seq_end(ctx, ctx->kept_seq);
  }
  ctx->kept_seq = -1;
}

/* Sets up the batch: the kept sequence, the streams (a bad request fails alone) and the
 * step arrays. On failure batch_free releases what was made. */
static clkv_status batch_init(batch *b, clkv_context *ctx, clkv_request *reqs, int n, double t0,
                              int keep) {
  *b = (batch){.ctx = ctx, .n = n, .keep = keep && n == 1, .reuse = -1};
  take_kept_sequence(b, &reqs[0]);
  b->g = calloc((size_t)n, sizeof(gen_stream));
  b->order = malloc(sizeof(int) * (size_t)n);
  b->step_req = malloc(sizeof(int) * (size_t)ctx->n_seq_max);
  b->step_seq = malloc(sizeof(int) * (size_t)ctx->n_seq_max);
  b->step_tok = malloc(sizeof(int32_t) * (size_t)ctx->n_seq_max);
  for (int i = 0; b->g && i < n; i++) /* what batch_free reads before stream_init ran */
    b->g[i] = (gen_stream){.r = &reqs[i], .state = RQ_WAITING, .seq = -1, .reuse_seq = -1};
  if (!b->g || !b->order || !b->step_req || !b->step_seq || !b->step_tok)
    return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  for (int i = 0; i < n; i++)
    if (stream_init(ctx, &b->g[i], &reqs[i], t0)) {
      if (reqs[i].status == CLKV_ERR_NO_MEMORY) return CLKV_ERR_NO_MEMORY;
      b->g[i].state = RQ_DONE;
    }
  if (b->reuse >= 0 && b->g[0].state == RQ_WAITING) { /* g[0] owns it from now on */
    b->g[0].reuse_seq = b->reuse;
    b->g[0].reuse_len = b->reuse_len;
  } else if (b->reuse >= 0) {
    clkv__seq_end(ctx, b->reuse);
  }
  b->reuse = -1;
  return CLKV_OK;
}

/* Releases every sequence the batch still holds; st (the batch's failure) becomes the
 * status of each request that had not finished. */
static void batch_free(batch *b, clkv_status st) {
  if (b->reuse >= 0) clkv__seq_end(b->ctx, b->reuse);
  for (int i = 0; b->g && i < b->n; i++) {
    gen_stream *g = &b->g[i];
    if (g->reuse_seq >= 0) clkv__seq_end(b->ctx, g->reuse_seq); /* never admitted */
    if (g->seq >= 0) clkv__seq_end(b->ctx, g->seq);
    if (st && g->r->status == CLKV_OK && g->state != RQ_DONE) g->r->status = st;
    stream_free(g);
  }
  free(b->g);
  free(b->order);
  free(b->step_req);
  free(b->step_seq);
  free(b->step_tok);
}

/* Runs every request to completion; see clkv_generate_batch. */
static clkv_status run_batch(clkv_context *ctx, clkv_request *reqs, int n, double t0, int keep) {
  batch b;
  clkv_status st = batch_init(&b, ctx, reqs, n, t0, keep);
  int done = 0;
  while (!st && !done) st = batch_step(&b, &done);
  batch_free(&b, st);
  return st;
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

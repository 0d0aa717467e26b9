/* stream.c — one request's tokens: sampling, log-probabilities, UTF-8-complete text held
 * back while it could start a stop string, statistics, and delivery to the request's
 * callback (clkv_token_cb) or event callback (clkv_event_cb). */
#include "engine/spec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int text_append(clkv__text_out *t, const char *s, size_t n) {
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
static long find_stop(const clkv__text_out *t, const char *const *stop, size_t *safe) {
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

/* Hands text (len bytes) and token id to the request's event or token callback. */
static int deliver(clkv__stream *g, int32_t id, const char *text, size_t len) {
  clkv_request *r = g->r;
  if (!r->on_event) return r->cb ? r->cb(r->user, id, text, len) : 0;
  const int tok = id >= 0;
  const clkv_token_event ev = {.id = id, .text = text, .len = len,
                               .logprob = tok ? g->lp : 0.0f,
                               .n_top = tok ? g->gp.logprobs : 0, .top_ids = g->top_ids,
                               .top_logprobs = g->top_lp, .stats = &r->stats,
                               .status = r->status};
  return r->on_event(r->user, &ev);
}

void clkv__stream_done(clkv__stream *g) {
  clkv_request *r = g->r;
  if (!r->on_event) return;
  const clkv_token_event ev = {.id = -1, .text = "", .done = 1, .stats = &r->stats,
                               .status = r->status};
  r->on_event(r->user, &ev);
}

static int emit(clkv__stream *g, size_t upto, int32_t id) {
  clkv__text_out *t = &g->out;
  int r = deliver(g, id, t->buf + t->emitted, upto > t->emitted ? upto - t->emitted : 0);
  if (upto > t->emitted) t->emitted = upto;
  return r;
}

/* The log-probability of tok under softmax(logits), and with want > 0 the want most likely
 * tokens (most likely first) into g->top_ids / g->top_lp. */
static void logprobs(clkv__stream *g, const float *logits, int n_vocab, int32_t tok, int want) {
  float mx = logits[0];
  for (int i = 1; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
  double sum = 0;
  for (int i = 0; i < n_vocab; i++) sum += exp((double)(logits[i] - mx));
  const float lse = mx + (float)log(sum);
  g->lp = logits[tok] - lse;
  int n = 0;
  for (int i = 0; i < n_vocab && want > 0; i++) {
    if (n == want && logits[i] <= logits[g->top_ids[n - 1]]) continue;
    int k = n < want ? n++ : n - 1; /* insertion: drop the last when full */
    while (k > 0 && logits[g->top_ids[k - 1]] < logits[i]) {
      g->top_ids[k] = g->top_ids[k - 1];
      k--;
    }
    g->top_ids[k] = i;
  }
  for (int k = 0; k < n; k++) g->top_lp[k] = logits[g->top_ids[k]] - lse;
}

clkv_status clkv__stream_init(clkv_context *ctx, clkv__stream *g, clkv_request *r, double t0) {
  const clkv_model *m = ctx->m;
  memset(g, 0, sizeof *g);
  g->r = r;
  g->gp = r->params;
  if (g->gp.logprobs < 0) g->gp.logprobs = 0;
  if (g->gp.logprobs > CLKV_MAX_LOGPROBS) g->gp.logprobs = CLKV_MAX_LOGPROBS;
  g->seq = -1;
  g->dseq = -1;
  g->reuse_seq = -1;
  g->state = CLKV__RQ_WAITING;
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
  if (g->gp.lookup_ngram < 0) g->gp.lookup_ngram = 0;
  if (g->gp.draft_max <= 0) { /* auto: one prefill tile (a pass costs about the same up to it) */
    const int tt = (int)m->tun.mv[CLKV__PH_PREFILL].tt;
    g->gp.draft_max = !g->gp.lookup_ngram && ctx->draft ? 4 : (tt > 8 ? tt : 8) - 1;
  }
  if (g->gp.draft_max > ctx->max_tok - 1) g->gp.draft_max = ctx->max_tok - 1;
  g->spec_acc[0] = CLKV__SPEC_PRIOR_ACC;
  g->spec_acc[1] = CLKV__SPEC_PRIOR_REJ;
  if (g->gp.draft_max < 1) g->gp.lookup_ngram = 0; /* nothing to draft */
  if (g->gp.draft_min < 1) g->gp.draft_min = 1;
  const int model = !g->gp.lookup_ngram && ctx->draft && g->gp.draft_max > 0;
  if (g->gp.lookup_ngram || model)
    g->draft = malloc(sizeof(int32_t) * ((size_t)g->gp.draft_max + 1));
  if (model) { /* the draft's own random numbers */
    clkv_gen_params dp = g->gp;
    dp.seed ^= 0x5eedd4af7ULL;
    g->dsmp = clkv__sampler_new(&dp, m->info.n_vocab);
    if (g->gp.temperature > 0.0f)
      g->q = malloc(sizeof(float) * (size_t)g->gp.draft_max * (size_t)m->info.n_vocab);
  }
  if (!g->hist || !g->smp || ((g->gp.lookup_ngram || model) && !g->draft) ||
      (model && (!g->dsmp || (g->gp.temperature > 0.0f && !g->q))))
    return r->status = clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  memcpy(g->hist, r->ids, sizeof(int32_t) * (size_t)r->n_ids);
  g->n_hist = g->n_prompt = r->n_ids;
  r->stats.prompt_tokens = r->n_ids;
  return CLKV_OK;
}

void clkv__stream_free(clkv__stream *g) {
  clkv__sampler_free(g->smp);
  free(g->hist);
  free(g->draft);
  free(g->q);
  clkv__sampler_free(g->dsmp);
  g->draft = NULL;
  g->q = NULL;
  g->dsmp = NULL;
  free(g->out.buf);
  g->smp = NULL;
  g->hist = NULL;
  g->out.buf = NULL;
}

void clkv__stream_finish(clkv_context *ctx, clkv__stream *g) {
  clkv_gen_stats *S = &g->r->stats;
  if (S->stop_reason == CLKV_STOP_LENGTH || S->stop_reason == CLKV_STOP_EOS ||
      S->stop_reason == CLKV_STOP_CONTEXT) {
    char buf[16];
    size_t nb = clkv__utf8_stream_flush(&g->u8, buf, sizeof buf);
    text_append(&g->out, buf, nb);
    if (g->out.len > g->out.emitted)
      deliver(g, -1, g->out.buf + g->out.emitted, g->out.len - g->out.emitted);
  }
  S->decode_ms = S->generated_tokens ? g->last - g->t_prefill : 0;
  S->mean_itl_ms = S->generated_tokens > 1 ? g->itl_sum / (S->generated_tokens - 1) : 0;
  S->launches_per_token = S->generated_tokens > 1
      ? (double)(ctx->m->rt->launches - g->launches0) / (S->generated_tokens - 1) : 0;
  clkv__spec_release(ctx, g);
  g->state = CLKV__RQ_DONE;
}

int clkv__stream_step(clkv_context *ctx, clkv__stream *g, const float *logits) {
  if (g->r->stats.generated_tokens >= g->gp.max_tokens) return 1; /* max_tokens 0 */
  return clkv__stream_push(ctx, g, clkv__sampler_sample(g->smp, logits, g->hist, g->n_hist),
                           logits);
}

int clkv__stream_push(clkv_context *ctx, clkv__stream *g, int32_t tok, const float *logits) {
  clkv_gen_stats *S = &g->r->stats;
  const clkv_model *m = ctx->m;
  if (g->r->on_event) logprobs(g, logits, m->info.n_vocab, tok, g->gp.logprobs);
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
    emit(g, (size_t)hit, tok);
    S->stop_reason = CLKV_STOP_STRING;
    return 1;
  }
  if (emit(g, safe, tok)) {
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


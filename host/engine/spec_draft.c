/* spec_draft.c — drafting with a draft model: a second context whose model shares the
 * target's vocabulary; each request keeps a sequence there that follows its history, and
 * drafts token by token from it (greedy, or sampled with the distribution kept for the
 * speculative sampling rule). */
#include "engine/spec.h"

#include <stdlib.h>
#include <string.h>

clkv_status clkv_context_set_draft(clkv_context *ctx, clkv_context *draft) {
  if (!ctx || draft == ctx) return CLKV_ERR_INVALID_ARG;
  if (draft) {
    const clkv_model *a = ctx->m, *b = draft->m;
    if (a->info.n_vocab != b->info.n_vocab)
      return clkv__err(&ctx->err, CLKV_ERR_UNSUPPORTED, "the draft model has %d tokens in its "
                       "vocabulary and the target %d; a draft model must share the target's "
                       "vocabulary", b->info.n_vocab, a->info.n_vocab);
    for (int32_t id = 0; id < a->info.n_vocab; id++) {
      size_t la, lb;
      const char *ta = clkv_token_text(a, id, &la), *tb = clkv_token_text(b, id, &lb);
      if (la != lb || memcmp(ta, tb, la))
        return clkv__err(&ctx->err, CLKV_ERR_UNSUPPORTED, "token %d is '%.*s' in the target's "
                         "vocabulary and '%.*s' in the draft model's; a draft model must share "
                         "the target's vocabulary", id, (int)(la < 40 ? la : 40), ta,
                         (int)(lb < 40 ? lb : 40), tb);
    }
    if (draft->n_seq_max < ctx->n_seq_max)
      return clkv__err(&ctx->err, CLKV_ERR_INVALID_ARG, "the draft context has %d sequences, the "
                       "target's %d; give it as many", draft->n_seq_max, ctx->n_seq_max);
  }
  ctx->draft = draft;
  return CLKV_OK;
}

void clkv__spec_release(clkv_context *ctx, clkv__stream *g) {
  if (g->dseq >= 0 && ctx->draft) clkv__seq_end(ctx->draft, g->dseq);
  g->dseq = -1;
}

/* Brings g's draft sequence to hist[0 .. n_hist - 1) (all but the pending token): cut back
 * to what it shares with the history, then the rest prefilled. */
static clkv_status draft_sync(clkv_context *d, clkv__stream *g) {
  const int want = g->n_hist - 1;
  int len = 0;
  clkv_status st;
  if (g->dseq < 0) {
    if ((st = clkv__seq_start(d, g->hist, want, &g->dseq, &len))) return st;
  } else {
    const int32_t *t = clkv__kv_seq_tokens(d->pool, g->dseq);
    const int have = clkv__kv_seq_len(d->pool, g->dseq);
    while (len < have && len < want && t[len] == g->hist[len]) len++;
    if ((st = clkv__kv_seq_truncate(d->pool, g->dseq, len, &d->err))) return st;
  }
  for (int chunk = d->m->params.chunk; len < want && !st; len += chunk) {
    const int n = want - len < chunk ? want - len : chunk;
    st = clkv__forward_prefill(d, g->dseq, g->hist + len, n, 0);
  }
  return st;
}

/* The draft's next token from its logits: the argmax at temperature 0, else a draw from
 * the request's sampling distribution over the draft's logits, kept in q. */
static int32_t draft_pick(const clkv__stream *g, const float *logits, int32_t V, float *q) {
  if (!(g->gp.temperature > 0.0f)) {
    int32_t best = 0;
    for (int32_t i = 1; i < V; i++)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  return clkv__sampler_sample_probs(g->dsmp, logits, g->hist, g->n_hist, q);
}

void clkv__spec_admit(clkv_context *ctx, clkv__stream *g) {
  if (g->dsmp && ctx->draft) draft_sync(ctx->draft, g); /* a failure: drafting retries it */
}

int clkv__spec_draft(clkv_context *ctx, clkv__stream *g, int max) {
  clkv_context *d = ctx->draft;
  if (!g->dsmp || draft_sync(d, g)) return 0;
  const size_t V = (size_t)ctx->m->info.n_vocab;
  int32_t tok = g->pending;
  int k = 0;
  for (; k < max; k++) {
    if (clkv__forward_decode(d, &g->dseq, &tok, 1)) break;
    tok = draft_pick(g, d->h_logits, (int32_t)V, g->q + (size_t)k * V);
    g->draft[1 + k] = tok;
  }
  return k;
}

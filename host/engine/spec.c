/* spec.c — speculative decoding: look-up drafts (a draft model's: spec_draft.c), the cost
 * model deciding when drafting pays, the verification pass (causal attention over the
 * sequence's paged KV, as a prefill chunk, with the logits of every position), acceptance
 * through the sampler and the KV rollback. */
#include "engine/spec.h"

#include <stdlib.h>
#include <string.h>

int clkv__spec_lookup(const int32_t *hist, int n, int ngram, int32_t *out, int max) {
  if (ngram < 1 || n <= ngram || max < 1) return 0;
  const int32_t *pat = hist + n - ngram;
  for (int j = n - ngram - 1; j >= 0; j--) {
    if (hist[j] != pat[0] || memcmp(hist + j, pat, sizeof(int32_t) * (size_t)ngram)) continue;
    const int from = j + ngram, k = n - from < max ? n - from : max;
    memcpy(out, hist + from, sizeof(int32_t) * (size_t)k);
    return k;
  }
  return 0;
}

static double ema(double avg, double x) { return avg > 0 ? 0.7 * avg + 0.3 * x : x; }

void clkv__spec_decode_time(clkv__stream *g, double ms) {
  if (!g->draft) return;
  g->dec_ms = ema(g->dec_ms, ms);
  /* while not drafting, the acceptance counts drift back to the prior's, so drafting is
   * tried again now and then */
  g->spec_acc[0] += 0.03 * (CLKV__SPEC_PRIOR_ACC - g->spec_acc[0]);
  g->spec_acc[1] += 0.03 * (CLKV__SPEC_PRIOR_REJ - g->spec_acc[1]);
}

/* Whether a pass over k drafts should give more tokens per millisecond than decoding. With
 * a the chance that a draft is taken given the ones before it were (accepted drafts over
 * accepted drafts and rejections, counts decaying with each pass), a pass yields
 * 1 + a + a^2 + ... + a^k tokens; it costs what passes cost so far (about the same for
 * every k up to a prefill tile), against one token per decode step. The first pass is
 * tried once a decode step has been timed. */
static int worth_it(const clkv__stream *g, int k) {
  if (g->dec_ms <= 0) return 0;
  if (g->spec_ms <= 0) return 1;
  const double a = g->spec_acc[0] / (g->spec_acc[0] + g->spec_acc[1]);
  double tokens = 1, ak = 1;
  for (int i = 0; i < k; i++) tokens += ak *= a;
  return tokens * g->dec_ms > g->spec_ms;
}

int clkv__spec_plan(clkv_context *ctx, clkv__stream *g) {
  g->n_draft = 0;
  const int model = !g->gp.lookup_ngram && ctx->draft && g->dsmp;
  if ((!g->gp.lookup_ngram && !model) || g->seq < 0) return 0;
  const clkv_gen_stats *S = &g->r->stats;
  const int len = clkv__kv_seq_len(ctx->pool, g->seq);
  int max = g->gp.draft_max;
  /* the pass yields drafts + 1 tokens: no more than are left to generate or fit */
  if (max > g->gp.max_tokens - S->generated_tokens - 1)
    max = g->gp.max_tokens - S->generated_tokens - 1;
  if (max > ctx->m->n_ctx - len - 1) max = ctx->m->n_ctx - len - 1;
  if (max < g->gp.draft_min || len < 0) return 0;
  if (model && !g->gp.draft_always && !worth_it(g, max)) return 0;
  const double t0 = clkv__now_ms();
  const int k = model ? clkv__spec_draft(ctx, g, max)
                      : clkv__spec_lookup(g->hist, g->n_hist, g->gp.lookup_ngram, g->draft + 1, max);
  g->draft_ms = clkv__now_ms() - t0; /* part of the pass's cost */
  if (k < g->gp.draft_min || (!model && !g->gp.draft_always && !worth_it(g, k))) return 0;
  g->draft[0] = g->pending;
  clkv_error e;
  if (clkv__kv_seq_append(ctx->pool, g->seq, g->draft, k + 1, &e)) return 0;
  g->n_draft = k;
  return 1;
}

/* The forward pass over the last n tokens reserved in seq; row i of rows gets the logits
 * after its i-th token. */
static clkv_status verify_pass(clkv_context *c, int seq, int n, float *rows) {
  clkv_status st;
  if ((st = clkv__logits_rows(c)) || (st = clkv__ensure_kernels(c, &c->err)) ||
      (st = clkv__kv_sync(c)))
    return st;
  const int pos0 = clkv__kv_seq_len(c->pool, seq) - n;
  const int32_t *tok = clkv__kv_seq_tokens(c->pool, seq);
  for (int i = 0; i < n; i++) {
    c->h_ids[i] = tok[pos0 + i];
    c->h_seq[i] = seq;
    c->h_pos[i] = pos0 + i;
  }
  if ((st = clkv__upload_batch(c, n, &c->err))) return st;
  st = clkv__run_layers(c, n, CLKV__PH_PREFILL, seq, pos0, 0, n,
                        (clkv__logits_dst){.dev = c->logits_all, .host = rows}, &c->err);
  if (!st) clkv__kv_seq_commit(c->pool, seq);
  return st;
}

/* Takes tokens from the verified rows: each drafted position's token through the sampler's
 * speculative rule, until one is not the draft (or the request ends). Returns as
 * clkv__stream_push; *acc: drafts accepted. */
static int accept(clkv_context *ctx, clkv__stream *g, const float *rows, int *acc) {
  const size_t V = (size_t)ctx->m->info.n_vocab;
  const int k = g->n_draft;
  int r = 0;
  *acc = 0;
  for (int i = 0; i <= k && r == 0; i++) {
    const float *lg = rows + (size_t)i * V;
    int ok = 0;
    const float *q = g->dsmp && g->q ? g->q + (size_t)i * V : NULL; /* NULL: look-up */
    const int32_t tok = i < k ? clkv__sampler_sample_draft(g->smp, lg, g->hist, g->n_hist,
                                                           g->draft[i + 1], q, &ok)
                              : clkv__sampler_sample(g->smp, lg, g->hist, g->n_hist);
    r = clkv__stream_push(ctx, g, tok, lg);
    if (!ok) break;
    ++*acc;
  }
  return r;
}

int clkv__spec_verify(clkv_context *ctx, clkv__stream *g, float **rows, size_t *cap) {
  const int n = g->n_draft + 1;
  const size_t need = (size_t)n * (size_t)ctx->m->info.n_vocab;
  if (need > *cap) {
    float *p = realloc(*rows, sizeof(float) * need);
    if (!p) return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
    *rows = p;
    *cap = need;
  }
  const double t0 = clkv__now_ms();
  clkv_status st = verify_pass(ctx, g->seq, n, *rows);
  if (st) return st;
  g->spec_ms = ema(g->spec_ms, clkv__now_ms() - t0 + g->draft_ms);
  int acc;
  const int r = accept(ctx, g, *rows, &acc);
  clkv_gen_stats *S = &g->r->stats;
  S->drafted_tokens += g->n_draft;
  S->accepted_tokens += acc;
  S->spec_passes++;
  g->spec_acc[0] = 0.8 * g->spec_acc[0] + acc;
  g->spec_acc[1] = 0.8 * g->spec_acc[1] + (acc < g->n_draft);
  g->n_draft = 0;
  if (r < 0) return r;
  /* the cache keeps every token but the last one taken (the next pending one) */
  st = clkv__kv_seq_truncate(ctx->pool, g->seq, g->n_hist - 1, &ctx->err);
  return st ? st : r;
}

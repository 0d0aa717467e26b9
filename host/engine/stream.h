/* stream.h — one request as the scheduler runs it: sampler, history, text held back for
 * stop strings, log-probabilities, statistics, and how its tokens reach the caller.
 * Internal to clkv (engine/generate.c schedules these). */
#ifndef CLKV_STREAM_H
#define CLKV_STREAM_H

#include "engine/engine.h"
#include "engine/sampler.h"

/* Generated text; the part not yet emitted could be the start of a stop string. */
typedef struct clkv__text_out {
  char *buf;         /* all generated text */
  size_t len, cap;
  size_t emitted;    /* bytes of buf already given to the callback */
} clkv__text_out;

enum { CLKV__RQ_WAITING, CLKV__RQ_RUNNING, CLKV__RQ_SWAPPED, CLKV__RQ_DONE };

typedef struct clkv__stream {
  clkv_request *r;
  clkv_gen_params gp;
  clkv__sampler *smp;
  int32_t *hist;           /* prompt, then every sampled token */
  int n_hist, n_prompt;
  clkv__text_out out;
  clkv__utf8_stream u8;
  double t_start, t_prefill, last, itl_sum;
  unsigned long long launches0;
  int state, seq;
  int32_t pending;         /* sampled, not yet in the KV cache */
  int reuse_seq, reuse_len; /* a kept sequence holding the first reuse_len prompt tokens */
  uint64_t id;             /* clkv_sched's name for it */
  int cancel;              /* clkv_sched_cancel asked for it */
  float lp;                /* the last token's log-probability, and its top alternatives */
  int32_t top_ids[CLKV_MAX_LOGPROBS];
  float top_lp[CLKV_MAX_LOGPROBS];
  int32_t *draft;          /* (gp.draft_max + 1) this step's pending token, then its drafts */
  int n_draft;             /* 0: the request decodes one token this step */
  /* spec.c's cost model: a decode step's and a verification pass's milliseconds (moving
   * averages), and decaying counts of accepted drafts [0] and of rejections [1] */
  double dec_ms, spec_ms, draft_ms, spec_acc[2];
  /* with a draft model (spec_draft.c): its sequence in the draft context (-1: none), its
   * sampler, and the distribution each draft was drawn from at temperature > 0 */
  int dseq;
  clkv__sampler *dsmp;
  float *q;                /* (gp.draft_max, n_vocab) */
} clkv__stream;

/* Sets up g for r (checks the prompt; r->status says why not). */
clkv_status clkv__stream_init(clkv_context *ctx, clkv__stream *g, clkv_request *r, double t0);
void clkv__stream_free(clkv__stream *g);
/* Ends a request: flushes held-back text (unless a stop string or the callback ended it). */
void clkv__stream_finish(clkv_context *ctx, clkv__stream *g);
/* Samples the next token from logits; emits it. Returns 1 when the request is finished,
 * 0 when `pending` must be fed to the next decode step, or an error status. */
int clkv__stream_step(clkv_context *ctx, clkv__stream *g, const float *logits);
/* As clkv__stream_step with the token already chosen (tok, from the distribution of
 * logits): speculative decoding pushes each accepted token this way. */
int clkv__stream_push(clkv_context *ctx, clkv__stream *g, int32_t tok, const float *logits);
/* The done event of on_event (nothing for a request without one). */
void clkv__stream_done(clkv__stream *g);

#endif /* CLKV_STREAM_H */

/* spec.h — speculative decoding: drafts from prompt look-up, one verification pass over a
 * sequence's paged KV giving a logit row per drafted position, acceptance (exact at
 * temperature 0, speculative sampling above), and the rollback of rejected positions.
 * Internal to clkv (engine/generate.c's scheduler calls it; docs/SPECULATIVE.md). */
#ifndef CLKV_SPEC_H
#define CLKV_SPEC_H

#include "engine/stream.h"

/* The prior of the acceptance counts: accepted drafts, and rejections (a chance of 0.8 that
 * a draft is taken given the ones before it were). */
#define CLKV__SPEC_PRIOR_ACC 4.0
#define CLKV__SPEC_PRIOR_REJ 1.0

/* eval.c: the device rows every-position logits go through (max_tok rows), made on first
 * use. */
clkv_status clkv__logits_rows(clkv_context *ctx);

/* Prompt look-up: when the last ngram tokens of hist[0..n) occurred earlier, the tokens
 * that followed their latest earlier occurrence (at most max) go to out. Returns how many. */
int clkv__spec_lookup(const int32_t *hist, int n, int ngram, int32_t *out, int max);

/* Before a scheduler step: drafts for request g (running, its pending token not in the KV
 * cache) and reserves the pending token and the drafts in its sequence. Returns 1 when g
 * verifies drafts this step (g->n_draft of them), 0 when it decodes one token as usual (no
 * drafts, too few, or no room: nothing reserved). */
int clkv__spec_plan(clkv_context *ctx, clkv__stream *g);

/* A decode step of g took ms (for the cost model that decides when drafting pays). */
void clkv__spec_decode_time(clkv__stream *g, double ms);

/* spec_draft.c: up to max drafts from the context's draft model into g->draft[1..] (the
 * draft sequence first brought to g's history); returns how many (0 on any failure). */
int clkv__spec_draft(clkv_context *ctx, clkv__stream *g, int max);
/* After g's prompt is prefilled: the draft model's sequence too (part of the prefill). */
void clkv__spec_admit(clkv_context *ctx, clkv__stream *g);
/* Ends g's draft sequence, if any. */
void clkv__spec_release(clkv_context *ctx, clkv__stream *g);

/* The verification of a planned request: one forward pass over its pending token and its
 * drafts (*rows, grown as needed, gets a logit row per position), then tokens accepted in
 * order while they are the target's choice, the first other one replaced by the target's
 * token (or a bonus token after all drafts), and the sequence cut back to what was kept.
 * Returns as clkv__stream_step: 1 finished, 0 going on, or an error status. */
int clkv__spec_verify(clkv_context *ctx, clkv__stream *g, float **rows, size_t *cap);

#endif /* CLKV_SPEC_H */

/* sampler.h — next-token sampling: greedy, temperature, top-k, top-p, min-p, repetition
 * penalty, with a seeded RNG (the same seed gives the same tokens). Internal to clkv. */
#ifndef CLKV_SAMPLER_H
#define CLKV_SAMPLER_H

#include "clkv.h"

#include <stdint.h>

typedef struct clkv__sampler clkv__sampler;

/* Copies the parameters it needs from p. Returns NULL on allocation failure. */
clkv__sampler *clkv__sampler_new(const clkv_gen_params *p, int n_vocab);
void clkv__sampler_free(clkv__sampler *s);
/* Picks the next token from logits[n_vocab] (not modified). history: the ids so far
 * (prompt and generated), used by the repetition penalty over its last repeat_last_n.
 * Order, as llama.cpp: penalty → (temp == 0: argmax, lowest id on ties) → top-k → top-p →
 * min-p → temperature → softmax → draw. */
int32_t clkv__sampler_sample(clkv__sampler *s, const float *logits, const int32_t *history,
                            int n_history);
/* Speculative sampling: the token at a drafted position. Greedy: the argmax (*accepted
 * when it is draft). Otherwise draft is accepted with probability min(1, p(draft)/q(draft))
 * where p is the distribution clkv__sampler_sample draws from and q the draft's (NULL: a
 * point mass on draft, as prompt look-up gives); when rejected, the token is drawn from
 * the normalized max(0, p - q), so the result is distributed exactly as p. */
int32_t clkv__sampler_sample_draft(clkv__sampler *s, const float *logits,
                                   const int32_t *history, int n_history, int32_t draft,
                                   const float *q, int *accepted);
/* As clkv__sampler_sample at temperature > 0, also writing the distribution drawn from
 * into q[n_vocab] (0 outside the kept candidates): a draft model's q for the rule above. */
int32_t clkv__sampler_sample_probs(clkv__sampler *s, const float *logits,
                                   const int32_t *history, int n_history, float *q);
/* Deterministic RNG used by the sampler (splitmix64 seeded), uniform in [0,1). */
double clkv__sampler_uniform(clkv__sampler *s);

#endif /* CLKV_SAMPLER_H */

/* eval.c — the public logits API (clkv_seq_open / eval / close): a sequence fed in prefill
 * passes of at most the context's batch, each pass's logits (every row, or the last) read
 * straight into the caller's array. */
#include "engine/spec.h"

#include <string.h>

clkv_status clkv_seq_open(clkv_context *c, int *seq) {
  if (!c || !seq) return CLKV_ERR_INVALID_ARG;
  int cached;
  return clkv__seq_start(c, NULL, 0, seq, &cached);
}

void clkv_seq_close(clkv_context *c, int seq) {
  if (c && seq >= 0 && seq < c->n_seq_max) clkv__seq_end(c, seq);
}

/* The device rows every-position logits go through (max_tok of them), made on first use. */
clkv_status clkv__logits_rows(clkv_context *c) {
  if (c->logits_all) return CLKV_OK;
  clkv_status st = CLKV_OK;
  const size_t bytes = sizeof(float) * (size_t)c->max_tok * (size_t)c->m->info.n_vocab;
  c->logits_all = clkv__buffer_new(c->m->rt, bytes, CL_MEM_WRITE_ONLY, "every position's logits",
                                   &c->err, &st);
  return st;
}

clkv_status clkv_seq_eval(clkv_context *c, int seq, const int32_t *ids, int n, int all,
                          float *out) {
  if (!c) return CLKV_ERR_INVALID_ARG;
  if (!ids || n < 1 || !out)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG, "clkv_seq_eval needs ids, n >= 1 and out");
  clkv_status st = all && n > 1 ? clkv__logits_rows(c) : CLKV_OK;
  const size_t V = (size_t)c->m->info.n_vocab;
  for (int done = 0; !st && done < n;) {
    const int len = n - done < c->max_tok ? n - done : c->max_tok, last = done + len == n;
    if (all)
      st = clkv__forward_prefill_rows(c, seq, ids + done, len, len, c->logits_all,
                                      out + (size_t)done * V);
    else
      st = clkv__forward_prefill_rows(c, seq, ids + done, len, last, NULL, NULL);
    if (!st && !all && last) memcpy(out, c->h_logits, sizeof(float) * V);
    done += len;
  }
  return st;
}

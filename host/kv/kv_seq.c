/* kv_seq.c — sequences of the KV block pool: new/free/fork, their block tables, growth with
 * copy-on-write and the sliding window, and swapping to and from the host tier. */
#include "kv/kv_pool_int.h"

#include "clkv_internal.h"

#include <stdlib.h>
#include <string.h>

static clkv__kv_seq *live_seq(const clkv__kv_pool *P, int seq) {
  if (!P || seq < 0 || seq >= P->p.max_seqs || !P->s[seq].live) return NULL;
  return &P->s[seq];
}

int clkv__kv_tok_reserve(clkv__kv_seq *s, int32_t need) {
  if (need <= s->cap) return 0;
  int32_t cap = s->cap ? s->cap : 64;
  while (cap < need) cap *= 2;
  int32_t *t = realloc(s->tok, (size_t)cap * sizeof *t);
  if (!t) return -1;
  s->tok = t;
  s->cap = cap;
  return 0;
}

static clkv_status take_slot(clkv__kv_pool *P, int *seq, clkv_error *err) {
  for (int i = 0; i < P->p.max_seqs; i++)
    if (!P->s[i].live) {
      *seq = i;
      return CLKV_OK;
    }
  return clkv__err(err, CLKV_ERR_CONTEXT_FULL,
                   "kv pool: all %d sequences are in use; free one or raise the sequence limit",
                   (int)P->p.max_seqs);
}

clkv_status clkv__kv_seq_new(clkv__kv_pool *P, int *seq, clkv_error *err) {
  if (!P || !seq) return clkv__err(err, CLKV_ERR_INVALID_ARG, "kv seq_new: pool and seq are required");
  *seq = -1;
  clkv_status st = take_slot(P, seq, err);
  if (st == CLKV_OK) P->s[*seq].live = 1;
  return st;
}

void clkv__kv_seq_free(clkv__kv_pool *P, int seq) {
  clkv__kv_seq *s = live_seq(P, seq);
  if (!s) return;
  /* Release the last block first: under LRU, deeper blocks of a prefix chain then go
   * before the blocks they extend. */
  for (int32_t i = s->n_blocks - 1; i >= 0; i--) {
    if (s->g[i] >= 0) clkv__kv_ref_dec(P, s->g[i]);
    s->g[i] = s->dtab[i] = -1;
  }
  s->live = s->swapped = 0;
  s->len = s->committed = s->n_blocks = 0;
  P->gen++;
}

clkv_status clkv__kv_seq_fork(clkv__kv_pool *P, int src, int *seq, clkv_error *err) {
  clkv__kv_seq *a = live_seq(P, src);
  if (seq) *seq = -1;
  if (!a || !seq || a->swapped || a->committed != a->len)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv seq_fork: source %d must be a live, resident sequence whose appended "
                     "tokens are committed (run the forward pass and commit first)", src);
  int id = -1;
  clkv_status st = take_slot(P, &id, err);
  if (st != CLKV_OK) return st;
  clkv__kv_seq *b = &P->s[id];
  if (clkv__kv_tok_reserve(b, a->len) != 0)
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "kv seq_fork: out of host memory");
  if (a->len) memcpy(b->tok, a->tok, (size_t)a->len * sizeof *b->tok);
  for (int32_t i = 0; i < a->n_blocks; i++) {
    b->g[i] = a->g[i];
    b->dtab[i] = a->dtab[i];
    b->hash[i] = a->hash[i];
    if (b->g[i] >= 0) clkv__kv_ref_inc(P, b->g[i]);
  }
  b->len = a->len;
  b->committed = a->committed;
  b->n_blocks = a->n_blocks;
  b->live = 1;
  P->gen++;
  *seq = id;
  return CLKV_OK;
}

int32_t clkv__kv_seq_len(const clkv__kv_pool *P, int seq) {
  const clkv__kv_seq *s = live_seq(P, seq);
  return s ? s->len : -1;
}

const int32_t *clkv__kv_seq_tokens(const clkv__kv_pool *P, int seq) {
  const clkv__kv_seq *s = live_seq(P, seq);
  return s ? s->tok : NULL;
}

int clkv__kv_seq_swapped(const clkv__kv_pool *P, int seq) {
  const clkv__kv_seq *s = live_seq(P, seq);
  return s ? s->swapped : 0;
}

const int32_t *clkv__kv_seq_block_table(const clkv__kv_pool *P, int seq) {
  const clkv__kv_seq *s = live_seq(P, seq);
  return s && !s->swapped ? s->dtab : NULL;
}

int32_t clkv__kv_seq_block(const clkv__kv_pool *P, int seq, int32_t logical, clkv_kv_tier *tier) {
  const clkv__kv_seq *s = live_seq(P, seq);
  if (!s || logical < 0 || logical >= s->n_blocks || s->g[logical] < 0) return -1;
  if (tier) *tier = (clkv_kv_tier)clkv__kv_tier(P, s->g[logical]);
  return clkv__kv_local(P, s->g[logical]);
}

/* ---- growth ---- */
static clkv_status device_full(const clkv__kv_pool *P, const char *what, int32_t need,
                               clkv_error *err) {
  return clkv__err(err, CLKV_ERR_CONTEXT_FULL,
                   "kv %s: needs %d device blocks but only %d are free and %d evictable; the "
                   "rest hold running sequences: preempt one (swap it out or free it), or give "
                   "the KV cache more memory",
                   what, (int)need, (int)P->n_free[0], (int)P->n_ev[0]);
}

clkv_status clkv__kv_seq_append(clkv__kv_pool *P, int seq, const int32_t *tokens, int32_t n,
                               clkv_error *err) {
  clkv__kv_seq *s = live_seq(P, seq);
  if (!s || n < 0 || (n && !tokens))
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "kv append: bad sequence %d or tokens", seq);
  if (s->swapped)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv append: sequence %d is swapped out; swap it in first", seq);
  if (n == 0) return CLKV_OK;
  const int32_t bt = P->bt;
  if ((int64_t)s->len + n > (int64_t)P->mb * bt)
    return clkv__err(err, CLKV_ERR_CONTEXT_FULL,
                     "kv append: sequence %d would hold %lld tokens but a block table holds %d; "
                     "shorten the prompt or output, or raise the context size",
                     seq, (long long)s->len + n, (int)(P->mb * bt));
  if (clkv__kv_tok_reserve(s, s->len + n) != 0)
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "kv append: out of host memory");
  /* Sliding window: the first new position (len) still sees positions >= len - window. */
  if (P->p.sliding_window > 0) {
    for (int32_t i = 0; i < s->n_blocks && (i + 1) * bt <= s->len - P->p.sliding_window; i++)
      if (s->g[i] >= 0) {
        clkv__kv_ref_dec(P, s->g[i]);
        s->g[i] = s->dtab[i] = -1;
        P->gen++;
      }
  }
  const int32_t last = s->len / bt;
  /* A partial tail block is copied before it is written when another sequence holds it,
   * or when it is in the prefix cache (only after a truncation: it was full). */
  const int cow = s->len % bt != 0 && (P->b[s->g[last]].ref > 1 || P->b[s->g[last]].cached);
  const int32_t grow = (s->len + n + bt - 1) / bt - s->n_blocks;
  if (grow + cow > P->n_free[0] + P->n_ev[0]) return device_full(P, "append", grow + cow, err);
  /* Reserve op slots up front so nothing below can fail half-way. */
  size_t need_ops = P->n_ops + (size_t)(grow + cow) * 2 + 1;
  if (need_ops > P->cap_ops) {
    clkv__kv_op *o = realloc(P->ops, need_ops * sizeof *o);
    if (!o) return clkv__err(err, CLKV_ERR_NO_MEMORY, "kv append: out of host memory");
    P->ops = o;
    P->cap_ops = need_ops;
  }
  if (cow) {
    int32_t old = s->g[last], d = clkv__kv_alloc(P, CLKV_KV_TIER_DEVICE);
    clkv__kv_op_push(P, CLKV_KV_OP_COPY_D2D, old, d);
    clkv__kv_ref_inc(P, d);
    clkv__kv_ref_dec(P, old);
    s->g[last] = s->dtab[last] = d;
  }
  for (int32_t i = 0; i < grow; i++) {
    int32_t d = clkv__kv_alloc(P, CLKV_KV_TIER_DEVICE);
    clkv__kv_ref_inc(P, d);
    s->g[s->n_blocks] = s->dtab[s->n_blocks] = d;
    s->n_blocks++;
  }
  memcpy(s->tok + s->len, tokens, (size_t)n * sizeof *tokens);
  s->len += n;
  P->gen++;
  return CLKV_OK;
}

/* ---- swapping ---- */
clkv_status clkv__kv_seq_swap_out(clkv__kv_pool *P, int seq, clkv_error *err) {
  clkv__kv_seq *s = live_seq(P, seq);
  if (!s || s->swapped || s->committed != s->len)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv swap_out: sequence %d must be live, resident and committed", seq);
  int32_t need = 0;
  for (int32_t i = 0; i < s->n_blocks; i++) need += s->g[i] >= 0 && P->b[s->g[i]].ref == 1;
  if (need > P->n_free[1] + P->n_ev[1])
    return clkv__err(err, CLKV_ERR_CONTEXT_FULL,
                     "kv swap_out: sequence %d needs %d host blocks but the host tier has %d "
                     "free and %d evictable; free a sequence instead, or give the host tier "
                     "more memory", seq, (int)need, (int)P->n_free[1], (int)P->n_ev[1]);
  for (int32_t i = 0; i < s->n_blocks; i++) {
    int32_t g = s->g[i];
    if (g < 0 || P->b[g].ref != 1) continue;
    int32_t h = clkv__kv_alloc(P, CLKV_KV_TIER_HOST);
    if (clkv__kv_op_push(P, CLKV_KV_OP_MOVE_D2H, g, clkv__kv_local(P, h)) != 0) {
      clkv__kv_free_push(P, h); /* out of host memory: this block stays on the device */
      continue;
    }
    clkv__kv_relocate(P, g, h, 1);
    s->g[i] = h;
    P->st.swap_out_blocks++;
  }
  for (int32_t i = 0; i < s->n_blocks; i++) s->dtab[i] = -1;
  s->swapped = 1;
  P->gen++;
  return CLKV_OK;
}

clkv_status clkv__kv_seq_swap_in(clkv__kv_pool *P, int seq, clkv_error *err) {
  clkv__kv_seq *s = live_seq(P, seq);
  if (!s || !s->swapped)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "kv swap_in: sequence %d is not swapped out", seq);
  int32_t need = 0;
  for (int32_t i = 0; i < s->n_blocks; i++) need += s->g[i] >= 0 && clkv__kv_tier(P, s->g[i]);
  if (need > P->n_free[0] + P->n_ev[0]) return device_full(P, "swap_in", need, err);
  size_t need_ops = P->n_ops + (size_t)need * 2 + 1;
  if (need_ops > P->cap_ops) {
    clkv__kv_op *o = realloc(P->ops, need_ops * sizeof *o);
    if (!o) return clkv__err(err, CLKV_ERR_NO_MEMORY, "kv swap_in: out of host memory");
    P->ops = o;
    P->cap_ops = need_ops;
  }
  for (int32_t i = 0; i < s->n_blocks; i++) {
    int32_t g = s->g[i];
    if (g < 0 || !clkv__kv_tier(P, g)) continue;
    int32_t d = clkv__kv_alloc(P, CLKV_KV_TIER_DEVICE);
    clkv__kv_op_push(P, CLKV_KV_OP_MOVE_H2D, clkv__kv_local(P, g), d);
    clkv__kv_relocate(P, g, d, 1);
    s->g[i] = d;
    P->st.swap_in_blocks++;
  }
  for (int32_t i = 0; i < s->n_blocks; i++) s->dtab[i] = s->g[i];
  s->swapped = 0;
  P->gen++;
  return CLKV_OK;
}

/* ---- rollback ---- */
/* Drops block g from the prefix cache when this sequence is its only holder (its tokens are
 * being cut, so its cached contents no longer describe what the sequence will write). */
static void uncache_private(clkv__kv_pool *P, int32_t g) {
  if (g >= 0 && P->b[g].cached && P->b[g].ref == 1) clkv__kv_unregister(P, g);
}

clkv_status clkv__kv_seq_truncate(clkv__kv_pool *P, int seq, int32_t len, clkv_error *err) {
  clkv__kv_seq *s = live_seq(P, seq);
  if (!s || s->swapped || len < 0 || len > s->len)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv truncate: sequence %d must be live and resident, and %d at most its "
                     "length", seq, (int)len);
  const int32_t bt = P->bt, keep = (len + bt - 1) / bt;
  if (len % bt && s->g[len / bt] < 0)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv truncate: position %d of sequence %d is out of the sliding window",
                     (int)len, seq);
  if (len == s->len) return CLKV_OK;
  for (int32_t i = s->n_blocks - 1; i >= keep; i--) {
    uncache_private(P, s->g[i]);
    if (s->g[i] >= 0) clkv__kv_ref_dec(P, s->g[i]);
    s->g[i] = s->dtab[i] = -1;
  }
  if (len % bt) uncache_private(P, s->g[len / bt]);
  s->n_blocks = keep;
  s->len = len;
  if (s->committed > len) s->committed = len;
  P->gen++;
  return CLKV_OK;
}

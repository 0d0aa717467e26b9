/* kv_pool.c — the KV block pool's core: create/free, free stacks and evictable lists,
 * reference counts, allocation with eviction by policy, relocation between tiers, the op
 * list, statistics and the invariant check. */
#include "kv/kv_pool_int.h"

#include "clkv_internal.h"

#include <stdlib.h>
#include <string.h>

clkv__kv_pool_params clkv__kv_pool_default_params(void) {
  return (clkv__kv_pool_params){
      .n_device_blocks = 256,
      .n_host_blocks = 0,
      .block_tokens = 16,
      .max_seqs = 1,
      .max_blocks_per_seq = 128,
      .policy = CLKV_KV_EVICT_LRU,
      .sliding_window = 0,
      .prefix_seed = 0,
      .bytes_per_block = 0,
  };
}

clkv_status clkv__kv_pool_create(const clkv__kv_pool_params *p, clkv__kv_pool **out,
                                clkv_error *err) {
  if (!p || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "kv pool: params and out are required");
  *out = NULL;
  if (p->block_tokens != 8 && p->block_tokens != 16 && p->block_tokens != 32)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv pool: block size %d is not supported; use 8, 16 or 32 tokens",
                     (int)p->block_tokens);
  if (p->n_device_blocks <= 0 || p->n_host_blocks < 0 || p->max_seqs <= 0 ||
      p->max_blocks_per_seq <= 0 || p->sliding_window < 0 ||
      p->n_device_blocks > (1 << 28) || p->n_host_blocks > (1 << 28) ||
      p->max_blocks_per_seq > (1 << 24) / p->block_tokens || p->max_seqs > (1 << 20))
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv pool: bad sizes (device blocks %d, host blocks %d, sequences %d, "
                     "blocks per sequence %d, window %d); all must be positive (host blocks and "
                     "window may be 0)",
                     (int)p->n_device_blocks, (int)p->n_host_blocks, (int)p->max_seqs,
                     (int)p->max_blocks_per_seq, (int)p->sliding_window);
  if ((unsigned)p->policy > CLKV_KV_EVICT_FIFO)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv pool: unknown eviction policy %d; use LRU, LFU or FIFO", (int)p->policy);
  clkv__kv_pool *P = calloc(1, sizeof *P);
  if (!P) return clkv__err(err, CLKV_ERR_NO_MEMORY, "kv pool: out of host memory");
  P->p = *p;
  P->D = p->n_device_blocks;
  P->H = p->n_host_blocks;
  P->bt = p->block_tokens;
  P->mb = p->max_blocks_per_seq;
  const size_t nb = (size_t)P->D + (size_t)P->H;
  P->n_bucket = 16;
  while (P->n_bucket < 2 * nb) P->n_bucket *= 2;
  P->b = calloc(nb, sizeof *P->b);
  P->btok = calloc(nb * (size_t)P->bt, sizeof *P->btok);
  P->free_stack[0] = malloc((size_t)P->D * sizeof(int32_t));
  P->free_stack[1] = malloc(((size_t)P->H + 1) * sizeof(int32_t));
  P->bucket = malloc(P->n_bucket * sizeof(int32_t));
  P->s = calloc((size_t)p->max_seqs, sizeof *P->s);
  if (!P->b || !P->btok || !P->free_stack[0] || !P->free_stack[1] || !P->bucket || !P->s)
    goto oom;
  for (int i = 0; i < p->max_seqs; i++) {
    clkv__kv_seq *s = &P->s[i];
    s->g = malloc((size_t)P->mb * sizeof *s->g);
    s->dtab = malloc((size_t)P->mb * sizeof *s->dtab);
    s->hash = calloc((size_t)P->mb, sizeof *s->hash);
    if (!s->g || !s->dtab || !s->hash) goto oom;
    for (int32_t j = 0; j < P->mb; j++) s->g[j] = s->dtab[j] = -1;
  }
  for (uint32_t i = 0; i < P->n_bucket; i++) P->bucket[i] = -1;
  for (int t = 0; t < 2; t++) P->ev_head[t] = P->ev_tail[t] = -1;
  /* Stacks pop from the end: push in reverse so block 0 is handed out first. */
  for (int32_t g = (int32_t)nb - 1; g >= 0; g--) {
    P->b[g].hnext = P->b[g].eprev = P->b[g].enext = -1;
    clkv__kv_free_push(P, g);
  }
  *out = P;
  return CLKV_OK;
oom:
  clkv__kv_pool_free(P);
  return clkv__err(err, CLKV_ERR_NO_MEMORY,
                   "kv pool: out of host memory for %zu block records; use fewer blocks", nb);
}

void clkv__kv_pool_free(clkv__kv_pool *P) {
  if (!P) return;
  if (P->s)
    for (int i = 0; i < P->p.max_seqs; i++) {
      free(P->s[i].tok);
      free(P->s[i].g);
      free(P->s[i].dtab);
      free(P->s[i].hash);
    }
  free(P->s);
  free(P->b);
  free(P->btok);
  free(P->free_stack[0]);
  free(P->free_stack[1]);
  free(P->bucket);
  free(P->ops);
  free(P);
}

/* ---- lists ---- */
void clkv__kv_free_push(clkv__kv_pool *P, int32_t g) {
  int t = clkv__kv_tier(P, g);
  P->b[g].in_free = 1;
  P->free_stack[t][P->n_free[t]++] = g;
}

void clkv__kv_ev_push(clkv__kv_pool *P, int32_t g) {
  int t = clkv__kv_tier(P, g);
  clkv__kv_block *b = &P->b[g];
  b->in_evl = 1;
  b->enext = -1;
  b->eprev = P->ev_tail[t];
  if (P->ev_tail[t] >= 0) P->b[P->ev_tail[t]].enext = g;
  else P->ev_head[t] = g;
  P->ev_tail[t] = g;
  P->n_ev[t]++;
}

void clkv__kv_ev_unlink(clkv__kv_pool *P, int32_t g) {
  int t = clkv__kv_tier(P, g);
  clkv__kv_block *b = &P->b[g];
  if (!b->in_evl) return;
  if (b->eprev >= 0) P->b[b->eprev].enext = b->enext;
  else P->ev_head[t] = b->enext;
  if (b->enext >= 0) P->b[b->enext].eprev = b->eprev;
  else P->ev_tail[t] = b->eprev;
  b->eprev = b->enext = -1;
  b->in_evl = 0;
  P->n_ev[t]--;
}

/* ---- references ---- */
void clkv__kv_ref_inc(clkv__kv_pool *P, int32_t g) {
  clkv__kv_ev_unlink(P, g);
  P->b[g].ref++;
}

void clkv__kv_ref_dec(clkv__kv_pool *P, int32_t g) {
  clkv__kv_block *b = &P->b[g];
  if (--b->ref > 0) return;
  if (b->cached) {
    b->last_use = ++P->tick;
    clkv__kv_ev_push(P, g);
  } else {
    clkv__kv_free_push(P, g);
  }
}

/* ---- ops ---- */
int clkv__kv_op_push(clkv__kv_pool *P, clkv__kv_op_kind kind, int32_t src, int32_t dst) {
  if (P->n_ops == P->cap_ops) {
    size_t cap = P->cap_ops ? 2 * P->cap_ops : 64;
    clkv__kv_op *o = realloc(P->ops, cap * sizeof *o);
    if (!o) return -1;
    P->ops = o;
    P->cap_ops = cap;
  }
  P->ops[P->n_ops].kind = kind;
  P->ops[P->n_ops].src = src;
  P->ops[P->n_ops].dst = dst;
  P->n_ops++;
  if (kind == CLKV_KV_OP_COPY_D2D) {
    P->st.cow_copies++;
  } else {
    P->st.blocks_moved++;
    P->st.bytes_moved += P->p.bytes_per_block;
  }
  return 0;
}

void clkv__kv_pool_take_ops(clkv__kv_pool *P, const clkv__kv_op **ops, size_t *n) {
  if (ops) *ops = P ? P->ops : NULL;
  if (n) *n = P ? P->n_ops : 0;
  if (P) P->n_ops = 0;
}

/* ---- allocation and eviction ---- */
/* Does a come before b in the policy's eviction order? */
static int evicts_first(const clkv__kv_pool *P, const clkv__kv_block *a, const clkv__kv_block *b) {
  switch (P->p.policy) {
  case CLKV_KV_EVICT_LFU:
    if (a->hits != b->hits) return a->hits < b->hits;
    return a->last_use < b->last_use;
  case CLKV_KV_EVICT_FIFO: return a->reg_time < b->reg_time;
  case CLKV_KV_EVICT_LRU:
  default: return a->last_use < b->last_use;
  }
}

static int32_t pick_victim(const clkv__kv_pool *P, int t) {
  int32_t best = -1;
  for (int32_t g = P->ev_head[t]; g >= 0; g = P->b[g].enext)
    if (best < 0 || evicts_first(P, &P->b[g], &P->b[best])) best = g;
  return best;
}

/* Makes one block of tier t free by evicting the policy's victim: a device block moves to
 * the host tier when a host block can be had, else it is dropped. 0 on success. */
static int evict_one(clkv__kv_pool *P, int t) {
  int32_t v = pick_victim(P, t);
  if (v < 0) return -1;
  if (t == CLKV_KV_TIER_DEVICE) {
    P->st.evictions++;
    int32_t h = P->H > 0 ? clkv__kv_alloc(P, CLKV_KV_TIER_HOST) : -1;
    if (h >= 0 && clkv__kv_op_push(P, CLKV_KV_OP_MOVE_D2H, v, clkv__kv_local(P, h)) == 0) {
      clkv__kv_relocate(P, v, h, 0);
      return 0;
    }
    if (h >= 0) clkv__kv_free_push(P, h);
  } else {
    P->st.host_evictions++;
  }
  clkv__kv_unregister(P, v);
  return 0;
}

int32_t clkv__kv_alloc(clkv__kv_pool *P, int t) {
  if (!P->n_free[t] && evict_one(P, t) != 0) return -1;
  int32_t g = P->free_stack[t][--P->n_free[t]];
  P->b[g].in_free = 0;
  return g;
}

void clkv__kv_relocate(clkv__kv_pool *P, int32_t from, int32_t to, int32_t nref) {
  clkv__kv_block *f = &P->b[from], *d = &P->b[to];
  clkv__kv_ev_unlink(P, from);
  if (f->cached) {
    memcpy(P->btok + (size_t)to * P->bt, P->btok + (size_t)from * P->bt,
           (size_t)P->bt * sizeof *P->btok);
    clkv__kv_hash_remove(P, from);
    f->cached = 0;
    d->cached = 1;
    d->hash = f->hash;
    d->parent = f->parent;
    d->last_use = f->last_use;
    d->reg_time = f->reg_time;
    d->hits = f->hits;
    clkv__kv_hash_insert(P, to);
  }
  f->ref -= nref;
  d->ref += nref;
  if (d->ref == 0 && d->cached) clkv__kv_ev_push(P, to);
  if (f->ref == 0) clkv__kv_free_push(P, from);
}

/* ---- statistics ---- */
void clkv__kv_pool_stats_get(const clkv__kv_pool *P, clkv__kv_pool_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!P) return;
  *out = P->st;
  const int32_t total[2] = {P->D, P->H};
  for (int t = 0; t < 2; t++) {
    out->blocks_total[t] = total[t];
    out->blocks_free[t] = P->n_free[t];
    out->blocks_cached[t] = P->n_ev[t];
    out->blocks_used[t] = total[t] - P->n_free[t] - P->n_ev[t];
    out->bytes_total[t] = (size_t)total[t] * P->p.bytes_per_block;
    out->bytes_used[t] = (size_t)out->blocks_used[t] * P->p.bytes_per_block;
    out->bytes_cached[t] = (size_t)out->blocks_cached[t] * P->p.bytes_per_block;
  }
  out->bytes_moved = out->blocks_moved * P->p.bytes_per_block;
}

uint64_t clkv__kv_pool_generation(const clkv__kv_pool *P) { return P ? P->gen : 0; }

void clkv__kv_pool_drop_cached(clkv__kv_pool *P) {
  if (!P) return;
  for (int t = 0; t < 2; t++)
    while (P->ev_head[t] >= 0) clkv__kv_unregister(P, P->ev_head[t]);
}

int32_t clkv__kv_block_refcount(const clkv__kv_pool *P, clkv_kv_tier tier, int32_t id) {
  if (!P || id < 0 || (tier == CLKV_KV_TIER_DEVICE ? id >= P->D : id >= P->H)) return -1;
  return P->b[tier == CLKV_KV_TIER_DEVICE ? id : P->D + id].ref;
}

/* ---- invariant check ---- */
#define FAIL(...) return clkv__err(err, CLKV_ERR_INTERNAL, "kv pool check: " __VA_ARGS__)

static clkv_status check_seqs(const clkv__kv_pool *P, int32_t *refs, clkv_error *err) {
  for (int i = 0; i < P->p.max_seqs; i++) {
    const clkv__kv_seq *s = &P->s[i];
    if (!s->live) {
      if (s->len || s->n_blocks) FAIL("free sequence %d has %d tokens", i, (int)s->len);
      continue;
    }
    if (s->committed < 0 || s->committed > s->len) FAIL("seq %d committed %d of %d", i,
                                                         (int)s->committed, (int)s->len);
    if (s->n_blocks != (s->len + P->bt - 1) / P->bt || s->n_blocks > P->mb)
      FAIL("seq %d has %d blocks for %d tokens", i, (int)s->n_blocks, (int)s->len);
    for (int32_t j = 0; j < P->mb; j++) {
      int32_t g = s->g[j];
      if (j >= s->n_blocks) {
        if (g != -1 || s->dtab[j] != -1) FAIL("seq %d has entry %d past its end", i, (int)j);
        continue;
      }
      if (g == -1) {
        if (!P->p.sliding_window) FAIL("seq %d has a hole at block %d", i, (int)j);
        if (s->dtab[j] != -1) FAIL("seq %d device table disagrees at %d", i, (int)j);
        continue;
      }
      if (g < 0 || g >= P->D + P->H) FAIL("seq %d block %d id %d out of range", i, (int)j, (int)g);
      int t = clkv__kv_tier(P, g);
      if (t == CLKV_KV_TIER_HOST && !s->swapped) FAIL("resident seq %d holds host block", i);
      if (s->dtab[j] != (t == CLKV_KV_TIER_DEVICE && !s->swapped ? g : -1))
        FAIL("seq %d device table disagrees at %d", i, (int)j);
      refs[g]++;
      const clkv__kv_block *b = &P->b[g];
      if (b->cached && (j + 1) * P->bt <= s->committed) {
        if (memcmp(P->btok + (size_t)g * P->bt, s->tok + (size_t)j * P->bt,
                   (size_t)P->bt * sizeof(int32_t)))
          FAIL("seq %d block %d: cached tokens differ from the sequence's", i, (int)j);
        if (b->hash != s->hash[j]) FAIL("seq %d block %d: hash differs", i, (int)j);
      }
      /* (a truncated sequence may end inside a cached block: its next append copies it) */
      const int cut_tail = s->len % P->bt && j == s->len / P->bt;
      if (b->cached && (j + 1) * P->bt > s->committed && !cut_tail)
        FAIL("seq %d block %d: uncommitted block is cached", i, (int)j);
    }
  }
  return CLKV_OK;
}

/* Per block: its refcount equals the table references, it is on the free stack or the
 * evictable list exactly when its state says so, and a cached block is found under its
 * hash. Counts the cached blocks and each tier's free and evictable ones. */
static clkv_status check_blocks(const clkv__kv_pool *P, const int32_t *refs, int32_t *n_cached,
                                int32_t n_free[2], int32_t n_ev[2], clkv_error *err) {
  for (int32_t g = 0; g < P->D + P->H; g++) {
    const clkv__kv_block *b = &P->b[g];
    const int t = clkv__kv_tier(P, g);
    if (b->ref != refs[g])
      FAIL("block %d refcount %d but %d table references", (int)g, (int)b->ref, (int)refs[g]);
    const int want_free = !b->cached && b->ref == 0, want_ev = b->cached && b->ref == 0;
    if (b->in_free != want_free || b->in_evl != want_ev)
      FAIL("block %d (ref %d, cached %d) free %d evictable %d", (int)g, (int)b->ref, b->cached,
           b->in_free, b->in_evl);
    if (b->cached) {
      (*n_cached)++;
      const int32_t *tok = P->btok + (size_t)g * P->bt;
      if (clkv__kv_find(P, b->hash, b->parent, tok) != g ||
          clkv__kv_hash_block(b->parent, tok, P->bt, P->p.prefix_seed) != b->hash)
        FAIL("cached block %d is not found under its hash", (int)g);
    }
    n_free[t] += want_free;
    n_ev[t] += want_ev;
  }
  return CLKV_OK;
}

/* Tier t's free stack and evictable list: the counts agree, no duplicates, only blocks of
 * the tier in the right state, the list's links consistent. seen: a mark per block. */
static clkv_status check_tier_lists(const clkv__kv_pool *P, int t, int32_t n_free, int32_t n_ev,
                                    unsigned char *seen, clkv_error *err) {
  const int32_t nb = P->D + P->H;
  if (n_free != P->n_free[t] || n_ev != P->n_ev[t])
    FAIL("tier %d counts free %d/%d evictable %d/%d", t, (int)n_free, (int)P->n_free[t],
         (int)n_ev, (int)P->n_ev[t]);
  for (int32_t k = 0; k < P->n_free[t]; k++) {
    const int32_t g = P->free_stack[t][k];
    if (g < 0 || g >= nb || clkv__kv_tier(P, g) != t || seen[g] || !P->b[g].in_free)
      FAIL("free stack %d entry %d (block %d) is a duplicate, in use or in the wrong tier", t,
           (int)k, (int)g);
    seen[g] = 1;
  }
  int32_t k = 0, prev = -1;
  for (int32_t g = P->ev_head[t]; g >= 0 && k <= nb; g = P->b[g].enext, k++) {
    if (P->b[g].eprev != prev || clkv__kv_tier(P, g) != t || !P->b[g].in_evl)
      FAIL("evictable list %d broken at block %d", t, (int)g);
    prev = g;
  }
  if (k != P->n_ev[t] || P->ev_tail[t] != prev)
    FAIL("evictable list %d has %d entries, count says %d", t, (int)k, (int)P->n_ev[t]);
  return CLKV_OK;
}

/* The hash table holds exactly the cached blocks. */
static clkv_status check_hash_table(const clkv__kv_pool *P, int32_t n_cached, clkv_error *err) {
  const int32_t nb = P->D + P->H;
  int32_t hashed = 0;
  for (uint32_t i = 0; i < P->n_bucket; i++)
    for (int32_t g = P->bucket[i]; g >= 0 && hashed <= nb; g = P->b[g].hnext) hashed++;
  if (hashed != n_cached || hashed != P->n_hashed)
    FAIL("hash table holds %d blocks, %d are cached", (int)hashed, (int)n_cached);
  return CLKV_OK;
}

clkv_status clkv__kv_pool_check(const clkv__kv_pool *P, clkv_error *err) {
  if (!P) FAIL("no pool");
  const int32_t nb = P->D + P->H;
  int32_t *refs = calloc((size_t)nb, sizeof *refs);
  unsigned char *seen = calloc((size_t)nb, 1);
  int32_t n_cached = 0, n_free[2] = {0, 0}, n_ev[2] = {0, 0};
  clkv_status st = CLKV_OK;
  if (!refs || !seen) st = clkv__err(err, CLKV_ERR_NO_MEMORY, "kv pool check: out of host memory");
  if (!st) st = check_seqs(P, refs, err);
  if (!st) st = check_blocks(P, refs, &n_cached, n_free, n_ev, err);
  for (int t = 0; t < 2 && !st; t++) st = check_tier_lists(P, t, n_free[t], n_ev[t], seen, err);
  if (!st) st = check_hash_table(P, n_cached, err);
  free(refs);
  free(seen);
  return st;
}

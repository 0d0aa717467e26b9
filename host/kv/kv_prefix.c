/* kv_prefix.c — the prefix cache of the KV block pool: the hash chain over full token
 * blocks, the hash table, registration at commit, reuse at prefill_begin (with host-tier
 * hits moved back to the device), and the disk-tier export/import hooks. */
#include "kv/kv_pool_int.h"

#include "clkv_internal.h"

#include <string.h>

/* ---- the hash chain ---- */
static uint64_t mix64(uint64_t x) { /* a strong 64-bit finalizer (splitmix64's) */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t clkv__kv_hash_root(uint64_t prefix_seed) {
  return mix64(prefix_seed ^ 0x6b76636163686521ULL); /* "kvcache!" */
}

uint64_t clkv__kv_hash_block(uint64_t parent, const int32_t *tokens, int32_t n,
                            uint64_t prefix_seed) {
  uint64_t h = mix64(parent + 0x9e3779b97f4a7c15ULL * (uint64_t)(n + 1)) ^ mix64(prefix_seed);
  for (int32_t i = 0; i < n; i++) h = mix64(h ^ ((uint64_t)(uint32_t)tokens[i] + 0x51ed270bULL));
  return h;
}

/* ---- the hash table (chained through the block records) ---- */
static uint32_t bucket_of(const clkv__kv_pool *P, uint64_t hash) {
  return (uint32_t)(hash ^ (hash >> 32)) & (P->n_bucket - 1);
}

int32_t clkv__kv_find(const clkv__kv_pool *P, uint64_t hash, uint64_t parent,
                      const int32_t *tokens) {
  for (int32_t g = P->bucket[bucket_of(P, hash)]; g >= 0; g = P->b[g].hnext) {
    const clkv__kv_block *b = &P->b[g];
    if (b->hash == hash && b->parent == parent &&
        !memcmp(P->btok + (size_t)g * P->bt, tokens, (size_t)P->bt * sizeof *tokens))
      return g;
  }
  return -1;
}

static int hash_present(const clkv__kv_pool *P, uint64_t hash) {
  for (int32_t g = P->bucket[bucket_of(P, hash)]; g >= 0; g = P->b[g].hnext)
    if (P->b[g].hash == hash) return 1;
  return 0;
}

void clkv__kv_hash_insert(clkv__kv_pool *P, int32_t g) {
  uint32_t k = bucket_of(P, P->b[g].hash);
  P->b[g].hnext = P->bucket[k];
  P->bucket[k] = g;
  P->n_hashed++;
}

void clkv__kv_hash_remove(clkv__kv_pool *P, int32_t g) {
  int32_t *link = &P->bucket[bucket_of(P, P->b[g].hash)];
  while (*link >= 0 && *link != g) link = &P->b[*link].hnext;
  if (*link == g) {
    *link = P->b[g].hnext;
    P->b[g].hnext = -1;
    P->n_hashed--;
  }
}

void clkv__kv_register(clkv__kv_pool *P, int32_t g, uint64_t hash, uint64_t parent,
                       const int32_t *tokens) {
  clkv__kv_block *b = &P->b[g];
  memcpy(P->btok + (size_t)g * P->bt, tokens, (size_t)P->bt * sizeof *tokens);
  b->cached = 1;
  b->hash = hash;
  b->parent = parent;
  b->reg_time = b->last_use = ++P->tick;
  b->hits = 0;
  clkv__kv_hash_insert(P, g);
  if (b->ref == 0) clkv__kv_ev_push(P, g); /* import: a fresh, unreferenced host block */
}

void clkv__kv_unregister(clkv__kv_pool *P, int32_t g) {
  clkv__kv_block *b = &P->b[g];
  if (!b->cached) return;
  clkv__kv_hash_remove(P, g);
  clkv__kv_ev_unlink(P, g);
  b->cached = 0;
  if (b->ref == 0) clkv__kv_free_push(P, g);
}

/* ---- sequences and the cache ---- */
static clkv__kv_seq *resident(clkv__kv_pool *P, int seq) {
  if (!P || seq < 0 || seq >= P->p.max_seqs || !P->s[seq].live || P->s[seq].swapped) return NULL;
  return &P->s[seq];
}

void clkv__kv_seq_commit(clkv__kv_pool *P, int seq) {
  clkv__kv_seq *s = resident(P, seq);
  if (!s) return;
  const int32_t bt = P->bt, full = s->len / bt;
  for (int32_t i = s->committed / bt; i < full; i++) {
    uint64_t parent = i ? s->hash[i - 1] : clkv__kv_hash_root(P->p.prefix_seed);
    const int32_t *tk = s->tok + (size_t)i * bt;
    s->hash[i] = clkv__kv_hash_block(parent, tk, bt, P->p.prefix_seed);
    int32_t g = s->g[i];
    /* A block whose hash is already cached (computed twice) stays private. */
    if (g >= 0 && !P->b[g].cached && !hash_present(P, s->hash[i]))
      clkv__kv_register(P, g, s->hash[i], parent, tk);
  }
  s->committed = s->len;
}

clkv_status clkv__kv_seq_prefill_begin(clkv__kv_pool *P, int seq, const int32_t *tokens,
                                      int32_t n, int32_t *cached, clkv_error *err) {
  if (cached) *cached = 0;
  clkv__kv_seq *s = resident(P, seq);
  if (!s || !tokens || n <= 0 || !cached)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv prefill_begin: needs a live, resident sequence (got %d), tokens and "
                     "n > 0 (got %d)", seq, (int)n);
  if (s->len)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "kv prefill_begin: sequence %d already holds %d tokens; call it on an "
                     "empty sequence, or append", seq, (int)s->len);
  const int32_t bt = P->bt;
  int32_t kmax = (n - 1) / bt; /* at least one token is left to compute */
  if (kmax > P->mb) kmax = P->mb;
  if (clkv__kv_tok_reserve(s, kmax * bt) != 0)
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "kv prefill_begin: out of host memory");
  P->st.prompt_tokens += (uint64_t)n;
  /* 1. The leading chain of cached blocks; pin each so no eviction below can take it. */
  uint64_t parent = clkv__kv_hash_root(P->p.prefix_seed);
  int32_t k = 0;
  for (; k < kmax; k++) {
    const int32_t *tk = tokens + (size_t)k * bt;
    uint64_t h = clkv__kv_hash_block(parent, tk, bt, P->p.prefix_seed);
    int32_t g = clkv__kv_find(P, h, parent, tk);
    if (g < 0) break;
    clkv__kv_ref_inc(P, g);
    s->g[k] = g;
    s->hash[k] = parent = h;
  }
  /* 2. Host hits move to new device blocks; stop at the first that cannot. */
  for (int32_t i = 0; i < k; i++) {
    int32_t g = s->g[i];
    if (!clkv__kv_tier(P, g)) continue;
    int32_t d = clkv__kv_alloc(P, CLKV_KV_TIER_DEVICE);
    if (d >= 0 && clkv__kv_op_push(P, CLKV_KV_OP_MOVE_H2D, clkv__kv_local(P, g), d) != 0) {
      clkv__kv_free_push(P, d);
      d = -1;
    }
    if (d < 0) {
      for (int32_t j = i; j < k; j++) {
        clkv__kv_ref_dec(P, s->g[j]);
        s->g[j] = -1;
      }
      k = i;
      break;
    }
    clkv__kv_relocate(P, g, d, 1); /* the pin on g becomes the sequence's reference on d */
    s->g[i] = d;
  }
  for (int32_t i = 0; i < k; i++) {
    clkv__kv_block *b = &P->b[s->g[i]];
    b->hits++;
    b->last_use = ++P->tick;
    s->dtab[i] = s->g[i];
  }
  if (k) memcpy(s->tok, tokens, (size_t)k * bt * sizeof *tokens);
  s->len = s->committed = k * bt;
  s->n_blocks = k;
  P->st.prefix_hit_tokens += (uint64_t)k * bt;
  if (k) P->gen++;
  *cached = k * bt;
  return CLKV_OK;
}

/* ---- disk tier hooks ---- */
void clkv__kv_pool_export_prefix(const clkv__kv_pool *P, clkv_kv_export_fn cb, void *user) {
  if (!P || !cb) return;
  for (int32_t g = 0; g < P->D + P->H; g++) {
    const clkv__kv_block *b = &P->b[g];
    if (b->cached && cb(user, b->hash, b->parent, P->btok + (size_t)g * P->bt, P->bt,
                        (clkv_kv_tier)clkv__kv_tier(P, g), clkv__kv_local(P, g)))
      return;
  }
}

clkv_status clkv__kv_pool_import_block(clkv__kv_pool *P, uint64_t hash, uint64_t parent_hash,
                                      const int32_t *tokens, int32_t *host_id, clkv_error *err) {
  if (host_id) *host_id = -1;
  if (!P || !tokens || !host_id)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "kv import: pool, tokens and host_id are required");
  if (!P->H)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED,
                     "kv import: the pool has no host tier; give it host blocks to read a "
                     "prefix cache from disk");
  if (clkv__kv_hash_block(parent_hash, tokens, P->bt, P->p.prefix_seed) != hash)
    return clkv__err(err, CLKV_ERR_FORMAT,
                     "kv import: block hash does not match its tokens under this model and KV "
                     "precision (another model, KV type or block size, or damaged data); "
                     "ignore or delete this prefix cache entry");
  if (hash_present(P, hash)) return CLKV_OK;
  int32_t h = clkv__kv_alloc(P, CLKV_KV_TIER_HOST);
  if (h < 0)
    return clkv__err(err, CLKV_ERR_CONTEXT_FULL,
                     "kv import: every host block is referenced; import fewer blocks or give "
                     "the host tier more memory");
  clkv__kv_register(P, h, hash, parent_hash, tokens);
  *host_id = clkv__kv_local(P, h);
  return CLKV_OK;
}

/* kv_pool_int.h — the KV block pool's private state, shared by kv_pool.c (blocks, lists,
 * eviction, stats, checks), kv_seq.c (sequences, growth, swapping) and kv_prefix.c (hash
 * chain, prefix cache, disk hooks). Block ids are global here: 0..D-1 device, D..D+H-1 host. */
#ifndef CLKV_KV_POOL_INT_H
#define CLKV_KV_POOL_INT_H

#include "kv/kv_pool.h"

typedef struct clkv__kv_block {
  int32_t ref;          /* table references (pins during a call count too) */
  int32_t hnext;        /* next block in the same hash bucket, -1 = end */
  int32_t eprev, enext; /* links in its tier's evictable list */
  uint8_t cached;       /* registered in the prefix cache (full, computed block) */
  uint8_t in_evl;       /* on the evictable list (cached && ref == 0) */
  uint8_t in_free;      /* on the free stack (!cached && ref == 0) */
  uint64_t hash, parent;
  uint64_t last_use, reg_time, hits; /* policy keys: ticks and prefix-hit count */
} clkv__kv_block;

typedef struct clkv__kv_seq {
  int live, swapped;
  int32_t len;       /* tokens recorded (positions reserved) */
  int32_t committed; /* tokens whose K/V the engine has written */
  int32_t n_blocks;  /* logical blocks reserved: ceil(len / block_tokens) */
  int32_t *tok, cap; /* (cap) tokens */
  int32_t *g;        /* (max_blocks) global block ids, -1 = none */
  int32_t *dtab;     /* (max_blocks) device ids for the engine, -1 = none */
  uint64_t *hash;    /* (max_blocks) chain hash of each committed full block */
} clkv__kv_seq;

struct clkv__kv_pool {
  clkv__kv_pool_params p;
  int32_t D, H, bt, mb;
  clkv__kv_block *b;     /* (D + H) */
  int32_t *btok;         /* (D + H, bt) tokens of cached blocks */
  int32_t *free_stack[2], n_free[2];
  int32_t ev_head[2], ev_tail[2], n_ev[2];
  int32_t *bucket;       /* (n_bucket) hash buckets, power of two */
  uint32_t n_bucket;
  int32_t n_hashed;
  clkv__kv_seq *s;       /* (max_seqs) */
  clkv__kv_op *ops;
  size_t n_ops, cap_ops;
  uint64_t tick, gen;
  clkv__kv_pool_stats st; /* counters only; block counts filled by stats_get */
};

static inline int clkv__kv_tier(const clkv__kv_pool *P, int32_t g) { return g >= P->D; }
static inline int32_t clkv__kv_local(const clkv__kv_pool *P, int32_t g) {
  return g >= P->D ? g - P->D : g;
}

/* kv_pool.c */
void clkv__kv_ev_push(clkv__kv_pool *P, int32_t g);
void clkv__kv_ev_unlink(clkv__kv_pool *P, int32_t g);
void clkv__kv_free_push(clkv__kv_pool *P, int32_t g);
void clkv__kv_ref_inc(clkv__kv_pool *P, int32_t g);
void clkv__kv_ref_dec(clkv__kv_pool *P, int32_t g);
/* A free block of the tier, evicting a cached one by the policy if needed; -1 if none.
 * The block returned has ref 0 and is on no list: the caller takes a reference. */
int32_t clkv__kv_alloc(clkv__kv_pool *P, int tier);
/* Moves from's prefix-cache registration (if any) and nref references to the fresh block to. */
void clkv__kv_relocate(clkv__kv_pool *P, int32_t from, int32_t to, int32_t nref);
int clkv__kv_op_push(clkv__kv_pool *P, clkv__kv_op_kind kind, int32_t src, int32_t dst);
int clkv__kv_tok_reserve(clkv__kv_seq *s, int32_t need);

/* kv_prefix.c */
int32_t clkv__kv_find(const clkv__kv_pool *P, uint64_t hash, uint64_t parent,
                      const int32_t *tokens);
void clkv__kv_hash_insert(clkv__kv_pool *P, int32_t g);
void clkv__kv_hash_remove(clkv__kv_pool *P, int32_t g);
/* Registers block g (not cached) under hash with its tokens. */
void clkv__kv_register(clkv__kv_pool *P, int32_t g, uint64_t hash, uint64_t parent,
                       const int32_t *tokens);
/* Removes g's registration; g returns to the free stack if unreferenced. */
void clkv__kv_unregister(clkv__kv_pool *P, int32_t g);

#endif /* CLKV_KV_POOL_INT_H */

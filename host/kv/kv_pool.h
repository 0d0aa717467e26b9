/* kv_pool.h — host-side block manager of the paged, hierarchical KV cache: block tables,
 * reference counts, the prefix cache (hash chain of full token blocks), copy-on-write,
 * eviction (LRU/LFU/FIFO), the host tier and swapping. A pure data structure: it makes no
 * OpenCL call; it appends device copies to an op list the engine executes. See
 * docs/KV_CACHE.md.
 *
 * Usage (engine side):
 *   clkv__kv_pool_params p = clkv__kv_pool_default_params();
 *   p.n_device_blocks = ...; p.n_host_blocks = ...; p.block_tokens = 16; p.max_seqs = 8;
 *   p.max_blocks_per_seq = (n_ctx + 15) / 16; p.prefix_seed = hash(model file, kv type);
 *   clkv__kv_pool_create(&p, &pool, &err);
 *   int s; clkv__kv_seq_new(pool, &s, &err);
 *   int32_t cached = 0;
 *   clkv__kv_seq_prefill_begin(pool, s, prompt, n, &cached, &err); // reuse cached blocks
 *   clkv__kv_seq_append(pool, s, prompt + cached, n - cached, &err); // reserve the rest
 *   clkv__kv_pool_take_ops(pool, &ops, &n_ops);  // execute them in order on the device
 *   upload clkv__kv_seq_block_table(pool, s) if clkv__kv_pool_generation() changed
 *   ... forward pass writes K/V of positions [cached, n) ...
 *   clkv__kv_seq_commit(pool, s);                  // full blocks become shareable
 *   clkv__kv_seq_free(pool, s); clkv__kv_pool_free(pool);
 */
#ifndef CLKV_KV_POOL_H
#define CLKV_KV_POOL_H

#include "clkv.h"

#include <stddef.h>
#include <stdint.h>

typedef enum clkv__kv_evict_policy {
  CLKV_KV_EVICT_LRU = 0, /* least recently used (taken, hit, released) first */
  CLKV_KV_EVICT_LFU = 1, /* fewest prefix hits first; ties: least recently used */
  CLKV_KV_EVICT_FIFO = 2 /* oldest registration in the prefix cache first */
} clkv__kv_evict_policy;

typedef enum clkv_kv_tier { CLKV_KV_TIER_DEVICE = 0, CLKV_KV_TIER_HOST = 1 } clkv_kv_tier;

/* One block copy the engine performs (all layers, K and V), in list order, before the next
 * forward pass. src/dst are block ids in the tiers the kind names. */
typedef enum clkv__kv_op_kind {
  CLKV_KV_OP_COPY_D2D = 0, /* copy-on-write: device src → device dst */
  CLKV_KV_OP_MOVE_D2H = 1, /* eviction or swap-out: device src → host dst */
  CLKV_KV_OP_MOVE_H2D = 2  /* prefix hit on the host tier or swap-in: host src → device dst */
} clkv__kv_op_kind;

typedef struct clkv__kv_op {
  clkv__kv_op_kind kind;
  int32_t src, dst;
} clkv__kv_op;

typedef struct clkv__kv_pool_params {
  int32_t n_device_blocks;    /* physical blocks in device memory (> 0) */
  int32_t n_host_blocks;      /* host-tier blocks; 0 = no host tier */
  int32_t block_tokens;       /* tokens per block: 8, 16 or 32 */
  int32_t max_seqs;           /* sequence ids are 0 .. max_seqs-1 */
  int32_t max_blocks_per_seq; /* block table width: ceil(n_ctx / block_tokens) */
  clkv__kv_evict_policy policy;
  int32_t sliding_window;     /* 0 = off; else tokens a position attends back to */
  uint64_t prefix_seed;       /* mixes model identity and KV precision into every hash */
  size_t bytes_per_block;     /* one block, all layers, K+V (for the byte statistics) */
} clkv__kv_pool_params;

typedef struct clkv__kv_pool_stats {
  /* per tier [CLKV_KV_TIER_DEVICE], [CLKV_KV_TIER_HOST]: used = referenced by a sequence;
   * cached = in the prefix cache and unreferenced (evictable); free = neither.
   * used + cached + free = total. */
  int32_t blocks_total[2], blocks_used[2], blocks_cached[2], blocks_free[2];
  size_t bytes_total[2], bytes_used[2], bytes_cached[2];
  uint64_t prompt_tokens;     /* tokens passed to prefill_begin */
  uint64_t prefix_hit_tokens; /* of which were found in the prefix cache */
  uint64_t evictions;         /* cached blocks evicted from the device (to host or dropped) */
  uint64_t host_evictions;    /* cached blocks dropped from the host tier */
  uint64_t swap_out_blocks, swap_in_blocks; /* blocks moved by seq_swap_out / seq_swap_in */
  uint64_t blocks_moved;      /* every MOVE op (evictions, swaps, host prefix hits) */
  uint64_t bytes_moved;       /* blocks_moved * bytes_per_block */
  uint64_t cow_copies;        /* COPY_D2D ops */
} clkv__kv_pool_stats;

typedef struct clkv__kv_pool clkv__kv_pool;

clkv__kv_pool_params clkv__kv_pool_default_params(void);

/* Creates a pool with every block free. Caller frees with clkv__kv_pool_free. */
clkv_status clkv__kv_pool_create(const clkv__kv_pool_params *p, clkv__kv_pool **out,
                                clkv_error *err);
void clkv__kv_pool_free(clkv__kv_pool *pool); /* NULL is a no-op */

void clkv__kv_pool_stats_get(const clkv__kv_pool *pool, clkv__kv_pool_stats *out);

/* Counts every change to any block table; the engine re-uploads its tables when it moved. */
uint64_t clkv__kv_pool_generation(const clkv__kv_pool *pool);

/* The ops scheduled since the last call; *ops points into the pool and stays valid until
 * the next pool call other than stats/getters. Execute them in order before the next
 * forward pass. Resets the list. */
void clkv__kv_pool_take_ops(clkv__kv_pool *pool, const clkv__kv_op **ops, size_t *n);

/* Verifies every invariant (refcounts = table references, free lists, the prefix cache,
 * evictable lists, tier counts, sequence tables). CLKV_ERR_INTERNAL with the first
 * violation in err. For tests and debugging; O(blocks + seqs * table). */
clkv_status clkv__kv_pool_check(const clkv__kv_pool *pool, clkv_error *err);

/* Evicts every unreferenced cached block of both tiers (drops it, no ops); for shutdown and
 * tests. */
void clkv__kv_pool_drop_cached(clkv__kv_pool *pool);

/* ---- sequences ---- */
/* A new empty sequence (lowest free id). CLKV_ERR_CONTEXT_FULL when max_seqs are live. */
clkv_status clkv__kv_seq_new(clkv__kv_pool *pool, int *seq, clkv_error *err);
/* Drops the sequence's references: blocks in the prefix cache stay cached (unreferenced,
 * evictable), the others return to their free list. Invalid ids are ignored. */
void clkv__kv_seq_free(clkv__kv_pool *pool, int seq);
/* A new sequence sharing all of src's blocks (refcount +1 each). src must be resident (not
 * swapped out) and committed (no appended tokens awaiting their forward pass). */
clkv_status clkv__kv_seq_fork(clkv__kv_pool *pool, int src, int *seq, clkv_error *err);
int32_t clkv__kv_seq_len(const clkv__kv_pool *pool, int seq); /* -1 for an invalid id */
/* The sequence's tokens (len of them); owned by the pool, valid until the next call. */
const int32_t *clkv__kv_seq_tokens(const clkv__kv_pool *pool, int seq);
int clkv__kv_seq_swapped(const clkv__kv_pool *pool, int seq); /* 1 when swapped out */
/* Device block ids, max_blocks_per_seq entries, -1 where none (past the end, or released by
 * the sliding window): logical block pos / block_tokens holds position pos. Owned by the
 * pool; the pointer is stable for the pool's life, contents change with
 * clkv__kv_pool_generation. NULL for an invalid or swapped-out sequence. */
const int32_t *clkv__kv_seq_block_table(const clkv__kv_pool *pool, int seq);
/* One table entry with its tier (a swapped-out sequence keeps host ids); -1 when none. */
int32_t clkv__kv_seq_block(const clkv__kv_pool *pool, int seq, int32_t logical,
                          clkv_kv_tier *tier);
/* Table references to a block (not counting the prefix-cache hold); -1 for a bad id. */
int32_t clkv__kv_block_refcount(const clkv__kv_pool *pool, clkv_kv_tier tier, int32_t id);

/* On an EMPTY sequence: takes the longest chain of leading full prompt blocks found in the
 * prefix cache (device hits: a reference; host hits: a MOVE_H2D into a new device block),
 * records their tokens, and sets *cached to their token count: a multiple of block_tokens,
 * always < n. The engine then appends and computes tokens[*cached .. n). */
clkv_status clkv__kv_seq_prefill_begin(clkv__kv_pool *pool, int seq, const int32_t *tokens,
                                      int32_t n, int32_t *cached, clkv_error *err);
/* Reserves space for n more tokens and records them: allocates blocks (evicting cached
 * ones by the policy when the device is full) and copies a shared partial last block
 * (COPY_D2D) before it would be written. With a sliding window, first releases the blocks
 * the next position can no longer see. On CLKV_ERR_CONTEXT_FULL nothing changed. */
clkv_status clkv__kv_seq_append(clkv__kv_pool *pool, int seq, const int32_t *tokens, int32_t n,
                               clkv_error *err);
/* Rollback (speculative decoding): cuts the sequence back to its first len tokens (len <=
 * its length). Blocks wholly past len lose this sequence's reference; a block only this
 * sequence holds that was registered in the prefix cache for tokens now cut (a full block
 * committed with rejected drafts) leaves the cache first, so it returns to the free list
 * and the tail block can be written again in place. A tail block still shared is never
 * written: the next append copies it (COPY_D2D) as for any shared partial block. The
 * sequence must be resident; committed drops to at most len. CLKV_ERR_INVALID_ARG, with
 * nothing changed, for a bad id or length, or a tail block the sliding window released. */
clkv_status clkv__kv_seq_truncate(clkv__kv_pool *pool, int seq, int32_t len, clkv_error *err);
/* The forward pass has written K/V for every appended token: full blocks enter the prefix
 * cache (hash chain). Call after each successful forward pass. */
void clkv__kv_seq_commit(clkv__kv_pool *pool, int seq);
/* Moves every block only this sequence references to the host tier (MOVE_D2H); shared
 * blocks stay on the device. The sequence must be committed. CLKV_ERR_CONTEXT_FULL, with
 * nothing changed, when the host tier cannot take them. */
clkv_status clkv__kv_seq_swap_out(clkv__kv_pool *pool, int seq, clkv_error *err);
/* Brings a swapped-out sequence back (MOVE_H2D into new device blocks). CONTEXT_FULL,
 * with nothing changed, when the device cannot take them even after eviction. */
clkv_status clkv__kv_seq_swap_in(clkv__kv_pool *pool, int seq, clkv_error *err);

/* ---- disk tier hooks ---- */
/* Called for each cached full block (any order): its hash, its parent's hash (the chain
 * seed value for a first block), its block_tokens tokens, and where its data lives. Return
 * nonzero to stop. */
typedef int (*clkv_kv_export_fn)(void *user, uint64_t hash, uint64_t parent_hash,
                                 const int32_t *tokens, int32_t n_tokens, clkv_kv_tier tier,
                                 int32_t block_id);
void clkv__kv_pool_export_prefix(const clkv__kv_pool *pool, clkv_kv_export_fn cb, void *user);
/* Registers a cached, unreferenced host-tier block for a block read from disk; *host_id is
 * the host block the engine must fill, or -1 when the hash is already cached (nothing to
 * fill). CLKV_ERR_FORMAT when hash != H(parent_hash, tokens, prefix_seed) (another model or
 * KV precision, or damaged data), CLKV_ERR_UNSUPPORTED without a host tier,
 * CLKV_ERR_CONTEXT_FULL when no host block is free or evictable. */
clkv_status clkv__kv_pool_import_block(clkv__kv_pool *pool, uint64_t hash, uint64_t parent_hash,
                                      const int32_t *tokens, int32_t *host_id, clkv_error *err);
/* The hash chain: the parent value of a sequence's first block, and one step. */
uint64_t clkv__kv_hash_root(uint64_t prefix_seed);
uint64_t clkv__kv_hash_block(uint64_t parent, const int32_t *tokens, int32_t n,
                            uint64_t prefix_seed);

#endif /* CLKV_KV_POOL_H */

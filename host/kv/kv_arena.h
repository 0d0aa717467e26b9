/* kv_arena.h — where the KV cache's blocks live on a device or in host memory: a tier of
 * a few large buffers (arenas) holding every layer's blocks. Internal to clkv. */
#ifndef CLKV_KV_ARENA_H
#define CLKV_KV_ARENA_H

#include "clkv_internal.h"

/* One tier of the KV cache in a few large buffers ("arenas"), each no larger than the
 * device allows in one allocation: arena a holds layers [a*layers, (a+1)*layers), each
 * layer n_blocks blocks of block_bytes (kernels/common.cl), K and V in separate arenas. */
#define CLKV__MAX_ARENAS 64
typedef struct clkv__kv_tier {
  int n_blocks, layers, n_arenas; /* blocks per layer; layers per arena; arenas */
  size_t block_bytes;             /* one block of one layer, K or V */
  cl_mem k[CLKV__MAX_ARENAS], v[CLKV__MAX_ARENAS];
} clkv__kv_tier;
/* Allocates a tier of n_blocks blocks per layer for n_layers layers in as few arenas as the
 * device's largest allocation allows; what names the tier in errors ("device", "host"). */
clkv_status clkv__kv_tier_alloc(clkv_runtime *rt, clkv__kv_tier *t, int n_layers, int n_blocks,
                                size_t block_bytes, cl_mem_flags flags, const char *what,
                                clkv_error *err);
void clkv__kv_tier_free(clkv__kv_tier *t);

/* Where block b of layer l lives in a tier: its arena and byte offset. */
static inline void clkv__kv_locate(const clkv__kv_tier *t, int layer, int block, int is_v,
                                   cl_mem *mem, size_t *offset) {
  const int a = layer / t->layers;
  *mem = is_v ? t->v[a] : t->k[a];
  *offset = ((size_t)(layer % t->layers) * (size_t)t->n_blocks + (size_t)block) * t->block_bytes;
}

#endif /* CLKV_KV_ARENA_H */

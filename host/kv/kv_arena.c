/* kv_arena.c — a tier of the KV cache as a few large buffers (arenas), split by layers so
 * that no buffer exceeds the device's largest allocation. */
#include "kv/kv_arena.h"

#include <string.h>
#include <unistd.h>

/* The host's physical memory in bytes, or 0 when the system does not say. */
static uint64_t host_memory_bytes(void) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

clkv_status clkv__kv_tier_alloc(clkv_runtime *rt, clkv__kv_tier *t, int n_layers, int n_blocks,
                                size_t block_bytes, cl_mem_flags flags, const char *what,
                                clkv_error *err) {
  const int L = n_layers;
  const uint64_t layer_bytes = (uint64_t)n_blocks * block_bytes;
  const uint64_t max_alloc = rt->info.max_alloc_bytes;
  t->n_blocks = n_blocks;
  t->block_bytes = block_bytes;
  t->layers = layer_bytes ? (int)(max_alloc / layer_bytes) : L;
  if (t->layers > L) t->layers = L;
  /* the host tier's size is --kv-host-blocks; the device tier's follows --kv-mem and --ctx */
  const char *lower = strncmp(what, "host", 4) ? "--kv-mem or --ctx" : "--kv-host-blocks";
  if (t->layers < 1)
    return clkv__err(err, CLKV_ERR_DEVICE_MEMORY,
                     "one layer of the %s KV cache (%d blocks, %llu bytes) is larger than the "
                     "device allows in one buffer (%llu bytes); lower %s, or use --kv-type q8 "
                     "or q4", what, n_blocks, (unsigned long long)layer_bytes,
                     (unsigned long long)max_alloc, lower);
  /* A host tier lives in host memory; drivers such as PoCL create buffers lazily, so one
   * larger than the machine would be accepted here and fail only when touched. */
  const uint64_t total = 2 * (uint64_t)L * layer_bytes, phys = host_memory_bytes();
  if (!strncmp(what, "host", 4) && phys && total > phys / 2)
    return clkv__err(err, CLKV_ERR_NO_MEMORY,
                     "the %s KV cache (%d blocks, %.1f GiB) would take more than half of this "
                     "machine's %.1f GiB of memory; lower %s", what, n_blocks,
                     (double)total / (1 << 30), (double)phys / (1 << 30), lower);
  t->n_arenas = (L + t->layers - 1) / t->layers;
  if (t->n_arenas > CLKV__MAX_ARENAS)
    return clkv__err(err, CLKV_ERR_DEVICE_MEMORY,
                     "the %s KV cache would need %d buffers (at most %d); lower %s",
                     what, t->n_arenas, CLKV__MAX_ARENAS, lower);
  clkv_status st = CLKV_OK;
  char name[64];
  for (int a = 0; a < t->n_arenas && !st; a++) {
    const int layers = a + 1 < t->n_arenas ? t->layers : L - a * t->layers;
    const size_t bytes = (size_t)layers * (size_t)layer_bytes;
    snprintf(name, sizeof name, "%s K cache", what);
    t->k[a] = clkv__buffer_new(rt, bytes, flags, name, err, &st);
    snprintf(name, sizeof name, "%s V cache", what);
    t->v[a] = clkv__buffer_new(rt, bytes, flags, name, err, &st);
  }
  return st;
}

void clkv__kv_tier_free(clkv__kv_tier *t) {
  for (int a = 0; a < t->n_arenas; a++) {
    if (t->k[a]) clReleaseMemObject(t->k[a]);
    if (t->v[a]) clReleaseMemObject(t->v[a]);
  }
  t->n_arenas = 0;
}

/* fuzz_kvblock.c — libFuzzer harness: prefix-cache block files (the disk tier). The input is
 * a run of block files of one context's size (header, tokens, K/V payload); each is parsed
 * (clkv__kvb_header_get), checked as the loader does, checksummed, and imported into a pool
 * with a small host tier (clkv__kv_pool_import_block), whose invariants must hold. A
 * checksum and a hash chain are no defence against a file made on purpose, so each block
 * is also imported with its hash recomputed (parent 0: the previous block's), and the
 * imported prefix is then looked up by a sequence. */
#include "fuzz.h"
#include "kv/kv_disk.h"
#include "kv/kv_pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* The context the files are read for. */
enum { BT = 16, LAYERS = 2, BLOCK_BYTES = 64, HOST_BLOCKS = 4, MAX_FILES = 8 };
#define PAYLOAD (4u * BT + 2u * LAYERS * BLOCK_BYTES)
#define FILE_BYTES (CLKV__KVB_HEADER + PAYLOAD)
static const uint64_t SEED = 0x5eedf00dULL;

static void check_pool(const clkv__kv_pool *pool) {
  clkv_error err;
  if (clkv__kv_pool_check(pool, &err) != CLKV_OK) abort();
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The loader's checks of one file's header against the context: 1 when it would go on. */
static int header_ok(const clkv__kvb_header *h) {
  return h->version == CLKV__KVB_VERSION && h->header_bytes == CLKV__KVB_HEADER &&
         !strcmp(h->kv_type, "f16") && h->block_tokens == BT && h->n_layers == LAYERS &&
         h->block_bytes == BLOCK_BYTES;
}

/* Imports one block as-is and with its hash made to match; returns the chain hash. */
static uint64_t import(clkv__kv_pool *pool, const clkv__kvb_header *h, const int32_t *tok,
                       uint64_t prev) {
  int32_t host_id;
  clkv_error err;
  clkv_status st = clkv__kv_pool_import_block(pool, h->hash, h->parent, tok, &host_id, &err);
  if (st == CLKV_OK && host_id >= HOST_BLOCKS) abort();
  check_pool(pool);
  const uint64_t parent = h->parent ? h->parent : prev;
  const uint64_t hash = clkv__kv_hash_block(parent, tok, BT, SEED);
  st = clkv__kv_pool_import_block(pool, hash, parent, tok, &host_id, &err);
  if (st != CLKV_OK && st != CLKV_ERR_CONTEXT_FULL) abort(); /* a matching hash is taken */
  check_pool(pool);
  return hash;
}

/* A sequence asks for the imported tokens: host hits move to the device. */
static void lookup(clkv__kv_pool *pool, const int32_t *tokens, int32_t n) {
  int seq;
  int32_t cached = 0;
  clkv_error err;
  if (clkv__kv_seq_new(pool, &seq, &err) != CLKV_OK) abort();
  if (clkv__kv_seq_prefill_begin(pool, seq, tokens, n, &cached, &err) == CLKV_OK &&
      (cached % BT || cached >= n))
    abort();
  const clkv__kv_op *ops;
  size_t n_ops;
  clkv__kv_pool_take_ops(pool, &ops, &n_ops);
  check_pool(pool);
  clkv__kv_seq_free(pool, seq);
  check_pool(pool);
}

int clkv_fuzz_kvblock(const uint8_t *data, size_t size) {
  clkv__kv_pool_params p = clkv__kv_pool_default_params();
  p.n_device_blocks = 8;
  p.n_host_blocks = HOST_BLOCKS;
  p.block_tokens = BT;
  p.max_seqs = 2;
  p.max_blocks_per_seq = MAX_FILES + 1;
  p.prefix_seed = SEED;
  clkv__kv_pool *pool;
  clkv_error err;
  if (clkv__kv_pool_create(&p, &pool, &err) != CLKV_OK) abort();
  int32_t tokens[(MAX_FILES + 1) * BT];
  int32_t n_tokens = 0;
  uint64_t prev = clkv__kv_hash_root(SEED);
  for (size_t off = 0; off + CLKV__KVB_HEADER <= size && n_tokens < MAX_FILES * BT; off += FILE_BYTES) {
    clkv__kvb_header h;
    if (!clkv__kvb_header_get(data + off, &h) || !header_ok(&h)) continue;
    if (size - off < FILE_BYTES) break; /* truncated */
    unsigned char sum[32];
    clkv__kvb_checksum(data + off, data + off + CLKV__KVB_HEADER, PAYLOAD, sum);
    int32_t *tok = tokens + n_tokens;
    for (int t = 0; t < BT; t++) tok[t] = (int32_t)get32(data + off + CLKV__KVB_HEADER + 4 * (size_t)t);
    prev = import(pool, &h, tok, prev);
    n_tokens += BT;
  }
  tokens[n_tokens++] = 1; /* a prompt is longer than its cached blocks */
  lookup(pool, tokens, n_tokens);
  clkv__kv_pool_drop_cached(pool);
  check_pool(pool);
  clkv__kv_pool_free(pool);
  return 0;
}

#ifndef CLKV_FUZZ_REPLAY
CLKV_FUZZ_TARGET(clkv_fuzz_kvblock)
#endif

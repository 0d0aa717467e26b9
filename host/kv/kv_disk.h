/* kv_disk.h — the disk tier of the prefix cache: full KV blocks kept in files across runs,
 * one directory per key (model file SHA-256, KV precision, block size), read into the host
 * tier when a context is created and written when it is saved or freed. See
 * docs/KV_CACHE.md ("The disk tier"). Internal to clkv. */
#ifndef CLKV_KV_DISK_H
#define CLKV_KV_DISK_H

#include "engine/engine.h"

/* The fixed header that opens every block file; fields little-endian. */
#define CLKV__KVB_MAGIC "CLKVKVB"    /* 8 bytes with its NUL */
#define CLKV__KVB_VERSION 1u
#define CLKV__KVB_HEADER 128u
#define CLKV__KVB_HOST_CAP (1ull << 30) /* host bytes the tier may grow to by itself */

typedef struct clkv__kv_disk clkv__kv_disk;

typedef struct clkv__kvb_header {
  uint32_t version, header_bytes;
  unsigned char model_sha256[32]; /* of the GGUF file */
  char kv_type[8];                /* "f16", ... NUL-padded */
  uint32_t block_tokens, n_layers;
  uint64_t block_bytes;           /* one block of one layer, K or V */
  uint64_t prefix_seed;           /* the pool's hash-chain seed */
  uint64_t hash, parent;          /* the block's chain hash and its parent's */
  unsigned char checksum[32];     /* SHA-256 of header bytes [0, 96) and the payload */
} clkv__kvb_header;

/* Serialises h into 128 bytes (checksum as given) / parses them; parse returns 0 when the
 * magic is wrong. */
void clkv__kvb_header_put(const clkv__kvb_header *h, unsigned char out[CLKV__KVB_HEADER]);
int clkv__kvb_header_get(const unsigned char in[CLKV__KVB_HEADER], clkv__kvb_header *h);
/* SHA-256 over the first 96 header bytes and the payload. */
void clkv__kvb_checksum(const unsigned char *header, const unsigned char *payload, size_t n,
                        unsigned char out[32]);

/* Before the pool exists: works out the key (hashing the model file once; the digest is
 * remembered in DIR/model-ids/ by path, size and modification time), creates the key
 * directory and lists its block files; mixes the digest into *prefix_seed; *host_blocks
 * grows to hold the files, up to CLKV__KVB_HOST_CAP bytes. An unusable directory is a
 * warning on stderr and leaves the tier off (c->disk NULL); only running out of memory
 * fails. */
clkv_status clkv__kv_disk_open(clkv_context *c, const char *dir, uint64_t *prefix_seed,
                               int *host_blocks, clkv_error *err);
/* After the host tier exists: imports every valid file into it (warns about the others). */
void clkv__kv_disk_load(clkv_context *c);
/* Writes every cached block not already on disk; CLKV_ERR_IO with c->err on a failure. */
clkv_status clkv__kv_disk_save(clkv_context *c);
/* Saves (a failure is a warning) and frees the tier; before the KV buffers are released. */
void clkv__kv_disk_close(clkv_context *c);
void clkv__kv_disk_stats(const clkv_context *c, clkv_kv_stats *out);

#endif /* CLKV_KV_DISK_H */

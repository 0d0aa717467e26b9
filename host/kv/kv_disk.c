/* kv_disk.c — the disk tier of the prefix cache: the key (model file digest, KV precision,
 * block size), one file per full block written atomically, and the checks a file passes
 * before its block is imported into the host tier. Layout: docs/KV_CACHE.md. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "kv/kv_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_WARN 8 /* ignored files named one per line; the rest are counted */

typedef struct disk_file {
  char name[32]; /* "<16 hex digits of the hash>.kvb" */
  long long mtime;
} disk_file;

struct clkv__kv_disk {
  char dir[PATH_MAX];            /* DIR/<key>: the block files */
  unsigned char model_sha256[32];
  uint64_t seed;
  disk_file *files;              /* found at open, newest first */
  size_t n_files;
  uint64_t *bad;                 /* hashes of files ignored at load: rewritten at save */
  size_t n_bad;
  uint64_t read, written, ignored;
  int loaded;                    /* the context was created: its blocks are worth saving */
};

/* The KV precision in the key; the one place that names it. */
static const char *kv_type_name(const clkv_context *c) {
  return clkv_kv_type_name(c->m->params.kv_type);
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("clkv: warning: prefix cache: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- the header ---- */
static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

void clkv__kvb_header_put(const clkv__kvb_header *h, unsigned char o[CLKV__KVB_HEADER]) {
  memset(o, 0, CLKV__KVB_HEADER);
  memcpy(o, CLKV__KVB_MAGIC, 8);
  put32(o + 8, h->version);
  put32(o + 12, h->header_bytes);
  memcpy(o + 16, h->model_sha256, 32);
  memcpy(o + 48, h->kv_type, 8);
  put32(o + 56, h->block_tokens);
  put32(o + 60, h->n_layers);
  put64(o + 64, h->block_bytes);
  put64(o + 72, h->prefix_seed);
  put64(o + 80, h->hash);
  put64(o + 88, h->parent);
  memcpy(o + 96, h->checksum, 32);
}

int clkv__kvb_header_get(const unsigned char in[CLKV__KVB_HEADER], clkv__kvb_header *h) {
  if (memcmp(in, CLKV__KVB_MAGIC, 8)) return 0;
  h->version = get32(in + 8);
  h->header_bytes = get32(in + 12);
  memcpy(h->model_sha256, in + 16, 32);
  memcpy(h->kv_type, in + 48, 8);
  h->kv_type[7] = 0;
  h->block_tokens = get32(in + 56);
  h->n_layers = get32(in + 60);
  h->block_bytes = get64(in + 64);
  h->prefix_seed = get64(in + 72);
  h->hash = get64(in + 80);
  h->parent = get64(in + 88);
  memcpy(h->checksum, in + 96, 32);
  return 1;
}

void clkv__kvb_checksum(const unsigned char *header, const unsigned char *payload, size_t n,
                        unsigned char out[32]) {
  clkv__sha256 s;
  clkv__sha256_init(&s);
  clkv__sha256_update(&s, header, 96);
  clkv__sha256_update(&s, payload, n);
  clkv__sha256_final(&s, out);
}

/* ---- files ---- */
/* Writes a then b to dir/name through a temporary file in dir, fsync and rename, so a
 * reader sees the old file or the whole new one. 0, or -1 with errno set. */
static int write_atomic(const char *dir, const char *name, const void *a, size_t na,
                        const void *b, size_t nb) {
  char tmp[PATH_MAX], dst[PATH_MAX];
  /* the writer's pid in the name lets the next open remove what a killed writer left */
  if (snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-XXXXXX", dir, (long)getpid()) >= (int)sizeof tmp ||
      snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) return -1;
  const unsigned char *parts[2] = {a, b};
  size_t lens[2] = {na, nb};
  for (int i = 0; i < 2; i++)
    for (size_t off = 0; off < lens[i];) {
      ssize_t w = write(fd, parts[i] + off, lens[i] - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) goto fail;
      off += (size_t)w;
    }
  if (fchmod(fd, 0644) || fsync(fd)) goto fail;
  if (close(fd)) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, dst)) goto fail;
  return 0;
fail: {
  int e = errno ? errno : EIO;
  if (fd >= 0) close(fd);
  unlink(tmp);
  errno = e;
  return -1;
}
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return -1;
}

/* "<16 lowercase hex>.kvb" → 1 and the hash; anything else 0. */
static int block_name(const char *name, uint64_t *hash) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    int x = hex_value(name[i]);
    if (x < 0) return 0;
    v = (v << 4) | (uint64_t)x;
  }
  if (strcmp(name + 16, ".kvb")) return 0;
  *hash = v;
  return 1;
}

/* A temporary of write_atomic that no writer will rename: its writer's process is gone, or
 * it is an hour old (a block takes milliseconds; older clkv named no pid). */
static int stale_tmp(const char *dir, const char *name) {
  if (strncmp(name, ".tmp-", 5)) return 0;
  char *end;
  const long pid = strtol(name + 5, &end, 10);
  if (*end == '-' && pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH) return 1;
  char p[PATH_MAX + 32];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return !lstat(p, &st) && S_ISREG(st.st_mode) && time(NULL) - st.st_mtime > 3600;
}

/* Removes dir's stale temporaries (kill -9 during a save leaves them). */
static void clean_tmp(const char *dir) {
  DIR *dp = opendir(dir);
  struct dirent *e;
  char p[PATH_MAX + 32];
  while (dp && (e = readdir(dp)))
    if (stale_tmp(dir, e->d_name)) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      (void)unlink(p); /* another reader may have removed it first */
    }
  if (dp) closedir(dp);
}

static int file_sha256(const char *path, unsigned char out[32]) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  const size_t cap = 1 << 20;
  unsigned char *buf = malloc(cap);
  if (!buf) {
    fclose(f);
    errno = ENOMEM;
    return -1;
  }
  clkv__sha256 s;
  clkv__sha256_init(&s);
  size_t n;
  while ((n = fread(buf, 1, cap, f)) > 0) clkv__sha256_update(&s, buf, n);
  int bad = ferror(f);
  fclose(f);
  free(buf);
  if (bad) {
    errno = EIO;
    return -1;
  }
  clkv__sha256_final(&s, out);
  return 0;
}

/* The SHA-256 of the model file. Hashing ~100 MB takes a while, so the digest is kept in
 * root/model-ids/<name>, valid while the file's real path, size, modification time, inode
 * and device are the same (the file holds them, and is recomputed when they differ). */
static int model_digest(const char *root, const char *model_path, unsigned char out[32]) {
  char real[PATH_MAX], ident[PATH_MAX + 128], idir[PATH_MAX], hex[65], name[24];
  struct stat st;
  if (!realpath(model_path, real) || stat(real, &st)) return -1;
  int il = snprintf(ident, sizeof ident, "%s\n%lld\n%lld.%09ld\n%llu\n%llu\n", real,
                    (long long)st.st_size, (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
                    (unsigned long long)st.st_ino, (unsigned long long)st.st_dev);
  unsigned char id[32];
  clkv__sha256 s;
  clkv__sha256_init(&s);
  clkv__sha256_update(&s, ident, (size_t)il);
  clkv__sha256_final(&s, id);
  clkv__sha256_hex(id, hex);
  snprintf(name, sizeof name, "%.16s", hex);
  snprintf(idir, sizeof idir, "%s/model-ids", root);
  char path[PATH_MAX + 32], text[PATH_MAX + 256];
  snprintf(path, sizeof path, "%s/%s", idir, name);
  FILE *f = fopen(path, "rb");
  if (f) { /* "<64 hex digest>\n" then the identity */
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    if (n == 65 + (size_t)il && text[64] == '\n' && !memcmp(text + 65, ident, (size_t)il)) {
      int ok = 1;
      for (int i = 0; i < 32 && ok; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        out[i] = (unsigned char)(hi * 16 + lo);
      }
      if (ok) return 0;
    }
  }
  if (file_sha256(real, out)) return -1;
  clkv__sha256_hex(out, text);
  text[64] = '\n';
  if (clkv__mkdirs(idir) == 0) { /* best effort: the next run hashes again if this fails */
    clean_tmp(idir);
    (void)write_atomic(idir, name, text, 65, ident, (size_t)il);
  }
  return 0;
}

static int newest_first(const void *a, const void *b) {
  const disk_file *x = a, *y = b;
  if (x->mtime != y->mtime) return x->mtime > y->mtime ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Lists dir's block files into d (newest first). */
static int list_files(clkv__kv_disk *d) {
  DIR *dp = opendir(d->dir);
  if (!dp) return -1;
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    uint64_t h;
    if (!block_name(e->d_name, &h)) continue;
    if (d->n_files == cap) {
      cap = cap ? cap * 2 : 64;
      disk_file *nf = realloc(d->files, cap * sizeof *nf);
      if (!nf) {
        closedir(dp);
        errno = ENOMEM;
        return -1;
      }
      d->files = nf;
    }
    disk_file *f = &d->files[d->n_files++];
    memcpy(f->name, e->d_name, 21); /* block_name checked: 20 characters and the NUL */
    char p[PATH_MAX + 32];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", d->dir, f->name);
    f->mtime = stat(p, &st) ? 0 : (long long)st.st_mtim.tv_sec;
  }
  closedir(dp);
  if (d->n_files) qsort(d->files, d->n_files, sizeof *d->files, newest_first);
  return 0;
}

clkv_status clkv__kv_disk_open(clkv_context *c, const char *dir, uint64_t *prefix_seed,
                               int *host_blocks, clkv_error *err) {
  if (!dir || !*dir) return CLKV_OK;
  if (!c->params.prefix_cache) {
    warn("%s is not used: the prefix cache is off (drop --no-prefix-cache to use it)", dir);
    return CLKV_OK;
  }
  if (clkv__mkdirs(dir)) {
    warn("cannot create %s (%s); the disk tier is off for this run: give a writable directory",
         dir, strerror(errno));
    return CLKV_OK;
  }
  unsigned char sha[32];
  if (model_digest(dir, c->m->path, sha)) {
    warn("cannot read the model file %s to key the cache (%s); the disk tier is off",
         c->m->path, strerror(errno));
    return CLKV_OK;
  }
  clkv__kv_disk *d = calloc(1, sizeof *d);
  if (!d) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  char hex[65];
  clkv__sha256_hex(sha, hex);
  memcpy(d->model_sha256, sha, 32);
  /* Two files with the same hyperparameters must not share hashes: the chain check on import
   * then also rejects another model's blocks. */
  clkv__sha256 s;
  unsigned char mixed[32];
  clkv__sha256_init(&s);
  clkv__sha256_update(&s, prefix_seed, sizeof *prefix_seed);
  clkv__sha256_update(&s, sha, 32);
  clkv__sha256_final(&s, mixed);
  memcpy(&d->seed, mixed, sizeof d->seed);
  const int dl = snprintf(d->dir, sizeof d->dir, "%s/%s-%s-b%d", dir, hex, kv_type_name(c),
                          c->m->params.kv_block);
  if (dl >= (int)sizeof d->dir) errno = ENAMETOOLONG;
  if (dl < (int)sizeof d->dir) clean_tmp(d->dir);
  if (dl >= (int)sizeof d->dir || clkv__mkdirs(d->dir) || list_files(d)) {
    if (errno == ENOMEM) {
      free(d->files);
      free(d);
      return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
    }
    warn("cannot use %s (%s); the disk tier is off for this run: give a writable directory",
         d->dir, strerror(errno));
    free(d->files);
    free(d);
    return CLKV_OK;
  }
  c->disk = d;
  *prefix_seed = d->seed;
  /* The host tier holds what is on disk, up to CLKV__KVB_HOST_CAP bytes and one buffer of
   * at most the device's largest allocation. */
  const uint64_t layer_block = (uint64_t)c->block_bytes * (uint64_t)c->m->info.n_layers;
  uint64_t cap = CLKV__KVB_HOST_CAP / (2 * layer_block);
  const uint64_t by_alloc = c->m->rt->info.max_alloc_bytes / layer_block;
  if (by_alloc < cap) cap = by_alloc;
  uint64_t want = d->n_files < cap ? d->n_files : cap;
  if (want > (uint64_t)*host_blocks) *host_blocks = (int)want;
  return CLKV_OK;
}

/* ---- reading ---- */
static size_t payload_bytes(const clkv_context *c) {
  return sizeof(int32_t) * (size_t)c->m->params.kv_block +
         2 * (size_t)c->m->info.n_layers * c->block_bytes;
}

/* Reads and checks one file into buf (header, then payload); NULL when it is usable, else
 * why not (in why). */
static const char *check_file(const clkv_context *c, const char *path, uint64_t name_hash,
                              unsigned char *buf, clkv__kvb_header *h, char *why, size_t cap) {
  const clkv__kv_disk *d = c->disk;
  const size_t want = CLKV__KVB_HEADER + payload_bytes(c);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, cap, "cannot open it (%s)", strerror(errno));
    return why;
  }
  struct stat st;
  const long long size = fstat(fileno(f), &st) ? -1 : (long long)st.st_size;
  const size_t got = fread(buf, 1, size == (long long)want ? want : CLKV__KVB_HEADER, f);
  fclose(f);
  if (got < CLKV__KVB_HEADER)
    snprintf(why, cap, "truncated (%lld bytes; a block file here holds %zu)", size, want);
  else if (!clkv__kvb_header_get(buf, h))
    snprintf(why, cap, "not a clkv KV block file (bad magic)");
  else if (h->version != CLKV__KVB_VERSION || h->header_bytes != CLKV__KVB_HEADER)
    snprintf(why, cap, "format version %u (this build reads %u)", h->version, CLKV__KVB_VERSION);
  else if (memcmp(h->model_sha256, d->model_sha256, 32))
    snprintf(why, cap, "written for another model file");
  else if (strcmp(h->kv_type, kv_type_name(c)))
    snprintf(why, cap, "written for KV type %s, this context uses %s", h->kv_type, kv_type_name(c));
  else if (h->block_tokens != (uint32_t)c->m->params.kv_block || h->n_layers != (uint32_t)c->m->info.n_layers ||
           h->block_bytes != c->block_bytes)
    snprintf(why, cap, "written for blocks of %u tokens x %u layers x %llu bytes, this context "
             "uses %d x %d x %zu", h->block_tokens, h->n_layers, (unsigned long long)h->block_bytes,
             c->m->params.kv_block, c->m->info.n_layers, c->block_bytes);
  else if (h->prefix_seed != d->seed)
    snprintf(why, cap, "written with another hash-chain seed (another clkv version)");
  else if (size != (long long)want)
    snprintf(why, cap, "truncated or padded (%lld bytes, expected %zu)", size, want);
  else if (got != want)
    snprintf(why, cap, "read error");
  else {
    unsigned char sum[32];
    clkv__kvb_checksum(buf, buf + CLKV__KVB_HEADER, want - CLKV__KVB_HEADER, sum);
    if (memcmp(sum, h->checksum, 32)) snprintf(why, cap, "damaged (checksum mismatch)");
    else if (h->hash != name_hash) snprintf(why, cap, "its name does not match its block hash");
    else return NULL;
  }
  return why;
}

/* Writes one block's K and V (payload order: every layer's K, then every layer's V) to a
 * host-tier block, or reads a block of either tier into the payload. */
static clkv_status move_block(clkv_context *c, int upload, clkv_kv_tier tier, int32_t id,
                              unsigned char *kv) {
  clkv_status st = CLKV_OK;
  clkv_error *err = &c->err;
  const int L = c->m->info.n_layers;
  const size_t bb = c->block_bytes;
  const clkv__kv_tier *t = tier == CLKV_KV_TIER_HOST ? &c->host : &c->dev;
  for (int kv_i = 0; kv_i < 2; kv_i++)
    for (int l = 0; l < L; l++) {
      unsigned char *p = kv + ((size_t)kv_i * (size_t)L + (size_t)l) * bb;
      cl_mem buf;
      size_t off;
      clkv__kv_locate(t, l, id, kv_i, &buf, &off);
      if (upload)
        CLKV_CL_TRY(clEnqueueWriteBuffer(c->m->rt->queue, buf, CL_TRUE, off, bb, p, 0, NULL, NULL));
      else
        CLKV_CL_TRY(clEnqueueReadBuffer(c->m->rt->queue, buf, CL_TRUE, off, bb, p, 0, NULL, NULL));
    }
fail:
  return st;
}

static int add_bad(clkv__kv_disk *d, uint64_t hash) {
  uint64_t *nb = realloc(d->bad, (d->n_bad + 1) * sizeof *nb);
  if (!nb) return -1;
  d->bad = nb;
  d->bad[d->n_bad++] = hash;
  return 0;
}

/* What load_file asks of the loop over the files. */
typedef enum load_next { LOAD_NEXT, LOAD_STOP, LOAD_STOP_UNREAD } load_next;

/* Reads file i (into buf; tok: room for its tokens), checks it, imports its block into the
 * pool and uploads its K/V to the host-tier block the import returned. A file failing a
 * check is warned about and recorded as bad (rewritten at save). LOAD_STOP_UNREAD: the
 * pool takes no more (this file and the rest count as not read); LOAD_STOP: the tier is
 * unusable, already warned. */
static load_next load_file(clkv_context *c, size_t i, unsigned char *buf, int32_t *tok) {
  clkv__kv_disk *d = c->disk;
  const int bt = c->m->params.kv_block;
  char path[PATH_MAX + 32], why[256];
  snprintf(path, sizeof path, "%s/%s", d->dir, d->files[i].name);
  uint64_t name_hash = 0;
  block_name(d->files[i].name, &name_hash);
  clkv__kvb_header h;
  const char *bad = check_file(c, path, name_hash, buf, &h, why, sizeof why);
  int32_t host_id = -1;
  if (!bad) {
    const unsigned char *p = buf + CLKV__KVB_HEADER;
    for (int t = 0; t < bt; t++) tok[t] = (int32_t)get32(p + 4 * (size_t)t);
    clkv_error ie;
    const clkv_status st =
        clkv__kv_pool_import_block(c->pool, h.hash, h.parent, tok, &host_id, &ie);
    if (st == CLKV_ERR_FORMAT) bad = "its tokens do not match its hash chain";
    else if (st) {
      warn("stopped reading %s: %s", d->dir, ie.message);
      return LOAD_STOP_UNREAD;
    }
  }
  if (bad) {
    if (d->ignored++ < MAX_WARN)
      warn("ignoring %s: %s; delete it (clkv writes the blocks it needs again)", path, bad);
    return add_bad(d, name_hash) ? LOAD_STOP : LOAD_NEXT;
  }
  if (host_id < 0) return LOAD_NEXT; /* the same block twice */
  unsigned char *kv = buf + CLKV__KVB_HEADER + sizeof(int32_t) * (size_t)bt;
  if (move_block(c, 1, CLKV_KV_TIER_HOST, host_id, kv)) {
    /* a registered block without its data must never be used: drop every import */
    clkv__kv_pool_drop_cached(c->pool);
    warn("copying %s to the host tier failed (%s); continuing without the disk tier's blocks",
         path, c->err.message);
    d->read = 0;
    return LOAD_STOP;
  }
  d->read++;
  return LOAD_NEXT;
}

static int host_tier_full(const clkv_context *c) {
  clkv__kv_pool_stats ps;
  clkv__kv_pool_stats_get(c->pool, &ps);
  return ps.blocks_free[CLKV_KV_TIER_HOST] == 0;
}

void clkv__kv_disk_load(clkv_context *c) {
  clkv__kv_disk *d = c->disk;
  if (!d) return;
  d->loaded = 1;
  unsigned char *buf = malloc(CLKV__KVB_HEADER + payload_bytes(c));
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)c->m->params.kv_block);
  size_t not_loaded = 0;
  if (!buf || !tok) {
    warn("out of host memory reading %s; continuing without it", d->dir);
    goto done;
  }
  for (size_t i = 0; i < d->n_files; i++) {
    const load_next next = host_tier_full(c) ? LOAD_STOP_UNREAD : load_file(c, i, buf, tok);
    if (next == LOAD_STOP_UNREAD) not_loaded = d->n_files - i;
    if (next != LOAD_NEXT) break;
  }
  if (d->ignored > MAX_WARN)
    warn("%llu more files in %s ignored", (unsigned long long)(d->ignored - MAX_WARN), d->dir);
  if (not_loaded)
    warn("%zu of %zu block files in %s not read: the host tier is full (%d blocks); raise "
         "--kv-host-blocks to read more", not_loaded, d->n_files, d->dir, c->n_host_blocks);
done:
  free(buf);
  free(tok);
}

/* ---- writing ---- */
typedef struct save_state {
  clkv_context *c;
  unsigned char *buf; /* header + payload */
  clkv_status st;
} save_state;

static int save_one(void *user, uint64_t hash, uint64_t parent, const int32_t *tokens,
                    int32_t n_tokens, clkv_kv_tier tier, int32_t id) {
  save_state *s = user;
  clkv_context *c = s->c;
  clkv__kv_disk *d = c->disk;
  char name[32], path[PATH_MAX + 32];
  snprintf(name, sizeof name, "%016llx.kvb", (unsigned long long)hash);
  snprintf(path, sizeof path, "%s/%s", d->dir, name);
  size_t b = 0;
  while (b < d->n_bad && d->bad[b] != hash) b++;
  if (b == d->n_bad && access(path, F_OK) == 0) return 0; /* already there and not damaged */
  unsigned char *p = s->buf + CLKV__KVB_HEADER;
  for (int32_t t = 0; t < n_tokens; t++) put32(p + 4 * (size_t)t, (uint32_t)tokens[t]);
  if ((s->st = move_block(c, 0, tier, id, p + sizeof(int32_t) * (size_t)n_tokens))) return 1;
  clkv__kvb_header h;
  memset(&h, 0, sizeof h);
  h.version = CLKV__KVB_VERSION;
  h.header_bytes = CLKV__KVB_HEADER;
  memcpy(h.model_sha256, d->model_sha256, 32);
  snprintf(h.kv_type, sizeof h.kv_type, "%s", kv_type_name(c));
  h.block_tokens = (uint32_t)n_tokens;
  h.n_layers = (uint32_t)c->m->info.n_layers;
  h.block_bytes = c->block_bytes;
  h.prefix_seed = d->seed;
  h.hash = hash;
  h.parent = parent;
  clkv__kvb_header_put(&h, s->buf);
  clkv__kvb_checksum(s->buf, p, payload_bytes(c), h.checksum);
  memcpy(s->buf + 96, h.checksum, 32);
  if (write_atomic(d->dir, name, s->buf, CLKV__KVB_HEADER, p, payload_bytes(c))) {
    s->st = clkv__err(&c->err, CLKV_ERR_IO,
                      "cannot write %s (%s); give --prefix-cache-dir a writable directory with "
                      "free space", path, strerror(errno));
    return 1;
  }
  if (b < d->n_bad) d->bad[b] = d->bad[--d->n_bad];
  d->written++;
  return 0;
}

clkv_status clkv__kv_disk_save(clkv_context *c) {
  clkv__kv_disk *d = c->disk;
  if (!d || !d->loaded) return CLKV_OK;
  save_state s = {.c = c, .buf = malloc(CLKV__KVB_HEADER + payload_bytes(c)), .st = CLKV_OK};
  if (!s.buf) return clkv__err(&c->err, CLKV_ERR_NO_MEMORY, "out of host memory saving the prefix cache");
  const uint64_t before = d->written;
  clkv__kv_pool_export_prefix(c->pool, save_one, &s);
  free(s.buf);
  if (d->written > before) { /* make the renames durable */
    int fd = open(d->dir, O_RDONLY);
    if (fd >= 0) {
      (void)fsync(fd);
      close(fd);
    }
  }
  return s.st;
}

void clkv__kv_disk_close(clkv_context *c) {
  clkv__kv_disk *d = c->disk;
  if (!d) return;
  if (clkv__kv_disk_save(c)) warn("not every block was saved: %s", c->err.message);
  free(d->files);
  free(d->bad);
  free(d);
  c->disk = NULL;
}

void clkv__kv_disk_stats(const clkv_context *c, clkv_kv_stats *o) {
  const clkv__kv_disk *d = c->disk;
  if (!d) return;
  o->disk_blocks_read = d->read;
  o->disk_blocks_written = d->written;
  o->disk_files_ignored = d->ignored;
}

clkv_status clkv_context_save_prefix(clkv_context *c) {
  if (!c) return CLKV_ERR_INVALID_ARG;
  if (!c->disk)
    return clkv__err(&c->err, CLKV_ERR_INVALID_ARG,
                     "this context has no disk tier: set clkv_context_params.prefix_cache_dir "
                     "(--prefix-cache-dir) to a writable directory");
  return clkv__kv_disk_save(c);
}

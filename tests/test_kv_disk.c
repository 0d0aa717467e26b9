/* test_kv_disk.c — the disk tier of the prefix cache (--prefix-cache-dir) through the CLI,
 * one process per run: blocks written by one process are read by the next, which prefills
 * only the uncached tokens and generates the same greedy ids as a run without any cache;
 * damaged files, files of another model or block size, and a forged hash chain are ignored
 * with a warning each (and damaged ones rewritten); an unusable directory is a warning. */
#include "kv/kv_disk.h"
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static char tiny_a[400], tiny_b[400]; /* two tiny models with different weights */

static void write_tiny(uint64_t seed, const char *name, char *path, size_t cap) {
  ref_tiny_params tp = ref_tiny_default();
  tp.seed = seed;
  clkv_error err;
  snprintf(path, cap, "%s/%s", tmpdir, name);
  cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
}

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/clkv-disk-XXXXXX");
  cr_assert(mkdtemp(tmpdir));
  write_tiny(1234, "a.gguf", tiny_a, sizeof tiny_a);
  write_tiny(99, "b.gguf", tiny_b, sizeof tiny_b);
}
static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd)) {}
}

TestSuite(kv_disk, .init = setup, .fini = teardown, .timeout = 900);

/* One `clkv generate --temp 0 --ids --json` run in a new process. */
typedef struct run {
  int rc;
  int32_t ids[256];
  int n_ids;
  long prompt_tokens, prefill_tokens, hit_tokens, disk_read, disk_written, disk_ignored;
  char err[16384]; /* its stderr */
} run;

static long json_long(const char *js, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(js, k);
  cr_assert(p, "no %s in %s", key, js);
  return strtol(p + strlen(k), NULL, 10);
}

static void run_clkv(const char *model, const char *prompt, const char *extra, run *r) {
  char exe[PATH_MAX], cmd[PATH_MAX * 3], errpath[300];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  cr_assert(n > 0);
  exe[n] = 0;
  *strrchr(exe, '/') = 0;
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmpdir);
  snprintf(cmd, sizeof cmd, "'%s/clkv' generate -m '%s' -p '%s' -n 16 --temp 0 --ids --json %s 2>'%s'",
           exe, model, prompt, extra, errpath);
  FILE *p = popen(cmd, "r");
  cr_assert(p);
  char out[16384];
  size_t len = fread(out, 1, sizeof out - 1, p);
  out[len] = 0;
  int st = pclose(p);
  memset(r, 0, sizeof *r);
  r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  FILE *e = fopen(errpath, "r");
  cr_assert(e);
  r->err[fread(r->err, 1, sizeof r->err - 1, e)] = 0;
  fclose(e);
  cr_assert_eq(r->rc, 0, "%s failed (%d): %s%s", cmd, r->rc, out, r->err);
  const char *js = strstr(out, "{\"text\":");
  cr_assert(js, "no JSON in: %s", out);
  const char *q = strstr(js, "\"ids\":[");
  cr_assert(q);
  for (q += 7; *q && *q != ']' && r->n_ids < 256;) {
    char *end;
    r->ids[r->n_ids++] = (int32_t)strtol(q, &end, 10);
    q = *end == ',' ? end + 1 : end;
  }
  r->prompt_tokens = json_long(js, "prompt_tokens");
  r->prefill_tokens = json_long(js, "prefill_tokens");
  r->hit_tokens = json_long(js, "prefix_hit_tokens");
  r->disk_read = json_long(js, "disk_blocks_read");
  r->disk_written = json_long(js, "disk_blocks_written");
  r->disk_ignored = json_long(js, "disk_files_ignored");
}

static void expect_same_ids(const run *got, const run *want, const char *what) {
  cr_assert_eq(got->n_ids, want->n_ids, "%s: %d ids vs %d", what, got->n_ids, want->n_ids);
  for (int i = 0; i < want->n_ids; i++)
    cr_assert_eq(got->ids[i], want->ids[i], "%s: token %d: %d vs %d without cache", what, i,
                 got->ids[i], want->ids[i]);
}

static int count_lines(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "%s", path);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n);
  cr_assert(fread(b, 1, *n, f) == *n);
  fclose(f);
  return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f, "%s", path);
  cr_assert(fwrite(b, 1, n, f) == n);
  fclose(f);
}

/* root/<SHA-256 of the model file>-f16-b<bt>, which must exist. */
static void model_key_dir(const char *root, const char *model, int bt, char *out, size_t cap) {
  size_t len;
  unsigned char *b = slurp(model, &len), dg[32];
  clkv__sha256 s;
  clkv__sha256_init(&s);
  clkv__sha256_update(&s, b, len);
  clkv__sha256_final(&s, dg);
  free(b);
  char hex[65];
  clkv__sha256_hex(dg, hex);
  snprintf(out, cap, "%s/%s-f16-b%d", root, hex, bt);
  struct stat st;
  cr_assert(stat(out, &st) == 0 && S_ISDIR(st.st_mode), "no key directory %s", out);
}

/* The block files of a key directory in hash-chain order (root block first): out[i] is the
 * path of block i. Returns the count. */
static int chain_files(const char *dir, char out[][PATH_MAX], int cap) {
  clkv__kvb_header hs[64];
  char names[64][PATH_MAX];
  int n = 0;
  DIR *d = opendir(dir);
  cr_assert(d);
  struct dirent *e;
  while ((e = readdir(d)) && n < 64) {
    if (!strstr(e->d_name, ".kvb")) continue;
    snprintf(names[n], PATH_MAX, "%s/%s", dir, e->d_name);
    size_t len;
    unsigned char *b = slurp(names[n], &len);
    cr_assert(len > CLKV__KVB_HEADER && clkv__kvb_header_get(b, &hs[n]));
    free(b);
    n++;
  }
  closedir(d);
  int k = 0;
  uint64_t parent = 0;
  for (int depth = 0; depth < n && k < cap; depth++) {
    int found = -1;
    for (int i = 0; i < n && found < 0; i++) {
      int is_root = 1; /* no other file is its parent */
      for (int j = 0; j < n; j++) is_root &= hs[j].hash != hs[i].parent;
      if (depth == 0 ? is_root : hs[i].parent == parent) found = i;
    }
    if (found < 0) break;
    snprintf(out[k++], PATH_MAX, "%s", names[found]);
    parent = hs[found].hash;
  }
  return k;
}

static const char *PROMPT = "the disk tier keeps prompt blocks across runs of clkv, ok?";

Test(kv_disk, new_process_reads_blocks_and_prefills_only_the_rest) {
  char dir[400], args[600];
  snprintf(dir, sizeof dir, "%s/cache", tmpdir);
  snprintf(args, sizeof args, "--kv-block 8 --prefix-cache-dir '%s'", dir);
  run ref, first, second, third;
  run_clkv(tiny_a, PROMPT, "--kv-block 8 --no-prefix-cache", &ref);
  run_clkv(tiny_a, PROMPT, args, &first);
  run_clkv(tiny_a, PROMPT, args, &second);
  run_clkv(tiny_a, PROMPT, args, &third);
  const long n = ref.prompt_tokens, cached = 8 * ((n - 1) / 8);
  cr_assert(n > 40, "prompt of %ld tokens", n);
  expect_same_ids(&first, &ref, "first run with the disk tier");
  expect_same_ids(&second, &ref, "second process (blocks from disk)");
  expect_same_ids(&third, &ref, "third process");
  cr_assert_eq(first.prefill_tokens, n);
  cr_assert_eq(first.disk_read, 0);
  /* every full block of prompt + generated tokens (the last token is never fed back) */
  cr_assert_eq(first.disk_written, (n + ref.n_ids - 1) / 8, "wrote %ld", first.disk_written);
  cr_assert_eq(second.disk_read, first.disk_written);
  cr_assert_eq(second.prefill_tokens, n - cached, "prefilled %ld of %ld", second.prefill_tokens, n);
  cr_assert_eq(second.hit_tokens, cached);
  cr_assert_eq(second.disk_written, 0, "files already on disk are kept");
  cr_assert_eq(third.prefill_tokens, n - cached);
  cr_assert_eq(second.disk_ignored + third.disk_ignored, 0);
  cr_assert_eq(count_lines(second.err, "warning"), 0, "%s", second.err);
  /* another block size is another key: nothing to read, its own directory */
  snprintf(args, sizeof args, "--kv-block 16 --prefix-cache-dir '%s'", dir);
  run other;
  run_clkv(tiny_a, PROMPT, args, &other);
  cr_assert_eq(other.disk_read, 0);
  cr_assert_eq(other.prefill_tokens, n);
  char kd[PATH_MAX];
  model_key_dir(dir, tiny_a, 16, kd, sizeof kd);
  model_key_dir(dir, tiny_a, 8, kd, sizeof kd);
}

Test(kv_disk, damaged_and_foreign_files_are_ignored_with_a_warning) {
  char dir[400], args[600], kd8[PATH_MAX], kd16[PATH_MAX], kdb[PATH_MAX], p[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/cache", tmpdir);
  run ref, first, r;
  run_clkv(tiny_a, PROMPT, "--kv-block 8 --no-prefix-cache", &ref);
  snprintf(args, sizeof args, "--kv-block 8 --prefix-cache-dir '%s'", dir);
  run_clkv(tiny_a, PROMPT, args, &first);
  run_clkv(tiny_b, PROMPT, args, &r); /* another model: its own key directory */
  snprintf(args, sizeof args, "--kv-block 16 --prefix-cache-dir '%s'", dir);
  run_clkv(tiny_a, PROMPT, args, &r); /* another block size */
  char chain[64][PATH_MAX], chain_b[64][PATH_MAX], chain16[64][PATH_MAX];
  model_key_dir(dir, tiny_a, 8, kd8, sizeof kd8);
  model_key_dir(dir, tiny_b, 8, kdb, sizeof kdb);
  model_key_dir(dir, tiny_a, 16, kd16, sizeof kd16);
  const int nblk = chain_files(kd8, chain, 64);
  cr_assert_eq(nblk, first.disk_written, "%d blocks in the chain", nblk);
  cr_assert(nblk >= 5);
  cr_assert(chain_files(kdb, chain_b, 64) >= 1);
  cr_assert(chain_files(kd16, chain16, 64) >= 1);

  /* block 2: a flipped payload byte; block 3: truncated; plus files of model b and of
   * blocks of 16, and a forged block whose hash does not follow from its tokens */
  size_t len;
  unsigned char *b = slurp(chain[2], &len);
  b[len / 2] ^= 0x40;
  spit(chain[2], b, len);
  free(b);
  b = slurp(chain[3], &len);
  spit(chain[3], b, len - 100);
  free(b);
  b = slurp(chain_b[0], &len);
  snprintf(p, sizeof p, "%s/%s", kd8, strrchr(chain_b[0], '/') + 1);
  spit(p, b, len);
  free(b);
  b = slurp(chain16[0], &len);
  snprintf(p, sizeof p, "%s/%s", kd8, strrchr(chain16[0], '/') + 1);
  spit(p, b, len);
  free(b);
  b = slurp(chain[0], &len);
  clkv__kvb_header h;
  cr_assert(clkv__kvb_header_get(b, &h));
  h.hash ^= 1; /* a consistent file (checksum and name match) whose chain is wrong */
  clkv__kvb_header_put(&h, b);
  clkv__kvb_checksum(b, b + CLKV__KVB_HEADER, len - CLKV__KVB_HEADER, h.checksum);
  memcpy(b + 96, h.checksum, 32);
  snprintf(p, sizeof p, "%s/%016llx.kvb", kd8, (unsigned long long)h.hash);
  spit(p, b, len);
  free(b);

  snprintf(args, sizeof args, "--kv-block 8 --prefix-cache-dir '%s'", dir);
  run_clkv(tiny_a, PROMPT, args, &r);
  expect_same_ids(&r, &ref, "with damaged files");
  cr_assert_eq(r.disk_ignored, 5, "%s", r.err);
  cr_assert_eq(count_lines(r.err, "clkv: warning: prefix cache: ignoring "), 5, "%s", r.err);
  cr_assert(strstr(r.err, "checksum mismatch") && strstr(r.err, "truncated") &&
            strstr(r.err, "another model file") && strstr(r.err, "blocks of 16 tokens") &&
            strstr(r.err, "hash chain") && strstr(r.err, "delete it"), "%s", r.err);
  /* the chain is cut at block 2: blocks 0 and 1 are reused */
  cr_assert_eq(r.prefill_tokens, ref.prompt_tokens - 16, "prefilled %ld", r.prefill_tokens);
  cr_assert_eq(r.disk_read, nblk - 2, "read %ld", r.disk_read);
  cr_assert_eq(r.disk_written, 2, "the damaged blocks are written again (%ld)", r.disk_written);

  /* the next process finds the repaired chain; only the foreign and forged files remain */
  run_clkv(tiny_a, PROMPT, args, &r);
  expect_same_ids(&r, &ref, "after the repair");
  cr_assert_eq(r.disk_ignored, 3, "%s", r.err);
  cr_assert_eq(r.prefill_tokens, ref.prompt_tokens - 8 * ((ref.prompt_tokens - 1) / 8));
}

Test(kv_disk, unusable_directory_is_a_warning_not_a_crash) {
  char file[400], dir[500], args[700];
  snprintf(file, sizeof file, "%s/plain-file", tmpdir);
  spit(file, (const unsigned char *)"x", 1);
  snprintf(dir, sizeof dir, "%s/sub", file); /* below a regular file: cannot be created */
  snprintf(args, sizeof args, "--kv-block 8 --prefix-cache-dir '%s' --stats", dir);
  run ref, r;
  run_clkv(tiny_a, PROMPT, "--kv-block 8", &ref);
  run_clkv(tiny_a, PROMPT, args, &r);
  expect_same_ids(&r, &ref, "with an unusable directory");
  cr_assert(strstr(r.err, "cannot create") && strstr(r.err, "disk tier is off"), "%s", r.err);
  cr_assert_eq(r.disk_written, 0);
}

Test(kv_disk, save_errors_through_the_api) {
  clkv_runtime_params rp = clkv_runtime_default_params();
  clkv_runtime *rt;
  clkv_error err;
  cr_assert_eq(clkv_runtime_create(&rp, &rt, &err), CLKV_OK, "%s", err.message);
  clkv_model *m;
  clkv_model_params mp = clkv_model_default_params();
  mp.kv_block = 8;
  mp.n_ctx = 128;
  cr_assert_eq(clkv_model_load(rt, tiny_a, &mp, &m, &err), CLKV_OK, "%s", err.message);
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv_context_save_prefix(ctx), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(clkv_last_error(ctx), "prefix_cache_dir"), "%s", clkv_last_error(ctx));
  clkv_context_free(ctx);

  char dir[400], key[PATH_MAX], cmd[2 * PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/api", tmpdir);
  clkv_context_params cp = clkv_context_default_params();
  cp.prefix_cache_dir = dir;
  cr_assert_eq(clkv_context_create(m, &cp, &ctx, &err), CLKV_OK, "%s", err.message);
  int32_t prompt[40];
  for (int i = 0; i < 40; i++) prompt[i] = (int32_t)((i * 7 + 3) % 250);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 4;
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 40, &gp, NULL, NULL, NULL), CLKV_OK, "%s", clkv_last_error(ctx));
  /* the key directory turns into a file: saving fails with a clear message, no crash */
  model_key_dir(dir, tiny_a, 8, key, sizeof key);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && touch '%s'", key, key);
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(clkv_context_save_prefix(ctx), CLKV_ERR_IO);
  cr_assert(strstr(clkv_last_error(ctx), "cannot write"), "%s", clkv_last_error(ctx));
  clkv_kv_stats ks;
  clkv_context_kv_stats(ctx, &ks);
  cr_assert_eq(ks.disk_blocks_written, 0);
  /* and back to a directory: the blocks are written */
  snprintf(cmd, sizeof cmd, "rm -f '%s' && mkdir '%s'", key, key);
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(clkv_context_save_prefix(ctx), CLKV_OK, "%s", clkv_last_error(ctx));
  clkv_context_kv_stats(ctx, &ks);
  cr_assert_eq(ks.disk_blocks_written, (40 + 3) / 8);
  clkv_context_free(ctx);
  clkv_model_free(m);
  clkv_runtime_free(rt);
}

/* ---- the real model ---- */
Test(kv_disk, real_model_new_process_matches_run_without_cache) {
  const char *model = getenv("CLKV_MODEL");
  if (!model || access(model, R_OK)) cr_skip_test("CLKV_MODEL not set or not readable");
  char dir[400], args[600];
  snprintf(dir, sizeof dir, "%s/real", tmpdir);
  snprintf(args, sizeof args, "--prefix-cache-dir '%s'", dir);
  const char *prompt = "The history of the printing press begins in Mainz around 1440, when a "
                       "goldsmith named Johannes Gutenberg combined";
  run ref, first, second;
  run_clkv(model, prompt, "--no-prefix-cache", &ref);
  run_clkv(model, prompt, args, &first);
  run_clkv(model, prompt, args, &second);
  expect_same_ids(&first, &ref, "real model, first run");
  expect_same_ids(&second, &ref, "real model, blocks from disk");
  const long n = ref.prompt_tokens, cached = 16 * ((n - 1) / 16);
  cr_assert(cached >= 16, "prompt of %ld tokens", n);
  cr_assert(second.disk_read >= cached / 16);
  cr_assert_eq(second.prefill_tokens, n - cached, "prefilled %ld of %ld", second.prefill_tokens, n);
}

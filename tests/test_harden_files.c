/* test_harden_files.c — files a user or a crash left behind (issue 15): prefix-cache
 * temporaries of killed writers, a model file changed under the cache's digest, damaged
 * hyperparameters. Tiny seeded models through the public API. */
#define _DEFAULT_SOURCE /* mkdtemp, utimes */
#include "ref/ref.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* A context over model with a prefix cache in dir that generates and saves a few blocks. */
static void use_prefix_cache(clkv_runtime *rt, const char *model, const char *dir) {
  clkv_error err;
  clkv_model *m;
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 128;
  cr_assert_eq(clkv_model_load(rt, model, &mp, &m, &err), CLKV_OK, "%s", err.message);
  clkv_context *ctx;
  clkv_context_params cp = clkv_context_default_params();
  cp.prefix_cache_dir = dir;
  cr_assert_eq(clkv_context_create(m, &cp, &ctx, &err), CLKV_OK, "%s", err.message);
  int32_t prompt[40];
  for (int i = 0; i < 40; i++) prompt[i] = (int32_t)((i * 7 + 3) % 250);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.max_tokens = 2;
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 40, &gp, NULL, NULL, NULL), CLKV_OK);
  cr_assert_eq(clkv_context_save_prefix(ctx), CLKV_OK, "%s", clkv_last_error(ctx));
  clkv_context_free(ctx);
  clkv_model_free(m);
}

/* The one key directory (not model-ids) under root. */
static void key_dir(const char *root, char *out, size_t cap) {
  DIR *d = opendir(root);
  cr_assert(d);
  struct dirent *e;
  out[0] = 0;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && strcmp(e->d_name, "model-ids"))
      snprintf(out, cap, "%s/%s", root, e->d_name);
  closedir(d);
  cr_assert(out[0], "no key directory in %s", root);
}

static void touch(const char *path, long age_s) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "%s", path);
  fputs("partial", f);
  fclose(f);
  struct timeval tv[2];
  gettimeofday(&tv[0], NULL);
  tv[0].tv_sec -= age_s;
  tv[1] = tv[0];
  cr_assert_eq(utimes(path, tv), 0);
}

/* Defect 5: temporaries that writers killed during a save left behind (their process is
 * gone, or an hour old) are removed on the next open; a live writer's stays. */
Test(harden, stale_prefix_cache_temporaries_are_cleaned, .timeout = 300) {
  char dir[] = "/tmp/clkv-stale-XXXXXX", model[96], key[PATH_MAX], p[5][PATH_MAX + 64];
  cr_assert(mkdtemp(dir));
  snprintf(model, sizeof model, "%s/tiny.gguf", dir);
  clkv_error err;
  ref_tiny_params tp = ref_tiny_default();
  cr_assert_eq(ref_tiny_write(&tp, model, &err), CLKV_OK, "%s", err.message);
  char root[128];
  snprintf(root, sizeof root, "%s/cache", dir);
  clkv_runtime *rt = tu_new_runtime(dir);
  use_prefix_cache(rt, model, root);
  key_dir(root, key, sizeof key);
  pid_t dead = fork(); /* a pid that was a process and is no more */
  if (dead == 0) _exit(0);
  cr_assert(dead > 0 && waitpid(dead, NULL, 0) == dead);
  snprintf(p[0], sizeof p[0], "%s/.tmp-%ld-aB3dE6", key, (long)dead);
  snprintf(p[1], sizeof p[1], "%s/.tmp-Zq81xY", key); /* no pid: stale when old */
  snprintf(p[2], sizeof p[2], "%s/model-ids/.tmp-%ld-Qw12Er", root, (long)dead);
  snprintf(p[3], sizeof p[3], "%s/.tmp-%ld-LiVe01", key, (long)getpid()); /* being written */
  snprintf(p[4], sizeof p[4], "%s/.tmp-Fr35hN", key);                     /* young, no pid */
  for (int i = 0; i < 5; i++) touch(p[i], i == 1 ? 7200 : 0);
  /* a changed modification time makes the model's digest be computed (and saved) again */
  cr_assert_eq(utimes(model, NULL), 0);
  use_prefix_cache(rt, model, root);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(access(p[i], F_OK) == 0, i >= 3, "%s %s", p[i], i >= 3 ? "removed" : "kept");
  clkv_runtime_free(rt);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Overwrites the first float equal to was after key in the file at path with now. */
static void set_f32_after(const char *path, const char *key, float was, float now) {
  FILE *f = fopen(path, "r+b");
  cr_assert(f);
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  const size_t klen = strlen(key);
  for (size_t i = 0; i + klen + 12 <= n; i++) {
    if (memcmp(buf + i, key, klen)) continue;
    for (size_t j = i + klen; j + 4 <= n && j < i + klen + 16; j++)
      if (!memcmp(buf + j, &was, 4)) {
        cr_assert(!fseek(f, (long)j, SEEK_SET) && fwrite(&now, 4, 1, f) == 1);
        fclose(f);
        return;
      }
  }
  cr_assert(0, "no %s = %g in %s", key, was, path);
}

/* Defect 7: hyperparameters are validated: rope.freq_base -1.5 (or NaN) is refused. */
Test(harden, hyperparameters_validated, .timeout = 60) {
  char dir[] = "/tmp/clkv-hp-XXXXXX", path[64];
  cr_assert(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/bad.gguf", dir);
  const float bad[] = {-1.5f, 0.0f, NAN, INFINITY};
  for (int i = 0; i < 4; i++) {
    ref_tiny_params tp = ref_tiny_default();
    tp.rope_base = 12345.0f; /* a value to find in the file and overwrite */
    clkv_error err;
    cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
    set_f32_after(path, "llama.rope.freq_base", 12345.0f, bad[i]);
    clkv_file_info fi;
    cr_assert_eq(clkv_model_inspect(path, &fi, &err), CLKV_OK, "%s", err.message);
    cr_assert(!fi.runnable && strstr(fi.why_not, "rope.freq_base") &&
              strstr(fi.why_not, "out of range"), "rope_base %g: %s", bad[i], fi.why_not);
  }
  unlink(path);
  rmdir(dir);
}

/* Defect 7: the model's digest kept in model-ids is computed again when the file changes
 * (size, modification time): another model written at the same path gets its own key. */
Test(harden, model_digest_rechecked_when_the_file_changes, .timeout = 300) {
  char dir[] = "/tmp/clkv-ids-XXXXXX", model[96], root[128];
  cr_assert(mkdtemp(dir));
  snprintf(model, sizeof model, "%s/tiny.gguf", dir);
  snprintf(root, sizeof root, "%s/cache", dir);
  clkv_runtime *rt = tu_new_runtime(dir);
  for (int i = 0; i < 2; i++) {
    ref_tiny_params tp = ref_tiny_default();
    tp.seed = 100 + (uint64_t)i; /* other weights, same size */
    clkv_error err;
    cr_assert_eq(ref_tiny_write(&tp, model, &err), CLKV_OK, "%s", err.message);
    struct timeval tv[2] = {{.tv_sec = 1000000000 + i}, {.tv_sec = 1000000000 + i}};
    cr_assert_eq(utimes(model, tv), 0);
    use_prefix_cache(rt, model, root);
  }
  int keys = 0;
  DIR *d = opendir(root);
  cr_assert(d);
  for (struct dirent *e; (e = readdir(d));)
    keys += e->d_name[0] != '.' && strcmp(e->d_name, "model-ids");
  closedir(d);
  cr_assert_eq(keys, 2, "the second model reused the first one's digest");
  clkv_runtime_free(rt);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* test_fuzz_regress.c — the fuzz harnesses' kept inputs replayed by the Criterion suite:
 * every input that once broke a harness (tests/fuzz/regress/<target>/, one file per defect
 * found, named after it) and every seed (tests/fuzz/<target>/), run through the harness code
 * scripts/fuzz runs, each in a child process, which must exit normally. No OpenCL. */
#include "format/gguf.h"
#include "fuzz.h"
#include "text/tokenizer.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*harness_fn)(const uint8_t *data, size_t size);

/* Runs one file through fn in a child: 0 when it exits normally, else its wait status. */
static int replay_file(harness_fn fn, const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s", path);
  size_t cap = 1 << 16, n = 0, got;
  unsigned char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
    if ((n += got) == cap) buf = realloc(buf, cap *= 2);
  fclose(f);
  cr_assert(buf, "no memory for %s", path);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    fn(buf, n);
    _exit(0);
  }
  free(buf);
  int status = 0;
  cr_assert(pid > 0 && waitpid(pid, &status, 0) == pid, "cannot run a child for %s", path);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : status;
}

/* Replays every file of tests/fuzz/<sub>; returns how many there were. */
static int replay_dir(harness_fn fn, const char *sub) {
  char dir[512], path[1024];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", CLKV_SOURCE_DIR, sub);
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    const int st = replay_file(fn, path);
    cr_expect_eq(st, 0, "%s: the harness %s", path,
                 WIFSIGNALED(st) ? "crashed (a signal: abort is a broken invariant)" : "failed");
    n++;
  }
  closedir(d);
  return n;
}

static void replay(harness_fn fn, const char *target) {
  char regress[64];
  snprintf(regress, sizeof regress, "regress/%s", target);
  replay_dir(fn, regress);
  cr_expect_gt(replay_dir(fn, target), 0, "tests/fuzz/%s holds no seed (scripts/fuzz --seeds)", target);
}

Test(fuzz_regress, gguf) { replay(clkv_fuzz_gguf, "gguf"); }
Test(fuzz_regress, tokenizer) { replay(clkv_fuzz_tokenizer, "tokenizer"); }
Test(fuzz_regress, chat) { replay(clkv_fuzz_chat, "chat"); }
Test(fuzz_regress, profile) { replay(clkv_fuzz_profile, "profile"); }
Test(fuzz_regress, tunables) { replay(clkv_fuzz_tunables, "tunables"); }
Test(fuzz_regress, kvblock) { replay(clkv_fuzz_kvblock, "kvblock"); }

/* Found beside the fuzzers: the merge loop scanned every pair for each merge, so one long
 * word was quadratic (64 KB of "a" took 32 s with the default model, 1 MB hours). A
 * quarter megabyte now takes well under a second, also under the sanitizers. */
Test(fuzz_regress, long_word_merges_in_n_log_n, .timeout = 20) {
  const char *toks[] = {"a", "aa", "aaaa", "b"};
  const char *merges[] = {"a a", "aa aa"};
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  clkv__gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 2);
  size_t size;
  void *bytes = clkv__gguf_writer_serialize(w, &size);
  clkv__gguf_writer_free(w);
  clkv__gguf_file *f;
  clkv__tokenizer *t;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open_memory(bytes, size, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__tokenizer_load(f, &t, &err), CLKV_OK, "%s", err.message);
  const size_t n = 256 * 1024;
  char *text = malloc(n);
  memset(text, 'a', n);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  const int ids = clkv__tokenizer_encode(t, text, n, 0, 0, NULL, 0);
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
  cr_expect_eq(ids, (int)(n / 4), "%zu bytes of \"a\" are %zu tokens \"aaaa\", not %d", n, n / 4, ids);
  cr_expect_lt(s, 5.0, "encoding one word of %zu bytes took %.1f s", n, s);
  free(text);
  clkv__tokenizer_free(t);
  clkv__gguf_close(f);
  free(bytes);
}

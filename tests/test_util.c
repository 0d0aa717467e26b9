/* test_util.c — fixtures and the CLI runner shared by the suites (tests/test_util.h). */
#include "test_util.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

clkv_runtime *tu_rt;
char tu_tmpdir[256];

/* The suites compare the engine with float references (the plain-C model, the numpy oracle)
 * at float tolerances, so they run the float dot: int8 activations (decode.dot 3, PoCL's
 * shipped default) move each logit by more than those tolerances. The int8 path has its own
 * checks: kernels::matvec_int8_activations_within_their_bound (each output within its
 * quantization bound) and arch::smollm2_int8_perplexity_within_half_a_percent_of_float.
 * An explicit CLKV_MV_DOT in the environment is kept. */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  setenv("CLKV_MV_DOT", "1", 0);
}

void tu_init(const char *name) {
  clkv_error err;
  clkv_runtime_params p = clkv_runtime_default_params();
  cr_assert_eq(clkv_runtime_create(&p, &tu_rt, &err), CLKV_OK, "%s", err.message);
  snprintf(tu_tmpdir, sizeof tu_tmpdir, "/tmp/clkv-%s-XXXXXX", name);
  cr_assert(mkdtemp(tu_tmpdir), "cannot make a directory %s", tu_tmpdir);
}

void tu_fini(void) {
  clkv_runtime_free(tu_rt);
  tu_rt = NULL;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_tmpdir);
  if (system(cmd)) {}
}

clkv_runtime *tu_new_runtime(const char *dir) {
  clkv_runtime_params p = clkv_runtime_default_params();
  p.cache_dir = dir;
  p.profiling = 1;
  clkv_runtime *rt = NULL;
  clkv_error err;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  return rt;
}

const char *tu_real_model(void) {
  const char *p = getenv("CLKV_MODEL");
  static char buf[512];
  if (!p || !*p) {
    snprintf(buf, sizeof buf, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", CLKV_SOURCE_DIR);
    p = buf;
  }
  return access(p, R_OK) == 0 ? p : NULL;
}

const char *tu_gemma_model(void) {
  const char *p = getenv("CLKV_GEMMA");
  static char buf[512];
  if (p && *p) {
    cr_assert(access(p, R_OK) == 0, "CLKV_GEMMA=%s cannot be read", p);
    return p;
  }
  snprintf(buf, sizeof buf, "%s/models/gemma-3-270m-q4_k_m.gguf", CLKV_SOURCE_DIR);
  return access(buf, R_OK) == 0 ? buf : NULL;
}

int tu_run_cli(const char *args, char *out, size_t cap) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  cr_assert(n > 0, "cannot find the test program's directory");
  exe[n] = 0;
  *strrchr(exe, '/') = 0;
  size_t need = strlen(exe) + strlen(args) + 32;
  char *cmd = malloc(need);
  cr_assert(cmd);
  snprintf(cmd, need, "%s/clkv %s 2>&1", exe, args);
  FILE *p = popen(cmd, "r");
  free(cmd);
  cr_assert(p, "cannot run clkv");
  size_t len = fread(out, 1, cap - 1, p);
  out[len] = 0;
  int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
}

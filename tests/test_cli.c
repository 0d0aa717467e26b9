/* test_cli.c — the clkv command's option tables (every option in --help, the errors of a
 * bad option) and the public tuning API it is built on (clkv_tune, clkv_tuning_path,
 * clkv_file_main_type), through the API and through `clkv tune`, on a tiny model. */
#include "ref/ref.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


static void expect_in(const char *out, const char *const *words) {
  for (int i = 0; words[i]; i++) cr_expect(strstr(out, words[i]), "no '%s' in:\n%s", words[i], out);
}

Test(cli, help_comes_from_the_option_tables) {
  char out[16384];
  cr_assert_eq(tu_run_cli("--help", out, sizeof out), 0, "%s", out);
  static const char *const cmds[] = {"devices", "inspect", "generate", "chat", "tune", "cache",
                                     "bench", NULL};
  expect_in(out, cmds);
  cr_assert_eq(tu_run_cli("generate --help", out, sizeof out), 0, "%s", out);
  static const char *const gen[] = {
      "-m, --model MODEL", "-p, --prompt PROMPT", "-f, --file FILE", "--batch-file FILE",
      "--parallel N", "-n, --n-predict N", "--temp T", "--top-k K", "--top-p P", "--min-p P",
      "--repeat-penalty R", "-s, --seed S", "--chat", "--system, --system-prompt S",
      "-r, --stop, --reverse-prompt STR", "--device D", "-c, --ctx, --ctx-size N",
      "--kv-block 8|16|32", "--chunk N",
      "--ids", "--stats", "--json", "--no-prefix-cache", "--kv-evict lru|lfu|fifo",
      "--kv-host-blocks N", "--kv-type f16|q8|q4", "--kv-mem SIZE|FRACTION",
      "--prefix-cache-dir DIR", "-h, --help", "[default: 128]", "[default: 0.8]",
      "[default: lru]", "[default: f16]", "[default: 16]", "[default: -1]", "--version", NULL};
  expect_in(out, gen);
  cr_assert_eq(tu_run_cli("chat --help", out, sizeof out), 0, "%s", out);
  cr_expect(!strstr(out, "--batch-file FILE") && strstr(out, "--system, --system-prompt S"), "%s",
            out);
  cr_assert_eq(tu_run_cli("tune -h", out, sizeof out), 0, "%s", out);
  static const char *const tune[] = {"--budget SECONDS", "[default: 60]", "--device D", NULL};
  expect_in(out, tune);
  cr_assert_eq(tu_run_cli("cache --help", out, sizeof out), 0, "%s", out);
  cr_expect(strstr(out, "--keep-tuning"), "%s", out);
}

Test(cli, bad_options_say_what_is_wrong_and_exit_2) {
  char out[16384];
  int rc = tu_run_cli("generate --frobnicate", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "unknown option '--frobnicate'") &&
            strstr(out, "usage: clkv generate"), "rc %d: %s", rc, out);
  rc = tu_run_cli("chat --batch-file prompts.txt", out, sizeof out); /* generate's alone */
  cr_assert(rc == 2 && strstr(out, "unknown option '--batch-file'"), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate -n", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "-n needs a value"), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate -n 2000000", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "-n needs a whole number from 0 to 1048576"), "rc %d: %s", rc,
            out);
  rc = tu_run_cli("generate --top-p 1.5", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--top-p needs a number from 0 to 1"), "rc %d: %s", rc, out);
  rc = tu_run_cli("generate --kv-block 12", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--kv-block takes 8, 16 or 32, not '12'"), "rc %d: %s", rc,
            out);
  rc = tu_run_cli("tune --budget 0", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--budget needs a number from 1 to 86400"), "rc %d: %s", rc,
            out);
  rc = tu_run_cli("devices --bogus", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "usage: clkv devices"), "rc %d: %s", rc, out);
  rc = tu_run_cli("cache", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "usage: clkv cache clear"), "rc %d: %s", rc, out);
  rc = tu_run_cli("cache clear extra", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "unknown option 'extra'"), "rc %d: %s", rc, out);
  rc = tu_run_cli("no-such-command", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "unknown command"), "rc %d: %s", rc, out);
}


/* The report in the public shape: every kernel named, tuned never slower than default. */
static void check_report(const clkv_tune_report *r) {
  cr_assert(r->n_kernels >= 4 && r->n_kernels <= CLKV_TUNE_MAX_KERNELS, "%d", r->n_kernels);
  cr_assert_str_eq(r->weight_type, "Q4_1");
  unsigned tried = 0;
  for (int k = 0; k < r->n_kernels; k++) {
    const clkv_tune_kernel *t = &r->kernels[k];
    cr_assert(t->name[0] && t->default_shape[0] && t->tuned_shape[0], "kernel %d", k);
    cr_assert_eq(t->is_prefill_path, !strncmp(t->name, "gemm.", 5), "%s", t->name);
    cr_assert(isfinite(t->default_ms) && t->tuned_ms <= t->default_ms, "%s: %g > %g", t->name,
              t->tuned_ms, t->default_ms);
    tried += t->tried;
  }
  cr_assert_eq(r->candidates_checked, tried);
  cr_assert(r->clblast_available || r->clblast_why[0]);
}

Test(cli, public_tune_api_and_clkv_tune, .timeout = 600) {
  char dir[] = "/tmp/clkv_cli_XXXXXX", model[64], out[16384];
  cr_assert(mkdtemp(dir));
  snprintf(model, sizeof model, "%s/tiny.gguf", dir);
  clkv_error err;
  ref_tiny_params tp = ref_tiny_default(); /* Q4_1 weights, a Q8_0 embedding */
  tp.n_heads = 2; /* head_dim 32, as the tuner's kernels need */
  tp.n_kv_heads = 1;
  cr_assert_eq(ref_tiny_write(&tp, model, &err), CLKV_OK, "%s", err.message);
  clkv_file_info fi;
  cr_assert_eq(clkv_model_inspect(model, &fi, &err), CLKV_OK, "%s", err.message);
  cr_assert_str_eq(clkv_file_main_type(&fi), "Q4_1");
  cr_assert_str_eq(clkv_file_main_type(&(clkv_file_info){.n_types = 0}), "F32");

  clkv_runtime *rt = tu_new_runtime(dir);
  clkv_tune_report r;
  clkv_tune_params p = clkv_tune_default_params();
  cr_assert(p.budget_s == 60 && p.save == 1 && !p.weight_type);
  p.weight_type = "IQ2_XXS"; /* not runnable */
  cr_assert_eq(clkv_tune(rt, &fi, &p, NULL, NULL, &r, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "IQ2_XXS"), "%s", err.message);
  p.weight_type = "Q5_K"; /* runnable, but the tiny model's rows of 64 are not 256-blocks */
  cr_assert_eq(clkv_tune(rt, &fi, &p, NULL, NULL, &r, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "whole blocks"), "%s", err.message);
  p.weight_type = NULL;
  p.budget_s = 0;
  cr_assert_eq(clkv_tune(rt, &fi, &p, NULL, NULL, &r, &err), CLKV_ERR_INVALID_ARG);
  p.budget_s = 1;
  cr_assert_eq(clkv_tune(rt, &fi, &p, NULL, NULL, &r, &err), CLKV_OK, "%s", err.message);
  check_report(&r);
  char path[1200], small[8];
  int len = clkv_tuning_path(rt, path, sizeof path);
  cr_assert(len == (int)strlen(path) && !strncmp(path, dir, strlen(dir)), "%s", path);
  cr_assert_str_eq(r.tuning_file, path);
  cr_assert_eq(access(path, R_OK), 0, "%s was not written", path);
  cr_assert_eq(clkv_tuning_path(rt, small, sizeof small), len);
  cr_assert_eq(strlen(small), sizeof small - 1);
  clkv_runtime_free(rt);

  /* the command: same file, report printed */
  cr_assert_eq(remove(path), 0);
  char args[300];
  snprintf(args, sizeof args, "tune -m '%s' --budget 1", model);
  setenv("CLKV_CACHE_DIR", dir, 1);
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "(Q4_1 weights)") && strstr(out, "matvec.decode") &&
            strstr(out, "candidates checked") && strstr(out, path), "rc %d: %s", rc, out);
  cr_assert_eq(access(path, R_OK), 0, "clkv tune did not write %s", path);
  unsigned removed = 0;
  cr_assert_eq(clkv_cache_clear_tuning(dir, &removed, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(removed, 1);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  if (system(args)) {}
}

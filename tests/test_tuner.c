/* test_tuner.c — the autotuner on a tiny model shape with a 3-second budget in a temporary
 * cache directory: the tuning file is written and loaded back, tuned is never slower than
 * default, every timed candidate passed the correctness check, a damaged file is ignored. */
#include "tune/tuner.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static clkv_runtime *new_runtime(const char *dir) {
  clkv_runtime_params p = clkv_runtime_default_params();
  p.cache_dir = dir;
  p.profiling = 1;
  clkv_runtime *rt = NULL;
  clkv_error err;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  return rt;
}

static const clkv_model_info tiny = {.n_layers = 1, .n_embd = 64, .n_heads = 2,
                                     .n_kv_heads = 1, .head_dim = 32, .n_ff = 96};

Test(tuner, tunes_persists_loads_and_survives_damage, .timeout = 300) {
  char dir[] = "/tmp/clkv_tuner_XXXXXX";
  cr_assert(mkdtemp(dir));
  clkv_runtime *rt = new_runtime(dir);
  clkv__tune_report r;
  clkv_error err;
  cr_assert_eq(clkv__tune(rt, &tiny, GGML_T_Q8_0, 3.0, NULL, NULL, &r, &err), CLKV_OK, "%s",
               err.message);
  for (int k = 0; k < CLKV__TK_COUNT; k++) {
    cr_assert(isfinite(r.k[k].default_ms), "%s: the default failed its check", r.k[k].name);
    cr_assert(r.k[k].tuned_ms <= r.k[k].default_ms, "%s: tuned %g > default %g", r.k[k].name,
              r.k[k].tuned_ms, r.k[k].default_ms);
    cr_assert(r.k[k].tried >= 1);
  }
  unsigned tried = 0;
  for (int k = 0; k < CLKV__TK_COUNT; k++) tried += r.k[k].tried;
  cr_assert_eq(r.candidates_checked, tried, "every timed candidate passed the check first");
  cr_assert(r.elapsed_s < 60);
  cr_assert_eq(clkv__tuning_save(rt, &r.tuned, &err), CLKV_OK, "%s", err.message);
  char path[1200];
  clkv__tuning_path(rt, path, sizeof path);
  cr_assert(strncmp(path, dir, strlen(dir)) == 0 && access(path, R_OK) == 0, "%s", path);
  clkv_runtime_free(rt);

  /* a new runtime loads the tuned values */
  rt = new_runtime(dir);
  clkv__tunables t, d;
  char src[1200];
  cr_assert_eq(clkv__tunables_load(rt, &t, src, sizeof src), 1);
  cr_assert_str_eq(src, path);
  cr_assert(!memcmp(&t, &r.tuned, sizeof t), "loaded values differ from the tuned ones");

  /* damaged: ignored, defaults used */
  FILE *f = fopen(path, "w");
  cr_assert(f);
  fputs("decode.ksplit=3\ngarbage\n", f);
  fclose(f);
  clkv__default_tunables(&rt->info, &d);
  cr_assert_eq(clkv__tunables_load(rt, &t, src, sizeof src), 0);
  cr_assert_str_eq(src, "defaults");
  cr_assert(!memcmp(&t, &d, sizeof t));
  clkv_runtime_free(rt);
  remove(path);
  char sub[1100];
  snprintf(sub, sizeof sub, "%s/tuning", dir);
  rmdir(sub);
}

Test(tuner, parses_keys_and_rejects_bad_values) {
  clkv__tunables t = {{{1, 4, 2, 1}, {1, 4, 2, 8}}, 8, 16, 32, {CLKV__GEMM_OWN}};
  cr_assert_eq(clkv__tunables_parse("# c\ndecode.rg=8\nprefill.tt=16\natt_wg=32\n", &t), 0);
  cr_assert_eq(t.mv[0].rg, 8);
  cr_assert_eq(t.mv[1].tt, 16);
  cr_assert_eq(t.att_wg, 32);
  cr_assert_eq(t.mv[0].ksplit, 1);
  cr_assert_eq(clkv__tunables_parse("prefill.gemm.gu=clblast\nprefill.gemm.down=own\n", &t), 0);
  cr_assert_eq(t.gemm[CLKV__PROJ_GU], CLKV__GEMM_CLBLAST);
  cr_assert_eq(t.gemm[CLKV__PROJ_DOWN], CLKV__GEMM_OWN);
  cr_assert_eq(t.gemm[CLKV__PROJ_QKV], CLKV__GEMM_OWN);
  const char *bad[] = {"", "decode.rg=0\n", "decode.ksplit=3\n", "nope=1\n", "tq=abc\n",
                       "tq\n", "prefill.gemm.gu=cublas\n", "prefill.gemm.ffn=own\n",
                       "prefill.gemm.o=1\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    clkv__tunables u = t;
    cr_assert_eq(clkv__tunables_parse(bad[i], &u), -1, "accepted %s", bad[i]);
    cr_assert(!memcmp(&u, &t, sizeof t), "changed on a bad file");
  }
}

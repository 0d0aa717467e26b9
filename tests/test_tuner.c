/* test_tuner.c — the autotuner on a tiny model shape with a 3-second budget in a temporary
 * cache directory: the tuning file is written and loaded back, tuned is never slower than
 * default, every timed candidate passed the correctness check, a damaged file is ignored,
 * a candidate with wrong outputs (kernels broken on purpose) is rejected;
 * the table of tunables: consistent rows, built-in defaults, work-group limits, environment
 * overrides and the tuning file's lines all follow it. */
#include "tune/tuner.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static const clkv_model_info tiny = {.n_layers = 1, .n_embd = 64, .n_heads = 2,
                                     .n_kv_heads = 1, .head_dim = 32, .n_ff = 96};

/* 1 if every space-separated word of words is a word of text. */
static int has_words(const char *text, const char *words) {
  char padded[96], word[40];
  snprintf(padded, sizeof padded, " %s ", text);
  for (const char *w = words; *w;) {
    size_t n = strcspn(w, " ");
    snprintf(word, sizeof word, " %.*s ", (int)n, w);
    if (!strstr(padded, word)) return 0;
    w += n + (w[n] == ' ');
  }
  return 1;
}

Test(tuner, tunes_persists_loads_and_survives_damage, .timeout = 300) {
  char dir[] = "/tmp/clkv_tuner_XXXXXX";
  cr_assert(mkdtemp(dir));
  clkv_runtime *rt = tu_new_runtime(dir);
  clkv__tune_report r;
  clkv_error err;
  cr_assert_eq(clkv__tune(rt, &tiny, GGML_T_Q8_0, 3.0, NULL, NULL, &r, &err), CLKV_OK, "%s",
               err.message);
  /* each kernel's shape names the tunables of its rows (a row added since may add a word) */
  const clkv__mv_shape *d0 = &r.defaults.mv[CLKV__PH_DECODE], *p0 = &r.defaults.mv[CLKV__PH_PREFILL];
  char want[CLKV__TK_GEMM_QKV][64];
  snprintf(want[CLKV__TK_MV_DECODE], 64, "ksplit=%u rg=%u rows=%u", d0->ksplit, d0->rg, d0->rows);
  snprintf(want[CLKV__TK_MV_PREFILL], 64, "ksplit=%u rg=%u rows=%u tt=%u", p0->ksplit, p0->rg,
           p0->rows, p0->tt);
  snprintf(want[CLKV__TK_ATT_DECODE], 64, "att_wg=%u", r.defaults.att_wg);
  snprintf(want[CLKV__TK_ATT_PREFILL], 64, "tq=%u tk=%u", r.defaults.tq, r.defaults.tk);
  for (int k = 0; k < CLKV__TK_GEMM_QKV; k++) cr_assert(has_words(r.k[k].default_shape, want[k]),
                                                         "%s: %s", want[k], r.k[k].default_shape);
  cr_assert(!has_words(r.k[CLKV__TK_MV_DECODE].default_shape, "tt=1"), "decode is timed on one token");
  for (int k = CLKV__TK_GEMM_QKV; k < CLKV__TK_COUNT; k++) cr_assert_str_eq(r.k[k].default_shape, "own");
  for (int k = 0; k < CLKV__TK_COUNT; k++) {
    cr_assert(isfinite(r.k[k].default_ms), "%s: the default failed its check", r.k[k].name);
    cr_assert(r.k[k].tuned_ms <= r.k[k].default_ms, "%s: tuned %g > default %g", r.k[k].name,
              r.k[k].tuned_ms, r.k[k].default_ms);
    cr_assert(r.k[k].tried >= 1);
    cr_assert(isfinite(r.k[k].default_spread_ms) && r.k[k].default_spread_ms >= 0);
    /* an unchanged shape claims no gain (a gemm kind's "own" may carry a new prefill shape) */
    if (k < CLKV__TK_GEMM_QKV && !strcmp(r.k[k].tuned_shape, r.k[k].default_shape))
      cr_assert_eq(r.k[k].tuned_ms, r.k[k].default_ms, "%s", r.k[k].name);
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
  rt = tu_new_runtime(dir);
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

/* Copies kernels/ into dir; in matvec.cl the ADD epilogue (residual projections) gives
 * wrong sums when KSPLIT is 4, a value the tuner tries for decode. */
static void write_broken_kernels(const char *dir) {
  const char *files[] = {"contract.h", "common.cl", "matvec.cl", "attention.cl", "embed.cl",
                         "gemm.cl", "bench.cl", "selftest.cl"};
  const char *good = "Y[(size_t)tt * rows + r0 + r] += s[r][t] * scale;";
  const char *bad = "Y[(size_t)tt * rows + r0 + r] += s[r][t] * scale * (KSPLIT == 4 ? 1.01f : 1.0f);";
  static char text[1 << 20];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[1200];
    snprintf(path, sizeof path, "%s/kernels/%s", CLKV_SOURCE_DIR, files[i]);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    cr_assert(f = fopen(path, "wb"), "%s", path);
    char *at = strcmp(files[i], "matvec.cl") ? NULL : strstr(text, good);
    if (!strcmp(files[i], "matvec.cl")) cr_assert(at, "matvec.cl has no ADD epilogue line to break");
    if (at) {
      fwrite(text, 1, (size_t)(at - text), f);
      fputs(bad, f);
      fputs(at + strlen(good), f);
    } else {
      fwrite(text, 1, n, f);
    }
    fclose(f);
  }
}

/* A candidate whose outputs are wrong is rejected by the correctness check and never
 * chosen, however fast: kernels where KSPLIT 4 breaks the residual sums. */
Test(tuner, a_candidate_that_fails_its_check_is_rejected, .timeout = 300) {
  char dir[] = "/tmp/clkv_tuner_XXXXXX", kdir[64];
  cr_assert(mkdtemp(dir));
  snprintf(kdir, sizeof kdir, "%s/kernels", dir);
  cr_assert_eq(mkdir(kdir, 0700), 0);
  write_broken_kernels(kdir);
  clkv_runtime_params p = clkv_runtime_default_params();
  p.cache_dir = dir;
  p.profiling = 1;
  p.kernel_dir = kdir;
  clkv_runtime *rt = NULL;
  clkv_error err;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  clkv__tune_report r;
  cr_assert_eq(clkv__tune(rt, &tiny, GGML_T_Q8_0, 15.0, NULL, NULL, &r, &err), CLKV_OK, "%s", err.message);
  cr_log_info("tuned in %.1f s, budget hit: %d", r.elapsed_s, r.budget_hit);
  const clkv__tune_kernel *d = &r.k[CLKV__TK_MV_DECODE];
  cr_assert_eq(r.defaults.mv[CLKV__PH_DECODE].ksplit == 4, 0, "the default is the broken shape");
  cr_assert(isfinite(d->default_ms), "the default (ksplit=%u) failed its check",
            r.defaults.mv[CLKV__PH_DECODE].ksplit);
  cr_assert_geq(d->failed, 1, "%s: no candidate rejected (tried %u)", d->name, d->tried);
  cr_assert_neq(r.tuned.mv[CLKV__PH_DECODE].ksplit, 4, "the broken shape was chosen");
  cr_assert_neq(r.tuned.mv[CLKV__PH_PREFILL].ksplit, 4, "the broken shape was chosen for prefill");
  cr_assert(!has_words(d->tuned_shape, "ksplit=4") && !has_words(d->runner_up, "ksplit=4"), "%s / %s",
            d->tuned_shape, d->runner_up);
  clkv_runtime_free(rt);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(tuner, parses_keys_and_rejects_bad_values) {
  clkv__tunables t = {.mv = {{1, 4, 2, 1}, {1, 4, 2, 8}}, .att_wg = 8, .tq = 16, .tk = 32,
                      .gemm = {CLKV__GEMM_OWN}};
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

/* ---- the table of tunables (runtime/tunables_table.h) ---- */
Test(tuner, every_tunable_row_is_consistent) {
  for (int id = 0; id < CLKV__TUN_COUNT; id++) {
    const clkv__tunable *r = &clkv__tunable_table[id];
    cr_assert_eq(clkv__tunable_find(r->key), id, "%s: keys are unique", r->key);
    cr_assert(r->lo >= 1 && r->lo <= r->hi, "%s: range %u to %u", r->key, r->lo, r->hi);
    cr_assert(clkv__tunable_valid(id, r->cpu), "%s: CPU default %u", r->key, r->cpu);
    cr_assert(r->gpu == CLKV__TUN_SUBGROUP || clkv__tunable_valid(id, r->gpu), "%s: GPU default", r->key);
    cr_assert_leq(r->offset + sizeof(unsigned), offsetof(clkv__tunables, gemm), "%s: a launch shape field", r->key);
    for (int j = 0; j < id; j++)
      cr_assert_neq(r->offset, clkv__tunable_table[j].offset, "%s and %s set one field", r->key,
                    clkv__tunable_table[j].key);
    for (unsigned i = 0; i < r->n_search; i++) {
      cr_assert(clkv__tunable_valid(id, r->search[i]), "%s: candidate %u", r->key, r->search[i]);
      for (unsigned j = 0; j < i; j++) cr_assert_neq(r->search[i], r->search[j], "%s: repeated", r->key);
    }
    if (r->n_search || r->wg || r->follows != CLKV__TUN_NONE)
      cr_assert(r->kernel >= 0 && r->kernel < CLKV__TK_GEMM_QKV, "%s: tuned rows name a kernel", r->key);
    if (r->follows != CLKV__TUN_NONE) { /* the value it takes is valid for it */
      const clkv__tunable *f = &clkv__tunable_table[r->follows];
      cr_assert(r->follows >= 0 && r->follows < CLKV__TUN_COUNT && r->follows != id, "%s", r->key);
      cr_assert(f->lo >= r->lo && f->hi <= r->hi && (f->pow2 || !r->pow2), "%s follows %s", r->key, f->key);
      cr_assert_neq(f->kernel, r->kernel, "%s follows a tunable of another kernel", r->key);
    }
    if (r->env) {
      cr_assert(!strncmp(r->env, "CLKV_", 5), "%s: %s", r->key, r->env);
      for (int j = 0; j < id; j++)
        cr_assert(!clkv__tunable_table[j].env || strcmp(r->env, clkv__tunable_table[j].env), "%s", r->env);
    }
  }
  cr_assert_eq(clkv__tunable_find("prefill.gemm.qkv"), CLKV__TUN_NONE, "the prefill paths are names");
  cr_assert_eq(clkv__tunable_find("nope"), CLKV__TUN_NONE);
}

static void write_profile(const char *dir, const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static clkv_device_info device(clkv_device_type type, clkv_vendor v, const char *arch,
                               unsigned subgroup, size_t max_wg) {
  clkv_device_info d;
  memset(&d, 0, sizeof d);
  d.type = type, d.vendor = v, d.subgroup_size = subgroup, d.max_workgroup_size = max_wg;
  snprintf(d.arch, sizeof d.arch, "%s", arch);
  snprintf(d.name, sizeof d.name, "test device");
  return d;
}

/* Today's launch shapes with the prefill paths own; any tunable added since at its lowest
 * valid value, so a new row needs no change here. */
static clkv__tunables shapes(clkv__mv_shape dec, clkv__mv_shape pre, unsigned att_wg, unsigned tq,
                             unsigned tk) {
  clkv__tunables t;
  memset(&t, 0, sizeof t);
  for (int id = 0; id < CLKV__TUN_COUNT; id++) *clkv__tunable_at(&t, id) = clkv__tunable_table[id].lo;
  t.mv[CLKV__PH_DECODE] = dec, t.mv[CLKV__PH_PREFILL] = pre;
  t.att_wg = att_wg, t.tq = tq, t.tk = tk;
  return t;
}

static void expect(const clkv__tunables *t, clkv__mv_shape dec, clkv__mv_shape pre, unsigned att_wg,
                   unsigned tq, unsigned tk, const char *what) {
  const clkv__mv_shape *d = &t->mv[CLKV__PH_DECODE], *p = &t->mv[CLKV__PH_PREFILL];
  cr_assert(!memcmp(d, &dec, sizeof dec) && !memcmp(p, &pre, sizeof pre) && t->att_wg == att_wg &&
                t->tq == tq && t->tk == tk,
            "%s: %u/%u/%u/%u %u/%u/%u/%u %u %u %u", what, d->ksplit, d->rg, d->rows, d->tt,
            p->ksplit, p->rg, p->rows, p->tt, t->att_wg, t->tq, t->tk);
  for (int i = 0; i < CLKV__N_PROJ; i++) cr_assert_eq(t->gemm[i], CLKV__GEMM_OWN, "%s", what);
}

Test(tuner, builtin_defaults_come_from_the_table_and_fit_the_device) {
  unsetenv("CLKV_MV_DOT"); /* the suites' float-dot override (tests/test_util.c): not a default */
  char dir[] = "/tmp/clkv_tunables_XXXXXX";
  cr_assert(mkdtemp(dir));
  write_profile(dir, "default.profile", "[default]\n"); /* profiles that set no tunables */
  write_profile(dir, "pocl.profile", "[vendor PoCL]\n[arch pocl-cpu]\n");
  setenv("CLKV_PLATFORMS_DIR", dir, 1);
  clkv__tunables t;
  clkv_device_info d = device(CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pocl-cpu", 0, 4096);
  clkv__default_tunables(&d, &t);
  expect(&t, (clkv__mv_shape){1, 4, 8, 1, 3, 0}, (clkv__mv_shape){1, 16, 8, 32, 3, 2}, 8, 16, 32, "CPU");
  for (int id = 0; id < CLKV__TUN_COUNT; id++)
    cr_assert_eq(clkv__tunable_get(&t, id), clkv__tunable_table[id].cpu, "%s", clkv__tunable_table[id].key);
  d = device(CLKV_DEVICE_GPU, CLKV_VENDOR_UNKNOWN, "gpu", 16, 1024);
  clkv__default_tunables(&d, &t);
  expect(&t, (clkv__mv_shape){16, 2, 2, 1, 1, 0}, (clkv__mv_shape){16, 2, 2, 4, 1, 1}, 64, 32, 32, "GPU, subgroup 16");
  for (int id = 0; id < CLKV__TUN_COUNT; id++) {
    const clkv__tunable *r = &clkv__tunable_table[id];
    cr_assert_eq(clkv__tunable_get(&t, id), r->gpu == CLKV__TUN_SUBGROUP ? 16 : r->gpu, "%s", r->key);
  }
  d.subgroup_size = 0;
  clkv__default_tunables(&d, &t);
  expect(&t, (clkv__mv_shape){32, 2, 2, 1, 1, 0}, (clkv__mv_shape){32, 2, 2, 4, 1, 1}, 64, 32, 32, "GPU, no subgroup");
  /* a small work-group: rg halved first, then ksplit; att_wg and tq halved; tk is no factor */
  d.max_workgroup_size = 16;
  clkv__default_tunables(&d, &t);
  expect(&t, (clkv__mv_shape){16, 1, 2, 1, 1, 0}, (clkv__mv_shape){16, 1, 2, 4, 1, 1}, 16, 16, 32, "GPU, 16 work-items");
  cr_assert(clkv__tunables_fit(&t, 16));
  unsetenv("CLKV_PLATFORMS_DIR");
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(tuner, work_group_limits_come_from_the_wg_tunables) {
  clkv__tunables t = shapes((clkv__mv_shape){32, 2, 2, 1, 1, 0}, (clkv__mv_shape){32, 2, 2, 4, 1, 1}, 64, 32, 32);
  cr_assert(clkv__tunables_fit(&t, 64));
  cr_assert(!clkv__tunables_fit(&t, 63), "decode ksplit × rg = 64");
  t.mv[0].rows = t.mv[1].tt = t.tk = 4096; /* not work-group factors */
  cr_assert(clkv__tunables_fit(&t, 64));
  t.mv[1].rg = 4;
  cr_assert(!clkv__tunables_fit(&t, 64), "prefill ksplit × rg = 128");
  t.mv[1].rg = 2, t.att_wg = 128;
  cr_assert(!clkv__tunables_fit(&t, 64), "att_wg");
  t.att_wg = 64, t.tq = 128;
  cr_assert(!clkv__tunables_fit(&t, 64), "tq");
  t.tq = 32, t.mv[1].ksplit = 24, t.mv[1].rg = 1;
  cr_assert(!clkv__tunables_fit(&t, 64), "prefill.ksplit is a power of two");
  t.mv[1].ksplit = 32, t.tk = 0;
  cr_assert(!clkv__tunables_fit(&t, 64), "tk is from 1");
}

Test(tuner, environment_overrides_are_checked_against_the_table) {
  clkv_device_info d = device(CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pocl-cpu", 0, 4096);
  clkv__tunables base, t;
  clkv__default_tunables(&d, &base);
  const struct {
    const char *name, *value;
    int id;        /* the tunable set, or CLKV__TUN_NONE: ignored */
    unsigned want;
  } cases[] = {{"CLKV_MV_KSPLIT", "8", CLKV__TUN_DECODE_KSPLIT, 8},
               {"CLKV_MV_KSPLIT", "3", CLKV__TUN_NONE, 0}, /* not a power of two */
               {"CLKV_MV_RG", "16", CLKV__TUN_DECODE_RG, 16},
               {"CLKV_MV_RG", "0", CLKV__TUN_NONE, 0},
               {"CLKV_MV_ROWS", "2", CLKV__TUN_DECODE_ROWS, 2},
               {"CLKV_MV_TT", "32", CLKV__TUN_PREFILL_TT, 32},
               {"CLKV_ATT_WG", "4097", CLKV__TUN_NONE, 0},
               {"CLKV_ATT_WG", "abc", CLKV__TUN_NONE, 0},
               {"CLKV_ATT_WG", "32", CLKV__TUN_ATT_WG, 32}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clkv__tunables want = base;
    if (cases[i].id != CLKV__TUN_NONE) *clkv__tunable_at(&want, cases[i].id) = cases[i].want;
    setenv(cases[i].name, cases[i].value, 1);
    clkv__default_tunables(&d, &t);
    unsetenv(cases[i].name);
    cr_assert(!memcmp(&t, &want, sizeof t), "%s=%s", cases[i].name, cases[i].value);
  }
}

Test(tuner, tuning_file_has_one_line_per_tunable_and_reads_files_of_before_the_table) {
  /* a file as clkv wrote it before the table existed */
  const char *old =
      "# clkv tuning for pthread (driver 3.1, platform PoCL), written 2026-11-23 11:07:00 UTC\n"
      "decode.ksplit=1\ndecode.rg=4\ndecode.rows=4\ndecode.tt=1\nprefill.ksplit=1\nprefill.rg=4\n"
      "prefill.rows=4\nprefill.tt=16\natt_wg=1\ntq=16\ntk=32\nprefill.gemm.qkv=own\n"
      "prefill.gemm.o=own\nprefill.gemm.gu=clblast\nprefill.gemm.down=own\n";
  clkv__tunables t = shapes((clkv__mv_shape){32, 2, 2, 1, 1, 0}, (clkv__mv_shape){32, 2, 2, 4, 1, 1}, 64, 32, 32);
  cr_assert_eq(clkv__tunables_parse(old, &t), 0);
  clkv__tunables want = shapes((clkv__mv_shape){1, 4, 4, 1, 1, 0}, (clkv__mv_shape){1, 4, 4, 16, 1, 1}, 1, 16, 32);
  want.gemm[CLKV__PROJ_GU] = CLKV__GEMM_CLBLAST;
  cr_assert(!memcmp(&t, &want, sizeof t));
  /* what clkv writes: a line per row of the table and per projection, read back the same */
  clkv__tunables w = shapes((clkv__mv_shape){64, 1, 2, 3, 3, 0}, (clkv__mv_shape){8, 2, 4, 8, 2, 2}, 16, 8, 64);
  w.gemm[CLKV__PROJ_QKV] = CLKV__GEMM_CLBLAST16, w.gemm[CLKV__PROJ_DOWN] = CLKV__GEMM_CLBLAST;
  FILE *f = tmpfile();
  cr_assert(f);
  clkv__tunables_print(f, &w);
  static char text[4096];
  rewind(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  int lines = 0;
  for (const char *p = text; (p = strchr(p, '\n')); p++) lines++;
  cr_assert_eq(lines, CLKV__TUN_COUNT + CLKV__N_PROJ, "%s", text);
  for (int id = 0; id < CLKV__TUN_COUNT; id++) {
    char line[64];
    snprintf(line, sizeof line, "%s=%u\n", clkv__tunable_table[id].key, clkv__tunable_get(&w, id));
    cr_assert(strstr(text, line), "%s missing in:\n%s", line, text);
  }
  cr_assert(strstr(text, "\nprefill.gemm.qkv=clblast16\n"), "%s", text);
  cr_assert_eq(clkv__tunables_parse(text, &t), 0, "%s", text);
  cr_assert(!memcmp(&t, &w, sizeof t), "read back differs");
}

/* The decision rule: a candidate wins only when faster beyond both spreads and by at least
 * CLKV__TUNE_MIN_GAIN; the same shape timed twice (equal up to noise) never "gains". */
Test(tuner, candidate_beats_best_only_beyond_the_spread) {
  clkv__timing best = {.median_ms = 1.00, .spread_ms = 0.05, .runs = 5};
  clkv__timing same = {.median_ms = 0.96, .spread_ms = 0.05, .runs = 5};   /* within the noise */
  clkv__timing clear = {.median_ms = 0.80, .spread_ms = 0.05, .runs = 5};  /* beyond it */
  clkv__timing noisy = {.median_ms = 0.80, .spread_ms = 0.20, .runs = 15}; /* too noisy */
  clkv__timing tiny = {.median_ms = 0.99, .spread_ms = 0, .runs = 5};      /* below the floor */
  clkv__timing exact = {.median_ms = 1.00, .spread_ms = 0, .runs = 5};
  clkv__timing failed = {.median_ms = INFINITY, .spread_ms = INFINITY, .runs = 0};
  cr_assert(!clkv__tune_beats(&same, &best));
  cr_assert(clkv__tune_beats(&clear, &best));
  cr_assert(!clkv__tune_beats(&noisy, &best));
  cr_assert(!clkv__tune_beats(&tiny, &exact), "a 1%% gain is below CLKV__TUNE_MIN_GAIN");
  cr_assert(!clkv__tune_beats(&exact, &exact), "a shape never beats itself");
  cr_assert(clkv__tune_beats(&exact, &failed), "anything timed beats a failed default");
  cr_assert(!clkv__tune_beats(&failed, &exact));
  cr_assert(!clkv__tune_beats(&failed, &failed));
  /* the rule is not symmetric in a way that lets two shapes beat each other */
  cr_assert(!(clkv__tune_beats(&clear, &best) && clkv__tune_beats(&best, &clear)));
}

/* Median and spread (1.4826 × MAD): one wild run moves neither much. */
Test(tuner, timing_is_median_and_mad) {
  double t[5] = {1.02, 0.98, 1.00, 9.00, 1.01};
  clkv__timing r = clkv__timing_of(t, 5);
  cr_assert_float_eq(r.median_ms, 1.01, 1e-12);
  /* deviations from 1.01: 0.01 0.03 0.01 7.99 0.00 → sorted 0 .01 .01 .03 7.99 → MAD 0.01 */
  cr_assert_float_eq(r.spread_ms, 1.4826 * 0.01, 1e-9);
  cr_assert_eq(r.runs, 5);
  double u[4] = {2, 4, 1, 3};
  r = clkv__timing_of(u, 4);
  cr_assert_float_eq(r.median_ms, 2.5, 1e-12);
  cr_assert_float_eq(r.spread_ms, 1.4826 * 1.0, 1e-9);
  r = clkv__timing_of(u, 0);
  cr_assert(isinf(r.median_ms));
}

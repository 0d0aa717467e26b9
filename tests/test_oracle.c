/* test_oracle.c — clkv against an independent oracle: tests/peer/oracle.py, a float64 numpy
 * forward pass that reads the GGUF with the `gguf` package and tokenizes with Hugging Face
 * `tokenizers`, sharing no code with clkv. For the real models (SmolLM2 and Gemma 3; their
 * outputs kept in tests/data/oracle_*.json) and tiny random models of every weight type and
 * head layout, clkv's greedy ids must equal the oracle's while the oracle's top-2 margin is
 * safe, and clkv's logits of the oracle's top-5 ids must be within a measured tolerance at
 * every step (the engine fed the oracle's ids). `clkv perplexity` on tests/data/perplexity.txt
 * must match the oracle's perplexity by the same method (tests/data/oracle_perplexity.json). */
#include "engine/engine.h"
#include "test_util.h"
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Tolerances on |clkv logit - oracle logit| over the oracle's top-5 ids of every step, about
 * 2.5 to 3 times the largest error measured (PoCL on CPU, where the F16 KV cache's rounding
 * dominates; on another device, read the errors the test logs before tightening):
 *   SmolLM2-135M Q4_1, 3 prompts x 48 steps, top-1 logits 5..43:    0.0165
 *   Gemma 3 270M Q4_K_M, 3 prompts x 32 steps, top-1 logits ~16..30: 0.0134
 *   tiny models, F16 KV, top-1 logits up to ~39 (tied) or ~2.4:     0.00142
 *   tiny models, Q8 KV cache (K and V lose precision by design):    0.0265
 *   tiny models, Q4 KV cache:                                        0.241
 * For scale: with the RoPE base read as 10000 the first step's logits are off by 0.15 on the
 * real model and 0.01-0.08 on the tiny ones; with a sliding window one position too wide, by
 * 0.04-0.07. Both fail here.
 * Perplexity (-c 64, 4 chunks, 124 tokens scored, F16 KV): the tolerance is on
 * |log(clkv ppl / oracle ppl)|, the mean NLL's error, after every chunk. Measured: SmolLM2
 * 0.00029, Gemma 0.00010; the tolerance is 7 times the larger. A Q8 KV cache, a loss of
 * precision by design, moves it by 0.0026-0.0061, so an error of that size already fails. */
#define TOL_REAL 0.04
#define TOL_GEMMA 0.04
#define TOL_PPL 0.002
#define TOL_TINY 0.004
#define TOL_KV_Q8 0.06
#define TOL_KV_Q4 0.5

#define MAX_STEPS 64
#define MAX_PROMPT 256

static clkv_error err;

static void setup(void) { tu_init("oracle"); }
static void teardown(void) { tu_fini(); }

TestSuite(oracle, .init = setup, .fini = teardown, .timeout = 900);

/* ---- one oracle case, read from its JSON (see the docstring of oracle.py) ---- */
typedef struct oracle_case {
  char model[512], sha256[65];
  char text[2048];
  int has_text;
  int32_t prompt[MAX_PROMPT];
  int n_prompt;
  int32_t ids[MAX_STEPS];                     /* greedy ids, one per step */
  int n_ids;
  int32_t top_id[MAX_STEPS][5];               /* per step, best first */
  double top_logit[MAX_STEPS][5];
  int n_top;
  double margin[MAX_STEPS];                   /* top-1 minus top-2 logit */
  int n_margin;
  double seconds;
} oracle_case;

/* A reader for the JSON the oracle writes: objects, arrays, strings, numbers, null. */
typedef struct jr {
  const char *p;
} jr;

static void jws(jr *r) {
  while (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t') r->p++;
}
static int jpeek(jr *r, char c) {
  jws(r);
  return *r->p == c;
}
static void jexpect(jr *r, char c) {
  jws(r);
  cr_assert_eq(*r->p, c, "oracle JSON: '%c' expected at \"%.24s\"", c, r->p);
  r->p++;
}
static int jmore(jr *r) { /* after an element: 1 if a comma announces another */
  if (!jpeek(r, ',')) return 0;
  r->p++;
  return 1;
}
static int jnull(jr *r) {
  jws(r);
  if (strncmp(r->p, "null", 4)) return 0;
  r->p += 4;
  return 1;
}
static double jnum(jr *r) {
  jws(r);
  char *end;
  double v = strtod(r->p, &end);
  cr_assert(end != r->p, "oracle JSON: number expected at \"%.24s\"", r->p);
  r->p = end;
  return v;
}
static int32_t jint(jr *r) {
  double v = jnum(r);
  cr_assert(v == floor(v) && fabs(v) < 2147483647.0, "oracle JSON: %g is not an id", v);
  return (int32_t)v;
}

/* A string into out (UTF-8, NUL-terminated; out may be NULL to skip it). */
static void jstr(jr *r, char *out, size_t cap) {
  jexpect(r, '"');
  size_t n = 0;
  for (;;) {
    unsigned c = (unsigned char)*r->p++;
    cr_assert(c != 0, "oracle JSON: unterminated string");
    if (c == '"') break;
    char buf[4];
    size_t len = 1;
    buf[0] = (char)c;
    if (c == '\\') {
      c = (unsigned char)*r->p++;
      /* pairs of escape letter and the character it stands for */
      static const char pairs[] = "\"\"\\\\//b\bf\fn\nr\tu_rt\t";
      const char *esc = c ? strchr(pairs, (int)c) : NULL;
      if (c == 'u') {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
          int ch = *r->p++, d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
          cr_assert(d >= 0 && d < 16, "oracle JSON: bad \\u escape");
          cp = cp << 4 | (unsigned)d;
        }
        cr_assert(cp < 0xD800 || cp > 0xDFFF, "oracle JSON: surrogate escapes are not expected");
        if (cp < 0x80) buf[0] = (char)cp;
        else if (cp < 0x800) buf[0] = (char)(0xC0 | cp >> 6), buf[1] = (char)(0x80 | (cp & 0x3F)), len = 2;
        else buf[0] = (char)(0xE0 | cp >> 12), buf[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
             buf[2] = (char)(0x80 | (cp & 0x3F)), len = 3;
      } else {
        cr_assert(esc && (esc - pairs) % 2 == 0,
                  "oracle JSON: bad escape \\%c", c);
        buf[0] = esc[1];
      }
    }
    if (out) {
      cr_assert(n + len < cap, "oracle JSON: string longer than %zu bytes", cap);
      memcpy(out + n, buf, len);
    }
    n += len;
  }
  if (out) out[n] = 0;
}

static void jskip(jr *r) {
  if (jpeek(r, '"')) {
    jstr(r, NULL, 0);
  } else if (jpeek(r, '{')) {
    r->p++;
    if (!jpeek(r, '}')) do {
        jstr(r, NULL, 0);
        jexpect(r, ':');
        jskip(r);
      } while (jmore(r));
    jexpect(r, '}');
  } else if (jpeek(r, '[')) {
    r->p++;
    if (!jpeek(r, ']')) do jskip(r); while (jmore(r));
    jexpect(r, ']');
  } else if (!jnull(r)) {
    if (!strncmp(r->p, "true", 4) || !strncmp(r->p, "false", 5)) r->p += r->p[0] == 't' ? 4 : 5;
    else jnum(r);
  }
}

/* [int, ...] into out; returns the count. */
static int jints(jr *r, int32_t *out, int cap) {
  int n = 0;
  jexpect(r, '[');
  if (!jpeek(r, ']')) do {
      cr_assert(n < cap, "oracle JSON: more than %d ids", cap);
      out[n++] = jint(r);
    } while (jmore(r));
  jexpect(r, ']');
  return n;
}

static void read_case(jr *r, oracle_case *c) {
  char key[64];
  memset(c, 0, sizeof *c);
  jexpect(r, '{');
  if (!jpeek(r, '}')) do {
      jstr(r, key, sizeof key);
      jexpect(r, ':');
      if (!strcmp(key, "model")) jstr(r, c->model, sizeof c->model);
      else if (!strcmp(key, "sha256")) jstr(r, c->sha256, sizeof c->sha256);
      else if (!strcmp(key, "text")) c->has_text = jnull(r) ? 0 : (jstr(r, c->text, sizeof c->text), 1);
      else if (!strcmp(key, "prompt_ids")) c->n_prompt = jints(r, c->prompt, MAX_PROMPT);
      else if (!strcmp(key, "ids")) c->n_ids = jints(r, c->ids, MAX_STEPS);
      else if (!strcmp(key, "seconds")) c->seconds = jnum(r);
      else if (!strcmp(key, "margin")) {
        jexpect(r, '[');
        if (!jpeek(r, ']')) do {
            cr_assert(c->n_margin < MAX_STEPS);
            c->margin[c->n_margin++] = jnum(r);
          } while (jmore(r));
        jexpect(r, ']');
      } else if (!strcmp(key, "top5")) {
        jexpect(r, '[');
        if (!jpeek(r, ']')) do {
            cr_assert(c->n_top < MAX_STEPS);
            jexpect(r, '[');
            for (int k = 0; k < 5; k++) {
              if (k) jexpect(r, ',');
              jexpect(r, '[');
              c->top_id[c->n_top][k] = jint(r);
              jexpect(r, ',');
              c->top_logit[c->n_top][k] = jnum(r);
              jexpect(r, ']');
            }
            jexpect(r, ']');
            c->n_top++;
          } while (jmore(r));
        jexpect(r, ']');
      } else {
        jskip(r);
      }
    } while (jmore(r));
  jexpect(r, '}');
  cr_assert(c->n_prompt > 0 && c->n_ids > 0 && c->n_top == c->n_ids && c->n_margin == c->n_ids,
            "oracle case %s: %d prompt ids, %d ids, %d top-5 lists, %d margins", c->model,
            c->n_prompt, c->n_ids, c->n_top, c->n_margin);
}

/* Parses an oracle document; returns a calloc'd array of its cases (caller frees). */
static oracle_case *read_cases(const char *json, int *n) {
  jr r = {json};
  oracle_case *cases = NULL;
  char key[64];
  *n = 0;
  jexpect(&r, '{');
  do {
    jstr(&r, key, sizeof key);
    jexpect(&r, ':');
    if (strcmp(key, "cases")) {
      jskip(&r);
      continue;
    }
    jexpect(&r, '[');
    if (!jpeek(&r, ']')) do {
        cases = realloc(cases, (size_t)(*n + 1) * sizeof *cases);
        cr_assert_not_null(cases);
        read_case(&r, &cases[(*n)++]);
      } while (jmore(&r));
    jexpect(&r, ']');
  } while (jmore(&r));
  jexpect(&r, '}');
  cr_assert_gt(*n, 0, "the oracle wrote no case");
  return cases;
}

/* ---- running the oracle ---- */
static const char *python(void) {
  const char *py = getenv("CLKV_PYTHON");
  return py && *py ? py : NULL;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot read %s", path);
  cr_assert_eq(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  cr_assert_geq(size, 0);
  rewind(f);
  char *buf = malloc((size_t)size + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
  buf[size] = 0;
  fclose(f);
  return buf;
}

/* Runs oracle.py with args (already quoted) and returns the JSON it writes (malloc'd): to a
 * file (--out), not a pipe, so that nothing else it prints can mix in. The peer failing is a
 * test failure: its stderr is in the test's output. */
static char *run_oracle(const char *args) {
  static int count;
  char out[320], cmd[8192];
  snprintf(out, sizeof out, "%s/oracle-%d.json", tu_tmpdir, count++);
  int len = snprintf(cmd, sizeof cmd, "'%s' '%s/tests/peer/oracle.py' %s --out '%s'", python(),
                     CLKV_SOURCE_DIR, args, out);
  cr_assert(len > 0 && (size_t)len < sizeof cmd, "oracle command too long");
  int st = system(cmd);
  cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "the oracle failed (status %d): %s", st, cmd);
  char *json = read_file(out);
  unlink(out);
  return json;
}

/* ---- clkv against one case ---- */
typedef struct idlist {
  int32_t ids[MAX_STEPS];
  int n;
} idlist;

static int on_id(void *u, int32_t id, const char *text, size_t len) {
  (void)text;
  (void)len;
  idlist *l = u;
  if (id >= 0 && l->n < MAX_STEPS) l->ids[l->n++] = id;
  return 0;
}

static int argmax(const float *a, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (a[i] > a[b]) b = i;
  return b;
}

/* The steps whose greedy id is certain: with every logit within tol of the oracle's, clkv's
 * top-1 minus top-2 is at least the oracle's margin - 2 tol, so the ids must agree while
 * margin >= 2 tol. Returns the first step where that fails (n_ids if none). */
static int certain_steps(const oracle_case *c, double tol) {
  int s = 0;
  while (s < c->n_ids && c->margin[s] >= 2 * tol) s++;
  return s;
}

/* Greedy through the public API: the ids must equal the oracle's over the certain steps;
 * an early end-of-generation stop must be where the oracle's id is one. */
static void check_greedy(clkv_context *ctx, const oracle_case *c, double tol, const char *what) {
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = c->n_ids;
  idlist got = {.n = 0};
  clkv_gen_stats st;
  cr_assert_eq(clkv_generate_ids(ctx, c->prompt, c->n_prompt, &gp, on_id, &got, &st), CLKV_OK,
               "%s: %s", what, clkv_last_error(ctx));
  const int sure = certain_steps(c, tol);
  for (int s = 0; s < sure; s++) {
    if (s == got.n) { /* stopped: the oracle's id here must end generation */
      cr_assert(st.stop_reason == 1 && clkv__tokenizer_is_eog(ctx->m->tok, c->ids[s]),
                "%s: clkv stopped after %d ids (reason %d), the oracle goes on with %d", what,
                got.n, st.stop_reason, c->ids[s]);
      break;
    }
    cr_assert_eq(got.ids[s], c->ids[s], "%s: greedy id %d is %d, the oracle's %d (margin %.4f)",
                 what, s, got.ids[s], c->ids[s], c->margin[s]);
  }
  if (got.n < sure)
    cr_log_info("%s: the %d greedy ids equal, then both end generation", what, got.n);
  else
    cr_log_info("%s: greedy ids equal over the %d of %d steps before a margin below 2 tol",
                what, sure, c->n_ids);
}

/* Feeds the prompt (prefill in the model's chunks) and then the oracle's ids (one decode
 * each) through the engine; at every step clkv's logits of the oracle's top-5 ids must be
 * within tol, and its argmax the oracle's where the margin makes it certain. Returns the
 * largest logit error. */
static double check_logits(clkv_context *ctx, const oracle_case *c, double tol, const char *what) {
  const int V = ctx->m->info.n_vocab, chunk = ctx->m->params.chunk;
  int seq, cached;
  cr_assert_eq(clkv__seq_start(ctx, c->prompt, c->n_prompt, &seq, &cached), CLKV_OK, "%s: %s",
               what, ctx->err.message);
  cr_assert_eq(cached, 0, "%s: the logits run must compute its whole prompt", what);
  for (int pos = 0; pos < c->n_prompt; pos += chunk) {
    const int len = c->n_prompt - pos < chunk ? c->n_prompt - pos : chunk;
    cr_assert_eq(clkv__forward_prefill(ctx, seq, c->prompt + pos, len, pos + len == c->n_prompt),
                 CLKV_OK, "%s: %s", what, ctx->err.message);
  }
  double worst = 0, top = 0;
  int worst_step = 0;
  for (int s = 0; s < c->n_ids; s++) {
    top = fmax(top, fabs(c->top_logit[s][0]));
    if (s > 0) {
      int32_t tok = c->ids[s - 1];
      cr_assert_eq(clkv__forward_decode(ctx, &seq, &tok, 1), CLKV_OK, "%s: %s", what, ctx->err.message);
    }
    for (int k = 0; k < 5; k++) {
      const int32_t id = c->top_id[s][k];
      cr_assert(id >= 0 && id < V, "%s: oracle id %d outside the vocabulary", what, id);
      const double e = fabs((double)ctx->h_logits[id] - c->top_logit[s][k]);
      cr_assert_leq(e, tol, "%s step %d: logit of id %d is %.5f, the oracle's %.5f (tolerance %g)",
                    what, s, id, (double)ctx->h_logits[id], c->top_logit[s][k], tol);
      if (e > worst) worst = e, worst_step = s;
    }
    if (c->margin[s] >= 2 * tol)
      cr_assert_eq(argmax(ctx->h_logits, V), c->ids[s], "%s step %d: clkv's argmax %d, the oracle's %d",
                   what, s, argmax(ctx->h_logits, V), c->ids[s]);
  }
  clkv__seq_end(ctx, seq);
  cr_log_info("%s: max logit error %.5f (step %d) over %d steps x top-5, top-1 logits up to %.2f",
              what, worst, worst_step, c->n_ids, top);
  return worst;
}

/* A context that computes everything (no prefix cache: both runs start from nothing). */
static clkv_context *fresh_context(clkv_model *m) {
  clkv_context_params cp = clkv_context_default_params();
  cp.prefix_cache = 0;
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, &cp, &ctx, &err), CLKV_OK, "%s", err.message);
  return ctx;
}

static double check_case(clkv_model *m, const oracle_case *c, double tol, const char *what) {
  clkv_context *ctx = fresh_context(m);
  double worst = check_logits(ctx, c, tol, what);
  check_greedy(ctx, c, tol, what);
  clkv_context_free(ctx);
  return worst;
}

/* ---- the real models: outputs kept in tests/data ----
 * oracle.py --write computes them (SmolLM2 15 s, Gemma 1.5 min of CPU: too slow for every CI
 * run) and --check recomputes and compares them; stored_real_model_outputs_are_current
 * checks a few steps of SmolLM2's live. A kept file applies to the model file whose SHA-256
 * it records; for any other model in CLKV_MODEL the oracle runs live. */
static const char *const kept_files[] = {"oracle_smollm2.json", "oracle_gemma3.json"};
#define KEPT_DIR CLKV_SOURCE_DIR "/tests/data/"
#define PPL_TEXT KEPT_DIR "perplexity.txt"
#define PPL_KEPT KEPT_DIR "oracle_perplexity.json"

static void file_sha256(const char *path, char hex[65]) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot read %s", path);
  clkv__sha256 s;
  clkv__sha256_init(&s);
  static unsigned char buf[1 << 16];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) clkv__sha256_update(&s, buf, n);
  fclose(f);
  unsigned char d[32];
  clkv__sha256_final(&s, d);
  clkv__sha256_hex(d, hex);
}

/* The kept cases computed from this very file (same SHA-256), else NULL. */
static oracle_case *kept_cases(const char *path, int *n) {
  char sha[65];
  file_sha256(path, sha);
  for (size_t i = 0; i < sizeof kept_files / sizeof kept_files[0]; i++) {
    char file[600];
    snprintf(file, sizeof file, KEPT_DIR "%s", kept_files[i]);
    char *json = read_file(file);
    oracle_case *c = read_cases(json, n);
    free(json);
    if (!strcmp(c[0].sha256, sha)) return c;
    free(c);
  }
  return NULL;
}

/* Whether the test must run: a model that was asked for (env set) and cannot be read fails. */
static const char *configured_real_model(void) {
  const char *path = tu_real_model(), *env = getenv("CLKV_MODEL");
  cr_assert(path || !env || !*env, "CLKV_MODEL=%s cannot be read", env);
  return path;
}

/* The kept cases, or for another model the prompts of the SmolLM2 file computed live by
 * the oracle (*live = 1). A model with neither fails: it was found, so it is to be tested. */
static oracle_case *real_cases(const char *path, int *n, int *live) {
  oracle_case *c = kept_cases(path, n);
  *live = c == NULL;
  if (c) return c;
  cr_assert(python(), "%s has no kept oracle outputs in tests/data (oracle.py --write) and "
            "CLKV_PYTHON is not set to compute them live", path);
  char *json = read_file(KEPT_DIR "oracle_smollm2.json");
  oracle_case *prompts = read_cases(json, n);
  free(json);
  char args[4096];
  int len = snprintf(args, sizeof args, "--steps %d", prompts[0].n_ids);
  for (int i = 0; i < *n; i++) {
    char file[320];
    snprintf(file, sizeof file, "%s/prompt-%d.txt", tu_tmpdir, i);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs(prompts[i].text, f);
    fclose(f);
    len += snprintf(args + len, sizeof args - (size_t)len, " --prompt-file '%s'", file);
  }
  snprintf(args + len, sizeof args - (size_t)len, " '%s'", path);
  free(prompts);
  json = run_oracle(args);
  c = read_cases(json, n);
  free(json);
  return c;
}

/* Every case of the model: clkv's tokens of the prompt text equal the oracle tokenizer's,
 * then check_case. */
static void check_real(const char *path, double tol, const char *name) {
  int n, live;
  oracle_case *cases = real_cases(path, &n, &live);
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 256;
  mp.chunk = 16; /* the longer prompts take two chunks */
  clkv_model *m;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  double worst = 0;
  for (int i = 0; i < n; i++) {
    const oracle_case *c = &cases[i];
    cr_assert(c->has_text, "%s case %d has no prompt text", name, i);
    int32_t ids[MAX_PROMPT];
    int k = clkv_tokenize(m, c->text, 1, ids, MAX_PROMPT);
    cr_assert_eq(k, c->n_prompt, "%s prompt %d: clkv makes %d ids, the oracle's tokenizer %d",
                 name, i, k, c->n_prompt);
    for (int j = 0; j < k; j++)
      cr_assert_eq(ids[j], c->prompt[j], "%s prompt %d id %d: %d vs the oracle's %d", name, i, j,
                   ids[j], c->prompt[j]);
    char what[96];
    snprintf(what, sizeof what, "%s prompt %d%s", name, i, live ? " (live oracle)" : "");
    worst = fmax(worst, check_case(m, c, tol, what));
  }
  cr_log_info("%s: max logit error %.5f, tolerance %g", name, worst, tol);
  clkv_model_free(m);
  free(cases);
}

Test(oracle, real_model_matches_oracle) {
  const char *path = configured_real_model();
  if (!path) cr_skip_test("model not found (run scripts/setup or set CLKV_MODEL)");
  check_real(path, TOL_REAL, "real model");
}

Test(oracle, gemma3_matches_oracle) {
  const char *path = tu_gemma_model();
  if (!path) cr_skip_test("Gemma 3 270M not found (run scripts/setup or set CLKV_GEMMA)");
  check_real(path, TOL_GEMMA, "gemma3");
}

/* The kept file is what oracle.py computes today: SmolLM2's first case, a few steps, live
 * (Gemma's take minutes: oracle.py --check, outside CI). */
Test(oracle, stored_real_model_outputs_are_current) {
  const char *path = configured_real_model();
  if (!path) cr_skip_test("model not found (run scripts/setup or set CLKV_MODEL)");
  int n;
  oracle_case *stored = kept_cases(path, &n);
  if (!stored) cr_skip_test("%s has no kept outputs (real_model_matches_oracle runs the "
                            "oracle live)", path);
  cr_assert(python(), "CLKV_PYTHON is not set (scripts/test sets it)");
  const oracle_case *s = &stored[0];
  char text_file[320], args[1200];
  snprintf(text_file, sizeof text_file, "%s/prompt.txt", tu_tmpdir);
  FILE *f = fopen(text_file, "w");
  cr_assert_not_null(f);
  fputs(s->text, f);
  fclose(f);
  snprintf(args, sizeof args, "--steps 4 --prompt-file '%s' '%s'", text_file, path);
  char *json = run_oracle(args);
  int m;
  oracle_case *now = read_cases(json, &m);
  free(json);
  cr_assert_eq(m, 1);
  cr_assert_eq(now->n_prompt, s->n_prompt);
  cr_assert_eq(memcmp(now->prompt, s->prompt, sizeof(int32_t) * (size_t)s->n_prompt), 0);
  for (int t = 0; t < now->n_ids; t++)
    for (int k = 0; k < 5; k++) {
      cr_assert_eq(now->top_id[t][k], s->top_id[t][k], "step %d rank %d", t, k);
      /* float64 on both sides: only the BLAS's summation order may differ */
      cr_assert_leq(fabs(now->top_logit[t][k] - s->top_logit[t][k]), 1e-6,
                    "step %d rank %d: %.12f now, %.12f stored (regenerate with oracle.py --write)",
                    t, k, now->top_logit[t][k], s->top_logit[t][k]);
    }
  cr_log_info("oracle: %.2f s for 4 steps of the real model", now->seconds);
  free(now);
  free(stored);
}

/* ---- perplexity: clkv perplexity against the oracle's (the kept values, or live) ---- */
#define PPL_CTX 64   /* as oracle.py's PPL_CTX, PPL_CHUNKS */
#define PPL_CHUNKS 4 /* 124 scored tokens */

typedef struct ppl_result {
  char sha256[65], text_sha256[65];
  int n_ctx, chunks, tokens, scored;
  double ppl, running[64];
  int n_running;
} ppl_result;

/* One object of the oracle's "perplexity" list, or clkv perplexity --json's output (its
 * "chunks" list is the running perplexity; the oracle's "chunks" is their count). */
static void read_ppl(jr *r, ppl_result *p) {
  char key[64];
  memset(p, 0, sizeof *p);
  jexpect(r, '{');
  do {
    jstr(r, key, sizeof key);
    jexpect(r, ':');
    if (!strcmp(key, "sha256")) jstr(r, p->sha256, sizeof p->sha256);
    else if (!strcmp(key, "text_sha256")) jstr(r, p->text_sha256, sizeof p->text_sha256);
    else if (!strcmp(key, "n_ctx")) p->n_ctx = jint(r);
    else if (!strcmp(key, "tokens")) p->tokens = jint(r);
    else if (!strcmp(key, "scored")) p->scored = jint(r);
    else if (!strcmp(key, "ppl")) p->ppl = jnum(r);
    else if (!strcmp(key, "running") || (!strcmp(key, "chunks") && jpeek(r, '['))) {
      jexpect(r, '[');
      if (!jpeek(r, ']')) do {
          cr_assert_lt(p->n_running, 64);
          p->running[p->n_running++] = jnum(r);
        } while (jmore(r));
      jexpect(r, ']');
    } else if (!strcmp(key, "chunks")) p->chunks = jint(r);
    else jskip(r);
  } while (jmore(r));
  jexpect(r, '}');
}

/* The oracle's entries of a {"perplexity": [...]} document; returns the count. */
static int read_ppl_doc(const char *json, ppl_result *out, int cap) {
  jr r = {json};
  char key[64];
  int n = 0;
  jexpect(&r, '{');
  do {
    jstr(&r, key, sizeof key);
    jexpect(&r, ':');
    if (strcmp(key, "perplexity")) {
      jskip(&r);
      continue;
    }
    jexpect(&r, '[');
    if (!jpeek(&r, ']')) do {
        cr_assert_lt(n, cap);
        read_ppl(&r, &out[n++]);
      } while (jmore(&r));
    jexpect(&r, ']');
  } while (jmore(&r));
  return n;
}

/* The oracle's perplexity of the model on tests/data/perplexity.txt: the kept value when it
 * was computed from this model file and this text, else live (*live = 1). */
static ppl_result oracle_perplexity(const char *path, int *live) {
  char sha[65], text_sha[65];
  file_sha256(path, sha);
  file_sha256(PPL_TEXT, text_sha);
  ppl_result kept[8];
  char *json = read_file(PPL_KEPT);
  const int n = read_ppl_doc(json, kept, 8);
  free(json);
  *live = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(kept[i].sha256, sha)) continue;
    cr_assert_str_eq(kept[i].text_sha256, text_sha, "%s was computed from another %s: rerun "
                     "oracle.py --write", PPL_KEPT, PPL_TEXT);
    cr_assert(kept[i].n_ctx == PPL_CTX && kept[i].chunks == PPL_CHUNKS,
              "%s: -c %d, %d chunks kept, the test runs -c %d, %d chunks", PPL_KEPT,
              kept[i].n_ctx, kept[i].chunks, PPL_CTX, PPL_CHUNKS);
    return kept[i];
  }
  cr_assert(python(), "%s has no kept perplexity in %s and CLKV_PYTHON is not set to compute "
            "it live", path, PPL_KEPT);
  char args[1200];
  snprintf(args, sizeof args, "--perplexity '%s' -c %d --chunks %d '%s'", PPL_TEXT, PPL_CTX,
           PPL_CHUNKS, path);
  json = run_oracle(args);
  ppl_result now;
  cr_assert_eq(read_ppl_doc(json, &now, 1), 1);
  free(json);
  *live = 1;
  return now;
}

/* clkv perplexity --json (F16 KV, the default) on the same text, -c and chunks: the same
 * token count, and every running perplexity within TOL_PPL of the oracle's in log space. */
static void check_perplexity(const char *path, const char *name) {
  int live;
  const ppl_result want = oracle_perplexity(path, &live);
  static char out[1 << 16];
  char args[1200];
  snprintf(args, sizeof args, "perplexity -m '%s' -f '%s' -c %d --chunks %d --json", path,
           PPL_TEXT, PPL_CTX, PPL_CHUNKS);
  cr_assert_eq(tu_run_cli(args, out, sizeof out), 0, "clkv %s: %s", args, out);
  const char *o = strchr(out, '{');
  cr_assert_not_null(o, "clkv perplexity printed no JSON: %s", out);
  jr r = {o};
  ppl_result got;
  read_ppl(&r, &got);
  cr_assert_eq(got.tokens, want.tokens, "%s: clkv makes %d tokens of the text, the oracle's "
               "tokenizer %d", name, got.tokens, want.tokens);
  cr_assert_eq(got.scored, want.scored, "%s: %d tokens scored, the oracle %d", name, got.scored,
               want.scored);
  cr_assert_eq(got.n_running, want.n_running, "%s: %d chunks, the oracle %d", name,
               got.n_running, want.n_running);
  double worst = 0;
  for (int i = 0; i < got.n_running; i++) {
    const double e = fabs(log(got.running[i] / want.running[i]));
    worst = fmax(worst, e);
    cr_assert_leq(e, TOL_PPL, "%s: perplexity after chunk %d is %.5f, the oracle's %.5f "
                  "(|log ratio| %.5f, tolerance %g)", name, i + 1, got.running[i],
                  want.running[i], e, TOL_PPL);
  }
  cr_assert_leq(fabs(log(got.ppl / want.ppl)), TOL_PPL);
  cr_log_info("%s: perplexity (-c %d, %d chunks, %d scored) clkv %.5f, oracle%s %.5f; largest "
              "|log ratio| over the chunks %.5f, tolerance %g", name, PPL_CTX, PPL_CHUNKS,
              got.scored, got.ppl, live ? " (live)" : "", want.ppl, worst, TOL_PPL);
}

Test(oracle, real_model_perplexity_matches_oracle) {
  const char *path = configured_real_model();
  if (!path) cr_skip_test("model not found (run scripts/setup or set CLKV_MODEL)");
  check_perplexity(path, "real model");
}

Test(oracle, gemma3_perplexity_matches_oracle) {
  const char *path = tu_gemma_model();
  if (!path) cr_skip_test("Gemma 3 270M not found (run scripts/setup or set CLKV_GEMMA)");
  check_perplexity(path, "gemma3");
}

/* ---- tiny random models, computed live ---- */
typedef struct tiny_case {
  uint32_t wtype;
  int n_heads, n_kv, tied, window; /* the model */
  int kv_block, chunk;             /* how clkv runs it */
} tiny_case;

#define TINY_PROMPT 45 /* crosses KV blocks and prefill chunks */
#define TINY_STEPS 20

/* Writes the tiny models, runs the oracle once over all of them and checks clkv on each
 * with a kv_type cache and prefill path gemm. */
static void check_tiny(const tiny_case *tc, int n, clkv_kv_type kv_type, int gemm, double tol) {
  if (!python()) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  const ref_tiny_params def = ref_tiny_default();
  int32_t prompt[TINY_PROMPT];
  char args[8192];
  int len = snprintf(args, sizeof args, "--steps %d --ids ", TINY_STEPS);
  for (int i = 0; i < TINY_PROMPT; i++) {
    prompt[i] = (int32_t)((i * 37 + 11) % (def.n_vocab - 2)); /* no repeats */
    len += snprintf(args + len, sizeof args - (size_t)len, "%s%d", i ? "," : "", prompt[i]);
  }
  char path[16][400];
  cr_assert_leq(n, 16);
  for (int i = 0; i < n; i++) {
    ref_tiny_params tp = def;
    tp.wtype = tc[i].wtype;
    tp.n_heads = tc[i].n_heads;
    tp.n_kv_heads = tc[i].n_kv;
    tp.tied = tc[i].tied;
    tp.sliding_window = tc[i].window;
    tp.seed = 77 + (uint64_t)i * 1009 + tc[i].wtype;
    tp.rope_base = i % 2 ? 10000.0f : 500000.0f; /* a RoPE base read wrongly shows */
    tp.rms_eps = i / 2 % 2 ? 1e-5f : 0.05f;       /* so does an eps (hidden states ~0.3) */
    snprintf(path[i], sizeof path[i], "%s/tiny-%d.gguf", tu_tmpdir, i);
    cr_assert_eq(ref_tiny_write(&tp, path[i], &err), CLKV_OK, "%s", err.message);
    len += snprintf(args + len, sizeof args - (size_t)len, " '%s'", path[i]);
    cr_assert_lt((size_t)len, sizeof args);
  }
  char *json = run_oracle(args);
  int nc;
  oracle_case *cases = read_cases(json, &nc);
  free(json);
  cr_assert_eq(nc, n);
  double worst = 0;
  for (int i = 0; i < n; i++) {
    const oracle_case *c = &cases[i];
    cr_assert_eq(c->n_prompt, TINY_PROMPT);
    cr_assert_eq(memcmp(c->prompt, prompt, sizeof prompt), 0, "the oracle ran another prompt");
    clkv_model_params mp = clkv_model_default_params();
    mp.kv_block = tc[i].kv_block;
    mp.chunk = tc[i].chunk;
    mp.n_ctx = 128;
    mp.kv_type = kv_type;
    clkv_model *m;
    cr_assert_eq(clkv_model_load(tu_rt, path[i], &mp, &m, &err), CLKV_OK, "%s", err.message);
    for (int p = 0; p < CLKV__N_PROJ; p++) m->gemm[p] = gemm;
    char what[160];
    snprintf(what, sizeof what, "tiny %s heads %d/%d %s window %d (block %d chunk %d kv %s gemm %s)",
             clkv__ggml_type_get(tc[i].wtype)->name, tc[i].n_heads, tc[i].n_kv,
             tc[i].tied ? "tied" : "untied", tc[i].window, tc[i].kv_block, tc[i].chunk,
             clkv_kv_type_name(kv_type), clkv__gemm_mode_name(gemm));
    worst = fmax(worst, check_case(m, c, tol, what));
    cr_log_info("%s: the oracle took %.2f s", what, c->seconds);
    clkv_model_free(m);
  }
  cr_log_info("tiny models: max logit error %.5f, tolerance %g", worst, tol);
  free(cases);
}

static const uint32_t wtypes[] = {GGML_T_F32, GGML_T_F16, GGML_T_BF16, GGML_T_Q8_0, GGML_T_Q4_0,
                                  GGML_T_Q4_1};

Test(oracle, tiny_every_weight_type_matches_oracle) {
  tiny_case tc[12];
  for (int i = 0; i < 6; i++) {
    tc[2 * i] = (tiny_case){wtypes[i], 4, 2, 1, 0, 16, 16};     /* GQA, tied, 3 chunks */
    tc[2 * i + 1] = (tiny_case){wtypes[i], 4, 4, 0, 0, 16, 32}; /* multi-head, untied */
  }
  check_tiny(tc, 12, CLKV_KV_F16, CLKV__GEMM_OWN, TOL_TINY);
}

Test(oracle, tiny_multi_query_and_sliding_window_match_oracle) {
  const tiny_case tc[] = {
      {GGML_T_Q8_0, 4, 1, 0, 0, 8, 128}, /* multi-query, one chunk */
      {GGML_T_Q4_1, 4, 2, 1, 20, 8, 16}, /* each position sees its last 20 */
      {GGML_T_Q8_0, 4, 4, 0, 13, 16, 7},
  };
  check_tiny(tc, 3, CLKV_KV_F16, CLKV__GEMM_OWN, TOL_TINY);
}

Test(oracle, tiny_prefill_through_clblast_matches_oracle) {
  char why[256];
  if (!clkv__gemm_available(tu_rt, CLKV__GEMM_CLBLAST, why, sizeof why)) cr_skip_test("%s", why);
  tiny_case tc[6];
  for (int i = 0; i < 6; i++) tc[i] = (tiny_case){wtypes[i], 4, 2, 1, i == 5 ? 20 : 0, 16, 16};
  check_tiny(tc, 6, CLKV_KV_F16, CLKV__GEMM_CLBLAST, TOL_TINY);
}

/* Q8 and Q4 KV caches lose precision by design (the oracle keeps K and V exact): the same
 * checks with the wider tolerances measured for them. */
Test(oracle, tiny_quantized_kv_matches_oracle) {
  const tiny_case tc[] = {
      {GGML_T_Q4_1, 4, 2, 1, 0, 8, 16},
      {GGML_T_Q8_0, 4, 4, 0, 13, 16, 7},
      {GGML_T_F16, 4, 1, 1, 0, 32, 45},
  };
  check_tiny(tc, 3, CLKV_KV_Q8, CLKV__GEMM_OWN, TOL_KV_Q8);
  check_tiny(tc, 3, CLKV_KV_Q4, CLKV__GEMM_OWN, TOL_KV_Q4);
}


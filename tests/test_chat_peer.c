/* test_chat_peer.c — clkv_chat_format against the real Jinja templates: tiny models carry each
 * family's template (tests/data/chat_templates/), the default model its own, and
 * tests/peer/chat_peer.py renders the same conversations with jinja2. clkv leaves a BOS at
 * the very start to the tokenizer, so one leading BOS of the template's output is dropped. */
#include "ref/ref.h"
#include "format/gguf.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void) { tu_init("chat_peer"); }
static void teardown(void) { tu_fini(); }
TestSuite(chat_peer, .init = setup, .fini = teardown, .timeout = 300);

typedef struct conv {
  const char *name;
  clkv_chat_message m[4];
  size_t n;
  int has_system;
} conv;

static const conv convs[] = {
    {"system, user, assistant, user", {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}}, 4, 1},
    {"user", {{"user", "What is 2+2?"}}, 1, 0},
    {"user, assistant, user", {{"user", "Hi"}, {"assistant", "Hello! How can I help?"}, {"user", "Name a colour."}}, 3, 0},
    {"system, user (two lines)", {{"system", "Be brief."}, {"user", "Line one.\nLine two."}}, 2, 1},
};
#define N_CONV (sizeof convs / sizeof convs[0])

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  cr_assert_not_null(s);
  cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  s[n] = 0;
  if (len) *len = (size_t)n;
  return s;
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* One case of the peer's input: the template (or the model file), a conversation, prefix. */
static void json_case(FILE *f, const char *tmpl, const char *gguf, const conv *c, int prefix) {
  fputs("{", f);
  if (gguf) fputs("\"gguf\": ", f), json_str(f, gguf);
  else fputs("\"template\": ", f), json_str(f, tmpl);
  fprintf(f, ", \"bos\": \"<|bos|>\", \"eos\": \"<|eos|>\", \"add_generation_prompt\": %s, \"messages\": [",
          prefix ? "true" : "false");
  for (size_t i = 0; i < c->n; i++) {
    fputs(i ? ", {\"role\": " : "{\"role\": ", f);
    json_str(f, c->m[i].role);
    fputs(", \"content\": ", f);
    json_str(f, c->m[i].content);
    fputs("}", f);
  }
  fputs("]}", f);
}

typedef struct chat_case {
  char what[160];
  char *mine; /* clkv_chat_format's text */
  const char *bos;
} chat_case;

/* Runs the peer over n cases written to dir/cases.json; compares each rendering. Returns
 * how many the template refused (it raised); those must be ones with a system message
 * (refused[i] says which). */
static int compare(const char *dir, chat_case *cs, int n, int *refused) {
  char cmd[1200], path[512];
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/peer/chat_peer.py' '%s/cases.json' '%s'",
           getenv("CLKV_PYTHON"), CLKV_SOURCE_DIR, dir, dir);
  const int rc = system(cmd);
  cr_assert_eq(rc, 0, "the peer failed (status %d): %s", rc, cmd);
  int n_refused = 0;
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%d.err", dir, i);
    char *err = read_file(path, NULL);
    refused[i] = err != NULL;
    if (err) {
      cr_log_info("%s: the template refuses it: %s", cs[i].what, err);
      free(err);
      n_refused++;
      continue;
    }
    snprintf(path, sizeof path, "%s/%d.txt", dir, i);
    size_t len;
    char *want = read_file(path, &len);
    cr_assert_not_null(want, "the peer wrote no %s", path);
    const size_t bl = strlen(cs[i].bos);
    const char *w = strncmp(want, cs[i].bos, bl) ? want : want + bl;
    cr_expect_str_eq(cs[i].mine, w, "%s:\n clkv:  [%s]\n jinja: [%s]", cs[i].what, cs[i].mine, w);
    free(want);
  }
  return n_refused;
}

static clkv_model *load(const char *path) {
  clkv_model *m;
  clkv_error err;
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 64;
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  return m;
}

/* Each family's template in a tiny model: every conversation, with and without the
 * assistant prefix. Mistral v0.1 refuses a system message; every other case renders. */
Test(chat_peer, family_templates_render_as_jinja_does) {
  if (!getenv("CLKV_PYTHON") || !*getenv("CLKV_PYTHON")) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  static const char *families[] = {"chatml", "qwen", "llama2", "llama3", "mistral", "zephyr"};
  enum { NF = sizeof families / sizeof families[0], NC = NF * N_CONV * 2 };
  static chat_case cs[NC];
  int n = 0, refused[NC];
  char path[512];
  snprintf(path, sizeof path, "%s/cases.json", tu_tmpdir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("[", f);
  for (size_t k = 0; k < NF; k++) {
    snprintf(path, sizeof path, "%s/tests/data/chat_templates/%s.jinja", CLKV_SOURCE_DIR, families[k]);
    char *tmpl = read_file(path, NULL);
    cr_assert_not_null(tmpl, "%s", path);
    ref_tiny_params tp = ref_tiny_default();
    tp.chat_template = tmpl;
    snprintf(path, sizeof path, "%s/%s.gguf", tu_tmpdir, families[k]);
    clkv_error err;
    cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
    clkv_model *m = load(path);
    for (size_t c = 0; c < N_CONV; c++)
      for (int prefix = 0; prefix < 2; prefix++, n++) {
        cs[n].mine = clkv_chat_format(m, convs[c].m, convs[c].n, prefix, &err);
        cr_assert_not_null(cs[n].mine, "%s: %s", families[k], err.message);
        cs[n].bos = "<|bos|>";
        snprintf(cs[n].what, sizeof cs[n].what, "%s template, %s, prefix %d", families[k], convs[c].name, prefix);
        fputs(n ? ",\n" : "", f);
        json_case(f, tmpl, NULL, &convs[c], prefix);
      }
    clkv_model_free(m);
    free(tmpl);
  }
  fputs("]\n", f);
  fclose(f);
  const int nr = compare(tu_tmpdir, cs, n, refused);
  for (int i = 0; i < n; i++) {
    const int mistral = strncmp(cs[i].what, "mistral", 7) == 0;
    const int sys = convs[i / 2 % N_CONV].has_system;
    cr_assert_eq(refused[i], mistral && sys, "%s: refused %d", cs[i].what, refused[i]);
    free(cs[i].mine);
  }
  cr_assert_eq(nr, 2 * 2, "mistral refuses its two system conversations, with and without prefix");
}

/* The default model's template: clkv renders it from a tiny model that carries the text
 * read from the default model (loading the model itself would build its kernels); the peer
 * reads template, BOS and EOS from the default model's file itself. */
Test(chat_peer, default_model_template_renders_as_jinja_does) {
  if (!getenv("CLKV_PYTHON") || !*getenv("CLKV_PYTHON")) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  const char *model = getenv("CLKV_MODEL");
  if (!model || access(model, R_OK)) cr_skip_test("default model not found (run scripts/setup or set CLKV_MODEL)");
  static chat_case cs[N_CONV * 2];
  static char tmpl[1 << 16];
  int n = 0, refused[N_CONV * 2];
  char path[512];
  clkv__gguf_file *g;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open(model, &g, &err), CLKV_OK, "%s", err.message);
  cr_assert(clkv__gguf_get_str(g, "tokenizer.chat_template", tmpl, sizeof tmpl), "no chat template");
  clkv__gguf_close(g);
  ref_tiny_params tp = ref_tiny_default();
  tp.chat_template = tmpl;
  snprintf(path, sizeof path, "%s/default.gguf", tu_tmpdir);
  cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
  clkv_model *m = load(path);
  snprintf(path, sizeof path, "%s/cases.json", tu_tmpdir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("[", f);
  for (size_t c = 0; c < N_CONV; c++)
    for (int prefix = 0; prefix < 2; prefix++, n++) {
      cs[n].mine = clkv_chat_format(m, convs[c].m, convs[c].n, prefix, &err);
      cr_assert_not_null(cs[n].mine, "%s", err.message);
      cs[n].bos = ""; /* the template never writes bos_token (SmolLM2's is <|im_start|>) */
      snprintf(cs[n].what, sizeof cs[n].what, "default model, %s, prefix %d", convs[c].name, prefix);
      fputs(n ? ",\n" : "", f);
      json_case(f, NULL, model, &convs[c], prefix);
    }
  clkv_model_free(m);
  fputs("]\n", f);
  fclose(f);
  cr_assert_eq(compare(tu_tmpdir, cs, n, refused), 0);
  for (int i = 0; i < n; i++) free(cs[i].mine);
}

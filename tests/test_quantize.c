/* test_quantize.c — clkv_model_quantize and `clkv quantize`: a tiny F32 model rewritten in
 * several types generates, through clkv, the greedy ids the plain-C reference computes from
 * the written file; the `gguf` Python package reads every tensor of it; metadata is copied
 * with general.file_type set; rows that are not whole blocks go in the fallback type; bad
 * types and paths are refused with what to do. */
#include "format/gguf.h"
#include "ref/ref.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static clkv_error err;
static void setup(void) { tu_init("quantize"); }
static void teardown(void) { tu_fini(); }
TestSuite(quantize, .init = setup, .fini = teardown, .timeout = 300);

/* A tiny F32 model of width dim (ff = dim) at dir/name. */
static void write_f32(int dim, const char *name, char *path, size_t cap) {
  ref_tiny_params p = ref_tiny_default();
  p.dim = p.n_ff = dim;
  p.wtype = p.etype = GGML_T_F32;
  snprintf(path, cap, "%s/%s", tu_tmpdir, name);
  cr_assert_eq(ref_tiny_write(&p, path, &err), CLKV_OK, "%s", err.message);
}

typedef struct notes {
  char text[4096];
  int n;
} notes;
static void collect(void *user, const char *line) {
  notes *n = user;
  size_t len = strlen(n->text);
  snprintf(n->text + len, sizeof n->text - len, "%s\n", line);
  n->n++;
}

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  int32_t *out = user;
  out[1 + out[0]++] = id;
  return 0;
}

/* Greedy ids of clkv on path equal the reference's on the same file. */
static void check_generate(const char *path) {
  const int32_t prompt[6] = {10, 200, 33, 47, 5, 90};
  enum { N = 16 };
  clkv__gguf_file *f;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  ref_model *ref = ref_model_load(f, 64, &err);
  cr_assert(ref, "%s", err.message);
  int32_t want[N], got[1 + N] = {0};
  cr_assert_eq(ref_generate_greedy(ref, prompt, 6, N, -1, want), N);
  clkv_model *m;
  clkv_model_params mp = clkv_model_default_params();
  cr_assert_eq(clkv_model_load(tu_rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  clkv_context *ctx;
  cr_assert_eq(clkv_context_create(m, NULL, &ctx, &err), CLKV_OK, "%s", err.message);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = N;
  cr_assert_eq(clkv_generate_ids(ctx, prompt, 6, &gp, on_token, got, NULL), CLKV_OK, "%s",
               clkv_last_error(ctx));
  cr_assert_eq(got[0], N);
  for (int i = 0; i < N; i++) cr_assert_eq(got[1 + i], want[i], "%s: token %d", path, i);
  clkv_context_free(ctx);
  clkv_model_free(m);
  ref_model_free(ref);
  clkv__gguf_close(f);
}

Test(quantize, written_models_generate_as_the_reference_reads_them) {
  char in[512], out[600];
  write_f32(256, "f32.gguf", in, sizeof in);
  const char *types[] = {"Q4_K", "q6_k", "Q5_0", "Q8_0", "F16"};
  const uint32_t ids[] = {GGML_T_Q4_K, GGML_T_Q6_K, GGML_T_Q5_0, GGML_T_Q8_0, GGML_T_F16};
  const uint32_t ftypes[] = {14, 18, 8, 7, 1};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    snprintf(out, sizeof out, "%s/%s.gguf", tu_tmpdir, types[i]);
    notes n = {{0}, 0};
    clkv_quantize_params p = clkv_quantize_default_params();
    p.note = collect, p.user = &n;
    cr_assert_eq(clkv_model_quantize(in, out, types[i], &p, &err), CLKV_OK, "%s", err.message);
    cr_assert_eq(n.n, 0, "every matrix fits: %s", n.text);
    clkv__gguf_file *a, *b;
    cr_assert_eq(clkv__gguf_open(in, &a, &err), CLKV_OK);
    cr_assert_eq(clkv__gguf_open(out, &b, &err), CLKV_OK, "%s", err.message);
    cr_assert_eq(a->n_tensors, b->n_tensors);
    uint64_t ft = 0;
    cr_assert(clkv__gguf_get_u64(b, "general.file_type", &ft) && ft == ftypes[i], "%s", types[i]);
    char sa[64], sb[64];
    cr_assert(clkv__gguf_get_str(a, "tokenizer.ggml.model", sa, sizeof sa));
    cr_assert(clkv__gguf_get_str(b, "tokenizer.ggml.model", sb, sizeof sb) && !strcmp(sa, sb));
    for (uint64_t t = 0; t < b->n_tensors; t++) {
      const clkv__gguf_tensor *bt = &b->tensors[t];
      cr_assert_str_eq(bt->name, a->tensors[t].name);
      cr_assert_eq(bt->type, bt->n_dims == 2 ? ids[i] : GGML_T_F32, "%s %s", types[i], bt->name);
    }
    clkv__gguf_close(a);
    clkv__gguf_close(b);
    check_generate(out);
  }
}

Test(quantize, rows_that_are_not_whole_blocks_take_the_fallback) {
  char in[512], out[600];
  write_f32(64, "f32-64.gguf", in, sizeof in);
  snprintf(out, sizeof out, "%s/q4k-64.gguf", tu_tmpdir);
  notes n = {{0}, 0};
  clkv_quantize_params p = {.note = collect, .user = &n};
  cr_assert_eq(clkv_model_quantize(in, out, "Q4_K", &p, &err), CLKV_OK, "%s", err.message);
  cr_assert_gt(n.n, 0);
  cr_assert(strstr(n.text, "blk.0.attn_q.weight: in Q5_0"), "%s", n.text);
  check_generate(out);
}

Test(quantize, bad_type_and_paths_are_refused) {
  char in[512], out[600];
  write_f32(64, "f32-bad.gguf", in, sizeof in);
  snprintf(out, sizeof out, "%s/bad.gguf", tu_tmpdir);
  cr_assert_eq(clkv_model_quantize(in, out, "Q7_K", NULL, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "Q7_K") && strstr(err.message, clkv_quantize_types()), "%s", err.message);
  cr_assert_eq(clkv_model_quantize(in, out, NULL, NULL, &err), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(clkv_model_quantize(in, in, "Q8_0", NULL, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "input itself"), "%s", err.message);
  cr_assert_eq(clkv_model_quantize("/nonexistent/x.gguf", out, "Q8_0", NULL, &err), CLKV_ERR_IO);
  snprintf(out, sizeof out, "%s/no-such-dir/x.gguf", tu_tmpdir);
  cr_assert_eq(clkv_model_quantize(in, out, "Q8_0", NULL, &err), CLKV_ERR_IO);
  cr_assert(strstr(err.message, "directory"), "%s", err.message);
  /* every listed type is accepted */
  char list[256];
  snprintf(list, sizeof list, "%s", clkv_quantize_types());
  for (char *s = strtok(list, ", "); s; s = strtok(NULL, ", ")) {
    snprintf(out, sizeof out, "%s/all-%s.gguf", tu_tmpdir, s);
    cr_assert_eq(clkv_model_quantize(in, out, s, NULL, &err), CLKV_OK, "%s: %s", s, err.message);
  }
}

/* The CLI, and the `gguf` package reading what it wrote: every tensor dequantized, finite. */
Test(quantize, cli_output_reads_in_the_gguf_package) {
  char in[512], out[600], cmd[2048], text[8192];
  write_f32(256, "f32-cli.gguf", in, sizeof in);
  snprintf(out, sizeof out, "%s/cli-q4k.gguf", tu_tmpdir);
  snprintf(cmd, sizeof cmd, "quantize '%s' '%s' Q4_K", in, out);
  cr_assert_eq(tu_run_cli(cmd, text, sizeof text), 0, "%s", text);
  cr_assert(strstr(text, "wrote"), "%s", text);
  cr_assert_neq(tu_run_cli("quantize only-one-arg.gguf", text, sizeof text), 0);
  cr_assert(strstr(text, "IN.gguf OUT.gguf TYPE"), "%s", text);
  const char *py = getenv("CLKV_PYTHON");
  if (!py || access(py, X_OK) != 0) cr_skip_test("CLKV_PYTHON is not set");
  snprintf(cmd, sizeof cmd,
           "'%s' -c 'import sys, numpy as np\nfrom gguf import GGUFReader\nfrom gguf.quants import "
           "dequantize\nr = GGUFReader(sys.argv[1])\nassert int(r.fields[\"general.file_type\"]."
           "parts[-1][0]) == 14\nfor t in r.tensors:\n    y = dequantize(t.data, t.tensor_type)\n"
           "    assert y.size == int(np.prod(t.shape)) and np.all(np.isfinite(y)), t.name\n"
           "print(\"read\", len(r.tensors))' '%s'", py, out);
  cr_assert_eq(system(cmd), 0, "the gguf package could not read %s", out);
}

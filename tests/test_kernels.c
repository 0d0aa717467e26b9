/* test_kernels.c — each kernel against the plain-C reference (tests/ref): the matvec family
 * for every runnable weight type and the cases of tests/kernel_cases.c (shared with
 * `clkv_bench ops`), in CPU and GPU-like launch shapes; fused QKV with RoPE and paged KV
 * writes; paged decode and tiled prefill attention (GQA and not, positions crossing block
 * boundaries, shuffled block tables); embedding lookup.
 * Tolerance: max |kernel - ref| <= 2e-4 * (1 + max |ref|) unless stated. */
#include "kernel_cases.h"
#include "ref/ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static clkv_runtime *rt;
static clkv_error err;

static void setup(void) {
  clkv_runtime_params p = clkv_runtime_default_params();
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
}
static void teardown(void) { clkv_runtime_free(rt); }

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static cl_mem buf_from(const void *data, size_t bytes) {
  cl_int e;
  cl_mem b = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0),
                            bytes, (void *)data, &e);
  cr_assert_eq(e, CL_SUCCESS);
  return b;
}

static void read_buf(cl_mem b, void *out, size_t bytes) {
  cr_assert_eq(clEnqueueReadBuffer(rt->queue, b, CL_TRUE, 0, bytes, out, 0, NULL, NULL), CL_SUCCESS);
}

static float max_abs(const float *a, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i]));
  return m;
}

static void expect_close(const float *got, const float *want, size_t n, float tol, const char *what) {
  const float lim = tol * (1.0f + max_abs(want, n));
  for (size_t i = 0; i < n; i++)
    cr_assert(fabsf(got[i] - want[i]) <= lim, "%s[%zu]: got %g want %g (limit %g)", what, i,
              (double)got[i], (double)want[i], (double)lim);
}

/* Quantizes a random rows×cols matrix into type t; returns the bytes, and in deq the
 * matrix the kernel should see (dequantized back). */
static void *make_weights(uint32_t t, int rows, int cols, float *deq) {
  size_t rb = clkv__ggml_row_bytes(t, (uint64_t)cols);
  cr_assert(rb > 0);
  unsigned char *w = malloc(rb * (size_t)rows);
  float *row = malloc(sizeof(float) * (size_t)cols);
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) row[c] = frand() * 0.5f;
    cr_assert_eq(clkv__quantize_row(t, row, w + rb * (size_t)r, (uint64_t)cols), rb);
    cr_assert_eq(clkv__dequantize_row(t, w + rb * (size_t)r, deq + (size_t)r * cols, (uint64_t)cols), CLKV_OK);
  }
  free(row);
  return w;
}

/* The prefill GEMM path (host/gemm.c) in place of the matvec kernel: its scratch holds a
 * weight tile of 16 rows, so that every test crosses tiles. */
typedef struct gemm_path {
  clkv__gemm_kernels k;
  clkv__gemm_scratch s;
  int mode;
} gemm_path;

static void gemm_path_init(gemm_path *g, int mode, uint32_t t, int epi, int hd, int nkv, int bs,
                           int kv_type, int n, int rows, int cols) {
  char opts[320];
  g->mode = mode;
  clkv__gemm_options(mode, t, epi, hd, nkv, bs, kv_type, opts, sizeof opts);
  cr_assert_eq(clkv__gemm_kernels_create(rt, opts, &g->k, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__gemm_scratch_init(rt, (size_t)n, (size_t)rows, (size_t)cols, &g->s, &err),
               CLKV_OK, "%s", err.message);
  g->s.w_elems = 16 * (size_t)cols;
}

static void gemm_path_run(gemm_path *g, int epi, const clkv__mv_args *a) {
  int touched;
  cr_assert_eq(clkv__gemm_enqueue(rt, &g->k, g->mode, &g->s, epi, a, &touched, &err), CLKV_OK,
               "%s", err.message);
  cr_assert(touched);
}

static void gemm_path_free(gemm_path *g) {
  clkv__gemm_kernels_release(&g->k);
  clkv__gemm_scratch_release(&g->s);
}

/* The reference of case c's epilogue for n tokens of x (cols each): Y = W·norm(X) (STORE),
 * Y = y0 + W·X (ADD), SwiGLU of W·norm(X). */
static void ref_case(const kc_matvec *c, const float *deq, const float *x, const float *nw,
                     float eps, const float *y0, int n, float *want) {
  const int rows = (int)c->test_rows, cols = (int)c->test_cols;
  const int out_rows = c->epi == CLKV__EPI_SWIGLU ? rows / 2 : rows;
  float *xn = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)rows);
  for (int k = 0; k < n; k++) {
    if (c->epi == CLKV__EPI_ADD) memcpy(xn, x + k * cols, sizeof(float) * (size_t)cols);
    else ref_rmsnorm(xn, x + k * cols, nw, cols, eps);
    ref_matvec(deq, xn, y, rows, cols);
    for (int r = 0; r < out_rows; r++) {
      float *dst = want + k * out_rows + r;
      if (c->epi == CLKV__EPI_STORE) *dst = y[r];
      else if (c->epi == CLKV__EPI_ADD) *dst = y0[k * rows + r] + y[r];
      else ref_swiglu(dst, &y[2 * r], &y[2 * r + 1], 1);
    }
  }
  free(xn);
  free(y);
}

/* What int8 activations (kernels/common.cl) may add to each output of ref_case: x's
 * quantization moves each value of a 32-block by at most half a step, max|block| / 254, of
 * the normed input, so a row's product moves by at most sum over blocks of that half step
 * times sum |w| over the block (the bound B); SwiGLU's silu(g) u then moves by at most
 * 1.1 Bg (|u| + Bu) + (|silu(g)| + 1.1 Bg) Bu (|silu'| <= 1.1). */
static void int8_bound(const kc_matvec *c, const float *deq, const float *x, const float *nw,
                       float eps, int n, float *bound) {
  const int rows = (int)c->test_rows, cols = (int)c->test_cols;
  const int out_rows = c->epi == CLKV__EPI_SWIGLU ? rows / 2 : rows;
  float *xn = malloc(sizeof(float) * (size_t)cols), *b = malloc(sizeof(float) * (size_t)rows);
  float *y = malloc(sizeof(float) * (size_t)rows);
  for (int k = 0; k < n; k++) {
    if (c->epi == CLKV__EPI_ADD) memcpy(xn, x + k * cols, sizeof(float) * (size_t)cols);
    else ref_rmsnorm(xn, x + k * cols, nw, cols, eps);
    ref_matvec(deq, xn, y, rows, cols);
    for (int r = 0; r < rows; r++) {
      double s = 0;
      for (int b0 = 0; b0 < cols; b0 += 32) {
        double amax = 0, wsum = 0;
        for (int i = b0; i < b0 + 32; i++) {
          amax = fmax(amax, fabs(xn[i]));
          wsum += fabs(deq[(size_t)r * cols + i]);
        }
        s += amax / 254.0 * wsum;
      }
      b[r] = (float)s;
    }
    for (int r = 0; r < out_rows; r++) {
      float *dst = bound + k * out_rows + r;
      if (c->epi != CLKV__EPI_SWIGLU) {
        *dst = b[r];
      } else {
        const float g = y[2 * r], u = y[2 * r + 1], bg = b[2 * r], bu = b[2 * r + 1];
        *dst = 1.1f * bg * (fabsf(u) + bu) + (fabsf(g / (1.0f + expf(-g))) + 1.1f * bg) * bu;
      }
    }
  }
  free(xn), free(b), free(y);
}

/* One matvec case in weight type t against ref, at the case's test size; through the matvec
 * kernel with shape s (mode own) or the prefill GEMM path. Inputs are uniform in
 * [-2, 2) * x_scale: at 1e-3 the norm's eps (1e-5) outweighs mean(x^2), and the test checks
 * that a norm without it would be out of tolerance. */
static void check_matvec_at(uint32_t t, const clkv__mv_shape *s, const kc_matvec *case_in,
                            int mode, float x_scale, float tol) {
  kc_matvec case_t = *case_in; /* at whole blocks of t */
  case_t.test_cols = kc_cols(case_in->test_cols, t);
  const kc_matvec *c = &case_t;

  const int rows = (int)c->test_rows, cols = (int)c->test_cols, n = KC_TEST_TOKENS, epi = c->epi;
  const int out_rows = epi == CLKV__EPI_SWIGLU ? rows / 2 : rows;
  const size_t nx = (size_t)n * cols, ny = (size_t)n * rows;
  float *deq = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * nx);
  float *nw = malloc(sizeof(float) * cols), *y0 = malloc(sizeof(float) * ny);
  float *want = malloc(sizeof(float) * ny), *got = malloc(sizeof(float) * ny);
  void *w = make_weights(t, rows, cols, deq);
  for (size_t i = 0; i < nx; i++) x[i] = frand() * 2 * x_scale;
  for (int i = 0; i < cols; i++) nw[i] = 1.0f + frand() * 0.2f;
  for (size_t i = 0; i < ny; i++) y0[i] = frand();
  const float eps = 1e-5f;
  if (x_scale < 0.01f && epi != CLKV__EPI_ADD) { /* eps must matter here */
    ref_case(c, deq, x, nw, 0.0f, y0, n, want);
    memcpy(got, want, sizeof(float) * (size_t)(n * out_rows));
    ref_case(c, deq, x, nw, eps, y0, n, want);
    float d = 0;
    for (int i = 0; i < n * out_rows; i++) d = fmaxf(d, fabsf(got[i] - want[i]));
    cr_assert_gt(d, 2e-3f * (1.0f + max_abs(want, (size_t)(n * out_rows))), "eps barely matters");
  }
  ref_case(c, deq, x, nw, eps, y0, n, want);
  char opts[256];
  cl_kernel k = NULL;
  gemm_path g;
  if (mode == CLKV__GEMM_OWN) {
    clkv__matvec_options(s, t, epi, 64, 1, 16, CLKV_KV_F16, opts, sizeof opts);
    cr_assert_eq(clkv__kernel_create(rt, "matvec.cl", opts, "clkv_matvec", &k, &err), CLKV_OK, "%s", err.message);
  } else {
    gemm_path_init(&g, mode, t, epi, 64, 1, 16, CLKV_KV_F16, n, rows, cols);
  }
  cl_mem W = buf_from(w, clkv__ggml_row_bytes(t, cols) * rows), X = buf_from(x, sizeof(float) * nx),
         N = buf_from(nw, sizeof(float) * cols), Y = buf_from(y0, sizeof(float) * ny),
         dummy = buf_from(NULL, 64);
  clkv__mv_args a = {.W = W, .rows = rows, .cols = cols, .X = X, .x_row0 = 0, .n_tok = n,
                     .norm_w = N, .eps = eps, .Y = Y, .kc = dummy, .vc = dummy, .btab = dummy,
                     .tok_seq = dummy, .tok_pos = dummy, .inv_freq = dummy};
  if (k) cr_assert_eq(clkv__matvec_enqueue(rt, k, s, epi, &a, &err), CLKV_OK, "%s", err.message);
  else gemm_path_run(&g, epi, &a);
  read_buf(Y, got, sizeof(float) * (size_t)(n * out_rows));
  char what[128];
  snprintf(what, sizeof what, "%s %s (epi %d) %s shape %u/%u/%u/%u dot %u form %u", clkv__ggml_type_get(t)->name,
           c->name, epi, clkv__gemm_mode_name(mode), s->ksplit, s->rg, s->rows, s->tt, s->dot, s->form);
  const int i8t = clkv__matvec_outer(s) ? CLKV_INT8_TILE_TYPE((int)t) : CLKV_INT8_TYPE((int)t);
  if (k && clkv__matvec_int8(s) && i8t) {
    float *bound = malloc(sizeof(float) * ny);
    int8_bound(c, deq, x, nw, eps, n, bound);
    const float lim = tol * (1.0f + max_abs(want, (size_t)(n * out_rows)));
    for (int i = 0; i < n * out_rows; i++)
      cr_assert(fabsf(got[i] - want[i]) <= lim + bound[i], "%s int8 [%d]: got %g want %g "
                "(limit %g + int8 bound %g)", what, i, (double)got[i], (double)want[i],
                (double)lim, (double)bound[i]);
    free(bound);
  } else {
    expect_close(got, want, (size_t)(n * out_rows), tol, what);
  }
  if (k) clReleaseKernel(k);
  else gemm_path_free(&g);
  cl_mem all[] = {W, X, N, Y, dummy};
  for (int i = 0; i < 5; i++) clReleaseMemObject(all[i]);
  free(w), free(deq), free(x), free(nw), free(y0), free(want), free(got);
}

static void check_matvec(uint32_t t, const clkv__mv_shape *s, const kc_matvec *c, int mode) {
  check_matvec_at(t, s, c, mode, 1.0f, 2e-4f);
}

TestSuite(kernels, .init = setup, .fini = teardown, .timeout = 300);

/* Every runnable type, every mat-vec case of kernel_cases.c (STORE, ADD, SWIGLU), every test
 * launch shape; QKV has its own tests below. */
Test(kernels, matvec_every_type_epilogue_and_shape) {
  for (int t = 0; t < CLKV__N_WTYPES; t++)
    for (size_t s = 0; s < kc_n_test_shapes; s++)
      for (size_t c = 0; c < kc_n_matvecs && kc_test_shape_for(s, kc_wtype(t)); c++)
        if (kc_test_shapes[s].dot < 2 && kc_test_shapes[s].form != 2)
          check_matvec(kc_wtype(t), &kc_test_shapes[s], &kc_matvecs[c], CLKV__GEMM_OWN);
}

/* Prefill's outer product (prefill.form 2), tests of their own for the time their builds
 * take (~50 s of CPU each on PoCL with a cold kernel cache): every type and mat-vec case at
 * its test shapes with float16 token vectors (TT % 16 == 0), then with float8 ones. */
static void check_outer(int vec16) {
  for (int t = 0; t < CLKV__N_WTYPES; t++)
    for (size_t s = 0; s < kc_n_test_shapes; s++)
      for (size_t c = 0; c < kc_n_matvecs && kc_test_shape_for(s, kc_wtype(t)); c++)
        if (kc_test_shapes[s].form == 2 && kc_test_shapes[s].dot < 2 &&
            (kc_test_shapes[s].tt % 16 == 0) == vec16)
          check_matvec(kc_wtype(t), &kc_test_shapes[s], &kc_matvecs[c], CLKV__GEMM_OWN);
}

Test(kernels, matvec_prefill_outer_product_every_type) { check_outer(1); }

Test(kernels, matvec_prefill_outer_product_float8_every_type) { check_outer(0); }

/* The int8 activations' shapes (decode.dot 2 and 3; outer 1: prefill's int8 tiles under
 * prefill.form 2, else the one-token dot) for the types with an integer dot: within the
 * quantization bound of int8_bound plus the float tolerance. Two tests, as the outer product's
 * above, for their build time: the tiles' unrolled integer dots, built in their portable form
 * by a device without VNNI, took rusticl's llvmpipe over 300 s with a cold cache (PoCL: ~20 s),
 * hence their own timeout. */
static void check_int8(int outer) {
  /* The tiles' VNNI shape (dot 3) only on PoCL's CPU device, the one device that runs it
   * (pocl.profile). Elsewhere it builds as the portable dot: the small dot-2 shape's code
   * with four times the rows and the tokens per work-item. With the K-quants added, the
   * test took rusticl's llvmpipe 626 s with a cold cache, for code the small shape tests. */
  const int vnni_shape = !strcmp(rt->info.arch, "pocl-cpu");
  for (int t = 0; t < CLKV__N_WTYPES; t++)
    for (size_t s = 0; s < kc_n_test_shapes; s++)
      for (size_t c = 0; c < kc_n_matvecs && kc_test_shape_for(s, kc_wtype(t)); c++)
        if (kc_test_shapes[s].dot > 1 && (kc_test_shapes[s].form == 2) == outer &&
            (!outer || kc_test_shapes[s].dot == 2 || vnni_shape))
          check_matvec(kc_wtype(t), &kc_test_shapes[s], &kc_matvecs[c], CLKV__GEMM_OWN);
}

Test(kernels, matvec_int8_activations_within_their_bound) { check_int8(0); }
Test(kernels, matvec_prefill_int8_tiles_within_their_bound, .timeout = 900) { check_int8(1); }

Test(kernels, prefill_gemm_clblast_every_type_and_epilogue) {
  char why[256];
  if (!clkv__gemm_available(rt, CLKV__GEMM_CLBLAST, why, sizeof why)) {
    cr_assert(strstr(why, "without CLBlast"), "%s", why);
    cr_skip_test("%s", why);
  }
  for (int t = 0; t < CLKV__N_WTYPES; t++)
    for (size_t c = 0; c < kc_n_matvecs; c++)
      check_matvec(kc_wtype(t), &kc_test_shapes[0], &kc_matvecs[c], CLKV__GEMM_CLBLAST);
}

/* Inputs near 1e-3 (hidden states of a small-norm model): the fused RMSNorm's eps
 * changes the result, through the mat-vec kernel in each shape and the CLBlast path. */
Test(kernels, matvec_norm_eps_with_small_inputs) {
  const int modes[] = {CLKV__GEMM_OWN, CLKV__GEMM_CLBLAST};
  for (size_t m = 0; m < 2; m++) {
    if (!clkv__gemm_available(rt, modes[m], NULL, 0)) continue;
    for (size_t c = 0; c < kc_n_matvecs; c++) {
      if (kc_matvecs[c].epi == CLKV__EPI_ADD) continue; /* no norm */
      for (size_t s = 0; s < kc_n_test_shapes; s++)
        if (kc_test_shapes[s].dot < 2) /* the float dot: F32 has no integer one */
          check_matvec_at(GGML_T_F32, &kc_test_shapes[s], &kc_matvecs[c], modes[m], 1e-3f, 2e-4f);
    }
  }
}

/* The fp16 CLBlast path (operands rounded to half: about 3 decimal digits, the tuner's
 * tolerance) against the same reference, wherever the device has cl_khr_fp16. */
Test(kernels, prefill_gemm_clblast_f16_every_type_and_epilogue) {
  char why[256];
  if (!clkv__gemm_available(rt, CLKV__GEMM_CLBLAST16, why, sizeof why)) {
    cr_assert(strstr(why, "cl_khr_fp16") || strstr(why, "without CLBlast"), "%s", why);
    cr_skip_test("%s", why);
  }
  for (int t = 0; t < CLKV__N_WTYPES; t++)
    for (size_t c = 0; c < kc_n_matvecs; c++)
      check_matvec_at(kc_wtype(t), &kc_test_shapes[0], &kc_matvecs[c], CLKV__GEMM_CLBLAST16, 1.0f, 1e-2f);
}

Test(kernels, prefill_gemm_f16_needs_cl_khr_fp16) {
  char why[256];
  const int blas = clkv__gemm_available(rt, CLKV__GEMM_CLBLAST, NULL, 0);
  int ok = clkv__gemm_available(rt, CLKV__GEMM_CLBLAST16, why, sizeof why);
  cr_assert_eq(ok, blas && rt->info.has_fp16, "%s", why);
  if (ok) return; /* a device with fp16: nothing to refuse */
  /* the reason names what is missing: CLBlast in the build, or the extension */
  const char *missing = blas ? "cl_khr_fp16" : "without CLBlast";
  cr_assert(strstr(why, missing), "%s", why);
  gemm_path g = {.mode = CLKV__GEMM_CLBLAST16};
  clkv__mv_args a = {.rows = 2, .cols = 32, .n_tok = 1};
  int touched = 1;
  cr_assert_eq(clkv__gemm_enqueue(rt, &g.k, g.mode, &g.s, CLKV__EPI_STORE, &a, &touched, &err),
               CLKV_ERR_UNSUPPORTED);
  cr_assert_eq(touched, 0);
  cr_assert(strstr(err.message, missing), "%s", err.message);
}

Test(kernels, matvec_reads_from_row_offset) {
  /* the logits of a prefill chunk use x_row0 = last token */
  const int rows = 64, cols = 64;
  float *deq = malloc(sizeof(float) * rows * cols);
  void *w = make_weights(GGML_T_Q8_0, rows, cols, deq);
  float x[3 * 64], nw[64], want[64], got[64], xn[64];
  for (int i = 0; i < 3 * cols; i++) x[i] = frand();
  for (int i = 0; i < cols; i++) nw[i] = 1.0f;
  ref_rmsnorm(xn, x + 2 * cols, nw, cols, 1e-5f);
  ref_matvec(deq, xn, want, rows, cols);
  clkv__mv_shape s = {.ksplit = 1, .rg = 4, .rows = 2, .tt = 1};
  char opts[256];
  clkv__matvec_options(&s, GGML_T_Q8_0, CLKV__EPI_STORE, 64, 1, 16, CLKV_KV_F16, opts, sizeof opts);
  cl_kernel k;
  cr_assert_eq(clkv__kernel_create(rt, "matvec.cl", opts, "clkv_matvec", &k, &err), CLKV_OK, "%s", err.message);
  cl_mem W = buf_from(w, clkv__ggml_row_bytes(GGML_T_Q8_0, cols) * rows), X = buf_from(x, sizeof x),
         N = buf_from(nw, sizeof nw), Y = buf_from(NULL, sizeof got);
  clkv__mv_args a = {.W = W, .rows = rows, .cols = cols, .X = X, .x_row0 = 2, .n_tok = 1,
                     .norm_w = N, .eps = 1e-5f, .Y = Y, .kc = Y, .vc = Y, .btab = Y,
                     .tok_seq = Y, .tok_pos = Y, .inv_freq = Y};
  cr_assert_eq(clkv__matvec_enqueue(rt, k, &s, CLKV__EPI_STORE, &a, &err), CLKV_OK, "%s", err.message);
  read_buf(Y, got, sizeof got);
  expect_close(got, want, 64, 2e-4f, "row offset");
  clReleaseKernel(k);
  clReleaseMemObject(W);
  clReleaseMemObject(X);
  clReleaseMemObject(N);
  clReleaseMemObject(Y);
  free(w);
  free(deq);
}

/* Paged cache geometry used by the QKV and attention tests. */
typedef struct paged {
  int nh, nkv, hd, bs, n_seq, max_blocks, n_blocks;
  int32_t btab[2 * 16];
} paged;

static void paged_init(paged *p, int nh, int nkv, int hd, int bs) {
  p->nh = nh;
  p->nkv = nkv;
  p->hd = hd;
  p->bs = bs;
  p->n_seq = 2;
  p->max_blocks = 16;
  p->n_blocks = 32;
  /* a shuffled assignment: sequence s, logical block b → physical (b*7 + s*3 + 5) % 32 */
  for (int s = 0; s < 2; s++)
    for (int b = 0; b < 16; b++) p->btab[s * 16 + b] = (b * 7 + s * 3 + 5) % 32;
}

static size_t kv_index(const paged *p, int layer, int seq, int pos, int kvh) {
  int blk = p->btab[seq * p->max_blocks + pos / p->bs];
  return ((((size_t)layer * p->n_blocks + blk) * p->nkv + kvh) * p->bs + pos % p->bs) * p->hd;
}

Test(kernels, fused_qkv_rope_writes_paged_cache) {
  const int nh = 4, nkv = 2, hd = 16, dim = 64, bs = 8, n = 6, layer = 1;
  paged p;
  paged_init(&p, nh, nkv, hd, bs);
  const int q_rows = nh * hd, kv_rows = nkv * hd, rows = q_rows + 2 * kv_rows;
  float *deq = malloc(sizeof(float) * rows * dim);
  void *w = make_weights(GGML_T_Q4_1, rows, dim, deq);
  float x[6 * 64], nw[64];
  for (int i = 0; i < n * dim; i++) x[i] = frand();
  for (int i = 0; i < dim; i++) nw[i] = 1.0f + 0.1f * frand();
  /* tokens: 3 of sequence 0 at positions 6,7,8 (crossing a block), 3 of sequence 1 at 14..16 */
  int32_t seqs[6] = {0, 0, 0, 1, 1, 1}, poss[6] = {6, 7, 8, 14, 15, 16};
  const float base = 10000.0f;
  float freq[8];
  for (int i = 0; i < hd / 2; i++) freq[i] = (float)pow(base, -2.0 * i / hd);
  const size_t cache_elems = (size_t)2 * p.n_blocks * nkv * bs * hd;
  uint16_t *kc0 = calloc(cache_elems, 2), *kc = malloc(cache_elems * 2), *vc = malloc(cache_elems * 2);
  clkv__mv_shape shapes2[] = {{.ksplit = 1, .rg = 4, .rows = 2, .tt = 1},
                              {.ksplit = 4, .rg = 2, .rows = 2, .tt = 4}};
  for (int si = 0; si < 3; si++) { /* two matvec shapes, then the CLBlast prefill path */
    char opts[256];
    cl_kernel k = NULL;
    gemm_path g;
    if (si < 2) {
      clkv__matvec_options(&shapes2[si], GGML_T_Q4_1, CLKV__EPI_QKV, hd, nkv, bs, CLKV_KV_F16, opts, sizeof opts);
      cr_assert_eq(clkv__kernel_create(rt, "matvec.cl", opts, "clkv_matvec", &k, &err), CLKV_OK, "%s", err.message);
    } else {
      gemm_path_init(&g, CLKV__GEMM_CLBLAST, GGML_T_Q4_1, CLKV__EPI_QKV, hd, nkv, bs, CLKV_KV_F16, n,
                     rows, dim);
    }
    cl_mem W = buf_from(w, clkv__ggml_row_bytes(GGML_T_Q4_1, dim) * rows), X = buf_from(x, sizeof x),
           N = buf_from(nw, sizeof nw), Q = buf_from(NULL, sizeof(float) * n * q_rows),
           K = buf_from(kc0, cache_elems * 2), V = buf_from(kc0, cache_elems * 2),
           B = buf_from(p.btab, sizeof p.btab), S = buf_from(seqs, sizeof seqs),
           P = buf_from(poss, sizeof poss), F = buf_from(freq, sizeof freq);
    clkv__mv_args a = {.W = W, .rows = rows, .cols = dim, .X = X, .n_tok = n, .norm_w = N,
                       .eps = 1e-5f, .Y = Q, .kc = K, .vc = V, .btab = B, .tok_seq = S,
                       .tok_pos = P, .inv_freq = F, .q_rows = q_rows, .kv_rows = kv_rows,
                       .layer_base = (unsigned)(layer * p.n_blocks), .max_blocks = p.max_blocks};
    if (k) cr_assert_eq(clkv__matvec_enqueue(rt, k, &shapes2[si], CLKV__EPI_QKV, &a, &err), CLKV_OK, "%s", err.message);
    else gemm_path_run(&g, CLKV__EPI_QKV, &a);
    float *q = malloc(sizeof(float) * n * q_rows);
    read_buf(Q, q, sizeof(float) * n * q_rows);
    read_buf(K, kc, cache_elems * 2);
    read_buf(V, vc, cache_elems * 2);
    for (int t = 0; t < n; t++) {
      float xn[64], y[128];
      ref_rmsnorm(xn, x + t * dim, nw, dim, 1e-5f);
      ref_matvec(deq, xn, y, rows, dim);
      for (int h = 0; h < nh + nkv; h++) ref_rope(y + h * hd, hd, poss[t], base);
      expect_close(q + t * q_rows, y, (size_t)q_rows, 2e-4f, "q");
      for (int h = 0; h < nkv; h++) {
        size_t idx = kv_index(&p, layer, seqs[t], poss[t], h);
        for (int d = 0; d < hd; d++) {
          float kw = y[q_rows + h * hd + d], vw = y[q_rows + kv_rows + h * hd + d];
          float kg = clkv__fp16_to_fp32(kc[idx + d]), vg = clkv__fp16_to_fp32(vc[idx + d]);
          cr_assert(fabsf(kg - kw) <= 2e-3f * (1 + fabsf(kw)), "k t%d h%d d%d: %g vs %g", t, h, d, kg, kw);
          cr_assert(fabsf(vg - vw) <= 2e-3f * (1 + fabsf(vw)), "v t%d h%d d%d: %g vs %g", t, h, d, vg, vw);
        }
      }
    }
    /* nothing written to layer 0 */
    for (size_t i = 0; i < cache_elems / 2; i++) cr_assert_eq(kc[i], 0, "layer 0 written at %zu", i);
    free(q);
    if (k) clReleaseKernel(k);
    else gemm_path_free(&g);
    cl_mem all[] = {W, X, N, Q, K, V, B, S, P, F};
    for (int i = 0; i < 10; i++) clReleaseMemObject(all[i]);
  }
  free(kc0);
  free(kc);
  free(vc);
  free(w);
  free(deq);
}

/* Fills a paged cache (layer 0) with random K/V for two sequences up to max_pos (keys in
 * [-2, 2) times kscale), and the matching contiguous reference arrays [seq][pos][kvh*hd]
 * rounded through fp16. */
static void fill_cache(const paged *p, int max_pos, float kscale, uint16_t *kc, uint16_t *vc,
                       float *kref, float *vref) {
  for (int s = 0; s < 2; s++)
    for (int pos = 0; pos < max_pos; pos++)
      for (int h = 0; h < p->nkv; h++) {
        size_t idx = kv_index(p, 0, s, pos, h);
        for (int d = 0; d < p->hd; d++) {
          float kv = frand() * 2 * kscale, vv = frand();
          kc[idx + d] = clkv__fp32_to_fp16(kv);
          vc[idx + d] = clkv__fp32_to_fp16(vv);
          size_t r = (((size_t)s * max_pos + pos) * p->nkv + h) * p->hd + d;
          kref[r] = clkv__fp16_to_fp32(kc[idx + d]);
          vref[r] = clkv__fp16_to_fp32(vc[idx + d]);
        }
      }
}

/* The largest |q.k| * scale over the (token, head, position) triples attended. */
static float max_score(const float *q, const float *kref, const int32_t *seqs, const int32_t *poss,
                       int n, int nh, int nkv, int hd, int max_pos, float scale) {
  float mx = 0;
  for (int t = 0; t < n; t++)
    for (int h = 0; h < nh; h++)
      for (int p = 0; p <= poss[t]; p++) {
        const float *k = kref + (((size_t)seqs[t] * max_pos + p) * nkv + h / (nh / nkv)) * hd;
        float s = 0;
        for (int d = 0; d < hd; d++) s += q[(t * nh + h) * hd + d] * k[d];
        mx = fmaxf(mx, fabsf(s * scale));
      }
  return mx;
}

/* Attention against ref_attention_head; kscale scales the keys (1: scores of a few units;
 * hundreds: scores of hundreds, which overflow exp() without the softmax's max-subtraction). */
static void check_attention(const kc_heads *heads, const kc_attn *attn, const clkv__tunables *tun,
                            float kscale, float tol) {
  const int hd = 16, bs = 8, max_pos = 60, nh = heads->n_heads, nkv = heads->n_kv;
  const int prefill = attn->prefill;
  paged p;
  paged_init(&p, nh, nkv, hd, bs);
  const size_t cache_elems = (size_t)p.n_blocks * nkv * bs * hd;
  uint16_t *kc = calloc(cache_elems, 2), *vc = calloc(cache_elems, 2);
  float *kref = malloc(sizeof(float) * 2 * max_pos * nkv * hd), *vref = malloc(sizeof(float) * 2 * max_pos * nkv * hd);
  fill_cache(&p, max_pos, kscale, kc, vc, kref, vref);
  /* decode: 4 tokens of both sequences at various positions; prefill: 37 tokens of
   * sequence 1 from position 21 (reads earlier cached positions, crosses blocks). */
  int32_t seqs[40], poss[40];
  int n;
  if (prefill) {
    n = 37;
    for (int i = 0; i < n; i++) seqs[i] = 1, poss[i] = 21 + i;
  } else {
    n = 4;
    int32_t s4[4] = {0, 1, 0, 1}, p4[4] = {0, 7, 8, 59};
    memcpy(seqs, s4, sizeof s4);
    memcpy(poss, p4, sizeof p4);
  }
  float *q = malloc(sizeof(float) * n * nh * hd), *want = malloc(sizeof(float) * n * nh * hd),
        *got = malloc(sizeof(float) * n * nh * hd);
  for (int i = 0; i < n * nh * hd; i++) q[i] = frand();
  const float scale = 1.0f / sqrtf((float)hd);
  if (kscale > 1) {
    const float mx = max_score(q, kref, seqs, poss, n, nh, nkv, hd, max_pos, scale);
    cr_assert_gt(mx, 100.0f, "keys scaled by %g give scores up to %g only", (double)kscale, (double)mx);
  }
  for (int t = 0; t < n; t++)
    for (int h = 0; h < nh; h++) {
      int kvh = h / (nh / nkv);
      float qs[16];
      for (int d = 0; d < hd; d++) qs[d] = q[(t * nh + h) * hd + d]; /* ref scales */
      const float *kb = kref + ((size_t)seqs[t] * max_pos * nkv + kvh) * hd;
      const float *vb = vref + ((size_t)seqs[t] * max_pos * nkv + kvh) * hd;
      ref_attention_head(want + (t * nh + h) * hd, qs, kb, vb, poss[t] + 1, hd, nkv * hd, nkv * hd);
    }
  char opts[256];
  clkv__attn_options(tun, hd, nkv, nh, bs, CLKV_KV_F16, 0, opts, sizeof opts);
  if (attn->extra) snprintf(opts + strlen(opts), sizeof opts - strlen(opts), " %s", attn->extra);
  cl_kernel k;
  cr_assert_eq(clkv__kernel_create(rt, "attention.cl", opts, attn->kernel, &k, &err), CLKV_OK, "%s",
               err.message);
  cl_mem Q = buf_from(q, sizeof(float) * n * nh * hd), K = buf_from(kc, cache_elems * 2),
         V = buf_from(vc, cache_elems * 2), B = buf_from(p.btab, sizeof p.btab),
         S = buf_from(seqs, sizeof(int32_t) * n), P = buf_from(poss, sizeof(int32_t) * n),
         O = buf_from(NULL, sizeof(float) * n * nh * hd);
  clkv__attn_args a = {.Q = Q, .kc = K, .vc = V, .btab = B, .tok_seq = S, .tok_pos = P,
                       .seq = 1, .pos0 = 21, .n_tok = (unsigned)n, .n_heads = (unsigned)nh,
                       .layer_base = 0, .max_blocks = (unsigned)p.max_blocks, .scale = scale, .O = O};
  cr_assert_eq(clkv__attn_enqueue(rt, k, tun, prefill, &a, &err), CLKV_OK, "%s", err.message);
  read_buf(O, got, sizeof(float) * n * nh * hd);
  char what[160];
  snprintf(what, sizeof what, "%s%s%s %s nh %d nkv %d wg %u tq %u keys x%g", attn->kernel,
           attn->extra ? " " : "", attn->extra ? attn->extra : "", heads->name, nh, nkv,
           tun->att_wg, tun->tq, (double)kscale);
  expect_close(got, want, (size_t)(n * nh * hd), tol, what);
  clReleaseKernel(k);
  cl_mem all[] = {Q, K, V, B, S, P, O};
  for (int i = 0; i < 7; i++) clReleaseMemObject(all[i]);
  free(kc);
  free(vc);
  free(kref);
  free(vref);
  free(q);
  free(want);
  free(got);
}

/* The prefill kernel's AMD form at head size > 64 (kernels/attention.cl: the tile at once, q
 * in local memory or in registers), which PoCL does not build by default. */
static const kc_attn pf_gpu_forms[] = {{"clkv_attn_prefill", 1, "-DCLKV_PF_TILE=1 -DPF_QR=0"},
                                       {"clkv_attn_prefill", 1, "-DCLKV_PF_TILE=1"}};
#define N_PF_GPU_FORMS (sizeof pf_gpu_forms / sizeof pf_gpu_forms[0])

Test(kernels, attention_paged_and_prefill_gqa_and_not) {
  clkv__tunables tuns[] = {{.att_wg = 8, .tq = 16, .tk = 32}, {.att_wg = 64, .tq = 8, .tk = 8},
                           {.att_wg = 1, .tq = 32, .tk = 16}};
  for (size_t i = 0; i < 3; i++)
    for (size_t a = 0; a < kc_n_attns + N_PF_GPU_FORMS; a++)
      for (size_t h = 0; h < kc_n_test_heads; h++)
        check_attention(&kc_test_heads[h], a < kc_n_attns ? &kc_attns[a] : &pf_gpu_forms[a - kc_n_attns],
                        &tuns[i], 1.0f, 1e-4f);
}

/* Keys scaled to +-800 so scores reach hundreds: exp(score) overflows a float unless the
 * online softmax subtracts the running maximum (both kernels, and the paged kernel's
 * combination of its threads' partial sums). */
Test(kernels, attention_large_scores_paged_and_prefill) {
  const clkv__tunables tun = {.att_wg = 8, .tq = 16, .tk = 8};
  for (size_t a = 0; a < kc_n_attns + N_PF_GPU_FORMS; a++)
    for (size_t h = 0; h < kc_n_test_heads; h++)
      check_attention(&kc_test_heads[h], a < kc_n_attns ? &kc_attns[a] : &pf_gpu_forms[a - kc_n_attns],
                      &tun, 400.0f, 5e-4f);
}

/* Every runnable type: the kernels' row size and block decoding (kernels/contract.h and
 * common.cl) give exactly the host's (clkv__ggml_row_bytes, clkv__dequantize_row). */
Test(kernels, embedding_rows) {
  for (int ti = 0; ti < CLKV__N_WTYPES; ti++) {
    const uint32_t t = kc_wtype(ti);
    const int vocab = 40, cols = (int)kc_cols(64, t);
    float *deq = malloc(sizeof(float) * vocab * cols);
    void *e = make_weights(t, vocab, cols, deq);
    int32_t ids[5] = {0, 39, 7, 7, 12};
    char opts[32];
    snprintf(opts, sizeof opts, "-DWTYPE=%u", t);
    cl_kernel k;
    cr_assert_eq(clkv__kernel_create(rt, "embed.cl", opts, "clkv_get_rows", &k, &err), CLKV_OK, "%s", err.message);
    cl_mem E = buf_from(e, clkv__ggml_row_bytes(t, cols) * vocab), I = buf_from(ids, sizeof ids),
           X = buf_from(NULL, sizeof(float) * 5 * cols);
    cr_assert_eq(clkv__embed_enqueue(rt, k, E, cols, vocab, I, 5, X, &err), CLKV_OK, "%s", err.message);
    float *got = malloc(sizeof(float) * 5 * cols);
    read_buf(X, got, sizeof(float) * 5 * cols);
    for (int i = 0; i < 5; i++)
      expect_close(got + i * cols, deq + ids[i] * cols, cols, 1e-6f, clkv__ggml_type_get(t)->name);
    clReleaseKernel(k);
    clReleaseMemObject(E);
    clReleaseMemObject(I);
    clReleaseMemObject(X);
    free(e);
    free(deq);
    free(got);
  }
}

/* kernels/common.cl's fp16 loads against the C conversion (host/format/quant.c), bit for bit,
 * for all 65536 values: clkv_half_bits (the integer conversion, whatever the device) and
 * clkv_ld_half8 as this device builds it (bit operations under the soft_half quirk, else
 * vload_half8). */
/* Both forms of the fp16 loads (CLKV_SOFT_HALF 0: vload_half, 1: bit operations) whatever
 * the device's quirk says, so the form a GPU builds is run on the test device too. */
Test(kernels, half_bits_exact_for_all_65536_values) {
  enum { N = 65536 };
  uint16_t *h = malloc(sizeof(uint16_t) * N);
  float *got = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
  const char *names[3] = {"clkv_selftest_half", "clkv_selftest_half8", "clkv_selftest_ld_half"};
  for (int soft = 0; soft < 2; soft++)
    for (int v = 0; v < 3; v++) {
      cl_kernel k;
      char opts[32];
      snprintf(opts, sizeof opts, "-DCLKV_SOFT_HALF=%d", soft);
      cr_assert_eq(clkv__kernel_create(rt, "selftest.cl", opts, names[v], &k, &err), CLKV_OK,
                   "%s", err.message);
      cl_mem H = buf_from(h, sizeof(uint16_t) * N), Y = buf_from(NULL, sizeof(float) * N);
      clkv__args a = clkv__args_begin(k);
      clkv__args_mem(&a, H);
      clkv__args_mem(&a, Y);
      clkv__args_u32(&a, N);
      cr_assert_eq(clkv__args_end(&a, &err), CLKV_OK, "%s", err.message);
      const size_t global = v == 1 ? N / 8 : N;
      cr_assert_eq(clkv__launch(rt, k, 1, &global, NULL, &err), CLKV_OK, "%s", err.message);
      read_buf(Y, got, sizeof(float) * N);
      for (int i = 0; i < N; i++) {
        const float want = clkv__fp16_to_fp32((uint16_t)i);
        uint32_t gb, wb;
        memcpy(&gb, &got[i], 4);
        memcpy(&wb, &want, 4);
        /* vload_half need not keep a nan's payload; the bit conversion does, but on x86 with
         * F16C (vcvtph2ps) a signalling nan comes back quiet (bit 22 set) */
        if (v && !soft && isnan(want) && isnan(got[i])) continue;
        if (isnan(want) && (gb | 0x00400000u) == (wb | 0x00400000u)) continue;
        cr_assert_eq(gb, wb, "%s, soft %d (0x%04x): got 0x%08x want 0x%08x", names[v], soft, i,
                     gb, wb);
      }
      clReleaseKernel(k);
      clReleaseMemObject(H);
      clReleaseMemObject(Y);
    }
  free(h);
  free(got);
}

/* Value d of row (kvh, slot) of a Q8/Q4/F16 block as documented in kernels/common.cl. */
static float kv_value(const uint8_t *blk, int type, int nkv, int bs, int hd, int kvh, int slot, int d) {
  const int row = kvh * bs + slot, qg = clkv__kv_qg(hd);
  if (type == CLKV_KV_F16) {
    uint16_t h;
    memcpy(&h, blk + ((size_t)row * hd + d) * 2, 2);
    return clkv__fp16_to_fp32(h);
  }
  const size_t qbytes = (size_t)nkv * bs * (type == CLKV_KV_Q8 ? hd : hd / 2);
  const int per = type == CLKV_KV_Q8 ? 1 : 2; /* halves per group: d, or d and m */
  uint16_t sh[2] = {0, 0};
  memcpy(sh, blk + qbytes + ((size_t)row * (hd / qg) * per + (size_t)(d / qg) * per) * 2, 2 * (size_t)per);
  const float s = clkv__fp16_to_fp32(sh[0]);
  if (type == CLKV_KV_Q8) return (float)(int8_t)blk[(size_t)row * hd + d] * s;
  const uint8_t b = blk[(size_t)row * (hd / 2) + d / 2];
  return (float)(d % 2 ? b >> 4 : b & 15) * s + clkv__fp16_to_fp32(sh[1]);
}

/* The QKV kernel writes a Q8/Q4 cache as the reference quantizes (scales per group, found
 * across the workgroup), and the attention kernels read back exactly the stored values.
 * shape NULL: the CLBlast prefill path writes the cache instead. */
static void check_quantized_kv(int type, int nh, int nkv, int hd, const clkv__mv_shape *shape) {
  static const clkv__mv_shape unused = {.ksplit = 1, .rg = 1, .rows = 2, .tt = 1};
  const int dim = nh * hd, bs = 8, n = 6, layer = 1;
  paged p;
  paged_init(&p, nh, nkv, hd, bs);
  const int q_rows = nh * hd, kv_rows = nkv * hd, rows = q_rows + 2 * kv_rows;
  float *deq = malloc(sizeof(float) * rows * dim), *x = malloc(sizeof(float) * n * dim);
  float *nw = malloc(sizeof(float) * dim), *y = malloc(sizeof(float) * rows);
  float *xn = malloc(sizeof(float) * dim);
  void *w = make_weights(GGML_T_Q8_0, rows, dim, deq);
  for (int i = 0; i < n * dim; i++) x[i] = frand();
  for (int i = 0; i < dim; i++) nw[i] = 1.0f + 0.1f * frand();
  int32_t seqs[6] = {0, 0, 0, 1, 1, 1}, poss[6] = {6, 7, 8, 14, 15, 16};
  float freq[128];
  for (int i = 0; i < hd / 2; i++) freq[i] = (float)pow(10000.0, -2.0 * i / hd);
  const size_t bb = clkv__kv_block_bytes(type, nkv, bs, hd), cache = 2 * (size_t)p.n_blocks * bb;
  uint8_t *kc = calloc(cache, 1), *vc = calloc(cache, 1);
  const clkv__mv_shape sh = clkv__matvec_fit(shape ? shape : &unused, CLKV__EPI_QKV, type, hd, 4096);
  if (type != CLKV_KV_F16)
    cr_assert_eq((sh.rg * clkv__matvec_rows(&sh, CLKV__EPI_QKV)) % (unsigned)clkv__kv_qg(hd), 0u);
  char opts[320];
  cl_kernel k = NULL;
  gemm_path g;
  if (shape) {
    clkv__matvec_options(&sh, GGML_T_Q8_0, CLKV__EPI_QKV, hd, nkv, bs, type, opts, sizeof opts);
    cr_assert_eq(clkv__kernel_create(rt, "matvec.cl", opts, "clkv_matvec", &k, &err), CLKV_OK, "%s", err.message);
  } else {
    gemm_path_init(&g, CLKV__GEMM_CLBLAST, GGML_T_Q8_0, CLKV__EPI_QKV, hd, nkv, bs, type, n, rows, dim);
  }
  cl_mem W = buf_from(w, clkv__ggml_row_bytes(GGML_T_Q8_0, dim) * rows), X = buf_from(x, sizeof(float) * n * dim),
         N = buf_from(nw, sizeof(float) * dim), Q = buf_from(NULL, sizeof(float) * n * q_rows),
         K = buf_from(kc, cache), V = buf_from(vc, cache), B = buf_from(p.btab, sizeof p.btab),
         S = buf_from(seqs, sizeof seqs), P = buf_from(poss, sizeof poss), F = buf_from(freq, sizeof freq);
  clkv__mv_args a = {.W = W, .rows = rows, .cols = dim, .X = X, .n_tok = n, .norm_w = N,
                     .eps = 1e-5f, .Y = Q, .kc = K, .vc = V, .btab = B, .tok_seq = S,
                     .tok_pos = P, .inv_freq = F, .q_rows = q_rows, .kv_rows = kv_rows,
                     .layer_base = (unsigned)(layer * p.n_blocks), .max_blocks = p.max_blocks};
  if (k) cr_assert_eq(clkv__matvec_enqueue(rt, k, &sh, CLKV__EPI_QKV, &a, &err), CLKV_OK, "%s", err.message);
  else gemm_path_run(&g, CLKV__EPI_QKV, &a);
  read_buf(K, kc, cache);
  read_buf(V, vc, cache);
  int exact = 0, total = 0;
  float *kstore = malloc(sizeof(float) * n * kv_rows), *vstore = malloc(sizeof(float) * n * kv_rows);
  for (int t = 0; t < n; t++) {
    ref_rmsnorm(xn, x + t * dim, nw, dim, 1e-5f);
    ref_matvec(deq, xn, y, rows, dim);
    for (int h = 0; h < nh + nkv; h++) ref_rope(y + h * hd, hd, poss[t], 10000.0f);
    const int blk = p.btab[seqs[t] * p.max_blocks + poss[t] / bs];
    for (int kv = 0; kv < 2; kv++)
      for (int h = 0; h < nkv; h++) {
        float want[256], exact_v[256];
        memcpy(exact_v, y + q_rows + kv * kv_rows + h * hd, sizeof(float) * hd);
        memcpy(want, exact_v, sizeof(float) * hd);
        if (type == CLKV_KV_F16)
          for (int d = 0; d < hd; d++) want[d] = ref_round_f16(want[d]);
        else
          ref_kv_quantize(want, hd, clkv__kv_qg(hd), type);
        const uint8_t *base = (kv ? vc : kc) + ((size_t)layer * p.n_blocks + blk) * bb;
        for (int d = 0; d < hd; d++) {
          float got = kv_value(base, type, nkv, bs, hd, h, poss[t] % bs, d);
          (kv ? vstore : kstore)[(t * nkv + h) * hd + d] = got;
          /* the step of this group: no value is further than half a step (plus the
           * rounding of the scale and offset to half) */
          float lo = INFINITY, hi = -INFINITY;
          const int g0 = d / clkv__kv_qg(hd) * clkv__kv_qg(hd);
          for (int j = g0; j < g0 + clkv__kv_qg(hd); j++) lo = fminf(lo, exact_v[j]), hi = fmaxf(hi, exact_v[j]);
          const float amax = fmaxf(-lo, hi);
          const float step = type == CLKV_KV_F16 ? 2e-3f * fabsf(exact_v[d])
                             : type == CLKV_KV_Q8 ? amax / 127.0f : (hi - lo) / 15.0f;
          cr_assert(fabsf(got - exact_v[d]) <= 0.5f * step * 1.01f + 2e-3f * amax + 1e-5f,
                    "%s t%d kv%d h%d d%d: %g vs exact %g (step %g)", clkv_kv_type_name(type), t,
                    kv, h, d, got, exact_v[d], step);
          exact += got == want[d];
          total++;
        }
      }
  }
  cr_assert_geq(exact * 100, total * 99, "%s: only %d of %d values as the reference quantizes",
                clkv_kv_type_name(type), exact, total);
  /* layer 0 untouched */
  for (size_t i = 0; i < (size_t)p.n_blocks * bb; i++) cr_assert_eq(kc[i], 0, "layer 0 written at %zu", i);

  /* attention (decode) of the 3rd and 6th token over the stored values */
  clkv__tunables tun = {.att_wg = 4, .tq = 8, .tk = 8};
  clkv__attn_options(&tun, hd, nkv, nh, bs, type, 0, opts, sizeof opts);
  cl_kernel ka;
  cr_assert_eq(clkv__kernel_create(rt, "attention.cl", opts, "clkv_attn_paged", &ka, &err), CLKV_OK, "%s", err.message);
  float *q = malloc(sizeof(float) * n * q_rows), *got = malloc(sizeof(float) * n * q_rows),
        *want = malloc(sizeof(float) * n * q_rows);
  for (int i = 0; i < n * q_rows; i++) q[i] = frand();
  /* positions 6..8 of sequence 0 and 14..16 of sequence 1 were written; attend with a
   * sliding start: token t sees only its own sequence's written positions */
  int32_t aseq[2] = {0, 1}, apos[2] = {8, 16};
  /* earlier positions than those written are zero in the cache: they hold value 0 */
  for (int i = 0; i < 2; i++) {
    const int t0 = i * 3, npos = apos[i] + 1;
    float *kk = calloc((size_t)npos * kv_rows, sizeof(float)), *vv = calloc((size_t)npos * kv_rows, sizeof(float));
    for (int j = 0; j < 3; j++)
      for (int r = 0; r < kv_rows; r++) {
        kk[(size_t)(apos[i] - 2 + j) * kv_rows + r] = kstore[(t0 + j) * kv_rows + r];
        vv[(size_t)(apos[i] - 2 + j) * kv_rows + r] = vstore[(t0 + j) * kv_rows + r];
      }
    for (int h = 0; h < nh; h++)
      ref_attention_head(want + (i * nh + h) * hd, q + (i * nh + h) * hd,
                         kk + h / (nh / nkv) * hd, vv + h / (nh / nkv) * hd, npos, hd, kv_rows, kv_rows);
    free(kk);
    free(vv);
  }
  cl_mem Q2 = buf_from(q, sizeof(float) * 2 * q_rows), S2 = buf_from(aseq, sizeof aseq),
         P2 = buf_from(apos, sizeof apos), O = buf_from(NULL, sizeof(float) * 2 * q_rows);
  clkv__attn_args aa = {.Q = Q2, .kc = K, .vc = V, .btab = B, .tok_seq = S2, .tok_pos = P2,
                        .n_tok = 2, .n_heads = (unsigned)nh,
                        .layer_base = (unsigned)(layer * p.n_blocks),
                        .max_blocks = (unsigned)p.max_blocks, .scale = 1.0f / sqrtf((float)hd), .O = O};
  /* unwritten positions of the cache are zero bytes: every type reads 0 there */
  cr_assert_eq(clkv__attn_enqueue(rt, ka, &tun, 0, &aa, &err), CLKV_OK, "%s", err.message);
  read_buf(O, got, sizeof(float) * 2 * q_rows);
  for (int i = 0; i < 2 * q_rows; i++) /* ref scales q internally */
    cr_assert(fabsf(got[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])), "%s attention %d: %g vs %g",
              clkv_kv_type_name(type), i, got[i], want[i]);
  if (k) clReleaseKernel(k);
  else gemm_path_free(&g);
  clReleaseKernel(ka);
  cl_mem all[] = {W, X, N, Q, K, V, B, S, P, F, Q2, S2, P2, O};
  for (int i = 0; i < 14; i++) clReleaseMemObject(all[i]);
  free(kc); free(vc); free(kstore); free(vstore); free(q); free(got); free(want);
  free(w); free(deq); free(x); free(nw); free(y); free(xn);
}

Test(kernels, quantized_kv_written_by_qkv_and_read_by_attention) {
  const clkv__mv_shape shapes[] = {{.ksplit = 1, .rg = 4, .rows = 2, .tt = 1},
                                   {.ksplit = 4, .rg = 2, .rows = 2, .tt = 4},
                                   {.ksplit = 2, .rg = 3, .rows = 4, .tt = 2},
                                   {.ksplit = 1, .rg = 2, .rows = 2, .tt = 8, .form = 2}};
  for (int type = CLKV_KV_Q8; type <= CLKV_KV_Q4; type++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      check_quantized_kv(type, 4, 2, 16, &shapes[s]); /* one group per head row */
      check_quantized_kv(type, 2, 1, 64, &shapes[s]); /* two groups of 32 per row */
    }
  /* the F16 layout through the same readers */
  check_quantized_kv(CLKV_KV_F16, 4, 2, 16, &shapes[0]);
}

Test(kernels, quantized_kv_written_by_the_clblast_prefill_path) {
  char why[256];
  if (!clkv__gemm_available(rt, CLKV__GEMM_CLBLAST, why, sizeof why)) cr_skip_test("%s", why);
  for (int type = CLKV_KV_F16; type <= CLKV_KV_Q4; type++) {
    check_quantized_kv(type, 4, 2, 16, NULL);
    check_quantized_kv(type, 2, 1, 64, NULL);
  }
}

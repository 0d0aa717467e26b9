/* bench_ops.c — `clkv_bench ops`: each kernel of the forward pass alone, over the cases of the
 * kernel tests (tests/kernel_cases.c) at the default model's shapes (every runnable weight
 * type's mat-vec for decode and a prefill chunk, the prefill chunk also through the CLBlast
 * GEMM path; paged decode and tiled prefill attention at several contexts), launched through
 * host/ops/ops.c and host/ops/gemm.c with the default tunables; achieved GB/s and GFLOP/s
 * against the device's measured bandwidth and fp32 compute, and the CLBlast/own speed ratio
 * of each prefill case. */
#include "bench_peaks.h"
#include "bench_util.h"
#include "kernel_cases.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* host/tunables.c */
void clkv__default_tunables(const clkv_device_info *d, clkv__tunables *t);

typedef struct ops_opts {
  const char *device;
  int json, quick;
  double target_s;
  int reps;
  const char *only; /* "matvec" or "attention": that family alone, or NULL */
  const char *types; /* comma-separated weight type names: the mat-vecs of these alone, or NULL */
  int decode;        /* the decode cases alone (no prefill, no CLBlast) */
} ops_opts;

typedef struct op_result {
  char op[24], type[8], shape[24];
  int tokens;
  int gemm;             /* CLKV__GEMM_*: the prefill path a matvec row was timed on */
  int own;              /* a CLBlast row: the index of the same case on our matvec */
  double seconds, bytes, flops;
  double spread;        /* of seconds: 1.4826 × MAD over the repetitions */
} op_result;

/* One timed case: `launches` enqueues of the op back to back between two profiling markers;
 * the time per launch is (end marker − start marker) / launches, which counts the device's
 * own gaps between launches as the engine sees them. */
typedef struct op_case {
  clkv_runtime *rt;
  cl_kernel k;
  const clkv__tunables *tun;
  int is_attn, prefill, epi;
  clkv__mv_args mv;
  clkv__attn_args at;
  int gemm;                      /* CLKV__GEMM_OWN, or the CLBlast mode of g and gs */
  const clkv__gemm_kernels *g;
  const clkv__gemm_scratch *gs;
  int launches;
} op_case;

static clkv_status enqueue_once(op_case *c, clkv_error *err) {
  if (c->is_attn) return clkv__attn_enqueue(c->rt, c->k, c->tun, c->prefill, &c->at, err);
  int touched;
  if (c->gemm) return clkv__gemm_enqueue(c->rt, c->g, c->gemm, c->gs, c->epi, &c->mv, &touched, err);
  return clkv__matvec_enqueue(c->rt, c->k, &c->tun->mv[c->prefill], c->epi, &c->mv, err);
}

static clkv_status case_op(void *user, double *seconds, clkv_error *err) {
  op_case *c = user;
  clkv_status st = CLKV_OK;
  cl_event a = NULL, b = NULL;
  cl_ulong t0 = 0, t1 = 0;
  double wall = bench_now_s();
  CLKV_CL_TRY(clEnqueueMarkerWithWaitList(c->rt->queue, 0, NULL, &a));
  for (int i = 0; i < c->launches; ++i) CLKV_TRY(enqueue_once(c, err));
  CLKV_CL_TRY(clEnqueueMarkerWithWaitList(c->rt->queue, 0, NULL, &b));
  CLKV_CL_TRY(clFinish(c->rt->queue));
  if (!c->rt->profiling) { /* events wrong here (rt->timer_note): the wall clock */
    *seconds = (bench_now_s() - wall) / c->launches;
    goto fail;
  }
  CLKV_CL_TRY(clGetEventProfilingInfo(a, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL));
  CLKV_CL_TRY(clGetEventProfilingInfo(b, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL));
  *seconds = (double)(t1 - t0) * 1e-9 / c->launches;
fail:
  if (a) clReleaseEvent(a);
  if (b) clReleaseEvent(b);
  return st;
}

/* The median time per launch and its spread: repetitions again (up to 3 measurements in all)
 * while the spread is above 5% of the median, keeping the measurement with the least. */
static clkv_status time_case(op_case *c, const ops_opts *o, double *seconds, double *spread,
                             clkv_error *err) {
  clkv_status st = CLKV_OK;
  double t;
  c->launches = 1;
  CLKV_TRY(case_op(c, &t, err)); /* first launch: page faults, lazy setup */
  CLKV_TRY(case_op(c, &t, err));
  /* batch short ops so that a batch lasts about a millisecond */
  c->launches = t > 0 && t < 1e-3 ? (int)fmin(64, ceil(1e-3 / t)) : 1;
  *spread = INFINITY, *seconds = 0;
  for (int m = 0; m < 3 && *spread > 0.05 * *seconds; ++m) {
    bench_time bt;
    CLKV_TRY(bench_measure(case_op, c, o->target_s, o->reps, &bt, err));
    if (m == 0 || bt.spread_s / bt.median_s < *spread / *seconds)
      *seconds = bt.median_s, *spread = bt.spread_s;
  }
fail:
  return st;
}

static cl_mem filled(clkv_runtime *rt, size_t bytes, const void *pattern, size_t psize,
                     clkv_error *err) {
  cl_int e;
  cl_mem b = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, bytes, NULL, &e);
  if (e == CL_SUCCESS && pattern)
    e = clEnqueueFillBuffer(rt->queue, b, pattern, psize, 0, bytes, 0, NULL, NULL);
  if (e != CL_SUCCESS) {
    if (b) clReleaseMemObject(b);
    clkv__err(err, CLKV_ERR_DEVICE_MEMORY, "cannot create a %zu-byte buffer (CL error %d); "
              "run with --quick or on a device with more memory", bytes, (int)e);
    return NULL;
  }
  return b;
}

/* rows × cols weights of type t: 16 random rows quantized with clkv__quantize_row, repeated. */
static cl_mem make_weights(clkv_runtime *rt, uint32_t t, unsigned rows, unsigned cols,
                           size_t *bytes, clkv_error *err) {
  size_t rb = clkv__ggml_row_bytes(t, cols);
  unsigned char *w = malloc(rb * rows);
  float *row = malloc(sizeof(float) * cols);
  cl_mem b = NULL;
  if (!w || !row) {
    clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory for %u×%u weights", rows, cols);
    goto done;
  }
  uint64_t s = 99;
  for (unsigned r = 0; r < rows && r < 16; ++r) {
    for (unsigned c = 0; c < cols; ++c) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      row[c] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
    }
    clkv__quantize_row(t, row, w + rb * r, cols);
  }
  for (unsigned r = 16; r < rows; ++r) memcpy(w + rb * r, w + rb * (r % 16), rb);
  cl_int e;
  b = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, rb * rows, w, &e);
  if (e != CL_SUCCESS) {
    b = NULL;
    clkv__err(err, CLKV_ERR_DEVICE_MEMORY, "cannot upload %zu bytes of weights (CL error %d)",
              rb * rows, (int)e);
  }
  *bytes = rb * rows;
done:
  free(w);
  free(row);
  return b;
}

/* Times the prefill case c through each CLBlast mode the device can run; a row per mode. */
static clkv_status bench_gemm_modes(clkv_runtime *rt, op_case *c, const clkv__gemm_scratch *gs,
                                    uint32_t wtype, const op_result *own, const ops_opts *o,
                                    op_result *res, int *n_res, clkv_error *err) {
  clkv_status st = CLKV_OK;
  clkv__gemm_kernels g = {0};
  for (int mode = CLKV__GEMM_CLBLAST; mode < CLKV__GEMM_MODES; mode++) {
    if (!clkv__gemm_available(rt, mode, NULL, 0)) continue;
    char opts[256];
    clkv__gemm_options(mode, wtype, c->epi, KC_HEAD_DIM, KC_N_KV, KC_KV_BS, CLKV_KV_F16, opts,
                       sizeof opts);
    CLKV_TRY(clkv__gemm_kernels_create(rt, opts, &g, err));
    op_case gc = *c;
    gc.gemm = mode;
    gc.g = &g;
    gc.gs = gs;
    op_result *r = &res[(*n_res)++];
    *r = *own;
    r->gemm = mode;
    r->own = (int)(own - res);
    snprintf(r->op, sizeof r->op, "%s prefill", clkv__gemm_mode_name(mode));
    CLKV_TRY(time_case(&gc, o, &r->seconds, &r->spread, err));
    clkv__gemm_kernels_release(&g);
  }
fail:
  clkv__gemm_kernels_release(&g);
  return st;
}

/* The buffers every mat-vec case shares: input, output, norm weight, CLBlast scratch. */
typedef struct mv_bufs {
  cl_mem X, Y, N;
  clkv__gemm_scratch gs;
} mv_bufs;

/* Mat-vec case c in type wtype with weights W (wbytes): decode (1 token) and, unless the case
 * is decode-only, a prefill chunk on our kernel and on each CLBlast mode. */
static clkv_status bench_matvec_case(clkv_runtime *rt, const clkv__tunables *tun, const kc_matvec *kc,
                                     uint32_t wtype, cl_mem W, size_t wbytes, const mv_bufs *b,
                                     const ops_opts *o, op_result *res, int *n_res, clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_kernel k = NULL;
  for (int ph = 0; ph < 2; ++ph) {
    if (ph == CLKV__PH_PREFILL && (kc->decode_only || o->decode)) continue;
    unsigned n_tok = ph == CLKV__PH_PREFILL ? KC_CHUNK : 1;
    char opts[256];
    clkv__matvec_options(&tun->mv[ph], wtype, kc->epi, KC_HEAD_DIM, KC_N_KV, KC_KV_BS, CLKV_KV_F16,
                         opts, sizeof opts);
    CLKV_TRY(clkv__kernel_create(rt, "matvec.cl", opts, "clkv_matvec", &k, err));
    op_case c = {.rt = rt, .k = k, .tun = tun, .prefill = ph, .epi = kc->epi,
                 .mv = {.W = W, .rows = kc->rows, .cols = kc->cols, .X = b->X, .n_tok = n_tok,
                        .norm_w = b->N, .eps = 1e-5f, .Y = b->Y, .kc = b->X, .vc = b->X,
                        .btab = b->X, .tok_seq = b->X, .tok_pos = b->X, .inv_freq = b->X}};
    op_result *r = &res[(*n_res)++];
    snprintf(r->op, sizeof r->op, "matvec %s", ph ? "prefill" : "decode");
    snprintf(r->type, sizeof r->type, "%s", clkv__ggml_type_get(wtype)->name);
    snprintf(r->shape, sizeof r->shape, "%ux%u", kc->rows, kc->cols);
    r->tokens = (int)n_tok;
    r->gemm = CLKV__GEMM_OWN;
    /* weights once, the input, the output (read and written by the add epilogue, half the
     * rows for SwiGLU) */
    const double rows = kc->rows;
    double out = kc->epi == CLKV__EPI_ADD ? 2.0 * rows : kc->epi == CLKV__EPI_SWIGLU ? rows / 2.0 : rows;
    r->bytes = (double)wbytes + 4.0 * n_tok * kc->cols + 4.0 * n_tok * out;
    r->flops = 2.0 * rows * kc->cols * n_tok;
    CLKV_TRY(time_case(&c, o, &r->seconds, &r->spread, err));
    if (ph == CLKV__PH_PREFILL)
      CLKV_TRY(bench_gemm_modes(rt, &c, &b->gs, wtype, r, o, res, n_res, err));
    clReleaseKernel(k);
    k = NULL;
  }
fail:
  if (k) clReleaseKernel(k);
  return st;
}

/* Whether name is one of the comma-separated names of list (case-insensitive). */
static int type_listed(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncasecmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* Every mat-vec case of kernel_cases.c in every runnable type (--quick: the decode-only
 * logits case in Q4_1 only). */
static clkv_status bench_matvec(clkv_runtime *rt, const clkv__tunables *tun, const ops_opts *o,
                                op_result *res, int *n_res, clkv_error *err) {
  clkv_status st = CLKV_OK;
  const float half = 0.5f, one = 1.0f;
  unsigned max_rows = 0, max_cols = 0, pf_rows = 0, pf_cols = 0; /* all cases; prefill ones */
  for (size_t i = 0; i < kc_n_matvecs; ++i) {
    const kc_matvec *kc = &kc_matvecs[i];
    max_rows = kc->rows > max_rows ? kc->rows : max_rows;
    max_cols = kc->cols > max_cols ? kc->cols : max_cols;
    pf_rows = !kc->decode_only && kc->rows > pf_rows ? kc->rows : pf_rows;
    pf_cols = !kc->decode_only && kc->cols > pf_cols ? kc->cols : pf_cols;
  }
  mv_bufs b = {0};
  cl_mem W = NULL;
  CLKV_TRY(clkv__gemm_scratch_init(rt, KC_CHUNK, pf_rows, pf_cols, &b.gs, err));
  CLKV_TRY((b.X = filled(rt, sizeof(float) * KC_CHUNK * max_cols, &half, 4, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.Y = filled(rt, sizeof(float) * KC_CHUNK * max_rows, &half, 4, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.N = filled(rt, sizeof(float) * max_cols, &one, 4, err)) ? CLKV_OK : err->status);
  for (int t = 0; t < CLKV__N_WTYPES; ++t) {
    for (size_t i = 0; i < kc_n_matvecs; ++i) {
      kc_matvec kc_t = kc_matvecs[i]; /* at whole blocks of the type */
      kc_t.cols = kc_cols(kc_t.cols, kc_wtype(t));
      const kc_matvec *kc = &kc_t;
      if (o->quick && kc->decode_only && kc_wtype(t) != GGML_T_Q4_1) continue;
      if (o->types && !type_listed(o->types, clkv__ggml_type_get(kc_wtype(t))->name)) continue;
      size_t wbytes = 0;
      CLKV_TRY((W = make_weights(rt, kc_wtype(t), kc->rows, kc->cols, &wbytes, err)) ? CLKV_OK
                                                                                   : err->status);
      CLKV_TRY(bench_matvec_case(rt, tun, kc, kc_wtype(t), W, wbytes, &b, o, res, n_res, err));
      clReleaseMemObject(W);
      W = NULL;
    }
  }
fail:
  clkv__gemm_scratch_release(&b.gs);
  cl_mem all[] = {W, b.N, b.Y, b.X};
  for (int i = 0; i < 4; ++i)
    if (all[i]) clReleaseMemObject(all[i]);
  return st;
}

/* The buffers of the attention cases: one sequence's K and V (F16, every value 0.1) with
 * blocks in order, queries, output, its token's sequence and position. */
typedef struct attn_bufs {
  cl_mem Q, O, K, V, B, S, P;
  unsigned max_blocks;
} attn_bufs;

/* Attention kernel a over one sequence of ctx positions: decode of the last position, or
 * prefill of the last KC_CHUNK positions (causal). */
static clkv_status bench_attention_case(clkv_runtime *rt, const clkv__tunables *tun, cl_kernel k,
                                        const kc_attn *a, unsigned ctx, const attn_bufs *b,
                                        const ops_opts *o, op_result *res, int *n_res,
                                        clkv_error *err) {
  clkv_status st = CLKV_OK;
  const unsigned n_tok = a->prefill ? KC_CHUNK : 1;
  int32_t pos = (int32_t)ctx - 1;
  CLKV_CL_TRY(clEnqueueWriteBuffer(rt->queue, b->P, CL_TRUE, 0, 4, &pos, 0, NULL, NULL));
  op_case c = {.rt = rt, .k = k, .tun = tun, .is_attn = 1, .prefill = a->prefill,
               .at = {.Q = b->Q, .kc = b->K, .vc = b->V, .btab = b->B, .tok_seq = b->S,
                      .tok_pos = b->P, .seq = 0, .pos0 = ctx - n_tok, .n_tok = n_tok,
                      .n_heads = KC_N_HEADS, .layer_base = 0, .max_blocks = b->max_blocks,
                      .scale = 1.0f / sqrtf((float)KC_HEAD_DIM), .O = b->O}};
  op_result *r = &res[(*n_res)++];
  snprintf(r->op, sizeof r->op, "attention %s", a->prefill ? "prefill" : "decode");
  snprintf(r->type, sizeof r->type, "F16 KV");
  snprintf(r->shape, sizeof r->shape, "ctx %u", ctx);
  r->tokens = (int)n_tok;
  /* K and V of the context once, Q in, O out; QK and PV: 4 flops per head element per
   * (query, key) pair, causal for prefill */
  double pairs = a->prefill ? (double)n_tok * (ctx - n_tok) + n_tok * (n_tok + 1) / 2.0 : ctx;
  r->bytes = 2.0 * ctx * KC_N_KV * KC_HEAD_DIM * 2 + 2.0 * n_tok * KC_N_HEADS * KC_HEAD_DIM * 4;
  r->flops = 4.0 * pairs * KC_N_HEADS * KC_HEAD_DIM;
  CLKV_TRY(time_case(&c, o, &r->seconds, &r->spread, err));
fail:
  return st;
}

/* Each attention kernel of kernel_cases.c at each benchmark context (--quick: not the
 * largest). */
static clkv_status bench_attention(clkv_runtime *rt, const clkv__tunables *tun,
                                   const ops_opts *o, op_result *res, int *n_res,
                                   clkv_error *err) {
  clkv_status st = CLKV_OK;
  unsigned max_ctx = 0;
  for (size_t i = 0; i < kc_n_bench_ctx; ++i) max_ctx = kc_bench_ctx[i] > max_ctx ? kc_bench_ctx[i] : max_ctx;
  attn_bufs b = {.max_blocks = (max_ctx + KC_KV_BS - 1) / KC_KV_BS};
  const size_t kv_bytes = (size_t)b.max_blocks * KC_KV_BS * KC_N_KV * KC_HEAD_DIM * 2;
  const size_t qo = sizeof(float) * KC_CHUNK * KC_N_HEADS * KC_HEAD_DIM;
  const uint16_t h = 0x2E66; /* 0.1 in fp16 */
  const float q = 0.1f;
  int32_t zero = 0, *btab = malloc(sizeof(int32_t) * b.max_blocks);
  cl_kernel k = NULL;
  if (!btab) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory");
  for (unsigned i = 0; i < b.max_blocks; ++i) btab[i] = (int32_t)i;
  CLKV_TRY((b.Q = filled(rt, qo, &q, 4, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.O = filled(rt, qo, NULL, 0, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.K = filled(rt, kv_bytes, &h, 2, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.V = filled(rt, kv_bytes, &h, 2, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.B = filled(rt, sizeof(int32_t) * b.max_blocks, NULL, 0, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.S = filled(rt, sizeof zero, &zero, 4, err)) ? CLKV_OK : err->status);
  CLKV_TRY((b.P = filled(rt, sizeof zero, NULL, 0, err)) ? CLKV_OK : err->status);
  CLKV_CL_TRY(clEnqueueWriteBuffer(rt->queue, b.B, CL_TRUE, 0, sizeof(int32_t) * b.max_blocks, btab,
                                   0, NULL, NULL));
  char opts[256];
  clkv__attn_options(tun, KC_HEAD_DIM, KC_N_KV, KC_N_HEADS, KC_KV_BS, CLKV_KV_F16, 0, opts,
                     sizeof opts);
  for (size_t a = 0; a < kc_n_attns; ++a) {
    CLKV_TRY(clkv__kernel_create(rt, "attention.cl", opts, kc_attns[a].kernel, &k, err));
    for (size_t i = 0; i < kc_n_bench_ctx; ++i)
      if (!(o->quick && kc_bench_ctx[i] == max_ctx))
        CLKV_TRY(bench_attention_case(rt, tun, k, &kc_attns[a], kc_bench_ctx[i], &b, o, res, n_res, err));
    clReleaseKernel(k);
    k = NULL;
  }
fail:
  if (k) clReleaseKernel(k);
  cl_mem all[] = {b.P, b.S, b.B, b.V, b.K, b.O, b.Q};
  for (int i = 0; i < 7; ++i)
    if (all[i]) clReleaseMemObject(all[i]);
  free(btab);
  return st;
}

/* The prefill cases side by side: our matvec and each CLBlast mode, GFLOP/s and the speed
 * ratio (above 1: CLBlast is faster). */
static void print_gemm_table(const op_result *res, int n, const char *why) {
  printf("\nprefill GEMM: own quantized matvec vs CLBlast on weights dequantized by row tiles\n");
  if (why[0]) {
    printf("CLBlast: %s\n", why);
    return;
  }
  printf("%-10s %-7s %-11s %6s %11s %11s %9s %9s %7s\n", "path", "type", "shape", "tokens",
         "own us", "path us", "own GF/s", "path GF/s", "speedup");
  for (int i = 0; i < n; ++i) {
    const op_result *r = &res[i];
    if (r->gemm == CLKV__GEMM_OWN) continue;
    const op_result *w = &res[r->own];
    printf("%-10s %-7s %-11s %6d %11.1f %11.1f %9.2f %9.2f %6.2fx\n",
           clkv__gemm_mode_name(r->gemm), r->type, r->shape, r->tokens, w->seconds * 1e6,
           r->seconds * 1e6, w->flops / w->seconds * 1e-9, r->flops / r->seconds * 1e-9,
           w->seconds / r->seconds);
  }
}

static void json_gemm(bench_json *j, const op_result *res, int n, const char *why) {
  bench_json_object(j, "prefill_gemm");
  if (why[0]) bench_json_str(j, "unavailable", why);
  for (int i = 0; i < n; ++i) {
    const op_result *r = &res[i];
    if (r->gemm == CLKV__GEMM_OWN) continue;
    const op_result *w = &res[r->own];
    char key[80];
    snprintf(key, sizeof key, "%s %.7s %.23s x%d", clkv__gemm_mode_name(r->gemm), r->type,
             r->shape, r->tokens);
    bench_json_object(j, key);
    bench_json_num(j, "own_us", w->seconds * 1e6);
    bench_json_num(j, "path_us", r->seconds * 1e6);
    bench_json_num(j, "own_gflops", w->flops / w->seconds * 1e-9);
    bench_json_num(j, "path_gflops", r->flops / r->seconds * 1e-9);
    bench_json_num(j, "speedup", w->seconds / r->seconds);
    bench_json_close(j);
  }
  bench_json_close(j);
}

static void usage(FILE *f) {
  fprintf(f, "usage: clkv_bench ops [--json] [--quick] [--device D] [--only matvec|attention]\n"
             "                      [--types T[,T...]] [--decode]\n"
             "  --json    one JSON object on stdout instead of the table\n"
             "  --quick   fewer cases (the output projection in Q4_1 only, contexts up to 512),\n"
             "            shorter timings: a smoke test\n"
             "  --only F  the mat-vec or the attention cases alone\n"
             "  --types T the mat-vecs in these weight types alone (e.g. Q4_K,Q6_K)\n"
             "  --decode  the decode cases alone (no prefill, no CLBlast)\n");
}

/* The results: a table (or one JSON object) of every case, then the prefill GEMM comparison. */
static void report(const op_result *res, int n, const bench_peaks *pk, const clkv_device_info *d,
                   const clkv__tunables *tun, const ops_opts *o, const char *why) {
  bench_json j;
  if (o->json) {
    bench_json_begin(&j, stdout);
    bench_json_object(&j, "device");
    bench_json_str(&j, "name", d->name);
    bench_json_num(&j, "measured_gbps", pk->gbps);
    bench_json_num(&j, "measured_fp32_gflops", pk->gflops);
    bench_json_close(&j);
    bench_peaks_json(&j, pk);
    bench_json_object(&j, "ops");
  } else {
    printf("clkv_bench ops: %s\n", d->name);
    bench_peaks_print(stdout, pk);
    printf("%%BW: of the read limit for the op's bytes as a working set read over and over (the "
           "cache's bandwidth when it fits; BW lim); %%CP: of the faster of fp32 and int8\n"
           "decode mat-vec shape: %u/%u/%u/%u (ksplit/rg/rows/tt), prefill %u/%u/%u/%u, "
           "attention wg %u, tiles %u/%u\n\n",
           tun->mv[0].ksplit, tun->mv[0].rg, tun->mv[0].rows,
           tun->mv[0].tt, tun->mv[1].ksplit, tun->mv[1].rg, tun->mv[1].rows, tun->mv[1].tt,
           tun->att_wg, tun->tq, tun->tk);
    printf("%-18s %-7s %-11s %6s %11s %5s %9s %9s %6s %9s %6s\n", "op", "type", "shape", "tokens",
           "time us", "±%", "GB/s", "BW lim", "%BW", "GFLOP/s", "%CP");
  }
  for (int i = 0; i < n; ++i) {
    const op_result *r = &res[i];
    double gbps = r->bytes / r->seconds * 1e-9, gflops = r->flops / r->seconds * 1e-9;
    /* the same weights are read launch after launch: a small op reads them from cache */
    double bw_lim = bench_peaks_read_gbps(pk, r->bytes, o->quick ? 0.01 : 0.03);
    if (o->json) {
      char key[80];
      snprintf(key, sizeof key, "%.23s %.7s %.23s x%d", r->op, r->type, r->shape, r->tokens);
      bench_json_object(&j, key);
      bench_json_num(&j, "median_us", r->seconds * 1e6);
      bench_json_num(&j, "spread_us", r->spread * 1e6);
      bench_json_num(&j, "bytes", r->bytes);
      bench_json_num(&j, "flops", r->flops);
      bench_json_num(&j, "gbps", gbps);
      bench_json_num(&j, "gflops", gflops);
      bench_json_num(&j, "read_limit_gbps", bw_lim);
      bench_json_num(&j, "bandwidth_fraction", gbps / bw_lim);
      bench_json_num(&j, "compute_fraction", gflops / pk->compute);
      bench_json_close(&j);
    } else {
      printf("%-18s %-7s %-11s %6d %11.1f %5.1f %9.2f %9.1f %5.0f%% %9.2f %5.0f%%\n", r->op,
             r->type, r->shape, r->tokens, r->seconds * 1e6, 100 * r->spread / r->seconds, gbps,
             bw_lim, 100 * gbps / bw_lim, gflops,
             100 * gflops / pk->compute);
    }
  }
  if (o->json) {
    bench_json_close(&j);
    json_gemm(&j, res, n, why);
    bench_json_end(&j);
  } else {
    print_gemm_table(res, n, why);
  }
}

int bench_ops_main(int argc, char **argv) {
  ops_opts o = {NULL, 0, 0, 0.1, 5, NULL, NULL, 0};
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--json")) o.json = 1;
    else if (!strcmp(argv[i], "--quick")) o.quick = 1;
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) o.device = argv[++i];
    else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "matvec") || !strcmp(argv[i + 1], "attention")))
      o.only = argv[++i];
    else if (!strcmp(argv[i], "--types") && i + 1 < argc) o.types = argv[++i];
    else if (!strcmp(argv[i], "--decode")) o.decode = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "clkv_bench ops: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (o.quick) o.target_s = 0.03;
  clkv_error err;
  clkv_runtime *rt = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o.device;
  rp.profiling = 1;
  if (clkv_runtime_create(&rp, &rt, &err)) {
    fprintf(stderr, "clkv_bench ops: %s\n", err.message);
    return 1;
  }
  fprintf(stderr, "clkv_bench: %s\n", rt->timer_note); /* events or the wall clock */
  clkv__tunables tun;
  clkv__default_tunables(&rt->info, &tun);
  /* a row per mat-vec case, type and phase plus one per CLBlast mode; a row per attention
   * case; all zero, so gemm = own in every row not timed through CLBlast */
  op_result *res = calloc(CLKV__N_WTYPES * kc_n_matvecs * (1 + CLKV__GEMM_MODES) +
                              kc_n_attns * kc_n_bench_ctx, sizeof *res);
  if (!res) {
    fprintf(stderr, "clkv_bench ops: out of host memory\n");
    clkv_runtime_free(rt);
    return 1;
  }
  char why[256] = ""; /* why no CLBlast mode runs here */
  clkv__gemm_available(rt, CLKV__GEMM_CLBLAST, why, sizeof why);
  int n = 0, rc = 1;
  bench_peaks pk;
  fprintf(stderr, "clkv_bench ops: measuring the device, then the mat-vecs and attention...\n");
  if (bench_device_peaks(rt, o.quick ? 0.02 : 0.05, &pk, &err) ||
      (!(o.only && strcmp(o.only, "matvec")) && bench_matvec(rt, &tun, &o, res, &n, &err)) ||
      (!(o.only && strcmp(o.only, "attention")) && bench_attention(rt, &tun, &o, res, &n, &err))) {
    fprintf(stderr, "clkv_bench ops: %s\n", err.message);
    goto done;
  }
  report(res, n, &pk, clkv_runtime_device(rt), &tun, &o, why);
  rc = 0;
done:
  free(res);
  clkv_runtime_free(rt);
  return rc;
}

/* tuner.c — the autotuner: for one model's shapes, each projection's prefill path (our
 * matvec or CLBlast), then a greedy search, kernel by kernel, over the search values of
 * CLKV__TUNABLES. Every candidate is checked against plain C before it is timed; the defaults
 * are timed first and a candidate replaces the best only if faster beyond the spread of the
 * repeated timings of both (clkv__tune_beats), so the tuned shapes are never slower than the
 * defaults and noise is not reported as a gain. */
#include "tune/tuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_PREFILL 64  /* tokens of the timed prefill matvecs and attention */
#define ATT_CTX 512   /* cached positions the attention reads */
#define KV_BS 16
#define N_RUNS 5      /* timed runs per candidate (median), after one warm-up ... */
#define N_RUNS_MAX 15 /* ... and up to this many while the spread is above SPREAD_OK */
#define SPREAD_OK 0.03 /* spread / median */

typedef struct mv_problem {
  unsigned rows, cols;
  int epi;                  /* STORE (normed input) or ADD (Y += W·x) */
  cl_mem W;
  float *ref[2];            /* [phase] expected Y, (n_tok, rows) */
} mv_problem;

typedef struct bench {
  clkv_runtime *rt;
  uint32_t wtype;
  int nh, nkv, hd;
  mv_problem p[4];
  cl_mem X, N, Y, dummy;
  clkv__gemm_scratch gs;    /* the prefill GEMM path's scratch */
  cl_mem Q, K, V, B, S, P, O;
  float *att_ref[2];        /* [prefill] expected O */
  double t0, budget_ms;
  double cap;      /* share of the budget the current search stage may use up to (0..1] */
  int wall;
  unsigned checked, done, total;
  clkv__tune_progress progress;
  void *user;
} bench;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static float frand(void) { /* uniform in [-1, 1) */
  rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static clkv_status upload(clkv_runtime *rt, const void *data, size_t bytes, cl_mem *out,
                          clkv_error *err) {
  clkv_status st = CLKV_OK;
  CLKV_CL_CREATE(*out, clCreateBuffer(rt->context,
                                      CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0),
                                      bytes, (void *)data, &clkv__e));
fail:
  return st;
}

static void rmsnorm(float *o, const float *x, const float *w, unsigned n) {
  double ss = 0;
  for (unsigned i = 0; i < n; i++) ss += (double)x[i] * x[i];
  float s = 1.0f / sqrtf((float)(ss / n) + 1e-5f);
  for (unsigned i = 0; i < n; i++) o[i] = x[i] * s * w[i];
}

/* Synthetic weights of the model's type, and the plain-C outputs for both phases. */
static clkv_status mv_setup(bench *b, mv_problem *p, const float *x, const float *nw,
                            clkv_error *err) {
  clkv_status st = CLKV_OK;
  size_t rb = clkv__ggml_row_bytes(b->wtype, p->cols);
  unsigned char *w = malloc(rb * p->rows);
  float *deq = malloc(sizeof(float) * p->cols * p->rows), *xn = malloc(sizeof(float) * p->cols);
  p->ref[0] = malloc(sizeof(float) * p->rows);
  p->ref[1] = malloc(sizeof(float) * p->rows * N_PREFILL);
  if (!rb || !w || !deq || !xn || !p->ref[0] || !p->ref[1]) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory for the tuner's weights");
    goto fail;
  }
  for (unsigned r = 0; r < p->rows; r++) {
    float *row = deq + (size_t)r * p->cols;
    for (unsigned c = 0; c < p->cols; c++) row[c] = frand() * 0.5f;
    clkv__quantize_row(b->wtype, row, w + rb * r, p->cols);
    clkv__dequantize_row(b->wtype, w + rb * r, row, p->cols);
  }
  for (unsigned t = 0; t < N_PREFILL; t++) {
    const float *xt = x + (size_t)t * p->cols;
    if (p->epi == CLKV__EPI_STORE) rmsnorm(xn, xt, nw, p->cols);
    else memcpy(xn, xt, sizeof(float) * p->cols);
    for (unsigned r = 0; r < p->rows; r++) {
      double acc = 0;
      for (unsigned c = 0; c < p->cols; c++) acc += (double)deq[(size_t)r * p->cols + c] * xn[c];
      p->ref[1][(size_t)t * p->rows + r] = (float)acc;
      if (t == 0) p->ref[0][r] = (float)acc;
    }
  }
  CLKV_TRY(upload(b->rt, w, rb * p->rows, &p->W, err));
fail:
  free(w);
  free(deq);
  free(xn);
  return st;
}

static size_t kv_index(const bench *b, int pos, int kvh) {
  return (((size_t)(pos / KV_BS) * b->nkv + kvh) * KV_BS + pos % KV_BS) * b->hd;
}

/* A paged cache of one sequence (identity block table), queries, and expected outputs. */
static clkv_status att_setup(bench *b, clkv_error *err) {
  clkv_status st = CLKV_OK;
  const size_t kv_elems = (size_t)ATT_CTX * b->nkv * b->hd, qn = (size_t)b->nh * b->hd;
  uint16_t *kc = malloc(kv_elems * 2), *vc = malloc(kv_elems * 2);
  float *q = malloc(sizeof(float) * qn * N_PREFILL), *sc = malloc(sizeof(float) * ATT_CTX);
  int32_t btab[ATT_CTX / KV_BS], zero[N_PREFILL], pos[N_PREFILL];
  b->att_ref[0] = malloc(sizeof(float) * qn);
  b->att_ref[1] = malloc(sizeof(float) * qn * N_PREFILL);
  if (!kc || !vc || !q || !sc || !b->att_ref[0] || !b->att_ref[1]) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory for the tuner's KV cache");
    goto fail;
  }
  for (size_t i = 0; i < kv_elems; i++) kc[i] = clkv__fp32_to_fp16(frand() * 2);
  for (size_t i = 0; i < kv_elems; i++) vc[i] = clkv__fp32_to_fp16(frand());
  for (size_t i = 0; i < qn * N_PREFILL; i++) q[i] = frand();
  for (int i = 0; i < ATT_CTX / KV_BS; i++) btab[i] = i;
  for (int i = 0; i < N_PREFILL; i++) zero[i] = 0, pos[i] = ATT_CTX - N_PREFILL + i;
  const float scale = 1.0f / sqrtf((float)b->hd);
  /* case N_PREFILL: decode, query row 0 at the last position */
  for (int t = 0; t <= N_PREFILL; t++)
    for (int h = 0; h < b->nh; h++) {
      int kvh = h / (b->nh / b->nkv), n = t < N_PREFILL ? pos[t] + 1 : ATT_CTX;
      const float *qh = q + (t < N_PREFILL ? t : 0) * qn + (size_t)h * b->hd;
      float mx = -INFINITY, sum = 0;
      float *o = t < N_PREFILL ? b->att_ref[1] + t * qn + (size_t)h * b->hd
                               : b->att_ref[0] + (size_t)h * b->hd;
      for (int j = 0; j < n; j++) {
        float s = 0;
        for (int d = 0; d < b->hd; d++) s += qh[d] * clkv__fp16_to_fp32(kc[kv_index(b, j, kvh) + d]);
        sc[j] = s * scale;
        mx = fmaxf(mx, sc[j]);
      }
      for (int j = 0; j < n; j++) sum += sc[j] = expf(sc[j] - mx);
      for (int d = 0; d < b->hd; d++) {
        float acc = 0;
        for (int j = 0; j < n; j++) acc += sc[j] * clkv__fp16_to_fp32(vc[kv_index(b, j, kvh) + d]);
        o[d] = acc / sum;
      }
    }
  CLKV_TRY(upload(b->rt, q, sizeof(float) * qn * N_PREFILL, &b->Q, err));
  CLKV_TRY(upload(b->rt, kc, kv_elems * 2, &b->K, err));
  CLKV_TRY(upload(b->rt, vc, kv_elems * 2, &b->V, err));
  CLKV_TRY(upload(b->rt, btab, sizeof btab, &b->B, err));
  CLKV_TRY(upload(b->rt, zero, sizeof zero, &b->S, err));
  CLKV_TRY(upload(b->rt, pos + N_PREFILL - 1, sizeof(int32_t), &b->P, err));
  CLKV_TRY(upload(b->rt, NULL, sizeof(float) * qn * N_PREFILL, &b->O, err));
fail:
  free(kc);
  free(vc);
  free(q);
  free(sc);
  return st;
}

static void bench_free(bench *b) {
  cl_mem all[] = {b->X, b->N, b->Y, b->dummy, b->Q, b->K, b->V, b->B, b->S, b->P, b->O,
                  b->p[0].W, b->p[1].W, b->p[2].W, b->p[3].W};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i]) clReleaseMemObject(all[i]);
  for (int i = 0; i < 4; i++) free(b->p[i].ref[0]), free(b->p[i].ref[1]);
  clkv__gemm_scratch_release(&b->gs);
  free(b->att_ref[0]);
  free(b->att_ref[1]);
}

/* The kernels of one candidate: 4 matvecs of a phase, one attention variant, or one
 * projection's prefill path (a matvec, or the GEMM path's kernels in g). */
typedef struct cand {
  int kind;
  clkv__tunables t;
  cl_kernel k[4];
  int n;
  clkv__gemm_kernels g;
} cand;

static int phase_of(int kind) {
  return kind == CLKV__TK_MV_PREFILL || kind == CLKV__TK_ATT_PREFILL || kind >= CLKV__TK_GEMM_QKV;
}

/* The projection of a gemm kind, or -1. */
static int proj_of(int kind) { return kind >= CLKV__TK_GEMM_QKV ? kind - CLKV__TK_GEMM_QKV : -1; }

/* The GEMM mode a candidate runs (own for every kind but the gemm kinds' CLBlast ones). */
static int gemm_of(const cand *c) {
  return proj_of(c->kind) < 0 ? CLKV__GEMM_OWN : (int)c->t.gemm[proj_of(c->kind)];
}

static clkv_status cand_build(bench *b, cand *c, clkv_error *err) {
  char opts[256];
  clkv_status st = CLKV_OK;
  const int proj = proj_of(c->kind);
  if (proj >= 0 && gemm_of(c) != CLKV__GEMM_OWN) {
    clkv__gemm_options(gemm_of(c), b->wtype, b->p[proj].epi, b->hd, b->nkv, KV_BS, CLKV_KV_F16,
                       opts, sizeof opts);
    return clkv__gemm_kernels_create(b->rt, opts, &c->g, err);
  }
  if (proj >= 0) {
    clkv__matvec_options(&c->t.mv[CLKV__PH_PREFILL], b->wtype, b->p[proj].epi, b->hd, b->nkv,
                         KV_BS, CLKV_KV_F16, opts, sizeof opts);
    CLKV_TRY(clkv__kernel_create(b->rt, "matvec.cl", opts, "clkv_matvec", &c->k[0], err));
    c->n = 1;
  } else if (c->kind == CLKV__TK_MV_DECODE || c->kind == CLKV__TK_MV_PREFILL) {
    for (c->n = 0; c->n < 4; c->n++) {
      clkv__matvec_options(&c->t.mv[phase_of(c->kind)], b->wtype, b->p[c->n].epi, b->hd, b->nkv,
                           KV_BS, CLKV_KV_F16, opts, sizeof opts);
      CLKV_TRY(clkv__kernel_create(b->rt, "matvec.cl", opts, "clkv_matvec", &c->k[c->n], err));
    }
  } else {
    clkv__attn_options(&c->t, b->hd, b->nkv, b->nh, KV_BS, CLKV_KV_F16, 0, opts, sizeof opts);
    CLKV_TRY(clkv__kernel_create(b->rt, "attention.cl", opts,
                                 phase_of(c->kind) ? "clkv_attn_prefill" : "clkv_attn_paged",
                                 &c->k[0], err));
    c->n = 1;
  }
fail:
  return st;
}

static void cand_release(cand *c) {
  for (int i = 0; i < c->n; i++) clReleaseKernel(c->k[i]);
  c->n = 0;
  clkv__gemm_kernels_release(&c->g);
}

/* Enqueues one run of the candidate (kernel i only when only >= 0). */
static clkv_status cand_enqueue(bench *b, const cand *c, int only, clkv_error *err) {
  const int ph = phase_of(c->kind);
  const unsigned n_tok = ph ? N_PREFILL : 1;
  if (c->kind == CLKV__TK_ATT_DECODE || c->kind == CLKV__TK_ATT_PREFILL) {
    clkv__attn_args a = {.Q = b->Q, .kc = b->K, .vc = b->V, .btab = b->B, .tok_seq = b->S,
                         .tok_pos = b->P, .seq = 0, .pos0 = ATT_CTX - N_PREFILL, .n_tok = n_tok,
                         .n_heads = (unsigned)b->nh, .layer_base = 0,
                         .max_blocks = ATT_CTX / KV_BS, .scale = 1.0f / sqrtf((float)b->hd),
                         .O = b->O};
    return clkv__attn_enqueue(b->rt, c->k[0], &c->t, ph, &a, err);
  }
  const int proj = proj_of(c->kind);
  for (int i = 0; i < 4; i++) {
    if ((only >= 0 && i != only) || (proj >= 0 && i != proj)) continue;
    const mv_problem *p = &b->p[i];
    clkv__mv_args a = {.W = p->W, .rows = p->rows, .cols = p->cols, .X = b->X, .x_row0 = 0,
                       .n_tok = n_tok, .norm_w = b->N, .eps = 1e-5f, .Y = b->Y, .kc = b->dummy,
                       .vc = b->dummy, .btab = b->dummy, .tok_seq = b->dummy,
                       .tok_pos = b->dummy, .inv_freq = b->dummy};
    int touched;
    clkv_status st =
        gemm_of(c) != CLKV__GEMM_OWN
            ? clkv__gemm_enqueue(b->rt, &c->g, gemm_of(c), &b->gs, p->epi, &a, &touched, err)
            : clkv__matvec_enqueue(b->rt, c->k[proj >= 0 ? 0 : i], &c->t.mv[ph], p->epi, &a, err);
    if (st) return st;
  }
  return CLKV_OK;
}

static int close_enough(const float *got, const float *want, size_t n, float tol) {
  float mx = 0;
  for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(want[i]));
  const float lim = tol * (1.0f + mx);
  for (size_t i = 0; i < n; i++)
    if (!(fabsf(got[i] - want[i]) <= lim)) return 0;
  return 1;
}

/* 1 if every output of the candidate matches plain C. */
static int cand_check(bench *b, const cand *c) {
  const int ph = phase_of(c->kind);
  const size_t n_tok = ph ? N_PREFILL : 1;
  clkv_error e;
  int ok = 1;
  size_t max = 0;
  for (int i = 0; i < 4; i++) max = b->p[i].rows > max ? b->p[i].rows : max;
  size_t qn = (size_t)b->nh * b->hd, cap = (qn > max ? qn : max) * N_PREFILL;
  float *got = malloc(sizeof(float) * cap);
  const float zero = 0;
  if (!got) return 0;
  if (c->kind == CLKV__TK_ATT_DECODE || c->kind == CLKV__TK_ATT_PREFILL) {
    ok = clEnqueueFillBuffer(b->rt->queue, b->O, &zero, sizeof zero, 0, sizeof(float) * qn * N_PREFILL, 0,
                             NULL, NULL) == CL_SUCCESS &&
         cand_enqueue(b, c, -1, &e) == CLKV_OK &&
         clEnqueueReadBuffer(b->rt->queue, b->O, CL_TRUE, 0, sizeof(float) * qn * n_tok, got, 0,
                             NULL, NULL) == CL_SUCCESS &&
         close_enough(got, b->att_ref[ph], qn * n_tok, 2e-4f);
  }
  /* F16 operands: about 3 decimal digits; int8 activations (decode.dot 2, 3; kernels/common.cl):
   * half a step of 1/127 of each 32-block's largest input, summed over a row */
  const clkv__mv_shape *mv = &c->t.mv[phase_of(c->kind)];
  const int int8 = c->kind <= CLKV__TK_MV_PREFILL && clkv__matvec_int8(mv) &&
                   (clkv__matvec_outer(mv) ? CLKV_INT8_TILE_TYPE((int)b->wtype)
                                           : CLKV_INT8_TYPE((int)b->wtype));
  const float tol = gemm_of(c) == CLKV__GEMM_CLBLAST16 || int8 ? 1e-2f : 2e-4f;
  const int is_mv = c->kind <= CLKV__TK_MV_PREFILL || proj_of(c->kind) >= 0;
  for (int i = 0; ok && i < 4 && is_mv; i++) {
    if (proj_of(c->kind) >= 0 && i != proj_of(c->kind)) continue;
    const size_t n = b->p[i].rows * n_tok;
    ok = clEnqueueFillBuffer(b->rt->queue, b->Y, &zero, sizeof zero, 0, sizeof(float) * cap, 0,
                             NULL, NULL) == CL_SUCCESS &&
         cand_enqueue(b, c, i, &e) == CLKV_OK &&
         clEnqueueReadBuffer(b->rt->queue, b->Y, CL_TRUE, 0, sizeof(float) * n, got, 0, NULL,
                             NULL) == CL_SUCCESS &&
         close_enough(got, b->p[i].ref[ph], n, tol);
  }
  free(got);
  return ok;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

clkv__timing clkv__timing_of(double *t, int n) {
  clkv__timing r = {.median_ms = INFINITY, .spread_ms = INFINITY, .runs = n};
  if (n <= 0) return r;
  qsort(t, (size_t)n, sizeof t[0], cmp_d);
  r.median_ms = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  double dev[N_RUNS_MAX * 2];
  int m = n < N_RUNS_MAX * 2 ? n : N_RUNS_MAX * 2;
  for (int i = 0; i < m; i++) dev[i] = fabs(t[i] - r.median_ms);
  qsort(dev, (size_t)m, sizeof dev[0], cmp_d);
  r.spread_ms = 1.4826 * (m % 2 ? dev[m / 2] : 0.5 * (dev[m / 2 - 1] + dev[m / 2]));
  return r;
}

int clkv__tune_beats(const clkv__timing *cand, const clkv__timing *best) {
  if (!isfinite(cand->median_ms)) return 0;
  if (!isfinite(best->median_ms)) return 1;
  double cs = isfinite(cand->spread_ms) ? cand->spread_ms : 0,
         bs = isfinite(best->spread_ms) ? best->spread_ms : 0;
  return cand->median_ms + cs < best->median_ms - bs &&
         cand->median_ms < best->median_ms * (1 - CLKV__TUNE_MIN_GAIN);
}

/* Times N_RUNS runs after a warm-up, and N_RUNS more while the spread is above SPREAD_OK of
 * the median (up to N_RUNS_MAX): marker events on a profiling queue, else the wall clock
 * around clFinish. */
static clkv_status cand_time(bench *b, const cand *c, clkv__timing *out, clkv_error *err) {
  clkv_status st = CLKV_OK;
  double s[N_RUNS_MAX], sorted[N_RUNS_MAX];
  int n = 0;
  CLKV_TRY(cand_enqueue(b, c, -1, err));
  CLKV_CL_TRY(clFinish(b->rt->queue));
  for (int r = 0; r < N_RUNS_MAX; r++) {
    if (r >= N_RUNS && r % N_RUNS == 0) { /* enough when the spread is small */
      memcpy(sorted, s, sizeof s[0] * (size_t)n);
      clkv__timing t = clkv__timing_of(sorted, n);
      if (t.spread_ms <= SPREAD_OK * t.median_ms) break;
    }
    cl_event e0 = NULL, e1 = NULL;
    int evented = b->rt->profiling && !b->wall &&
                  clEnqueueMarkerWithWaitList(b->rt->queue, 0, NULL, &e0) == CL_SUCCESS;
    double t = clkv__now_ms();
    CLKV_TRY(cand_enqueue(b, c, -1, err));
    if (evented && clEnqueueMarkerWithWaitList(b->rt->queue, 0, NULL, &e1) != CL_SUCCESS)
      evented = 0;
    CLKV_CL_TRY(clFinish(b->rt->queue));
    s[r] = clkv__now_ms() - t;
    n = r + 1;
    cl_ulong a = 0, z = 0;
    if (evented &&
        clGetEventProfilingInfo(e0, CL_PROFILING_COMMAND_END, sizeof a, &a, NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(e1, CL_PROFILING_COMMAND_END, sizeof z, &z, NULL) == CL_SUCCESS &&
        z > a)
      s[r] = (double)(z - a) / 1e6;
    else
      b->wall = 1; /* no usable events: the wall clock from here on */
    if (e0) clReleaseEvent(e0);
    if (e1) clReleaseEvent(e1);
  }
  *out = clkv__timing_of(s, n);
fail:
  return st;
}

/* 1 if a kernel of the candidate keeps private data in memory on a GPU: its
 * CL_KERNEL_PRIVATE_MEM_SIZE (NVIDIA: the stack frame, AMD: scratch, Intel: private memory)
 * is above 0, so its arrays or spilled registers go through the cache hierarchy on every
 * access (scripts/gpu-report, docs/GPU.md). Known right after the build, before any timing. On
 * CPUs private memory is ordinary stack and nothing is dropped. */
static int cand_spills(const bench *b, const cand *c) {
  if (b->rt->info.type == CLKV_DEVICE_CPU) return 0;
  for (int i = 0; i < c->n; i++) {
    cl_ulong priv = 0;
    if (clGetKernelWorkGroupInfo(c->k[i], b->rt->device, CL_KERNEL_PRIVATE_MEM_SIZE, sizeof priv,
                                 &priv, NULL) == CL_SUCCESS && priv > 0)
      return 1;
  }
  return 0;
}

/* Builds, checks and times one candidate. 0: timed; 1: rejected (build failure, stack or
 * scratch on a GPU, launch or check failure). */
static int evaluate(bench *b, int kind, const clkv__tunables *t, clkv__timing *ms) {
  cand c = {.kind = kind, .t = *t};
  clkv_error e;
  int rc = 1;
  if (cand_build(b, &c, &e) == CLKV_OK && !cand_spills(b, &c) && cand_check(b, &c) &&
      cand_time(b, &c, ms, &e) == CLKV_OK) {
    b->checked++;
    rc = 0;
  }
  cand_release(&c);
  clFinish(b->rt->queue);
  b->done++;
  return rc;
}

static int legal(const bench *b, const clkv__tunables *t) {
  return clkv__tunables_fit(t, b->rt->info.max_workgroup_size ? b->rt->info.max_workgroup_size : 1);
}

/* "ksplit=1 rg=4 rows=2": the tunables of the kernel's shape by their names without the
 * phase; for a gemm kind, the projection's prefill path. */
static void shape_str(int kind, const clkv__tunables *t, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = 0;
  if (proj_of(kind) >= 0) {
    snprintf(buf, cap, "%s", clkv__gemm_mode_name((int)t->gemm[proj_of(kind)]));
    return;
  }
  for (int id = 0; id < CLKV__TUN_COUNT && len < cap; id++) {
    const char *key = clkv__tunable_table[id].key, *dot = strrchr(key, '.');
    if (clkv__tunable_table[id].kernel != kind) continue;
    int w = snprintf(buf + len, cap - len, "%s%s=%u", len ? " " : "", dot ? dot + 1 : key,
                     clkv__tunable_get(t, id));
    if (w < 0) break;
    len += (size_t)w;
  }
}

/* Tries t for kind; keeps it in *best when it passes and is faster beyond the noise. */
static void try_cand(bench *b, clkv__tune_report *r, int kind, const clkv__tunables *t,
                     clkv__tunables *best) {
  clkv__tune_kernel *k = &r->k[kind];
  char what[64];
  shape_str(kind, t, what, sizeof what);
  if (!memcmp(t, best, sizeof *t) || !legal(b, t)) return;
  if (clkv__now_ms() - b->t0 > b->budget_ms * b->cap) {
    r->budget_hit = 1;
    return;
  }
  if (b->progress) b->progress(b->user, b->done, b->total, what);
  clkv__timing ms, cur = {k->tuned_ms, k->tuned_spread_ms, N_RUNS};
  if (evaluate(b, kind, t, &ms)) {
    k->failed++;
    return;
  }
  k->tried++;
  if (clkv__tune_beats(&ms, &cur)) { /* the best so far (if it ran) becomes the runner-up */
    if (isfinite(k->tuned_ms)) {
      memcpy(k->runner_up, k->tuned_shape, sizeof k->runner_up);
      k->runner_up_ms = k->tuned_ms;
    }
    k->tuned_ms = ms.median_ms;
    k->tuned_spread_ms = ms.spread_ms;
    *best = *t;
    snprintf(k->tuned_shape, sizeof k->tuned_shape, "%s", what);
  } else if (!k->runner_up[0] || ms.median_ms < k->runner_up_ms) {
    snprintf(k->runner_up, sizeof k->runner_up, "%s", what);
    k->runner_up_ms = ms.median_ms;
  }
}

/* One kernel's stage: each of its tunables in row order, each of that tunable's candidates
 * on the best so far, after the tunables that follow another take its best value. */
static void search_kernel(bench *b, clkv__tune_report *r, int kind, clkv__tunables *best) {
  for (int id = 0; id < CLKV__TUN_COUNT; id++) {
    const clkv__tunable *row = &clkv__tunable_table[id];
    if (row->kernel != kind) continue;
    for (unsigned i = 0; i < row->n_search; i++) {
      clkv__tunables t = *best;
      for (int f = 0; f < CLKV__TUN_COUNT; f++)
        if (clkv__tunable_table[f].kernel == kind && clkv__tunable_table[f].follows != CLKV__TUN_NONE)
          *clkv__tunable_at(&t, f) = clkv__tunable_get(best, clkv__tunable_table[f].follows);
      *clkv__tunable_at(&t, id) = row->search[i];
      try_cand(b, r, kind, &t, best);
    }
  }
}

/* The kernels searched after the prefill paths, in order, and the share of the budget each
 * stage may run until: the decode mat-vec, with the most candidates, first. */
static const struct {
  int kind;
  double cap;
} STAGES[] = {{CLKV__TK_MV_DECODE, 0.45}, {CLKV__TK_ATT_DECODE, 0.6},
              {CLKV__TK_MV_PREFILL, 0.85}, {CLKV__TK_ATT_PREFILL, 0.95}};

/* Stages in order; each may run until its share of the budget is spent, so a small budget
 * still tries every kernel. */
static void search(bench *b, clkv__tune_report *r) {
  clkv__tunables best = r->defaults, t;
  b->cap = 0.2;
  /* first, while the budget is fresh: each projection's prefill path, own (timed with the
   * defaults) against each CLBlast mode the device can run */
  for (int g = 0; g < CLKV__N_PROJ; g++)
    for (int mode = CLKV__GEMM_CLBLAST; mode < CLKV__GEMM_MODES; mode++) {
      if (clkv__gemm_available(b->rt, mode, NULL, 0))
        t = best, t.gemm[g] = (unsigned)mode, try_cand(b, r, CLKV__TK_GEMM_QKV + g, &t, &best);
      else
        b->done++;
    }
  for (size_t s = 0; s < sizeof STAGES / sizeof STAGES[0]; s++) {
    b->cap = STAGES[s].cap;
    search_kernel(b, r, STAGES[s].kind, &best);
  }
  /* a projection moved to CLBlast above was compared with the default prefill shape: own
   * again with the tuned one */
  b->cap = 1.0;
  for (int g = 0; g < CLKV__N_PROJ; g++)
    if (best.gemm[g] != CLKV__GEMM_OWN)
      t = best, t.gemm[g] = CLKV__GEMM_OWN, try_cand(b, r, CLKV__TK_GEMM_QKV + g, &t, &best);
  r->tuned = best;
}

/* Candidates the search may time: the defaults of every kernel, every tunable's search
 * values, every CLBlast mode of every projection (the progress total). */
static unsigned search_size(void) {
  unsigned n = CLKV__TK_COUNT + CLKV__N_PROJ * CLKV__GEMM_MODES;
  for (int id = 0; id < CLKV__TUN_COUNT; id++) n += clkv__tunable_table[id].n_search;
  return n;
}

clkv_status clkv__tune(clkv_runtime *rt, const clkv_model_info *m, uint32_t wtype,
                       double budget_s, clkv__tune_progress progress, void *user,
                       clkv__tune_report *out, clkv_error *err) {
  clkv_status st = CLKV_OK;
  bench b = {.rt = rt, .wtype = wtype, .nh = m->n_heads, .nkv = m->n_kv_heads,
             .hd = m->head_dim, .t0 = clkv__now_ms(), .budget_ms = budget_s * 1e3,
             .progress = progress, .user = user};
  float *x = NULL, *nw = NULL;
  memset(out, 0, sizeof *out);
  if (m->n_heads <= 0 || m->n_kv_heads <= 0 || m->n_heads % m->n_kv_heads || m->head_dim <= 0 ||
      m->n_embd <= 0 || m->n_ff <= 0 || clkv__wtype_slot(wtype) < 0 || m->head_dim % 32)
    return clkv__err(err, CLKV_ERR_INVALID_ARG,
                     "the tuner needs a model shape with heads, head_dim (multiple of 32), "
                     "n_ff and a computable weight type; check the model with clkv inspect");
  const unsigned dim = (unsigned)m->n_embd, qr = (unsigned)(m->n_heads * m->head_dim),
                 kvr = (unsigned)(m->n_kv_heads * m->head_dim), ff = (unsigned)m->n_ff;
  const mv_problem probs[4] = {{qr + 2 * kvr, dim, CLKV__EPI_STORE, NULL, {NULL, NULL}},
                               {dim, qr, CLKV__EPI_ADD, NULL, {NULL, NULL}},
                               {2 * ff, dim, CLKV__EPI_STORE, NULL, {NULL, NULL}},
                               {dim, ff, CLKV__EPI_ADD, NULL, {NULL, NULL}}};
  memcpy(b.p, probs, sizeof probs);
  const unsigned max_cols = dim > qr ? (dim > ff ? dim : ff) : (qr > ff ? qr : ff);
  const unsigned max_rows = 2 * ff > qr + 2 * kvr ? 2 * ff : qr + 2 * kvr;
  x = malloc(sizeof(float) * max_cols * N_PREFILL);
  nw = malloc(sizeof(float) * max_cols);
  if (!x || !nw) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory for the tuner's inputs");
    goto fail;
  }
  for (size_t i = 0; i < (size_t)max_cols * N_PREFILL; i++) x[i] = frand() * 2;
  for (unsigned i = 0; i < max_cols; i++) nw[i] = 1.0f + 0.2f * frand();
  /* every problem reads x as (n_tok, cols) rows of its own width */
  for (int i = 0; i < 4; i++) CLKV_TRY(mv_setup(&b, &b.p[i], x, nw, err));
  CLKV_TRY(upload(rt, x, sizeof(float) * max_cols * N_PREFILL, &b.X, err));
  CLKV_TRY(upload(rt, nw, sizeof(float) * max_cols, &b.N, err));
  CLKV_TRY(upload(rt, NULL, sizeof(float) * max_rows * N_PREFILL, &b.Y, err));
  CLKV_TRY(upload(rt, NULL, 64, &b.dummy, err));
  CLKV_TRY(att_setup(&b, err));
  clkv_error gerr; /* without its scratch the CLBlast candidates fail their check */
  clkv__gemm_scratch_init(rt, N_PREFILL, max_rows, max_cols, &b.gs, &gerr);

  clkv__default_tunables(&rt->info, &out->defaults);
  b.total = search_size();
  static const char *names[] = {"matvec.decode", "matvec.prefill", "attn.decode",
                                "attn.prefill", "gemm.qkv", "gemm.o", "gemm.gu",
                                "gemm.down"};
  for (int k = 0; k < CLKV__TK_COUNT; k++) {
    clkv__tune_kernel *tk = &out->k[k];
    snprintf(tk->name, sizeof tk->name, "%s", names[k]);
    shape_str(k, &out->defaults, tk->default_shape, sizeof tk->default_shape);
    memcpy(tk->tuned_shape, tk->default_shape, sizeof tk->tuned_shape); /* same size */
    if (progress) progress(user, b.done, b.total, tk->default_shape);
    clkv__timing dt;
    if (evaluate(&b, k, &out->defaults, &dt)) {
      tk->failed++;
      dt.median_ms = dt.spread_ms = INFINITY; /* any passing candidate wins */
    } else {
      tk->tried++;
    }
    tk->default_ms = tk->tuned_ms = dt.median_ms;
    tk->default_spread_ms = tk->tuned_spread_ms = dt.spread_ms;
  }
  search(&b, out);
  if (progress) progress(user, b.total, b.total, "done");
  out->candidates_checked = b.checked;
  out->wall_clock = b.wall || !rt->profiling;
fail:
  out->elapsed_s = (clkv__now_ms() - b.t0) / 1e3;
  bench_free(&b);
  free(x);
  free(nw);
  return st;
}

clkv_status clkv__tuning_save(const clkv_runtime *rt, const clkv__tunables *t, clkv_error *err) {
  char path[1200], dir[1100], tmp[1300], date[64];
  snprintf(dir, sizeof dir, "%s/tuning", rt->cache_dir);
  clkv__tuning_path(rt, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (clkv__mkdirs(dir))
    return clkv__err(err, CLKV_ERR_IO, "cannot create %s; check CLKV_CACHE_DIR", dir);
  FILE *f = fopen(tmp, "w");
  if (!f) return clkv__err(err, CLKV_ERR_IO, "cannot write %s; check CLKV_CACHE_DIR", tmp);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
  fprintf(f, "# clkv tuning for %s (driver %s, platform %s), written %s\n", rt->info.name,
          rt->info.driver_version, rt->info.platform_name, date);
  clkv__tunables_print(f, t);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path)) {
    remove(tmp);
    return clkv__err(err, CLKV_ERR_IO, "cannot write %s; check free space and permissions", path);
  }
  return CLKV_OK;
}

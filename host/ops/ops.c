/* ops.c — how each kernel is built and launched: build options from the tunables, the
 * argument order, and the ND-range. The engine, the kernel tests and the benchmarks all
 * go through these, so a kernel's signature lives in one place on the host. */
#include "ops/ops.h"

#include <stdio.h>

/* The kernels see the KV type as kernels/contract.h numbers it; the API as clkv.h does. */
_Static_assert(CLKV__KV_F16 == CLKV_KV_F16 && CLKV__KV_Q8 == CLKV_KV_Q8 && CLKV__KV_Q4 == CLKV_KV_Q4,
               "kernels/contract.h and include/clkv.h number the KV types differently");

_Static_assert(CLKV_INT8_TYPE(GGML_T_Q4_0) && CLKV_INT8_TYPE(GGML_T_Q4_1) &&
                   CLKV_INT8_TYPE(GGML_T_Q5_0) && CLKV_INT8_TYPE(GGML_T_Q5_1) &&
                   CLKV_INT8_TYPE(GGML_T_Q8_0) && !CLKV_INT8_TYPE(GGML_T_Q4_K) &&
                   !CLKV_INT8_TYPE(GGML_T_Q6_K) && !CLKV_INT8_TYPE(GGML_T_F32) &&
                   !CLKV_INT8_TYPE(GGML_T_Q8_1) && CLKV_INT8_SIGNED(GGML_T_Q8_0) &&
                   !CLKV_INT8_SIGNED(GGML_T_Q5_0) && CLKV_INT8_TILE_TYPE(GGML_T_Q4_K) &&
                   CLKV_INT8_TILE_TYPE(GGML_T_Q5_K) && CLKV_INT8_TILE_TYPE(GGML_T_Q6_K) &&
                   !CLKV_INT8_TILE_TYPE(GGML_T_Q3_K) && !CLKV_INT8_TILE_TYPE(GGML_T_IQ4_XS) &&
                   CLKV_INT8_TWO_SCALES(GGML_T_Q6_K) && CLKV_INT8_NO_M(GGML_T_Q8_0),
               "CLKV_INT8_TYPE/CLKV_INT8_SIGNED's numbers are not the types kernels/contract.h names");

unsigned clkv__matvec_rows(const clkv__mv_shape *s, int epi) {
  unsigned r = s->rows ? s->rows : 1;
  return (epi == CLKV__EPI_QKV || CLKV__EPI_GATED(epi)) && r % 2 ? r + 1 : r;
}

int clkv__kv_qg(int head_dim) { return head_dim % 32 == 0 ? 32 : head_dim; }

size_t clkv__kv_block_bytes(int kv_type, int n_kv, int kv_block, int head_dim) {
  const size_t rows = (size_t)n_kv * (size_t)kv_block, hd = (size_t)head_dim;
  const size_t groups = hd / (size_t)clkv__kv_qg(head_dim); /* Q8: d; Q4: d and m, half each */
  const size_t scales = kv_type == CLKV_KV_Q8 ? groups * 2 : kv_type == CLKV_KV_Q4 ? groups * 4 : 0;
  const size_t q = kv_type == CLKV_KV_Q8 ? hd : kv_type == CLKV_KV_Q4 ? hd / 2 : hd * 2;
  return rows * (q + scales);
}

static unsigned gcd_u(unsigned a, unsigned b) {
  while (b) {
    unsigned t = a % b;
    a = b;
    b = t;
  }
  return a;
}

clkv__mv_shape clkv__matvec_fit(const clkv__mv_shape *s, int epi, int kv_type, int head_dim,
                                size_t max_wg) {
  clkv__mv_shape r = *s;
  if (epi != CLKV__EPI_QKV || kv_type == CLKV_KV_F16) return r;
  /* A quantized cache needs each scale group inside one workgroup: widen the row groups
   * until RG * ROWS is a multiple of the group, then narrow KSPLIT to fit the device. */
  const unsigned qg = (unsigned)clkv__kv_qg(head_dim), span = r.rg * clkv__matvec_rows(&r, epi);
  r.rg *= qg / gcd_u(span, qg);
  while (r.ksplit > 1 && (size_t)r.ksplit * r.rg > max_wg) r.ksplit /= 2;
  return r;
}

int clkv__epi_norm(int epi) {
  /* The store epilogue is used for the logits, after the final norm. */
  return epi == CLKV__EPI_QKV || CLKV__EPI_GATED(epi) || epi == CLKV__EPI_STORE;
}

int clkv__matvec_outer(const clkv__mv_shape *s) {
  return s->form == 2 && s->tt > 1 && s->tt % 8 == 0 && s->ksplit == 1;
}

/* Whether the host CPU has AVX512-VNNI (and AVX512-VL): an OpenCL CPU device runs on it. */
static int host_vnni(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#else
  return 0;
#endif
}

unsigned clkv__matvec_int8(const clkv__mv_shape *s) {
  if (s->dot <= 1) return 0;
  if (s->tt == 1) return s->dot - 1;
  /* the outer product's int8 tiles: dot 2 portable; dot 3 with VNNI where the host has it,
   * else the float outer product (without vpdpbusd the tiles are no faster) */
  if (!clkv__matvec_outer(s)) return 0;
  return s->dot == 2 ? 1 : host_vnni() ? 2 : 0;
}

/* Local bytes of the int8 input (kernels/matvec.cl xq, xf): cols chars; two floats per
 * block and one per work-item. A float variant gets 16 bytes each (unused). */
static size_t int8_local(const clkv__mv_shape *s, unsigned cols, size_t *xf) {
  if (clkv__matvec_outer(s)) /* the outer product: x transposed (cols * TT floats), TT sums */
    return *xf = sizeof(float) * s->tt * s->rg, sizeof(float) * (size_t)cols * s->tt;
  if (!clkv__matvec_int8(s)) return *xf = 16, 16;
  *xf = sizeof(float) * (2 * (size_t)(cols / 32) + (size_t)s->ksplit * s->rg);
  return cols;
}

void clkv__matvec_options(const clkv__mv_shape *s, uint32_t wtype, int epi, int head_dim,
                          int n_kv, int kv_block, int kv_type, char *buf, size_t cap) {
  const int norm = clkv__epi_norm(epi);
  /* -DPFORM only where it is set: the other shapes' options (and programs) stay as they were */
  snprintf(buf, cap,
           "-DWTYPE=%u -DEPI=%d -DNORM=%d -DKSPLIT=%u -DRG=%u -DROWS=%u -DTT=%u "
           "-DHEAD_DIM=%d -DN_KV=%d -DKV_BS=%d -DKV_TYPE=%d -DKV_QG=%d -DINT8=%u%s%s",
           wtype, epi, norm, s->ksplit, s->rg, clkv__matvec_rows(s, epi), s->tt, head_dim, n_kv,
           kv_block, kv_type, clkv__kv_qg(head_dim), clkv__matvec_int8(s),
           clkv__matvec_outer(s) ? " -DPFORM=2" : "",
           clkv__matvec_outer(s) && clkv__matvec_int8(s) == 2 ? " -DCLKV_X86_VNNI=1" : "");
}

clkv_status clkv__matvec_enqueue(clkv_runtime *rt, cl_kernel k, const clkv__mv_shape *s, int epi,
                                 const clkv__mv_args *m, clkv_error *err) {
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, m->W);
  clkv__args_u32(&a, m->rows);
  clkv__args_u32(&a, m->cols);
  clkv__args_mem(&a, m->X);
  clkv__args_u32(&a, m->x_row0);
  clkv__args_u32(&a, m->n_tok);
  clkv__args_mem(&a, m->norm_w);
  clkv__args_f32(&a, m->eps);
  clkv__args_mem(&a, m->Y);
  clkv__args_mem(&a, m->kc);
  clkv__args_mem(&a, m->vc);
  clkv__args_mem(&a, m->btab);
  clkv__args_mem(&a, m->tok_seq);
  clkv__args_mem(&a, m->tok_pos);
  clkv__args_mem(&a, m->inv_freq);
  clkv__args_u32(&a, m->q_rows);
  clkv__args_u32(&a, m->kv_rows);
  clkv__args_u32(&a, m->layer_base);
  clkv__args_u32(&a, m->max_blocks);
  size_t xf;
  clkv__args_local(&a, int8_local(s, m->cols, &xf));
  clkv__args_local(&a, xf);
  clkv_status st = clkv__args_end(&a, err);
  if (st) return st;
  const size_t rows = clkv__matvec_rows(s, epi);
  const size_t groups = (m->rows + rows - 1) / rows;
  const size_t global[3] = {s->ksplit, (groups + s->rg - 1) / s->rg * s->rg,
                            (m->n_tok + s->tt - 1) / s->tt};
  const size_t local[3] = {s->ksplit, s->rg, 1};
  return clkv__launch(rt, k, 3, global, local, err);
}

void clkv__attn_options(const clkv__tunables *t, int head_dim, int n_kv, int n_heads,
                        int kv_block, int kv_type, int window, char *buf, size_t cap) {
  snprintf(buf, cap,
           "-DHEAD_DIM=%d -DN_KV=%d -DKV_BS=%d -DKV_TYPE=%d -DKV_QG=%d -DATT_WG=%u -DTQ=%u -DTK=%u "
           "-DWINDOW=%d -DQPK=%d",
           head_dim, n_kv, kv_block, kv_type, clkv__kv_qg(head_dim), t->att_wg, t->tq, t->tk,
           window, n_kv > 0 && n_heads >= n_kv ? n_heads / n_kv : 1);
}

clkv_status clkv__attn_enqueue(clkv_runtime *rt, cl_kernel k, const clkv__tunables *t, int prefill,
                               const clkv__attn_args *m, clkv_error *err) {
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, m->Q);
  clkv__args_mem(&a, m->kc);
  clkv__args_mem(&a, m->vc);
  clkv__args_mem(&a, m->btab);
  if (prefill) {
    clkv__args_u32(&a, m->seq);
    clkv__args_u32(&a, m->pos0);
    clkv__args_u32(&a, m->n_tok);
  } else {
    clkv__args_mem(&a, m->tok_seq);
    clkv__args_mem(&a, m->tok_pos);
  }
  clkv__args_mem(&a, m->O);
  clkv__args_u32(&a, m->n_heads);
  clkv__args_u32(&a, m->layer_base);
  clkv__args_u32(&a, m->max_blocks);
  clkv__args_f32(&a, m->scale);
  clkv_status st = clkv__args_end(&a, err);
  if (st) return st;
  if (prefill) {
    const size_t global[2] = {((size_t)m->n_tok + t->tq - 1) / t->tq * t->tq, m->n_heads};
    const size_t local[2] = {t->tq, 1};
    return clkv__launch(rt, k, 2, global, local, err);
  }
  const size_t global[2] = {(size_t)t->att_wg * m->n_heads, m->n_tok};
  const size_t local[2] = {t->att_wg, 1};
  return clkv__launch(rt, k, 2, global, local, err);
}

clkv_status clkv__embed_enqueue(clkv_runtime *rt, cl_kernel k, cl_mem E, unsigned cols,
                                unsigned n_vocab, cl_mem ids, unsigned n_tok, cl_mem X,
                                clkv_error *err) {
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, E);
  clkv__args_u32(&a, cols);
  clkv__args_u32(&a, n_vocab);
  clkv__args_mem(&a, ids);
  clkv__args_mem(&a, X);
  clkv_status st = clkv__args_end(&a, err);
  if (st) return st;
  const size_t global[2] = {cols / 32, n_tok};
  return clkv__launch(rt, k, 2, global, NULL, err);
}

/* ---- launch shapes against the device's limits, before any build ---- */

/* Private memory one work-item may hold in arrays the kernels declare: beyond it a CPU
 * compiler overflows the work-item's stack and a GPU spills to global memory. */
#define CLKV__PRIVATE_MAX 16384u

/* What one kernel's launch shape needs: work-items per group, local and private bytes. */
typedef struct shape_need {
  int kernel;           /* CLKV__TK_* whose tunables set it */
  size_t wg, local, priv;
} shape_need;

/* The matvec kernel's arrays (kernels/matvec.cl): sum[ROWS][TT], ssum[TT], ss[TT] (float8),
 * x[TT][4] (float8), xs[TT], with TT 1 acc[ROWS] (float8) and off[ROWS]; in local memory
 * red[RG][ROWS*TT+TT][KSPLIT] when KSPLIT > 1, kvl[TT][RG*ROWS] for a quantized cache. */
static shape_need matvec_need(const clkv__mv_shape *s, int kernel, int kv_type) {
  const size_t rows = clkv__matvec_rows(s, CLKV__EPI_QKV), tt = s->tt, f = sizeof(float);
  size_t priv = (rows * tt + tt + 8 * tt + 32 * tt + tt) * f;
  if (tt == 1) priv += rows * 9 * f;
  size_t local = s->ksplit > 1 ? (size_t)s->rg * (rows * tt + tt) * s->ksplit * f : 0;
  /* the outer product's xt (the widest input: the down projection's 4 x 576 columns, a bound
   * that suits the models here) and wl[RG][ROWS][32] */
  if (clkv__matvec_outer(s)) local += (4 * 576 + s->rg) * tt * f + (size_t)s->rg * rows * 32 * f;
  if (kv_type != CLKV_KV_F16) local += tt * s->rg * rows * f;
  return (shape_need){.kernel = kernel, .wg = (size_t)s->ksplit * s->rg, .local = local,
                      .priv = priv};
}

/* 0 if n fits limit (0: unknown), else an error naming the shape's tunables and origins. */
static clkv_status over(const clkv_runtime *rt, const clkv__tunables *t, int kernel, size_t n,
                        size_t limit, const char *what, clkv_error *err) {
  if (!limit || n <= limit) return CLKV_OK;
  char vals[600] = "", where[300];
  size_t len = 0;
  for (int id = 0; id < CLKV__TUN_COUNT && len < sizeof vals; id++) {
    if (clkv__tunable_table[id].kernel != kernel) continue;
    clkv__tunable_origin(rt, id, where, sizeof where);
    len += (size_t)snprintf(vals + len, sizeof vals - len, "%s%s = %u (%s)", len ? ", " : "",
                            clkv__tunable_table[id].key, clkv__tunable_get(t, id), where);
  }
  return clkv__err(err, CLKV_ERR_INVALID_ARG,
                   "launch shape %s needs %zu %s, over the limit of %zu; lower it", vals, n,
                   what, limit);
}

clkv_status clkv__shapes_check(const clkv_runtime *rt, const clkv__tunables *t, int head_dim,
                               int kv_type, clkv_error *err) {
  const clkv_device_info *d = &rt->info;
  const size_t f = sizeof(float), hd = (size_t)head_dim;
  const clkv__mv_shape dec = clkv__matvec_fit(&t->mv[CLKV__PH_DECODE], CLKV__EPI_QKV, kv_type,
                                              head_dim, d->max_workgroup_size);
  const clkv__mv_shape pre = clkv__matvec_fit(&t->mv[CLKV__PH_PREFILL], CLKV__EPI_QKV, kv_type,
                                              head_dim, d->max_workgroup_size);
  const shape_need need[] = {
      matvec_need(&dec, CLKV__TK_MV_DECODE, kv_type),
      matvec_need(&pre, CLKV__TK_MV_PREFILL, kv_type),
      /* attention.cl: lm, ll[ATT_WG] and la[ATT_WG][HD4] (float4); Kt, Vt[TK][HD4] and,
       * above head size 64, q's part in local memory Qs[][TQ] (half of q; on AMD all of it,
       * and the tile's scores Ps[TK][TQ]: an AMD device whose compiler is not clang's
       * amdgcn builds the smaller form, so this bounds it) */
      {.kernel = CLKV__TK_ATT_DECODE, .wg = t->att_wg, .local = t->att_wg * (2 * f + hd * f)},
      {.kernel = CLKV__TK_ATT_PREFILL, .wg = t->tq,
       .local = 2 * (size_t)t->tk * hd * f +
                (hd <= 64 ? 0
                 : d->vendor == CLKV_VENDOR_AMD ? (size_t)t->tq * hd * f + (size_t)t->tk * t->tq * f
                                                : (size_t)t->tq * hd / 2 * f)},
  };
  clkv_status st = CLKV_OK;
  for (size_t i = 0; !st && i < sizeof need / sizeof need[0]; i++) {
    const shape_need *n = &need[i];
    if (!(st = over(rt, t, n->kernel, n->wg, d->max_workgroup_size, "work-items per group", err)) &&
        !(st = over(rt, t, n->kernel, n->local, d->local_mem_bytes, "bytes of local memory", err)))
      st = over(rt, t, n->kernel, n->priv, CLKV__PRIVATE_MAX, "bytes of private arrays per "
                "work-item", err);
  }
  return st;
}

void clkv__qkv_finish_options(int head_dim, int n_kv, int kv_block, int kv_type, int bias,
                              int qk_norm, char *buf, size_t cap) {
  snprintf(buf, cap, "-DHEAD_DIM=%d -DN_KV=%d -DKV_BS=%d -DKV_TYPE=%d -DKV_QG=%d -DHAS_BIAS=%d "
           "-DHAS_QK_NORM=%d", head_dim, n_kv, kv_block, kv_type, clkv__kv_qg(head_dim), bias,
           qk_norm);
}

clkv_status clkv__qkv_finish_enqueue(clkv_runtime *rt, cl_kernel k, int head_dim,
                                     const clkv__qkv_finish_args *m, clkv_error *err) {
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, m->Tq);
  clkv__args_mem(&a, m->Tk);
  clkv__args_mem(&a, m->Tv);
  clkv__args_u32(&a, m->q_rows);
  clkv__args_u32(&a, m->kv_rows);
  clkv__args_u32(&a, m->n_tok);
  clkv__args_mem(&a, m->bias);
  clkv__args_mem(&a, m->q_norm);
  clkv__args_mem(&a, m->k_norm);
  clkv__args_f32(&a, m->eps);
  clkv__args_mem(&a, m->inv_freq);
  clkv__args_mem(&a, m->kc);
  clkv__args_mem(&a, m->vc);
  clkv__args_mem(&a, m->btab);
  clkv__args_mem(&a, m->tok_seq);
  clkv__args_mem(&a, m->tok_pos);
  clkv__args_u32(&a, m->layer_base);
  clkv__args_u32(&a, m->max_blocks);
  clkv_status st = clkv__args_end(&a, err);
  if (st) return st;
  const size_t global[2] = {(m->q_rows + 2 * (size_t)m->kv_rows) / (unsigned)head_dim, m->n_tok};
  return clkv__launch(rt, k, 2, global, NULL, err);
}

clkv_status clkv__norm_add_enqueue(clkv_runtime *rt, cl_kernel k, cl_mem X, cl_mem T, cl_mem w,
                                   unsigned cols, unsigned n_tok, float eps, clkv_error *err) {
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, X);
  clkv__args_mem(&a, T);
  clkv__args_mem(&a, w);
  clkv__args_u32(&a, cols);
  clkv__args_u32(&a, n_tok);
  clkv__args_f32(&a, eps);
  clkv_status st = clkv__args_end(&a, err);
  if (st) return st;
  const size_t global[1] = {n_tok};
  return clkv__launch(rt, k, 1, global, NULL, err);
}

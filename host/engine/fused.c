/* fused.c — the fused decode step's host side (kernels/fused.cl, how its phases synchronize
 * is described there and in docs/ARCHITECTURE.md): when it applies, its kernel variants (one
 * per combination of weight types), the phase counters, and each launch's arguments. */
#include "engine/fused.h"

#include <stdlib.h>
#include <string.h>

/* kernels/fused.cl: the counters (done for 8 phases, exit, then a claim counter for each
 * phase and work-group; 16 ints apart), flags, chunk rows. */
#define fz_counters(n_wg) ((size_t)(9 + 8 * (n_wg)) * 16)
#define FZ_F_FFN 1u
#define FZ_F_QKV 2u
#define FZ_F_OUT 4u
#define FZ_CH 32
#define MAX_VARIANTS 16

/* What a launch's variant is built for: the weight types of o, gate/up, down, the next
 * layer's q, k, v (all three wqkv's when not split) and the output; the next layer split. */
typedef struct variant {
  uint32_t t[CLKV__FZ_TYPES];
  int split;
  cl_kernel k;
} variant;

struct clkv__fused {
  int state;                    /* 0 undecided, 1 in use, -1 not for this context */
  cl_mem ctr;                   /* fz_counters(n_wg) int32, zero between launches */
  cl_mem xq8;                   /* each work-group's int8 copy of a phase's input */
  unsigned n_wg;                /* work-groups of the next launch (one work-item each) */
  unsigned n_wg_max;            /* what the buffers are sized for: decode.groups' choice */
  int logits;                   /* the last launch computes the logits (else the caller) */
  /* The measured choice between n_wg_max and one work-group (clkv__fused_observe): arm 0
   * n_wg_max, arm 1 one; steps and seconds of the current window; each arm's last mean. */
  int adapt, arm, probing, skip, win_n, since;
  double win_s, mean[2];
  variant var[MAX_VARIANTS];
  int n_var;
};

void clkv__fused_free(clkv__fused *f) {
  if (!f) return;
  for (int i = 0; i < f->n_var; i++) clReleaseKernel(f->var[i].k);
  if (f->ctr) clReleaseMemObject(f->ctr);
  if (f->xq8) clReleaseMemObject(f->xq8);
  free(f);
}

/* The variant of launch `layer` (-1 .. n_layers-1); slots it does not use take a
 * neighbour's types, so that one variant serves a model whose layers share their types. */
static void launch_variant(const clkv_model *m, int layer, variant *v) {
  const int L = m->info.n_layers;
  const clkv__layer *a = &m->layers[layer < 0 ? 0 : layer];
  const clkv__layer *b = &m->layers[layer + 1 < L ? layer + 1 : 0];
  memset(v, 0, sizeof *v);
  v->t[0] = a->wo.type;
  v->t[1] = a->wgu.type;
  v->t[2] = a->wdown.type;
  v->split = b->split;
  v->t[3] = b->split ? b->wq.type : b->wqkv.type;
  v->t[4] = b->split ? b->wk.type : b->wqkv.type;
  v->t[5] = b->split ? b->wv.type : b->wqkv.type;
  v->t[6] = m->output.type;
}

void clkv__fused_options(const uint32_t t[CLKV__FZ_TYPES], int split, const clkv__arch *a,
                         int head_dim, int n_kv, int kv_block, int kv_type, unsigned int8,
                         unsigned xmax, char *buf, size_t cap) {
  snprintf(buf, cap,
           "-DWT_O=%u -DWT_GU=%u -DWT_DOWN=%u -DWT_Q=%u -DWT_K=%u -DWT_V=%u -DWT_OUT=%u -DGLU=%d "
           "-DSPLIT=%d -DHAS_BIAS=%d -DHAS_QK_NORM=%d -DPOST=%d -DHEAD_DIM=%d -DN_KV=%d -DKV_BS=%d "
           "-DKV_TYPE=%d -DKV_QG=%d -DINT8=%u -DFZ_XMAX=%u",
           t[0], t[1], t[2], t[3], t[4], t[5], t[6],
           a->act == CLKV__ACT_GELU_TANH ? CLKV__EPI_GEGLU : CLKV__EPI_SWIGLU, split,
           a->qkv_bias, a->qk_norm, a->post_norms, head_dim, n_kv, kv_block, kv_type,
           clkv__kv_qg(head_dim), int8, xmax);
}

/* The longest mat-vec input of the step (x, the attention output, the FFN activation): the
 * size of each work-group's int8 copy (kernels/fused.cl FZ_XMAX). */
static unsigned fused_xmax(const clkv_model *m) {
  unsigned x = (unsigned)m->info.n_embd;
  if ((unsigned)m->info.n_ff > x) x = (unsigned)m->info.n_ff;
  if ((unsigned)m->q_rows > x) x = (unsigned)m->q_rows;
  return x;
}

/* The kernel of variant want, built on first use. */
static clkv_status variant_for(clkv_context *c, const variant *want, cl_kernel *out,
                               clkv_error *err) {
  clkv__fused *f = c->fused;
  clkv_model *m = c->m;
  for (int i = 0; i < f->n_var; i++)
    if (!memcmp(f->var[i].t, want->t, sizeof want->t) && f->var[i].split == want->split) {
      *out = f->var[i].k;
      return CLKV_OK;
    }
  if (f->n_var == MAX_VARIANTS)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED, "fused decode: more than %d combinations of "
                     "weight types", MAX_VARIANTS);
  char opts[400];
  clkv__fused_options(want->t, want->split, m->arch, m->info.head_dim, m->info.n_kv_heads,
                      m->params.kv_block, m->params.kv_type,
                      clkv__matvec_int8(&m->tun.mv[CLKV__PH_DECODE]), fused_xmax(m), opts,
                      sizeof opts);
  variant *v = &f->var[f->n_var];
  clkv_status st = clkv__kernel_create(m->rt, "fused.cl", opts, "clkv_fused_decode", &v->k, err);
  if (st) return st;
  memcpy(v->t, want->t, sizeof v->t);
  v->split = want->split;
  f->n_var++;
  *out = v->k;
  return CLKV_OK;
}

/* Whether this context's model is of a kind the kernel covers; why not, in why. */
static int model_covered(const clkv_model *m, const char **why) {
  const int qg = clkv__kv_qg(m->info.head_dim);
  int split = 0;
  for (int l = 0; l < m->info.n_layers; l++) split |= m->layers[l].split;
  *why = NULL;
  if (FZ_CH % qg || m->info.head_dim % 2) *why = "the KV scale group size";
  if (!*why && (m->info.n_embd % 32 || m->info.n_ff % 32 || m->q_rows % 32))
    *why = "dimensions that are not multiples of 32";
  if (!*why && split && m->kv_rows % FZ_CH) *why = "split K/V rows not a multiple of 32";
  return !*why;
}

/* Decides once: counters made and every variant built, or the fallback for good. */
static int decide(clkv_context *c) {
  clkv_model *m = c->m;
  clkv_status st = CLKV_OK;
  clkv_error e = {0}, *err = &e;
  const char *why;
  clkv__fused *f = c->fused;
  if (!model_covered(m, &why)) {
    f->state = -1;
    return 0;
  }
  /* One work-group per compute unit (one work-item each: a core each on PoCL), at most
   * decode.groups. Each owns a contiguous range of every phase's chunks (kernels/fused.cl).
   * On the 2-core VM (SmolLM2 Q4_1, int8 dot) two decoded 257-275 tok/s against 170-179 for
   * one, Gemma 3 270M 98-118 against 67-72 (docs/TUNING.md "Fused decode"). */
  f->n_wg = m->rt->info.compute_units ? m->rt->info.compute_units : 1;
  if (f->n_wg > m->tun.decode_groups) f->n_wg = m->tun.decode_groups;
  /* test hook: more work-groups than workers must finish too (tests/test_fused.c) */
  const char *g = getenv("CLKV_FUSED_GROUPS");
  const int fixed = g && atoi(g) >= 1 && atoi(g) <= 256;
  if (fixed) f->n_wg = (unsigned)atoi(g);
  f->n_wg_max = f->n_wg;
  /* More than one work-group on a CPU: measured against one as the context decodes
   * (clkv__fused_observe); a count set by CLKV_FUSED_GROUPS stays as set. */
  f->adapt = !fixed && f->n_wg > 1 && m->rt->info.type == CLKV_DEVICE_CPU;
  f->mean[0] = f->mean[1] = -1;
  f->skip = 1;
  cl_int *zero = calloc(fz_counters(f->n_wg), sizeof(cl_int)), ce = CL_SUCCESS;
  if (!zero) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory for the fused step's counters");
    goto fail;
  }
  f->ctr = clCreateBuffer(m->rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                          fz_counters(f->n_wg) * sizeof(cl_int), zero, &ce);
  free(zero);
  if (ce != CL_SUCCESS || !f->ctr) {
    if (ce == CL_SUCCESS) ce = CL_INVALID_VALUE;
    st = clkv__err(err, clkv__cl_status(ce), "creating the fused step's counters: %s (%d)",
                   clkv__cl_error_name(ce), (int)ce);
    goto fail;
  }
  /* The logits in the last launch, or (CLKV_FUSED_LOGITS=0) after it in the output mat-vec's
   * own launch. */
  f->logits = 1;
  const char *h = getenv("CLKV_FUSED_LOGITS");
  if (h && (!strcmp(h, "0") || !strcmp(h, "1"))) f->logits = atoi(h);
  const size_t xmax = fused_xmax(m), xq8 = (size_t)f->n_wg * (xmax + xmax / 32 * 8);
  CLKV_CL_CREATE(f->xq8, clCreateBuffer(m->rt->context, CL_MEM_READ_WRITE, xq8, NULL, &clkv__e));
  for (int l = -1; l < m->info.n_layers; l++) {
    variant v;
    cl_kernel k;
    launch_variant(m, l, &v);
    CLKV_TRY(variant_for(c, &v, &k, err));
  }
  f->state = 1;
  return 1;
fail:
  fprintf(stderr, "clkv: warning: fused decode unavailable, using the five-launch path: %s\n",
          e.message);
  f->state = -1;
  return 0;
}

int clkv__fused_usable(clkv_context *c, int n, int phase, int n_logits) {
  if (n != 1 || phase != CLKV__PH_DECODE || n_logits != 1 || c->m->tun.decode_path != 2) return 0;
  if (!c->fused && !(c->fused = calloc(1, sizeof *c->fused))) return 0;
  return c->fused->state ? c->fused->state > 0 : decide(c);
}

int clkv__fused_logits(const clkv_context *c) { return c->fused && c->fused->logits; }

/* Steps per measured window; windows on the chosen arm between two trials of the other; how
 * much slower than the other's last mean a window may be before the other is tried again. */
#define ADAPT_WINDOW 8
#define ADAPT_STAY 32
#define ADAPT_SLACK 1.1

unsigned clkv__fused_groups(const clkv_context *c) {
  return c->fused && c->fused->state > 0 ? c->fused->n_wg : 0;
}

void clkv__fused_observe(clkv_context *c, double seconds) {
  clkv__fused *f = c->fused;
  if (!f || f->state <= 0 || !f->adapt) return;
  if (f->skip) { /* the first step, and the first after a switch, are not counted */
    f->skip = 0;
    return;
  }
  f->win_s += seconds;
  if (++f->win_n < ADAPT_WINDOW) return;
  const int a = f->arm, b = !a;
  f->mean[a] = f->win_s / ADAPT_WINDOW;
  f->win_n = 0;
  f->win_s = 0;
  if (f->probing) { /* a was on trial: keep the faster */
    f->probing = 0;
    f->arm = f->mean[a] < f->mean[b] ? a : b;
    f->since = 0;
  } else if (f->mean[b] < 0 || f->mean[a] > ADAPT_SLACK * f->mean[b] ||
             ++f->since >= ADAPT_STAY) { /* b not measured, or a slower now, or a while */
    f->probing = 1;
    f->arm = b;
    f->since = 0;
  }
  f->skip = f->arm != a;
  f->n_wg = f->arm ? 1 : f->n_wg_max;
}

clkv_status clkv__fused_step(clkv_context *c, int layer, cl_mem inv_freq, cl_mem logits,
                             clkv_error *err) {
  clkv_model *m = c->m;
  clkv__fused *f = c->fused;
  const clkv_model_info *I = &m->info;
  const int L = I->n_layers, next = layer + 1;
  const clkv__layer *A = &m->layers[layer < 0 ? 0 : layer];
  const clkv__layer *B = &m->layers[next < L ? next : 0];
  const unsigned flags = (layer >= 0 ? FZ_F_FFN : 0) |
                         (next < L ? FZ_F_QKV : f->logits ? FZ_F_OUT : 0u);
  const int kv = (next < L ? next : 0);
  variant v;
  cl_kernel k;
  launch_variant(m, layer, &v);
  clkv_status st = variant_for(c, &v, &k, err);
  if (st) return st;
  const cl_mem any = c->x; /* for the buffers a variant does not read */
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, f->ctr);
  clkv__args_u32(&a, flags);
  clkv__args_f32(&a, I->rms_eps);
  clkv__args_mem(&a, c->x);
  clkv__args_u32(&a, (unsigned)I->n_embd);
  clkv__args_mem(&a, c->tmp);
  clkv__args_mem(&a, c->att);
  clkv__args_mem(&a, A->wo.buf);
  clkv__args_u32(&a, (unsigned)m->q_rows);
  clkv__args_mem(&a, A->post_attn_norm ? A->post_attn_norm : any);
  clkv__args_mem(&a, A->ffn_norm);
  clkv__args_mem(&a, A->wgu.buf);
  clkv__args_mem(&a, c->ff);
  clkv__args_u32(&a, (unsigned)I->n_ff);
  clkv__args_mem(&a, A->wdown.buf);
  clkv__args_mem(&a, A->post_ffn_norm ? A->post_ffn_norm : any);
  clkv__args_mem(&a, B->attn_norm);
  clkv__args_mem(&a, B->split ? B->wq.buf : B->wqkv.buf);
  clkv__args_mem(&a, B->split ? B->wk.buf : any);
  clkv__args_mem(&a, B->split ? B->wv.buf : any);
  clkv__args_mem(&a, c->q);
  clkv__args_mem(&a, c->tk);
  clkv__args_mem(&a, c->tv);
  clkv__args_u32(&a, (unsigned)m->kv_rows);
  clkv__args_mem(&a, B->bqkv ? B->bqkv : any);
  clkv__args_mem(&a, B->q_norm ? B->q_norm : any);
  clkv__args_mem(&a, B->k_norm ? B->k_norm : any);
  clkv__args_mem(&a, c->dev.k[kv / c->dev.layers]);
  clkv__args_mem(&a, c->dev.v[kv / c->dev.layers]);
  clkv__args_mem(&a, c->d_btab);
  clkv__args_mem(&a, c->d_seq);
  clkv__args_mem(&a, c->d_pos);
  clkv__args_mem(&a, inv_freq ? inv_freq : m->inv_freq);
  clkv__args_u32(&a, (unsigned)(kv % c->dev.layers) * (unsigned)c->n_blocks);
  clkv__args_u32(&a, (unsigned)c->max_blocks);
  clkv__args_mem(&a, m->out_norm);
  clkv__args_mem(&a, m->output.buf);
  clkv__args_mem(&a, logits);
  clkv__args_u32(&a, (unsigned)I->n_vocab);
  clkv__args_mem(&a, f->xq8);
  if ((st = clkv__args_end(&a, err))) return st;
  const size_t global[1] = {f->n_wg}, local[1] = {1};
  return clkv__launch(m->rt, k, 1, global, local, err);
}

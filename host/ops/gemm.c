/* gemm.c — the CLBlast prefill path beside the quantized matvec kernels: the input rows
 * normalized into scratch, the weights dequantized by row tiles to F32 (CLBlastSgemm) or F16
 * (CLBlastHgemm), T = Xn · Wᵀ, then the matvec epilogue (kernels/gemm.cl). Built without
 * CLBlast, every mode but "own" reports itself unavailable. */
#include "format/gguf.h"
#include "ops/gemm.h"

#include <string.h>

#ifdef CLKV_HAVE_CLBLAST
#include <clblast_c.h>
#endif

/* The weight tile holds at most this many bytes (F32), but always 64 rows. */
#define W_TILE_BYTES ((size_t)32 << 20)

int clkv__gemm_available(const clkv_runtime *rt, int mode, char *why, size_t cap) {
  if (why && cap) why[0] = 0;
  if (mode == CLKV__GEMM_OWN) return 1;
  if (mode != CLKV__GEMM_CLBLAST && mode != CLKV__GEMM_CLBLAST16) {
    if (why) snprintf(why, cap, "unknown prefill GEMM mode %d (use own, clblast or clblast16)", mode);
    return 0;
  }
#ifndef CLKV_HAVE_CLBLAST
  (void)rt;
  if (why) snprintf(why, cap, "clkv was built without CLBlast (install libclblast-dev and "
                    "rebuild); using own");
  return 0;
#else
  if (mode == CLKV__GEMM_CLBLAST16 && !rt->info.has_fp16) {
    if (why) snprintf(why, cap, "clblast16 needs cl_khr_fp16, which %.160s lacks; use clblast (F32)",
                      rt->info.name);
    return 0;
  }
  return 1;
#endif
}

void clkv__gemm_scratch_release(clkv__gemm_scratch *s) {
  cl_mem *all[] = {&s->xn, &s->w, &s->t};
  for (size_t i = 0; i < 3; i++)
    if (*all[i]) clReleaseMemObject(*all[i]);
  memset(s, 0, sizeof *s);
}

clkv_status clkv__gemm_scratch_init(clkv_runtime *rt, size_t max_tok, size_t max_rows,
                                    size_t max_cols, clkv__gemm_scratch *s, clkv_error *err) {
  clkv_status st = CLKV_OK;
  memset(s, 0, sizeof *s);
  s->max_tok = max_tok;
  s->max_rows = max_rows;
  s->max_cols = max_cols;
  s->w_elems = max_rows * max_cols;
  if (s->w_elems * 4 > W_TILE_BYTES) s->w_elems = W_TILE_BYTES / 4;
  if (s->w_elems < 64 * max_cols) s->w_elems = 64 * max_cols;
  const size_t bytes[3] = {4 * max_tok * max_cols, 4 * s->w_elems, 4 * max_tok * max_rows};
  cl_mem *out[3] = {&s->xn, &s->w, &s->t};
  for (int i = 0; i < 3; i++) {
    if ((uint64_t)bytes[i] > rt->info.max_alloc_bytes) {
      st = clkv__err(err, CLKV_ERR_DEVICE_MEMORY, "the prefill GEMM scratch needs %zu bytes in "
                     "one buffer, more than the device allows; use a smaller --chunk or "
                     "CLKV_PREFILL_GEMM=own", bytes[i]);
      goto fail;
    }
    CLKV_CL_CREATE(*out[i], clCreateBuffer(rt->context, CL_MEM_READ_WRITE, bytes[i], NULL, &clkv__e));
  }
  return CLKV_OK;
fail:
  clkv__gemm_scratch_release(s);
  return st;
}

void clkv__gemm_options(int mode, uint32_t wtype, int epi, int head_dim, int n_kv,
                        int kv_block, int kv_type, char *buf, size_t cap) {
  snprintf(buf, cap, "-DWTYPE=%u -DEPI=%d -DNORM=%d -DGEMM_HALF=%d -DHEAD_DIM=%d -DN_KV=%d "
           "-DKV_BS=%d -DKV_TYPE=%d -DKV_QG=%d", wtype, epi, clkv__epi_norm(epi),
           mode == CLKV__GEMM_CLBLAST16, head_dim, n_kv, kv_block, kv_type,
           clkv__kv_qg(head_dim));
}

void clkv__gemm_kernels_release(clkv__gemm_kernels *k) {
  cl_kernel *all[] = {&k->norm, &k->deq, &k->epi};
  for (size_t i = 0; i < 3; i++)
    if (*all[i]) clReleaseKernel(*all[i]);
  memset(k, 0, sizeof *k);
}

clkv_status clkv__gemm_kernels_create(clkv_runtime *rt, const char *opts, clkv__gemm_kernels *k,
                                      clkv_error *err) {
  clkv_status st = CLKV_OK;
  memset(k, 0, sizeof *k);
  CLKV_TRY(clkv__kernel_create(rt, "gemm.cl", opts, "clkv_gemm_norm", &k->norm, err));
  CLKV_TRY(clkv__kernel_create(rt, "gemm.cl", opts, "clkv_gemm_dequant", &k->deq, err));
  CLKV_TRY(clkv__kernel_create(rt, "gemm.cl", opts, "clkv_gemm_epilogue", &k->epi, err));
  return CLKV_OK;
fail:
  clkv__gemm_kernels_release(k);
  return st;
}

#ifdef CLKV_HAVE_CLBLAST
static const char *blast_name(CLBlastStatusCode s) {
  switch (s) {
  case CLBlastOpenCLCompilerNotAvailable: return "CLBlastOpenCLCompilerNotAvailable";
  case CLBlastTempBufferAllocFailure: return "CLBlastTempBufferAllocFailure";
  case CLBlastOpenCLOutOfResources: return "CLBlastOpenCLOutOfResources";
  case CLBlastOpenCLBuildProgramFailure: return "CLBlastOpenCLBuildProgramFailure";
  case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
  case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
  case CLBlastDatabaseError: return "CLBlastDatabaseError";
  case CLBlastNotImplemented: return "CLBlastNotImplemented";
  default: return "a CLBlast error";
  }
}

/* C[:, c_off .. c_off+n) (ldc) = A (m × k) · B (n × k)ᵀ + beta · C, row-major. */
static clkv_status blast_gemm(clkv_runtime *rt, int half, size_t m, size_t n, size_t k,
                              cl_mem A, size_t a_off, cl_mem B, float beta, cl_mem C,
                              size_t c_off, size_t ldc, clkv_error *err) {
  cl_command_queue q = rt->queue;
  CLBlastStatusCode s =
      half ? CLBlastHgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m, n, k,
                          clkv__fp32_to_fp16(1.0f), A, a_off, k, B, 0, k, clkv__fp32_to_fp16(beta),
                          C, c_off, ldc, &q, NULL)
           : CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m, n, k,
                          1.0f, A, a_off, k, B, 0, k, beta, C, c_off, ldc, &q, NULL);
  if (s == CLBlastSuccess) return CLKV_OK;
  return clkv__err(err, s == CLBlastOpenCLBuildProgramFailure ? CLKV_ERR_BUILD : CLKV_ERR_OPENCL,
                   "CLBlast%cgemm (%zu x %zu x %zu) on %s failed with %s (%d); set "
                   "CLKV_PREFILL_GEMM=own or rerun clkv tune", half ? 'H' : 'S', m, n, k,
                   rt->info.name, blast_name(s), (int)s);
}
#endif

clkv_status clkv__gemm_enqueue(clkv_runtime *rt, const clkv__gemm_kernels *k, int mode,
                               const clkv__gemm_scratch *s, int epi, const clkv__mv_args *a,
                               int *touched, clkv_error *err) {
  *touched = 0;
  char why[256];
  if (!clkv__gemm_available(rt, mode, why, sizeof why) || mode == CLKV__GEMM_OWN)
    return clkv__err(err, CLKV_ERR_UNSUPPORTED, "prefill GEMM mode %s: %s",
                     clkv__gemm_mode_name(mode), why[0] ? why : "not a GEMM mode");
  if (a->n_tok > s->max_tok || a->rows > s->max_rows || a->cols > s->max_cols)
    return clkv__err(err, CLKV_ERR_INTERNAL, "prefill GEMM of %u×%u for %u tokens exceeds its "
                     "scratch (%zu×%zu, %zu tokens)", a->rows, a->cols, a->n_tok, s->max_rows,
                     s->max_cols, s->max_tok);
#ifndef CLKV_HAVE_CLBLAST
  (void)k, (void)epi;
  return CLKV_ERR_UNSUPPORTED;
#else
  clkv_status st = CLKV_OK;
  const int half = mode == CLKV__GEMM_CLBLAST16, norm = clkv__epi_norm(epi);
  /* F32 store/add without a norm: CLBlast reads X and writes Y itself (beta 0 or 1). */
  const int direct_in = !half && !norm, direct_out = !half && epi <= CLKV__EPI_ADD;
  clkv__args c;
  if (!direct_in) {
    c = clkv__args_begin(k->norm);
    clkv__args_mem(&c, a->X);
    clkv__args_u32(&c, a->x_row0);
    clkv__args_u32(&c, a->cols);
    clkv__args_mem(&c, a->norm_w);
    clkv__args_f32(&c, a->eps);
    clkv__args_mem(&c, s->xn);
    CLKV_TRY(clkv__args_end(&c, err));
    const size_t g[2] = {32, a->n_tok}, l[2] = {32, 1};
    CLKV_TRY(clkv__launch(rt, k->norm, 2, g, l, err));
  }
  const size_t tile = s->w_elems / a->cols < a->rows ? s->w_elems / a->cols : a->rows;
  for (size_t r0 = 0; r0 < a->rows; r0 += tile) {
    const size_t n = a->rows - r0 < tile ? a->rows - r0 : tile;
    c = clkv__args_begin(k->deq);
    clkv__args_mem(&c, a->W);
    clkv__args_u32(&c, a->cols);
    clkv__args_u32(&c, (cl_uint)r0);
    clkv__args_mem(&c, s->w);
    CLKV_TRY(clkv__args_end(&c, err));
    const size_t g[2] = {a->cols / 32, n};
    CLKV_TRY(clkv__launch(rt, k->deq, 2, g, NULL, err));
    CLKV_TRY(blast_gemm(rt, half, a->n_tok, n, a->cols, direct_in ? a->X : s->xn,
                        direct_in ? (size_t)a->x_row0 * a->cols : 0, s->w,
                        epi == CLKV__EPI_ADD && direct_out ? 1.0f : 0.0f,
                        direct_out ? a->Y : s->t, r0, a->rows, err));
    if (direct_out) *touched = 1; /* CLBlast fails before it enqueues anything */
  }
  if (direct_out) return CLKV_OK;
  *touched = 1;
  c = clkv__args_begin(k->epi);
  clkv__args_mem(&c, s->t);
  clkv__args_u32(&c, a->rows);
  clkv__args_u32(&c, a->n_tok);
  clkv__args_mem(&c, a->Y);
  clkv__args_mem(&c, a->kc);
  clkv__args_mem(&c, a->vc);
  clkv__args_mem(&c, a->btab);
  clkv__args_mem(&c, a->tok_seq);
  clkv__args_mem(&c, a->tok_pos);
  clkv__args_mem(&c, a->inv_freq);
  clkv__args_u32(&c, a->q_rows);
  clkv__args_u32(&c, a->kv_rows);
  clkv__args_u32(&c, a->layer_base);
  clkv__args_u32(&c, a->max_blocks);
  CLKV_TRY(clkv__args_end(&c, err));
  const size_t g[2] = {epi <= CLKV__EPI_ADD ? a->rows : a->rows / 2, a->n_tok};
  CLKV_TRY(clkv__launch(rt, k->epi, 2, g, NULL, err));
fail:
  return st;
#endif
}

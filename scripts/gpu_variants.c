/* gpu_variants.c — lists the kernel variants clkv builds for GPUs, one per line, with the
 * exact build options the engine passes (host/ops/ops.c, host/ops/gemm.c) at the launch shapes
 * of each vendor's platform profile and, with --full, of the tuner's search values. Built and
 * run by scripts/gpu-report against the static library; no OpenCL device is needed.
 * Output: target  file  kernels(,)  phase  variant  options  (tab-separated). */
#include <stdio.h>
#include <string.h>

#include "engine/fused.h"
#include "format/gguf.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "tune/tunables.h"

/* A GPU of each kind the report compiles for, as the runtime would classify it. */
typedef struct target {
  const char *name;  /* the compiler target: sm_80, gfx1030, tgllp ... */
  clkv_vendor vendor;
  const char *arch;  /* runtime/device.c's arch string: selects the profile section */
  unsigned subgroup; /* warp / wavefront / preferred subgroup */
  size_t max_wg;     /* what the driver reports (AMD: 256, the wg_limit_256 quirk) */
} target;

static const target TARGETS[] = {
    {"sm_80", CLKV_VENDOR_NVIDIA, "nvidia-ampere", 32, 1024},
    {"sm_90", CLKV_VENDOR_NVIDIA, "nvidia-hopper", 32, 1024},
    {"gfx1030", CLKV_VENDOR_AMD, "amd-rdna", 32, 256},
    {"gfx90a", CLKV_VENDOR_AMD, "amd-gcn", 64, 256},
    {"tgllp", CLKV_VENDOR_INTEL, "intel-xe", 16, 512},
    {"dg2", CLKV_VENDOR_INTEL, "intel-xe", 16, 1024},
};

/* Model geometry: SmolLM2-135M (head_dim 64, 3 KV heads) and a Llama-class 128 / 8. */
static const int HEAD_DIMS[][2] = {{64, 3}, {128, 8}};
#define KV_BLOCK 16
static const char *const EPI_NAMES[CLKV__N_EPI] = {"store", "add", "qkv", "swiglu"};
static const char *const KV_NAMES[] = {"f16", "q8", "q4"};

static int full; /* --full: the tuner's search values too */
static int only_main; /* --subset: the default model's weight type (Q4_1) only */
static int sweep;     /* set while listing the tuner's space: Q4_1, the two largest epilogues */

static void matvec(const target *t, const clkv__mv_shape *sh, int phase, const char *origin) {
  char opts[512];
  for (uint32_t w = 0; w < GGML_T_COUNT; w++) {
    if (clkv__wtype_slot(w) < 0) continue;
    if ((only_main || sweep) && w != GGML_T_Q4_1) continue;
    for (int epi = 0; epi < CLKV__N_EPI; epi++)
      for (int kv = 0; kv < 3; kv++) {
        if (kv && epi != CLKV__EPI_QKV) break; /* the KV type reaches only the QKV epilogue */
        if (sweep && (kv || (epi != CLKV__EPI_QKV && epi != CLKV__EPI_SWIGLU))) continue;
        const clkv__mv_shape f = clkv__matvec_fit(sh, epi, kv, HEAD_DIMS[0][0], t->max_wg);
        clkv__matvec_options(&f, w, epi, HEAD_DIMS[0][0], HEAD_DIMS[0][1], KV_BLOCK, kv, opts,
                             sizeof opts);
        printf("%s\tmatvec.cl\tclkv_matvec\t%s\t%s %s%s%s ks%u rg%u rows%u tt%u%s (%s)\t%s\n", t->name,
               phase == CLKV__PH_DECODE ? "decode" : "prefill", clkv__ggml_type_get(w)->name, EPI_NAMES[epi],
               epi == CLKV__EPI_QKV ? " kv " : "", epi == CLKV__EPI_QKV ? KV_NAMES[kv] : "",
               f.ksplit, f.rg, clkv__matvec_rows(&f, epi), f.tt, clkv__matvec_int8(&f) ? " int8" : "",
               origin, opts);
      }
  }
}

static void attention(const target *t, const clkv__tunables *tun, const char *origin) {
  char opts[512];
  for (int h = 0; h < 2; h++)
    for (int kv = 0; kv < 3; kv++) {
      /* query heads 3 per KV head (SmolLM2's, Llama's 4): GPUs build the one-head form */
      clkv__attn_options(tun, HEAD_DIMS[h][0], HEAD_DIMS[h][1], 3 * HEAD_DIMS[h][1], KV_BLOCK, kv,
                         0, opts, sizeof opts);
      printf("%s\tattention.cl\tclkv_attn_paged\tdecode\thd%d kv %s wg%u (%s)\t%s\n", t->name,
             HEAD_DIMS[h][0], KV_NAMES[kv], tun->att_wg, origin, opts);
      printf("%s\tattention.cl\tclkv_attn_prefill\tprefill\thd%d kv %s tq%u tk%u (%s)\t%s\n",
             t->name, HEAD_DIMS[h][0], KV_NAMES[kv], tun->tq, tun->tk, origin, opts);
    }
}

/* The CLBlast path's helpers (gemm.cl) and the embedding lookup: shape-free. */
static void others(const target *t) {
  char opts[512];
  for (uint32_t w = 0; w < GGML_T_COUNT; w++) {
    if (clkv__wtype_slot(w) < 0) continue;
    if (only_main && w != GGML_T_Q4_1) continue;
    printf("%s\tembed.cl\tclkv_get_rows\tother\t%s\t-DWTYPE=%u\n", t->name, clkv__ggml_type_get(w)->name, w);
    for (int mode = CLKV__GEMM_CLBLAST; mode <= CLKV__GEMM_CLBLAST16; mode++)
      for (int epi = 0; epi < CLKV__N_EPI; epi++) {
        clkv__gemm_options(mode, w, epi, HEAD_DIMS[0][0], HEAD_DIMS[0][1], KV_BLOCK, CLKV__KV_F16,
                           opts, sizeof opts);
        printf("%s\tgemm.cl\tclkv_gemm_norm,clkv_gemm_dequant,clkv_gemm_epilogue\tprefill\t%s %s %s\t%s\n",
               t->name, clkv__ggml_type_get(w)->name, EPI_NAMES[epi], clkv__gemm_mode_name(mode), opts);
      }
  }
}

/* The fused decode step (kernels/fused.cl): off in every GPU profile (decode.path 1; a
 * PoCL CPU path), so listed as "other" — outside the decode-path rule (its chunk's results
 * live in a private array: stack on GPUs) — but it must build for every target. */
static void fused(const target *t) {
  char opts[512];
  for (uint32_t w = 0; w < GGML_T_COUNT; w++) {
    if (clkv__wtype_slot(w) < 0) continue;
    if (only_main && w != GGML_T_Q4_1) continue;
    const uint32_t types[CLKV__FZ_TYPES] = {w, w, w, w, w, w, GGML_T_Q8_0};
    const clkv__arch *llama = clkv__arch_find("llama"), *gemma = clkv__arch_find("gemma3");
    for (int kv = 0; kv < 3; kv++) {
      clkv__fused_options(types, 0, llama, HEAD_DIMS[0][0], HEAD_DIMS[0][1], KV_BLOCK, kv, 0, 1536,
                          opts,
                          sizeof opts);
      printf("%s\tfused.cl\tclkv_fused_decode\tother\t%s kv %s (PoCL CPU path)\t%s\n", t->name,
             clkv__ggml_type_get(w)->name, KV_NAMES[kv], opts);
    }
    if (gemma) { /* split q/k/v with per-head norms, post-norms, GeGLU */
      clkv__fused_options(types, 1, gemma, 256, 1, KV_BLOCK, CLKV__KV_F16, 0, 2048, opts,
                          sizeof opts);
      printf("%s\tfused.cl\tclkv_fused_decode\tother\t%s gemma3 (PoCL CPU path)\t%s\n", t->name,
             clkv__ggml_type_get(w)->name, opts);
    }
  }
}

/* The tuner's candidates (the search column of each row): every decode shape, the prefill
 * token tiles at the profile's row groups, for Q4_1 and the QKV and SwiGLU epilogues. */
static void tuner_space(const target *t, const clkv__tunables *def) {
  const clkv__tunable *ks = &clkv__tunable_table[CLKV__TUN_DECODE_KSPLIT];
  const clkv__tunable *rg = &clkv__tunable_table[CLKV__TUN_DECODE_RG];
  const clkv__tunable *rows = &clkv__tunable_table[CLKV__TUN_DECODE_ROWS];
  const clkv__tunable *tt = &clkv__tunable_table[CLKV__TUN_PREFILL_TT];
  for (unsigned a = 0; a < ks->n_search; a++)
    for (unsigned b = 0; b < rg->n_search; b++)
      for (unsigned c = 0; c < rows->n_search; c++) {
        clkv__mv_shape s = {ks->search[a], rg->search[b], rows->search[c], 1, 1};
        if ((size_t)s.ksplit * s.rg > t->max_wg) continue;
        matvec(t, &s, CLKV__PH_DECODE, "tuner");
        for (unsigned d = 0; d < tt->n_search; d++) {
          s.tt = tt->search[d];
          if (s.tt > 1 && s.rg == def->mv[CLKV__PH_PREFILL].rg) matvec(t, &s, CLKV__PH_PREFILL, "tuner");
        }
      }
  const clkv__tunable *wg = &clkv__tunable_table[CLKV__TUN_ATT_WG];
  const clkv__tunable *tq = &clkv__tunable_table[CLKV__TUN_TQ];
  for (unsigned a = 0; a < wg->n_search && a < tq->n_search; a++) {
    clkv__tunables u = *def;
    u.att_wg = wg->search[a];
    u.tq = tq->search[a];
    attention(t, &u, "tuner");
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--full")) full = 1;
    else if (!strcmp(argv[i], "--subset")) only_main = 1;
    else {
      fprintf(stderr, "usage: gpu_variants [--full | --subset]\n");
      return 2;
    }
  }
  for (size_t i = 0; i < sizeof TARGETS / sizeof TARGETS[0]; i++) {
    const target *t = &TARGETS[i];
    clkv_device_info d;
    memset(&d, 0, sizeof d);
    d.type = CLKV_DEVICE_GPU;
    d.vendor = t->vendor;
    snprintf(d.arch, sizeof d.arch, "%s", t->arch);
    d.subgroup_size = t->subgroup;
    d.max_workgroup_size = t->max_wg;
    clkv__tunables tun;
    clkv__default_tunables(&d, &tun); /* profile lookup, as the engine does without a tuning file */
    matvec(t, &tun.mv[CLKV__PH_DECODE], CLKV__PH_DECODE, "profile");
    if (tun.mv[CLKV__PH_DECODE].dot < 2) { /* the int8 dot too, which the tuner may choose */
      clkv__mv_shape s8 = tun.mv[CLKV__PH_DECODE];
      s8.dot = 2;
      const int keep = only_main;
      only_main = 1;
      matvec(t, &s8, CLKV__PH_DECODE, "profile, decode.dot 2");
      only_main = keep;
    }
    matvec(t, &tun.mv[CLKV__PH_PREFILL], CLKV__PH_PREFILL, "profile");
    attention(t, &tun, "profile");
    if (!only_main || i == 0) others(t);
    fused(t);
    if (full) {
      sweep = 1;
      tuner_space(t, &tun);
      sweep = 0;
    }
  }
  return 0;
}

/* tunables.h — the launch shapes of the kernels (kernels' -D tunables) and the prefill path
 * of each projection, and where they come from: built-in defaults, the platform profile,
 * the per-device tuning file written by `clkv tune`, the environment (docs/TUNING.md). Every
 * numeric tunable is a row of CLKV__TUNABLES (runtime/tunables_table.h). Internal to clkv. */
#ifndef CLKV_TUNABLES_H
#define CLKV_TUNABLES_H

#include <stdio.h>

#include "clkv_internal.h"
#include "tunables_table.h"

/* The phase a kernel variant serves: one token per sequence, or a prompt chunk. */
enum { CLKV__PH_DECODE = 0, CLKV__PH_PREFILL = 1 };
/* How a prefill projection is computed: our quantized matvec kernels, or the weights
 * dequantized by row tiles and multiplied by CLBlast (F32 Sgemm, F16 Hgemm). */
enum { CLKV__GEMM_OWN = 0, CLKV__GEMM_CLBLAST = 1, CLKV__GEMM_CLBLAST16 = 2, CLKV__GEMM_MODES };
/* The four projections of a layer: the shape classes the prefill path is chosen for. */
enum { CLKV__PROJ_QKV = 0, CLKV__PROJ_O, CLKV__PROJ_GU, CLKV__PROJ_DOWN, CLKV__N_PROJ };

/* Launch shape of the matvec family for one phase (tunables, from platforms/ defaults). */
typedef struct clkv__mv_shape {
  unsigned ksplit, rg, rows, tt;
  unsigned dot; /* CLKV_INT8_TYPE's dot: 1 (or 0) float, 2 int8 activations, 3 int8 with x86 builtins */
  unsigned form; /* prefill (tt > 1): 1 (or 0) the dot per row, 2 the CPU outer product */
} clkv__mv_shape;

typedef struct clkv__tunables {
  clkv__mv_shape mv[2];     /* [phase] */
  unsigned att_wg;          /* decode attention threads per (token, head) */
  unsigned tq, tk;          /* prefill attention tiles */
  unsigned decode_path;     /* decode.path: 2 a single sequence's decode step fused
                               (kernels/fused.cl), 1 a launch per projection */
  unsigned decode_groups;   /* decode.groups: the fused step's work-groups, one per compute
                               unit up to this many */
  unsigned gemm[CLKV__N_PROJ]; /* [projection] prefill path, CLKV__GEMM_*; 0 (own) default */
} clkv__tunables;


/* The kernels `clkv tune` times, each with its own shape: the tunables' kernel column. The
 * gemm kinds choose each projection's prefill path (own matvec or CLBlast), in
 * CLKV__PROJ_* order. */
enum { CLKV__TK_NONE = -1, CLKV__TK_MV_DECODE = 0, CLKV__TK_MV_PREFILL, CLKV__TK_ATT_DECODE,
       CLKV__TK_ATT_PREFILL, CLKV__TK_GEMM_QKV, CLKV__TK_GEMM_O, CLKV__TK_GEMM_GU,
       CLKV__TK_GEMM_DOWN, CLKV__TK_COUNT };

/* One row of CLKV__TUNABLES as data (the columns are described there). */
typedef struct clkv__tunable {
  const char *key;         /* "decode.ksplit" */
  size_t offset;           /* of its unsigned field in clkv__tunables */
  unsigned cpu, gpu;       /* built-in defaults; gpu CLKV__TUN_SUBGROUP: the subgroup size */
  unsigned lo, hi;         /* valid range */
  int pow2, wg;            /* a power of two; a factor of its kernel's work-group size */
  const char *env;         /* developer override, or NULL */
  int kernel;              /* CLKV__TK_*, or CLKV__TK_NONE */
  int follows;             /* CLKV__TUN_*, or CLKV__TUN_NONE */
  const unsigned *search;  /* the tuner's candidates, n_search of them, in order */
  unsigned n_search;
} clkv__tunable;

/* The rows, indexed by CLKV__TUN_*. */
extern const clkv__tunable clkv__tunable_table[CLKV__TUN_COUNT];

/* Tunable id's field in t. */
static inline unsigned *clkv__tunable_at(clkv__tunables *t, int id) {
  return (unsigned *)((char *)t + clkv__tunable_table[id].offset);
}
static inline unsigned clkv__tunable_get(const clkv__tunables *t, int id) {
  return *(const unsigned *)((const char *)t + clkv__tunable_table[id].offset);
}
/* The id of a key ("decode.rg"), or CLKV__TUN_NONE. */
int clkv__tunable_find(const char *key);
/* 1 if v is a valid value of tunable id: in its range, a power of two where required. */
int clkv__tunable_valid(int id, long v);
/* 1 if every value of t is valid and every kernel's work-group (the product of its wg
 * tunables) is at most max_wg work-items. */
int clkv__tunables_fit(const clkv__tunables *t, size_t max_wg);
/* Writes t as the tuning file's "key=value" lines, one per tunable, then the prefill paths. */
void clkv__tunables_print(FILE *f, const clkv__tunables *t);

/* Names of the prefill paths and projections, as the tuning file and CLKV_PREFILL_GEMM
 * spell them. */
const char *clkv__gemm_mode_name(int mode);   /* "own", "clblast", "clblast16" */
int clkv__gemm_mode_parse(const char *s);     /* a CLKV__GEMM_* value, or -1 */
const char *clkv__proj_name(int proj);        /* "qkv", "o", "gu", "down" */

/* The device's defaults with the environment overrides (no file). */
void clkv__default_tunables(const clkv_device_info *d, clkv__tunables *t);
/* Defaults for the device, then the tuning file if present and valid (a damaged file is
 * ignored with a one-line warning on stderr), then the environment overrides. Returns 1 if
 * the file was applied; source gets its path or "defaults". */
int clkv__tunables_load(const clkv_runtime *rt, clkv__tunables *t, char *source, size_t cap);
/* Parses "key=value" lines into t (only keys present change). 0 on success, -1 if damaged. */
int clkv__tunables_parse(const char *text, clkv__tunables *t);
/* Where tunable id's value came from, for messages: "environment CLKV_MV_ROWS", the tuning
 * file's or the platform profile's "path:line", or "built-in default". */
void clkv__tunable_origin(const clkv_runtime *rt, int id, char *buf, size_t cap);
/* <cache_dir>/tuning/<sha256 of device, driver, platform, format>.txt */
void clkv__tuning_path(const clkv_runtime *rt, char *buf, size_t cap);

#endif /* CLKV_TUNABLES_H */

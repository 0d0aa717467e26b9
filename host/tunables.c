/* tunables.c — default launch shapes of the kernels per kind of device, used before (or
 * without) tuning. CPUs (PoCL) want one thread per row group and no local reductions;
 * GPUs want many threads sharing a row and a local-memory reduction. */
#include "model.h"

#include <stdlib.h>

void clkv__default_tunables(const clkv_device_info *d, clkv__tunables *t);

static unsigned env_u(const char *name, unsigned def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  long v = strtol(s, NULL, 10);
  return v > 0 && v <= 4096 ? (unsigned)v : def;
}

void clkv__default_tunables(const clkv_device_info *d, clkv__tunables *t) {
  if (d->type == CLKV_DEVICE_CPU) {
    t->mv[CLKV__PH_DECODE] = (clkv__mv_shape){1, 4, 2, 1};
    t->mv[CLKV__PH_PREFILL] = (clkv__mv_shape){1, 4, 2, 8};
    t->att_wg = 8;
    t->tq = 16;
    t->tk = 32;
  } else {
    unsigned warp = d->subgroup_size ? d->subgroup_size : 32;
    t->mv[CLKV__PH_DECODE] = (clkv__mv_shape){warp, 2, 2, 1};
    t->mv[CLKV__PH_PREFILL] = (clkv__mv_shape){warp, 2, 2, 4};
    t->att_wg = 64;
    t->tq = 32;
    t->tk = 32;
  }
  /* Developer overrides, until the tuner owns these. */
  t->mv[CLKV__PH_DECODE].rg = env_u("CLKV_MV_RG", t->mv[CLKV__PH_DECODE].rg);
  t->mv[CLKV__PH_DECODE].rows = env_u("CLKV_MV_ROWS", t->mv[CLKV__PH_DECODE].rows);
  t->mv[CLKV__PH_DECODE].ksplit = env_u("CLKV_MV_KSPLIT", t->mv[CLKV__PH_DECODE].ksplit);
  t->mv[CLKV__PH_PREFILL].tt = env_u("CLKV_MV_TT", t->mv[CLKV__PH_PREFILL].tt);
  t->att_wg = env_u("CLKV_ATT_WG", t->att_wg);
}

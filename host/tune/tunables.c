/* tunables.c — launch shapes of the kernels: built-in defaults per kind of device, then the
 * device's platform profile (platforms/<name>.profile, runtime/platform.c), then the per-device
 * tuning file written by `clkv tune` (host/tuner.c), then environment overrides.
 * CPUs (PoCL) want one thread per row group and no local reductions; GPUs want many
 * threads sharing a row and a local-memory reduction. */
#include "platform.h"
#include "tune/tunables.h"

#include <stdlib.h>
#include <string.h>

#define CLKV__TUNING_FORMAT "clkv-tuning-v1"

static const char *const MODE_NAMES[CLKV__GEMM_MODES] = {"own", "clblast", "clblast16"};
static const char *const PROJ_NAMES[CLKV__N_PROJ] = {"qkv", "o", "gu", "down"};

const char *clkv__gemm_mode_name(int mode) {
  return mode >= 0 && mode < CLKV__GEMM_MODES ? MODE_NAMES[mode] : "?";
}

int clkv__gemm_mode_parse(const char *s) {
  for (int i = 0; s && i < CLKV__GEMM_MODES; i++)
    if (!strcmp(s, MODE_NAMES[i])) return i;
  return -1;
}

const char *clkv__proj_name(int proj) {
  return proj >= 0 && proj < CLKV__N_PROJ ? PROJ_NAMES[proj] : "?";
}


static unsigned env_u(const char *name, unsigned def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  long v = strtol(s, NULL, 10);
  return v > 0 && v <= 4096 ? (unsigned)v : def;
}

static unsigned *field(clkv__tunables *t, const char *key);
static void profile_defaults(const clkv_device_info *d, clkv__tunables *t);

static void device_defaults(const clkv_device_info *d, clkv__tunables *t) {
  for (int p = 0; p < CLKV__N_PROJ; p++) t->gemm[p] = CLKV__GEMM_OWN; /* until measured */
  if (d->type == CLKV_DEVICE_CPU) {
    t->mv[CLKV__PH_DECODE] = (clkv__mv_shape){1, 4, 4, 1};
    t->mv[CLKV__PH_PREFILL] = (clkv__mv_shape){1, 4, 4, 16};
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
  profile_defaults(d, t);
}

/* The values the device's platform profile sets replace the built-in ones, shrunk (halving)
 * where they exceed the device's work-group size. */
static void profile_defaults(const clkv_device_info *d, clkv__tunables *t) {
  clkv__profile p;
  clkv_error err;
  if (clkv__profile_lookup(d, &p, &err) != CLKV_OK) {
    fprintf(stderr, "clkv: warning: %s; using the built-in kernel defaults\n", err.message);
    return;
  }
  for (int k = 0; k < CLKV__PK_COUNT; k++) {
    unsigned *f = field(t, clkv__profile_key_name(k));
    if (f && p.from[k].level != CLKV__PL_NONE) *f = (unsigned)p.v[k];
  }
  size_t wg = d->max_workgroup_size ? d->max_workgroup_size : 4096;
  for (int ph = 0; ph < 2; ph++)
    while (t->mv[ph].ksplit * t->mv[ph].rg > wg) {
      if (t->mv[ph].rg > 1) t->mv[ph].rg /= 2;
      else t->mv[ph].ksplit /= 2;
    }
  while (t->att_wg > wg) t->att_wg /= 2;
  while (t->tq > wg) t->tq /= 2;
}

/* Developer overrides, applied last. */
static void env_overrides(clkv__tunables *t) {
  t->mv[CLKV__PH_DECODE].rg = env_u("CLKV_MV_RG", t->mv[CLKV__PH_DECODE].rg);
  t->mv[CLKV__PH_DECODE].rows = env_u("CLKV_MV_ROWS", t->mv[CLKV__PH_DECODE].rows);
  t->mv[CLKV__PH_DECODE].ksplit = env_u("CLKV_MV_KSPLIT", t->mv[CLKV__PH_DECODE].ksplit);
  t->mv[CLKV__PH_PREFILL].tt = env_u("CLKV_MV_TT", t->mv[CLKV__PH_PREFILL].tt);
  t->att_wg = env_u("CLKV_ATT_WG", t->att_wg);
  const char *g = getenv("CLKV_PREFILL_GEMM");
  if (g && *g) {
    int mode = clkv__gemm_mode_parse(g);
    if (mode < 0)
      fprintf(stderr, "clkv: warning: CLKV_PREFILL_GEMM=%s is not own, clblast or clblast16; "
              "ignored\n", g);
    for (int p = 0; p < CLKV__N_PROJ && mode >= 0; p++) t->gemm[p] = (unsigned)mode;
  }
}

void clkv__default_tunables(const clkv_device_info *d, clkv__tunables *t) {
  device_defaults(d, t);
  env_overrides(t);
}

void clkv__tuning_path(const clkv_runtime *rt, char *buf, size_t cap) {
  const char *fields[] = {rt->info.name, rt->info.driver_version, rt->info.platform_name,
                          CLKV__TUNING_FORMAT};
  clkv__sha256 s;
  clkv__sha256_init(&s);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    clkv__sha256_update(&s, fields[i], strlen(fields[i]) + 1); /* NUL separates fields */
  unsigned char d[32];
  char hex[65];
  clkv__sha256_final(&s, d);
  clkv__sha256_hex(d, hex);
  snprintf(buf, cap, "%s/tuning/%s.txt", rt->cache_dir, hex);
}

static unsigned *field(clkv__tunables *t, const char *key) {
  static const char *const names[] = {"ksplit", "rg", "rows", "tt"};
  for (int ph = 0; ph < 2; ph++) {
    const char *pre = ph == CLKV__PH_DECODE ? "decode." : "prefill.";
    size_t n = strlen(pre);
    if (strncmp(key, pre, n)) continue;
    unsigned *f[] = {&t->mv[ph].ksplit, &t->mv[ph].rg, &t->mv[ph].rows, &t->mv[ph].tt};
    for (int i = 0; i < 4; i++)
      if (!strcmp(key + n, names[i])) return f[i];
    return NULL;
  }
  if (!strcmp(key, "att_wg")) return &t->att_wg;
  if (!strcmp(key, "tq")) return &t->tq;
  if (!strcmp(key, "tk")) return &t->tk;
  return NULL;
}

int clkv__tunables_parse(const char *text, clkv__tunables *t) {
  clkv__tunables r = *t;
  int n = 0;
  for (const char *p = text; *p;) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char line[128];
    if (*p == '#') { /* a comment, of any length */
      p += len + (end ? 1 : 0);
      continue;
    }
    if (len >= sizeof line) return -1;
    memcpy(line, p, len);
    line[len] = 0;
    p += len + (end ? 1 : 0);
    if (len && line[len - 1] == '\r') line[--len] = 0;
    if (!len) continue;
    char *eq = strchr(line, '=');
    if (!eq) return -1;
    *eq = 0;
    unsigned *f = field(&r, line);
    char *num_end;
    long v = strtol(eq + 1, &num_end, 10);
    if (!strncmp(line, "prefill.gemm.", 13)) { /* prefill.gemm.<projection>=<mode> */
      int p = 0, mode = clkv__gemm_mode_parse(eq + 1);
      while (p < CLKV__N_PROJ && strcmp(line + 13, clkv__proj_name(p))) p++;
      if (p == CLKV__N_PROJ || mode < 0) return -1;
      r.gemm[p] = (unsigned)mode;
      n++;
      continue;
    }
    if (!f || num_end == eq + 1 || *num_end || v < 1 || v > 4096) return -1;
    *f = (unsigned)v;
    n++;
  }
  for (int ph = 0; ph < 2; ph++)
    if (r.mv[ph].ksplit & (r.mv[ph].ksplit - 1)) return -1; /* a power of two */
  if (!n) return -1;
  *t = r;
  return 0;
}

/* The whole file as a string (caller frees), or NULL if absent/unreadable. */
static char *read_small_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(65537);
  size_t n = buf ? fread(buf, 1, 65536, f) : 0;
  int bad = !buf || ferror(f) || !feof(f) || memchr(buf, 0, n);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  return buf;
}

int clkv__tunables_load(const clkv_runtime *rt, clkv__tunables *t, char *source, size_t cap) {
  char path[1200];
  device_defaults(&rt->info, t);
  clkv__tuning_path(rt, path, sizeof path);
  int loaded = 0;
  FILE *probe = fopen(path, "rb");
  if (probe) {
    fclose(probe);
    char *text = read_small_file(path);
    clkv__tunables r = *t;
    size_t wg = rt->info.max_workgroup_size ? rt->info.max_workgroup_size : 1;
    int ok = text && clkv__tunables_parse(text, &r) == 0 &&
             r.mv[0].ksplit * r.mv[0].rg <= wg && r.mv[1].ksplit * r.mv[1].rg <= wg &&
             r.att_wg <= wg && r.tq <= wg;
    free(text);
    if (ok) {
      *t = r;
      loaded = 1;
    } else {
      fprintf(stderr, "clkv: warning: ignoring damaged tuning file %s (run clkv tune again)\n",
              path);
    }
  }
  env_overrides(t);
  if (source && cap) snprintf(source, cap, "%s", loaded ? path : "defaults");
  return loaded;
}

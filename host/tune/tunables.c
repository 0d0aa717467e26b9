/* tunables.c — the kernels' launch shapes from the rows of CLKV__TUNABLES: built-in defaults
 * per kind of device (CPUs: a work-item per row group, no local reductions; GPUs: a subgroup
 * shares a row), then the platform profile, the tuning file of `clkv tune`, the environment. */
#include "platform.h"
#include "tune/tunables.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CLKV__TUNING_FORMAT "clkv-tuning-v1"

/* A row's search column, (a, b, c) or (), as an array and its length. The leading 0 keeps the
 * initializer non-empty (C11 has no empty braces); the candidates start after it. */
#define UNPAREN(...) __VA_ARGS__
#define SEARCH_VALUES(list) ((const unsigned[]){0, UNPAREN list} + 1)
#define SEARCH_COUNT(list) \
  ((unsigned)(sizeof((const unsigned[]){0, UNPAREN list}) / sizeof(unsigned)) - 1)

const clkv__tunable clkv__tunable_table[CLKV__TUN_COUNT] = {
#define ROW(id, key_, field_, cpu_, gpu_, lo_, hi_, pow2_, wg_, env_, kernel_, follows_, search_) \
  [CLKV__TUN_##id] = {.key = key_, .offset = offsetof(clkv__tunables, field_), .cpu = cpu_,      \
                      .gpu = gpu_, .lo = lo_, .hi = hi_, .pow2 = pow2_, .wg = wg_, .env = env_,  \
                      .kernel = CLKV__TK_##kernel_, .follows = CLKV__TUN_##follows_,             \
                      .search = SEARCH_VALUES(search_), .n_search = SEARCH_COUNT(search_)},
    CLKV__TUNABLES(ROW)
#undef ROW
};

/* Every field a row names is an unsigned member of clkv__tunables. */
#define FIELD_IS_UNSIGNED(id, key, field, ...)                                             \
  _Static_assert(_Generic(((clkv__tunables *)0)->field, unsigned: 1, default: 0), key \
                 ": the field of a tunable must be unsigned");
CLKV__TUNABLES(FIELD_IS_UNSIGNED)
#undef FIELD_IS_UNSIGNED

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

int clkv__tunable_find(const char *key) {
  for (int id = 0; key && id < CLKV__TUN_COUNT; id++)
    if (!strcmp(key, clkv__tunable_table[id].key)) return id;
  return CLKV__TUN_NONE;
}

int clkv__tunable_valid(int id, long v) {
  const clkv__tunable *r = &clkv__tunable_table[id];
  return v >= (long)r->lo && v <= (long)r->hi && (!r->pow2 || (v > 0 && !(v & (v - 1))));
}

/* The work-group size of a tuned kernel: the product of its wg tunables. */
static size_t wg_size(const clkv__tunables *t, int kernel) {
  size_t n = 1;
  for (int id = 0; id < CLKV__TUN_COUNT; id++)
    if (clkv__tunable_table[id].kernel == kernel && clkv__tunable_table[id].wg)
      n *= clkv__tunable_get(t, id);
  return n;
}

int clkv__tunables_fit(const clkv__tunables *t, size_t max_wg) {
  for (int id = 0; id < CLKV__TUN_COUNT; id++)
    if (!clkv__tunable_valid(id, (long)clkv__tunable_get(t, id))) return 0;
  for (int k = 0; k < CLKV__TK_COUNT; k++)
    if (wg_size(t, k) > max_wg) return 0;
  return 1;
}

/* Halves the last wg factor above 1 of each kernel until its work-group fits max_wg (the
 * matvec: rg first, then ksplit). */
static void shrink_to_fit(clkv__tunables *t, size_t max_wg) {
  for (int k = 0; k < CLKV__TK_COUNT; k++)
    while (wg_size(t, k) > max_wg) {
      int last = CLKV__TUN_NONE;
      for (int id = 0; id < CLKV__TUN_COUNT; id++)
        if (clkv__tunable_table[id].kernel == k && clkv__tunable_table[id].wg &&
            clkv__tunable_get(t, id) > 1)
          last = id;
      if (last == CLKV__TUN_NONE) break;
      *clkv__tunable_at(t, last) /= 2;
    }
}

/* The built-in shapes: each row's CPU or GPU default. */
static void builtin_defaults(const clkv_device_info *d, clkv__tunables *t) {
  const unsigned subgroup = d->subgroup_size ? d->subgroup_size : 32;
  memset(t, 0, sizeof *t);
  for (int p = 0; p < CLKV__N_PROJ; p++) t->gemm[p] = CLKV__GEMM_OWN; /* until measured */
  for (int id = 0; id < CLKV__TUN_COUNT; id++) {
    const clkv__tunable *r = &clkv__tunable_table[id];
    const unsigned v = d->type == CLKV_DEVICE_CPU ? r->cpu : r->gpu;
    *clkv__tunable_at(t, id) = v == CLKV__TUN_SUBGROUP ? subgroup : v;
  }
}

/* The values the device's platform profile sets replace the built-in ones, shrunk (halving)
 * where they exceed the device's work-group size. */
static void device_defaults(const clkv_device_info *d, clkv__tunables *t) {
  clkv__profile p;
  clkv_error err;
  builtin_defaults(d, t);
  if (clkv__profile_lookup(d, &p, &err) != CLKV_OK) {
    fprintf(stderr, "clkv: warning: %s; using the built-in kernel defaults\n", err.message);
    return;
  }
  for (int id = 0; id < CLKV__TUN_COUNT; id++)
    if (p.from[CLKV__PK_TUNABLE0 + id].level != CLKV__PL_NONE)
      *clkv__tunable_at(t, id) = (unsigned)p.v[CLKV__PK_TUNABLE0 + id];
  shrink_to_fit(t, d->max_workgroup_size ? d->max_workgroup_size : 4096);
}

/* Developer overrides, applied last; an invalid value is ignored with a warning. */
static void env_overrides(clkv__tunables *t) {
  for (int id = 0; id < CLKV__TUN_COUNT; id++) {
    const clkv__tunable *r = &clkv__tunable_table[id];
    const char *s = r->env ? getenv(r->env) : NULL;
    if (!s || !*s) continue;
    const long v = strtol(s, NULL, 10);
    if (clkv__tunable_valid(id, v))
      *clkv__tunable_at(t, id) = (unsigned)v;
    else
      fprintf(stderr, "clkv: warning: %s=%s is not %s %u to %u (%s); ignored\n", r->env, s,
              r->pow2 ? "a power of two from" : "a whole number from", r->lo, r->hi, r->key);
  }
  const char *g = getenv("CLKV_PREFILL_GEMM");
  if (g && *g) {
    int mode = clkv__gemm_mode_parse(g);
    if (mode < 0)
      fprintf(stderr, "clkv: warning: CLKV_PREFILL_GEMM=%s is not own, clblast or clblast16; "
              "ignored\n", g);
    for (int p = 0; p < CLKV__N_PROJ && mode >= 0; p++) t->gemm[p] = (unsigned)mode;
  }
}

/* Prefill's int8 activations only where decode has them too: decode.dot 1 (CLKV_MV_DOT=1, as
 * the test suites set) gives the float dot everywhere, whatever prefill.dot says. */
static void settle_dots(clkv__tunables *t) {
  if (t->mv[CLKV__PH_DECODE].dot <= 1) t->mv[CLKV__PH_PREFILL].dot = 1;
}

void clkv__default_tunables(const clkv_device_info *d, clkv__tunables *t) {
  device_defaults(d, t);
  env_overrides(t);
  settle_dots(t);
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

void clkv__tunables_print(FILE *f, const clkv__tunables *t) {
  for (int id = 0; id < CLKV__TUN_COUNT; id++)
    fprintf(f, "%s=%u\n", clkv__tunable_table[id].key, clkv__tunable_get(t, id));
  for (int p = 0; p < CLKV__N_PROJ; p++)
    fprintf(f, "prefill.gemm.%s=%s\n", clkv__proj_name(p), clkv__gemm_mode_name((int)t->gemm[p]));
}

/* One "key=value" line (NUL-terminated, no newline) into t: 0, or -1 if damaged. A tunable
 * takes a whole number valid for its row; prefill.gemm.<projection> a mode name. */
static int parse_line(char *line, clkv__tunables *t) {
  char *eq = strchr(line, '='), *num_end;
  if (!eq) return -1;
  *eq = 0;
  const char *val = eq + 1;
  if (!strncmp(line, "prefill.gemm.", 13)) {
    int p = 0, mode = clkv__gemm_mode_parse(val);
    while (p < CLKV__N_PROJ && strcmp(line + 13, clkv__proj_name(p))) p++;
    if (p == CLKV__N_PROJ || mode < 0) return -1;
    t->gemm[p] = (unsigned)mode;
    return 0;
  }
  const int id = clkv__tunable_find(line);
  const long v = strtol(val, &num_end, 10);
  if (id == CLKV__TUN_NONE || num_end == val || *num_end || !clkv__tunable_valid(id, v)) return -1;
  *clkv__tunable_at(t, id) = (unsigned)v;
  return 0;
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
    if (parse_line(line, &r)) return -1;
    n++;
  }
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
    int ok = text && clkv__tunables_parse(text, &r) == 0 && clkv__tunables_fit(&r, wg);
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
  settle_dots(t);
  if (source && cap) snprintf(source, cap, "%s", loaded ? path : "defaults");
  return loaded;
}

/* The line of key in the tuning file at path ("key=..."), or 0. */
static int tuning_file_line(const char *path, const char *key) {
  char *text = read_small_file(path);
  int line = 0, found = 0;
  const size_t klen = strlen(key);
  for (const char *p = text; p && *p && !found;) {
    line++;
    found = !strncmp(p, key, klen) && p[klen] == '=';
    const char *end = strchr(p, '\n');
    p = end ? end + 1 : p + strlen(p);
  }
  free(text);
  return found ? line : 0;
}

void clkv__tunable_origin(const clkv_runtime *rt, int id, char *buf, size_t cap) {
  const clkv__tunable *r = &clkv__tunable_table[id];
  const char *env = r->env ? getenv(r->env) : NULL;
  char path[1200];
  clkv__tuning_path(rt, path, sizeof path);
  int line;
  clkv__profile p;
  clkv_error err;
  if (env && *env && clkv__tunable_valid(id, strtol(env, NULL, 10))) {
    snprintf(buf, cap, "environment %s", r->env);
  } else if ((line = tuning_file_line(path, r->key))) {
    snprintf(buf, cap, "%s:%d, run clkv tune again", path, line);
  } else if (clkv__profile_lookup(&rt->info, &p, &err) == CLKV_OK &&
             p.from[CLKV__PK_TUNABLE0 + id].level != CLKV__PL_NONE) {
    snprintf(buf, cap, "%s:%d", p.from[CLKV__PK_TUNABLE0 + id].file,
             p.from[CLKV__PK_TUNABLE0 + id].line);
  } else {
    snprintf(buf, cap, "built-in default");
  }
}

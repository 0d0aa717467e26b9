/* platform.h — platform profiles (platforms/<name>.profile, embedded at build time): what is
 * known about a kind of device beyond what its driver reports (simd width, local memory,
 * vector widths, driver quirks, default kernel tunables), looked up device → architecture →
 * vendor → default. Internal to clkv; the format is described in platforms/README.md. */
#ifndef CLKV_PLATFORM_H
#define CLKV_PLATFORM_H

#include "clkv_internal.h"
#include "tunables_table.h"

/* Numeric keys of the hardware: X(ID, "name", min, max, power_of_two); simd_width 0 means "no
 * fixed subgroup width". The kernel tunables follow them, one key per row of CLKV__TUNABLES
 * (runtime/tunables_table.h), with its range. */
#define CLKV__PROFILE_KEYS(X)                                   \
  X(SIMD_WIDTH, "simd_width", 0, 1024, 1)                       \
  X(LOCAL_MEM_KIB, "local_mem_kib", 1, 65536, 0)                \
  X(VEC_FLOAT, "vector_width_float", 1, 16, 1)                  \
  X(VEC_HALF, "vector_width_half", 1, 16, 1)

/* Driver quirks the runtime honours: X(ID, "name", what the runtime does). */
#define CLKV__QUIRKS(X)                                                                        \
  X(LOCAL_MEM_IN_GLOBAL, "local_mem_in_global",                                                \
    "local memory is global memory behind caches: reported as emulated; defaults avoid "       \
    "local-memory reductions")                                                                 \
  X(WG_LIMIT_256, "wg_limit_256",                                                              \
    "kernels without a work-group size attribute are compiled for at most 256 work-items: "    \
    "the max work-group size is capped at 256")                                                \
  X(NO_FP16, "no_fp16", "cl_khr_fp16 is reported but not used (no -DCLKV_HAS_FP16)")           \
  X(NO_SUBGROUPS, "no_subgroups", "subgroup support is reported but not used "                 \
    "(no -DCLKV_HAS_SUBGROUPS)")                                                               \
  X(SOFT_HALF, "soft_half", "vload_half is emulated in software: kernels read fp16 with "     \
    "integer bit operations (-DCLKV_SOFT_HALF=1)")

enum {
#define CLKV__PK_ENUM(id, name, lo, hi, p2) CLKV__PK_##id,
  CLKV__PROFILE_KEYS(CLKV__PK_ENUM)
#undef CLKV__PK_ENUM
  CLKV__PK_TUNABLE0,    /* the key of tunable 0: CLKV__PK_TUNABLE0 + CLKV__TUN_* */
  CLKV__PK_QUIRKS = CLKV__PK_TUNABLE0 + CLKV__TUN_COUNT, /* value: bit mask of 1 << CLKV__Q_* */
  CLKV__PK_DESCRIPTION, /* value unused: see clkv__profile.description */
  CLKV__PK_COUNT
};

enum {
#define CLKV__Q_ENUM(id, name, what) CLKV__Q_##id,
  CLKV__QUIRKS(CLKV__Q_ENUM)
#undef CLKV__Q_ENUM
  CLKV__Q_COUNT
};

/* Where a value came from, most specific first in the lookup. */
typedef enum clkv__plevel {
  CLKV__PL_NONE = 0, /* no profile sets it: the driver's (or the built-in) value stands */
  CLKV__PL_DEFAULT,
  CLKV__PL_VENDOR,
  CLKV__PL_ARCH,
  CLKV__PL_DEVICE
} clkv__plevel;

typedef struct clkv__porigin {
  clkv__plevel level;
  char section[80];  /* "arch pocl-cpu", "vendor AMD", "device Mali-G72", "default" */
  char file[160];    /* "platforms/pocl.profile", or the override file's path */
  int line;
} clkv__porigin;

/* A device's merged profile: every key from the most specific section that sets it. */
typedef struct clkv__profile {
  long v[CLKV__PK_COUNT];           /* valid where from[k].level != CLKV__PL_NONE */
  clkv__porigin from[CLKV__PK_COUNT];
  char description[128];
  char applied[192];                /* sections that matched: "arch pocl-cpu > vendor PoCL > default" */
} clkv__profile;

/* One profile file: its name as reported in errors, and its text (NUL-terminated). */
typedef struct clkv__pfile {
  const char *name;
  const char *text;
} clkv__pfile;

/* The merged profile for a device from the embedded profiles, where files in
 * $CLKV_PLATFORMS_DIR replace the embedded file of the same name or add to them. Any
 * malformed file fails the whole lookup with CLKV_ERR_FORMAT and a file:line message. */
clkv_status clkv__profile_lookup(const clkv_device_info *d, clkv__profile *out, clkv_error *err);
/* The same over an explicit set of files (tests; no environment). */
clkv_status clkv__profile_lookup_in(const clkv__pfile *files, size_t n, const clkv_device_info *d,
                                    clkv__profile *out, clkv_error *err);
/* Applies the profile to a freshly queried device (runtime/device.c): fills what the driver
 * did not report (simd width, vector widths, local memory size), applies the quirks, and
 * records the sections used in d->profile and the quirks in d->quirks. */
clkv_status clkv__profile_apply(clkv_device_info *d, clkv_error *err);
/* The merged profile as profile text with a comment naming each value's origin; malloc'd
 * (caller frees). */
char *clkv__profile_text(const clkv__profile *p, const clkv_device_info *d);

const char *clkv__profile_key_name(int key); /* "decode.ksplit"; NULL when out of range */
const char *clkv__quirk_name(int quirk);     /* "wg_limit_256"; NULL when out of range */
/* 1 if the profile applied to d set quirk (a CLKV__Q_* id). */
int clkv__device_quirk(const clkv_device_info *d, int quirk);

#endif /* CLKV_PLATFORM_H */

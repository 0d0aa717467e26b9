/* tunables_table.h — the kernel launch shapes ("tunables"), one row each, and their ids.
 * runtime/platform.c reads the keys and ranges (profile keys); host/tune/ the rest: fields,
 * built-in defaults, environment overrides, the tuning file and the tuner's search space. */
#ifndef CLKV_TUNABLES_TABLE_H
#define CLKV_TUNABLES_TABLE_H

/* X(ID, key, field, cpu, gpu, lo, hi, pow2, wg, env, kernel, follows, search)
 *   key      the name in the platform profiles and the tuning file
 *   field    the unsigned member of clkv__tunables it sets (host/tune/tunables.h)
 *   cpu, gpu built-in defaults for CPU devices and for all others, used where no platform
 *            profile sets the key; CLKV__TUN_SUBGROUP: the device's subgroup size (32 when
 *            unknown)
 *   lo, hi   valid range, in profiles, the tuning file and the environment; pow2: 1 when
 *            it must be a power of two
 *   wg       1: a factor of its kernel's work-group size (the product must fit the device;
 *            defaults are halved, the last factor first, until it does)
 *   env      developer override read last (docs/TUNING.md), or NULL
 *   kernel   the tuned kernel whose shape it is part of (CLKV__TK_<kernel>, host/tune/
 *            tunables.h); NONE: not tuned and not shown by `clkv tune`
 *   follows  the tunable whose tuned value it takes before its kernel is searched, or NONE
 *   search   the values `clkv tune` tries in turn, one tunable at a time; () for none
 * Adding a tunable: a row here, its field in clkv__tunables, its value in the [default]
 * and CPU sections of platforms/ (platforms/README.md), then its use in host/ops/ and the
 * kernel. The gemm paths (prefill.gemm.<projection>) are names, not numbers: not here. */
#define CLKV__TUNABLES(X)                                                                             \
  X(DECODE_KSPLIT, "decode.ksplit", mv[CLKV__PH_DECODE].ksplit, 1, CLKV__TUN_SUBGROUP, 1, 4096, 1, 1, \
    "CLKV_MV_KSPLIT", MV_DECODE, NONE, (1, 4, 8, 16, 32, 64))                                         \
  X(DECODE_RG, "decode.rg", mv[CLKV__PH_DECODE].rg, 4, 2, 1, 4096, 0, 1,                              \
    "CLKV_MV_RG", MV_DECODE, NONE, (1, 2, 4, 8, 16))                                                  \
  X(DECODE_ROWS, "decode.rows", mv[CLKV__PH_DECODE].rows, 8, 2, 1, 4096, 0, 0,                        \
    "CLKV_MV_ROWS", MV_DECODE, NONE, (1, 2, 4, 8))                                                    \
  /* the dot of the types with an integer one (Q4_0, Q4_1, Q8_0): 1 float, 2 int8 activations      \
   * (portable), 3 int8 with x86's pmaddubsw where the compiler targets AVX2 (else 2); TUNING.md */   \
  X(DECODE_DOT, "decode.dot", mv[CLKV__PH_DECODE].dot, 3, 1, 1, 3, 0, 0,                              \
    "CLKV_MV_DOT", MV_DECODE, NONE, (1, 2, 3))                                                        \
  /* the tuner times decode on one token, where tokens per work-item do not matter */                 \
  X(DECODE_TT, "decode.tt", mv[CLKV__PH_DECODE].tt, 1, 1, 1, 4096, 0, 0,                              \
    NULL, NONE, NONE, ())                                                                             \
  /* prefill: the decode winner's ksplit, rg and rows, with each token tile */                        \
  X(PREFILL_KSPLIT, "prefill.ksplit", mv[CLKV__PH_PREFILL].ksplit, 1, CLKV__TUN_SUBGROUP, 1, 4096, 1, \
    1, NULL, MV_PREFILL, DECODE_KSPLIT, ())                                                           \
  X(PREFILL_RG, "prefill.rg", mv[CLKV__PH_PREFILL].rg, 16, 2, 1, 4096, 0, 1,                           \
    NULL, MV_PREFILL, DECODE_RG, ())                                                                  \
  X(PREFILL_ROWS, "prefill.rows", mv[CLKV__PH_PREFILL].rows, 8, 2, 1, 4096, 0, 0,                     \
    NULL, MV_PREFILL, DECODE_ROWS, ())                                                                \
  X(PREFILL_TT, "prefill.tt", mv[CLKV__PH_PREFILL].tt, 32, 4, 1, 4096, 0, 0,                          \
    "CLKV_MV_TT", MV_PREFILL, NONE, (1, 4, 8, 16))                                                    \
  /* the same in prefill: at prefill.tt 1 as decode; under prefill.form 2 the outer product in     \
   * int8 tiles (3: with VNNI where the host CPU has it, else the float outer product); else the  \
   * float dot. Only where decode.dot is 2 or 3 too (host/tune/tunables.c) */                      \
  X(PREFILL_DOT, "prefill.dot", mv[CLKV__PH_PREFILL].dot, 3, 1, 1, 3, 0, 0,                           \
    "CLKV_MV_PREFILL_DOT", MV_PREFILL, DECODE_DOT, ())                                                \
  /* prefill's block loop: 1 a dot per row and token; 2 for CPUs, the token tile transposed into  \
   * local memory once and an outer product per work-item (kernels/matvec.cl, TT a multiple of 8) */ \
  X(PREFILL_FORM, "prefill.form", mv[CLKV__PH_PREFILL].form, 2, 1, 1, 2, 0, 0,                        \
    "CLKV_MV_PREFILL_FORM", MV_PREFILL, NONE, ())                                                     \
  X(ATT_WG, "att_wg", att_wg, 8, 64, 1, 4096, 0, 1,                                                   \
    "CLKV_ATT_WG", ATT_DECODE, NONE, (1, 8, 16, 32, 64))                                              \
  X(TQ, "tq", tq, 16, 32, 1, 4096, 0, 1,                                                              \
    NULL, ATT_PREFILL, NONE, (8, 16, 32))                                                             \
  X(TK, "tk", tk, 32, 32, 1, 4096, 0, 0,                                                              \
    NULL, ATT_PREFILL, NONE, ())                                                                      \
  /* a single sequence's decode step: 1 a launch per projection (five a layer); 2 fused, one  \
   * persistent launch between attentions (kernels/fused.cl). Not 0: a 0 default means        \
   * the subgroup size */                                                                     \
  X(DECODE_PATH, "decode.path", decode_path, 2, 1, 1, 2, 0, 0,                                        \
    "CLKV_DECODE_PATH", NONE, NONE, ())                                                           \
  /* the fused step's work-groups: one per compute unit, at most this many (kernels/fused.cl; \
   * the test hook CLKV_FUSED_GROUPS sets the count itself, host/engine/fused.c) */            \
  X(DECODE_GROUPS, "decode.groups", decode_groups, 64, 4096, 1, 4096, 0, 0,                         \
    NULL, NONE, NONE, ())

/* A gpu default that is the device's subgroup size rather than a number. */
#define CLKV__TUN_SUBGROUP 0u

/* Tunable ids, in row order: CLKV__TUN_DECODE_KSPLIT, ... */
enum {
#define CLKV__TUN_ENUM(id, ...) CLKV__TUN_##id,
  CLKV__TUNABLES(CLKV__TUN_ENUM)
#undef CLKV__TUN_ENUM
  CLKV__TUN_COUNT,
  CLKV__TUN_NONE = -1 /* the "follows" column's NONE */
};

#endif /* CLKV_TUNABLES_TABLE_H */

/* fused.h — the fused decode step (kernels/fused.cl): for one sequence's decode token, all
 * the work between two attention launches in one persistent launch, about two launches a
 * layer instead of five. Selected by the tunable decode.path (2); the five-launch path
 * (layers.c) stays the fallback for everything it does not cover. Internal to clkv. */
#ifndef CLKV_FUSED_H
#define CLKV_FUSED_H

#include "engine/engine.h"

/* The fused path's state of one context: kernel variants and the phase counters. */
typedef struct clkv__fused clkv__fused;

/* 1 if a decode pass of n tokens with n_logits logits may take the fused path: decode.path
 * is 2, one token, and the model's dimensions suit the kernel (multiples of 32, whole KV
 * scale groups per chunk). Cheap; decided once per context. */
int clkv__fused_usable(clkv_context *ctx, int n, int phase, int n_logits);

/* One fused launch. layer -1: the QKV of layer 0 (after the embedding); layer l: the o
 * projection, FFN and residuals (post-norms too) of layer l, then the QKV of layer l + 1 — or for the last
 * layer the final norm and the logits into logits (one row; clkv__fused_logits). inv_freq: the next layer's RoPE
 * frequencies (unused after the last). Every variant was built by clkv__fused_usable (one
 * that failed to build sent the context to the five-launch path, with a warning). */
clkv_status clkv__fused_step(clkv_context *ctx, int layer, cl_mem inv_freq, cl_mem logits,
                             clkv_error *err);

/* 1 if the last fused launch computes the logits; 0 if the caller runs the output mat-vec
 * after it (CLKV_FUSED_LOGITS=0: an option, slower on PoCL; docs/ARCHITECTURE.md). */
int clkv__fused_logits(const clkv_context *ctx);

/* Tells the fused state how long a fused decode step took (its launches and the logits'
 * read). Where a CPU launches more than one work-group, the context tries one work-group
 * against them a window of steps at a time and keeps the faster, trying the other again now
 * and then: which wins depends on what else the machine is doing (docs/TUNING.md "Fused
 * decode"). */
void clkv__fused_observe(clkv_context *ctx, double seconds);

/* The work-groups of the next fused launch (0: the context does not use the fused path). */
unsigned clkv__fused_groups(const clkv_context *ctx);

/* The weight types a variant is built for: o, gate/up, down, the next layer's q, k, v
 * (wqkv's type three times when not split), the output. */
#define CLKV__FZ_TYPES 7

/* The build options of the variant for weight types t, the next layer split or not, the
 * architecture's steps (activation, bias, per-head norms, post-norms), KV geometry, the int8
 * dot (clkv__matvec_int8 of the decode shape: 0 float) and the longest mat-vec input xmax. */
void clkv__fused_options(const uint32_t t[CLKV__FZ_TYPES], int split, const clkv__arch *a,
                         int head_dim, int n_kv, int kv_block, int kv_type, unsigned int8,
                         unsigned xmax, char *buf, size_t cap);

/* Releases the fused state (NULL: nothing). */
void clkv__fused_free(clkv__fused *f);

#endif /* CLKV_FUSED_H */

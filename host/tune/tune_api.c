/* tune_api.c — the public face of the autotuner (clkv_tune, clkv_tuning_path,
 * clkv_file_main_type): names turned into type ids, the internal report (tune/tuner.h)
 * copied into the public one, and the tuning file saved. */
#include "format/gguf.h"
#include "ops/gemm.h"
#include "tune/tuner.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

_Static_assert(CLKV__TK_COUNT <= CLKV_TUNE_MAX_KERNELS, "raise CLKV_TUNE_MAX_KERNELS in clkv.h");

clkv_tune_params clkv_tune_default_params(void) {
  return (clkv_tune_params){.budget_s = 60, .weight_type = NULL, .save = 1};
}

/* The GGML type id spelled name ("Q4_1"), or -1. */
static int type_id(const char *name) {
  for (uint32_t id = 0; id < GGML_T_COUNT; id++) {
    const clkv__ggml_type_info *t = clkv__ggml_type_get(id);
    if (t && t->name && !strcmp(t->name, name)) return (int)id;
  }
  return -1;
}

static int computable(const char *name) {
  int id = type_id(name);
  return id >= 0 && clkv__wtype_slot((uint32_t)id) >= 0;
}

const char *clkv_file_main_type(const clkv_file_info *fi) {
  const char *best = "F32";
  uint64_t most = 0;
  for (int i = 0; fi && i < fi->n_types; i++)
    if (computable(fi->by_type[i].type) && fi->by_type[i].bytes > most) {
      best = fi->by_type[i].type;
      most = fi->by_type[i].bytes;
    }
  return best;
}

int clkv_tuning_path(const clkv_runtime *rt, char *buf, size_t cap) {
  char path[sizeof rt->cache_dir + 128]; /* <cache dir>/tuning/<64 hex digits>.txt */
  clkv__tuning_path(rt, path, sizeof path);
  return snprintf(buf, cap, "%s", path);
}

/* The internal report in the public shape. */
static void report_copy(const clkv__tune_report *r, clkv_tune_report *out) {
  for (int k = 0; k < CLKV__TK_COUNT; k++) {
    const clkv__tune_kernel *t = &r->k[k];
    clkv_tune_kernel *o = &out->kernels[k];
    snprintf(o->name, sizeof o->name, "%s", t->name);
    o->is_prefill_path = k >= CLKV__TK_GEMM_QKV;
    snprintf(o->default_shape, sizeof o->default_shape, "%s", t->default_shape);
    snprintf(o->tuned_shape, sizeof o->tuned_shape, "%s", t->tuned_shape);
    snprintf(o->runner_up, sizeof o->runner_up, "%s", t->runner_up);
    o->default_ms = t->default_ms;
    o->tuned_ms = t->tuned_ms;
    o->runner_up_ms = t->runner_up_ms;
    o->tried = t->tried;
    o->failed = t->failed;
  }
  out->n_kernels = CLKV__TK_COUNT;
  out->candidates_checked = r->candidates_checked;
  out->elapsed_s = r->elapsed_s;
  out->budget_hit = r->budget_hit;
  out->wall_clock = r->wall_clock;
}

clkv_status clkv_tune(clkv_runtime *rt, const clkv_file_info *fi, const clkv_tune_params *p,
                      clkv_tune_progress_cb progress, void *user, clkv_tune_report *out,
                      clkv_error *err) {
  if (!rt || !fi || !out)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv_tune needs a runtime, a file's info "
                                                "(clkv_model_inspect) and a report to fill");
  memset(out, 0, sizeof *out);
  const clkv_tune_params dp = clkv_tune_default_params();
  if (!p) p = &dp;
  const char *type = p->weight_type ? p->weight_type : clkv_file_main_type(fi);
  if (!computable(type))
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "cannot tune for weight type '%s': clkv "
                     "computes %s", type, clkv__wtype_names());
  const unsigned bs = clkv__wt_block_elems(type_id(type)); /* the tuner's matrices: widths */
  const int widths[3] = {fi->model.n_embd, fi->model.n_heads * fi->model.head_dim, fi->model.n_ff};
  for (int i = 0; i < 3; i++)
    if (widths[i] <= 0 || widths[i] % (int)bs)
      return clkv__err(err, CLKV_ERR_INVALID_ARG, "cannot tune for weight type %s: the model's "
                       "widths (%d, %d, %d) are not whole blocks of %u; tune for a 32-element "
                       "type such as Q8_0 or Q5_0", type, widths[0], widths[1], widths[2], bs);
  if (!(p->budget_s > 0) || !isfinite(p->budget_s))
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "the tuning budget must be a positive number "
                     "of seconds, not %g", p->budget_s);
  snprintf(out->weight_type, sizeof out->weight_type, "%s", type);
  out->clblast_available =
      clkv__gemm_available(rt, CLKV__GEMM_CLBLAST, out->clblast_why, sizeof out->clblast_why);
  clkv__tune_report r;
  clkv_status st = clkv__tune(rt, &fi->model, (uint32_t)type_id(type), p->budget_s, progress,
                              user, &r, err);
  if (st) return st;
  report_copy(&r, out);
  snprintf(out->timer_note, sizeof out->timer_note, "%s", rt->timer_note);
  if (!p->save) return CLKV_OK;
  if ((st = clkv__tuning_save(rt, &r.tuned, err))) return st;
  clkv_tuning_path(rt, out->tuning_file, sizeof out->tuning_file);
  return CLKV_OK;
}

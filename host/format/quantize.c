/* quantize.c — clkv_model_quantize: a GGUF file rewritten with its weight matrices in another
 * type (as llama-quantize), streamed tensor by tensor: each row decoded to float
 * (clkv__dequantize_row) and encoded (clkv__quantize_row); metadata copied. */
#include "clkv_internal.h"
#include "format/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The types written, with the general.file_type (llama.cpp's llama_ftype) of a file wholly in
 * that type; a K-quant alone is the "small" (_S) mix. */
static const struct {
  uint32_t type, ftype;
} k_targets[] = {
    {GGML_T_Q8_0, 7},  {GGML_T_Q4_0, 2},  {GGML_T_Q4_1, 3},    {GGML_T_Q5_0, 8},
    {GGML_T_Q5_1, 9},  {GGML_T_Q2_K, 10}, {GGML_T_Q3_K, 11},   {GGML_T_Q4_K, 14},
    {GGML_T_Q5_K, 16}, {GGML_T_Q6_K, 18}, {GGML_T_IQ4_NL, 25}, {GGML_T_IQ4_XS, 30},
    {GGML_T_F16, 1},   {GGML_T_BF16, 32}, {GGML_T_F32, 0},
};
#define N_TARGETS (sizeof k_targets / sizeof k_targets[0])

const char *clkv_quantize_types(void) {
  return "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, F16, BF16, F32";
}

clkv_quantize_params clkv_quantize_default_params(void) {
  return (clkv_quantize_params){.note = NULL, .user = NULL};
}

/* The type for rows that are not whole blocks of t (a 32-element one of about as many bits). */
static uint32_t fallback_of(uint32_t t) {
  switch (t) {
  case GGML_T_Q4_K: return GGML_T_Q5_0;
  case GGML_T_Q5_K: return GGML_T_Q5_1;
  case GGML_T_Q6_K: return GGML_T_Q8_0;
  case GGML_T_Q2_K: case GGML_T_Q3_K: case GGML_T_IQ4_XS: return GGML_T_IQ4_NL;
  default: return t;
  }
}

static void note(const clkv_quantize_params *p, const char *fmt, const char *name, const char *a,
                 const char *b) {
  if (!p || !p->note) return;
  char line[400];
  snprintf(line, sizeof line, fmt, name, a, b);
  p->note(p->user, line);
}

/* What tensor t becomes: want, its fallback, or its own type (kept). */
static uint32_t plan_type(const clkv__gguf_tensor *t, uint32_t want, const clkv_quantize_params *p) {
  const char *own = clkv__ggml_type_get(t->type)->name;
  if (t->n_dims < 2 || t->ne[0] == 0 || t->ne[1] == 1 || strstr(t->name, "norm") || t->n_elements < 1024)
    return t->type; /* 1-D, a norm, or small: as it is */
  if (t->type == want) return want;
  float probe[256];
  static const unsigned char zero[512];
  const uint32_t bs = clkv__ggml_type_get(t->type)->block_size;
  if (bs > 256 || clkv__dequantize_row(t->type, zero, probe, bs) != CLKV_OK) {
    note(p, "%s: kept in %s (clkv cannot decode %s)", t->name, own, own);
    return t->type;
  }
  uint32_t out = want;
  if (!clkv__ggml_row_bytes(out, t->ne[0])) out = fallback_of(want);
  if (!clkv__ggml_row_bytes(out, t->ne[0])) {
    char cols[32];
    snprintf(cols, sizeof cols, "%llu", (unsigned long long)t->ne[0]);
    note(p, "%s: kept in %s (rows of %s values are not whole blocks)", t->name, own, cols);
    return t->type;
  }
  if (out != want)
    note(p, "%s: in %s (%s)", t->name, clkv__ggml_type_get(out)->name,
         "rows are not whole blocks of the asked type");
  return out;
}

/* Bytes of tensor t stored in type. */
static uint64_t tensor_bytes(const clkv__gguf_tensor *t, uint32_t type) {
  return t->ne[0] ? clkv__ggml_row_bytes(type, t->ne[0]) * (t->n_elements / t->ne[0]) : t->n_bytes;
}

/* Metadata of f into w, general.file_type set to ftype (and general.alignment left out: the
 * writer aligns to 32). */
static void copy_metadata(const clkv__gguf_file *f, clkv__gguf_writer *w, uint32_t ftype) {
  char key[256];
  for (uint64_t i = 0; i < f->n_kv; i++) {
    const clkv__gguf_kv *kv = &f->kv[i];
    snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.data);
    if (!strcmp(key, "general.file_type") || !strcmp(key, "general.alignment")) continue;
    clkv__gguf_writer_set_value(w, key, &kv->value);
  }
  clkv__gguf_writer_set_u32(w, "general.file_type", ftype);
  if (!clkv__gguf_find(f, "general.quantization_version"))
    clkv__gguf_writer_set_u32(w, "general.quantization_version", 2);
}

/* Writes tensor t's data in type out to fp: copied when the type stays, else row by row. */
static clkv_status write_tensor(FILE *fp, const clkv__gguf_tensor *t, uint32_t out, float *row,
                                unsigned char *orow, const char *path, clkv_error *err) {
  if (out == t->type) {
    if (fwrite(t->data, 1, (size_t)t->n_bytes, fp) != t->n_bytes) goto io;
    return CLKV_OK;
  }
  const uint64_t cols = t->ne[0], rows = t->n_elements / cols; /* cols > 0: plan_type */
  const uint64_t in_rb = clkv__ggml_row_bytes(t->type, cols), out_rb = clkv__ggml_row_bytes(out, cols);
  for (uint64_t r = 0; r < rows; r++) {
    const unsigned char *src = (const unsigned char *)t->data + r * in_rb;
    if (clkv__dequantize_row(t->type, src, row, cols) != CLKV_OK ||
        clkv__quantize_row(out, row, orow, cols) != out_rb)
      return clkv__err(err, CLKV_ERR_INTERNAL, "quantize: cannot convert tensor %s from %s to %s",
                       t->name, clkv__ggml_type_get(t->type)->name, clkv__ggml_type_get(out)->name);
    if (fwrite(orow, 1, (size_t)out_rb, fp) != out_rb) goto io;
  }
  return CLKV_OK;
io:
  return clkv__err(err, CLKV_ERR_IO, "cannot write '%s': %s; check free disk space", path,
                   strerror(errno));
}

/* Streams header and every tensor (padded to 32 bytes) into path. */
static clkv_status write_file(const clkv__gguf_file *f, clkv__gguf_writer *w, const uint32_t *plan,
                              const char *path, clkv_error *err) {
  clkv_status st = CLKV_OK;
  uint64_t max_cols = 1;
  for (uint64_t i = 0; i < f->n_tensors; i++)
    if (f->tensors[i].ne[0] > max_cols) max_cols = f->tensors[i].ne[0];
  size_t hn = 0;
  void *head = clkv__gguf_writer_header(w, &hn);
  float *row = malloc(sizeof(float) * max_cols);
  unsigned char *orow = malloc(sizeof(float) * max_cols);
  FILE *fp = NULL;
  if (!head || !row || !orow) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "quantize: out of memory");
    goto fail;
  }
  if (!(fp = fopen(path, "wb"))) {
    st = clkv__err(err, CLKV_ERR_IO, "cannot create '%s': %s; check the directory exists and is "
                   "writable", path, strerror(errno));
    goto fail;
  }
  static const unsigned char pad[32];
  uint64_t at = 0;
  if (fwrite(head, 1, hn, fp) != hn) goto io;
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    const clkv__gguf_tensor *t = &f->tensors[i];
    const size_t gap = (size_t)((32 - at % 32) % 32);
    if (fwrite(pad, 1, gap, fp) != gap) goto io;
    if ((st = write_tensor(fp, t, plan[i], row, orow, path, err))) goto fail;
    at += gap + tensor_bytes(t, plan[i]);
  }
  if (fclose(fp) != 0) {
    fp = NULL;
    goto io;
  }
  fp = NULL;
  goto fail;
io:
  st = clkv__err(err, CLKV_ERR_IO, "cannot write '%s': %s; check free disk space", path, strerror(errno));
fail:
  if (fp) fclose(fp);
  free(orow);
  free(row);
  free(head);
  return st;
}

/* The target named by s (any case), or -1 with the error said. */
static int target_of(const char *s, clkv_error *err) {
  for (size_t i = 0; s && i < N_TARGETS; i++)
    if (!strcasecmp(s, clkv__ggml_type_get(k_targets[i].type)->name)) return (int)i;
  clkv__err(err, CLKV_ERR_INVALID_ARG, "quantize: type '%s' is not one clkv writes; use one of %s",
            s ? s : "(none)", clkv_quantize_types());
  return -1;
}

/* The same file by device and inode (the input stays mapped while the output is written). */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

CLKV_API clkv_status clkv_model_quantize(const char *in, const char *out, const char *type,
                                         const clkv_quantize_params *p, clkv_error *err) {
  if (!in || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "quantize: input or output path is NULL");
  const int ti = target_of(type, err);
  if (ti < 0) return CLKV_ERR_INVALID_ARG;
  if (same_file(in, out))
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "quantize: '%s' is the input itself; name a new "
                     "output file", out);
  clkv__gguf_file *f = NULL;
  clkv__gguf_writer *w = NULL;
  uint32_t *plan = NULL;
  char *tmp = NULL;
  clkv_status st = clkv__gguf_open(in, &f, err);
  if (st) return st;
  w = clkv__gguf_writer_new();
  plan = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *plan);
  tmp = malloc(strlen(out) + 5);
  if (!w || !plan || !tmp) {
    st = clkv__err(err, CLKV_ERR_NO_MEMORY, "quantize: out of memory");
    goto fail;
  }
  copy_metadata(f, w, k_targets[ti].ftype);
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    const clkv__gguf_tensor *t = &f->tensors[i];
    plan[i] = plan_type(t, k_targets[ti].type, p);
    clkv__gguf_writer_add_tensor_info(w, t->name, plan[i], t->n_dims, t->ne,
                                      (size_t)tensor_bytes(t, plan[i]));
  }
  sprintf(tmp, "%s.tmp", out);
  if ((st = write_file(f, w, plan, tmp, err))) {
    remove(tmp);
    goto fail;
  }
  if (rename(tmp, out) != 0) {
    st = clkv__err(err, CLKV_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, out, strerror(errno));
    remove(tmp);
  }
fail:
  free(tmp);
  free(plan);
  clkv__gguf_writer_free(w);
  clkv__gguf_close(f);
  return st;
}

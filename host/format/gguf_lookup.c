/* clkv__gguf_lookup.c — finding keys and tensors in an opened GGUF file, and typed getters that
 * accept any compatible stored type (any integer width for ints, bool or int for bools). */
#include "format/gguf.h"

#include <string.h>

const clkv__gguf_kv *clkv__gguf_find(const clkv__gguf_file *f, const char *key) {
  if (!f || !key) return NULL;
  size_t n = strlen(key);
  for (uint64_t i = 0; i < f->n_kv; i++)
    if (f->kv[i].key.len == n && memcmp(f->kv[i].key.data, key, n) == 0) return &f->kv[i];
  return NULL;
}

const clkv__gguf_tensor *clkv__gguf_find_tensor(const clkv__gguf_file *f, const char *name) {
  if (!f || !name) return NULL;
  for (uint64_t i = 0; i < f->n_tensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

static int is_unsigned(clkv__gguf_vtype t) {
  return t == GGUF_V_UINT8 || t == GGUF_V_UINT16 || t == GGUF_V_UINT32 || t == GGUF_V_UINT64;
}
static int is_signed(clkv__gguf_vtype t) {
  return t == GGUF_V_INT8 || t == GGUF_V_INT16 || t == GGUF_V_INT32 || t == GGUF_V_INT64;
}

int clkv__gguf_get_u64(const clkv__gguf_file *f, const char *key, uint64_t *out) {
  const clkv__gguf_kv *kv = clkv__gguf_find(f, key);
  if (!kv) return 0;
  const clkv__gguf_value *v = &kv->value;
  if (is_unsigned(v->type)) {
    *out = v->v.u64;
    return 1;
  }
  if (is_signed(v->type) && v->v.i64 >= 0) {
    *out = (uint64_t)v->v.i64;
    return 1;
  }
  return 0;
}

int clkv__gguf_get_i64(const clkv__gguf_file *f, const char *key, int64_t *out) {
  const clkv__gguf_kv *kv = clkv__gguf_find(f, key);
  if (!kv) return 0;
  const clkv__gguf_value *v = &kv->value;
  if (is_signed(v->type)) {
    *out = v->v.i64;
    return 1;
  }
  if (is_unsigned(v->type) && v->v.u64 <= (uint64_t)INT64_MAX) {
    *out = (int64_t)v->v.u64;
    return 1;
  }
  return 0;
}

int clkv__gguf_get_f64(const clkv__gguf_file *f, const char *key, double *out) {
  const clkv__gguf_kv *kv = clkv__gguf_find(f, key);
  if (!kv) return 0;
  const clkv__gguf_value *v = &kv->value;
  if (v->type == GGUF_V_FLOAT32 || v->type == GGUF_V_FLOAT64) *out = v->v.f64;
  else if (is_signed(v->type)) *out = (double)v->v.i64;
  else if (is_unsigned(v->type)) *out = (double)v->v.u64;
  else return 0;
  return 1;
}

int clkv__gguf_get_bool(const clkv__gguf_file *f, const char *key, int *out) {
  const clkv__gguf_kv *kv = clkv__gguf_find(f, key);
  if (!kv) return 0;
  const clkv__gguf_value *v = &kv->value;
  if (v->type == GGUF_V_BOOL || is_unsigned(v->type)) *out = v->v.u64 != 0;
  else if (is_signed(v->type)) *out = v->v.i64 != 0;
  else return 0;
  return 1;
}

int clkv__gguf_get_strv(const clkv__gguf_file *f, const char *key, clkv__gguf_str *out) {
  const clkv__gguf_kv *kv = clkv__gguf_find(f, key);
  if (!kv || kv->value.type != GGUF_V_STRING) return 0;
  *out = kv->value.v.str;
  return 1;
}

int clkv__gguf_get_str(const clkv__gguf_file *f, const char *key, char *buf, size_t cap) {
  clkv__gguf_str s;
  if (!clkv__gguf_get_strv(f, key, &s)) return 0;
  if (buf && cap) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.data, n);
    buf[n] = '\0';
  }
  return 1;
}

const clkv__gguf_value *clkv__gguf_get_arr(const clkv__gguf_file *f, const char *key) {
  const clkv__gguf_kv *kv = clkv__gguf_find(f, key);
  return kv && kv->value.type == GGUF_V_ARRAY ? &kv->value : NULL;
}

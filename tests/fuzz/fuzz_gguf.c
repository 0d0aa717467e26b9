/* fuzz_gguf.c — libFuzzer harness: the GGUF reader over arbitrary bytes (the whole-file
 * parse), then every lookup on what it accepted: each key by name with every typed getter,
 * each array's items, each tensor by name with its bytes touched and its first row decoded. */
#include "fuzz.h"
#include "format/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


static volatile uint64_t sink; /* keeps the reads the sanitizers check */

static void lookup_key(const clkv__gguf_file *f, const clkv__gguf_kv *kv) {
  char key[256];
  if (kv->key.len >= sizeof key || memchr(kv->key.data, 0, kv->key.len)) return;
  memcpy(key, kv->key.data, kv->key.len);
  key[kv->key.len] = 0;
  const clkv__gguf_kv *found = clkv__gguf_find(f, key);
  if (!found) abort(); /* a key the reader holds is found */
  uint64_t u;
  int64_t i;
  double d;
  int b;
  char buf[64];
  clkv__gguf_str s;
  sink += (uint64_t)clkv__gguf_get_u64(f, key, &u) + (uint64_t)clkv__gguf_get_i64(f, key, &i) +
          (uint64_t)clkv__gguf_get_f64(f, key, &d) + (uint64_t)clkv__gguf_get_bool(f, key, &b) +
          (uint64_t)clkv__gguf_get_str(f, key, buf, sizeof buf);
  if (clkv__gguf_get_strv(f, key, &s) && s.len) sink += (unsigned char)s.data[s.len - 1];
  sink += strlen(clkv__gguf_vtype_name(found->value.type));
  const clkv__gguf_value *a = clkv__gguf_get_arr(f, key);
  if (!a) return;
  const uint64_t n = a->v.arr.n;
  if (a->v.arr.items) {
    for (uint64_t k = 0; k < n; k++) {
      const clkv__gguf_value *it = &a->v.arr.items[k];
      if (it->type == GGUF_V_STRING && it->v.str.len) sink += (unsigned char)it->v.str.data[it->v.str.len - 1];
    }
  } else if (n && a->v.arr.data) {
    sink += *(const unsigned char *)a->v.arr.data;
  }
}

static void lookup_tensor(const clkv__gguf_file *f, const clkv__gguf_tensor *t) {
  if (clkv__gguf_find_tensor(f, t->name) == NULL) abort();
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(t->type);
  sink += ti ? ti->type_size : 0;
  if (t->n_bytes) {
    const unsigned char *p = t->data;
    sink += p[0] + p[t->n_bytes - 1];
  }
  const uint64_t row = clkv__ggml_row_bytes(t->type, t->ne[0]);
  if (ti && row && row <= t->n_bytes && t->ne[0] <= 4096) {
    float *out = malloc(sizeof(float) * (size_t)t->ne[0]);
    if (out && clkv__dequantize_row(t->type, t->data, out, t->ne[0]) == CLKV_OK)
      sink += (uint64_t)(out[0] == out[0]);
    free(out);
  }
}

int clkv_fuzz_gguf(const uint8_t *data, size_t size) {
  clkv__gguf_file *f = NULL;
  clkv_error err;
  if (clkv__gguf_open_memory(data, size, &f, &err) != CLKV_OK) {
    if (!err.message[0]) abort(); /* every refusal says why */
    return 0;
  }
  for (uint64_t i = 0; i < f->n_kv; i++) lookup_key(f, &f->kv[i]);
  for (uint64_t i = 0; i < f->n_tensors; i++) lookup_tensor(f, &f->tensors[i]);
  sink += (uint64_t)(clkv__gguf_find(f, "general.architecture") != NULL);
  clkv__gguf_close(f);
  return 0;
}

#ifndef CLKV_FUZZ_REPLAY
CLKV_FUZZ_TARGET(clkv_fuzz_gguf)
#endif

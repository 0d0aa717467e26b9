/* clkv__gguf_writer.c — builds a GGUF v3 file in memory (metadata in insertion order, tensors at
 * 32-byte aligned offsets) and saves it atomically (path.tmp, then rename). */
#include "clkv_internal.h"
#include "format/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WRITER_ALIGNMENT 32

typedef struct bytes {
  unsigned char *p;
  size_t n, cap;
  int oom; /* a growth failed: the content is incomplete */
} bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->oom) return;
  if (n > b->cap - b->n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < n) {
      if (cap > SIZE_MAX / 2) {
        b->oom = 1;
        return;
      }
      cap *= 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void put_le(bytes *b, uint64_t v, unsigned n) {
  unsigned char t[8];
  for (unsigned i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
  put(b, t, n);
}

static void put_str(bytes *b, const char *s, size_t n) {
  put_le(b, n, 8);
  put(b, s, n);
}

static void put_f32(bytes *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  put_le(b, u, 4);
}

typedef struct wtensor {
  char *name;
  uint32_t type, n_dims;
  uint64_t ne[4];
  unsigned char *data;
  size_t n_bytes;
} wtensor;

struct clkv__gguf_writer {
  bytes kv;        /* serialized key/value pairs, in insertion order */
  uint64_t n_kv;
  wtensor *tensors;
  size_t n_tensors, cap_tensors;
  int oom;
  int data_later; /* tensors added by add_tensor_info: only the header can be serialized */
};

clkv__gguf_writer *clkv__gguf_writer_new(void) { return calloc(1, sizeof(clkv__gguf_writer)); }

void clkv__gguf_writer_free(clkv__gguf_writer *w) {
  if (!w) return;
  free(w->kv.p);
  for (size_t i = 0; i < w->n_tensors; i++) {
    free(w->tensors[i].name);
    free(w->tensors[i].data);
  }
  free(w->tensors);
  free(w);
}

/* Starts a key/value pair: key string and value type. */
static void kv_begin(clkv__gguf_writer *w, const char *key, clkv__gguf_vtype t) {
  put_str(&w->kv, key, strlen(key));
  put_le(&w->kv, (uint32_t)t, 4);
  w->n_kv++;
}

void clkv__gguf_writer_set_u32(clkv__gguf_writer *w, const char *key, uint32_t v) {
  if (!w || !key) return;
  kv_begin(w, key, GGUF_V_UINT32);
  put_le(&w->kv, v, 4);
}

void clkv__gguf_writer_set_i32(clkv__gguf_writer *w, const char *key, int32_t v) {
  if (!w || !key) return;
  kv_begin(w, key, GGUF_V_INT32);
  put_le(&w->kv, (uint32_t)v, 4);
}

void clkv__gguf_writer_set_u64(clkv__gguf_writer *w, const char *key, uint64_t v) {
  if (!w || !key) return;
  kv_begin(w, key, GGUF_V_UINT64);
  put_le(&w->kv, v, 8);
}

void clkv__gguf_writer_set_f32(clkv__gguf_writer *w, const char *key, float v) {
  if (!w || !key) return;
  kv_begin(w, key, GGUF_V_FLOAT32);
  put_f32(&w->kv, v);
}

void clkv__gguf_writer_set_bool(clkv__gguf_writer *w, const char *key, int v) {
  if (!w || !key) return;
  kv_begin(w, key, GGUF_V_BOOL);
  put_le(&w->kv, v ? 1 : 0, 1);
}

void clkv__gguf_writer_set_str(clkv__gguf_writer *w, const char *key, const char *v) {
  if (!w || !key) return;
  kv_begin(w, key, GGUF_V_STRING);
  put_str(&w->kv, v ? v : "", v ? strlen(v) : 0);
}

static void arr_begin(clkv__gguf_writer *w, const char *key, clkv__gguf_vtype et, size_t n) {
  kv_begin(w, key, GGUF_V_ARRAY);
  put_le(&w->kv, (uint32_t)et, 4);
  put_le(&w->kv, n, 8);
}

void clkv__gguf_writer_set_arr_str(clkv__gguf_writer *w, const char *key, const char *const *v, size_t n) {
  if (!w || !key || (!v && n)) return;
  arr_begin(w, key, GGUF_V_STRING, n);
  for (size_t i = 0; i < n; i++) put_str(&w->kv, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
}

void clkv__gguf_writer_set_arr_i32(clkv__gguf_writer *w, const char *key, const int32_t *v, size_t n) {
  if (!w || !key || (!v && n)) return;
  arr_begin(w, key, GGUF_V_INT32, n);
  for (size_t i = 0; i < n; i++) put_le(&w->kv, (uint32_t)v[i], 4);
}

void clkv__gguf_writer_set_arr_f32(clkv__gguf_writer *w, const char *key, const float *v, size_t n) {
  if (!w || !key || (!v && n)) return;
  arr_begin(w, key, GGUF_V_FLOAT32, n);
  for (size_t i = 0; i < n; i++) put_f32(&w->kv, v[i]);
}

static unsigned scalar_size(clkv__gguf_vtype t) {
  const int n = clkv__gguf_scalar_size(t);
  return n > 0 ? (unsigned)n : 0;
}

/* A value as read by clkv__gguf_open, without its type tag (arrays: element type, count,
 * elements). */
static void put_value(bytes *b, const clkv__gguf_value *v) {
  const unsigned sz = scalar_size(v->type);
  if (v->type == GGUF_V_FLOAT32) {
    put_f32(b, (float)v->v.f64);
  } else if (v->type == GGUF_V_FLOAT64) {
    uint64_t u;
    memcpy(&u, &v->v.f64, 8);
    put_le(b, u, 8);
  } else if (sz) {
    put_le(b, v->v.u64, sz); /* the low bytes, for signed values too */
  } else if (v->type == GGUF_V_STRING) {
    put_str(b, v->v.str.data, (size_t)v->v.str.len);
  } else { /* GGUF_V_ARRAY */
    put_le(b, (uint32_t)v->v.arr.type, 4);
    put_le(b, v->v.arr.n, 8);
    if (v->v.arr.items)
      for (uint64_t i = 0; i < v->v.arr.n; i++) put_value(b, &v->v.arr.items[i]);
    else
      put(b, v->v.arr.data, (size_t)(v->v.arr.n * scalar_size(v->v.arr.type)));
  }
}

void clkv__gguf_writer_set_value(clkv__gguf_writer *w, const char *key, const clkv__gguf_value *v) {
  if (!w || !key || !v) return;
  kv_begin(w, key, v->type);
  put_value(&w->kv, v);
}

void clkv__gguf_writer_add_tensor(clkv__gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, size_t n_bytes) {
  if (!w || !name || !ne || n_dims < 1 || n_dims > 4 || (!data && n_bytes && w->data_later != 1)) return;
  if (w->n_tensors == w->cap_tensors) {
    size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 8;
    wtensor *t = realloc(w->tensors, cap * sizeof *t);
    if (!t) {
      w->oom = 1;
      return;
    }
    w->tensors = t;
    w->cap_tensors = cap;
  }
  wtensor *t = &w->tensors[w->n_tensors];
  memset(t, 0, sizeof *t);
  size_t len = strlen(name);
  t->name = malloc(len + 1);
  t->data = malloc(data ? (n_bytes ? n_bytes : 1) : 1);
  if (!t->name || !t->data) {
    free(t->name);
    free(t->data);
    w->oom = 1;
    return;
  }
  memcpy(t->name, name, len + 1);
  if (n_bytes && data) memcpy(t->data, data, n_bytes);
  t->n_bytes = n_bytes;
  t->type = type;
  t->n_dims = n_dims;
  for (uint32_t d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
  w->n_tensors++;
}

static void pad_to(bytes *b, size_t align) {
  static const unsigned char zeros[WRITER_ALIGNMENT];
  put(b, zeros, (align - b->n % align) % align);
}

void clkv__gguf_writer_add_tensor_info(clkv__gguf_writer *w, const char *name, uint32_t type,
                                       uint32_t n_dims, const uint64_t *ne, size_t n_bytes) {
  if (!w) return;
  w->data_later = 1;
  clkv__gguf_writer_add_tensor(w, name, type, n_dims, ne, NULL, n_bytes);
}

/* Header, metadata and tensor infos, padded to the start of the data section. */
static void put_header(const clkv__gguf_writer *w, bytes *b) {
  put(b, "GGUF", 4);
  put_le(b, 3, 4);
  put_le(b, w->n_tensors, 8);
  put_le(b, w->n_kv, 8);
  put(b, w->kv.p, w->kv.n);
  uint64_t offset = 0;
  for (size_t i = 0; i < w->n_tensors; i++) {
    const wtensor *t = &w->tensors[i];
    put_str(b, t->name, strlen(t->name));
    put_le(b, t->n_dims, 4);
    for (uint32_t d = 0; d < t->n_dims; d++) put_le(b, t->ne[d], 8);
    put_le(b, t->type, 4);
    put_le(b, offset, 8);
    offset += t->n_bytes;
    offset += (WRITER_ALIGNMENT - offset % WRITER_ALIGNMENT) % WRITER_ALIGNMENT;
  }
  pad_to(b, WRITER_ALIGNMENT);
}

void *clkv__gguf_writer_header(clkv__gguf_writer *w, size_t *size) {
  if (size) *size = 0;
  if (!w || w->oom || w->kv.oom) return NULL;
  bytes b = {0};
  put_header(w, &b);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  if (size) *size = b.n;
  return b.p;
}

void *clkv__gguf_writer_serialize(clkv__gguf_writer *w, size_t *size) {
  if (size) *size = 0;
  if (!w || w->oom || w->kv.oom || w->data_later) return NULL;
  bytes b = {0};
  put_header(w, &b);
  for (size_t i = 0; i < w->n_tensors; i++) {
    if (i) pad_to(&b, WRITER_ALIGNMENT); /* between tensors, not after the last one */
    put(&b, w->tensors[i].data, w->tensors[i].n_bytes);
  }
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  if (!b.p) b.p = malloc(1); /* unreachable: the header is always written */
  if (size) *size = b.n;
  return b.p;
}

clkv_status clkv__gguf_writer_save(clkv__gguf_writer *w, const char *path, clkv_error *err) {
  if (!w || !path) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv__gguf_writer_save: writer or path is NULL");
  size_t n;
  void *data = clkv__gguf_writer_serialize(w, &n);
  if (!data)
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of memory while building GGUF file '%s'", path);
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  if (!tmp) {
    free(data);
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of memory");
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);
  clkv_status st = CLKV_OK;
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    st = clkv__err(err, CLKV_ERR_IO, "cannot create '%s': %s; check the directory exists and is writable",
                   tmp, strerror(errno));
    goto done;
  }
  int ok = fwrite(data, 1, n, fp) == n;
  int e = errno;
  if (fclose(fp) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    remove(tmp);
    st = clkv__err(err, CLKV_ERR_IO, "cannot write '%s': %s; check free disk space", tmp, strerror(e));
    goto done;
  }
  if (rename(tmp, path) != 0) {
    e = errno;
    remove(tmp);
    st = clkv__err(err, CLKV_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
  }
done:
  free(tmp);
  free(data);
  return st;
}

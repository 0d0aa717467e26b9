/* test_gguf_peer.c — tiny GGUF models written by clkv's writer (tests/ref/tiny.c) are read by
 * the PyPI gguf package (tests/peer/gguf_peer.py) and by clkv's reader, and both must see the
 * same version, alignment, keys and values (bit for bit), tensor names, types, shapes,
 * sizes, offsets and bytes: a writer bug that our own reader shares shows here. */
#include "ref/ref.h"

#include "clkv_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct text {
  char *s;
  size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    t->cap = (t->cap + (size_t)n + 1) * 2;
    cr_assert_not_null(t->s = realloc(t->s, t->cap));
  }
}

static void put_hex(text *t, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++) put(t, "%02x", ((const unsigned char *)p)[i]);
}

static size_t elem_size(clkv__gguf_vtype v) {
  switch (v) {
  case GGUF_V_UINT8: case GGUF_V_INT8: case GGUF_V_BOOL: return 1;
  case GGUF_V_UINT16: case GGUF_V_INT16: return 2;
  case GGUF_V_UINT32: case GGUF_V_INT32: case GGUF_V_FLOAT32: return 4;
  default: return 8;
  }
}

/* One scalar of type v in the peer's notation, from the raw little-endian bytes at p. */
static void put_raw(text *t, clkv__gguf_vtype v, const unsigned char *p) {
  uint64_t u = 0;
  const size_t n = elem_size(v);
  for (size_t i = 0; i < n; i++) u |= (uint64_t)p[i] << (8 * i);
  const int shift = (int)(64 - 8 * n);
  switch (v) {
  case GGUF_V_INT8: case GGUF_V_INT16: case GGUF_V_INT32: case GGUF_V_INT64:
    put(t, "i:%lld", (long long)((int64_t)(u << shift) >> shift));
    break;
  case GGUF_V_FLOAT32: put(t, "f:%08x", (unsigned)u); break;
  case GGUF_V_FLOAT64: put(t, "d:%016llx", (unsigned long long)u); break;
  default: put(t, "u:%llu", (unsigned long long)u);
  }
}

/* A value as the reader parsed it, in the peer's notation (gguf_peer.py). */
static void put_value(text *t, const clkv__gguf_value *v) {
  unsigned char raw[8];
  switch (v->type) {
  case GGUF_V_STRING:
    put(t, "s:");
    put_hex(t, v->v.str.data, v->v.str.len);
    return;
  case GGUF_V_ARRAY:
    put(t, "a%d[%llu]", (int)v->v.arr.type, (unsigned long long)v->v.arr.n);
    for (uint64_t i = 0; i < v->v.arr.n; i++) {
      put(t, " ");
      if (v->v.arr.items) put_value(t, &v->v.arr.items[i]);
      else put_raw(t, v->v.arr.type, (const unsigned char *)v->v.arr.data + i * elem_size(v->v.arr.type));
    }
    return;
  case GGUF_V_FLOAT32: {
    const float f = (float)v->v.f64;
    memcpy(raw, &f, 4);
    break;
  }
  case GGUF_V_FLOAT64: memcpy(raw, &v->v.f64, 8); break;
  case GGUF_V_INT8: case GGUF_V_INT16: case GGUF_V_INT32: case GGUF_V_INT64:
    for (int i = 0; i < 8; i++) raw[i] = (unsigned char)((uint64_t)v->v.i64 >> (8 * i));
    break;
  default:
    for (int i = 0; i < 8; i++) raw[i] = (unsigned char)(v->v.u64 >> (8 * i));
  }
  put_raw(t, v->type, raw);
}

/* What clkv's reader sees in path, in the peer's format. */
static text describe(const char *path) {
  clkv__gguf_file *f;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  text t = {0};
  put(&t, "version %u\nalignment %llu\n", f->version, (unsigned long long)f->alignment);
  for (uint64_t i = 0; i < f->n_kv; i++) {
    put(&t, "kv %.*s ", (int)f->kv[i].key.len, f->kv[i].key.data);
    put_value(&t, &f->kv[i].value);
    put(&t, "\n");
  }
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    const clkv__gguf_tensor *ts = &f->tensors[i];
    put(&t, "tensor %s %u ", ts->name, ts->type);
    for (uint32_t d = 0; d < ts->n_dims; d++) put(&t, "%s%llu", d ? "," : "", (unsigned long long)ts->ne[d]);
    unsigned char h[32];
    char hex[65];
    clkv__sha256 s;
    clkv__sha256_init(&s);
    clkv__sha256_update(&s, ts->data, ts->n_bytes);
    clkv__sha256_final(&s, h);
    clkv__sha256_hex(h, hex);
    put(&t, " %llu %llu %s\n", (unsigned long long)ts->n_bytes,
        (unsigned long long)(f->data_offset + ts->offset), hex);
  }
  clkv__gguf_close(f);
  return t;
}

/* The peer's description of path. */
static text peer(const char *py, const char *path) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/peer/gguf_peer.py' '%s'", py, CLKV_SOURCE_DIR, path);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "cannot start %s", cmd);
  text t = {0};
  char buf[1 << 14];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf - 1, p)) > 0) {
    buf[n] = 0;
    put(&t, "%s", buf);
  }
  const int rc = pclose(p);
  cr_assert_eq(rc, 0, "the peer failed (status %d): %s", rc, cmd);
  return t;
}

/* Compares line by line; names the first line that differs. */
static void expect_same(const text *mine, const text *theirs, const char *what) {
  const char *a = mine->s, *b = theirs->s;
  int line = 1, lines = 0;
  for (;;) {
    const size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
    cr_assert(la == lb && !memcmp(a, b, la), "%s line %d:\n clkv: %.200s\n peer: %.200s", what,
              line, a, b);
    if (!a[la]) break;
    a += la + 1, b += lb + 1, line++, lines += la > 0;
  }
  cr_assert_geq(lines, 20, "%s: only %d lines", what, lines);
}

Test(gguf_peer, tiny_models_read_alike_by_the_gguf_package) {
  const char *py = getenv("CLKV_PYTHON");
  if (!py || !*py) cr_skip_test("CLKV_PYTHON is not set (scripts/test sets it)");
  char dir[] = "/tmp/clkv_ggufpeer_XXXXXX", path[128];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/tiny.gguf", dir);
  const struct { uint32_t w, e; int tied, window; float rope, eps; } c[] = {
      {GGML_T_Q4_1, GGML_T_Q8_0, 1, 0, 0, 0},
      {GGML_T_F16, GGML_T_F32, 0, 16, 500000.0f, 0.05f},
      {GGML_T_BF16, GGML_T_F16, 0, 0, 0, 1e-6f},
      {GGML_T_Q4_0, GGML_T_Q4_0, 1, 0, 0, 0},
      {GGML_T_Q8_0, GGML_T_BF16, 0, 7, 1e6f, 0},
      {GGML_T_F32, GGML_T_Q4_1, 1, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    ref_tiny_params tp = ref_tiny_default();
    tp.wtype = c[i].w, tp.etype = c[i].e, tp.tied = c[i].tied, tp.sliding_window = c[i].window;
    tp.rope_base = c[i].rope, tp.rms_eps = c[i].eps, tp.seed = 99 + i;
    clkv_error err;
    cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
    text mine = describe(path), theirs = peer(py, path);
    char what[64];
    snprintf(what, sizeof what, "tiny model %zu (%s weights)", i, clkv__ggml_type_get(c[i].w)->name);
    expect_same(&mine, &theirs, what);
    free(mine.s);
    free(theirs.s);
    remove(path);
  }
  rmdir(dir);
}

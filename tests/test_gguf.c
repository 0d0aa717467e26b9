/* test_gguf.c — GGUF writer→reader round trips, the real model's metadata, and malformed
 * files (truncations, bad counts, sizes, offsets, types; a seeded byte-flip fuzz loop):
 * each must fail with a specific status and a message, never crash or leak. */
#include "format/gguf.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a byte builder for hand-made (often broken) files ---- */
typedef struct bb {
  unsigned char *p;
  size_t n, cap;
} bb;

static void bb_put(bb *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    cr_assert_not_null(b->p);
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void bb_le(bb *b, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    unsigned char c = (unsigned char)(v >> (8 * i));
    bb_put(b, &c, 1);
  }
}
static void bb_str(bb *b, const char *s) {
  bb_le(b, strlen(s), 8);
  bb_put(b, s, strlen(s));
}
static void bb_hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  bb_put(b, "GGUF", 4);
  bb_le(b, version, 4);
  bb_le(b, n_tensors, 8);
  bb_le(b, n_kv, 8);
}
static void bb_kv_u32(bb *b, const char *key, uint32_t v) {
  bb_str(b, key);
  bb_le(b, GGUF_V_UINT32, 4);
  bb_le(b, v, 4);
}
static void bb_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset) {
  bb_str(b, name);
  bb_le(b, n_dims, 4);
  for (uint32_t d = 0; d < n_dims; d++) bb_le(b, ne[d], 8);
  bb_le(b, type, 4);
  bb_le(b, offset, 8);
}
static void bb_pad(bb *b, size_t align) {
  while (b->n % align) bb_le(b, 0, 1);
}
static void bb_zeros(bb *b, size_t n) {
  for (size_t i = 0; i < n; i++) bb_le(b, 0, 1);
}

/* Opens a copy of exactly n bytes (so ASan sees any over-read). */
static clkv_status open_bytes(const void *p, size_t n, clkv__gguf_file **f, clkv_error *err) {
  void *copy = malloc(n ? n : 1);
  cr_assert_not_null(copy);
  if (n) memcpy(copy, p, n);
  memset(err, 0, sizeof *err);
  clkv_status st = clkv__gguf_open_memory(copy, n, f, err);
  if (st == CLKV_OK) {
    /* touch every tensor byte so a wrong range shows up under ASan */
    unsigned sum = 0;
    for (uint64_t i = 0; i < (*f)->n_tensors; i++)
      for (uint64_t j = 0; j < (*f)->tensors[i].n_bytes; j++)
        sum += ((const unsigned char *)(*f)->tensors[i].data)[j];
    (void)sum;
    clkv__gguf_close(*f);
    *f = NULL;
  } else {
    cr_assert_null(*f);
  }
  free(copy);
  return st;
}

/* Asserts that the bytes fail with status `want` and a message holding `needle`. */
static void expect_fail(bb *b, clkv_status want, const char *needle) {
  clkv__gguf_file *f = NULL;
  clkv_error err;
  clkv_status st = open_bytes(b->p, b->n, &f, &err);
  cr_assert_eq(st, want, "status %s, want %s (message: %s)", clkv_status_name(st),
               clkv_status_name(want), err.message);
  cr_assert_eq(err.status, want);
  cr_assert_gt(strlen(err.message), 10, "empty message");
  if (needle) cr_assert_not_null(strstr(err.message, needle), "message lacks '%s': %s", needle, err.message);
  free(b->p);
}

/* ---- a small valid file from the writer ---- */
static clkv__gguf_writer *small_writer(void) {
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  cr_assert_not_null(w);
  clkv__gguf_writer_set_str(w, "general.architecture", "llama");
  clkv__gguf_writer_set_u32(w, "llama.block_count", 2);
  clkv__gguf_writer_set_i32(w, "neg", -7);
  clkv__gguf_writer_set_u64(w, "big", 0x123456789abcdefull);
  clkv__gguf_writer_set_f32(w, "eps", 1e-5f);
  clkv__gguf_writer_set_bool(w, "flag", 1);
  const char *toks[] = {"<s>", "", "hello world"};
  clkv__gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
  const int32_t ids[] = {1, -2, 3, 2147483647};
  clkv__gguf_writer_set_arr_i32(w, "ids", ids, 4);
  const float fs[] = {0.5f, -1.25f};
  clkv__gguf_writer_set_arr_f32(w, "scores", fs, 2);
  float x[64];
  for (int i = 0; i < 64; i++) x[i] = (float)i * 0.25f - 3.0f;
  uint64_t ne_a[2] = {8, 3};
  clkv__gguf_writer_add_tensor(w, "a.f32", GGML_T_F32, 2, ne_a, x, 24 * 4);
  uint16_t h[5];
  for (int i = 0; i < 5; i++) h[i] = clkv__fp32_to_fp16(x[i]);
  uint64_t ne_b[1] = {5};
  clkv__gguf_writer_add_tensor(w, "b.f16", GGML_T_F16, 1, ne_b, h, sizeof h);
  unsigned char q8[2 * 34];
  cr_assert_eq(clkv__quantize_row(GGML_T_Q8_0, x, q8, 64), sizeof q8);
  uint64_t ne_c[3] = {32, 1, 2};
  clkv__gguf_writer_add_tensor(w, "c.q8_0", GGML_T_Q8_0, 3, ne_c, q8, sizeof q8);
  unsigned char q41[2 * 20];
  cr_assert_eq(clkv__quantize_row(GGML_T_Q4_1, x, q41, 64), sizeof q41);
  uint64_t ne_d[2] = {64, 1};
  clkv__gguf_writer_add_tensor(w, "d.q4_1", GGML_T_Q4_1, 2, ne_d, q41, sizeof q41);
  return w;
}

static void check_small(const clkv__gguf_file *f) {
  cr_assert_eq(f->version, 3);
  cr_assert_eq(f->n_kv, 9);
  cr_assert_eq(f->n_tensors, 4);
  cr_assert_eq(f->alignment, 32);
  cr_assert_eq(f->data_offset % 32, 0);
  char s[32];
  cr_assert(clkv__gguf_get_str(f, "general.architecture", s, sizeof s));
  cr_assert_str_eq(s, "llama");
  cr_assert(clkv__gguf_get_str(f, "general.architecture", s, 3));
  cr_assert_str_eq(s, "ll"); /* truncated to cap-1 */
  uint64_t u;
  int64_t i;
  double d;
  int bl;
  cr_assert(clkv__gguf_get_u64(f, "llama.block_count", &u) && u == 2);
  cr_assert(clkv__gguf_get_i64(f, "llama.block_count", &i) && i == 2);
  cr_assert(clkv__gguf_get_i64(f, "neg", &i) && i == -7);
  cr_assert_not(clkv__gguf_get_u64(f, "neg", &u), "a negative value is not a u64");
  cr_assert(clkv__gguf_get_u64(f, "big", &u) && u == 0x123456789abcdefull);
  cr_assert(clkv__gguf_get_f64(f, "eps", &d) && (float)d == 1e-5f);
  cr_assert(clkv__gguf_get_bool(f, "flag", &bl) && bl == 1);
  cr_assert_not(clkv__gguf_get_str(f, "flag", s, sizeof s));
  cr_assert_not(clkv__gguf_get_u64(f, "missing", &u));
  cr_assert_null(clkv__gguf_find(f, "missing"));
  cr_assert_str_eq(f->kv[0].value.type == GGUF_V_STRING ? "ok" : "bad", "ok"); /* insertion order */
  cr_assert_eq(f->kv[8].key.len, strlen("scores"));
  const clkv__gguf_value *a = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  cr_assert_not_null(a);
  cr_assert_eq(a->v.arr.type, GGUF_V_STRING);
  cr_assert_eq(a->v.arr.n, 3);
  cr_assert_eq(a->v.arr.items[1].v.str.len, 0);
  cr_assert_eq(a->v.arr.items[2].v.str.len, 11);
  cr_assert_eq(memcmp(a->v.arr.items[2].v.str.data, "hello world", 11), 0);
  a = clkv__gguf_get_arr(f, "ids");
  cr_assert(a && a->v.arr.type == GGUF_V_INT32 && a->v.arr.n == 4 && !a->v.arr.items);
  int32_t ids[4];
  memcpy(ids, a->v.arr.data, sizeof ids);
  cr_assert(ids[1] == -2 && ids[3] == 2147483647);
  a = clkv__gguf_get_arr(f, "scores");
  float fs[2];
  memcpy(fs, a->v.arr.data, sizeof fs);
  cr_assert(fs[0] == 0.5f && fs[1] == -1.25f);
  cr_assert_null(clkv__gguf_get_arr(f, "eps"));

  float x[64];
  for (int k = 0; k < 64; k++) x[k] = (float)k * 0.25f - 3.0f;
  const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, "a.f32");
  cr_assert(t && t->n_dims == 2 && t->ne[0] == 8 && t->ne[1] == 3 && t->ne[2] == 1);
  cr_assert(t->n_elements == 24 && t->n_bytes == 96);
  cr_assert_eq(memcmp(t->data, x, 96), 0);
  t = clkv__gguf_find_tensor(f, "b.f16");
  cr_assert(t && t->n_bytes == 10);
  float y[64];
  cr_assert_eq(clkv__dequantize_row(t->type, t->data, y, 5), CLKV_OK);
  for (int k = 0; k < 5; k++) cr_assert_float_eq(y[k], x[k], 1e-3f);
  t = clkv__gguf_find_tensor(f, "c.q8_0");
  cr_assert(t && t->n_dims == 3 && t->ne[2] == 2 && t->n_bytes == 68 && t->type == GGML_T_Q8_0);
  cr_assert_eq(clkv__dequantize_row(t->type, t->data, y, 64), CLKV_OK);
  for (int k = 0; k < 64; k++) cr_assert_float_eq(y[k], x[k], 0.06f);
  t = clkv__gguf_find_tensor(f, "d.q4_1");
  cr_assert(t && t->n_bytes == 40);
  cr_assert_null(clkv__gguf_find_tensor(f, "nope"));
  for (uint64_t k = 0; k < f->n_tensors; k++) {
    cr_assert_eq(f->tensors[k].offset % 32, 0);
    cr_assert_eq(((const unsigned char *)f->tensors[k].data - f->base) % 32, 0);
  }
}

Test(gguf, writer_reader_round_trip_file) {
  char dir[] = "/tmp/clkv_gguf_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/small.gguf", dir);
  clkv__gguf_writer *w = small_writer();
  clkv_error err;
  cr_assert_eq(clkv__gguf_writer_save(w, path, &err), CLKV_OK, "%s", err.message);
  clkv__gguf_writer_free(w);
  clkv__gguf_file *f = NULL;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert(f->mapped);
  check_small(f);
  clkv__gguf_close(f);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_neq(access(tmp, F_OK), 0, "the temp file must be renamed away");
  unlink(path);
  rmdir(dir);
}

Test(gguf, writer_reader_round_trip_memory) {
  clkv__gguf_writer *w = small_writer();
  size_t n = 0;
  void *p = clkv__gguf_writer_serialize(w, &n);
  clkv__gguf_writer_free(w);
  cr_assert_not_null(p);
  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open_memory(p, n, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert_not(f->mapped);
  check_small(f);
  clkv__gguf_close(f);
  clkv__gguf_close(NULL);
  clkv__gguf_writer_free(NULL);
  free(p);
}

Test(gguf, every_value_type_and_nested_arrays) {
  bb b = {0};
  bb_hdr(&b, 2, 0, 14);
  const struct { const char *k; uint32_t t; uint64_t v; unsigned n; } sc[] = {
      {"u8", GGUF_V_UINT8, 200, 1},          {"i8", GGUF_V_INT8, 0x80, 1},
      {"u16", GGUF_V_UINT16, 65535, 2},      {"i16", GGUF_V_INT16, 0xfffe, 2},
      {"u32", GGUF_V_UINT32, 4000000000u, 4}, {"i32", GGUF_V_INT32, 0xfffffffdu, 4},
      {"u64", GGUF_V_UINT64, UINT64_MAX, 8}, {"i64", GGUF_V_INT64, (uint64_t)INT64_MIN, 8},
      {"bool", GGUF_V_BOOL, 1, 1},           {"f32", GGUF_V_FLOAT32, 0x40490fdbu, 4},
      {"f64", GGUF_V_FLOAT64, 0x400921fb54442d18ull, 8}};
  for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
    bb_str(&b, sc[i].k);
    bb_le(&b, sc[i].t, 4);
    bb_le(&b, sc[i].v, sc[i].n);
  }
  bb_str(&b, "s");
  bb_le(&b, GGUF_V_STRING, 4);
  bb_str(&b, "text");
  /* [[1,2],[3]] of int16 */
  bb_str(&b, "nested");
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, 2, 8);
  bb_le(&b, GGUF_V_INT16, 4), bb_le(&b, 2, 8), bb_le(&b, 1, 2), bb_le(&b, 2, 2);
  bb_le(&b, GGUF_V_INT16, 4), bb_le(&b, 1, 8), bb_le(&b, 3, 2);
  /* [["a"], []] of strings */
  bb_str(&b, "nested_str");
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, 2, 8);
  bb_le(&b, GGUF_V_STRING, 4), bb_le(&b, 1, 8), bb_str(&b, "a");
  bb_le(&b, GGUF_V_STRING, 4), bb_le(&b, 0, 8);

  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open_memory(b.p, b.n, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(f->version, 2);
  uint64_t u;
  int64_t i;
  double d;
  int bl;
  cr_assert(clkv__gguf_get_u64(f, "u8", &u) && u == 200);
  cr_assert(clkv__gguf_get_i64(f, "i8", &i) && i == -128);
  cr_assert(clkv__gguf_get_u64(f, "u16", &u) && u == 65535);
  cr_assert(clkv__gguf_get_i64(f, "i16", &i) && i == -2);
  cr_assert(clkv__gguf_get_u64(f, "u32", &u) && u == 4000000000u);
  cr_assert(clkv__gguf_get_i64(f, "i32", &i) && i == -3);
  cr_assert(clkv__gguf_get_u64(f, "u64", &u) && u == UINT64_MAX);
  cr_assert_not(clkv__gguf_get_i64(f, "u64", &i), "UINT64_MAX does not fit an i64");
  cr_assert(clkv__gguf_get_i64(f, "i64", &i) && i == INT64_MIN);
  cr_assert(clkv__gguf_get_bool(f, "bool", &bl) && bl == 1);
  cr_assert(clkv__gguf_get_f64(f, "f32", &d) && (float)d == 3.14159265f);
  cr_assert(clkv__gguf_get_f64(f, "f64", &d) && d == 3.141592653589793);
  clkv__gguf_str s;
  cr_assert(clkv__gguf_get_strv(f, "s", &s) && s.len == 4 && memcmp(s.data, "text", 4) == 0);
  for (int k = 0; k <= GGUF_V_FLOAT64; k++) cr_assert_str_neq(clkv__gguf_vtype_name((clkv__gguf_vtype)k), "unknown");
  const clkv__gguf_value *a = clkv__gguf_get_arr(f, "nested");
  cr_assert(a && a->v.arr.type == GGUF_V_ARRAY && a->v.arr.n == 2 && a->v.arr.items);
  const clkv__gguf_value *a0 = &a->v.arr.items[0], *a1 = &a->v.arr.items[1];
  cr_assert(a0->type == GGUF_V_ARRAY && a0->v.arr.type == GGUF_V_INT16 && a0->v.arr.n == 2);
  int16_t v16[2];
  memcpy(v16, a0->v.arr.data, 4);
  cr_assert(v16[0] == 1 && v16[1] == 2);
  cr_assert(a1->v.arr.n == 1 && ((const unsigned char *)a1->v.arr.data)[0] == 3);
  a = clkv__gguf_get_arr(f, "nested_str");
  cr_assert(a && a->v.arr.n == 2);
  cr_assert(a->v.arr.items[0].v.arr.n == 1 && a->v.arr.items[0].v.arr.items[0].v.str.len == 1);
  cr_assert(a->v.arr.items[1].v.arr.n == 0);
  clkv__gguf_close(f);
  free(b.p);
}

Test(gguf, zero_tensors_is_valid) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_kv_u32(&b, "general.alignment", 64);
  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open_memory(b.p, b.n, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(f->n_tensors, 0);
  cr_assert_eq(f->alignment, 64);
  clkv__gguf_close(f);
  free(b.p);
}

Test(gguf, custom_alignment_is_used) {
  bb b = {0};
  uint64_t ne[1] = {4};
  bb_hdr(&b, 3, 2, 1);
  bb_kv_u32(&b, "general.alignment", 64);
  bb_tensor(&b, "x", 1, ne, GGML_T_F32, 0);
  bb_tensor(&b, "y", 1, ne, GGML_T_F32, 64);
  bb_pad(&b, 64);
  size_t data = b.n;
  bb_zeros(&b, 64 + 16);
  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open_memory(b.p, b.n, &f, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(f->data_offset, data);
  cr_assert_eq((const unsigned char *)clkv__gguf_find_tensor(f, "y")->data - f->base, (long)(data + 64));
  clkv__gguf_close(f);
  free(b.p);
}

Test(gguf, real_model_metadata) {
  const char *path = getenv("CLKV_MODEL");
  if (!path || access(path, R_OK) != 0) cr_skip_test("CLKV_MODEL is not set or absent");
  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  char s[64];
  uint64_t u;
  cr_assert(clkv__gguf_get_str(f, "general.architecture", s, sizeof s));
  cr_assert_str_eq(s, "llama");
  cr_assert(clkv__gguf_get_u64(f, "llama.block_count", &u) && u == 30);
  cr_assert(clkv__gguf_get_u64(f, "llama.embedding_length", &u) && u == 576);
  cr_assert(clkv__gguf_get_u64(f, "llama.attention.head_count", &u) && u == 9);
  cr_assert(clkv__gguf_get_u64(f, "llama.attention.head_count_kv", &u) && u == 3);
  const clkv__gguf_value *toks = clkv__gguf_get_arr(f, "tokenizer.ggml.tokens");
  cr_assert(toks && toks->v.arr.type == GGUF_V_STRING && toks->v.arr.n == 49152);
  cr_assert_eq(f->n_tensors, 272);
  cr_assert(clkv__gguf_get_str(f, "tokenizer.ggml.model", s, sizeof s));
  cr_assert_str_eq(s, "gpt2");
  const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, "token_embd.weight");
  cr_assert(t && t->type == GGML_T_Q8_0 && t->ne[0] == 576 && t->ne[1] == 49152);
  t = clkv__gguf_find_tensor(f, "blk.0.attn_q.weight");
  cr_assert(t && t->type == GGML_T_Q4_1 && t->n_bytes == 576 * 576 / 32 * 20);
  clkv__gguf_close(f);
}

/* ---- malformed files ---- */
Test(gguf, every_truncation_fails_cleanly) {
  clkv__gguf_writer *w = small_writer();
  size_t n = 0;
  unsigned char *p = clkv__gguf_writer_serialize(w, &n);
  clkv__gguf_writer_free(w);
  cr_assert(p && n > 300);
  for (size_t len = 0; len <= n; len++) {
    clkv__gguf_file *f = NULL;
    clkv_error err;
    clkv_status st = open_bytes(p, len, &f, &err);
    if (len == n) {
      cr_assert_eq(st, CLKV_OK, "full file: %s", err.message);
    } else {
      cr_assert_eq(st, CLKV_ERR_FORMAT, "prefix %zu: %s (%s)", len, clkv_status_name(st), err.message);
      cr_assert_gt(strlen(err.message), 10);
    }
  }
  free(p);
}

Test(gguf, empty_file) {
  bb b = {0};
  expect_fail(&b, CLKV_ERR_FORMAT, "empty");
}

Test(gguf, bad_magic) {
  bb b = {0};
  bb_put(&b, "GGML", 4);
  bb_le(&b, 3, 4);
  bb_zeros(&b, 16);
  expect_fail(&b, CLKV_ERR_FORMAT, "not a GGUF");
}

Test(gguf, version_1_unsupported) {
  bb b = {0};
  bb_hdr(&b, 1, 0, 0);
  expect_fail(&b, CLKV_ERR_UNSUPPORTED, "version 1");
}

Test(gguf, version_99_unsupported) {
  bb b = {0};
  bb_hdr(&b, 99, 0, 0);
  expect_fail(&b, CLKV_ERR_UNSUPPORTED, "99");
}

Test(gguf, huge_kv_count) {
  bb b = {0};
  bb_hdr(&b, 3, 0, UINT64_MAX);
  bb_kv_u32(&b, "a", 1);
  expect_fail(&b, CLKV_ERR_FORMAT, "key/value count");
}

Test(gguf, huge_tensor_count) {
  bb b = {0};
  bb_hdr(&b, 3, 1ull << 40, 0);
  bb_zeros(&b, 64);
  expect_fail(&b, CLKV_ERR_FORMAT, "tensor count");
}

Test(gguf, huge_string_length) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_le(&b, UINT64_MAX, 8);
  bb_zeros(&b, 16);
  expect_fail(&b, CLKV_ERR_FORMAT, "byte 24");
}

Test(gguf, string_length_past_end) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "k");
  bb_le(&b, GGUF_V_STRING, 4);
  bb_le(&b, 10, 8);
  bb_put(&b, "short", 5);
  expect_fail(&b, CLKV_ERR_FORMAT, "string value");
}

Test(gguf, huge_array_length) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "k");
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, GGUF_V_UINT32, 4);
  bb_le(&b, 1ull << 62, 8);
  bb_zeros(&b, 64);
  expect_fail(&b, CLKV_ERR_FORMAT, "array of");
}

Test(gguf, huge_string_array_length) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "k");
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, GGUF_V_STRING, 4);
  bb_le(&b, 100, 8); /* 100 strings need >= 800 bytes */
  bb_zeros(&b, 700);
  expect_fail(&b, CLKV_ERR_FORMAT, "array of 100");
}

Test(gguf, nested_array_depth_bomb) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "k");
  bb_le(&b, GGUF_V_ARRAY, 4);
  for (int i = 0; i < 1000; i++) {
    bb_le(&b, GGUF_V_ARRAY, 4);
    bb_le(&b, 1, 8);
  }
  bb_zeros(&b, 64);
  expect_fail(&b, CLKV_ERR_FORMAT, "nested");
}

Test(gguf, unknown_value_type) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "k");
  bb_le(&b, 13, 4);
  bb_zeros(&b, 8);
  expect_fail(&b, CLKV_ERR_FORMAT, "value type 13");
}

Test(gguf, unknown_array_element_type) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "k");
  bb_le(&b, GGUF_V_ARRAY, 4);
  bb_le(&b, 77, 4);
  bb_le(&b, 1, 8);
  bb_zeros(&b, 8);
  expect_fail(&b, CLKV_ERR_FORMAT, "element type 77");
}

Test(gguf, duplicate_key) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 2);
  bb_kv_u32(&b, "general.x", 1);
  bb_kv_u32(&b, "general.x", 2);
  expect_fail(&b, CLKV_ERR_FORMAT, "twice");
}

/* Bad tensor infos: each case is one tensor in an otherwise valid file. */
Test(gguf, bad_tensor_infos) {
  char long_name[200];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  const uint64_t big = 1ull << 20;
  const struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;
    size_t data;
    const char *needle;
  } cases[] = {
      {"x", 1, {32}, 99, 0, 128, "tensor 'x' has unknown GGML type 99; this file may need a newer clkv"},
      {"x", 1, {32}, 4, 0, 128, "unknown GGML type 4"}, /* removed Q4_2 */
      {"x", 1, {32}, 45, 0, 128, "(this one runs F32, F16, Q4_0"}, /* the runnable list */
      {"x", 0, {8}, GGML_T_F32, 0, 32, "0 dimensions"},
      {"x", 5, {1, 1, 1, 1, 1}, GGML_T_F32, 0, 32, "5 dimensions"},
      {"x", 2, {8, 0}, GGML_T_F32, 0, 32, "dimension 1 is 0"},
      {"x", 4, {big, big, big, big}, GGML_T_F32, 0, 32, "overflow"},
      /* 2^62 elements fit; 2^64 bytes do not */
      {"x", 2, {1ull << 31, 1ull << 31}, GGML_T_F32, 0, 32, "overflow"},
      {"x", 2, {48, 2}, GGML_T_Q4_1, 0, 256, "block size 32"},
      {"x", 1, {8}, GGML_T_F32, 1ull << 40, 32, "past the end"},
      {"x", 1, {16}, GGML_T_F32, 32, 64, "past the end"}, /* needs [32, 96) of 64 */
      {"x", 1, {16}, GGML_T_F32, UINT64_MAX - 31, 64, "past the end"},
      {"x", 1, {4}, GGML_T_F32, 4, 64, "alignment"},
      {long_name, 1, {8}, GGML_T_F32, 0, 32, "199 bytes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bb b = {0};
    bb_hdr(&b, 3, 1, 0);
    bb_tensor(&b, cases[i].name, cases[i].n_dims, cases[i].ne, cases[i].type, cases[i].offset);
    bb_pad(&b, 32);
    bb_zeros(&b, cases[i].data);
    cr_log_info("case %zu: %s", i, cases[i].needle);
    expect_fail(&b, CLKV_ERR_FORMAT, cases[i].needle);
  }
}

Test(gguf, alignment_zero) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_kv_u32(&b, "general.alignment", 0);
  expect_fail(&b, CLKV_ERR_FORMAT, "power of two");
}

Test(gguf, alignment_not_power_of_two) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_kv_u32(&b, "general.alignment", 48);
  expect_fail(&b, CLKV_ERR_FORMAT, "power of two");
}

Test(gguf, alignment_wrong_type) {
  bb b = {0};
  bb_hdr(&b, 3, 0, 1);
  bb_str(&b, "general.alignment");
  bb_le(&b, GGUF_V_STRING, 4);
  bb_str(&b, "32");
  expect_fail(&b, CLKV_ERR_FORMAT, "general.alignment");
}

Test(gguf, duplicate_tensor_name) {
  bb b = {0};
  uint64_t ne[1] = {8};
  bb_hdr(&b, 3, 2, 0);
  bb_tensor(&b, "w", 1, ne, GGML_T_F32, 0);
  bb_tensor(&b, "w", 1, ne, GGML_T_F32, 32);
  bb_pad(&b, 32);
  bb_zeros(&b, 64);
  expect_fail(&b, CLKV_ERR_FORMAT, "'w' appears twice");
}

Test(gguf, tensor_name_with_nul) {
  bb b = {0};
  bb_hdr(&b, 3, 1, 0);
  bb_le(&b, 3, 8);
  bb_put(&b, "a\0b", 3);
  bb_le(&b, 1, 4);
  bb_le(&b, 8, 8);
  bb_le(&b, GGML_T_F32, 4);
  bb_le(&b, 0, 8);
  bb_pad(&b, 32);
  bb_zeros(&b, 32);
  expect_fail(&b, CLKV_ERR_FORMAT, "NUL");
}

Test(gguf, open_missing_file_is_io_error) {
  clkv__gguf_file *f = (clkv__gguf_file *)1;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open("/nonexistent/dir/model.gguf", &f, &err), CLKV_ERR_IO);
  cr_assert_null(f);
  cr_assert_not_null(strstr(err.message, "/nonexistent/dir/model.gguf"));
  cr_assert_eq(clkv__gguf_open("/tmp", &f, &err), CLKV_ERR_IO);
  cr_assert_eq(clkv__gguf_open("/nonexistent", &f, NULL), CLKV_ERR_IO);
}

Test(gguf, open_bad_file_names_path_and_offset) {
  char dir[] = "/tmp/clkv_gguf_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/bad.gguf", dir);
  FILE *fp = fopen(path, "wb");
  cr_assert_not_null(fp);
  fwrite("GGUF\3\0\0\0", 1, 8, fp);
  fclose(fp);
  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_ERR_FORMAT);
  cr_assert_not_null(strstr(err.message, path), "%s", err.message);
  cr_assert_not_null(strstr(err.message, "at byte 8"), "%s", err.message);
  cr_assert_not_null(strstr(err.message, "download it again"), "%s", err.message);
  /* an empty file */
  fp = fopen(path, "wb");
  fclose(fp);
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_ERR_FORMAT);
  unlink(path);
  rmdir(dir);
}

Test(gguf, type_table) {
  const struct { uint32_t id; const char *name; uint32_t bs, ts; int run; } want[] = {
      {GGML_T_F32, "F32", 1, 4, 1},        {GGML_T_F16, "F16", 1, 2, 1},
      {GGML_T_Q4_0, "Q4_0", 32, 18, 1},    {GGML_T_Q4_1, "Q4_1", 32, 20, 1},
      {GGML_T_Q8_0, "Q8_0", 32, 34, 1},    {GGML_T_BF16, "BF16", 1, 2, 1},
      {GGML_T_Q6_K, "Q6_K", 256, 210, 1},  {GGML_T_IQ4_XS, "IQ4_XS", 256, 136, 1},
      {GGML_T_Q4_K, "Q4_K", 256, 144, 1},  {GGML_T_Q5_0, "Q5_0", 32, 22, 1},
      {GGML_T_IQ2_XXS, "IQ2_XXS", 256, 66, 0}, {GGML_T_MXFP4, "MXFP4", 32, 17, 0},
      {GGML_T_TQ2_0, "TQ2_0", 256, 66, 0}, {GGML_T_Q8_K, "Q8_K", 256, 292, 0}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(want[i].id);
    cr_assert_not_null(ti);
    cr_assert_str_eq(ti->name, want[i].name);
    cr_assert(ti->block_size == want[i].bs && ti->type_size == want[i].ts && ti->runnable == want[i].run);
  }
  cr_assert_null(clkv__ggml_type_get(4));
  cr_assert_null(clkv__ggml_type_get(31));
  cr_assert_null(clkv__ggml_type_get(GGML_T_COUNT));
  cr_assert_null(clkv__ggml_type_get(UINT32_MAX));
  cr_assert_eq(clkv__ggml_row_bytes(GGML_T_Q4_1, 576), 18 * 20);
  cr_assert_eq(clkv__ggml_row_bytes(GGML_T_Q4_1, 33), 0);
  cr_assert_eq(clkv__ggml_row_bytes(99, 32), 0);
  cr_assert_eq(clkv__ggml_row_bytes(GGML_T_F64, UINT64_MAX), 0, "overflow gives 0");
}

/* The table read from kernels/contract.h: the kernels' view of a type (clkv__wt_block_*, the
 * same header compiled into every program) is the host's, row sizes follow the blocks, and
 * the runnable types have contiguous slots, in id order, and are named in error messages. */
Test(gguf, type_rows_and_runnable_slots) {
  int n_run = 0;
  char names[256] = "";
  for (uint32_t id = 0; id < GGML_T_COUNT; id++) {
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(id);
    if (!ti) {
      cr_assert(clkv__wt_block_elems((int)id) == 0 && clkv__wt_block_bytes((int)id) == 0, "%u", id);
      cr_assert_eq(clkv__wtype_slot(id), -1);
      continue;
    }
    cr_assert(ti->block_size == clkv__wt_block_elems((int)id) && ti->type_size == clkv__wt_block_bytes((int)id),
              "%s", ti->name);
    cr_assert(ti->block_size > 0 && ti->type_size > 0, "%s", ti->name);
    for (uint32_t j = 0; j < id; j++)
      if (clkv__ggml_type_get(j)) cr_assert_str_neq(clkv__ggml_type_get(j)->name, ti->name);
    cr_assert_eq(clkv__ggml_row_bytes(id, 7 * (uint64_t)ti->block_size), 7 * (uint64_t)ti->type_size, "%s", ti->name);
    if (ti->block_size > 1) cr_assert_eq(clkv__ggml_row_bytes(id, ti->block_size + 1), 0, "%s", ti->name);
    if (!ti->runnable) {
      cr_assert_eq(clkv__wtype_slot(id), -1, "%s", ti->name);
      continue;
    }
    /* the kernels work on 32-element pieces of a block */
    cr_assert_eq(ti->block_size % 32 == 0 || ti->block_size == 1, 1, "%s", ti->name);
    cr_assert_eq(clkv__wtype_slot(id), n_run, "%s", ti->name);
    cr_assert_eq(clkv__wtype_of_slot(n_run), id, "%s", ti->name);
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", n_run ? ", " : "", ti->name);
    n_run++;
  }
  cr_assert_eq(n_run, CLKV__N_WTYPES);
  cr_assert_eq(clkv__wtype_of_slot(n_run), GGML_T_COUNT);
  cr_assert_eq(clkv__wtype_of_slot(-1), GGML_T_COUNT);
  cr_assert_str_eq(clkv__wtype_names(), names);
  cr_assert_eq(clkv__wtype_slot(UINT32_MAX), -1);
}

/* Flips a few bytes of a valid file, many times (seeded): each open fails or succeeds, cleanly. */
Test(gguf, byte_flip_fuzz) {
  clkv__gguf_writer *w = small_writer();
  size_t n = 0;
  unsigned char *p = clkv__gguf_writer_serialize(w, &n);
  clkv__gguf_writer_free(w);
  unsigned char *m = malloc(n);
  cr_assert(p && m);
  uint64_t s = 0x9e3779b97f4a7c15ull;
  int failed = 0;
  for (int it = 0; it < 4000; it++) {
    memcpy(m, p, n);
    int flips = 1 + (int)(s % 4);
    for (int k = 0; k < flips; k++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      size_t at = (size_t)(s % n);
      /* bias towards the header and metadata, where the counts live */
      if (it % 2) at = (size_t)(s % (n < 400 ? n : 400));
      m[at] = (unsigned char)(s >> 24);
    }
    size_t len = (it % 7 == 0) ? (size_t)((s >> 8) % n) : n;
    clkv__gguf_file *f = NULL;
    clkv_error err;
    clkv_status st = open_bytes(m, len, &f, &err);
    if (st != CLKV_OK) {
      failed++;
      cr_assert_gt(strlen(err.message), 0);
      cr_assert(st == CLKV_ERR_FORMAT || st == CLKV_ERR_UNSUPPORTED || st == CLKV_ERR_NO_MEMORY,
                "%s", clkv_status_name(st));
    }
  }
  cr_assert_gt(failed, 100, "the fuzz loop should hit many errors");
  free(m);
  free(p);
}

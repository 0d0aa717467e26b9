/* gguf.c — GGUF v2/v3 reader: maps the file (or borrows a buffer), checks every count, size
 * and offset with overflow-safe arithmetic before using it, and offers typed lookups. */
#include "clkv_internal.h"
#include "format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DEPTH 8         /* arrays nested deeper than this are refused */
#define GGUF_DEFAULT_ALIGNMENT 32
#define HINT_TRUNC "the file is truncated or not a GGUF model; download it again"
#define HINT_BROKEN "the file is damaged or was written by a broken tool; download or convert it again"

/* A read cursor over the whole file. */
typedef struct cursor {
  const unsigned char *p;
  uint64_t size;
  uint64_t pos;
  clkv_error *err;
} cursor;

/* Formats "GGUF: at byte N: <msg>" into err and returns s. */
static clkv_status fail_at(cursor *c, uint64_t at, clkv_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static clkv_status fail_at(cursor *c, uint64_t at, clkv_status s, const char *fmt, ...) {
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return clkv__err(c->err, s, "GGUF: at byte %llu: %s", (unsigned long long)at, msg);
}

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

/* Takes n bytes for `field`, or fails naming the field and where the file ended. */
static clkv_status take(cursor *c, uint64_t n, const char *field, const unsigned char **out) {
  *out = NULL;
  if (n > remaining(c))
    return fail_at(c, c->pos, CLKV_ERR_FORMAT,
                   "%s needs %llu bytes but the file ends after %llu more (size %llu); " HINT_TRUNC,
                   field, (unsigned long long)n, (unsigned long long)remaining(c),
                   (unsigned long long)c->size);
  *out = c->p + c->pos;
  c->pos += n;
  return CLKV_OK;
}

static uint64_t le(const unsigned char *b, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

static clkv_status rd_u32(cursor *c, const char *field, uint32_t *v) {
  const unsigned char *b = NULL;
  clkv_status st = take(c, 4, field, &b);
  if (st == CLKV_OK) *v = (uint32_t)le(b, 4);
  return st;
}

static clkv_status rd_u64(cursor *c, const char *field, uint64_t *v) {
  const unsigned char *b = NULL;
  clkv_status st = take(c, 8, field, &b);
  if (st == CLKV_OK) *v = le(b, 8);
  return st;
}

static clkv_status rd_str(cursor *c, const char *field, clkv__gguf_str *s) {
  uint64_t at = c->pos, len = 0;
  clkv_status st = rd_u64(c, field, &len);
  if (st != CLKV_OK) return st;
  if (len > remaining(c))
    return fail_at(c, at, CLKV_ERR_FORMAT,
                   "%s has length %llu but only %llu bytes remain in the file; " HINT_TRUNC, field,
                   (unsigned long long)len, (unsigned long long)remaining(c));
  const unsigned char *b = NULL;
  take(c, len, field, &b);
  s->len = len;
  s->data = (const char *)b;
  return CLKV_OK;
}

/* Bytes of one scalar element; 0 for STRING/ARRAY; -1 for unknown types. */
static int scalar_size(uint32_t t) {
  switch (t) {
    case GGUF_V_UINT8: case GGUF_V_INT8: case GGUF_V_BOOL: return 1;
    case GGUF_V_UINT16: case GGUF_V_INT16: return 2;
    case GGUF_V_UINT32: case GGUF_V_INT32: case GGUF_V_FLOAT32: return 4;
    case GGUF_V_UINT64: case GGUF_V_INT64: case GGUF_V_FLOAT64: return 8;
    case GGUF_V_STRING: case GGUF_V_ARRAY: return 0;
    default: return -1;
  }
}

const char *clkv__gguf_vtype_name(clkv__gguf_vtype t) {
  static const char *const names[] = {"uint8", "int8",  "uint16", "int16",  "uint32",
                                       "int32", "float32", "bool", "string", "array",
                                       "uint64", "int64", "float64"};
  return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Decodes one little-endian scalar into v. */
static void decode_scalar(clkv__gguf_vtype t, const unsigned char *b, clkv__gguf_value *v) {
  v->type = t;
  switch (t) {
    case GGUF_V_UINT8: case GGUF_V_BOOL: v->v.u64 = b[0]; break;
    case GGUF_V_UINT16: v->v.u64 = le(b, 2); break;
    case GGUF_V_UINT32: v->v.u64 = le(b, 4); break;
    case GGUF_V_UINT64: v->v.u64 = le(b, 8); break;
    case GGUF_V_INT8: v->v.i64 = (int8_t)b[0]; break;
    case GGUF_V_INT16: v->v.i64 = (int16_t)(uint16_t)le(b, 2); break;
    case GGUF_V_INT32: v->v.i64 = (int32_t)(uint32_t)le(b, 4); break;
    case GGUF_V_INT64: v->v.i64 = (int64_t)le(b, 8); break;
    case GGUF_V_FLOAT32: {
      uint32_t u = (uint32_t)le(b, 4);
      float f;
      memcpy(&f, &u, 4);
      v->v.f64 = f;
      break;
    }
    case GGUF_V_FLOAT64: {
      uint64_t u = le(b, 8);
      memcpy(&v->v.f64, &u, 8);
      break;
    }
    default: break;
  }
}

static void free_value(clkv__gguf_value *v) {
  if (v->type != GGUF_V_ARRAY || !v->v.arr.items) return;
  for (uint64_t i = 0; i < v->v.arr.n; i++) free_value(&v->v.arr.items[i]);
  free(v->v.arr.items);
  v->v.arr.items = NULL;
}

static clkv_status parse_value(cursor *c, uint32_t type, int depth, const char *what,
                               clkv__gguf_value *out);

static clkv_status parse_array(cursor *c, int depth, const char *what, clkv__gguf_value *out) {
  uint64_t at = c->pos;
  uint32_t et = 0;
  uint64_t n = 0;
  clkv_status st;
  out->type = GGUF_V_ARRAY;
  if (depth >= GGUF_MAX_DEPTH)
    return fail_at(c, at, CLKV_ERR_FORMAT,
                   "%s: arrays are nested more than %d deep; " HINT_BROKEN, what, GGUF_MAX_DEPTH);
  if ((st = rd_u32(c, "array element type", &et)) != CLKV_OK) return st;
  if ((st = rd_u64(c, "array length", &n)) != CLKV_OK) return st;
  int es = scalar_size(et);
  if (es < 0)
    return fail_at(c, at, CLKV_ERR_FORMAT,
                   "%s: array element type %u is not a GGUF value type; " HINT_BROKEN, what, et);
  /* Each element takes at least es bytes (8 for a string length, 12 for an array header). */
  uint64_t min = es > 0 ? (uint64_t)es : (et == GGUF_V_STRING ? 8 : 12);
  if (n > remaining(c) / min)
    return fail_at(c, at, CLKV_ERR_FORMAT,
                   "%s: array of %llu %s elements needs at least %llu bytes each but only %llu "
                   "bytes remain; " HINT_TRUNC,
                   what, (unsigned long long)n, clkv__gguf_vtype_name((clkv__gguf_vtype)et),
                   (unsigned long long)min, (unsigned long long)remaining(c));
  out->v.arr.type = (clkv__gguf_vtype)et;
  out->v.arr.n = 0;
  out->v.arr.data = c->p + c->pos;
  out->v.arr.items = NULL;
  if (es > 0) {
    c->pos += n * (uint64_t)es;
    out->v.arr.n = n;
    return CLKV_OK;
  }
  if (n == 0) return CLKV_OK;
  clkv__gguf_value *items = calloc((size_t)n, sizeof *items);
  if (!items)
    return clkv__err(c->err, CLKV_ERR_NO_MEMORY, "GGUF: out of memory for an array of %llu values",
                     (unsigned long long)n);
  out->v.arr.items = items;
  for (uint64_t i = 0; i < n; i++) {
    out->v.arr.n = i + 1; /* so free_value releases what was parsed so far */
    if ((st = parse_value(c, et, depth + 1, what, &items[i])) != CLKV_OK) return st;
  }
  return CLKV_OK;
}

static clkv_status parse_value(cursor *c, uint32_t type, int depth, const char *what,
                               clkv__gguf_value *out) {
  memset(out, 0, sizeof *out);
  int es = scalar_size(type);
  if (es < 0)
    return fail_at(c, c->pos, CLKV_ERR_FORMAT,
                   "%s has value type %u, which is not a GGUF value type; " HINT_BROKEN, what, type);
  if (type == GGUF_V_ARRAY) return parse_array(c, depth, what, out);
  if (type == GGUF_V_STRING) {
    out->type = GGUF_V_STRING;
    return rd_str(c, "string value", &out->v.str);
  }
  const unsigned char *b = NULL;
  clkv_status st = take(c, (uint64_t)es, "value", &b);
  if (st == CLKV_OK) decode_scalar((clkv__gguf_vtype)type, b, out);
  return st;
}

/* ---- duplicate detection: an open-addressing set of (ptr, len) strings ---- */
typedef struct strset {
  const clkv__gguf_str **slots;
  uint64_t cap;
} strset;

static uint64_t hash_str(const char *s, uint64_t n) {
  uint64_t h = 1469598103934665603ull;
  for (uint64_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int strset_init(strset *s, uint64_t n) {
  s->cap = 16;
  while (s->cap < 2 * n) s->cap *= 2;
  s->slots = calloc((size_t)s->cap, sizeof *s->slots);
  return s->slots != NULL;
}

/* Returns 1 if str was already present, else inserts it and returns 0. */
static int strset_add(strset *s, const clkv__gguf_str *str) {
  uint64_t i = hash_str(str->data, str->len) & (s->cap - 1);
  while (s->slots[i]) {
    const clkv__gguf_str *o = s->slots[i];
    if (o->len == str->len && memcmp(o->data, str->data, str->len) == 0) return 1;
    i = (i + 1) & (s->cap - 1);
  }
  s->slots[i] = str;
  return 0;
}

/* ---- the file ---- */
static clkv_status parse_header(cursor *c, clkv__gguf_file *f) {
  const unsigned char *magic = NULL;
  clkv_status st;
  if (c->size == 0)
    return fail_at(c, 0, CLKV_ERR_FORMAT, "the file is empty; " HINT_TRUNC);
  if ((st = take(c, 4, "magic \"GGUF\"", &magic)) != CLKV_OK) return st;
  if (memcmp(magic, "GGUF", 4) != 0)
    return fail_at(c, 0, CLKV_ERR_FORMAT,
                   "magic is %02x %02x %02x %02x, not \"GGUF\"; this is not a GGUF model (give a "
                   ".gguf file, or download it again)",
                   magic[0], magic[1], magic[2], magic[3]);
  if ((st = rd_u32(c, "version", &f->version)) != CLKV_OK) return st;
  if (f->version == 1)
    return fail_at(c, 4, CLKV_ERR_UNSUPPORTED,
                   "GGUF version 1 (files from before September 2023) is not supported; convert "
                   "the model again with a current llama.cpp, or download a newer file");
  if (f->version != 2 && f->version != 3) {
    const char *be = (f->version & 0xffff) == 0 ? " (it looks like a big-endian file, which "
                                                  "clkv does not read)" : "";
    return fail_at(c, 4, CLKV_ERR_UNSUPPORTED,
                   "GGUF version %u is not supported (clkv reads versions 2 and 3)%s; this file "
                   "may need a newer clkv",
                   f->version, be);
  }
  if ((st = rd_u64(c, "tensor count", &f->n_tensors)) != CLKV_OK) return st;
  if ((st = rd_u64(c, "metadata key/value count", &f->n_kv)) != CLKV_OK) return st;
  /* A kv takes >= 13 bytes (key length, value type, 1 value byte); a tensor info >= 32. */
  if (f->n_kv > remaining(c) / 13)
    return fail_at(c, 16, CLKV_ERR_FORMAT,
                   "metadata key/value count %llu cannot fit in the %llu bytes that remain; " HINT_TRUNC,
                   (unsigned long long)f->n_kv, (unsigned long long)remaining(c));
  if (f->n_tensors > remaining(c) / 32)
    return fail_at(c, 8, CLKV_ERR_FORMAT,
                   "tensor count %llu cannot fit in the %llu bytes that remain; " HINT_TRUNC,
                   (unsigned long long)f->n_tensors, (unsigned long long)remaining(c));
  return CLKV_OK;
}

static clkv_status parse_kvs(cursor *c, clkv__gguf_file *f) {
  clkv_status st = CLKV_OK;
  uint64_t n = f->n_kv;
  f->n_kv = 0;
  f->kv = calloc(n ? (size_t)n : 1, sizeof *f->kv);
  strset keys = {0};
  if (!f->kv || !strset_init(&keys, n)) {
    free(keys.slots);
    return clkv__err(c->err, CLKV_ERR_NO_MEMORY, "GGUF: out of memory for %llu keys",
                     (unsigned long long)n);
  }
  for (uint64_t i = 0; i < n; i++) {
    clkv__gguf_kv *kv = &f->kv[i];
    uint64_t at = c->pos;
    uint32_t type = 0;
    char what[160];
    if ((st = rd_str(c, "metadata key", &kv->key)) != CLKV_OK) break;
    snprintf(what, sizeof what, "metadata key %llu '%.*s'", (unsigned long long)i,
             (int)(kv->key.len > 100 ? 100 : kv->key.len), kv->key.data);
    if (strset_add(&keys, &kv->key)) {
      st = fail_at(c, at, CLKV_ERR_FORMAT, "%s appears twice; " HINT_BROKEN, what);
      break;
    }
    f->n_kv = i + 1;
    if ((st = rd_u32(c, "metadata value type", &type)) != CLKV_OK) break;
    if ((st = parse_value(c, type, 0, what, &kv->value)) != CLKV_OK) break;
  }
  free(keys.slots);
  return st;
}

static clkv_status read_alignment(cursor *c, clkv__gguf_file *f) {
  f->alignment = GGUF_DEFAULT_ALIGNMENT;
  const clkv__gguf_kv *kv = clkv__gguf_find(f, "general.alignment");
  if (!kv) return CLKV_OK;
  uint64_t a;
  if (!clkv__gguf_get_u64(f, "general.alignment", &a))
    return fail_at(c, 0, CLKV_ERR_FORMAT,
                   "general.alignment has type %s, not an unsigned integer; " HINT_BROKEN,
                   clkv__gguf_vtype_name(kv->value.type));
  if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30))
    return fail_at(c, 0, CLKV_ERR_FORMAT,
                   "general.alignment is %llu; it must be a power of two (such as 32); " HINT_BROKEN,
                   (unsigned long long)a);
  f->alignment = a;
  return CLKV_OK;
}

static clkv_status parse_tensor(cursor *c, clkv__gguf_tensor *t, uint64_t i) {
  uint64_t at = c->pos;
  clkv__gguf_str name = {0, NULL};
  clkv_status st;
  if ((st = rd_str(c, "tensor name", &name)) != CLKV_OK) return st;
  if (name.len >= sizeof t->name || memchr(name.data, '\0', name.len))
    return fail_at(c, at, CLKV_ERR_FORMAT,
                   "tensor %llu: name is %llu bytes long or holds a NUL byte (names must be "
                   "under %zu bytes); " HINT_BROKEN,
                   (unsigned long long)i, (unsigned long long)name.len, sizeof t->name);
  memcpy(t->name, name.data, name.len);
  t->name[name.len] = '\0';
  uint64_t dims_at = c->pos;
  if ((st = rd_u32(c, "tensor dimension count", &t->n_dims)) != CLKV_OK) return st;
  if (t->n_dims < 1 || t->n_dims > 4)
    return fail_at(c, dims_at, CLKV_ERR_FORMAT,
                   "tensor %llu '%s' has %u dimensions (must be 1 to 4); " HINT_BROKEN,
                   (unsigned long long)i, t->name, t->n_dims);
  uint64_t n_el = 1;
  for (uint32_t d = 0; d < 4; d++) {
    t->ne[d] = 1;
    if (d >= t->n_dims) continue;
    uint64_t ne_at = c->pos;
    if ((st = rd_u64(c, "tensor dimension", &t->ne[d])) != CLKV_OK) return st;
    if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX / n_el)
      return fail_at(c, ne_at, CLKV_ERR_FORMAT,
                     "tensor %llu '%s': dimension %u is %llu, which is zero or makes the element "
                     "count overflow; " HINT_BROKEN,
                     (unsigned long long)i, t->name, d, (unsigned long long)t->ne[d]);
    n_el *= t->ne[d];
  }
  t->n_elements = n_el;
  uint64_t type_at = c->pos;
  if ((st = rd_u32(c, "tensor type", &t->type)) != CLKV_OK) return st;
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(t->type);
  if (!ti)
    return fail_at(c, type_at, CLKV_ERR_FORMAT,
                   "tensor '%s' has unknown GGML type %u; this file may need a newer clkv "
                   "(this one runs %s)", t->name, t->type, clkv__wtype_names());
  uint64_t row = clkv__ggml_row_bytes(t->type, t->ne[0]);
  if (row == 0)
    return fail_at(c, type_at, CLKV_ERR_FORMAT,
                   "tensor '%s': row length %llu is not a multiple of the %s block size %u; " HINT_BROKEN,
                   t->name, (unsigned long long)t->ne[0], ti->name, ti->block_size);
  uint64_t rows = n_el / t->ne[0];
  if (row > UINT64_MAX / rows)
    return fail_at(c, type_at, CLKV_ERR_FORMAT, "tensor '%s': byte size overflows; " HINT_BROKEN,
                   t->name);
  t->n_bytes = row * rows;
  return rd_u64(c, "tensor data offset", &t->offset);
}

/* Checks each tensor's data range once the data section start is known. */
static clkv_status place_tensors(cursor *c, clkv__gguf_file *f, const uint64_t *info_at) {
  for (uint64_t i = 0; i < f->n_tensors; i++) {
    clkv__gguf_tensor *t = &f->tensors[i];
    uint64_t at = info_at[i];
    if (t->offset % f->alignment)
      return fail_at(c, at, CLKV_ERR_FORMAT,
                     "tensor %llu '%s': data offset %llu is not a multiple of the alignment %llu; "
                     HINT_BROKEN,
                     (unsigned long long)i, t->name, (unsigned long long)t->offset,
                     (unsigned long long)f->alignment);
    uint64_t avail = f->size >= f->data_offset ? f->size - f->data_offset : 0;
    if (t->offset > avail || t->n_bytes > avail - t->offset)
      return fail_at(c, at, CLKV_ERR_FORMAT,
                     "tensor %llu '%s': data [%llu, +%llu) runs past the end of the file (size "
                     "%llu, data section at %llu); " HINT_TRUNC,
                     (unsigned long long)i, t->name, (unsigned long long)t->offset,
                     (unsigned long long)t->n_bytes, (unsigned long long)f->size,
                     (unsigned long long)f->data_offset);
    t->data = f->base + f->data_offset + t->offset;
  }
  return CLKV_OK;
}

static clkv_status parse_tensors(cursor *c, clkv__gguf_file *f) {
  clkv_status st = CLKV_OK;
  uint64_t n = f->n_tensors;
  f->n_tensors = 0;
  f->tensors = calloc(n ? (size_t)n : 1, sizeof *f->tensors);
  uint64_t *info_at = malloc((n ? (size_t)n : 1) * sizeof *info_at);
  clkv__gguf_str *names = malloc((n ? (size_t)n : 1) * sizeof *names);
  strset set = {0};
  if (!f->tensors || !info_at || !names || !strset_init(&set, n)) {
    st = clkv__err(c->err, CLKV_ERR_NO_MEMORY, "GGUF: out of memory for %llu tensors",
                   (unsigned long long)n);
    goto done;
  }
  f->n_tensors = n;
  for (uint64_t i = 0; i < n; i++) {
    info_at[i] = c->pos;
    if ((st = parse_tensor(c, &f->tensors[i], i)) != CLKV_OK) goto done;
    names[i].data = f->tensors[i].name;
    names[i].len = strlen(f->tensors[i].name);
    if (strset_add(&set, &names[i])) {
      st = fail_at(c, info_at[i], CLKV_ERR_FORMAT, "tensor name '%s' appears twice; " HINT_BROKEN,
                   f->tensors[i].name);
      goto done;
    }
  }
  uint64_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
  f->data_offset = c->pos + pad; /* cannot overflow: pos <= size, pad < 2^30 */
  st = place_tensors(c, f, info_at);
done:
  free(set.slots);
  free(names);
  free(info_at);
  return st;
}

static clkv_status parse(clkv__gguf_file *f, clkv_error *err) {
  cursor c = {f->base, f->size, 0, err};
  clkv_status st;
  if ((st = parse_header(&c, f)) != CLKV_OK) return st;
  if ((st = parse_kvs(&c, f)) != CLKV_OK) return st;
  if ((st = read_alignment(&c, f)) != CLKV_OK) return st;
  return parse_tensors(&c, f);
}

void clkv__gguf_close(clkv__gguf_file *f) {
  if (!f) return;
  for (uint64_t i = 0; f->kv && i < f->n_kv; i++) free_value(&f->kv[i].value);
  free(f->kv);
  free(f->tensors);
  if (f->owns && f->base) {
    if (f->mapped)
      munmap((void *)f->base, (size_t)f->size);
    else
      free((void *)f->base);
  }
  free(f);
}

static clkv_status open_common(clkv__gguf_file *f, clkv__gguf_file **out, clkv_error *err) {
  clkv_status st = parse(f, err);
  if (st != CLKV_OK) {
    clkv__gguf_close(f);
    return st;
  }
  *out = f;
  return CLKV_OK;
}

clkv_status clkv__gguf_open_memory(const void *data, size_t size, clkv__gguf_file **out, clkv_error *err) {
  if (!out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv__gguf_open_memory: out is NULL");
  *out = NULL;
  if (!data && size)
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv__gguf_open_memory: data is NULL");
  clkv__gguf_file *f = calloc(1, sizeof *f);
  if (!f) return clkv__err(err, CLKV_ERR_NO_MEMORY, "GGUF: out of memory");
  f->base = data;
  f->size = size;
  return open_common(f, out, err);
}

clkv_status clkv__gguf_open(const char *path, clkv__gguf_file **out, clkv_error *err) {
  clkv_error local;
  if (!err) err = &local;
  if (!path || !out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv__gguf_open: path or out is NULL");
  *out = NULL;
  /* O_NONBLOCK: opening a FIFO for reading would wait for a writer; fstat then refuses it */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return clkv__err(err, CLKV_ERR_IO, "cannot open model '%s': %s; check the path", path,
                     strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return clkv__err(err, CLKV_ERR_IO, "cannot stat model '%s': %s", path, strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return clkv__err(err, CLKV_ERR_IO, "'%s' is not a regular file; give the path of a .gguf file",
                     path);
  }
  clkv__gguf_file *f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    return clkv__err(err, CLKV_ERR_NO_MEMORY, "GGUF: out of memory");
  }
  f->size = (uint64_t)sb.st_size;
  if (f->size > 0) {
    void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      free(f);
      return clkv__err(err, CLKV_ERR_IO, "cannot map model '%s' (%llu bytes): %s", path,
                       (unsigned long long)sb.st_size, strerror(e));
    }
    f->base = m;
    f->mapped = 1;
    f->owns = 1;
  }
  close(fd);
  clkv_status st = open_common(f, out, err);
  if (st != CLKV_OK) {
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    clkv__err(err, st, "'%s': %s", path, msg);
  }
  return st;
}

int clkv__gguf_scalar_size(uint32_t t) { return scalar_size(t); }

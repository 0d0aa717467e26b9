/* gguf.h — GGUF v2/v3 reader (mmap, every size validated), writer (for tests and tools),
 * and the table of GGML tensor types. Internal to clkv. */
#ifndef CLKV_GGUF_H
#define CLKV_GGUF_H

#include "clkv.h"
#include "contract.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- GGML tensor types (the rows are in kernels/contract.h; host/format/types.c) ---- */
typedef struct clkv__ggml_type_info {
  const char *name;     /* "Q4_1"; NULL for ids that are not a type */
  uint32_t block_size;  /* elements per block (1 for plain types) */
  uint32_t type_size;   /* bytes per block */
  int runnable;         /* 1 if clkv's kernels compute with it */
} clkv__ggml_type_info;

/* NULL when id is unknown. */
const clkv__ggml_type_info *clkv__ggml_type_get(uint32_t id);
/* Bytes for n elements of a row (n must be a multiple of block_size); 0 if not. */
uint64_t clkv__ggml_row_bytes(uint32_t id, uint64_t n);
/* The runnable types numbered 0 .. CLKV__N_WTYPES-1 in id order (a model keeps its kernel
 * variants per slot): the slot of type, or -1 if it is not runnable. */
int clkv__wtype_slot(uint32_t type);
/* The type in slot (0 .. CLKV__N_WTYPES-1); GGML_T_COUNT past the last. */
uint32_t clkv__wtype_of_slot(int slot);
/* "F32, F16, Q4_0, ..." — the runnable types' names, for error messages. */
const char *clkv__wtype_names(void);

/* ---- metadata values ---- */
typedef enum clkv__gguf_vtype {
  GGUF_V_UINT8 = 0, GGUF_V_INT8 = 1, GGUF_V_UINT16 = 2, GGUF_V_INT16 = 3,
  GGUF_V_UINT32 = 4, GGUF_V_INT32 = 5, GGUF_V_FLOAT32 = 6, GGUF_V_BOOL = 7,
  GGUF_V_STRING = 8, GGUF_V_ARRAY = 9, GGUF_V_UINT64 = 10, GGUF_V_INT64 = 11,
  GGUF_V_FLOAT64 = 12
} clkv__gguf_vtype;

typedef struct clkv__gguf_str {
  uint64_t len;
  const char *data; /* points into the mapping; NOT NUL-terminated */
} clkv__gguf_str;

typedef struct clkv__gguf_value clkv__gguf_value;
struct clkv__gguf_value {
  clkv__gguf_vtype type;
  union {
    uint64_t u64;  /* all unsigned ints and bool */
    int64_t i64;   /* all signed ints */
    double f64;    /* float32 and float64 */
    clkv__gguf_str str;
    struct {
      clkv__gguf_vtype type;   /* element type */
      uint64_t n;
      const void *data;  /* for scalar element types: the raw little-endian elements in the mapping */
      clkv__gguf_value *items; /* for STRING and ARRAY elements: n parsed values (malloc'd); else NULL */
    } arr;
  } v;
};

typedef struct clkv__gguf_kv {
  clkv__gguf_str key;
  clkv__gguf_value value;
} clkv__gguf_kv;

typedef struct clkv__gguf_tensor {
  char name[128];      /* NUL-terminated copy; names longer than 127 bytes are an error */
  uint32_t n_dims;     /* 1..4 */
  uint64_t ne[4];      /* elements per dim, ne[0] is the contiguous one; unused dims are 1 */
  uint32_t type;       /* clkv__ggml_type_id */
  uint64_t offset;     /* relative to the data section */
  uint64_t n_elements;
  uint64_t n_bytes;
  const void *data;    /* points into the mapping */
} clkv__gguf_tensor;

typedef struct clkv__gguf_file {
  uint32_t version;
  uint64_t n_kv;
  clkv__gguf_kv *kv;
  uint64_t n_tensors;
  clkv__gguf_tensor *tensors;
  uint64_t alignment;   /* general.alignment or 32 */
  uint64_t data_offset; /* start of the tensor data section in the file */
  const unsigned char *base; /* the whole file */
  uint64_t size;
  int mapped;           /* 1: base is an mmap; 0: malloc'd copy / borrowed buffer */
  int owns;             /* 1: clkv__gguf_close frees/unmaps base */
} clkv__gguf_file;

/* Opens and validates a GGUF file (mmap). Every error says what is wrong and where
 * (byte offset), e.g. "tensor 3 'blk.0.attn_q.weight': data [..) runs past the end of
 * the file (size ..)". Unknown tensor types are an error naming the type id. */
clkv_status clkv__gguf_open(const char *path, clkv__gguf_file **out, clkv_error *err);
/* Same over a memory buffer (not copied; must outlive the clkv__gguf_file). */
clkv_status clkv__gguf_open_memory(const void *data, size_t size, clkv__gguf_file **out, clkv_error *err);
void clkv__gguf_close(clkv__gguf_file *f);

/* Lookups (NULL / -1 when absent). */
const clkv__gguf_kv *clkv__gguf_find(const clkv__gguf_file *f, const char *key);
const clkv__gguf_tensor *clkv__gguf_find_tensor(const clkv__gguf_file *f, const char *name);
/* Typed getters: return 1 and set *out if the key exists with a compatible type
 * (any integer type for int getters, f32/f64 for float, bool or int for bool). */
int clkv__gguf_get_u64(const clkv__gguf_file *f, const char *key, uint64_t *out);
int clkv__gguf_get_i64(const clkv__gguf_file *f, const char *key, int64_t *out);
int clkv__gguf_get_f64(const clkv__gguf_file *f, const char *key, double *out);
int clkv__gguf_get_bool(const clkv__gguf_file *f, const char *key, int *out);
/* Copies a string value into buf (NUL-terminated, truncated to cap-1). Returns 1 if found. */
int clkv__gguf_get_str(const clkv__gguf_file *f, const char *key, char *buf, size_t cap);
/* String value without copy. */
int clkv__gguf_get_strv(const clkv__gguf_file *f, const char *key, clkv__gguf_str *out);
/* Array value; returns NULL if absent or not an array. */
const clkv__gguf_value *clkv__gguf_get_arr(const clkv__gguf_file *f, const char *key);
const char *clkv__gguf_vtype_name(clkv__gguf_vtype t);
/* Bytes of one element of a scalar value type; 0 for STRING/ARRAY; -1 for unknown types. */
int clkv__gguf_scalar_size(uint32_t t);

/* ---- writer (host/format/gguf_writer.c): builds a GGUF v3 file in memory, then saves ---- */
typedef struct clkv__gguf_writer clkv__gguf_writer;
clkv__gguf_writer *clkv__gguf_writer_new(void);
void clkv__gguf_writer_free(clkv__gguf_writer *w);
void clkv__gguf_writer_set_u32(clkv__gguf_writer *w, const char *key, uint32_t v);
void clkv__gguf_writer_set_i32(clkv__gguf_writer *w, const char *key, int32_t v);
void clkv__gguf_writer_set_u64(clkv__gguf_writer *w, const char *key, uint64_t v);
void clkv__gguf_writer_set_f32(clkv__gguf_writer *w, const char *key, float v);
void clkv__gguf_writer_set_bool(clkv__gguf_writer *w, const char *key, int v);
void clkv__gguf_writer_set_str(clkv__gguf_writer *w, const char *key, const char *v);
/* Arrays of strings, int32, float32. Values are copied. */
void clkv__gguf_writer_set_arr_str(clkv__gguf_writer *w, const char *key, const char *const *v, size_t n);
void clkv__gguf_writer_set_arr_i32(clkv__gguf_writer *w, const char *key, const int32_t *v, size_t n);
void clkv__gguf_writer_set_arr_f32(clkv__gguf_writer *w, const char *key, const float *v, size_t n);
/* Tensor data in the given type, already encoded (ne[0] contiguous); data is copied. */
void clkv__gguf_writer_add_tensor(clkv__gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, size_t n_bytes);
/* Any value as clkv__gguf_open read it (copying metadata from one file to another). */
void clkv__gguf_writer_set_value(clkv__gguf_writer *w, const char *key, const clkv__gguf_value *v);
/* A tensor whose n_bytes of data the caller writes itself after clkv__gguf_writer_header's
 * bytes, in order, each tensor padded to 32 bytes (a writer with such tensors can only give
 * its header). */
void clkv__gguf_writer_add_tensor_info(clkv__gguf_writer *w, const char *name, uint32_t type,
                                       uint32_t n_dims, const uint64_t *ne, size_t n_bytes);
/* Header, metadata and tensor infos up to the data section (malloc'd, caller frees). */
void *clkv__gguf_writer_header(clkv__gguf_writer *w, size_t *size);
/* Writes the file (alignment 32). Returns CLKV_OK or an IO error. */
clkv_status clkv__gguf_writer_save(clkv__gguf_writer *w, const char *path, clkv_error *err);
/* The serialized bytes (malloc'd, caller frees). */
void *clkv__gguf_writer_serialize(clkv__gguf_writer *w, size_t *size);

/* ---- quantization helpers (host/format/quant.c): encode/decode rows of a ggml type ---- */
float clkv__fp16_to_fp32(uint16_t h);
uint16_t clkv__fp32_to_fp16(float f);
float clkv__bf16_to_fp32(uint16_t h);
uint16_t clkv__fp32_to_bf16(float f);
/* Decodes n elements (n multiple of the block size) of type from src into dst.
 * Returns CLKV_ERR_UNSUPPORTED for types it cannot decode. */
clkv_status clkv__dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n);
/* Encodes n floats into type (every runnable type) as llama.cpp's reference quantizers do.
 * Returns bytes written, 0 if the type is not supported. */
size_t clkv__quantize_row(uint32_t type, const float *src, void *dst, uint64_t n);

#endif /* CLKV_GGUF_H */

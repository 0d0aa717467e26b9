/* clkv_internal.h — what the library's own files share: error helpers, the one OpenCL
 * call macro, the runtime object, program building and the kernel-argument cursor.
 * Not installed; embedders use include/clkv.h only. */
#ifndef CLKV_INTERNAL_H
#define CLKV_INTERNAL_H

#include "clkv.h"

#include <CL/cl.h>
#include <stdarg.h>
#include <stdio.h>

/* ---- errors (runtime/status.c) ---- */
/* Fills err (may be NULL) with status s and a printf-style message; returns s. */
clkv_status clkv__err(clkv_error *err, clkv_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "CL_OUT_OF_RESOURCES" for -5, "CL_UNKNOWN_ERROR" otherwise (runtime/cl_errors.c). */
const char *clkv__cl_error_name(cl_int code);
/* Maps a CL error to a status: memory errors → CLKV_ERR_DEVICE_MEMORY, else ERR_OPENCL. */
clkv_status clkv__cl_status(cl_int code);

/* Every OpenCL call goes through CLKV_CL_TRY. It needs, in scope: `clkv_error *err` and
 * `clkv_status st`, and a `fail:` label. On failure it records the call text, file:line
 * and the CL error name in err, sets st and jumps to fail. */
#define CLKV_CL_TRY(call)                                                                   \
  do {                                                                                      \
    cl_int clkv__rc = (call);                                                               \
    if (clkv__rc != CL_SUCCESS) {                                                           \
      st = clkv__err(err, clkv__cl_status(clkv__rc), "%s failed with %s (%d) at %s:%d", #call, \
                     clkv__cl_error_name(clkv__rc), (int)clkv__rc, __FILE__, __LINE__);     \
      goto fail;                                                                            \
    }                                                                                       \
  } while (0)

/* For calls that return an object and take `cl_int *errcode_ret` as last argument:
 *   CLKV_CL_CREATE(buf, clCreateBuffer(ctx, flags, size, NULL, &clkv__e)); */
#define CLKV_CL_CREATE(lhs, call)                                                           \
  do {                                                                                      \
    cl_int clkv__e = CL_SUCCESS;                                                            \
    (lhs) = (call);                                                                         \
    if (clkv__e != CL_SUCCESS || !(lhs)) {                                                  \
      if (clkv__e == CL_SUCCESS) clkv__e = CL_INVALID_VALUE;                                \
      st = clkv__err(err, clkv__cl_status(clkv__e), "%s failed with %s (%d) at %s:%d", #call, \
                     clkv__cl_error_name(clkv__e), (int)clkv__e, __FILE__, __LINE__);       \
      goto fail;                                                                            \
    }                                                                                       \
  } while (0)

/* Propagate a clkv_status from a callee (st must be in scope, and fail:). */
#define CLKV_TRY(expr)                                                                      \
  do {                                                                                      \
    st = (expr);                                                                            \
    if (st != CLKV_OK) goto fail;                                                           \
  } while (0)

/* ---- runtime (runtime/runtime.c, runtime/device.c) ---- */
#define CLKV__MAX_PROGRAMS 64

typedef struct clkv__program_entry {
  char key[512];   /* file name + options */
  cl_program program;
} clkv__program_entry;

struct clkv_runtime {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  clkv_device_info info;
  char cache_dir[1024];     /* where binaries (and tuning results) live */
  char kernel_dir[1024];    /* "" → embedded sources */
  int use_binary_cache;
  int profiling;            /* events on the queue time launches; 0 also where the timer check
                               (runtime/timer_check.h) found them wrong */
  char timer_note[200];     /* that check's verdict in words; "" when profiling was not asked */
  unsigned builds_compiled; /* programs compiled from source */
  unsigned builds_cached;   /* programs loaded from the on-disk binary cache */
  unsigned long long launches; /* kernel launches through clkv__launch */
  clkv__program_entry programs[CLKV__MAX_PROGRAMS];
  int n_programs;
  clkv_error err;
};

/* Discovery helpers (runtime/device.c). Fills info from a cl_device_id (classification
 * included). */
clkv_status clkv__device_query(cl_platform_id plat, cl_device_id dev, clkv_device_info *info,
                               clkv_error *err);
/* Picks a device index from a list: sel NULL/"" → best GPU else CPU; a number → that index;
 * otherwise a case-insensitive substring of name, vendor, platform or "gpu"/"cpu". */
/* The platform and device handles of the device with this global index. */
clkv_status clkv__device_ids(size_t index, cl_platform_id *plat, cl_device_id *dev,
                             clkv_error *err);
clkv_status clkv__device_select(const clkv_device_info *devs, size_t n, const char *sel,
                                size_t *index, clkv_error *err);

/* ---- programs (runtime/program.c) ---- */
/* Returns the program built from kernels/<file> (kernels/contract.h and common.cl are
 * prepended to every program) with the given options plus the runtime's standard ones. Programs are kept in
 * the runtime (do not release), and on disk in the binary cache. On a build failure the
 * message holds the build log. */
clkv_status clkv__program_get(clkv_runtime *rt, const char *file, const char *options,
                              cl_program *out, clkv_error *err);
/* The source text of kernels/<file>: from rt->kernel_dir if set, else embedded. Returned
 * string is malloc'd (caller frees). */
char *clkv__kernel_source(const clkv_runtime *rt, const char *file, clkv_error *err);
/* Creates a kernel from a program (caller releases with clReleaseKernel). */
clkv_status clkv__kernel_create(clkv_runtime *rt, const char *file, const char *options,
                                const char *name, cl_kernel *out, clkv_error *err);

/* ---- kernel-argument cursor: set args in order, check the final count ---- */
typedef struct clkv__args {
  cl_kernel kernel;
  cl_uint next;
  cl_int rc;        /* first failure */
  cl_uint failed_at;
} clkv__args;

static inline clkv__args clkv__args_begin(cl_kernel k) {
  clkv__args a = {k, 0, CL_SUCCESS, 0};
  return a;
}
static inline void clkv__args_set(clkv__args *a, size_t size, const void *v) {
  cl_int rc = clSetKernelArg(a->kernel, a->next, size, v);
  if (rc != CL_SUCCESS && a->rc == CL_SUCCESS) {
    a->rc = rc;
    a->failed_at = a->next;
  }
  a->next++;
}
static inline void clkv__args_mem(clkv__args *a, cl_mem m) { clkv__args_set(a, sizeof m, &m); }
static inline void clkv__args_u32(clkv__args *a, cl_uint v) { clkv__args_set(a, sizeof v, &v); }
static inline void clkv__args_i32(clkv__args *a, cl_int v) { clkv__args_set(a, sizeof v, &v); }
static inline void clkv__args_f32(clkv__args *a, cl_float v) { clkv__args_set(a, sizeof v, &v); }
static inline void clkv__args_local(clkv__args *a, size_t bytes) { clkv__args_set(a, bytes, NULL); }
/* Checks that every argument was set and that the count matches CL_KERNEL_NUM_ARGS. */
clkv_status clkv__args_end(clkv__args *a, clkv_error *err);

/* Enqueues an ND-range (1–3 dims, local may be NULL) on rt->queue and counts the launch. */
clkv_status clkv__launch(clkv_runtime *rt, cl_kernel k, cl_uint dims, const size_t *global,
                         const size_t *local, clkv_error *err);

/* A device buffer of bytes (at least 4) for the named use. Does nothing when *st is already
 * an error (so a run of allocations can be checked once); on failure sets *st and err with a
 * message naming the use and the remedy (a smaller context, fewer sequences). */
cl_mem clkv__buffer_new(clkv_runtime *rt, size_t bytes, cl_mem_flags flags, const char *what,
                        clkv_error *err, clkv_status *st);

/* ---- small utilities (runtime/util.c) ---- */
/* SHA-256 (runtime/sha256.c). */
typedef struct clkv__sha256 {
  uint32_t h[8];
  uint64_t len;
  unsigned char buf[64];
  size_t fill;
} clkv__sha256;
void clkv__sha256_init(clkv__sha256 *s);
void clkv__sha256_update(clkv__sha256 *s, const void *data, size_t n);
void clkv__sha256_final(clkv__sha256 *s, unsigned char out[32]);
void clkv__sha256_hex(const unsigned char d[32], char out[65]);

/* Monotonic time in milliseconds. */
double clkv__now_ms(void);
/* mkdir -p; returns 0 on success. */
int clkv__mkdirs(const char *path);

#endif /* CLKV_INTERNAL_H */

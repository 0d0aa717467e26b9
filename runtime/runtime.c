/* runtime.c — the runtime object: one device with its context, in-order queue and built
 * programs; where the binary cache lives; clearing that cache. */
#include "clkv_internal.h"
#include "timer_check.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defined in device.c (not declared in clkv_internal.h, which this module may not change). */

clkv_runtime_params clkv_runtime_default_params(void) {
  clkv_runtime_params p;
  memset(&p, 0, sizeof p);
  p.use_binary_cache = 1;
  return p;
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Cache dir: given → $CLKV_CACHE_DIR → $XDG_CACHE_HOME/clkv → $HOME/.cache/clkv; "" if none. */
static void default_cache_dir(const char *given, char *out, size_t cap) {
  const char *v;
  out[0] = '\0';
  if (given && *given) snprintf(out, cap, "%s", given);
  else if ((v = env_nonempty("CLKV_CACHE_DIR"))) snprintf(out, cap, "%s", v);
  else if ((v = env_nonempty("XDG_CACHE_HOME"))) snprintf(out, cap, "%s/clkv", v);
  else if ((v = env_nonempty("HOME"))) snprintf(out, cap, "%s/.cache/clkv", v);
}

clkv_status clkv_runtime_create(const clkv_runtime_params *p, clkv_runtime **out, clkv_error *err) {
  clkv_runtime_params dp = clkv_runtime_default_params();
  clkv_device_info *devs = NULL;
  size_t n = 0, idx = 0;
  clkv_runtime *rt = NULL;
  clkv_status st;
  const char *sel, *kdir;
  if (!out) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv_runtime_create: out is required");
  *out = NULL;
  if (!p) p = &dp;
  rt = calloc(1, sizeof *rt);
  if (!rt) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory creating the runtime");
  rt->use_binary_cache = p->use_binary_cache;
  rt->profiling = p->profiling;
  default_cache_dir(p->cache_dir, rt->cache_dir, sizeof rt->cache_dir);
  kdir = p->kernel_dir && *p->kernel_dir ? p->kernel_dir : env_nonempty("CLKV_KERNEL_DIR");
  snprintf(rt->kernel_dir, sizeof rt->kernel_dir, "%s", kdir ? kdir : "");
  sel = p->device && *p->device ? p->device : env_nonempty("CLKV_DEVICE");

  CLKV_TRY(clkv_devices_list(&devs, &n, err));
  CLKV_TRY(clkv__device_select(devs, n, sel, &idx, err));
  rt->info = devs[idx];
  CLKV_TRY(clkv__device_ids(idx, &rt->platform, &rt->device, err));

  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0};
  CLKV_CL_CREATE(rt->context, clCreateContext(props, 1, &rt->device, NULL, NULL, &clkv__e));
  /* clCreateCommandQueue (1.2 API) so that OpenCL 1.2 drivers work too. */
  CLKV_CL_CREATE(rt->queue, clCreateCommandQueue(rt->context, rt->device,
                                                 p->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &clkv__e));
  if (p->profiling) { /* events are trusted only once they agree with the wall clock */
    clkv__timer_verdict tv;
    clkv_error ignored;
    rt->profiling = clkv__timer_check(rt, &tv, &ignored) == CLKV_OK && tv.trusted;
    snprintf(rt->timer_note, sizeof rt->timer_note, "%s", tv.note);
  }
  free(devs);
  *out = rt;
  return CLKV_OK;
fail:
  free(devs);
  clkv_runtime_free(rt);
  return st;
}

void clkv_runtime_free(clkv_runtime *rt) {
  if (!rt) return;
  for (int i = 0; i < rt->n_programs; i++)
    if (rt->programs[i].program) clReleaseProgram(rt->programs[i].program);
  if (rt->queue) {
    clFinish(rt->queue);
    clReleaseCommandQueue(rt->queue);
  }
  if (rt->context) clReleaseContext(rt->context);
  free(rt);
}

const clkv_device_info *clkv_runtime_device(const clkv_runtime *rt) { return rt ? &rt->info : NULL; }

const char *clkv_runtime_cache_dir(const clkv_runtime *rt) { return rt ? rt->cache_dir : NULL; }

void clkv_runtime_build_counts(const clkv_runtime *rt, unsigned *compiled, unsigned *from_cache) {
  if (compiled) *compiled = rt ? rt->builds_compiled : 0;
  if (from_cache) *from_cache = rt ? rt->builds_cached : 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* Removes the files of <cache dir>/sub whose names end with `suffix`, and the temp files beside
 * them (names containing `suffix` + ".tmp"); counts the former. */
static clkv_status clear_files(const char *dir, const char *sub, const char *suffix, const char *what,
                               unsigned *removed, clkv_error *err) {
  char base[1024], path[1100], file[1400], tmp[32];
  unsigned count = 0, failed = 0;
  DIR *d;
  struct dirent *e;
  if (removed) *removed = 0;
  default_cache_dir(dir, base, sizeof base);
  if (!base[0])
    return clkv__err(err, CLKV_ERR_INVALID_ARG, "no cache directory: pass one, or set "
                     "CLKV_CACHE_DIR or HOME");
  snprintf(path, sizeof path, "%s/%s", base, sub);
  snprintf(tmp, sizeof tmp, "%s.tmp", suffix);
  d = opendir(path);
  if (!d && errno == ENOENT) return CLKV_OK; /* nothing cached yet */
  if (!d)
    return clkv__err(err, CLKV_ERR_IO, "cannot read %s: %s; check the directory's permissions",
                     path, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    int done = ends_with(e->d_name, suffix), partial = strstr(e->d_name, tmp) != NULL;
    if (!done && !partial) continue;
    snprintf(file, sizeof file, "%s/%s", path, e->d_name);
    if (unlink(file) != 0) failed++;
    else if (done) count++;
  }
  closedir(d);
  if (removed) *removed = count;
  if (failed)
    return clkv__err(err, CLKV_ERR_IO, "could not remove %u %s in %s: check the directory's "
                     "permissions", failed, what, path);
  return CLKV_OK;
}

clkv_status clkv_cache_clear(const char *dir, unsigned *removed, clkv_error *err) {
  return clear_files(dir, "programs", ".bin", "cached program files", removed, err);
}

clkv_status clkv_cache_clear_tuning(const char *dir, unsigned *removed, clkv_error *err) {
  return clear_files(dir, "tuning", ".txt", "tuning files", removed, err);
}

cl_mem clkv__buffer_new(clkv_runtime *rt, size_t bytes, cl_mem_flags flags, const char *what,
                        clkv_error *err, clkv_status *st) {
  cl_int e = CL_SUCCESS;
  if (*st) return NULL;
  if ((uint64_t)bytes > rt->info.max_alloc_bytes) {
    *st = clkv__err(err, CLKV_ERR_DEVICE_MEMORY,
                    "the %s needs %zu bytes in one buffer, more than the device allows (%llu); "
                    "use a smaller context (--ctx) or fewer sequences", what, bytes,
                    (unsigned long long)rt->info.max_alloc_bytes);
    return NULL;
  }
  cl_mem b = clCreateBuffer(rt->context, flags, bytes ? bytes : 4, NULL, &e);
  if (e != CL_SUCCESS || !b) {
    *st = clkv__err(err, clkv__cl_status(e),
                    "allocating the %s (%zu bytes) failed with %s; use a smaller context (--ctx) "
                    "or fewer sequences", what, bytes, clkv__cl_error_name(e));
    return NULL;
  }
  return b;
}

/* test_runtime.c — device discovery and selection, runtime creation, building and running
 * the selftest kernel, the on-disk program cache (hit, corruption, options, clearing),
 * build errors with the compiler log, the argument cursor and launch checks, SHA-256. */
#include "clkv_internal.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */
static void make_tmpdir(char *out, size_t cap) {
  snprintf(out, cap, "/tmp/clkv_rt_XXXXXX");
  cr_assert(mkdtemp(out), "mkdtemp failed");
}

/* Number of *.bin files in <dir>/programs, and the path of the last one seen. */
static int count_bins(const char *dir, char *last, size_t cap) {
  char p[1100];
  int n = 0;
  snprintf(p, sizeof p, "%s/programs", dir);
  DIR *d = opendir(p);
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name);
    if (l > 4 && !strcmp(e->d_name + l - 4, ".bin")) {
      n++;
      if (last) snprintf(last, cap, "%s/%s", p, e->d_name);
    }
  }
  closedir(d);
  return n;
}

static void remove_cache(const char *dir) {
  char p[1100];
  clkv_cache_clear(dir, NULL, NULL);
  snprintf(p, sizeof p, "%s/programs", dir);
  rmdir(p);
  rmdir(dir);
}

static clkv_runtime *runtime_in(const char *cache_dir) {
  clkv_runtime_params p = clkv_runtime_default_params();
  clkv_runtime *rt = NULL;
  clkv_error err;
  p.cache_dir = cache_dir;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  return rt;
}

static void build_counts(const clkv_runtime *rt, unsigned want_compiled, unsigned want_cached) {
  unsigned c = 99, k = 99;
  clkv_runtime_build_counts(rt, &c, &k);
  cr_assert_eq(c, want_compiled, "compiled %u, expected %u", c, want_compiled);
  cr_assert_eq(k, want_cached, "from cache %u, expected %u", k, want_cached);
}

/* Fixture: a runtime whose binary cache is a fresh temp dir, removed afterwards. */
static char fx_dir[64];
static clkv_runtime *fx_rt;
static void fx_setup(void) {
  make_tmpdir(fx_dir, sizeof fx_dir);
  fx_rt = runtime_in(fx_dir);
}
static void fx_teardown(void) {
  clkv_runtime_free(fx_rt);
  remove_cache(fx_dir);
}

static cl_kernel selftest_kernel(clkv_runtime *rt) {
  cl_kernel k = NULL;
  clkv_error err;
  cr_assert_eq(clkv__kernel_create(rt, "selftest.cl", "", "clkv_selftest_axpy", &k, &err), CLKV_OK, "%s",
               err.message);
  return k;
}

/* Runs y += a*x through clkv_selftest_axpy (program options `opts`) and checks against C. */
static void check_axpy(clkv_runtime *rt, const char *opts) {
  enum { N = 1000 };
  float x[N], y[N], want[N], got[N];
  const float a = 0.75f;
  clkv_error err;
  cl_kernel k;
  cl_int e;
  for (int i = 0; i < N; i++) {
    x[i] = (float)i * 0.5f - 100.0f;
    y[i] = (float)(i % 7) - 3.0f;
    want[i] = y[i] + a * x[i];
  }
  cr_assert_eq(clkv__kernel_create(rt, "selftest.cl", opts, "clkv_selftest_axpy", &k, &err), CLKV_OK,
               "%s", err.message);
  cl_mem bx = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof x, x, &e);
  cr_assert_eq(e, CL_SUCCESS);
  cl_mem by = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof y, y, &e);
  cr_assert_eq(e, CL_SUCCESS);
  clkv__args args = clkv__args_begin(k);
  clkv__args_mem(&args, bx);
  clkv__args_mem(&args, by);
  clkv__args_f32(&args, a);
  clkv__args_u32(&args, N);
  cr_assert_eq(clkv__args_end(&args, &err), CLKV_OK, "%s", err.message);
  unsigned long long before = rt->launches;
  size_t global = 1024, local = 64; /* rounded up: the kernel checks i < n */
  cr_assert_eq(clkv__launch(rt, k, 1, &global, &local, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(rt->launches, before + 1);
  cr_assert_eq(clEnqueueReadBuffer(rt->queue, by, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL), CL_SUCCESS);
  for (int i = 0; i < N; i++)
    cr_assert(fabsf(got[i] - want[i]) <= 1e-5f * (1.0f + fabsf(want[i])), "y[%d] = %g, want %g", i,
              (double)got[i], (double)want[i]);
  clReleaseMemObject(bx);
  clReleaseMemObject(by);
  clReleaseKernel(k);
}

/* ---- discovery and selection ---- */
Test(runtime, devices_list_finds_sane_devices) {
  clkv_device_info *d = NULL;
  size_t n = 0;
  clkv_error err;
  cr_assert_eq(clkv_devices_list(&d, &n, &err), CLKV_OK, "%s", err.message);
  cr_assert_geq(n, 1);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(d[i].index, (int)i);
    cr_assert(d[i].name[0] && d[i].platform_name[0] && d[i].arch[0] && d[i].cl_version[0]);
    cr_assert_geq(d[i].compute_units, 1);
    cr_assert_geq(d[i].max_workgroup_size, 1);
    cr_assert_gt(d[i].global_mem_bytes, 0);
    cr_assert_gt(d[i].max_alloc_bytes, 0);
    cr_assert_leq(d[i].max_alloc_bytes, d[i].global_mem_bytes);
    cr_assert_str_neq(clkv_vendor_name(d[i].vendor), "");
    cr_assert_str_neq(clkv_device_type_name(d[i].type), "");
    if (strstr(d[i].platform_name, "Portable Computing Language") && d[i].type == CLKV_DEVICE_CPU) {
      cr_assert_eq(d[i].vendor, CLKV_VENDOR_POCL, "PoCL CPU classified as %s", clkv_vendor_name(d[i].vendor));
      cr_assert_str_eq(d[i].arch, "pocl-cpu");
      cr_assert_str_eq(clkv_device_type_name(d[i].type), "CPU");
      cr_assert(d[i].local_mem_is_global, "PoCL's CPU local memory is global memory");
    }
  }
  free(d);
}

static clkv_device_info fake(int i, clkv_device_type t, clkv_vendor v, const char *name, unsigned cu) {
  clkv_device_info d;
  memset(&d, 0, sizeof d);
  d.index = i, d.type = t, d.vendor = v, d.compute_units = cu, d.clock_mhz = 1000;
  snprintf(d.name, sizeof d.name, "%s", name);
  snprintf(d.vendor_name, sizeof d.vendor_name, "%s", v == CLKV_VENDOR_AMD ? "Advanced Micro Devices" : "pocl");
  snprintf(d.platform_name, sizeof d.platform_name, "%s", t == CLKV_DEVICE_CPU ? "Portable Computing Language" : "AMD APP");
  return d;
}

Test(runtime, select_by_default_index_name_and_type) {
  clkv_device_info d[3] = {fake(0, CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pthread-haswell", 8),
                           fake(1, CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "gfx1030 small", 10),
                           fake(2, CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "Radeon big", 60)};
  size_t idx = 99;
  clkv_error err;
  cr_assert_eq(clkv__device_select(d, 3, NULL, &idx, &err), CLKV_OK);
  cr_assert_eq(idx, 2, "default picks the biggest GPU");
  cr_assert_eq(clkv__device_select(d, 3, "", &idx, &err), CLKV_OK);
  cr_assert_eq(idx, 2);
  cr_assert_eq(clkv__device_select(d, 3, "cpu", &idx, &err), CLKV_OK);
  cr_assert_eq(idx, 0);
  cr_assert_eq(clkv__device_select(d, 3, "gpu", &idx, &err), CLKV_OK);
  cr_assert_eq(idx, 2);
  cr_assert_eq(clkv__device_select(d, 3, "1", &idx, &err), CLKV_OK);
  cr_assert_eq(idx, 1);
  cr_assert_eq(clkv__device_select(d, 3, "GFX1030", &idx, &err), CLKV_OK, "case-insensitive name");
  cr_assert_eq(idx, 1);
  cr_assert_eq(clkv__device_select(d, 3, "portable", &idx, &err), CLKV_OK, "platform name");
  cr_assert_eq(idx, 0);
  /* only CPUs: the default falls back to the CPU */
  cr_assert_eq(clkv__device_select(d, 1, NULL, &idx, &err), CLKV_OK);
  cr_assert_eq(idx, 0);
}

Test(runtime, select_unknown_lists_devices) {
  clkv_device_info d[2] = {fake(0, CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pthread-haswell", 8),
                           fake(1, CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "Radeon big", 60)};
  size_t idx = 99;
  clkv_error err;
  cr_assert_eq(clkv__device_select(d, 2, "no-such-device", &idx, &err), CLKV_ERR_NO_DEVICE);
  cr_assert_eq(err.status, CLKV_ERR_NO_DEVICE);
  cr_assert(strstr(err.message, "no-such-device"), "%s", err.message);
  cr_assert(strstr(err.message, "pthread-haswell") && strstr(err.message, "Radeon big"), "%s", err.message);
  cr_assert_eq(clkv__device_select(d, 2, "7", &idx, &err), CLKV_ERR_NO_DEVICE, "index out of range");
  cr_assert(strstr(err.message, "0: pthread-haswell"), "%s", err.message);
  cr_assert_eq(clkv__device_select(d, 1, "gpu", &idx, &err), CLKV_ERR_NO_DEVICE, "no GPU present");
  cr_assert_eq(clkv__device_select(NULL, 0, NULL, &idx, &err), CLKV_ERR_NO_DEVICE);
}

Test(runtime, select_real_devices) {
  clkv_device_info *d = NULL;
  size_t n = 0, idx = 99;
  clkv_error err;
  cr_assert_eq(clkv_devices_list(&d, &n, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__device_select(d, n, "0", &idx, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(idx, 0);
  char part[8];
  snprintf(part, sizeof part, "%.5s", d[n - 1].name);
  cr_assert_eq(clkv__device_select(d, n, part, &idx, &err), CLKV_OK, "%s", err.message);
  cr_assert(strstr(d[idx].name, part));
  int has_cpu = 0;
  for (size_t i = 0; i < n; i++) has_cpu |= d[i].type == CLKV_DEVICE_CPU;
  if (has_cpu) {
    cr_assert_eq(clkv__device_select(d, n, "cpu", &idx, &err), CLKV_OK, "%s", err.message);
    cr_assert_eq(d[idx].type, CLKV_DEVICE_CPU);
  }
  cr_assert_eq(clkv__device_select(d, n, "zz-not-a-device-zz", &idx, &err), CLKV_ERR_NO_DEVICE);
  cr_assert(strstr(err.message, d[0].name), "%s", err.message);
  free(d);
}

Test(runtime, create_rejects_unknown_device) {
  clkv_runtime_params p = clkv_runtime_default_params();
  clkv_runtime *rt = (clkv_runtime *)&p; /* must be reset to NULL */
  clkv_error err;
  p.device = "zz-not-a-device-zz";
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_ERR_NO_DEVICE);
  cr_assert_null(rt);
  cr_assert(strstr(err.message, "Available devices"), "%s", err.message);
  clkv_runtime_free(NULL);
}

/* ---- runtime and the selftest kernel ---- */
Test(runtime, selftest_axpy_matches_c, .init = fx_setup, .fini = fx_teardown) {
  clkv_runtime *rt = fx_rt;
  cr_assert_str_eq(clkv_runtime_cache_dir(rt), fx_dir);
  cr_assert_geq(clkv_runtime_device(rt)->compute_units, 1);
  check_axpy(rt, "");
  check_axpy(rt, ""); /* second time: the program comes from memory */
  build_counts(rt, 1, 0);
}

Test(runtime, params_and_environment) {
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  cr_assert_eq(setenv("CLKV_CACHE_DIR", dir, 1), 0);
  clkv_runtime_params p = clkv_runtime_default_params();
  cr_assert_eq(p.use_binary_cache, 1);
  cr_assert_null(p.device);
  clkv_runtime *rt = NULL;
  clkv_error err;
  p.profiling = 1;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  cr_assert_str_eq(clkv_runtime_cache_dir(rt), dir);
  cl_command_queue_properties qp = 0;
  cr_assert_eq(clGetCommandQueueInfo(rt->queue, CL_QUEUE_PROPERTIES, sizeof qp, &qp, NULL), CL_SUCCESS);
  cr_assert(qp & CL_QUEUE_PROFILING_ENABLE);
  clkv_runtime_free(rt);
  unsetenv("CLKV_CACHE_DIR");
  cr_assert_eq(setenv("XDG_CACHE_HOME", dir, 1), 0);
  rt = runtime_in(NULL);
  char want[128];
  snprintf(want, sizeof want, "%s/clkv", dir);
  cr_assert_str_eq(clkv_runtime_cache_dir(rt), want);
  clkv_runtime_free(rt);
  rmdir(dir);
}

/* ---- the on-disk program cache ---- */
Test(runtime, second_runtime_loads_program_from_disk) {
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  cl_program prog;
  clkv_error err;
  clkv_runtime *rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_OK, "%s", err.message);
  build_counts(rt, 1, 0);
  cr_assert_eq(count_bins(dir, NULL, 0), 1, "one binary written");
  clkv_runtime_free(rt);

  rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_OK, "%s", err.message);
  build_counts(rt, 0, 1);
  check_axpy(rt, ""); /* the cached binary runs correctly */
  build_counts(rt, 0, 1);
  clkv_runtime_free(rt);
  remove_cache(dir);
}

Test(runtime, corrupted_cache_falls_back_to_compiling) {
  char dir[64], bin[1200];
  make_tmpdir(dir, sizeof dir);
  cl_program prog;
  clkv_error err;
  clkv_runtime *rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_OK, "%s", err.message);
  clkv_runtime_free(rt);
  cr_assert_eq(count_bins(dir, bin, sizeof bin), 1);

  /* 1: a flipped byte in the middle of the payload */
  FILE *f = fopen(bin, "r+b");
  cr_assert(f);
  cr_assert_eq(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  cr_assert_gt(size, 100);
  cr_assert_eq(fseek(f, size / 2, SEEK_SET), 0);
  int c = fgetc(f);
  cr_assert_eq(fseek(f, size / 2, SEEK_SET), 0);
  fputc(c ^ 0xFF, f);
  fclose(f);
  rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_OK, "%s", err.message);
  build_counts(rt, 1, 0);
  check_axpy(rt, "");
  clkv_runtime_free(rt);

  /* 2: garbage of another size (the compile above rewrote a good file first) */
  rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_OK, "%s", err.message);
  build_counts(rt, 0, 1);
  clkv_runtime_free(rt);
  f = fopen(bin, "wb");
  cr_assert(f);
  fputs("not a program binary", f);
  fclose(f);
  rt = runtime_in(dir);
  check_axpy(rt, "");
  build_counts(rt, 1, 0);
  clkv_runtime_free(rt);
  remove_cache(dir);
}

Test(runtime, options_give_separate_entries_and_clear_removes_them) {
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  cl_program p1, p2, p3;
  clkv_error err;
  clkv_runtime *rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &p1, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "-DCLKV_TEST_OPTION=1", &p2, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", NULL, &p3, &err), CLKV_OK, "%s", err.message);
  cr_assert_neq(p1, p2);
  cr_assert_eq(p1, p3, "NULL options are the same as \"\"");
  build_counts(rt, 2, 0);
  cr_assert_eq(count_bins(dir, NULL, 0), 2);
  clkv_runtime_free(rt);

  unsigned removed = 99;
  cr_assert_eq(clkv_cache_clear(dir, &removed, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(removed, 2);
  cr_assert_eq(count_bins(dir, NULL, 0), 0);
  cr_assert_eq(clkv_cache_clear(dir, &removed, &err), CLKV_OK);
  cr_assert_eq(removed, 0);
  rt = runtime_in(dir);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &p1, &err), CLKV_OK, "%s", err.message);
  build_counts(rt, 1, 0);
  clkv_runtime_free(rt);
  remove_cache(dir);
  cr_assert_eq(clkv_cache_clear("/tmp/clkv_no_such_dir_here", NULL, &err), CLKV_OK, "nothing cached yet");
}

/* Tuning files (and a temp file of an interrupted write) go with clkv_cache_clear_tuning;
 * clkv_cache_clear leaves them, and neither touches the other's files. */
Test(runtime, cache_clear_tuning_removes_tuning_files) {
  char dir[64], sub[200], path[300];
  make_tmpdir(dir, sizeof dir);
  snprintf(sub, sizeof sub, "%s/tuning", dir);
  cr_assert_eq(clkv__mkdirs(sub), 0);
  const char *names[] = {"aa.txt", "bb.txt", "bb.txt.tmp.123", "keep.me"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", sub, names[i]);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("decode.rg=4\n", f);
    fclose(f);
  }
  clkv_runtime *rt = runtime_in(dir);
  cl_program p;
  clkv_error err;
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &p, &err), CLKV_OK, "%s", err.message);
  clkv_runtime_free(rt);
  unsigned removed = 99;
  cr_assert_eq(clkv_cache_clear(dir, &removed, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(removed, 1, "the program binary only");
  snprintf(path, sizeof path, "%s/aa.txt", sub);
  cr_assert_eq(access(path, F_OK), 0, "clkv_cache_clear keeps tuning files");
  cr_assert_eq(clkv_cache_clear_tuning(dir, &removed, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(removed, 2, "two tuning files (the temp file is removed, not counted)");
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", sub, names[i]);
    cr_assert_neq(access(path, F_OK), 0, "%s is left", names[i]);
  }
  snprintf(path, sizeof path, "%s/keep.me", sub);
  cr_assert_eq(access(path, F_OK), 0, "other files stay");
  remove(path);
  rmdir(sub);
  cr_assert_eq(clkv_cache_clear_tuning(dir, &removed, &err), CLKV_OK, "no tuning dir: nothing to do");
  cr_assert_eq(removed, 0);
  remove_cache(dir);
}

Test(runtime, disabled_binary_cache_writes_nothing) {
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  clkv_runtime_params p = clkv_runtime_default_params();
  clkv_runtime *rt;
  clkv_error err;
  cl_program prog;
  p.cache_dir = dir;
  p.use_binary_cache = 0;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_OK, "%s", err.message);
  build_counts(rt, 1, 0);
  cr_assert_eq(count_bins(dir, NULL, 0), 0);
  clkv_runtime_free(rt);
  remove_cache(dir);
}

/* ---- sources and build errors ---- */
Test(runtime, build_error_carries_compiler_log) {
  char kdir[64], cdir[64], path[128];
  make_tmpdir(kdir, sizeof kdir);
  make_tmpdir(cdir, sizeof cdir);
  snprintf(path, sizeof path, "%s/broken.cl", kdir);
  FILE *f = fopen(path, "w");
  cr_assert(f);
  fputs("__kernel void broken(__global float *y) {\n  y[0] = undeclared_thing + ;\n}\n", f);
  fclose(f);
  cr_assert_eq(setenv("CLKV_KERNEL_DIR", kdir, 1), 0);
  clkv_runtime *rt = runtime_in(cdir);
  cl_program prog = (cl_program)1;
  cl_kernel k = (cl_kernel)1;
  clkv_error err;
  cr_assert_eq(clkv__program_get(rt, "broken.cl", "", &prog, &err), CLKV_ERR_BUILD);
  cr_assert_null(prog);
  cr_assert_eq(err.status, CLKV_ERR_BUILD);
  cr_assert(strstr(err.message, "broken.cl"), "%s", err.message);
  cr_assert(strstr(err.message, "build log"), "%s", err.message);
  cr_assert(strstr(err.message, "undeclared_thing"), "the compiler's log names the error: %s", err.message);
  cr_assert_eq(clkv__kernel_create(rt, "broken.cl", "", "broken", &k, &err), CLKV_ERR_BUILD);
  cr_assert_null(k);
  /* a file missing from the kernel dir */
  cr_assert_eq(clkv__program_get(rt, "selftest.cl", "", &prog, &err), CLKV_ERR_IO);
  cr_assert(strstr(err.message, "CLKV_KERNEL_DIR"), "%s", err.message);
  cr_assert_eq(count_bins(cdir, NULL, 0), 0);
  clkv_runtime_free(rt);
  unlink(path);
  rmdir(kdir);
  remove_cache(cdir);
}

Test(runtime, kernel_sources_embedded_and_checked) {
  clkv_error err;
  char *s = clkv__kernel_source(NULL, "selftest.cl", &err);
  cr_assert(s, "%s", err.message);
  cr_assert(strstr(s, "clkv_selftest_axpy"));
  free(s);
  cr_assert_null(clkv__kernel_source(NULL, "no_such_kernel.cl", &err));
  cr_assert_eq(err.status, CLKV_ERR_NOT_FOUND);
  cr_assert_null(clkv__kernel_source(NULL, "../etc/passwd", &err));
  cr_assert_eq(err.status, CLKV_ERR_INVALID_ARG);
}

Test(runtime, unknown_kernel_name_is_not_found, .init = fx_setup, .fini = fx_teardown) {
  clkv_runtime *rt = fx_rt;
  cl_kernel k;
  clkv_error err;
  cr_assert_eq(clkv__kernel_create(rt, "selftest.cl", "", "no_such_kernel", &k, &err), CLKV_ERR_NOT_FOUND);
  cr_assert(strstr(err.message, "no_such_kernel") && strstr(err.message, "CL_INVALID_KERNEL_NAME"), "%s",
            err.message);
}

/* ---- the argument cursor and launch checks ---- */
Test(runtime, args_end_catches_wrong_count, .init = fx_setup, .fini = fx_teardown) {
  clkv_runtime *rt = fx_rt;
  cl_kernel k;
  clkv_error err;
  cl_int e;
  k = selftest_kernel(rt);
  cl_mem b = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, 64, NULL, &e);
  cr_assert_eq(e, CL_SUCCESS);

  clkv__args a = clkv__args_begin(k); /* too few */
  clkv__args_mem(&a, b);
  clkv__args_mem(&a, b);
  clkv__args_f32(&a, 1.0f);
  cr_assert_eq(clkv__args_end(&a, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "clkv_selftest_axpy") && strstr(err.message, "takes 4 arguments but 3"),
            "%s", err.message);

  a = clkv__args_begin(k); /* too many */
  clkv__args_mem(&a, b);
  clkv__args_mem(&a, b);
  clkv__args_f32(&a, 1.0f);
  clkv__args_u32(&a, 16);
  clkv__args_u32(&a, 16);
  cr_assert_neq(clkv__args_end(&a, &err), CLKV_OK);
  cr_assert(strstr(err.message, "clkv_selftest_axpy"), "%s", err.message);

  a = clkv__args_begin(k); /* right count, wrong size for argument 2 */
  clkv__args_mem(&a, b);
  clkv__args_mem(&a, b);
  clkv__args_set(&a, 2, &e);
  clkv__args_u32(&a, 16);
  cr_assert_neq(clkv__args_end(&a, &err), CLKV_OK);
  cr_assert(strstr(err.message, "argument 2") && strstr(err.message, "clkv_selftest_axpy"), "%s", err.message);
  clReleaseMemObject(b);
  clReleaseKernel(k);
}

Test(runtime, launch_rejects_bad_sizes, .init = fx_setup, .fini = fx_teardown) {
  clkv_runtime *rt = fx_rt;
  cl_kernel k;
  clkv_error err;
  k = selftest_kernel(rt);
  size_t g = 10, l = 4;
  cr_assert_eq(clkv__launch(rt, k, 1, &g, &l, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "clkv_selftest_axpy") && strstr(err.message, "multiple"), "%s", err.message);
  size_t g2[2] = {8192, 8192}, l2[2] = {4096, 4096};
  cr_assert_eq(clkv__launch(rt, k, 2, g2, l2, &err), CLKV_ERR_INVALID_ARG, "work-group too large");
  cr_assert(strstr(err.message, "maximum"), "%s", err.message);
  g = 0;
  cr_assert_eq(clkv__launch(rt, k, 1, &g, NULL, &err), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(clkv__launch(rt, k, 4, g2, NULL, &err), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(rt->launches, 0, "nothing was launched");
  clReleaseKernel(k);
}

/* ---- utilities ---- */
static void sha_hex(const void *data, size_t n, char out[65]) {
  clkv__sha256 s;
  unsigned char d[32];
  clkv__sha256_init(&s);
  clkv__sha256_update(&s, data, n);
  clkv__sha256_final(&s, d);
  clkv__sha256_hex(d, out);
}

Test(runtime, sha256_standard_vectors) {
  char h[65];
  sha_hex("abc", 3, h);
  cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sha_hex("", 0, h);
  cr_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 448 bits */
  sha_hex(m, strlen(m), h);
  cr_assert_str_eq(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* one million 'a', fed in uneven pieces */
  static char a[1000000];
  memset(a, 'a', sizeof a);
  clkv__sha256 s;
  unsigned char d[32];
  clkv__sha256_init(&s);
  for (size_t off = 0, step = 1; off < sizeof a; off += step, step = step * 3 % 1001 + 1)
    clkv__sha256_update(&s, a + off, off + step > sizeof a ? sizeof a - off : step);
  clkv__sha256_final(&s, d);
  clkv__sha256_hex(d, h);
  cr_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

Test(runtime, mkdirs_and_clock) {
  char dir[64], deep[160];
  struct stat sb;
  make_tmpdir(dir, sizeof dir);
  snprintf(deep, sizeof deep, "%s/a/b/c/", dir);
  cr_assert_eq(clkv__mkdirs(deep), 0);
  cr_assert_eq(clkv__mkdirs(deep), 0, "existing directories are fine");
  cr_assert(stat(deep, &sb) == 0 && S_ISDIR(sb.st_mode));
  char file[160];
  snprintf(file, sizeof file, "%s/a/f", dir);
  FILE *f = fopen(file, "w");
  cr_assert(f);
  fclose(f);
  snprintf(deep, sizeof deep, "%s/a/f/x", dir);
  cr_assert_neq(clkv__mkdirs(deep), 0, "a file in the way is an error");
  unlink(file);
  snprintf(deep, sizeof deep, "%s/a/b/c", dir), rmdir(deep);
  snprintf(deep, sizeof deep, "%s/a/b", dir), rmdir(deep);
  snprintf(deep, sizeof deep, "%s/a", dir), rmdir(deep);
  rmdir(dir);
  double t0 = clkv__now_ms();
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  double t1 = clkv__now_ms();
  cr_assert(t1 - t0 >= 19.0 && t1 - t0 < 2000.0, "elapsed %g ms", t1 - t0);
}

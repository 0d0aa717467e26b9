/* bench_device.c — `clkv_bench device`: clpeak-style microbenchmarks of one OpenCL device
 * (global-memory bandwidth, fp32/fp16/int8 compute, kernel launch latency, host↔device
 * transfers), each warmed up, calibrated to a target time and reported as a median; printed
 * beside clpeak's figures for the same device when clpeak is installed. */
#include "bench_clpeak.h"
#include "bench_peaks.h"
#include "bench_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KFILE "bench.cl"
#define BW_FETCH 16 /* must match kernels/bench.cl */
#define CP_ITERS 64

static const char *const vec_names[5] = {"float", "float2", "float4", "float8", "float16"};
static const unsigned vec_widths[5] = {1, 2, 4, 8, 16};

typedef struct dev_opts {
  const char *device;
  int json, quick, use_clpeak;
  double target_s; /* per measurement, all repetitions together */
  int reps;
} dev_opts;

typedef struct dev_results {
  size_t bw_bytes, xfer_bytes;
  double bw[5], sp[5], hp[5]; /* GB/s, GFLOP/s; NaN: not measured */
  double int8;                /* GOP/s */
  double lat_queued_us, lat_wall_us;
  double write_gbps, read_gbps, map_read_gbps, map_write_gbps;
  char hp_note[128];
} dev_results;

static size_t pick_local(const clkv_runtime *rt, size_t want) {
  size_t max = rt->info.max_workgroup_size ? rt->info.max_workgroup_size : 1;
  return want < max ? want : max;
}

static double best_of(const double *v, int n) {
  double b = NAN;
  for (int i = 0; i < n; ++i)
    if (isfinite(v[i]) && !(v[i] <= b)) b = v[i];
  return b;
}

/* ---- global memory bandwidth ---- */
static clkv_status run_bandwidth(clkv_runtime *rt, const dev_opts *o, dev_results *r,
                                 clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_mem src = NULL, dst = NULL;
  cl_kernel k = NULL;
  size_t local = pick_local(rt, 4096); /* the largest work-group, as clpeak does */
  size_t unit = (size_t)BW_FETCH * 16 * local * sizeof(float); /* every width divides it */
  size_t bytes = (size_t)(o->quick ? 32 : 256) << 20;
  if (rt->info.max_alloc_bytes / 2 < bytes) bytes = (size_t)(rt->info.max_alloc_bytes / 2);
  bytes = bytes / unit * unit;
  if (bytes == 0) return clkv__err(err, CLKV_ERR_DEVICE_MEMORY, "device allows too small buffers");
  r->bw_bytes = bytes;
  CLKV_CL_CREATE(src, clCreateBuffer(rt->context, CL_MEM_READ_ONLY, bytes, NULL, &clkv__e));
  CLKV_CL_CREATE(dst, clCreateBuffer(rt->context, CL_MEM_WRITE_ONLY,
                                     bytes / BW_FETCH, NULL, &clkv__e));
  float one = 1.0f;
  CLKV_CL_TRY(clEnqueueFillBuffer(rt->queue, src, &one, sizeof one, 0, bytes, 0, NULL, NULL));
  CLKV_CL_TRY(clFinish(rt->queue));
  for (int w = 0; w < 5; ++w) {
    r->bw[w] = 0;
    for (int order = 0; order < 2; ++order) { /* the faster access order counts, as in clpeak */
      char name[32];
      snprintf(name, sizeof name, "bw_%s_%s", order ? "go" : "lo", vec_names[w]);
      CLKV_TRY(clkv__kernel_create(rt, KFILE, "", name, &k, err));
      clkv__args a = clkv__args_begin(k);
      clkv__args_mem(&a, src);
      clkv__args_mem(&a, dst);
      CLKV_TRY(clkv__args_end(&a, err));
      bench_launch l = {rt, k, 1, {bytes / sizeof(float) / vec_widths[w] / BW_FETCH}, {local}, 1};
      bench_time t;
      CLKV_TRY(bench_measure(bench_launch_op, &l, o->target_s / 2, o->reps, &t, err));
      double gbps = (double)bytes / t.median_s * 1e-9;
      if (gbps > r->bw[w]) r->bw[w] = gbps;
      clReleaseKernel(k);
      k = NULL;
    }
  }
fail:
  if (k) clReleaseKernel(k);
  if (dst) clReleaseMemObject(dst);
  if (src) clReleaseMemObject(src);
  return st;
}

/* ---- compute: fp32 and fp16 mad chains, int8 dots ---- */

/* Times kernel `name(out, scalar)` over `global` work-items; returns ops/s × 1e-9 given the
 * ops per work-item. */
static clkv_status time_compute(clkv_runtime *rt, const dev_opts *o, cl_mem out, size_t global,
                                const char *name, int int_arg, double ops_per_item,
                                double *gops, clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_kernel k = NULL;
  CLKV_TRY(clkv__kernel_create(rt, KFILE, "", name, &k, err));
  clkv__args a = clkv__args_begin(k);
  clkv__args_mem(&a, out);
  if (int_arg) clkv__args_i32(&a, 3);
  else clkv__args_f32(&a, 1.3f);
  CLKV_TRY(clkv__args_end(&a, err));
  bench_launch l = {rt, k, 1, {global}, {pick_local(rt, 256)}, 1};
  bench_time t;
  CLKV_TRY(bench_measure(bench_launch_op, &l, o->target_s, o->reps, &t, err));
  *gops = (double)global * ops_per_item / t.median_s * 1e-9;
fail:
  if (k) clReleaseKernel(k);
  return st;
}

static clkv_status run_compute(clkv_runtime *rt, const dev_opts *o, dev_results *r,
                               clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_mem out = NULL;
  size_t local = pick_local(rt, 256);
  size_t per_cu = rt->info.type == CLKV_DEVICE_CPU ? 1024 : 16384;
  size_t global = (rt->info.compute_units ? rt->info.compute_units : 1) * per_cu;
  global = (global + local - 1) / local * local;
  CLKV_CL_CREATE(out, clCreateBuffer(rt->context, CL_MEM_WRITE_ONLY, global * sizeof(float),
                                     NULL, &clkv__e));
  for (int w = 0; w < 5; ++w) {
    char name[32];
    double flops = (double)CP_ITERS * 16 * 2 * vec_widths[w];
    snprintf(name, sizeof name, "mad_%s", vec_names[w]);
    CLKV_TRY(time_compute(rt, o, out, global, name, 0, flops, &r->sp[w], err));
  }
  if (!rt->info.has_fp16) {
    snprintf(r->hp_note, sizeof r->hp_note, "n/a (no cl_khr_fp16)");
  } else {
    for (int w = 0; w < 5; ++w) {
      char name[32];
      double flops = (double)CP_ITERS * 16 * 2 * vec_widths[w];
      snprintf(name, sizeof name, "mad_half%s", vec_names[w] + 5); /* "float2" → "half2" */
      clkv_error e2;
      if (time_compute(rt, o, out, global, name, 0, flops, &r->hp[w], &e2) != CLKV_OK) {
        snprintf(r->hp_note, sizeof r->hp_note, "failed: %.100s", e2.message);
        break;
      }
    }
  }
  CLKV_TRY(time_compute(rt, o, out, global, "dot_int8", 1, (double)CP_ITERS * 128, &r->int8,
                        err));
fail:
  if (out) clReleaseMemObject(out);
  return st;
}

/* ---- kernel launch latency ---- */
typedef struct latency_ctx {
  clkv_runtime *rt;
  cl_kernel k;
} latency_ctx;

static clkv_status latency_queued_op(void *user, double *seconds, clkv_error *err) {
  latency_ctx *c = user;
  size_t one = 1;
  double run;
  return bench_kernel_once(c->rt, c->k, 1, &one, &one, &run, seconds, err);
}

static clkv_status latency_wall_op(void *user, double *seconds, clkv_error *err) {
  latency_ctx *c = user;
  clkv_status st = CLKV_OK;
  size_t one = 1;
  double t0 = bench_now_s();
  CLKV_TRY(clkv__launch(c->rt, c->k, 1, &one, &one, err));
  CLKV_CL_TRY(clFinish(c->rt->queue));
  *seconds = bench_now_s() - t0;
fail:
  return st;
}

static clkv_status run_latency(clkv_runtime *rt, const dev_opts *o, dev_results *r,
                               clkv_error *err) {
  clkv_status st = CLKV_OK;
  cl_mem out = NULL;
  latency_ctx c = {rt, NULL};
  bench_time t;
  CLKV_CL_CREATE(out, clCreateBuffer(rt->context, CL_MEM_WRITE_ONLY, 64, NULL, &clkv__e));
  CLKV_TRY(clkv__kernel_create(rt, KFILE, "", "empty", &c.k, err));
  clkv__args a = clkv__args_begin(c.k);
  clkv__args_mem(&a, out);
  CLKV_TRY(clkv__args_end(&a, err));
  CLKV_TRY(bench_measure(latency_queued_op, &c, o->target_s, o->reps, &t, err));
  r->lat_queued_us = t.median_s * 1e6;
  CLKV_TRY(bench_measure(latency_wall_op, &c, o->target_s, o->reps, &t, err));
  r->lat_wall_us = t.median_s * 1e6;
fail:
  if (c.k) clReleaseKernel(c.k);
  if (out) clReleaseMemObject(out);
  return st;
}

/* ---- host <-> device transfers ---- */
typedef enum xfer_kind { XFER_WRITE, XFER_READ, XFER_MAP_READ, XFER_MAP_WRITE } xfer_kind;

typedef struct xfer_ctx {
  clkv_runtime *rt;
  cl_mem buf;
  unsigned char *host;
  size_t bytes;
  xfer_kind kind;
} xfer_ctx;

/* Wall-clock time of one blocking transfer: what the host waits for. Map transfers count
 * the map, the memcpy and the unmap. */
static clkv_status xfer_op(void *user, double *seconds, clkv_error *err) {
  xfer_ctx *x = user;
  clkv_status st = CLKV_OK;
  cl_command_queue q = x->rt->queue;
  void *p = NULL;
  double t0 = bench_now_s();
  switch (x->kind) {
  case XFER_WRITE:
    CLKV_CL_TRY(clEnqueueWriteBuffer(q, x->buf, CL_TRUE, 0, x->bytes, x->host, 0, NULL, NULL));
    break;
  case XFER_READ:
    CLKV_CL_TRY(clEnqueueReadBuffer(q, x->buf, CL_TRUE, 0, x->bytes, x->host, 0, NULL, NULL));
    break;
  case XFER_MAP_READ:
  case XFER_MAP_WRITE: {
    cl_map_flags f = x->kind == XFER_MAP_READ ? CL_MAP_READ : CL_MAP_WRITE_INVALIDATE_REGION;
    CLKV_CL_CREATE(p, clEnqueueMapBuffer(q, x->buf, CL_TRUE, f, 0, x->bytes, 0, NULL, NULL,
                                         &clkv__e));
    if (x->kind == XFER_MAP_READ) memcpy(x->host, p, x->bytes);
    else memcpy(p, x->host, x->bytes);
    cl_int rc = clEnqueueUnmapMemObject(q, x->buf, p, 0, NULL, NULL);
    p = NULL;
    CLKV_CL_TRY(rc);
    CLKV_CL_TRY(clFinish(q));
    break;
  }
  }
  *seconds = bench_now_s() - t0;
fail:
  if (p) clEnqueueUnmapMemObject(q, x->buf, p, 0, NULL, NULL);
  return st;
}

static clkv_status run_transfer(clkv_runtime *rt, const dev_opts *o, dev_results *r,
                                clkv_error *err) {
  clkv_status st = CLKV_OK;
  xfer_ctx x = {rt, NULL, NULL, (size_t)(o->quick ? 16 : 64) << 20, XFER_WRITE};
  double *gbps[4] = {&r->write_gbps, &r->read_gbps, &r->map_read_gbps, &r->map_write_gbps};
  r->xfer_bytes = x.bytes;
  x.host = malloc(x.bytes);
  if (!x.host) return clkv__err(err, CLKV_ERR_NO_MEMORY, "cannot allocate %zu bytes", x.bytes);
  memset(x.host, 1, x.bytes);
  CLKV_CL_CREATE(x.buf, clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR,
                                       x.bytes, NULL, &clkv__e)); /* as clpeak */
  for (int i = 0; i < 4; ++i) {
    bench_time t;
    x.kind = (xfer_kind)i;
    CLKV_TRY(bench_measure(xfer_op, &x, o->target_s, o->reps, &t, err));
    *gbps[i] = (double)x.bytes / t.median_s * 1e-9;
  }
fail:
  if (x.buf) clReleaseMemObject(x.buf);
  free(x.host);
  return st;
}

/* ---- report: one row list drives both the table and the JSON ---- */
typedef struct dev_row {
  const char *group; /* JSON group key; a new group starts a table section */
  const char *title; /* table section title */
  const char *key;   /* row label and JSON key */
  double ours;
  const char *cp_section, *cp_name; /* clpeak's figure; cp_name "*" = best of the section */
} dev_row;

static double clpeak_value(const bench_clpeak *c, const dev_row *row) {
  if (!c || !row->cp_section) return NAN;
  if (strcmp(row->cp_name, "*") != 0) return bench_clpeak_get(c, row->cp_section, row->cp_name);
  double v[5];
  for (int w = 0; w < 5; ++w) v[w] = bench_clpeak_get(c, row->cp_section, vec_names[w]);
  return best_of(v, 5);
}

static int build_rows(const dev_results *r, dev_row *rows) {
  static char bw_title[96], xfer_title[96];
  snprintf(bw_title, sizeof bw_title, "Global memory bandwidth, %zu MiB read (GB/s)",
           r->bw_bytes >> 20);
  snprintf(xfer_title, sizeof xfer_title, "Host<->device transfer, %zu MiB (GB/s)",
           r->xfer_bytes >> 20);
  const char *bw = "Global memory bandwidth", *sp = "Single-precision compute";
  const char *xf = "Transfer bandwidth";
  int n = 0;
  for (int w = 0; w < 5; ++w)
    rows[n++] = (dev_row){"global_bandwidth_gbps", bw_title, vec_names[w], r->bw[w], bw,
                          vec_names[w]};
  rows[n++] = (dev_row){"global_bandwidth_gbps", bw_title, "best", best_of(r->bw, 5), bw, "*"};
  for (int w = 0; w < 5; ++w)
    rows[n++] = (dev_row){"compute_sp_gflops", "fp32 compute, mad chains (GFLOP/s)",
                          vec_names[w], r->sp[w], sp, vec_names[w]};
  rows[n++] = (dev_row){"compute_sp_gflops", "fp32 compute, mad chains (GFLOP/s)", "best",
                        best_of(r->sp, 5), sp, "*"};
  static const char *const half_names[5] = {"half", "half2", "half4", "half8", "half16"};
  for (int w = 0; w < 5; ++w)
    rows[n++] = (dev_row){"compute_hp_gflops", "fp16 compute, mad chains (GFLOP/s)",
                          half_names[w], r->hp[w], NULL, NULL};
  rows[n++] = (dev_row){"int8_gops", "int8 compute (GOP/s)", "char4 dot -> int", r->int8, NULL,
                        NULL};
  rows[n++] = (dev_row){"kernel_latency_us", "Kernel launch latency (us)",
                        "enqueue->start (event)", r->lat_queued_us, "Kernel launch latency", ""};
  rows[n++] = (dev_row){"kernel_latency_us", "Kernel launch latency (us)",
                        "launch + clFinish (wall)", r->lat_wall_us, NULL, NULL};
  rows[n++] = (dev_row){"transfer_gbps", xfer_title, "write (clEnqueueWriteBuffer)",
                        r->write_gbps, xf, "enqueueWriteBuffer"};
  rows[n++] = (dev_row){"transfer_gbps", xfer_title, "read (clEnqueueReadBuffer)", r->read_gbps,
                        xf, "enqueueReadBuffer"};
  rows[n++] = (dev_row){"transfer_gbps", xfer_title, "map + memcpy out + unmap",
                        r->map_read_gbps, xf, "memcpy from mapped ptr"};
  rows[n++] = (dev_row){"transfer_gbps", xfer_title, "map + memcpy in + unmap",
                        r->map_write_gbps, xf, "memcpy to mapped ptr"};
  return n;
}

static void fmt_num(char *out, size_t cap, double v, const char *none) {
  if (isfinite(v)) snprintf(out, cap, v >= 100 ? "%.1f" : "%.2f", v);
  else snprintf(out, cap, "%s", none);
}

static void print_table(const clkv_device_info *d, const dev_results *r, const dev_row *rows,
                        int n, const bench_clpeak *cp, const char *cp_state) {
  printf("clkv_bench device: %s (%s, %s), %u compute units, %u MHz\n", d->name,
         d->platform_name, d->driver_version, d->compute_units, d->clock_mhz);
  printf("clpeak: %s\n\n", cp_state);
  printf("%-30s %12s %12s %8s\n", "", "clkv", "clpeak", "ratio");
  const char *group = "";
  for (int i = 0; i < n; ++i) {
    const dev_row *row = &rows[i];
    if (strcmp(group, row->group) != 0) {
      group = row->group;
      if (!strcmp(group, "compute_hp_gflops") && r->hp_note[0] && !isfinite(rows[i].ours)) {
        printf("%s: %s\n", row->title, r->hp_note);
        while (i + 1 < n && !strcmp(rows[i + 1].group, group)) ++i;
        continue;
      }
      printf("%s\n", row->title);
    }
    double c = clpeak_value(cp, row);
    char a[32], b[32], q[32];
    fmt_num(a, sizeof a, row->ours, "n/a");
    fmt_num(b, sizeof b, c, row->cp_section ? "-" : "");
    fmt_num(q, sizeof q, row->ours / c, row->cp_section ? "-" : "");
    printf("  %-28s %12s %12s %8s\n", row->key, a, b, q);
  }
}

static void print_json(const clkv_device_info *d, const dev_opts *o, const dev_results *r,
                       const dev_row *rows, int n, const bench_clpeak *cp,
                       const char *cp_state) {
  bench_json j;
  bench_json_begin(&j, stdout);
  bench_json_object(&j, "device");
  bench_json_str(&j, "name", d->name);
  bench_json_str(&j, "platform", d->platform_name);
  bench_json_str(&j, "driver", d->driver_version);
  bench_json_num(&j, "compute_units", d->compute_units);
  bench_json_num(&j, "clock_mhz", d->clock_mhz);
  bench_json_close(&j);
  bench_json_object(&j, "config");
  bench_json_num(&j, "quick", o->quick);
  bench_json_num(&j, "target_s", o->target_s);
  bench_json_num(&j, "reps", o->reps);
  bench_json_num(&j, "bandwidth_bytes", (double)r->bw_bytes);
  bench_json_num(&j, "transfer_bytes", (double)r->xfer_bytes);
  bench_json_close(&j);
  bench_json_object(&j, "clpeak");
  bench_json_str(&j, "state", cp_state);
  bench_json_num(&j, "seconds", cp ? cp->seconds : NAN);
  bench_json_close(&j);
  const char *group = "";
  for (int i = 0; i < n; ++i) {
    if (strcmp(group, rows[i].group) != 0) {
      if (group[0]) bench_json_close(&j);
      group = rows[i].group;
      bench_json_object(&j, group);
      if (!strcmp(group, "compute_hp_gflops") && r->hp_note[0]) bench_json_str(&j, "note", r->hp_note);
    }
    double c = clpeak_value(cp, &rows[i]);
    bench_json_object(&j, rows[i].key);
    bench_json_num(&j, "clkv", rows[i].ours);
    if (rows[i].cp_section) {
      bench_json_num(&j, "clpeak", c);
      bench_json_num(&j, "ratio", rows[i].ours / c);
    }
    bench_json_close(&j);
  }
  bench_json_end(&j);
}

clkv_status bench_device_peaks(clkv_runtime *rt, double target_s, bench_peaks *out,
                               clkv_error *err) {
  clkv_status st = CLKV_OK;
  dev_opts o = {NULL, 0, 0, 0, target_s, 3};
  dev_results r;
  memset(&r, 0, sizeof r);
  for (int w = 0; w < 5; ++w) r.bw[w] = r.sp[w] = r.hp[w] = NAN;
  r.int8 = NAN;
  double t0 = bench_now_s();
  CLKV_TRY(run_bandwidth(rt, &o, &r, err));
  CLKV_TRY(run_compute(rt, &o, &r, err));
  *out = (bench_peaks){.cl_gbps = best_of(r.bw, 5), .cl_gflops = best_of(r.sp, 5),
                       .cl_gops = r.int8, .native_gbps = NAN, .native_gflops = NAN,
                       .native_gops = NAN, .fp32_isa = "-", .int8_isa = "-"};
  /* A CPU device runs on the host's cores: what native code reaches there bounds it too. */
  if (rt->info.type == CLKV_DEVICE_CPU) {
    out->cpu = 1;
    out->native_threads = bench_native_threads();
    out->native_gbps = bench_native_read_gbps(r.bw_bytes ? r.bw_bytes : 256u << 20, target_s);
    out->native_gflops = bench_native_fp32_gflops(target_s, &out->fp32_isa);
    out->native_gops = bench_native_int8_gops(target_s, &out->int8_isa);
  }
  out->gbps = fmax(out->cl_gbps, out->native_gbps); /* fmax ignores a NaN */
  out->gflops = fmax(out->cl_gflops, out->native_gflops);
  out->gops = fmax(out->cl_gops, out->native_gops);
  out->compute = fmax(out->gflops, out->gops);
  out->seconds = bench_now_s() - t0;
fail:
  return st;
}

/* clpeak numbers devices per platform; clkv numbers them over all platforms. */
static int clpeak_indices(const clkv_device_info *d, int *platform, int *device) {
  clkv_device_info *all = NULL;
  size_t n = 0;
  clkv_error e;
  if (clkv_devices_list(&all, &n, &e) != CLKV_OK) return 0;
  *platform = d->platform_index;
  *device = 0;
  for (size_t i = 0; i < n && all[i].index < d->index; ++i)
    if (all[i].platform_index == d->platform_index) ++*device;
  free(all);
  return 1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: clkv_bench device [--json] [--device D] [--quick] [--no-clpeak]\n"
          "  --device D    device index or name substring (as `clkv devices` lists them)\n"
          "  --json        print one JSON object instead of the table\n"
          "  --quick       small buffers, short timings, no clpeak: a smoke test (< 10 s)\n"
          "  --no-clpeak   do not run clpeak for comparison ($CLKV_CLPEAK picks its path)\n");
}

int bench_device_main(int argc, char **argv) {
  dev_opts o = {NULL, 0, 0, 1, 0.2, 5};
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--json")) o.json = 1;
    else if (!strcmp(argv[i], "--quick")) o.quick = 1;
    else if (!strcmp(argv[i], "--no-clpeak")) o.use_clpeak = 0;
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) o.device = argv[++i];
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "clkv_bench device: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (o.quick) o.target_s = 0.02, o.reps = 3, o.use_clpeak = 0;

  clkv_error err;
  clkv_runtime *rt = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o.device;
  rp.profiling = 1;
  clkv_status st = clkv_runtime_create(&rp, &rt, &err);
  if (st != CLKV_OK) {
    fprintf(stderr, "clkv_bench device: %s\n", err.message);
    return 1;
  }
  fprintf(stderr, "clkv_bench: %s\n", rt->timer_note); /* events or the wall clock */
  const clkv_device_info *d = clkv_runtime_device(rt);
  dev_results r;
  memset(&r, 0, sizeof r);
  for (int w = 0; w < 5; ++w) r.bw[w] = r.sp[w] = r.hp[w] = NAN;
  r.int8 = NAN;
  /* Each of our measurements is followed right away by clpeak's run of the same quantity,
   * so that both see the same machine load. */
  static const struct {
    const char *what;
    clkv_status (*run)(clkv_runtime *, const dev_opts *, dev_results *, clkv_error *);
    const char *clpeak_test;
  } steps[] = {{"global memory bandwidth", run_bandwidth, "--global-bandwidth"},
               {"compute", run_compute, "--compute-sp"},
               {"kernel launch latency", run_latency, "--kernel-latency"},
               {"transfers", run_transfer, "--transfer-bandwidth"}};
  bench_clpeak cp_store, *cp = NULL;
  char cp_state[1600], exe[1024];
  int plat = 0, dev = 0;
  memset(&cp_store, 0, sizeof cp_store);
  if (!o.use_clpeak)
    snprintf(cp_state, sizeof cp_state, "not run (%s)", o.quick ? "--quick" : "--no-clpeak");
  else if (!bench_clpeak_find(exe, sizeof exe))
    snprintf(cp_state, sizeof cp_state, "not installed (set CLKV_CLPEAK to its path)");
  else if (!clpeak_indices(d, &plat, &dev))
    snprintf(cp_state, sizeof cp_state, "not run (could not list devices)");
  else
    cp = &cp_store;
  double ours_s = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; ++i) {
    fprintf(stderr, "clkv_bench: measuring %s...\n", steps[i].what);
    double t0 = bench_now_s();
    if ((st = steps[i].run(rt, &o, &r, &err)) != CLKV_OK) {
      fprintf(stderr, "clkv_bench device: %s failed: %s\n", steps[i].what, err.message);
      clkv_runtime_free(rt);
      return 1;
    }
    ours_s += bench_now_s() - t0;
    if (cp) {
      fprintf(stderr, "clkv_bench: %s -p %d -d %d %s...\n", exe, plat, dev, steps[i].clpeak_test);
      bench_clpeak_run(exe, plat, dev, steps[i].clpeak_test, cp);
    }
  }
  if (cp)
    snprintf(cp_state, sizeof cp_state, "%.1000s -p %d -d %d, %.1f s%s%.511s", exe, plat, dev,
             cp->seconds, cp->note[0] ? "; " : "", cp->note);
  fprintf(stderr, "clkv_bench: our measurements took %.1f s\n", ours_s);

  dev_row rows[32];
  int n = build_rows(&r, rows);
  if (o.json) print_json(d, &o, &r, rows, n, cp, cp_state);
  else print_table(d, &r, rows, n, cp, cp_state);
  clkv_runtime_free(rt);
  return 0;
}

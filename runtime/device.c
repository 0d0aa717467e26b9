/* device.c — OpenCL device discovery: queries every device of every platform, classifies
 * vendor and architecture from capabilities (extensions, vendor id, wavefront width)
 * before the name, and selects a device from a --device string. */
#include "platform.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Vendor-extension query enums (cl_ext.h names; values fixed by the Khronos registry). */
#define CLKV__DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CLKV__DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#define CLKV__DEVICE_WARP_SIZE_NV 0x4003
#define CLKV__DEVICE_WAVEFRONT_WIDTH_AMD 0x4043
#define CLKV__DEVICE_SUB_GROUP_SIZES_INTEL 0x4108
#define CLKV__DEVICE_IP_VERSION_INTEL 0x4250
#define CLKV__DEVICE_MAX_NUM_SUB_GROUPS 0x105C
#define CLKV__DEVICE_OPENCL_C_FEATURES 0x106F

const char *clkv_device_type_name(clkv_device_type t) {
  switch (t) {
  case CLKV_DEVICE_CPU: return "CPU";
  case CLKV_DEVICE_GPU: return "GPU";
  case CLKV_DEVICE_ACCELERATOR: return "accelerator";
  case CLKV_DEVICE_OTHER: break;
  }
  return "other";
}

/* Case-insensitive substring test. */
static int has_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

/* Whole-word test in a space-separated extension list ("cl_khr_fp16" must not match
 * "cl_khr_fp16_foo"). Prefix mode matches any word starting with word. */
static int has_ext(const char *exts, const char *word, int prefix) {
  size_t n = strlen(word);
  for (const char *p = exts; (p = strstr(p, word)) != NULL; p += n) {
    if (p != exts && p[-1] != ' ') continue;
    if (prefix || p[n] == '\0' || p[n] == ' ') return 1;
  }
  return 0;
}

/* A string query into a fixed buffer; failures give "". */
static void dev_str(cl_device_id d, cl_device_info what, char *out, size_t cap) {
  out[0] = '\0';
  if (clGetDeviceInfo(d, what, cap, out, NULL) != CL_SUCCESS) out[0] = '\0';
  out[cap - 1] = '\0';
}

/* A scalar query of `size` bytes widened to uint64; failures give 0. */
static uint64_t dev_num(cl_device_id d, cl_device_info what, size_t size) {
  union { cl_uint u32; cl_ulong u64; size_t sz; cl_bool b; unsigned char raw[16]; } v;
  memset(&v, 0, sizeof v);
  if (size > sizeof v || clGetDeviceInfo(d, what, size, &v, NULL) != CL_SUCCESS) return 0;
  if (size == sizeof(cl_ulong)) return v.u64;
  if (size == sizeof(cl_uint)) return v.u32;
  return v.sz;
}

/* The full extension string (may exceed info->extensions); caller frees. */
static char *dev_extensions(cl_device_id d) {
  size_t n = 0;
  char *s;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0) n = 1;
  s = calloc(n + 1, 1);
  if (s && n > 1 && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) != CL_SUCCESS) s[0] = '\0';
  return s;
}

/* OpenCL 3.0: is the optional feature __opencl_c_subgroups reported? */
static int has_c_feature_subgroups(cl_device_id d) {
  typedef struct { cl_uint version; char name[64]; } name_version; /* cl_name_version */
  size_t n = 0;
  int found = 0;
  if (clGetDeviceInfo(d, CLKV__DEVICE_OPENCL_C_FEATURES, 0, NULL, &n) != CL_SUCCESS || n == 0)
    return 0;
  name_version *f = malloc(n);
  if (f && clGetDeviceInfo(d, CLKV__DEVICE_OPENCL_C_FEATURES, n, f, NULL) == CL_SUCCESS)
    for (size_t i = 0; i < n / sizeof *f; i++)
      if (!strncmp(f[i].name, "__opencl_c_subgroups", sizeof f[i].name)) found = 1;
  free(f);
  return found;
}

/* Vendor from capabilities first, then the PCI vendor id, and only last the name. */
static clkv_vendor classify_vendor(const clkv_device_info *in, const char *exts, cl_uint vendor_id) {
  if (has_ext(exts, "cl_nv_", 1)) return CLKV_VENDOR_NVIDIA;
  if (has_ext(exts, "cl_amd_", 1)) return CLKV_VENDOR_AMD;
  if (has_ext(exts, "cl_arm_", 1)) return CLKV_VENDOR_ARM;
  if (has_ext(exts, "cl_qcom_", 1)) return CLKV_VENDOR_QUALCOMM;
  if (has_ext(exts, "cl_apple_", 1) && in->type == CLKV_DEVICE_GPU) return CLKV_VENDOR_APPLE;
  /* PoCL's CPU device reports the CPU's vendor id (often 0x8086): check before the id. */
  if (has_ci(in->platform_name, "Portable Computing Language") && in->type == CLKV_DEVICE_CPU)
    return CLKV_VENDOR_POCL;
  if (has_ext(exts, "cl_intel_", 1)) return CLKV_VENDOR_INTEL;
  switch (vendor_id) {
  case 0x10DE: return CLKV_VENDOR_NVIDIA;
  case 0x1002: case 0x1022: return CLKV_VENDOR_AMD;
  case 0x8086: return CLKV_VENDOR_INTEL;
  case 0x13B5: return CLKV_VENDOR_ARM;
  case 0x5143: return CLKV_VENDOR_QUALCOMM;
  case 0x106B: case 0x1027F00: return CLKV_VENDOR_APPLE;
  default: break;
  }
  if (has_ci(in->platform_name, "Portable Computing Language")) return CLKV_VENDOR_POCL;
  static const struct { const char *word; clkv_vendor v; } by_name[] = {
      {"nvidia", CLKV_VENDOR_NVIDIA}, {"geforce", CLKV_VENDOR_NVIDIA}, {"advanced micro", CLKV_VENDOR_AMD},
      {"radeon", CLKV_VENDOR_AMD},    {"intel", CLKV_VENDOR_INTEL},    {"mali", CLKV_VENDOR_ARM},
      {"arm", CLKV_VENDOR_ARM},       {"adreno", CLKV_VENDOR_QUALCOMM}, {"qualcomm", CLKV_VENDOR_QUALCOMM},
      {"apple", CLKV_VENDOR_APPLE}};
  for (size_t i = 0; i < sizeof by_name / sizeof by_name[0]; i++)
    if (has_ci(in->vendor_name, by_name[i].word) || has_ci(in->name, by_name[i].word))
      return by_name[i].v;
  return CLKV_VENDOR_UNKNOWN;
}

/* NVIDIA family from the compute capability (cl_nv_device_attribute_query), else "nvidia". */
static const char *nvidia_arch(cl_device_id d, const char *exts) {
  static const struct { unsigned cc; const char *arch; } fam[] = {
      {30, "nvidia-kepler"}, {50, "nvidia-maxwell"}, {60, "nvidia-pascal"}, {70, "nvidia-volta"},
      {75, "nvidia-turing"}, {80, "nvidia-ampere"}, {89, "nvidia-ada"},     {90, "nvidia-hopper"},
      {100, "nvidia-blackwell"}, {130, "nvidia"} /* newer than this table */};
  if (!has_ext(exts, "cl_nv_device_attribute_query", 0)) return "nvidia";
  unsigned cc = 10 * (unsigned)dev_num(d, CLKV__DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof(cl_uint)) +
                (unsigned)dev_num(d, CLKV__DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof(cl_uint));
  const char *a = "nvidia";
  for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
    if (cc >= fam[i].cc) a = fam[i].arch;
  return a;
}

/* Mali family from the product name ("Mali-G76 MP10", "Immortalis-G715"): ARM drivers
 * report no architecture query. Bifrost: G31 G51 G52 G71 G72 G76; Midgard: T-series. */
static const char *mali_arch(const char *name) {
  const char *g = strstr(name, "Mali-G"), *imm = strstr(name, "Immortalis-G");
  if (strstr(name, "Mali-T")) return "mali-midgard";
  if (imm) return "mali-valhall";
  if (!g) return "mali";
  long n = strtol(g + 6, NULL, 10);
  if (n == 31 || n == 51 || n == 52 || n == 71 || n == 72 || n == 76) return "mali-bifrost";
  return n > 0 ? "mali-valhall" : "mali";
}

/* Architecture family string from vendor, type and measured capabilities. */
static void classify_arch(clkv_device_info *in, const char *exts, cl_device_id d) {
  const char *a = "unknown";
  if (in->type == CLKV_DEVICE_CPU) {
    /* Mesa's rusticl reports vendor id 0 and no vendor extension: its platform and
     * llvmpipe's device name are all there is to tell it by */
    int llvmpipe = has_ci(in->platform_name, "rusticl") && !strncmp(in->name, "llvmpipe", 8);
    a = in->vendor == CLKV_VENDOR_POCL ? "pocl-cpu" : llvmpipe ? "rusticl-llvmpipe" : "cpu";
  } else {
    switch (in->vendor) {
    case CLKV_VENDOR_NVIDIA: a = nvidia_arch(d, exts); break;
    case CLKV_VENDOR_AMD:
      a = in->subgroup_size == 64 ? "amd-gcn" : in->subgroup_size == 32 ? "amd-rdna" : "amd";
      break;
    case CLKV_VENDOR_INTEL: {
      /* cl_intel_device_attribute_query: IP version major 9, 11, >= 12 (Xe); else the name. */
      uint64_t ip = has_ext(exts, "cl_intel_device_attribute_query", 0)
                        ? dev_num(d, CLKV__DEVICE_IP_VERSION_INTEL, sizeof(cl_uint)) >> 22 : 0;
      int xe = ip ? ip >= 12
                  : has_ci(in->name, "Xe") || has_ci(in->name, "Arc") || has_ci(in->name, "Data Center GPU");
      a = xe ? "intel-xe" : ip == 9 ? "intel-gen9" : ip == 11 ? "intel-gen11" : "intel-gen";
      break;
    }
    case CLKV_VENDOR_ARM: a = mali_arch(in->name); break;
    case CLKV_VENDOR_QUALCOMM: a = "adreno"; break;
    case CLKV_VENDOR_APPLE: a = "apple"; break;
    case CLKV_VENDOR_POCL: a = "pocl"; break;
    case CLKV_VENDOR_UNKNOWN: a = in->type == CLKV_DEVICE_GPU ? "gpu" : "unknown"; break;
    }
  }
  snprintf(in->arch, sizeof in->arch, "%s", a);
}

/* Subgroup (warp/wavefront) width when the driver tells it; 0 when unknown (the platform
 * profile's simd_width fills it then, e.g. NVIDIA's 32). */
static unsigned query_subgroup_size(cl_device_id d, const char *exts) {
  if (has_ext(exts, "cl_nv_device_attribute_query", 0))
    return (unsigned)dev_num(d, CLKV__DEVICE_WARP_SIZE_NV, sizeof(cl_uint));
  if (has_ext(exts, "cl_amd_device_attribute_query", 0))
    return (unsigned)dev_num(d, CLKV__DEVICE_WAVEFRONT_WIDTH_AMD, sizeof(cl_uint));
  if (has_ext(exts, "cl_intel_required_subgroup_size", 0)) {
    size_t sizes[16] = {0}, got = 0;
    unsigned best = 0;
    if (clGetDeviceInfo(d, CLKV__DEVICE_SUB_GROUP_SIZES_INTEL, sizeof sizes, sizes, &got) == CL_SUCCESS)
      for (size_t i = 0; i < got / sizeof(size_t) && i < 16; i++)
        if (sizes[i] == 16 || (best != 16 && sizes[i] > best)) best = (unsigned)sizes[i];
    return best;
  }
  return 0;
}

clkv_status clkv__device_query(cl_platform_id plat, cl_device_id dev, clkv_device_info *info,
                               clkv_error *err) {
  cl_device_type t = 0;
  char *exts;
  if (!info || !dev) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv__device_query: no device given");
  memset(info, 0, sizeof *info);
  if (clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof t, &t, NULL) != CL_SUCCESS)
    return clkv__err(err, CLKV_ERR_OPENCL, "clGetDeviceInfo(CL_DEVICE_TYPE) failed: the driver "
                     "does not answer; check the OpenCL installation with clinfo");
  info->type = (t & CL_DEVICE_TYPE_GPU) ? CLKV_DEVICE_GPU
               : (t & CL_DEVICE_TYPE_CPU) ? CLKV_DEVICE_CPU
               : (t & CL_DEVICE_TYPE_ACCELERATOR) ? CLKV_DEVICE_ACCELERATOR : CLKV_DEVICE_OTHER;
  dev_str(dev, CL_DEVICE_NAME, info->name, sizeof info->name);
  dev_str(dev, CL_DEVICE_VENDOR, info->vendor_name, sizeof info->vendor_name);
  dev_str(dev, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
  dev_str(dev, CL_DEVICE_VERSION, info->cl_version, sizeof info->cl_version);
  dev_str(dev, CL_DEVICE_OPENCL_C_VERSION, info->clc_version, sizeof info->clc_version);
  if (plat && clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof info->platform_name,
                                info->platform_name, NULL) != CL_SUCCESS)
    info->platform_name[0] = '\0';
  info->platform_name[sizeof info->platform_name - 1] = '\0';
  info->compute_units = (unsigned)dev_num(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cl_uint));
  info->clock_mhz = (unsigned)dev_num(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof(cl_uint));
  info->global_mem_bytes = dev_num(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(cl_ulong));
  info->local_mem_bytes = dev_num(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(cl_ulong));
  info->max_alloc_bytes = dev_num(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(cl_ulong));
  info->max_workgroup_size = (size_t)dev_num(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(size_t));
  info->vec_width_float = (unsigned)dev_num(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof(cl_uint));
  info->vec_width_half = (unsigned)dev_num(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_HALF, sizeof(cl_uint));
  info->local_mem_is_global =
      dev_num(dev, CL_DEVICE_LOCAL_MEM_TYPE, sizeof(cl_device_local_mem_type)) == CL_GLOBAL;

  exts = dev_extensions(dev);
  if (!exts) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory reading device extensions");
  snprintf(info->extensions, sizeof info->extensions, "%s", exts);
  cl_uint vendor_id = (cl_uint)dev_num(dev, CL_DEVICE_VENDOR_ID, sizeof(cl_uint));
  info->has_fp16 = has_ext(exts, "cl_khr_fp16", 0);
  info->has_fp64 = has_ext(exts, "cl_khr_fp64", 0) ||
                   dev_num(dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof(cl_device_fp_config)) != 0;
  info->has_subgroups = has_ext(exts, "cl_khr_subgroups", 0) || has_ext(exts, "cl_intel_subgroups", 0) ||
                        has_c_feature_subgroups(dev);
  info->subgroup_size = query_subgroup_size(dev, exts);
  info->vendor = classify_vendor(info, exts, vendor_id);
  classify_arch(info, exts, dev);
  free(exts);
  return clkv__profile_apply(info, err); /* gaps the driver left, quirks (platforms/) */
}

/* Walks every (platform, device) pair in order; stops at the pair with global index
 * `want` (SIZE_MAX → none). Fills ids of that pair; *total gets the count walked. */
/* The directory PoCL keeps its kernel cache under ($POCL_CACHE_DIR, else $XDG_CACHE_HOME,
 * else $HOME/.cache) if it cannot be written, else NULL. */
static const char *pocl_cache_unwritable(char *buf, size_t cap) {
  const char *c = getenv("POCL_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
  if (c && *c) snprintf(buf, cap, "%s", c);
  else if (x && *x) snprintf(buf, cap, "%s", x);
  else if (h && *h) snprintf(buf, cap, "%s/.cache", h);
  else return "(no HOME)";
  /* the directory, or the nearest existing one above it, must take a new directory (tried:
   * permission bits do not tell for root or a read-only file system) */
  char probe[1100];
  for (;;) {
    struct stat st;
    if (stat(buf, &st) == 0) break;
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) break;
    *slash = 0;
  }
  snprintf(probe, sizeof probe, "%s/.clkv-probe-XXXXXX", buf);
  if (!mkdtemp(probe)) return buf;
  rmdir(probe);
  return NULL;
}

/* Why platforms list no device: PoCL without a writable cache directory creates none. */
static clkv_status no_device(const cl_platform_id *plats, cl_uint np, clkv_error *err) {
  char name[256], dir[1024];
  const char *bad = NULL;
  for (cl_uint p = 0; p < np && !bad; p++)
    if (clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof name, name, NULL) == CL_SUCCESS &&
        strstr(name, "Portable Computing Language"))
      bad = pocl_cache_unwritable(dir, sizeof dir);
  if (bad)
    return clkv__err(err, CLKV_ERR_NO_DEVICE, "PoCL found no device: it needs a writable cache "
                     "directory and %s is not writable; set HOME, XDG_CACHE_HOME or "
                     "POCL_CACHE_DIR to a writable directory", bad);
  return clkv__err(err, CLKV_ERR_NO_DEVICE, "OpenCL platforms exist but none has a device: "
                   "install a driver for your device (for CPUs: `apt-get install "
                   "pocl-opencl-icd`)");
}

static clkv_status walk_devices(size_t want, cl_platform_id *pout, cl_device_id *dout,
                                clkv_device_info **infos, size_t *total, clkv_error *err) {
  cl_uint np = 0;
  cl_platform_id *plats = NULL;
  size_t count = 0, cap = 0;
  clkv_status st = CLKV_OK;
  cl_int rc = clGetPlatformIDs(0, NULL, &np);
  if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (rc == CL_SUCCESS && np == 0))
    return clkv__err(err, CLKV_ERR_NO_DEVICE,
                     "no OpenCL platform found: install an OpenCL driver (for CPUs: `apt-get install "
                     "pocl-opencl-icd`; for GPUs the vendor's OpenCL runtime) and check with clinfo");
  if (rc != CL_SUCCESS)
    return clkv__err(err, clkv__cl_status(rc), "clGetPlatformIDs failed with %s (%d): check the "
                     "OpenCL installation with clinfo", clkv__cl_error_name(rc), (int)rc);
  plats = calloc(np, sizeof *plats);
  if (!plats) return clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory listing platforms");
  if (clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) np = 0;
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    cl_device_id *devs;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
    devs = calloc(nd, sizeof *devs);
    if (!devs) { st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory listing devices"); break; }
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) != CL_SUCCESS) nd = 0;
    for (cl_uint i = 0; i < nd && st == CLKV_OK; i++, count++) {
      if (count == want) {
        if (pout) *pout = plats[p];
        if (dout) *dout = devs[i];
      }
      if (!infos) continue;
      if (count == cap) {
        size_t nc = cap ? 2 * cap : 8;
        clkv_device_info *g = realloc(*infos, nc * sizeof *g);
        if (!g) { st = clkv__err(err, CLKV_ERR_NO_MEMORY, "out of host memory listing devices"); break; }
        *infos = g, cap = nc;
      }
      st = clkv__device_query(plats[p], devs[i], &(*infos)[count], err);
      (*infos)[count].index = (int)count;
      (*infos)[count].platform_index = (int)p;
    }
    free(devs);
    if (st != CLKV_OK) break;
  }
  if (st == CLKV_OK && count == 0) st = no_device(plats, np, err);
  free(plats);
  if (st == CLKV_OK && want != SIZE_MAX && want >= count)
    st = clkv__err(err, CLKV_ERR_NO_DEVICE, "device %zu is gone (only %zu devices now)", want, count);
  *total = count;
  return st;
}

clkv_status clkv_devices_list(clkv_device_info **out, size_t *count, clkv_error *err) {
  clkv_device_info *infos = NULL;
  size_t n = 0;
  clkv_status st;
  if (!out || !count) return clkv__err(err, CLKV_ERR_INVALID_ARG, "clkv_devices_list: out and count are required");
  *out = NULL, *count = 0;
  st = walk_devices(SIZE_MAX, NULL, NULL, &infos, &n, err);
  if (st != CLKV_OK) { free(infos); return st; }
  *out = infos, *count = n;
  return CLKV_OK;
}

/* The ids of the device with global index `index` (used by runtime.c; not part of
 * clkv_internal.h, which this module may not change). */
clkv_status clkv__device_ids(size_t index, cl_platform_id *plat, cl_device_id *dev, clkv_error *err) {
  size_t n = 0;
  return walk_devices(index, plat, dev, NULL, &n, err);
}

/* Best GPU by compute units × clock, else the first CPU, else device 0. */
static size_t best_of_type(const clkv_device_info *devs, size_t n, clkv_device_type t) {
  size_t best = SIZE_MAX;
  uint64_t score = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t s = (uint64_t)(devs[i].compute_units ? devs[i].compute_units : 1) *
                 (devs[i].clock_mhz ? devs[i].clock_mhz : 1);
    if (devs[i].type == t && (best == SIZE_MAX || s > score)) best = i, score = s;
  }
  return best;
}

clkv_status clkv__device_select(const clkv_device_info *devs, size_t n, const char *sel,
                                size_t *index, clkv_error *err) {
  size_t pick = SIZE_MAX;
  if (!devs || n == 0 || !index)
    return clkv__err(err, CLKV_ERR_NO_DEVICE, "no OpenCL device to choose from: install an OpenCL "
                     "driver (for CPUs: `apt-get install pocl-opencl-icd`)");
  if (!sel || !*sel) {
    pick = best_of_type(devs, n, CLKV_DEVICE_GPU);
    if (pick == SIZE_MAX) pick = best_of_type(devs, n, CLKV_DEVICE_CPU);
    *index = pick == SIZE_MAX ? 0 : pick;
    return CLKV_OK;
  }
  int digits = 1;
  for (const char *c = sel; *c; c++) digits &= isdigit((unsigned char)*c) != 0;
  if (digits) {
    unsigned long v = strtoul(sel, NULL, 10);
    if (v < n) pick = v;
  } else if (!strcmp(sel, "gpu") || !strcmp(sel, "GPU")) {
    pick = best_of_type(devs, n, CLKV_DEVICE_GPU);
  } else if (!strcmp(sel, "cpu") || !strcmp(sel, "CPU")) {
    pick = best_of_type(devs, n, CLKV_DEVICE_CPU);
  } else {
    for (size_t i = 0; i < n && pick == SIZE_MAX; i++)
      if (has_ci(devs[i].name, sel) || has_ci(devs[i].vendor_name, sel) ||
          has_ci(devs[i].platform_name, sel) || has_ci(clkv_vendor_name(devs[i].vendor), sel) ||
          has_ci(devs[i].arch, sel))
        pick = i;
  }
  if (pick != SIZE_MAX) {
    *index = pick;
    return CLKV_OK;
  }
  char list[1200];
  size_t len = 0;
  list[0] = '\0';
  for (size_t i = 0; i < n && len < sizeof list; i++) {
    int w = snprintf(list + len, sizeof list - len, "\n  %zu: %s (%s, %s, platform %s)", i, devs[i].name,
                     clkv_device_type_name(devs[i].type), clkv_vendor_name(devs[i].vendor),
                     devs[i].platform_name);
    if (w < 0) break;
    len += (size_t)w;
  }
  return clkv__err(err, CLKV_ERR_NO_DEVICE,
                   "no OpenCL device matches '%s'; choose one by index, by a part of its name, or "
                   "'gpu'/'cpu'. Available devices:%s", sel, list);
}

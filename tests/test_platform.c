/* test_platform.c — platform profiles: every shipped profile parses and matches its source
 * file; the lookup device → architecture → vendor → default for synthetic devices of each
 * vendor and architecture (which level each value comes from); gaps and quirks applied to
 * device info; $CLKV_PLATFORMS_DIR overrides; precedence env > tuning file > profile >
 * built-in; malformed and hostile profiles give file:line errors, never a crash; the PoCL
 * device here gets the pocl-cpu profile and the same greedy tokens as before profiles. */
#include "platform.h"
#include "ref/ref.h"
#include "tune/tuner.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct clkv__kernel_source {
  const char *name;
  const char *src;
};
extern const struct clkv__kernel_source clkv__profile_sources[];

static void setup(void) { unsetenv("CLKV_PLATFORMS_DIR"); }
TestSuite(platform, .init = setup, .timeout = 300);

/* ---- helpers ---- */
static clkv__pfile shipped[64];
static size_t n_shipped;

static void load_shipped(void) {
  n_shipped = 0;
  for (const struct clkv__kernel_source *e = clkv__profile_sources; e->name; e++)
    shipped[n_shipped++] = (clkv__pfile){e->name, e->src};
  cr_assert_geq(n_shipped, 7, "default, pocl, amd, nvidia, intel, arm and qualcomm profiles");
}

static clkv_device_info dev(clkv_device_type t, clkv_vendor v, const char *arch, const char *name) {
  clkv_device_info d;
  memset(&d, 0, sizeof d);
  d.type = t, d.vendor = v;
  snprintf(d.arch, sizeof d.arch, "%s", arch);
  snprintf(d.name, sizeof d.name, "%s", name);
  d.max_workgroup_size = 1024;
  return d;
}

static clkv__profile lookup_shipped(const clkv_device_info *d) {
  clkv__profile p;
  clkv_error err;
  cr_assert_eq(clkv__profile_lookup_in(shipped, n_shipped, d, &p, &err), CLKV_OK, "%s", err.message);
  return p;
}

static int key(const char *name) {
  for (int k = 0; k < CLKV__PK_COUNT; k++)
    if (!strcmp(clkv__profile_key_name(k), name)) return k;
  cr_assert_fail("no profile key %s", name);
  return -1;
}

static void make_dir(char *out, size_t cap) {
  snprintf(out, cap, "/tmp/clkv_platform_XXXXXX");
  cr_assert(mkdtemp(out));
}

static void write_file(const char *dir, const char *name, const char *text, size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  cr_assert(f, "cannot write %s", path);
  cr_assert_eq(fwrite(text, 1, len, f), len);
  fclose(f);
}

static void remove_dir(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* ---- shipped profiles ---- */
Test(platform, every_shipped_profile_parses_and_matches_its_source_file) {
  load_shipped();
  clkv_device_info d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_UNKNOWN, "gpu", "x");
  (void)lookup_shipped(&d);
  const clkv__pfile *def = NULL;
  for (size_t i = 0; i < n_shipped; i++)
    if (!strcmp(shipped[i].name, "default.profile")) def = &shipped[i];
  cr_assert(def, "default.profile is shipped");
  for (size_t i = 0; i < n_shipped; i++) { /* each file alone beside default.profile */
    clkv__pfile two[2] = {*def, shipped[i]};
    clkv__profile p;
    clkv_error err;
    cr_assert_eq(clkv__profile_lookup_in(two, def == &shipped[i] ? 1 : 2, &d, &p, &err), CLKV_OK,
                 "%s", err.message);
  }
  /* the library embeds exactly the files of platforms/ */
  char dir[600], path[900];
  snprintf(dir, sizeof dir, "%s/platforms", CLKV_SOURCE_DIR);
  DIR *dd = opendir(dir);
  cr_assert(dd);
  size_t on_disk = 0;
  for (struct dirent *e; (e = readdir(dd));) {
    size_t l = strlen(e->d_name);
    if (l < 9 || strcmp(e->d_name + l - 8, ".profile")) continue;
    on_disk++;
    size_t i = 0;
    while (i < n_shipped && strcmp(shipped[i].name, e->d_name)) i++;
    cr_assert_lt(i, n_shipped, "%s is not embedded: rebuild", e->d_name);
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    static char buf[70000];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cr_assert_str_eq(shipped[i].text, buf, "embedded %s differs from the source: rebuild", e->d_name);
  }
  closedir(dd);
  cr_assert_eq(on_disk, n_shipped);
}

Test(platform, tunable_keys_are_the_tuning_file_keys_and_default_sets_them_all) {
  load_shipped();
  clkv_device_info d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_UNKNOWN, "gpu", "x");
  clkv__profile p = lookup_shipped(&d);
  int tunables = 0;
  for (int k = 0; k < CLKV__PK_COUNT; k++) {
    char line[64];
    clkv__tunables t = {.mv = {{1, 4, 2, 1}, {1, 4, 2, 8}}, .att_wg = 8, .tq = 16, .tk = 32};
    snprintf(line, sizeof line, "%s=2\n", clkv__profile_key_name(k));
    if (clkv__tunables_parse(line, &t) != 0) continue; /* not a tunable */
    tunables++;
    cr_assert_eq(k, CLKV__PK_TUNABLE0 + clkv__tunable_find(clkv__profile_key_name(k)),
                 "%s: a tunable's profile key is its row's", clkv__profile_key_name(k));
    cr_assert_eq(p.from[k].level, CLKV__PL_DEFAULT, "[default] must set %s", clkv__profile_key_name(k));
  }
  cr_assert_eq(tunables, CLKV__TUN_COUNT, "every row of CLKV__TUNABLES (decode/prefill ksplit rg rows tt, "
               "att_wg tq tk, ...) is a profile key and a tuning-file key");
  /* CPUs must not inherit a vendor's GPU values: their arch sections set every tunable */
  const char *cpu_arch[] = {"cpu", "pocl-cpu", "rusticl-llvmpipe"};
  for (int a = 0; a < 3; a++) {
    clkv_device_info c = dev(CLKV_DEVICE_CPU, a == 1 ? CLKV_VENDOR_POCL : CLKV_VENDOR_INTEL, cpu_arch[a], "cpu");
    clkv__profile q = lookup_shipped(&c);
    for (int k = CLKV__PK_TUNABLE0; k < CLKV__PK_TUNABLE0 + CLKV__TUN_COUNT; k++)
      cr_assert_eq(q.from[k].level, CLKV__PL_ARCH, "%s: %s", cpu_arch[a], clkv__profile_key_name(k));
    cr_assert_eq(q.from[CLKV__PK_SIMD_WIDTH].level, CLKV__PL_ARCH);
    cr_assert_eq(q.from[CLKV__PK_QUIRKS].level, CLKV__PL_ARCH);
  }
}

/* ---- the lookup ---- */
typedef struct lookup_case {
  clkv_device_type type;
  clkv_vendor vendor;
  const char *arch, *name;
  const char *applied;
  long simd;
  clkv__plevel simd_from;
  long ksplit;
  clkv__plevel ksplit_from;
  long quirks;
  clkv__plevel quirks_from;
} lookup_case;

#define Q(id) (1L << CLKV__Q_##id)
static const lookup_case cases[] = {
    {CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pocl-cpu", "pthread-haswell", "arch pocl-cpu > vendor PoCL > default",
     0, CLKV__PL_ARCH, 1, CLKV__PL_ARCH, Q(LOCAL_MEM_IN_GLOBAL) | Q(SOFT_HALF), CLKV__PL_ARCH},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_POCL, "pocl", "NVIDIA via pocl-cuda", "vendor PoCL > default",
     0, CLKV__PL_DEFAULT, 32, CLKV__PL_DEFAULT, 0, CLKV__PL_DEFAULT},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "amd-gcn", "gfx906", "arch amd-gcn > vendor AMD > default",
     64, CLKV__PL_ARCH, 64, CLKV__PL_ARCH, Q(WG_LIMIT_256), CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "amd-rdna", "gfx1030", "arch amd-rdna > vendor AMD > default",
     32, CLKV__PL_ARCH, 32, CLKV__PL_ARCH, Q(WG_LIMIT_256), CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "amd", "AMD Radeon (rusticl)", "vendor AMD > default",
     64, CLKV__PL_VENDOR, 64, CLKV__PL_VENDOR, Q(WG_LIMIT_256), CLKV__PL_VENDOR},
    {CLKV_DEVICE_CPU, CLKV_VENDOR_UNKNOWN, "rusticl-llvmpipe", "llvmpipe (LLVM 15.0.6, 256 bits)",
     "arch rusticl-llvmpipe > default", 0, CLKV__PL_ARCH, 16, CLKV__PL_ARCH, 0, CLKV__PL_ARCH},
    {CLKV_DEVICE_CPU, CLKV_VENDOR_AMD, "cpu", "AMD Ryzen (APP CPU)", "arch cpu > vendor AMD > default",
     0, CLKV__PL_ARCH, 1, CLKV__PL_ARCH, 0, CLKV__PL_ARCH},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_NVIDIA, "nvidia-ampere", "NVIDIA GeForce RTX 3080",
     "arch nvidia-ampere > vendor NVIDIA > default", 32, CLKV__PL_VENDOR, 32, CLKV__PL_VENDOR, 0, CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_NVIDIA, "nvidia", "Tesla", "vendor NVIDIA > default",
     32, CLKV__PL_VENDOR, 32, CLKV__PL_VENDOR, 0, CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_INTEL, "intel-gen9", "Intel(R) UHD Graphics 630",
     "arch intel-gen9 > vendor Intel > default", 16, CLKV__PL_VENDOR, 16, CLKV__PL_VENDOR, 0, CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_INTEL, "intel-gen11", "Intel(R) Iris(R) Plus Graphics",
     "arch intel-gen11 > vendor Intel > default", 16, CLKV__PL_VENDOR, 16, CLKV__PL_VENDOR, 0, CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_INTEL, "intel-xe", "Intel(R) Arc(TM) A770",
     "arch intel-xe > vendor Intel > default", 16, CLKV__PL_VENDOR, 16, CLKV__PL_VENDOR, 0, CLKV__PL_VENDOR},
    {CLKV_DEVICE_CPU, CLKV_VENDOR_INTEL, "cpu", "Intel(R) Core(TM) i7", "arch cpu > vendor Intel > default",
     0, CLKV__PL_ARCH, 1, CLKV__PL_ARCH, 0, CLKV__PL_ARCH},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_ARM, "mali-bifrost", "Mali-G71 MP8",
     "device Mali-G71 > arch mali-bifrost > vendor ARM > default", 4, CLKV__PL_DEVICE, 1, CLKV__PL_VENDOR,
     Q(LOCAL_MEM_IN_GLOBAL), CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_ARM, "mali-bifrost", "Mali-G76 MP10", "arch mali-bifrost > vendor ARM > default",
     8, CLKV__PL_ARCH, 1, CLKV__PL_VENDOR, Q(LOCAL_MEM_IN_GLOBAL), CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_ARM, "mali-valhall", "Mali-G710 MC10", /* not the G71 section */
     "arch mali-valhall > vendor ARM > default", 16, CLKV__PL_ARCH, 1, CLKV__PL_VENDOR,
     Q(LOCAL_MEM_IN_GLOBAL), CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_ARM, "mali-midgard", "Mali-T880", "arch mali-midgard > vendor ARM > default",
     0, CLKV__PL_ARCH, 1, CLKV__PL_VENDOR, Q(LOCAL_MEM_IN_GLOBAL), CLKV__PL_VENDOR},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_QUALCOMM, "adreno", "QUALCOMM Adreno(TM) 740", "arch adreno > vendor Qualcomm > default",
     64, CLKV__PL_ARCH, 64, CLKV__PL_ARCH, 0, CLKV__PL_ARCH},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_APPLE, "apple", "Apple M2", "default",
     0, CLKV__PL_DEFAULT, 32, CLKV__PL_DEFAULT, 0, CLKV__PL_DEFAULT},
    {CLKV_DEVICE_GPU, CLKV_VENDOR_UNKNOWN, "gpu", "Some GPU", "default",
     0, CLKV__PL_DEFAULT, 32, CLKV__PL_DEFAULT, 0, CLKV__PL_DEFAULT},
};

Test(platform, lookup_falls_back_device_arch_vendor_default) {
  load_shipped();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const lookup_case *c = &cases[i];
    clkv_device_info d = dev(c->type, c->vendor, c->arch, c->name);
    clkv__profile p = lookup_shipped(&d);
    const int ks = key("decode.ksplit");
    cr_assert_str_eq(p.applied, c->applied, "%s", c->name);
    cr_assert_eq(p.v[CLKV__PK_SIMD_WIDTH], c->simd, "%s: simd_width", c->name);
    cr_assert_eq(p.from[CLKV__PK_SIMD_WIDTH].level, c->simd_from, "%s: simd_width from %s", c->name,
                 p.from[CLKV__PK_SIMD_WIDTH].section);
    cr_assert_eq(p.v[ks], c->ksplit, "%s: decode.ksplit", c->name);
    cr_assert_eq(p.from[ks].level, c->ksplit_from, "%s: decode.ksplit from %s", c->name, p.from[ks].section);
    cr_assert_eq(p.v[CLKV__PK_QUIRKS], c->quirks, "%s: quirks", c->name);
    cr_assert_eq(p.from[CLKV__PK_QUIRKS].level, c->quirks_from, "%s: quirks from %s", c->name,
                 p.from[CLKV__PK_QUIRKS].section);
    /* every origin names a real file:line, and every value the default sets is present */
    for (int k = 0; k < CLKV__PK_COUNT; k++) {
      if (p.from[k].level == CLKV__PL_NONE) continue;
      cr_assert(strstr(p.from[k].file, ".profile") && p.from[k].line > 0, "%s: %s", c->name, clkv__profile_key_name(k));
    }
    cr_assert(p.description[0], "%s has a description", c->name);
  }
}

Test(platform, apply_fills_what_the_driver_left_and_honours_quirks) {
  /* NVIDIA without a warp-size answer: 32 from the profile (was hand-coded in device.c) */
  clkv_device_info d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_NVIDIA, "nvidia-turing", "NVIDIA T4");
  clkv_error err;
  cr_assert_eq(clkv__profile_apply(&d, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(d.subgroup_size, 32);
  cr_assert_eq(d.local_mem_bytes, 48 * 1024);
  cr_assert_str_eq(d.profile, "arch nvidia-turing > vendor NVIDIA > default");
  cr_assert_str_eq(d.quirks, "");
  cr_assert_eq(d.max_workgroup_size, 1024);
  /* what the driver reports stands; AMD's 256 work-item limit applies */
  d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "amd-rdna", "gfx1100");
  d.subgroup_size = 32, d.local_mem_bytes = 65536, d.vec_width_float = 1;
  cr_assert_eq(clkv__profile_apply(&d, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(d.subgroup_size, 32);
  cr_assert_eq(d.vec_width_float, 1);
  cr_assert_eq(d.max_workgroup_size, 256);
  cr_assert_str_eq(d.quirks, "wg_limit_256");
  /* Mali: local memory is global memory */
  d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_ARM, "mali-valhall", "Mali-G78 MP24");
  cr_assert_eq(clkv__profile_apply(&d, &err), CLKV_OK, "%s", err.message);
  cr_assert(d.local_mem_is_global);
  cr_assert_eq(d.subgroup_size, 16);
  /* the text form names every origin */
  char *t = clkv_device_profile(&d, &err);
  cr_assert(t, "%s", err.message);
  cr_assert(strstr(t, "simd_width = 16  # arch mali-valhall, platforms/arm.profile:"), "%s", t);
  cr_assert(strstr(t, "quirks = local_mem_in_global  # vendor ARM, platforms/arm.profile:"), "%s", t);
  cr_assert(strstr(t, "# local_mem_kib: not set by any profile"), "%s", t);
  free(t);
}

/* ---- overrides and precedence ---- */
static const char pocl_override[] =
    "# a user's pocl.profile\n"
    "[vendor PoCL]\n"
    "[arch pocl-cpu]\n"
    "description = tried here\n"
    "decode.rg = 8\n"
    "quirks = local_mem_in_global, no_fp16, no_subgroups\n";

Test(platform, override_dir_replaces_adds_and_wins_over_builtin_but_not_tuning_or_env) {
  char dir[64], cache[64];
  make_dir(dir, sizeof dir);
  make_dir(cache, sizeof cache);
  write_file(dir, "pocl.profile", pocl_override, strlen(pocl_override));
  const char *extra = "[vendor Apple]\n[arch apple]\nsimd_width = 32\n";
  write_file(dir, "apple.profile", extra, strlen(extra));
  write_file(dir, "notes.txt", "not a profile", 13);
  setenv("CLKV_PLATFORMS_DIR", dir, 1);
  clkv_error err;
  clkv__profile p;
  clkv_device_info d = dev(CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pocl-cpu", "pthread");
  d.has_fp16 = d.has_subgroups = 1;
  cr_assert_eq(clkv__profile_lookup(&d, &p, &err), CLKV_OK, "%s", err.message);
  const int rg = key("decode.rg"), tt = key("prefill.tt");
  cr_assert_eq(p.v[rg], 8);
  char want[200];
  snprintf(want, sizeof want, "%s/pocl.profile", dir);
  cr_assert_str_eq(p.from[rg].file, want);
  cr_assert_eq(p.from[rg].line, 5);
  cr_assert_eq(p.from[tt].level, CLKV__PL_DEFAULT, "the replaced file no longer sets prefill.tt");
  cr_assert_str_eq(p.description, "tried here");
  cr_assert_eq(clkv__profile_apply(&d, &err), CLKV_OK, "%s", err.message);
  cr_assert(!d.has_fp16 && !d.has_subgroups, "no_fp16 and no_subgroups are honoured");
  cr_assert_str_eq(d.quirks, "local_mem_in_global no_fp16 no_subgroups");
  clkv_device_info a = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_APPLE, "apple", "Apple M1");
  cr_assert_eq(clkv__profile_lookup(&a, &p, &err), CLKV_OK, "%s", err.message);
  cr_assert_str_eq(p.applied, "arch apple > vendor Apple > default");
  cr_assert_eq(p.v[CLKV__PK_SIMD_WIDTH], 32);

  /* precedence on the real device: env > tuning file > profile > built-in */
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.cache_dir = cache;
  clkv_runtime *rt;
  cr_assert_eq(clkv_runtime_create(&rp, &rt, &err), CLKV_OK, "%s", err.message);
  if (strcmp(rt->info.arch, "pocl-cpu")) {
    clkv_runtime_free(rt);
    remove_dir(dir);
    remove_dir(cache);
    cr_skip_test("not a PoCL CPU device");
  }
  clkv__tunables t;
  char src[1200];
  unsetenv("CLKV_MV_RG");
  cr_assert_eq(clkv__tunables_load(rt, &t, src, sizeof src), 0);
  cr_assert_eq(t.mv[CLKV__PH_DECODE].rg, 8, "profile over built-in (4)");
  cr_assert_eq(t.mv[CLKV__PH_PREFILL].tt, 4, "the [default] value where the override sets none");
  clkv__tunables file = t;
  file.mv[CLKV__PH_DECODE].rg = 2;
  cr_assert_eq(clkv__tuning_save(rt, &file, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(clkv__tunables_load(rt, &t, src, sizeof src), 1);
  cr_assert_eq(t.mv[CLKV__PH_DECODE].rg, 2, "tuning file over profile");
  setenv("CLKV_MV_RG", "16", 1);
  cr_assert_eq(clkv__tunables_load(rt, &t, src, sizeof src), 1);
  cr_assert_eq(t.mv[CLKV__PH_DECODE].rg, 16, "environment over tuning file");
  unsetenv("CLKV_MV_RG");
  clkv_runtime_free(rt);
  unsetenv("CLKV_PLATFORMS_DIR");
  remove_dir(dir);
  remove_dir(cache);
}

Test(platform, broken_override_fails_device_listing_with_file_line) {
  char dir[64];
  make_dir(dir, sizeof dir);
  const char *bad = "[vendor PoCL]\n[arch pocl-cpu]\nsimd_widht = 8\n";
  write_file(dir, "pocl.profile", bad, strlen(bad));
  setenv("CLKV_PLATFORMS_DIR", dir, 1);
  clkv_device_info *devs = NULL;
  size_t n = 0;
  clkv_error err;
  cr_assert_eq(clkv_devices_list(&devs, &n, &err), CLKV_ERR_FORMAT);
  char want[200];
  snprintf(want, sizeof want, "%s/pocl.profile:3: unknown key 'simd_widht'", dir);
  cr_assert(strstr(err.message, want), "%s", err.message);
  static const char with_nul[] = "[vendor PoCL]\nsimd_width = 8\0\n";
  write_file(dir, "pocl.profile", with_nul, sizeof with_nul - 1);
  cr_assert_eq(clkv_devices_list(&devs, &n, &err), CLKV_ERR_FORMAT);
  cr_assert(strstr(err.message, "NUL byte"), "%s", err.message);
  remove_dir(dir);
  setenv("CLKV_PLATFORMS_DIR", dir, 1); /* gone */
  cr_assert_eq(clkv_devices_list(&devs, &n, &err), CLKV_ERR_IO);
  cr_assert(strstr(err.message, "CLKV_PLATFORMS_DIR"), "%s", err.message);
  unsetenv("CLKV_PLATFORMS_DIR");
  cr_assert_eq(clkv_devices_list(&devs, &n, &err), CLKV_OK, "%s", err.message);
  free(devs);
}

/* ---- malformed and hostile input ---- */
typedef struct bad_case {
  const char *text;
  int line;
  const char *needle;
} bad_case;

Test(platform, malformed_profiles_give_file_line_errors) {
  static char long_line[400], long_desc[400];
  memset(long_line, 0, sizeof long_line);
  snprintf(long_line, sizeof long_line, "[default]\n# %0300d\n", 0);
  snprintf(long_desc, sizeof long_desc, "[default]\ndescription = %0200d\n", 0);
  const bad_case bad[] = {
      {"[default]\nsimd_width = 3\n", 2, "simd_width = 3: must be 0 or a power of two"},
      {"[default]\nfoo = 1\n", 2, "unknown key 'foo' (known: simd_width"},
      {"simd_width = 4\n", 1, "outside any section"},
      {"[default]\n\n[default]\n", 3, "[default] is already defined at bad.profile:1"},
      {"[vendor Acme]\n", 1, "unknown vendor 'Acme' (one of: AMD, NVIDIA"},
      {"[arch amd-rnda]\n", 1, "unknown architecture 'amd-rnda'"},
      {"[device Radeon VII]\n", 1, "needs a [vendor NAME] section"},
      {"[default]\ndecode.ksplit = 12\n", 2, "a power of two from 1 to 4096"},
      {"[default]\ndecode.rg = 0\n", 2, "decode.rg = 0: must be from 1 to 4096"},
      {"[default]\ndecode.rg = -1\n", 2, "not a whole number"},
      {"[default]\ndecode.rg = 99999999999\n", 2, "not a whole number"},
      {"[default]\ntq = 1e3\n", 2, "not a whole number"},
      {"[default]\nsimd_width\n", 2, "expected 'key = value'"},
      {"[default]\nsimd_width =  # nothing\n", 2, "simd_width has no value"},
      {"[default]\nsimd_width = 4\r\nsimd_width = 8\r\n", 3, "set twice in this section (first at line 2)"},
      {"[default]\nquirks = fast_mode\n", 2, "unknown quirk 'fast_mode' (known: local_mem_in_global"},
      {"[default]\nquirks = none, no_fp16\n", 2, "'none' cannot be combined"},
      {"[default\n", 1, "must end with ']'"},
      {"[]\n", 1, "unknown section []"},
      {"[weird x]\n", 1, "unknown section [weird]"},
      {"[arch]\n", 1, "[arch] needs a name"},
      {"[default x]\n", 1, "[default] takes no name"},
      {"[vendor AMD]\n[vendor NVIDIA]\n", 2, "a second [vendor] section in one file (the first is at line 1)"},
      {long_line, 2, "line longer than 255 characters"},
      {long_desc, 2, "description longer than 127 characters"},
      {"[default]\nsimd_width = 4\x01\n", 2, "control character 0x01"},
      {"# only a comment\n", 0, "bad.profile: no section in the file"},
  };
  clkv_device_info d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "amd-gcn", "gfx906");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    clkv__pfile f = {"bad.profile", bad[i].text};
    clkv__profile p;
    clkv_error err;
    cr_assert_eq(clkv__profile_lookup_in(&f, 1, &d, &p, &err), CLKV_ERR_FORMAT, "case %zu accepted", i);
    char where[64];
    snprintf(where, sizeof where, bad[i].line ? "bad.profile:%d: " : "bad.profile: ", bad[i].line);
    cr_assert(!strncmp(err.message, where, strlen(where)), "case %zu: want %s, got %s", i, where, err.message);
    cr_assert(strstr(err.message, bad[i].needle), "case %zu: want '%s' in: %s", i, bad[i].needle, err.message);
  }
  /* across files: a second [arch], a device pattern twice, no [default] at all */
  clkv__pfile two[2] = {{"a.profile", "[default]\n[arch adreno]\n"}, {"b.profile", "[arch adreno]\n"}};
  clkv__profile p;
  clkv_error err;
  cr_assert_eq(clkv__profile_lookup_in(two, 2, &d, &p, &err), CLKV_ERR_FORMAT);
  cr_assert(strstr(err.message, "b.profile:1: [arch adreno] is already defined at a.profile:2"), "%s", err.message);
  clkv__pfile dup = {"c.profile", "[default]\n[vendor ARM]\n[device Mali-G72]\n[device mali-g72]\n"};
  cr_assert_eq(clkv__profile_lookup_in(&dup, 1, &d, &p, &err), CLKV_ERR_FORMAT);
  cr_assert(strstr(err.message, "c.profile:4: [device mali-g72] is already defined"), "%s", err.message);
  clkv__pfile nodef = {"d.profile", "[vendor AMD]\nsimd_width = 64\n"};
  cr_assert_eq(clkv__profile_lookup_in(&nodef, 1, &d, &p, &err), CLKV_ERR_FORMAT);
  cr_assert(strstr(err.message, "no [default] section"), "%s", err.message);
  /* comments, blank lines, CRLF, tabs and a final line without a newline are fine */
  clkv__pfile ok = {"ok.profile", "# c\r\n\r\n[default]\t# c\r\n\tsimd_width\t=\t8 # c\r\nquirks = no_fp16,no_subgroups"};
  cr_assert_eq(clkv__profile_lookup_in(&ok, 1, &d, &p, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(p.v[CLKV__PK_SIMD_WIDTH], 8);
  cr_assert_eq(p.from[CLKV__PK_SIMD_WIDTH].line, 4);
  cr_assert_eq(p.v[CLKV__PK_QUIRKS], Q(NO_FP16) | Q(NO_SUBGROUPS));
}

static uint64_t next(uint64_t *s) { /* a 64-bit LCG; the high bits */
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

Test(platform, hostile_input_never_crashes) {
  /* odd iterations: random pieces and bytes; even: plausible lines, sometimes one byte changed */
  static const char *const pieces[] = {"[", "]", "default", "vendor ", "arch ", "device ", "AMD", "amd-gcn",
                                       "=", " ", "\t", "\n", "\r", "#", "simd_width", "quirks", "none",
                                       ",", "decode.ksplit", "description", "64", "0", "-", "\x01", "\xff",
                                       "99999999999", "Mali-G71"};
  static const char *const lines[] = {"[vendor ARM]", "[arch mali-bifrost]", "[device Mali-G71]", "[arch adreno]",
                                      "simd_width = 16", "decode.ksplit = 32", "quirks = no_fp16, wg_limit_256",
                                      "description = a GPU", "# comment", "", "tk = 4096", "att_wg = 8"};
  uint64_t s = 12345;
  static char text[3000];
  clkv_device_info d = dev(CLKV_DEVICE_GPU, CLKV_VENDOR_ARM, "mali-bifrost", "Mali-G71 MP2");
  unsigned ok = 0;
  for (int iter = 0; iter < 4000; iter++) {
    size_t len = 0;
    int n = (int)(next(&s) % 40);
    for (int i = 0; i < n; i++) {
      uint64_t r = next(&s);
      const char *piece = iter % 2 ? pieces[r % (sizeof pieces / sizeof pieces[0])]
                                   : lines[r % (sizeof lines / sizeof lines[0])];
      if (iter % 2 && r % 7 == 0) { /* a random byte (never NUL: the text is a C string) */
        text[len++] = (char)(1 + (r >> 8) % 255);
        continue;
      }
      size_t pl = strlen(piece);
      memcpy(text + len, piece, pl);
      len += pl;
      if (iter % 2 == 0) text[len++] = '\n';
    }
    if (iter % 2 == 0 && len && next(&s) % 3 == 0) {
      size_t at = next(&s) % len;
      text[at] = (char)(1 + next(&s) % 255);
    }
    text[len] = '\0';
    clkv__pfile f[2] = {{"hostile.profile", text}, {"default.profile", "[default]\n"}};
    clkv__profile p;
    clkv_error err;
    clkv_status st = clkv__profile_lookup_in(f, 2, &d, &p, &err);
    if (st == CLKV_OK) ok++;
    else
      cr_assert(st == CLKV_ERR_FORMAT && strstr(err.message, ".profile"), "iteration %d: %s", iter, err.message);
  }
  cr_assert_gt(ok, 0, "some random files are valid");
  /* larger than the 64 KiB limit */
  static char big[70000];
  memset(big, '#', sizeof big - 1);
  clkv__pfile f = {"big.profile", big};
  clkv__profile p;
  clkv_error err;
  cr_assert_eq(clkv__profile_lookup_in(&f, 1, &d, &p, &err), CLKV_ERR_FORMAT);
  cr_assert(strstr(err.message, "big.profile: larger than 65536 bytes"), "%s", err.message);
}

/* ---- the PoCL device here ---- */
typedef struct ids {
  int32_t v[64];
  int n;
} ids;

static int on_id(void *u, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  ids *o = u;
  if (o->n < 64) o->v[o->n++] = id;
  return 0;
}

/* Greedy tokens of a tiny model with the launch shapes the current profiles give. */
static ids greedy(clkv_runtime *rt, const char *path, const int32_t *prompt, int n, clkv__tunables *tun) {
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = 128;
  clkv_model *m;
  clkv_context *c;
  clkv_error err;
  cr_assert_eq(clkv_model_load(rt, path, &mp, &m, &err), CLKV_OK, "%s", err.message);
  *tun = m->tun;
  cr_assert_eq(clkv_context_create(m, NULL, &c, &err), CLKV_OK, "%s", err.message);
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 24;
  ids out = {.n = 0};
  cr_assert_eq(clkv_generate_ids(c, prompt, n, &gp, on_id, &out, NULL), CLKV_OK, "%s", clkv_last_error(c));
  clkv_context_free(c);
  clkv_model_free(m);
  return out;
}

Test(platform, pocl_device_gets_pocl_cpu_profile_and_the_same_tokens_as_builtin) {
  char dir[64], strip[64], cache[64], path[200];
  make_dir(dir, sizeof dir);
  make_dir(strip, sizeof strip);
  make_dir(cache, sizeof cache);
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.cache_dir = cache; /* no tuning file: the profile's shapes */
  clkv_runtime *rt;
  clkv_error err;
  cr_assert_eq(clkv_runtime_create(&rp, &rt, &err), CLKV_OK, "%s", err.message);
  if (!strstr(rt->info.platform_name, "Portable Computing Language") || rt->info.type != CLKV_DEVICE_CPU) {
    clkv_runtime_free(rt);
    cr_skip_test("not a PoCL CPU device");
  }
  cr_assert_str_eq(rt->info.arch, "pocl-cpu");
  cr_assert_str_eq(rt->info.profile, "arch pocl-cpu > vendor PoCL > default");
  cr_assert_str_eq(rt->info.quirks, "local_mem_in_global soft_half");

  ref_tiny_params tp = ref_tiny_default();
  snprintf(path, sizeof path, "%s/tiny.gguf", dir);
  cr_assert_eq(ref_tiny_write(&tp, path, &err), CLKV_OK, "%s", err.message);
  int32_t prompt[20];
  for (int i = 0; i < 20; i++) prompt[i] = (int32_t)((i * 29 + 3) % (tp.n_vocab - 2));
  clkv__gguf_file *f;
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  ref_model *ref = ref_model_load(f, 128, &err);
  cr_assert(ref, "%s", err.message);
  int32_t want[24];
  cr_assert_eq(ref_generate_greedy(ref, prompt, 20, 24, -1, want), 24);

  clkv__tunables with_profile, builtin;
  ids a = greedy(rt, path, prompt, 20, &with_profile);
  /* profiles that set no tunables: the built-in shapes, as before profiles existed */
  const char *no_tunables[2] = {"[default]\n", "[vendor PoCL]\n[arch pocl-cpu]\n"};
  write_file(strip, "default.profile", no_tunables[0], strlen(no_tunables[0]));
  write_file(strip, "pocl.profile", no_tunables[1], strlen(no_tunables[1]));
  setenv("CLKV_PLATFORMS_DIR", strip, 1);
  ids b = greedy(rt, path, prompt, 20, &builtin);
  unsetenv("CLKV_PLATFORMS_DIR");
  cr_assert(!memcmp(&with_profile, &builtin, sizeof builtin), "pocl-cpu reproduces the built-in CPU shapes");
  /* the engine stops at <|eos|>, the reference does not: compare what the engine made */
  cr_assert(a.n > 0 && a.n <= 24);
  cr_assert_eq(b.n, a.n);
  for (int i = 0; i < a.n; i++) {
    cr_assert_eq(a.v[i], want[i], "token %d differs from the reference", i);
    cr_assert_eq(b.v[i], a.v[i], "token %d differs between profile and built-in shapes", i);
  }
  ref_model_free(ref);
  clkv__gguf_close(f);
  clkv_runtime_free(rt);
  remove_dir(dir);
  remove_dir(strip);
  remove_dir(cache);
}

/* fuzz_profile.c — libFuzzer harness: the platform-profile parser and lookup. The input is
 * a selector byte and a profile file that replaces or adds to the embedded default.profile
 * (as a file in $CLKV_PLATFORMS_DIR does), looked up for one of four devices, and the
 * merged profile printed back as profile text. */
#include "fuzz.h"
#include "platform.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct clkv__kernel_source { /* the embedded profiles (cmake/embed_kernels.cmake) */
  const char *name;
  const char *src;
};
extern const struct clkv__kernel_source clkv__profile_sources[];

static clkv_device_info device(clkv_device_type type, clkv_vendor vendor, const char *arch,
                               const char *name) {
  clkv_device_info d;
  memset(&d, 0, sizeof d);
  d.type = type;
  d.vendor = vendor;
  snprintf(d.arch, sizeof d.arch, "%s", arch);
  snprintf(d.name, sizeof d.name, "%s", name);
  d.max_workgroup_size = 1024;
  return d;
}

/* The embedded file named name (its text), or "" */
static const char *embedded(const char *name) {
  for (const struct clkv__kernel_source *e = clkv__profile_sources; e->name; e++)
    if (!strcmp(e->name, name)) return e->src;
  return "";
}

int clkv_fuzz_profile(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 16) return 0;
  char *text = malloc(size);
  memcpy(text, data + 1, size - 1);
  text[size - 1] = 0;
  /* data[0]: the device looked up (bits 0-1), and whether the input replaces
   * default.profile (bit 2) or adds a file to it, as $CLKV_PLATFORMS_DIR can */
  const clkv_device_info devs[] = {
      device(CLKV_DEVICE_CPU, CLKV_VENDOR_POCL, "pocl-cpu", "cpu-haswell"),
      device(CLKV_DEVICE_GPU, CLKV_VENDOR_NVIDIA, "nvidia-ampere", "NVIDIA A100"),
      device(CLKV_DEVICE_GPU, CLKV_VENDOR_AMD, "amd-rdna", "gfx1100"),
      device(CLKV_DEVICE_GPU, CLKV_VENDOR_UNKNOWN, "gpu", "fuzz")};
  const clkv_device_info *d = &devs[data[0] & 3];
  clkv__pfile files[2] = {{"default.profile", embedded("default.profile")}, {"fuzz.profile", text}};
  const size_t n = (data[0] & 4) ? 1 : 2;
  if (n == 1) files[0].text = text;
  clkv__profile p;
  clkv_error err;
  err.message[0] = 0;
  if (clkv__profile_lookup_in(files, n, d, &p, &err) == CLKV_OK) {
    free(clkv__profile_text(&p, d));
  } else if (!err.message[0]) {
    abort(); /* a refusal says why */
  }
  free(text);
  return 0;
}

#ifndef CLKV_FUZZ_REPLAY
CLKV_FUZZ_TARGET(clkv_fuzz_profile)
#endif

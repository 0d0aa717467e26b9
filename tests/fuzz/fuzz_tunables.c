/* fuzz_tunables.c — libFuzzer harness: the tuning-file parser (`clkv tune`'s
 * "key=value" lines). What it accepts must be valid, survive the writer and parse back to
 * the same values. */
#include "fuzz.h"
#include "tune/tunables.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int clkv_fuzz_tunables(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = 0;
  static clkv__tunables defaults; /* a CPU's: the profile lookup once, not per input */
  static int have_defaults;
  if (!have_defaults) {
    clkv_device_info d;
    memset(&d, 0, sizeof d);
    d.type = CLKV_DEVICE_CPU;
    d.max_workgroup_size = 1024;
    clkv__default_tunables(&d, &defaults);
    have_defaults = 1;
  }
  clkv__tunables t = defaults;
  if (clkv__tunables_parse(text, &t) == 0) {
    for (int id = 0; id < CLKV__TUN_COUNT; id++)
      if (!clkv__tunable_valid(id, (long)clkv__tunable_get(&t, id))) abort();
    (void)clkv__tunables_fit(&t, 1024);
    char *printed = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&printed, &len);
    clkv__tunables_print(f, &t);
    fclose(f);
    clkv__tunables u = defaults;
    if (clkv__tunables_parse(printed, &u) != 0 || memcmp(&t, &u, sizeof t)) abort();
    free(printed);
  }
  free(text);
  return 0;
}

#ifndef CLKV_FUZZ_REPLAY
CLKV_FUZZ_TARGET(clkv_fuzz_tunables)
#endif

/* test_util.h — what several suites share: a runtime with a scratch directory per suite,
 * a runtime with its own cache directory, and running the clkv command built beside the
 * test program. */
#ifndef CLKV_TEST_UTIL_H
#define CLKV_TEST_UTIL_H

#include "clkv.h"

#include <stddef.h>

/* Suite fixture: tu_rt is a runtime on the default device, tu_tmpdir a fresh directory
 * /tmp/clkv-<name>-XXXXXX; tu_fini frees both. */
extern clkv_runtime *tu_rt;
extern char tu_tmpdir[256];
void tu_init(const char *name);
void tu_fini(void);

/* A profiling runtime whose cache (programs, tuning files) is dir; fails the test if none. */
clkv_runtime *tu_new_runtime(const char *dir);

/* The default real model: $CLKV_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf in the
 * source tree; NULL when it cannot be read (the test then skips). */
const char *tu_real_model(void);

/* Gemma 3 270M (scripts/setup fetches it): $CLKV_GEMMA, else
 * models/gemma-3-270m-q4_k_m.gguf in the source tree; NULL when the default file is absent
 * (the test then skips). A $CLKV_GEMMA that cannot be read fails the test: it was asked for. */
const char *tu_gemma_model(void);

/* Runs `clkv ARGS` (the binary beside this test program) with stderr joined to stdout into
 * out (NUL-terminated); returns its exit status, or 128 + the signal that ended it. */
int tu_run_cli(const char *args, char *out, size_t cap);

#endif /* CLKV_TEST_UTIL_H */

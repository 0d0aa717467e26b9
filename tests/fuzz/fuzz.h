/* fuzz.h — the fuzz harnesses (tests/fuzz/fuzz_<target>.c): one function per target that
 * runs one input and aborts when an invariant breaks. libFuzzer calls them through
 * LLVMFuzzerTestOneInput (scripts/fuzz); the Criterion suite replays the kept inputs
 * through them (tests/test_fuzz_regress.c, built with CLKV_FUZZ_REPLAY). */
#ifndef CLKV_FUZZ_H
#define CLKV_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int clkv_fuzz_gguf(const uint8_t *data, size_t size);
int clkv_fuzz_tokenizer(const uint8_t *data, size_t size);
int clkv_fuzz_chat(const uint8_t *data, size_t size);
int clkv_fuzz_profile(const uint8_t *data, size_t size);
int clkv_fuzz_tunables(const uint8_t *data, size_t size);
int clkv_fuzz_kvblock(const uint8_t *data, size_t size);

/* libFuzzer's entry point, defined by each harness unless CLKV_FUZZ_REPLAY. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#define CLKV_FUZZ_TARGET(fn)                                            \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {        \
    return fn(data, size);                                              \
  }

#endif /* CLKV_FUZZ_H */

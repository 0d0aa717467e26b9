/* types.c — the GGML tensor types by id, built from the rows of kernels/contract.h (name,
 * elements and bytes per block, runnable), overflow-checked row sizes, and the runnable
 * types' slots and names. */
#include "format/gguf.h"

#define ROW(name, id, elems, bytes, run) [id] = {#name, elems, bytes, run},
static const clkv__ggml_type_info k_types[GGML_T_COUNT] = {CLKV_GGML_TYPES(ROW)};
#undef ROW

const clkv__ggml_type_info *clkv__ggml_type_get(uint32_t id) {
  if (id >= GGML_T_COUNT || !k_types[id].name) return NULL;
  return &k_types[id];
}

uint64_t clkv__ggml_row_bytes(uint32_t id, uint64_t n) {
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(id);
  if (!ti || n % ti->block_size) return 0;
  uint64_t blocks = n / ti->block_size;
  if (blocks > UINT64_MAX / ti->type_size) return 0;
  return blocks * ti->type_size;
}

int clkv__wtype_slot(uint32_t type) {
  if (type >= GGML_T_COUNT || !k_types[type].runnable) return -1;
  int slot = 0;
  for (uint32_t id = 0; id < type; id++) slot += k_types[id].runnable;
  return slot;
}

uint32_t clkv__wtype_of_slot(int slot) {
  for (uint32_t id = 0; id < GGML_T_COUNT; id++)
    if (k_types[id].runnable && slot-- == 0) return id;
  return GGML_T_COUNT;
}

/* ", F32" for a runnable row, nothing for the others: one string literal at compile time. */
#define IF_RUN_1(text) text
#define IF_RUN_0(text)
#define NAME(name, id, elems, bytes, run) IF_RUN_##run(", " #name)
static const char k_names[] = "" CLKV_GGML_TYPES(NAME);
#undef NAME

const char *clkv__wtype_names(void) { return k_names + 2; /* past the first ", " */ }

/* clkv__ggml_types.c — the table of GGML tensor types by id (name, elements per block, bytes
 * per block, whether clkv computes with it) and overflow-checked row sizes. */
#include "format/gguf.h"

/* Sizes as in ggml's type traits (ggml.c / ggml-common.h). */
static const clkv__ggml_type_info k_types[GGML_T_COUNT] = {
    [GGML_T_F32] = {"F32", 1, 4, 1},
    [GGML_T_F16] = {"F16", 1, 2, 1},
    [GGML_T_Q4_0] = {"Q4_0", 32, 18, 1},
    [GGML_T_Q4_1] = {"Q4_1", 32, 20, 1},
    [GGML_T_Q5_0] = {"Q5_0", 32, 22, 0},
    [GGML_T_Q5_1] = {"Q5_1", 32, 24, 0},
    [GGML_T_Q8_0] = {"Q8_0", 32, 34, 1},
    [GGML_T_Q8_1] = {"Q8_1", 32, 36, 0},
    [GGML_T_Q2_K] = {"Q2_K", 256, 84, 0},
    [GGML_T_Q3_K] = {"Q3_K", 256, 110, 0},
    [GGML_T_Q4_K] = {"Q4_K", 256, 144, 0},
    [GGML_T_Q5_K] = {"Q5_K", 256, 176, 0},
    [GGML_T_Q6_K] = {"Q6_K", 256, 210, 0},
    [GGML_T_Q8_K] = {"Q8_K", 256, 292, 0},
    [GGML_T_IQ2_XXS] = {"IQ2_XXS", 256, 66, 0},
    [GGML_T_IQ2_XS] = {"IQ2_XS", 256, 74, 0},
    [GGML_T_IQ3_XXS] = {"IQ3_XXS", 256, 98, 0},
    [GGML_T_IQ1_S] = {"IQ1_S", 256, 50, 0},
    [GGML_T_IQ4_NL] = {"IQ4_NL", 32, 18, 0},
    [GGML_T_IQ3_S] = {"IQ3_S", 256, 110, 0},
    [GGML_T_IQ2_S] = {"IQ2_S", 256, 82, 0},
    [GGML_T_IQ4_XS] = {"IQ4_XS", 256, 136, 0},
    [GGML_T_I8] = {"I8", 1, 1, 0},
    [GGML_T_I16] = {"I16", 1, 2, 0},
    [GGML_T_I32] = {"I32", 1, 4, 0},
    [GGML_T_I64] = {"I64", 1, 8, 0},
    [GGML_T_F64] = {"F64", 1, 8, 0},
    [GGML_T_IQ1_M] = {"IQ1_M", 256, 56, 0},
    [GGML_T_BF16] = {"BF16", 1, 2, 1},
    [GGML_T_TQ1_0] = {"TQ1_0", 256, 54, 0},
    [GGML_T_TQ2_0] = {"TQ2_0", 256, 66, 0},
    [39] = {"MXFP4", 32, 17, 0},
};

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

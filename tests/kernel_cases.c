/* kernel_cases.c — the kernel cases shared by the tests and `clkv_bench ops` (kernel_cases.h). */
#include "kernel_cases.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const kc_matvec kc_matvecs[] = {
    /* name              epi                bench rows × cols  test rows × cols */
    {"attn_output", CLKV__EPI_ADD, KC_DIM, KC_DIM, 70, 96, 0},
    {"ffn_up", CLKV__EPI_ADD, KC_FF, KC_DIM, 38, 64, 0}, /* one of gate/up, without SwiGLU */
    {"ffn_gate_up", CLKV__EPI_SWIGLU, 2 * KC_FF, KC_DIM, 70, 96, 0},
    {"ffn_down", CLKV__EPI_ADD, KC_DIM, KC_FF, 46, 160, 0},
    {"output", CLKV__EPI_STORE, KC_VOCAB, KC_DIM, 70, 96, 1},
};
const size_t kc_n_matvecs = N_OF(kc_matvecs);

const clkv__mv_shape kc_test_shapes[] = {
    {.ksplit = 1, .rg = 4, .rows = 2, .tt = 1}, /* CPU decode default */
    {.ksplit = 1, .rg = 4, .rows = 2, .tt = 8}, /* CPU prefill default */
    /* GPU-like: 4 threads share a row, local reduction, odd token tile */
    {.ksplit = 4, .rg = 2, .rows = 2, .tt = 3},
    {.ksplit = 8, .rg = 1, .rows = 1, .tt = 1},
    /* int8 activations (decode): portable, and x86's where the compiler targets AVX2 */
    {.ksplit = 1, .rg = 4, .rows = 2, .tt = 1, .dot = 2},
    {.ksplit = 4, .rg = 2, .rows = 2, .tt = 1, .dot = 3},
    /* prefill's outer product (prefill.form 2): the PoCL default, and a small one */
    {.ksplit = 1, .rg = 8, .rows = 8, .tt = 16, .form = 2},
    {.ksplit = 1, .rg = 2, .rows = 2, .tt = 8, .form = 2},
    /* the outer product's int8 tiles (prefill.dot 3 under form 2): VNNI where the host has it
     * (else the float outer product), then the portable dot with 8-token vectors */
    {.ksplit = 1, .rg = 8, .rows = 8, .tt = 32, .dot = 3, .form = 2},
    {.ksplit = 1, .rg = 2, .rows = 2, .tt = 8, .dot = 2, .form = 2},
};
const size_t kc_n_test_shapes = N_OF(kc_test_shapes);

int kc_test_shape_for(size_t s, uint32_t t) {
  if (kc_test_shapes[s].dot > 1) /* the int8 shapes: the types that take them */
    return kc_test_shapes[s].form == 2 ? CLKV_INT8_TILE_TYPE(t) : CLKV_INT8_TYPE(t);
  if (t == GGML_T_F32 || t == GGML_T_F16 || t == GGML_T_BF16 || t == GGML_T_Q8_0 ||
      t == GGML_T_Q4_0 || t == GGML_T_Q4_1 || t == GGML_T_Q4_K)
    return 1;
  /* the decode dot (TT 1), the dequantizing one with a split row, the outer product */
  return s == 0 || s == 2 || kc_test_shapes[s].form == 2;
}

const kc_attn kc_attns[] = {{"clkv_attn_paged", 0, NULL}, {"clkv_attn_prefill", 1, NULL}};
const size_t kc_n_attns = N_OF(kc_attns);
const unsigned kc_bench_ctx[] = {128, 512, 2048};
const size_t kc_n_bench_ctx = N_OF(kc_bench_ctx);
const kc_heads kc_test_heads[] = {{"GQA", 4, 2}, {"multi-head", 2, 2}, {"multi-query", 4, 1}};
const size_t kc_n_test_heads = N_OF(kc_test_heads);

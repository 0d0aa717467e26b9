/* test_quant.c — fp16/bf16 conversions and quantize/dequantize round trips. */
#include "gguf.h"

#include <criterion/criterion.h>

Test(quant, fp16_basic) {
  cr_assert_eq(clkv_fp32_to_fp16(1.0f), 0x3c00);
  cr_assert_eq(clkv_fp16_to_fp32(0x3c00), 1.0f);
}

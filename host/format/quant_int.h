/* quant_int.h — the block encoders of host/format/quant_k.c, used by the encoder table in
 * host/format/quant.c: each encodes one block (32 or 256 floats) of its type. */
#ifndef CLKV_QUANT_INT_H
#define CLKV_QUANT_INT_H

#include "format/gguf.h"

void clkv__enc_q5_0(const float *x, uint8_t *b);
void clkv__enc_q5_1(const float *x, uint8_t *b);
void clkv__enc_iq4_nl(const float *x, uint8_t *b);
void clkv__enc_iq4_xs(const float *x, uint8_t *b);
void clkv__enc_q2_k(const float *x, uint8_t *b);
void clkv__enc_q3_k(const float *x, uint8_t *b);
void clkv__enc_q4_k(const float *x, uint8_t *b);
void clkv__enc_q5_k(const float *x, uint8_t *b);
void clkv__enc_q6_k(const float *x, uint8_t *b);

#endif /* CLKV_QUANT_INT_H */

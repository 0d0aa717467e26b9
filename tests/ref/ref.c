/* ref.c — the plain-C reference (the oracle): single F32 ops and a llama2.c-style forward
 * pass over a GGUF llama model dequantized to F32. Clarity over speed; accumulations in
 * double (matvec dot products, rmsnorm sum of squares, softmax sums). */
#include "ref.h"

#include "clkv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- single ops ---- */

void ref_matvec(const float *W, const float *x, float *y, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *w = W + (size_t)r * (size_t)cols;
    double acc = 0.0;
    for (int c = 0; c < cols; c++) acc += (double)w[c] * (double)x[c];
    y[r] = (float)acc;
  }
}

/* out = x / sqrt(mean(x^2) + eps) * w; the sum of squares in double, the scale in float
 * (as ggml's rms_norm followed by a multiply by the weight). out may alias x. */
void ref_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
  float scale = 1.0f / sqrtf((float)(ss / n) + eps);
  for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* llama.cpp NORM mode (ggml rope mode 0): theta_i = pos * base^(-2i/head_dim) rotates the
 * adjacent pair (x[2i], x[2i+1]). */
void ref_rope(float *x, int head_dim, int pos, float base) {
  for (int i = 0; i < head_dim / 2; i++) {
    double theta = (double)pos * pow((double)base, -2.0 * i / head_dim);
    float c = (float)cos(theta), s = (float)sin(theta);
    float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

void ref_softmax(float *x, int n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int i = 1; i < n; i++)
    if (x[i] > mx) mx = x[i];
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sum);
}

void ref_swiglu(float *out, const float *gate, const float *up, int n) {
  for (int i = 0; i < n; i++) {
    float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

void ref_attention_head(float *out, const float *q, const float *k, const float *v, int n_ctx,
                        int head_dim, int k_stride, int v_stride) {
  float *score = n_ctx > 0 ? malloc((size_t)n_ctx * sizeof *score) : NULL;
  if (!score) { /* nothing to attend to (or no memory): a zero output */
    memset(out, 0, (size_t)head_dim * sizeof *out);
    return;
  }
  const double scale = 1.0 / sqrt((double)head_dim);
  for (int t = 0; t < n_ctx; t++) {
    const float *kt = k + (size_t)t * (size_t)k_stride;
    double dot = 0.0;
    for (int d = 0; d < head_dim; d++) dot += (double)q[d] * (double)kt[d];
    score[t] = (float)(dot * scale);
  }
  ref_softmax(score, n_ctx);
  for (int d = 0; d < head_dim; d++) {
    double acc = 0.0;
    for (int t = 0; t < n_ctx; t++) acc += (double)score[t] * (double)v[(size_t)t * (size_t)v_stride + d];
    out[d] = (float)acc;
  }
  free(score);
}

float ref_round_f16(float x) { return clkv_fp16_to_fp32(clkv_fp32_to_fp16(x)); }

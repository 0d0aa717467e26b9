/* embed.cl — token embedding lookup: X[t] = dequant(E[ids[t]]) · EMB_SCALE, E in its stored
 * type (EMB_SCALE: sqrt(dim) for Gemma, else 1). Global size (cols / 32, n_tok): one
 * 32-element block per work-item. */
#ifndef WTYPE
#define WTYPE GGML_T_Q8_0
#endif
#ifndef EMB_SCALE
#define EMB_SCALE 1.0f
#endif

__kernel void clkv_get_rows(__global const uchar *E, uint cols, uint n_vocab,
                            __global const int *ids, __global float *X) {
  const uint b = get_global_id(0);
  const uint t = get_global_id(1);
  int id = ids[t];
  if (id < 0 || (uint)id >= n_vocab) id = 0; /* the host validates ids; never read out of bounds */
  const size_t row_bytes = clkv_row_bytes(WTYPE, cols);
  float8 w0, w1, w2, w3;
  clkv_deq32(E + (size_t)id * row_bytes, b, WTYPE, &w0, &w1, &w2, &w3);
  __global float *x = X + (size_t)t * cols + b * 32;
  w0 *= EMB_SCALE, w1 *= EMB_SCALE, w2 *= EMB_SCALE, w3 *= EMB_SCALE;
  vstore8(w0, 0, x);
  vstore8(w1, 1, x);
  vstore8(w2, 2, x);
  vstore8(w3, 3, x);
}

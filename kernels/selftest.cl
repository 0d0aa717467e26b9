/* selftest.cl - a trivial kernel the runtime tests build and run: y[i] += a * x[i]. */
__kernel void clkv_selftest_axpy(__global const float *x, __global float *y, float a, uint n) {
  uint i = get_global_id(0);
  if (i < n) y[i] += a * x[i];
}

/* y[i] = h[i] as float through clkv_half_bits (kernels/common.cl): the runtime tests compare
 * it with the C conversion for all 65536 fp16 values. */
__kernel void clkv_selftest_half(__global const ushort *h, __global float *y, uint n) {
  uint i = get_global_id(0);
  if (i < n) y[i] = clkv_half_bits(h[i]);
}

/* The same through clkv_ld_half8, vload_half8 or the bit operations as built (n % 8 == 0). */
__kernel void clkv_selftest_half8(__global const half *h, __global float *y, uint n) {
  uint i = get_global_id(0);
  if (8 * i < n) vstore8(clkv_ld_half8(h, i), i, y);
}

/* The same through clkv_ld_half (the block scales' load), one value per work-item. */
__kernel void clkv_selftest_ld_half(__global const half *h, __global float *y, uint n) {
  uint i = get_global_id(0);
  if (i < n) y[i] = clkv_ld_half((const __global uchar *)h, i);
}

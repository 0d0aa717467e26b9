/* selftest.cl - a trivial kernel the runtime tests build and run: y[i] += a * x[i]. */
__kernel void clkv_selftest_axpy(__global const float *x, __global float *y, float a, uint n) {
  uint i = get_global_id(0);
  if (i < n) y[i] += a * x[i];
}

/* test_quant.c — fp16/bf16 conversions (exact cases, every half value), quantize→dequantize
 * error bounds per type, every runnable row of kernels/contract.h encodable and decodable, and
 * a peer check of clkv__dequantize_row against the `gguf` Python package on the real model's
 * tensors and on random blocks of every type clkv decodes. */
#include "format/gguf.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(quant, fp16_exact_cases) {
  const struct { float f; uint16_t h; } cases[] = {
      {0.0f, 0x0000},     {-0.0f, 0x8000},          {1.0f, 0x3c00},
      {-2.0f, 0xc000},    {0.5f, 0x3800},           {65504.0f, 0x7bff},
      {65519.0f, 0x7bff}, /* below the halfway point to 65536 */
      {65520.0f, 0x7c00}, /* halfway: ties to even → inf */
      {1e6f, 0x7c00},     {-1e6f, 0xfc00},          {INFINITY, 0x7c00},
      {-INFINITY, 0xfc00}, {0x1p-14f, 0x0400},      /* smallest normal */
      {0x1p-24f, 0x0001}, /* smallest subnormal */  {0x1p-25f, 0x0000}, /* tie → even (0) */
      {0x1.8p-25f, 0x0001}, {0x1.8p-24f, 0x0002},  /* tie 1.5 → 2 */
      {0x1.ff8p-15f, 0x03ff}, /* largest subnormal */ {1e-10f, 0x0000},
      {1.0f + 0x1p-11f, 0x3c00}, /* tie → even */  {1.0f + 0x1.8p-10f, 0x3c02},
      {1.0f + 0x3p-11f, 0x3c02}, /* tie → even (up) */ {0.1f, 0x2e66},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert_eq(clkv__fp32_to_fp16(cases[i].f), cases[i].h, "case %zu: %a → %04x, want %04x", i,
                 (double)cases[i].f, clkv__fp32_to_fp16(cases[i].f), cases[i].h);
  cr_assert_eq(clkv__fp16_to_fp32(0x0001), 0x1p-24f);
  cr_assert_eq(clkv__fp16_to_fp32(0x03ff), 0x1.ff8p-15f);
  cr_assert_eq(clkv__fp16_to_fp32(0x7bff), 65504.0f);
  cr_assert(isinf(clkv__fp16_to_fp32(0xfc00)) && clkv__fp16_to_fp32(0xfc00) < 0);
  cr_assert(isnan(clkv__fp16_to_fp32(0x7e00)));
  uint16_t hn = clkv__fp32_to_fp16(NAN);
  cr_assert((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0, "nan stays nan: %04x", hn);
  cr_assert(signbit(clkv__fp16_to_fp32(0x8000)));
}

Test(quant, fp16_every_value_round_trips) {
  for (uint32_t h = 0; h < 65536; h++) {
    float f = clkv__fp16_to_fp32((uint16_t)h);
    if (isnan(f)) {
      cr_assert(((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff));
      cr_assert(isnan(clkv__fp16_to_fp32(clkv__fp32_to_fp16(f))));
      continue;
    }
    cr_assert_eq(clkv__fp32_to_fp16(f), h, "%04x → %a → %04x", h, (double)f, clkv__fp32_to_fp16(f));
  }
  /* values between two halves round to the nearer (checked against double arithmetic) */
  uint64_t s = 42;
  for (int i = 0; i < 100000; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    uint32_t bits = (uint32_t)s & 0x477fffff; /* |x| < 65536, any sign */
    float f;
    memcpy(&f, &bits, 4);
    uint16_t h = clkv__fp32_to_fp16(f);
    if ((h & 0x7fff) == 0x7c00) {
      cr_assert_geq(fabsf(f), 65520.0f, "%a overflows to inf", (double)f);
      continue;
    }
    double got = clkv__fp16_to_fp32(h), err = fabs(got - f);
    double up = clkv__fp16_to_fp32((uint16_t)(h + 1)), down = h & 0x7fff ? clkv__fp16_to_fp32((uint16_t)(h - 1)) : got;
    if ((h & 0x7fff) < 0x7bff) cr_assert_leq(err, fabs(up - f), "%a", (double)f);
    cr_assert_leq(err, fabs(down - f), "%a", (double)f);
  }
}

Test(quant, bf16_cases_and_round_trip) {
  cr_assert_eq(clkv__fp32_to_bf16(1.0f), 0x3f80);
  cr_assert_eq(clkv__fp32_to_bf16(-2.0f), 0xc000);
  cr_assert_eq(clkv__fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);  /* tie → even */
  cr_assert_eq(clkv__fp32_to_bf16(1.0f + 0x3p-8f), 0x3f82);  /* tie → even (up) */
  cr_assert_eq(clkv__fp32_to_bf16(1.0f + 0x1p-7f + 0x1p-9f), 0x3f81);
  cr_assert_eq(clkv__fp32_to_bf16(INFINITY), 0x7f80);
  cr_assert_eq(clkv__fp32_to_bf16(3.4e38f), 0x7f80); /* rounds past the largest bf16 */
  uint16_t n = clkv__fp32_to_bf16(NAN);
  cr_assert((n & 0x7f80) == 0x7f80 && (n & 0x7f));
  for (uint32_t h = 0; h < 65536; h++) {
    float f = clkv__bf16_to_fp32((uint16_t)h);
    if (!isnan(f)) cr_assert_eq(clkv__fp32_to_bf16(f), h);
  }
}

static void fill(float *x, size_t n, uint64_t seed, float scale, float offset) {
  for (size_t i = 0; i < n; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    x[i] = offset + scale * ((float)(seed >> 40) / (float)(1ull << 24) * 2.0f - 1.0f);
  }
}

/* Quantizes n floats and decodes them; checks each block's error against bound(block). */
static void round_trip(uint32_t type, const float *x, size_t n, float (*bound)(const float *, int)) {
  const clkv__ggml_type_info *ti = clkv__ggml_type_get(type);
  size_t bytes = (size_t)clkv__ggml_row_bytes(type, n);
  unsigned char *q = malloc(bytes);
  float *y = malloc(n * sizeof *y);
  cr_assert(q && y);
  cr_assert_eq(clkv__quantize_row(type, x, q, n), bytes, "%s", ti->name);
  cr_assert_eq(clkv__dequantize_row(type, q, y, n), CLKV_OK);
  for (size_t b = 0; b < n / ti->block_size; b++) {
    const float *xb = x + b * ti->block_size;
    float lim = bound(xb, (int)ti->block_size);
    for (uint32_t j = 0; j < ti->block_size; j++)
      cr_assert_leq(fabsf(y[b * ti->block_size + j] - xb[j]), lim, "%s block %zu elem %u: %g vs %g",
                    ti->name, b, j, (double)y[b * ti->block_size + j], (double)xb[j]);
  }
  free(q);
  free(y);
}

static float amax_of(const float *x, int n) {
  float a = 0;
  for (int i = 0; i < n; i++) a = fmaxf(a, fabsf(x[i]));
  return a;
}
static float bound_f32(const float *x, int n) { return (void)x, (void)n, 0.0f; }
static float bound_f16(const float *x, int n) { return (void)n, fabsf(*x) * 0x1p-11f + 0x1p-25f; }
static float bound_bf16(const float *x, int n) { return (void)n, fabsf(*x) * 0x1p-8f; }
/* Q8_0: half a step (amax/127) plus the fp16 rounding of d (times 127). */
static float bound_q8_0(const float *x, int n) { float a = amax_of(x, n); return a / 254.0f + a * 0x1p-11f + 1e-7f; }
/* Q4_0: the far end clips to 7/8 of amax: error up to amax/8 (+ fp16 of d). */
static float bound_q4_0(const float *x, int n) { float a = amax_of(x, n); return a / 8.0f + a * 0x1p-10f + 1e-7f; }
/* Q4_1: half a step (range/15), plus fp16 rounding of d and m. */
static float bound_q4_1(const float *x, int n) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
  return (hi - lo) / 30.0f + (fabsf(lo) + (hi - lo)) * 0x1p-10f + 1e-7f;
}

/* bound_f16/bf16 are per element; use them on single-element "blocks" (block size 1). */
Test(quant, round_trip_error_bounds) {
  enum { N = 32 * 64 };
  static float x[N];
  const float scales[][2] = {{1.0f, 0.0f}, {0.01f, 0.0f}, {5.0f, 3.0f}, {1e-3f, -0.2f}};
  for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
    fill(x, N, 7 + s, scales[s][0], scales[s][1]);
    x[5] = 0.0f; /* exact zeros and a constant block survive */
    for (int j = 64; j < 96; j++) x[j] = scales[s][1];
    round_trip(GGML_T_F32, x, N, bound_f32);
    round_trip(GGML_T_F16, x, N, bound_f16);
    round_trip(GGML_T_BF16, x, N, bound_bf16);
    round_trip(GGML_T_Q8_0, x, N, bound_q8_0);
    round_trip(GGML_T_Q4_0, x, N, bound_q4_0);
    round_trip(GGML_T_Q4_1, x, N, bound_q4_1);
  }
}

Test(quant, reference_encodings) {
  float x[32];
  unsigned char q[36];
  for (int j = 0; j < 32; j++) x[j] = (float)(j - 16); /* -16..15 */
  /* Q4_0: max by magnitude is -16, d = -16/-8 = 2, q = x/2 + 8.5 truncated */
  cr_assert_eq(clkv__quantize_row(GGML_T_Q4_0, x, q, 32), 18);
  cr_assert_eq(q[0] | (q[1] << 8), clkv__fp32_to_fp16(2.0f));
  cr_assert_eq(q[2], 0 | (8 << 4)); /* x[0] = -16 → 0; x[16] = 0 → 8 */
  cr_assert_eq(q[2 + 15], 8 | (15 << 4)); /* x[15] = -1 → 8 (7.5+... truncated: -0.5+8.5=8); x[31] = 15 → 15 */
  /* Q4_1: min -16, d = 31/15 */
  cr_assert_eq(clkv__quantize_row(GGML_T_Q4_1, x, q, 32), 20);
  cr_assert_eq(q[0] | (q[1] << 8), clkv__fp32_to_fp16(31.0f / 15.0f));
  cr_assert_eq(q[2] | (q[3] << 8), clkv__fp32_to_fp16(-16.0f));
  cr_assert_eq(q[4] & 0xf, 0);
  cr_assert_eq(q[4 + 15] >> 4, 15);
  /* Q8_0: d = 16/127, q = round(x/d) */
  cr_assert_eq(clkv__quantize_row(GGML_T_Q8_0, x, q, 32), 34);
  cr_assert_eq(q[0] | (q[1] << 8), clkv__fp32_to_fp16(16.0f / 127.0f));
  cr_assert_eq((int8_t)q[2], -127);
  cr_assert_eq((int8_t)q[2 + 16], 0);
  cr_assert_eq((int8_t)q[2 + 31], (int8_t)roundf(15.0f * 127.0f / 16.0f));
  /* an all-zero block decodes to zeros */
  memset(x, 0, sizeof x);
  float y[32];
  for (uint32_t t = GGML_T_Q4_0; t <= GGML_T_Q8_0; t++) {
    if (!clkv__ggml_type_get(t) || !clkv__quantize_row(t, x, q, 32)) continue;
    cr_assert_eq(clkv__dequantize_row(t, q, y, 32), CLKV_OK);
    for (int j = 0; j < 32; j++) cr_assert_eq(y[j], 0.0f);
  }
}

Test(quant, unsupported_and_bad_lengths) {
  float x[256] = {0}, y[256];
  unsigned char q[512] = {0};
  cr_assert_eq(clkv__dequantize_row(GGML_T_IQ2_XXS, q, y, 256), CLKV_ERR_UNSUPPORTED);
  cr_assert_eq(clkv__dequantize_row(99, q, y, 32), CLKV_ERR_UNSUPPORTED);
  cr_assert_eq(clkv__dequantize_row(GGML_T_Q4_1, q, y, 33), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(clkv__quantize_row(GGML_T_IQ2_XXS, x, q, 256), 0); /* no encoder */
  cr_assert_eq(clkv__quantize_row(GGML_T_Q4_K, x, q, 32), 0); /* not a whole super-block */
  cr_assert_eq(clkv__quantize_row(GGML_T_Q8_0, x, q, 31), 0);
  cr_assert_eq(clkv__quantize_row(99, x, q, 32), 0);
}

/* Every runnable type (kernels/contract.h) has an encoder and a decoder: the kernel tests and
 * the benchmarks make their weights with them, and the loader reads norms through them. */
Test(quant, every_runnable_row_encodes_and_decodes) {
  float x[512], y[512];
  unsigned char q[4096];
  for (int i = 0; i < 512; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  for (int s = 0; s < CLKV__N_WTYPES; s++) {
    const uint32_t t = clkv__wtype_of_slot(s);
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(t);
    const uint64_t n = 2 * (uint64_t)(ti->block_size > 256 ? ti->block_size : 256);
    cr_assert_leq(n, 512);
    cr_assert_eq(clkv__quantize_row(t, x, q, n), clkv__ggml_row_bytes(t, n), "%s", ti->name);
    cr_assert_eq(clkv__dequantize_row(t, q, y, n), CLKV_OK, "%s", ti->name);
    /* 2 and 3 bits a value (Q2_K, Q3_K): 4 or 8 levels over a group's range */
    const float lim = t == GGML_T_Q2_K ? 0.5f : t == GGML_T_Q3_K ? 0.3f : 0.2f;
    for (uint64_t i = 0; i < n; i++) cr_assert(isfinite(y[i]) && fabsf(y[i] - x[i]) < lim, "%s", ti->name);
  }
}

/* ---- peer check against the gguf Python package ---- */
/* Reads exactly `bytes` bytes of dir/name (malloc'd) and removes the file. */
static void *read_peer(const char *dir, const char *name, size_t bytes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "rb");
  cr_assert_not_null(fp, "missing %s", path);
  void *v = malloc(bytes ? bytes : 1);
  cr_assert_not_null(v);
  cr_assert_eq(fread(v, 1, bytes, fp), bytes, "short %s", path);
  cr_assert_eq(fgetc(fp), EOF, "%s is longer than expected", path);
  fclose(fp);
  unlink(path);
  return v;
}

/* |got - want| <= 1e-6 * max|want| over the whole array. */
static void compare(const char *what, const float *got, const float *want, size_t n) {
  float amax = 0.0f, diff = 0.0f;
  for (size_t i = 0; i < n; i++) {
    amax = fmaxf(amax, fabsf(want[i]));
    diff = fmaxf(diff, fabsf(got[i] - want[i]));
  }
  cr_assert_leq(diff, 1e-6f * amax, "%s: max abs diff %g (max |x| %g)", what, (double)diff, (double)amax);
  cr_assert_gt(amax, 0.0f, "%s: all zero", what);
}

static void peer_check(const char *py, const char *model) {
  char dir[] = "/tmp/clkv_quant_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  /* every row clkv decodes, as ID:ELEMS:BYTES */
  char cmd[4096];
  int len = snprintf(cmd, sizeof cmd, "'%s' '%s/tests/peer/dequant_peer.py' '%s' '%s'", py,
                     CLKV_SOURCE_DIR, model, dir);
  int n_rows = 0;
  float zero_out[256];
  static const unsigned char zero_block[512];
  for (uint32_t id = 0; id < GGML_T_COUNT; id++) {
    const clkv__ggml_type_info *ti = clkv__ggml_type_get(id);
    if (!ti || clkv__dequantize_row(id, zero_block, zero_out, ti->block_size) != CLKV_OK) continue;
    len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %u:%u:%u", id, ti->block_size, ti->type_size);
    n_rows++;
  }
  cr_assert_lt((size_t)len, sizeof cmd);
  cr_assert_eq(system(cmd), 0, "peer failed: %s", cmd);
  clkv__gguf_file *f = NULL;
  clkv_error err;
  cr_assert_eq(clkv__gguf_open(model, &f, &err), CLKV_OK, "%s", err.message);
  char path[1100], line[512];
  snprintf(path, sizeof path, "%s/manifest.txt", dir);
  FILE *mf = fopen(path, "r");
  cr_assert_not_null(mf);
  int n_model = 0, n_raw = 0, n_skip = 0;
  while (fgets(line, sizeof line, mf)) {
    char name[256], file[256], file2[256], why[256];
    unsigned long long n;
    unsigned type;
    if (sscanf(line, "model %255s %llu %255s", name, &n, file) == 3) {
      const clkv__gguf_tensor *t = clkv__gguf_find_tensor(f, name);
      cr_assert(t && n <= t->n_elements, "%s", name);
      float *want = read_peer(dir, file, n * sizeof(float)), *got = malloc(n * sizeof *got);
      cr_assert_eq(clkv__dequantize_row(t->type, t->data, got, n), CLKV_OK, "%s", name);
      compare(name, got, want, n);
      free(want), free(got);
      n_model++;
    } else if (sscanf(line, "raw %u %llu %255s %255s", &type, &n, file, file2) == 4) {
      size_t bytes = (size_t)clkv__ggml_row_bytes(type, n);
      cr_assert_gt(bytes, 0);
      void *raw = read_peer(dir, file, bytes);
      float *want = read_peer(dir, file2, n * sizeof(float)), *got = malloc(n * sizeof *got);
      cr_assert_eq(clkv__dequantize_row(type, raw, got, n), CLKV_OK, "type %u", type);
      compare(clkv__ggml_type_get(type)->name, got, want, n);
      free(raw), free(want), free(got);
      n_raw++;
    } else if (sscanf(line, "skip %u %255[^\n]", &type, why) == 2) {
      /* a type the package cannot decode, or sizes it knows differently: only for a type
       * clkv does not run (Q8_1: the package still has the old 40-byte block) */
      const clkv__ggml_type_info *ti = clkv__ggml_type_get(type);
      cr_assert(ti && !ti->runnable, "runnable type %u has no peer: %s", type, why);
      n_skip++;
    } else {
      cr_assert_fail("bad manifest line: %s", line);
    }
  }
  fclose(mf);
  clkv__gguf_close(f);
  cr_assert_geq(n_model, 3);
  cr_assert_geq(n_raw, 8);
  cr_assert_eq(n_raw + n_skip, n_rows, "the peer answered %d of %d rows", n_raw + n_skip, n_rows);
  snprintf(path, sizeof path, "%s/manifest.txt", dir);
  unlink(path);
  rmdir(dir);
}

static const char *default_model(void) {
  const char *model = getenv("CLKV_MODEL");
  return model ? model : CLKV_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

Test(quant, peer_gguf_python, .timeout = 300) {
  const char *py = getenv("CLKV_PYTHON"), *model = default_model();
  if (!py || access(py, X_OK) != 0) cr_skip_test("CLKV_PYTHON is not set");
  if (access(model, R_OK) != 0) cr_skip_test("model absent: %s", model);
  peer_check(py, model);
}

/* Real K-quant blocks: Gemma 3 270M Q4_K_M (Q8_0, Q5_0, Q4_K, Q6_K, F32), where scripts/setup
 * put it beside the default model. */
Test(quant, peer_gguf_python_k_quant_mix, .timeout = 300) {
  const char *py = getenv("CLKV_PYTHON"), *model = default_model(), *slash = strrchr(model, '/');
  char path[1024];
  snprintf(path, sizeof path, "%.*s/gemma-3-270m-q4_k_m.gguf", slash ? (int)(slash - model) : 1,
           slash ? model : ".");
  if (!py || access(py, X_OK) != 0) cr_skip_test("CLKV_PYTHON is not set");
  if (access(path, R_OK) != 0) cr_skip_test("model absent: %s", path);
  peer_check(py, path);
}

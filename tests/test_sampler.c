/* test_sampler.c — the sampler (host/sampler.c): greedy and ties, seeded determinism, top-k,
 * top-p, min-p, repetition penalty, empirical frequencies at temperature 1, -inf/NaN logits
 * and a one-token vocabulary. Runs under ASan+UBSan too. */
#include "engine/sampler.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

/* Parameters with every filter off; tests switch on what they exercise. */
static clkv_gen_params plain(float temperature, uint64_t seed) {
  clkv_gen_params p = {0};
  p.max_tokens = 16;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.repeat_last_n = 64;
  p.seed = seed;
  return p;
}

static clkv__sampler *make(const clkv_gen_params *p, int n) {
  clkv__sampler *s = clkv__sampler_new(p, n);
  cr_assert_not_null(s, "clkv__sampler_new(n_vocab=%d) failed", n);
  return s;
}

/* Draws `draws` tokens and counts them into counts[n_vocab]. */
static void draw_counts(clkv__sampler *s, const float *logits, int draws, int *counts) {
  for (int i = 0; i < draws; i++) {
    int32_t t = clkv__sampler_sample(s, logits, NULL, 0);
    counts[t]++;
  }
}

/* The same with a fresh sampler made from p over n tokens. */
static void counts_for(const clkv_gen_params *p, const float *logits, int n, int draws, int *counts) {
  clkv__sampler *s = make(p, n);
  draw_counts(s, logits, draws, counts);
  clkv__sampler_free(s);
}

Test(sampler, rejects_bad_arguments_and_free_null) {
  clkv_gen_params p = plain(0, 1);
  cr_expect_null(clkv__sampler_new(NULL, 10));
  cr_expect_null(clkv__sampler_new(&p, 0));
  clkv__sampler_free(NULL);
}

Test(sampler, greedy_picks_argmax_and_lowest_id_on_ties) {
  clkv_gen_params p = plain(0.0f, 1);
  clkv__sampler *s = make(&p, 6);
  const float a[6] = {0.1f, -3.0f, 2.5f, 0.7f, 2.4f, -1.0f};
  cr_expect_eq(clkv__sampler_sample(s, a, NULL, 0), 2);
  const float tie[6] = {1.0f, 3.0f, -2.0f, 3.0f, 0.0f, 3.0f};
  cr_expect_eq(clkv__sampler_sample(s, tie, NULL, 0), 1);
  clkv__sampler_free(s);
  p.temperature = -1.0f; /* negative temperature is greedy too */
  s = make(&p, 6);
  cr_expect_eq(clkv__sampler_sample(s, tie, NULL, 0), 1);
  clkv__sampler_free(s);
}

Test(sampler, uniform_is_in_unit_interval) {
  clkv_gen_params p = plain(1.0f, 7);
  clkv__sampler *s = make(&p, 2);
  double sum = 0;
  for (int i = 0; i < 10000; i++) {
    double u = clkv__sampler_uniform(s);
    cr_assert(u >= 0.0 && u < 1.0, "u = %f", u);
    sum += u;
  }
  cr_expect(fabs(sum / 10000 - 0.5) < 0.02, "mean %f", sum / 10000);
  clkv__sampler_free(s);
}

Test(sampler, same_seed_same_draws_other_seed_differs) {
  enum { N = 50, DRAWS = 64 };
  float logits[N];
  for (int i = 0; i < N; i++) logits[i] = (float)((i * 37) % 11) * 0.1f; /* fairly flat */
  int32_t a[DRAWS], b[DRAWS], c[DRAWS];
  uint64_t seeds[3] = {42, 42, 43};
  int32_t *outs[3] = {a, b, c};
  for (int k = 0; k < 3; k++) {
    clkv_gen_params p = plain(1.0f, seeds[k]);
    clkv__sampler *s = make(&p, N);
    for (int i = 0; i < DRAWS; i++) outs[k][i] = clkv__sampler_sample(s, logits, NULL, 0);
    clkv__sampler_free(s);
  }
  int differ = 0;
  for (int i = 0; i < DRAWS; i++) {
    cr_expect_eq(a[i], b[i], "draw %d: %d vs %d with the same seed", i, a[i], b[i]);
    differ += a[i] != c[i];
  }
  cr_expect_gt(differ, DRAWS / 4, "seed 43 gave nearly the same draws as seed 42 (%d differ)", differ);
}

Test(sampler, top_k_1_is_greedy) {
  enum { N = 1000 };
  float *logits = malloc(N * sizeof *logits);
  uint64_t x = 99;
  for (int i = 0; i < N; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    logits[i] = (float)(x >> 40) / 16777216.0f * 4.0f;
  }
  clkv_gen_params g = plain(0.0f, 1);
  clkv__sampler *greedy = make(&g, N);
  int32_t want = clkv__sampler_sample(greedy, logits, NULL, 0);
  clkv_gen_params p = plain(1.5f, 5);
  p.top_k = 1;
  clkv__sampler *s = make(&p, N);
  for (int i = 0; i < 200; i++) cr_assert_eq(clkv__sampler_sample(s, logits, NULL, 0), want);
  clkv__sampler_free(s);
  clkv__sampler_free(greedy);
  free(logits);
}

Test(sampler, top_k_keeps_only_the_k_best) {
  const float logits[8] = {0.0f, 1.0f, 0.9f, 0.1f, 1.1f, 0.2f, 0.95f, 0.3f};
  clkv_gen_params p = plain(1.0f, 11);
  p.top_k = 3; /* ids 4, 1, 6 */
  int counts[8] = {0};
  counts_for(&p, logits, 8, 3000, counts);
  for (int i = 0; i < 8; i++) {
    if (i == 4 || i == 1 || i == 6) cr_expect_gt(counts[i], 600, "id %d drawn %d times", i, counts[i]);
    else cr_expect_eq(counts[i], 0, "id %d outside the top 3 drawn %d times", i, counts[i]);
  }
}

Test(sampler, tiny_top_p_keeps_only_the_top_token) {
  const float logits[5] = {0.5f, 0.4f, 0.6f, 0.55f, 0.0f};
  clkv_gen_params p = plain(1.0f, 3);
  p.top_p = 1e-6f;
  clkv__sampler *s = make(&p, 5);
  for (int i = 0; i < 500; i++) cr_assert_eq(clkv__sampler_sample(s, logits, NULL, 0), 2);
  clkv__sampler_free(s);
}

Test(sampler, top_p_keeps_smallest_prefix_reaching_p) {
  /* probabilities 0.5, 0.3, 0.2: p = 0.7 keeps {0, 1} (0.5 < 0.7 <= 0.8) */
  const float logits[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
  clkv_gen_params p = plain(1.0f, 4);
  p.top_p = 0.7f;
  int counts[3] = {0};
  counts_for(&p, logits, 3, 4000, counts);
  cr_expect_eq(counts[2], 0, "token 2 is outside the top-p set, drawn %d times", counts[2]);
  cr_expect(fabs(counts[0] / 4000.0 - 0.625) < 0.03, "renormalized p0 = %f", counts[0] / 4000.0);
}

Test(sampler, min_p_filters_unlikely_tokens) {
  /* probabilities 0.5 0.3 0.15 0.05; min_p 0.2 → threshold 0.1 drops token 3 only */
  const float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
  clkv_gen_params p = plain(1.0f, 8);
  p.min_p = 0.2f;
  int counts[4] = {0};
  counts_for(&p, logits, 4, 5000, counts);
  cr_expect_eq(counts[3], 0, "token 3 (p 0.05 < 0.1) drawn %d times", counts[3]);
  for (int i = 0; i < 3; i++) cr_expect_gt(counts[i], 300, "token %d drawn %d times", i, counts[i]);
}

Test(sampler, repetition_penalty_deterministic_cases) {
  clkv_gen_params p = plain(0.0f, 1);
  p.repeat_penalty = 1.1f;
  p.repeat_last_n = 2;
  clkv__sampler *s = make(&p, 6);
  const int32_t h0[1] = {0};
  /* positive logit divided: 2.0 / 1.1 = 1.818 < 1.9 */
  const float pos[6] = {2.0f, 1.9f, 0, 0, 0, 0};
  cr_expect_eq(clkv__sampler_sample(s, pos, NULL, 0), 0);
  cr_expect_eq(clkv__sampler_sample(s, pos, h0, 1), 1);
  /* negative logit multiplied: -1.0 * 1.1 = -1.1 < -1.05 */
  const float neg[6] = {-1.0f, -1.05f, -5, -5, -5, -5};
  cr_expect_eq(clkv__sampler_sample(s, neg, h0, 1), 1);
  /* penalized once per distinct id: 2.0 / 1.1 = 1.818 > 1.7 (three times would be 1.50) */
  const float once[6] = {2.0f, 1.7f, 0, 0, 0, 0};
  const int32_t h000[2] = {0, 0};
  cr_expect_eq(clkv__sampler_sample(s, once, h000, 2), 0);
  /* only the last repeat_last_n = 2 ids count: token 0 is older */
  const int32_t hold[3] = {0, 4, 5};
  cr_expect_eq(clkv__sampler_sample(s, pos, hold, 3), 0);
  /* ids outside the vocabulary in history are ignored */
  const int32_t hbad[2] = {-3, 99};
  cr_expect_eq(clkv__sampler_sample(s, pos, hbad, 2), 0);
  clkv__sampler_free(s);
  /* logits are not modified */
  cr_expect_eq(pos[0], 2.0f);
}

Test(sampler, repetition_penalty_lowers_chance_when_sampling) {
  const float logits[2] = {1.0f, 1.0f};
  const int32_t hist[1] = {0};
  clkv_gen_params p = plain(1.0f, 21);
  p.repeat_penalty = 2.0f; /* logit 1.0 → 0.5: p0 = 1/(1+e^0.5) = 0.3775 */
  clkv__sampler *s = make(&p, 2);
  int n0 = 0;
  for (int i = 0; i < 10000; i++) n0 += clkv__sampler_sample(s, logits, hist, 1) == 0;
  cr_expect(fabs(n0 / 10000.0 - 0.3775) < 0.02, "penalized token frequency %f", n0 / 10000.0);
  clkv__sampler_free(s);
}

Test(sampler, frequencies_match_probabilities_at_temperature_1) {
  const double want[3] = {0.5, 0.3, 0.2};
  const float logits[3] = {(float)log(0.5), (float)log(0.3), (float)log(0.2)};
  clkv_gen_params p = plain(1.0f, 12345);
  int counts[3] = {0};
  counts_for(&p, logits, 3, 20000, counts);
  for (int i = 0; i < 3; i++)
    cr_expect(fabs(counts[i] / 20000.0 - want[i]) < 0.02, "token %d: %f vs %f", i,
              counts[i] / 20000.0, want[i]);
}

Test(sampler, temperature_sharpens) {
  /* T = 0.5 squares the odds: 0.5^2 : 0.3^2 : 0.2^2 → 0.6579 0.2368 0.1053 */
  const float logits[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
  clkv_gen_params p = plain(0.5f, 77);
  int counts[3] = {0};
  counts_for(&p, logits, 3, 20000, counts);
  cr_expect(fabs(counts[0] / 20000.0 - 0.6579) < 0.02, "p0 = %f", counts[0] / 20000.0);
  cr_expect(fabs(counts[2] / 20000.0 - 0.1053) < 0.02, "p2 = %f", counts[2] / 20000.0);
}

Test(sampler, handles_inf_and_nan_logits) {
  const float l[5] = {-INFINITY, 0.0f, -INFINITY, NAN, 0.0f};
  clkv_gen_params p = plain(1.0f, 2);
  p.top_p = 0.9f;
  p.min_p = 0.01f;
  clkv__sampler *s = make(&p, 5);
  int counts[5] = {0};
  draw_counts(s, l, 2000, counts);
  cr_expect_eq(counts[0] + counts[2] + counts[3], 0, "a -inf/NaN token was drawn");
  cr_expect_gt(counts[1], 0);
  const float all_inf[5] = {-INFINITY, -INFINITY, -INFINITY, NAN, -INFINITY};
  cr_expect_eq(clkv__sampler_sample(s, all_inf, NULL, 0), 0);
  clkv__sampler_free(s);
  p = plain(0.0f, 2);
  s = make(&p, 5);
  cr_expect_eq(clkv__sampler_sample(s, l, NULL, 0), 1);
  cr_expect_eq(clkv__sampler_sample(s, all_inf, NULL, 0), 0);
  clkv__sampler_free(s);
}

Test(sampler, one_token_vocabulary) {
  const float l[1] = {-2.0f};
  const int32_t hist[2] = {0, 0};
  for (int greedy = 0; greedy < 2; greedy++) {
    clkv_gen_params p = plain(greedy ? 0.0f : 0.8f, 9);
    p.top_k = 40;
    p.top_p = 0.5f;
    p.min_p = 0.1f;
    p.repeat_penalty = 1.3f;
    clkv__sampler *s = make(&p, 1);
    for (int i = 0; i < 10; i++) cr_expect_eq(clkv__sampler_sample(s, l, hist, 2), 0);
    clkv__sampler_free(s);
  }
}

Test(sampler, large_vocabulary_top_k) {
  enum { N = 49152 };
  float *l = malloc(N * sizeof *l);
  for (int i = 0; i < N; i++) l[i] = (float)((i * 7919) % N) / (float)N; /* a permutation */
  clkv_gen_params p = plain(1.0f, 5);
  p.top_k = 40;
  clkv__sampler *s = make(&p, N);
  for (int i = 0; i < 200; i++) {
    int32_t t = clkv__sampler_sample(s, l, NULL, 0);
    cr_assert(l[t] >= (float)(N - 40) / (float)N, "id %d (logit %f) is not in the top 40", t, l[t]);
  }
  clkv__sampler_free(s);
  free(l);
}

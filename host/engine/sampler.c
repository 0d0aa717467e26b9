/* sampler.c — next-token sampling: repetition penalty, greedy, top-k (heap selection,
 * O(n log k)), top-p, min-p, temperature, and a draw from a seeded xoshiro256** RNG. */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
  float logit;
  int32_t id;
} cand;

struct clkv__sampler {
  int n_vocab;
  float temperature, top_p, min_p, repeat_penalty;
  int top_k, repeat_last_n;
  uint64_t rng[4];     /* xoshiro256** state, seeded through splitmix64 */
  cand *all;           /* (n_vocab) every token with its penalized logit, indexed by id */
  cand *keep;          /* (n_vocab) the candidates kept, best first */
  double *prob;        /* (n_vocab) probabilities of the kept candidates */
  unsigned char *seen; /* (n_vocab) marks ids already penalized in this call */
};

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

clkv__sampler *clkv__sampler_new(const clkv_gen_params *p, int n_vocab) {
  if (!p || n_vocab < 1) return NULL;
  clkv__sampler *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->n_vocab = n_vocab;
  s->temperature = p->temperature;
  s->top_k = p->top_k;
  s->top_p = p->top_p;
  s->min_p = p->min_p;
  s->repeat_penalty = p->repeat_penalty;
  s->repeat_last_n = p->repeat_last_n;
  uint64_t seed = p->seed;
  for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
  s->all = malloc((size_t)n_vocab * sizeof *s->all);
  s->keep = malloc((size_t)n_vocab * sizeof *s->keep);
  s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
  s->seen = calloc((size_t)n_vocab, 1);
  if (!s->all || !s->keep || !s->prob || !s->seen) {
    clkv__sampler_free(s);
    return NULL;
  }
  return s;
}

void clkv__sampler_free(clkv__sampler *s) {
  if (!s) return;
  free(s->all);
  free(s->keep);
  free(s->prob);
  free(s->seen);
  free(s);
}

double clkv__sampler_uniform(clkv__sampler *s) {
  return (double)(xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0); /* 2^-53 */
}

/* a ranks before b: higher logit, then lower id. */
static int better(cand a, cand b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

static int cmp_best_first(const void *pa, const void *pb) {
  cand a = *(const cand *)pa, b = *(const cand *)pb;
  return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Penalizes (llama.cpp semantics) each distinct id among the last repeat_last_n of history
 * (repeat_last_n < 0: all of it). */
static void apply_penalty(clkv__sampler *s, const int32_t *history, int n_history) {
  if (s->repeat_penalty == 1.0f || s->repeat_penalty <= 0.0f || !history || n_history <= 0) return;
  int n = s->repeat_last_n < 0 ? n_history : s->repeat_last_n;
  if (n > n_history) n = n_history;
  const int32_t *h = history + (n_history - n);
  for (int i = 0; i < n; i++) {
    int32_t id = h[i];
    if (id < 0 || id >= s->n_vocab || s->seen[id]) continue;
    s->seen[id] = 1;
    float *l = &s->all[id].logit;
    *l = *l > 0.0f ? *l / s->repeat_penalty : *l * s->repeat_penalty;
  }
  for (int i = 0; i < n; i++)
    if (h[i] >= 0 && h[i] < s->n_vocab) s->seen[h[i]] = 0;
}

/* Min-heap on `better` (the root is the worst kept candidate). */
static void heap_sift_down(cand *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, w = i;
    if (l < n && better(h[w], h[l])) w = l;
    if (r < n && better(h[w], h[r])) w = r;
    if (w == i) return;
    cand t = h[i];
    h[i] = h[w];
    h[w] = t;
    i = w;
  }
}

static void heap_sift_up(cand *h, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!better(h[p], h[i])) return;
    cand t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

/* Fills s->keep with the best k candidates of s->all, best first. Returns k. */
static int select_top_k(clkv__sampler *s, int k) {
  int n = s->n_vocab;
  if (k <= 0 || k >= n) {
    memcpy(s->keep, s->all, (size_t)n * sizeof *s->keep);
    qsort(s->keep, (size_t)n, sizeof *s->keep, cmp_best_first);
    return n;
  }
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (m < k) {
      s->keep[m] = s->all[i];
      heap_sift_up(s->keep, m++);
    } else if (better(s->all[i], s->keep[0])) {
      s->keep[0] = s->all[i];
      heap_sift_down(s->keep, k, 0);
    }
  }
  qsort(s->keep, (size_t)k, sizeof *s->keep, cmp_best_first);
  return k;
}

/* prob[i] = softmax(keep[i].logit * inv_t) over the first n (keep is best first).
 * Returns the sum of the unnormalized terms (0 when every logit is -inf). */
static double softmax_kept(clkv__sampler *s, int n, double inv_t) {
  double mx = (double)s->keep[0].logit * inv_t, sum = 0.0;
  if (isinf(mx) && mx < 0) return 0.0;
  for (int i = 0; i < n; i++) {
    s->prob[i] = exp((double)s->keep[i].logit * inv_t - mx);
    sum += s->prob[i];
  }
  for (int i = 0; i < n; i++) s->prob[i] /= sum;
  return sum;
}

/* Copies the logits (NaN as -inf) and applies the repetition penalty. */
static void load_logits(clkv__sampler *s, const float *logits, const int32_t *history,
                        int n_history) {
  for (int i = 0; i < s->n_vocab; i++) {
    float l = logits[i];
    s->all[i].logit = isnan(l) ? -INFINITY : l;
    s->all[i].id = i;
  }
  apply_penalty(s, history, n_history);
}

static int32_t argmax(const clkv__sampler *s) { /* first maximum: the lowest id */
  int best = 0;
  for (int i = 1; i < s->n_vocab; i++)
    if (s->all[i].logit > s->all[best].logit) best = i;
  return best;
}

/* The distribution a draw uses: keep[0..m) with prob[0..m) (top-k, top-p, min-p, then the
 * temperature). Returns m; 0 when every logit is -inf (then keep[0] is the lowest id). */
static int kept_dist(clkv__sampler *s) {
  int m = select_top_k(s, s->top_k);
  if (softmax_kept(s, m, 1.0) == 0.0) return 0;
  if (s->top_p < 1.0f) { /* smallest prefix with cumulative probability >= top_p */
    double cum = 0.0;
    int cut = m;
    for (int i = 0; i < m; i++) {
      cum += s->prob[i];
      if (cum >= (double)s->top_p) {
        cut = i + 1;
        break;
      }
    }
    m = cut;
  }
  if (s->min_p > 0.0f) { /* prob_i >= min_p * prob_max; keep is sorted so truncate */
    int cut = 1;
    while (cut < m && s->prob[cut] >= (double)s->min_p * s->prob[0]) cut++;
    m = cut;
  }
  softmax_kept(s, m, 1.0 / (double)s->temperature);
  return m;
}

/* A draw from keep[0..m) with weights w[0..m) summing to total. */
static int32_t draw(clkv__sampler *s, const double *w, int m, double total) {
  double u = clkv__sampler_uniform(s) * total, cum = 0.0;
  int last = 0;
  for (int i = 0; i < m; i++) {
    if (w[i] <= 0.0) continue;
    last = i;
    cum += w[i];
    if (u < cum) return s->keep[i].id;
  }
  return s->keep[last].id; /* rounding left u just above the total */
}

int32_t clkv__sampler_sample(clkv__sampler *s, const float *logits, const int32_t *history,
                            int n_history) {
  load_logits(s, logits, history, n_history);
  if (!(s->temperature > 0.0f)) return argmax(s);
  const int m = kept_dist(s);
  return m ? draw(s, s->prob, m, 1.0) : s->keep[0].id;
}

int32_t clkv__sampler_sample_probs(clkv__sampler *s, const float *logits,
                                   const int32_t *history, int n_history, float *q) {
  load_logits(s, logits, history, n_history);
  memset(q, 0, sizeof(float) * (size_t)s->n_vocab);
  const int m = kept_dist(s);
  if (!m) {
    q[s->keep[0].id] = 1;
    return s->keep[0].id;
  }
  for (int i = 0; i < m; i++) q[s->keep[i].id] = (float)s->prob[i];
  return draw(s, s->prob, m, 1.0);
}

int32_t clkv__sampler_sample_draft(clkv__sampler *s, const float *logits,
                                   const int32_t *history, int n_history, int32_t draft,
                                   const float *q, int *accepted) {
  load_logits(s, logits, history, n_history);
  if (!(s->temperature > 0.0f)) {
    const int32_t best = argmax(s);
    *accepted = best == draft;
    return best;
  }
  const int m = kept_dist(s);
  *accepted = 0;
  if (!m) return s->keep[0].id;
  double p_d = 0.0;
  for (int i = 0; i < m; i++)
    if (s->keep[i].id == draft) p_d = s->prob[i];
  const double q_d = q ? (double)q[draft] : 1.0;
  /* accept with probability min(1, p/q) */
  if (p_d > 0.0 && clkv__sampler_uniform(s) * q_d < p_d) {
    *accepted = 1;
    return draft;
  }
  /* else a draw from the normalized max(0, p - q) (q outside keep adds nothing) */
  double total = 0.0;
  for (int i = 0; i < m; i++) {
    const int32_t id = s->keep[i].id;
    const double qi = q ? (double)q[id] : (id == draft ? 1.0 : 0.0);
    s->prob[i] = s->prob[i] > qi ? s->prob[i] - qi : 0.0;
    total += s->prob[i];
  }
  if (!(total > 0.0)) return s->keep[0].id == draft && m > 1 ? s->keep[1].id : s->keep[0].id;
  return draw(s, s->prob, m, total);
}

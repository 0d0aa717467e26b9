/* test_kv_pool.c — the KV block pool (host/kv/kv_pool.h) against a simulated device: every
 * op the pool emits is executed on arrays standing for device and host blocks, a "forward
 * pass" writes token ids through the block tables, and every sequence must read back exactly
 * its own tokens. Randomized model check, prefix sharing, copy-on-write, eviction orders,
 * exhaustion, swapping, the sliding window, the disk-tier hooks, and the invariant check
 * catching each invariant broken on purpose. */
#include "kv/kv_pool_int.h" /* the invariant test breaks the private state on purpose */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* ---- a simulated device: one int per token slot, -1 = never written ---- */
typedef struct sim {
  clkv__kv_pool *pool;
  int32_t D, H, bt;
  int32_t *dev, *host;
} sim;

static sim sim_new(int32_t D, int32_t H, int32_t bt, int32_t seqs, int32_t mb,
                   clkv__kv_evict_policy pol, int32_t window, uint64_t seed) {
  const clkv__kv_pool_params p = {
      .n_device_blocks = D,
      .n_host_blocks = H,
      .block_tokens = bt,
      .max_seqs = seqs,
      .max_blocks_per_seq = mb,
      .policy = pol,
      .sliding_window = window,
      .prefix_seed = seed,
      .bytes_per_block = 1000,
  };
  sim s = {.pool = NULL, .D = D, .H = H, .bt = bt, .dev = NULL, .host = NULL};
  clkv_error err;
  cr_assert_eq(clkv__kv_pool_create(&p, &s.pool, &err), CLKV_OK, "%s", err.message);
  s.dev = malloc(sizeof(int32_t) * (size_t)D * (size_t)bt);
  s.host = malloc(sizeof(int32_t) * ((size_t)H + 1) * (size_t)bt);
  memset(s.dev, 0xff, sizeof(int32_t) * (size_t)D * (size_t)bt);
  memset(s.host, 0xff, sizeof(int32_t) * ((size_t)H + 1) * (size_t)bt);
  return s;
}

static void sim_free(sim *s) {
  clkv__kv_pool_free(s->pool);
  free(s->dev);
  free(s->host);
}

/* Executes the pending ops in order; returns how many there were. */
static size_t sim_ops(sim *s) {
  const clkv__kv_op *ops;
  size_t n;
  clkv__kv_pool_take_ops(s->pool, &ops, &n);
  const size_t sz = sizeof(int32_t) * (size_t)s->bt;
  for (size_t i = 0; i < n; i++) {
    const clkv__kv_op *o = &ops[i];
    const int src_host = o->kind == CLKV_KV_OP_MOVE_H2D, dst_host = o->kind == CLKV_KV_OP_MOVE_D2H;
    cr_assert(o->src >= 0 && o->src < (src_host ? s->H : s->D), "op %zu src %d", i, o->src);
    cr_assert(o->dst >= 0 && o->dst < (dst_host ? s->H : s->D), "op %zu dst %d", i, o->dst);
    memcpy((dst_host ? s->host : s->dev) + (size_t)o->dst * s->bt,
           (src_host ? s->host : s->dev) + (size_t)o->src * s->bt, sz);
  }
  return n;
}

/* The forward pass: writes tokens[from, to) of the sequence through its device table. */
static void sim_write(sim *s, int seq, int32_t from, int32_t to) {
  const int32_t *tab = clkv__kv_seq_block_table(s->pool, seq);
  const int32_t *tok = clkv__kv_seq_tokens(s->pool, seq);
  cr_assert(tab && tok);
  for (int32_t p = from; p < to; p++) {
    int32_t b = tab[p / s->bt];
    cr_assert(b >= 0 && b < s->D, "position %d has no block", p);
    s->dev[(size_t)b * s->bt + p % s->bt] = tok[p];
  }
}

/* Every position of the sequence (in whichever tier) holds its expected token. */
static void sim_verify(sim *s, int seq, const int32_t *expect, int32_t len, int32_t window) {
  cr_assert_eq(clkv__kv_seq_len(s->pool, seq), len, "seq %d length", seq);
  if (len) cr_assert_arr_eq(clkv__kv_seq_tokens(s->pool, seq), expect, sizeof(int32_t) * (size_t)len);
  for (int32_t p = 0; p < len; p++) {
    clkv_kv_tier t = CLKV_KV_TIER_DEVICE;
    int32_t b = clkv__kv_seq_block(s->pool, seq, p / s->bt, &t);
    if (b < 0) {
      cr_assert(window > 0 && (p / s->bt + 1) * s->bt <= len - window,
                "seq %d position %d lost its block", seq, p);
      continue;
    }
    int32_t v = (t == CLKV_KV_TIER_HOST ? s->host : s->dev)[(size_t)b * s->bt + p % s->bt];
    cr_assert_eq(v, expect[p], "seq %d position %d reads %d, expected %d (tier %d block %d)",
                 seq, p, v, expect[p], (int)t, b);
  }
}

static void check(const sim *s) {
  clkv_error err;
  cr_assert_eq(clkv__kv_pool_check(s->pool, &err), CLKV_OK, "%s", err.message);
}

/* Prefill a new sequence the way the engine does; returns its id, or -1 when it does not
 * fit (the sequence is freed again). */
static int prefill(sim *s, const int32_t *tok, int32_t n, int32_t *cached) {
  int seq;
  clkv_error err;
  if (clkv__kv_seq_new(s->pool, &seq, &err) != CLKV_OK) return -1;
  int32_t c = -1;
  cr_assert_eq(clkv__kv_seq_prefill_begin(s->pool, seq, tok, n, &c, &err), CLKV_OK, "%s", err.message);
  cr_assert(c >= 0 && c < n && c % s->bt == 0, "cached %d of %d", c, n);
  if (cached) *cached = c;
  if (clkv__kv_seq_append(s->pool, seq, tok + c, n - c, &err) != CLKV_OK) {
    cr_assert_eq(err.status, CLKV_ERR_CONTEXT_FULL);
    clkv__kv_seq_free(s->pool, seq);
    sim_ops(s);
    return -1;
  }
  sim_ops(s);
  sim_write(s, seq, c, n);
  clkv__kv_seq_commit(s->pool, seq);
  return seq;
}

static int32_t *seq_table_copy(sim *s, int seq, int32_t n) {
  int32_t *t = malloc(sizeof(int32_t) * (size_t)n);
  memcpy(t, clkv__kv_seq_block_table(s->pool, seq), sizeof(int32_t) * (size_t)n);
  return t;
}

/* ---- the randomized model check ---- */
static uint64_t rng_next(uint64_t *x) {
  *x ^= *x >> 12;
  *x ^= *x << 25;
  *x ^= *x >> 27;
  return *x * 0x2545F4914F6CDD1DULL;
}
static int32_t rnd(uint64_t *x, int32_t n) { return (int32_t)(rng_next(x) % (uint64_t)n); }

#define MS 12     /* sequences */
#define MAXTOK 400

typedef struct model_seq {
  int live, swapped;
  int32_t len, tok[MAXTOK];
} model_seq;

static void model_check_all(sim *s, model_seq *m, int32_t window) {
  check(s);
  /* Expected refcount of every block: its number of table entries over all sequences. */
  int32_t *want = calloc((size_t)(s->D + s->H), sizeof(int32_t));
  for (int i = 0; i < MS; i++) {
    cr_assert_eq(clkv__kv_seq_swapped(s->pool, i), m[i].live && m[i].swapped);
    if (!m[i].live) {
      cr_assert_eq(clkv__kv_seq_len(s->pool, i), -1);
      continue;
    }
    sim_verify(s, i, m[i].tok, m[i].len, window);
    for (int32_t j = 0; j * s->bt < m[i].len; j++) {
      clkv_kv_tier t;
      int32_t b = clkv__kv_seq_block(s->pool, i, j, &t);
      if (b >= 0) want[(t == CLKV_KV_TIER_HOST ? s->D : 0) + b]++;
    }
  }
  for (int32_t g = 0; g < s->D + s->H; g++) {
    int host = g >= s->D;
    int32_t rc = clkv__kv_block_refcount(s->pool, host ? CLKV_KV_TIER_HOST : CLKV_KV_TIER_DEVICE,
                                        host ? g - s->D : g);
    cr_assert_eq(rc, want[g], "block %d refcount %d, tables hold %d", g, rc, want[g]);
  }
  free(want);
}

static void random_run(int32_t D, int32_t H, int32_t bt, clkv__kv_evict_policy pol,
                       int32_t window, uint64_t seed, int steps) {
  sim s = sim_new(D, H, bt, MS, MAXTOK / bt, pol, window, 0x1234);
  model_seq *m = calloc(MS, sizeof *m);
  uint64_t x = seed;
  int32_t prompt[MAXTOK];
  uint64_t hits = 0, cows = 0, released = 0, rollbacks = 0;
  clkv_error err;
  for (int step = 0; step < steps; step++) {
    int i = rnd(&x, MS), a = rnd(&x, 100);
    model_seq *q = &m[i];
    if (a < 25) { /* new sequence from a prompt family */
      int32_t fam = rnd(&x, 4), keep = rnd(&x, 5 * bt), n = keep + 1 + rnd(&x, 2 * bt);
      for (int32_t k = 0; k < n; k++) prompt[k] = k < keep ? fam * 1000 + k : 50000 + rnd(&x, 9);
      int32_t c = 0;
      int seq = prefill(&s, prompt, n, &c);
      if (seq >= 0) {
        cr_assert(!m[seq].live);
        m[seq].live = 1;
        m[seq].swapped = 0;
        m[seq].len = n;
        memcpy(m[seq].tok, prompt, sizeof(int32_t) * (size_t)n);
        hits += (uint64_t)c;
      }
    } else if (a < 55 && q->live && !q->swapped) { /* append */
      int32_t n = 1 + rnd(&x, bt + 3);
      if (q->len + n > MAXTOK) n = MAXTOK - q->len;
      for (int32_t k = 0; k < n; k++) prompt[k] = 60000 + rnd(&x, 99);
      clkv__kv_pool_stats before;
      clkv__kv_pool_stats_get(s.pool, &before);
      clkv_status st = clkv__kv_seq_append(s.pool, i, prompt, n, &err);
      if (st == CLKV_OK) {
        sim_ops(&s);
        memcpy(q->tok + q->len, prompt, sizeof(int32_t) * (size_t)n);
        sim_write(&s, i, q->len, q->len + n);
        q->len += n;
        clkv__kv_seq_commit(s.pool, i);
        if (rnd(&x, 3) == 0) { /* speculative decoding: the last r drafts were rejected */
          const int32_t r = rnd(&x, n + 1);
          cr_assert_eq(clkv__kv_seq_truncate(s.pool, i, q->len - r, &err), CLKV_OK, "%s", err.message);
          q->len -= r;
          rollbacks += r > 0;
        }
      } else {
        cr_assert_eq(st, CLKV_ERR_CONTEXT_FULL, "%s", err.message);
        sim_ops(&s); /* a sliding window may have released blocks: no ops though */
      }
      clkv__kv_pool_stats after;
      clkv__kv_pool_stats_get(s.pool, &after);
      cows += after.cow_copies - before.cow_copies;
      for (int32_t j = 0; j * bt < q->len; j++) released += clkv__kv_seq_block(s.pool, i, j, NULL) < 0;
    } else if (a < 65 && q->live && !q->swapped) { /* fork */
      int c;
      if (clkv__kv_seq_fork(s.pool, i, &c, &err) == CLKV_OK) {
        cr_assert(!m[c].live);
        m[c] = *q;
        if (!window && rnd(&x, 2)) { /* the fork cut back inside blocks it shares */
          const int32_t len = rnd(&x, q->len + 1);
          cr_assert_eq(clkv__kv_seq_truncate(s.pool, c, len, &err), CLKV_OK, "%s", err.message);
          m[c].len = len;
          rollbacks += len < q->len;
        }
      } else {
        cr_assert_eq(err.status, CLKV_ERR_CONTEXT_FULL, "%s", err.message);
      }
    } else if (a < 80 && q->live) { /* free */
      clkv__kv_seq_free(s.pool, i);
      q->live = 0;
    } else if (a < 90 && q->live && !q->swapped) {
      if (clkv__kv_seq_swap_out(s.pool, i, &err) == CLKV_OK) q->swapped = 1;
      else cr_assert_eq(err.status, CLKV_ERR_CONTEXT_FULL, "%s", err.message);
      sim_ops(&s);
    } else if (q->live && q->swapped) {
      if (clkv__kv_seq_swap_in(s.pool, i, &err) == CLKV_OK) q->swapped = 0;
      else cr_assert_eq(err.status, CLKV_ERR_CONTEXT_FULL, "%s", err.message);
      sim_ops(&s);
    }
    cr_assert_eq(sim_ops(&s), 0, "every op was drained");
    model_check_all(&s, m, window);
  }
  cr_assert_gt(hits, 0, "the run exercised prefix hits");
  cr_assert_gt(cows, 0, "the run exercised copy-on-write");
  cr_assert_gt(rollbacks, 0, "the run exercised rollback");
  for (int i = 0; i < MS; i++) clkv__kv_seq_free(s.pool, i);
  clkv__kv_pool_drop_cached(s.pool);
  check(&s);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.blocks_free[0], D, "every device block is free at the end");
  cr_assert_eq(st.blocks_free[1], H, "every host block is free at the end");
  cr_assert_gt(st.prefix_hit_tokens, 0);
  cr_assert_gt(st.evictions, 0, "the run exercised eviction");
  if (H) cr_assert(st.swap_out_blocks > 0 && st.swap_in_blocks > 0, "the run swapped both ways");
  if (window) cr_assert_gt(released, 0, "the window released blocks");
  free(m);
  sim_free(&s);
}

Test(kv_pool, random_ops_lru_host_tier) { random_run(48, 24, 8, CLKV_KV_EVICT_LRU, 0, 1, 3000); }
Test(kv_pool, random_ops_lfu_no_host) { random_run(40, 0, 16, CLKV_KV_EVICT_LFU, 0, 2, 3000); }
Test(kv_pool, random_ops_fifo_window) { random_run(40, 16, 8, CLKV_KV_EVICT_FIFO, 27, 3, 3000); }
Test(kv_pool, random_ops_tight_b32) { random_run(12, 6, 32, CLKV_KV_EVICT_LRU, 0, 4, 2000); }

/* ---- focused cases ---- */
static void fill(int32_t *t, int32_t n, int32_t base) {
  for (int32_t i = 0; i < n; i++) t[i] = base + i;
}

Test(kv_pool, prefix_sharing) {
  sim s = sim_new(32, 0, 16, 4, 16, CLKV_KV_EVICT_LRU, 0, 77);
  int32_t a[53], b[57];
  fill(a, 53, 100);
  fill(b, 57, 100);
  for (int32_t i = 48; i < 57; i++) b[i] = 9000 + i; /* same 3 blocks, different tail */
  int32_t c;
  int sa = prefill(&s, a, 53, &c);
  cr_assert_eq(c, 0);
  int sb = prefill(&s, b, 57, &c);
  cr_assert_eq(c, 48, "the second prompt reuses exactly 3 blocks");
  const int32_t *ta = clkv__kv_seq_block_table(s.pool, sa), *tb = clkv__kv_seq_block_table(s.pool, sb);
  for (int j = 0; j < 3; j++) {
    cr_assert_eq(ta[j], tb[j], "block %d shared", j);
    cr_assert_eq(clkv__kv_block_refcount(s.pool, CLKV_KV_TIER_DEVICE, ta[j]), 2);
  }
  cr_assert_neq(ta[3], tb[3], "the tails are private");
  sim_verify(&s, sb, b, 57, 0);
  /* A prompt that is exactly 3 cached blocks still computes its last block. */
  int sc = prefill(&s, a, 48, &c);
  cr_assert_eq(c, 32);
  sim_verify(&s, sc, a, 48, 0);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.prompt_tokens, 53 + 57 + 48);
  cr_assert_eq(st.prefix_hit_tokens, 48 + 32);
  check(&s);
  sim_free(&s);
  /* Another prefix seed (model or KV precision) shares nothing. */
  sim s2 = sim_new(32, 0, 16, 4, 16, CLKV_KV_EVICT_LRU, 0, 78);
  prefill(&s2, a, 53, &c);
  prefill(&s2, b, 57, &c);
  cr_assert_eq(c, 48);
  sim_free(&s2);
  cr_assert_neq(clkv__kv_hash_block(clkv__kv_hash_root(77), a, 16, 77),
                clkv__kv_hash_block(clkv__kv_hash_root(78), a, 16, 78));
}

Test(kv_pool, prefix_seed_isolates_pools) {
  /* Blocks exported from a pool with one seed are refused by a pool with another. */
  sim s = sim_new(8, 4, 8, 2, 8, CLKV_KV_EVICT_LRU, 0, 1);
  int32_t a[17];
  fill(a, 17, 5);
  prefill(&s, a, 17, NULL);
  clkv__kv_pool_free(s.pool);
  s.pool = NULL;
  sim o = sim_new(8, 4, 8, 2, 8, CLKV_KV_EVICT_LRU, 0, 2);
  int32_t h = 0;
  clkv_error err;
  uint64_t root1 = clkv__kv_hash_root(1);
  uint64_t h1 = clkv__kv_hash_block(root1, a, 8, 1);
  cr_assert_eq(clkv__kv_pool_import_block(o.pool, h1, root1, a, &h, &err), CLKV_ERR_FORMAT);
  cr_assert_eq(h, -1);
  check(&o);
  sim_free(&o);
  sim_free(&s);
}

Test(kv_pool, copy_on_write_after_fork) {
  sim s = sim_new(16, 0, 16, 4, 8, CLKV_KV_EVICT_LRU, 0, 3);
  int32_t a[20];
  fill(a, 20, 1);
  int pa = prefill(&s, a, 20, NULL);
  int32_t *ta0 = seq_table_copy(&s, pa, 2);
  clkv_error err;
  int ch;
  cr_assert_eq(clkv__kv_seq_fork(s.pool, pa, &ch, &err), CLKV_OK, "%s", err.message);
  const int32_t *tc = clkv__kv_seq_block_table(s.pool, ch);
  cr_assert_arr_eq(tc, ta0, 2 * sizeof(int32_t), "the fork shares every block");
  cr_assert_eq(clkv__kv_block_refcount(s.pool, CLKV_KV_TIER_DEVICE, ta0[1]), 2);
  int32_t t = 777;
  cr_assert_eq(clkv__kv_seq_append(s.pool, ch, &t, 1, &err), CLKV_OK, "%s", err.message);
  const clkv__kv_op *ops;
  size_t n;
  clkv__kv_pool_take_ops(s.pool, &ops, &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(ops[0].kind, CLKV_KV_OP_COPY_D2D);
  cr_assert_eq(ops[0].src, ta0[1]);
  cr_assert_eq(ops[0].dst, tc[1]);
  cr_assert_neq(tc[1], ta0[1], "the child writes its own copy");
  cr_assert_eq(tc[0], ta0[0], "the full block stays shared");
  cr_assert_arr_eq(clkv__kv_seq_block_table(s.pool, pa), ta0, 2 * sizeof(int32_t), "parent unchanged");
  cr_assert_eq(clkv__kv_block_refcount(s.pool, CLKV_KV_TIER_DEVICE, ta0[1]), 1);
  cr_assert_eq(clkv__kv_block_refcount(s.pool, CLKV_KV_TIER_DEVICE, ta0[0]), 2);
  /* Execute the copy, write the child's token: the parent still reads its own tokens. */
  memcpy(s.dev + (size_t)ops[0].dst * 16, s.dev + (size_t)ops[0].src * 16, 16 * sizeof(int32_t));
  sim_write(&s, ch, 20, 21);
  int32_t b[21];
  memcpy(b, a, sizeof a);
  b[20] = 777;
  sim_verify(&s, pa, a, 20, 0);
  sim_verify(&s, ch, b, 21, 0);
  /* The parent now appends into its block, which only it holds: no copy. */
  cr_assert_eq(clkv__kv_seq_append(s.pool, pa, &t, 1, &err), CLKV_OK);
  cr_assert_eq(sim_ops(&s), 0);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.cow_copies, 1);
  check(&s);
  free(ta0);
  sim_free(&s);
}

/* Three one-block prompts A, B, C cached in a 3-block device; hits B, B, A, A, C; then one
 * new block must evict: LRU → B, LFU → C (fewest hits), FIFO → A (oldest). */
static void eviction_order(clkv__kv_evict_policy pol, int expect_victim) {
  sim s = sim_new(3, 0, 8, 4, 4, pol, 0, 9);
  int32_t p[3][9];
  for (int k = 0; k < 3; k++) {
    fill(p[k], 9, 100 * (k + 1));
    int q;
    clkv_error err;
    cr_assert_eq(clkv__kv_seq_new(s.pool, &q, &err), CLKV_OK);
    cr_assert_eq(clkv__kv_seq_append(s.pool, q, p[k], 8, &err), CLKV_OK, "%s", err.message);
    sim_ops(&s);
    sim_write(&s, q, 0, 8);
    clkv__kv_seq_commit(s.pool, q);
    clkv__kv_seq_free(s.pool, q);
  }
  const int pattern[5] = {1, 1, 0, 0, 2};
  for (int k = 0; k < 5; k++) {
    int q;
    int32_t c;
    clkv__kv_seq_new(s.pool, &q, NULL);
    cr_assert_eq(clkv__kv_seq_prefill_begin(s.pool, q, p[pattern[k]], 9, &c, NULL), CLKV_OK);
    cr_assert_eq(c, 8);
    clkv__kv_seq_free(s.pool, q);
  }
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.blocks_cached[0], 3);
  int32_t x[8];
  fill(x, 8, 5000);
  int q;
  clkv__kv_seq_new(s.pool, &q, NULL);
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, x, 8, NULL), CLKV_OK);
  for (int k = 0; k < 3; k++) {
    int r;
    int32_t c;
    clkv__kv_seq_new(s.pool, &r, NULL);
    clkv__kv_seq_prefill_begin(s.pool, r, p[k], 9, &c, NULL);
    cr_assert_eq(c, k == expect_victim ? 0 : 8, "policy %d: prompt %c %s", (int)pol, 'A' + k,
                 k == expect_victim ? "should be evicted" : "should stay cached");
    clkv__kv_seq_free(s.pool, r);
  }
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.evictions, 1);
  check(&s);
  sim_free(&s);
}

Test(kv_pool, evict_lru) { eviction_order(CLKV_KV_EVICT_LRU, 1); }
Test(kv_pool, evict_lfu) { eviction_order(CLKV_KV_EVICT_LFU, 2); }
Test(kv_pool, evict_fifo) { eviction_order(CLKV_KV_EVICT_FIFO, 0); }

Test(kv_pool, exhaustion_without_host_is_a_clean_error) {
  sim s = sim_new(2, 0, 8, 3, 4, CLKV_KV_EVICT_LRU, 0, 1);
  int32_t a[16];
  fill(a, 16, 1);
  int sa = prefill(&s, a, 16, NULL);
  cr_assert_geq(sa, 0);
  int sb;
  clkv_error err;
  cr_assert_eq(clkv__kv_seq_new(s.pool, &sb, &err), CLKV_OK);
  clkv__kv_pool_stats before, after;
  clkv__kv_pool_stats_get(s.pool, &before);
  uint64_t gen = clkv__kv_pool_generation(s.pool);
  cr_assert_eq(clkv__kv_seq_append(s.pool, sb, a, 1, &err), CLKV_ERR_CONTEXT_FULL);
  cr_assert(strstr(err.message, "preempt"), "the message says what to do: %s", err.message);
  clkv__kv_pool_stats_get(s.pool, &after);
  cr_assert_arr_eq(&before, &after, sizeof before, "nothing changed");
  cr_assert_eq(clkv__kv_pool_generation(s.pool), gen);
  cr_assert_eq(clkv__kv_seq_len(s.pool, sb), 0);
  cr_assert_eq(sim_ops(&s), 0);
  cr_assert_eq(clkv__kv_seq_swap_out(s.pool, sa, &err), CLKV_ERR_CONTEXT_FULL, "no host tier");
  cr_assert_eq(clkv__kv_seq_append(s.pool, sa, a, 33, &err), CLKV_ERR_CONTEXT_FULL, "past the table");
  check(&s);
  sim_verify(&s, sa, a, 16, 0);
  sim_free(&s);
}

Test(kv_pool, exhaustion_with_host_tier_evicts_and_brings_back) {
  sim s = sim_new(2, 2, 8, 3, 4, CLKV_KV_EVICT_LRU, 0, 1);
  int32_t pa[9], pb[17];
  fill(pa, 9, 100);
  fill(pb, 17, 500);
  clkv_error err;
  int q;
  cr_assert_eq(clkv__kv_seq_new(s.pool, &q, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, pa, 8, &err), CLKV_OK);
  sim_ops(&s);
  sim_write(&s, q, 0, 8);
  clkv__kv_seq_commit(s.pool, q);
  int32_t a_dev = clkv__kv_seq_block_table(s.pool, q)[0];
  clkv__kv_seq_free(s.pool, q);
  /* B needs both device blocks: A's cached block moves to the host. */
  cr_assert_eq(clkv__kv_seq_new(s.pool, &q, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, pb, 16, &err), CLKV_OK, "%s", err.message);
  const clkv__kv_op *ops;
  size_t n;
  clkv__kv_pool_take_ops(s.pool, &ops, &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(ops[0].kind, CLKV_KV_OP_MOVE_D2H);
  cr_assert_eq(ops[0].src, a_dev);
  int32_t a_host = ops[0].dst;
  memcpy(s.host + (size_t)a_host * 8, s.dev + (size_t)a_dev * 8, 8 * sizeof(int32_t));
  sim_write(&s, q, 0, 16);
  clkv__kv_seq_commit(s.pool, q);
  clkv__kv_seq_free(s.pool, q);
  check(&s);
  /* A's prompt again: its block comes back from the host into a device block freed by
   * evicting one of B's (to the other host block) — the eviction first, then the move. */
  int32_t c;
  cr_assert_eq(clkv__kv_seq_new(s.pool, &q, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_prefill_begin(s.pool, q, pa, 9, &c, &err), CLKV_OK);
  cr_assert_eq(c, 8);
  clkv__kv_pool_take_ops(s.pool, &ops, &n);
  cr_assert_eq(n, 2);
  cr_assert_eq(ops[0].kind, CLKV_KV_OP_MOVE_D2H);
  cr_assert_neq(ops[0].dst, a_host);
  cr_assert_eq(ops[1].kind, CLKV_KV_OP_MOVE_H2D);
  cr_assert_eq(ops[1].src, a_host);
  cr_assert_eq(ops[1].dst, ops[0].src, "the move lands in the block just evicted");
  clkv__kv_op o0 = ops[0], o1 = ops[1];
  memcpy(s.host + (size_t)o0.dst * 8, s.dev + (size_t)o0.src * 8, 8 * sizeof(int32_t));
  memcpy(s.dev + (size_t)o1.dst * 8, s.host + (size_t)o1.src * 8, 8 * sizeof(int32_t));
  sim_verify(&s, q, pa, 8, 0);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.evictions, 2);
  cr_assert_eq(st.blocks_moved, 3);
  cr_assert_eq(st.bytes_moved, 3000);
  cr_assert_eq(st.blocks_cached[1], 1, "B's evicted block waits on the host");
  check(&s);
  /* B's prompt: block 0 still on the device, block 1 back from the host (A's block goes
   * to the host to make room). The device is then full: the rest does not fit. */
  clkv__kv_seq_free(s.pool, q);
  cr_assert_eq(clkv__kv_seq_new(s.pool, &q, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_prefill_begin(s.pool, q, pb, 17, &c, &err), CLKV_OK);
  cr_assert_eq(c, 16);
  cr_assert_eq(sim_ops(&s), 2);
  sim_verify(&s, q, pb, 16, 0);
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, pb + 16, 1, &err), CLKV_ERR_CONTEXT_FULL);
  check(&s);
  sim_free(&s);
}

Test(kv_pool, swap_out_and_in_round_trip) {
  sim s = sim_new(8, 8, 8, 4, 8, CLKV_KV_EVICT_LRU, 0, 5);
  int32_t a[20], b[30], g[40];
  fill(a, 20, 1);
  memcpy(b, a, sizeof a);
  fill(b + 20, 10, 900);
  fill(g, 40, 7000);
  int pa = prefill(&s, a, 20, NULL);
  clkv_error err;
  int pb;
  cr_assert_eq(clkv__kv_seq_fork(s.pool, pa, &pb, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_append(s.pool, pb, b + 20, 10, &err), CLKV_OK);
  sim_ops(&s);
  sim_write(&s, pb, 20, 30);
  clkv__kv_seq_commit(s.pool, pb);
  cr_assert_eq(clkv__kv_seq_swap_out(s.pool, pb, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(sim_ops(&s), 2, "B's two private blocks move; the shared one stays");
  cr_assert(clkv__kv_seq_swapped(s.pool, pb));
  cr_assert_null(clkv__kv_seq_block_table(s.pool, pb));
  clkv_kv_tier t;
  cr_assert_geq(clkv__kv_seq_block(s.pool, pb, 0, &t), 0);
  cr_assert_eq(t, CLKV_KV_TIER_DEVICE);
  clkv__kv_seq_block(s.pool, pb, 3, &t);
  cr_assert_eq(t, CLKV_KV_TIER_HOST);
  cr_assert_eq(clkv__kv_seq_append(s.pool, pb, a, 1, &err), CLKV_ERR_INVALID_ARG);
  sim_verify(&s, pb, b, 30, 0);
  /* Another sequence overwrites the device blocks B left. */
  int pg = prefill(&s, g, 40, NULL);
  cr_assert_geq(pg, 0);
  clkv__kv_seq_free(s.pool, pg);
  cr_assert_eq(clkv__kv_seq_swap_in(s.pool, pb, &err), CLKV_OK, "%s", err.message);
  cr_assert_geq(sim_ops(&s), 2);
  sim_verify(&s, pb, b, 30, 0);
  sim_verify(&s, pa, a, 20, 0);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.swap_out_blocks, 2);
  cr_assert_eq(st.swap_in_blocks, 2);
  check(&s);
  /* Growth continues after the round trip. */
  cr_assert_eq(clkv__kv_seq_append(s.pool, pb, a, 3, &err), CLKV_OK, "%s", err.message);
  check(&s);
  sim_free(&s);
}

Test(kv_pool, sliding_window_releases_blocks_out_of_view) {
  sim s = sim_new(16, 0, 8, 2, 16, CLKV_KV_EVICT_LRU, 16, 1);
  int32_t a[60];
  fill(a, 60, 1);
  int q = prefill(&s, a, 40, NULL); /* len 0 before: nothing released */
  const int32_t *tab = clkv__kv_seq_block_table(s.pool, q);
  for (int j = 0; j < 5; j++) cr_assert_geq(tab[j], 0);
  clkv_error err;
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, a + 40, 1, &err), CLKV_OK);
  /* Position 40 sees 24..40: blocks 0..2 (positions 0..23) go, 3.. stay. */
  for (int j = 0; j < 3; j++) cr_assert_eq(tab[j], -1, "block %d released", j);
  for (int j = 3; j < 6; j++) cr_assert_geq(tab[j], 0, "block %d kept", j);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.blocks_used[0], 3);
  cr_assert_eq(st.blocks_cached[0], 3, "released full blocks stay in the prefix cache");
  sim_ops(&s);
  sim_write(&s, q, 40, 41);
  clkv__kv_seq_commit(s.pool, q);
  sim_verify(&s, q, a, 41, 16);
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, a + 41, 7, &err), CLKV_OK); /* 41 → 48 */
  cr_assert_geq(tab[3], 0, "position 41 still sees 25..");
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, a + 48, 1, &err), CLKV_OK); /* from 48 */
  cr_assert_eq(tab[3], -1, "position 48 sees 32..: block 3 (24..31) goes");
  cr_assert_geq(tab[4], 0);
  check(&s);
  sim_free(&s);
}

static int collect(void *user, uint64_t hash, uint64_t parent, const int32_t *tokens,
                   int32_t n, clkv_kv_tier tier, int32_t id) {
  (void)tier;
  (void)id;
  uint64_t *rec = user; /* [count, (hash, parent, 8 tokens)...] */
  uint64_t k = rec[0]++;
  rec[1 + k * 10] = hash;
  rec[2 + k * 10] = parent;
  for (int32_t i = 0; i < n; i++) rec[3 + k * 10 + (uint64_t)i] = (uint64_t)tokens[i];
  return 0;
}

Test(kv_pool, export_import_round_trip) {
  sim s = sim_new(8, 4, 8, 2, 8, CLKV_KV_EVICT_LRU, 0, 42);
  int32_t a[25];
  fill(a, 25, 300);
  prefill(&s, a, 25, NULL); /* 3 full blocks cached */
  uint64_t rec[1 + 8 * 10] = {0};
  clkv__kv_pool_export_prefix(s.pool, collect, rec);
  cr_assert_eq(rec[0], 3);
  /* A new pool with the same seed imports them into its host tier. */
  sim o = sim_new(8, 4, 8, 2, 8, CLKV_KV_EVICT_LRU, 0, 42);
  clkv_error err;
  for (uint64_t k = 0; k < rec[0]; k++) {
    int32_t tok[8], h;
    for (int i = 0; i < 8; i++) tok[i] = (int32_t)rec[3 + k * 10 + (uint64_t)i];
    cr_assert_eq(clkv__kv_pool_import_block(o.pool, rec[1 + k * 10], rec[2 + k * 10], tok, &h, &err),
                 CLKV_OK, "%s", err.message);
    cr_assert(h >= 0 && h < 4);
    for (int i = 0; i < 8; i++) o.host[h * 8 + i] = tok[i]; /* the engine fills it */
    cr_assert_eq(clkv__kv_pool_import_block(o.pool, rec[1 + k * 10], rec[2 + k * 10], tok, &h, &err),
                 CLKV_OK);
    cr_assert_eq(h, -1, "a second import is a no-op");
  }
  check(&o);
  int32_t c;
  int q = prefill(&o, a, 25, &c);
  cr_assert_eq(c, 24, "all three imported blocks are hits");
  sim_verify(&o, q, a, 25, 0);
  check(&o);
  sim_free(&o);
  sim_free(&s);
}

Test(kv_pool, bad_arguments) {
  clkv__kv_pool_params p = clkv__kv_pool_default_params();
  clkv__kv_pool *pool = NULL;
  clkv_error err;
  p.block_tokens = 12;
  cr_assert_eq(clkv__kv_pool_create(&p, &pool, &err), CLKV_ERR_INVALID_ARG);
  cr_assert(strstr(err.message, "8, 16 or 32"));
  cr_assert_null(pool);
  p = clkv__kv_pool_default_params();
  p.max_seqs = 1;
  cr_assert_eq(clkv__kv_pool_create(&p, &pool, &err), CLKV_OK);
  int a, b;
  cr_assert_eq(clkv__kv_seq_new(pool, &a, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_new(pool, &b, &err), CLKV_ERR_CONTEXT_FULL);
  int32_t t = 1, c;
  cr_assert_eq(clkv__kv_seq_prefill_begin(pool, 5, &t, 1, &c, &err), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(clkv__kv_seq_append(pool, a, &t, 1, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_prefill_begin(pool, a, &t, 1, &c, &err), CLKV_ERR_INVALID_ARG);
  cr_assert_eq(clkv__kv_seq_fork(pool, a, &b, &err), CLKV_ERR_INVALID_ARG, "uncommitted");
  cr_assert_eq(clkv__kv_seq_truncate(pool, a, 2, &err), CLKV_ERR_INVALID_ARG, "past the end");
  cr_assert_eq(clkv__kv_seq_truncate(pool, 7, 0, &err), CLKV_ERR_INVALID_ARG, "bad id");
  cr_assert_eq(clkv__kv_seq_truncate(pool, a, -1, &err), CLKV_ERR_INVALID_ARG);
  clkv__kv_seq_free(pool, 99);
  clkv__kv_seq_free(pool, -1);
  cr_assert_eq(clkv__kv_pool_check(pool, &err), CLKV_OK, "%s", err.message);
  clkv__kv_pool_free(pool);
  clkv__kv_pool_free(NULL);
}

/* ---- the invariant check itself ---- */
/* The check names the broken invariant (what) with a message containing want. */
static void expect_broken(const clkv__kv_pool *P, const char *what, const char *want) {
  clkv_error err;
  cr_assert_eq(clkv__kv_pool_check(P, &err), CLKV_ERR_INTERNAL, "%s is not caught", what);
  cr_assert(strstr(err.message, want), "%s: the check says '%s'", what, err.message);
}

/* Every model check above relies on clkv__kv_pool_check; here each invariant is broken in
 * turn (a resident sequence with cached blocks, a released one whose blocks are cached and
 * evictable, free blocks) and must be caught, and the pool passes again once repaired. */
Test(kv_pool, check_catches_each_broken_invariant) {
  sim s = sim_new(8, 0, 8, 2, 4, CLKV_KV_EVICT_LRU, 0, 7);
  int32_t a[20], b[20];
  for (int i = 0; i < 20; i++) a[i] = i + 1, b[i] = 100 + i;
  const int sa = prefill(&s, a, 20, NULL), sb = prefill(&s, b, 20, NULL);
  cr_assert(sa >= 0 && sb >= 0);
  clkv__kv_seq_free(s.pool, sb);
  check(&s);
  clkv__kv_pool *P = s.pool;
  clkv__kv_seq *q = &P->s[sa];
  const int32_t g0 = q->g[0], ev = P->ev_head[0], fr = P->free_stack[0][0];
  cr_assert(P->b[g0].cached && ev >= 0 && P->n_free[0] >= 2 && P->n_ev[0] >= 2);
#define BREAK(type, field, bad, what, want) \
  do {                                      \
    const type keep_ = (field);             \
    (field) = (type)(bad);                  \
    expect_broken(P, what, want);           \
    (field) = keep_;                        \
    check(&s);                              \
  } while (0)
  BREAK(int32_t, q->committed, q->len + 1, "committed past the length", "committed");
  BREAK(int32_t, q->n_blocks, q->n_blocks + 1, "a block too many", "blocks for");
  BREAK(int32_t, q->dtab[0], -1, "a device table entry", "device table disagrees");
  BREAK(int32_t, P->btok[(size_t)g0 * P->bt], -5, "a cached block's tokens", "cached tokens differ");
  BREAK(int32_t, P->b[g0].ref, P->b[g0].ref + 1, "a refcount", "refcount");
  BREAK(uint8_t, P->b[fr].in_free, 0, "a free block off its stack", "free 0 evictable 0");
  BREAK(uint64_t, P->b[ev].hash, P->b[ev].hash ^ 1, "a cached block's hash", "not found under its hash");
  BREAK(int32_t, P->n_ev[0], P->n_ev[0] + 1, "the evictable count", "tier 0 counts");
  BREAK(int32_t, P->free_stack[0][1], fr, "a free stack duplicate", "is a duplicate");
  BREAK(int32_t, P->b[ev].eprev, g0, "an evictable list link", "evictable list 0 broken");
  BREAK(int32_t, P->ev_tail[0], -1, "the evictable list's tail", "evictable list 0 has");
  BREAK(int32_t, P->n_hashed, P->n_hashed + 1, "the hashed count", "hash table holds");
#undef BREAK
  sim_free(&s);
}

/* A freed prefix chain goes back deepest block first, so under LRU its end is evicted
 * before the blocks it extends: the start of the prompt stays reusable. */
Test(kv_pool, lru_evicts_the_end_of_a_freed_chain_first) {
  sim s = sim_new(3, 0, 8, 4, 4, CLKV_KV_EVICT_LRU, 0, 11);
  int32_t p[25], x[8];
  fill(p, 25, 100);
  fill(x, 8, 9000);
  const int a = prefill(&s, p, 24, NULL); /* three full blocks, committed */
  cr_assert_geq(a, 0);
  clkv__kv_seq_free(s.pool, a);
  int q, r;
  int32_t c = -1;
  clkv_error err;
  cr_assert_eq(clkv__kv_seq_new(s.pool, &q, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_append(s.pool, q, x, 8, &err), CLKV_OK, "%s", err.message); /* evicts one */
  sim_ops(&s);
  cr_assert_eq(clkv__kv_seq_new(s.pool, &r, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_prefill_begin(s.pool, r, p, 25, &c, &err), CLKV_OK, "%s", err.message);
  cr_assert_eq(c, 16, "the chain's first two blocks should stay cached, %d tokens were", c);
  clkv__kv_seq_free(s.pool, r);
  clkv__kv_seq_free(s.pool, q);
  check(&s);
  sim_free(&s);
}

/* The prefix cache matches a block by its tokens, not by hash and parent alone: a lookup
 * with the stored hash but other tokens (a hash collision) finds nothing. */
Test(kv_pool, prefix_lookup_compares_tokens) {
  sim s = sim_new(4, 0, 8, 2, 4, CLKV_KV_EVICT_LRU, 0, 5);
  int32_t p[9], other[8];
  fill(p, 9, 300);
  fill(other, 8, 700);
  const int a = prefill(&s, p, 8, NULL);
  cr_assert_geq(a, 0);
  const uint64_t root = clkv__kv_hash_root(5), h = clkv__kv_hash_block(root, p, 8, 5);
  cr_assert_geq(clkv__kv_find(s.pool, h, root, p), 0, "the committed block is not found");
  cr_assert_eq(clkv__kv_find(s.pool, h, root, other), -1, "other tokens with the same hash matched");
  cr_assert_eq(clkv__kv_find(s.pool, h, root + 1, p), -1, "another parent matched");
  clkv__kv_seq_free(s.pool, a);
  check(&s);
  sim_free(&s);
}

/* Rollback after a speculative pass: drafts that filled a block were committed (so cached);
 * cutting them returns the block to the free list, the cut tail is written again in place,
 * and the statistics end as if the drafts had never been appended. */
Test(kv_pool, truncate_returns_rejected_blocks) {
  sim s = sim_new(8, 0, 8, 2, 8, CLKV_KV_EVICT_LRU, 0, 7);
  int32_t tok[40];
  for (int i = 0; i < 40; i++) tok[i] = 100 + i;
  int seq = prefill(&s, tok, 5, NULL);
  clkv_error err;
  cr_assert_eq(clkv__kv_seq_append(s.pool, seq, tok + 5, 14, &err), CLKV_OK); /* to 19 */
  sim_ops(&s);
  sim_write(&s, seq, 5, 19);
  clkv__kv_seq_commit(s.pool, seq);
  clkv__kv_pool_stats st;
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.blocks_used[0], 3);
  cr_assert_eq(st.blocks_cached[0], 0, "referenced blocks count as used");
  cr_assert_eq(clkv__kv_seq_truncate(s.pool, seq, 6, &err), CLKV_OK, "%s", err.message);
  check(&s);
  clkv__kv_pool_stats_get(s.pool, &st);
  cr_assert_eq(st.blocks_used[0], 1);
  cr_assert_eq(st.blocks_free[0], 7, "the cut blocks left the prefix cache and are free");
  const int32_t b0 = clkv__kv_seq_block_table(s.pool, seq)[0];
  int32_t other[5] = {1, 2, 3, 4, 5};
  cr_assert_eq(clkv__kv_seq_append(s.pool, seq, other, 5, &err), CLKV_OK);
  cr_assert_eq(sim_ops(&s), 0, "a private tail is written in place");
  cr_assert_eq(clkv__kv_seq_block_table(s.pool, seq)[0], b0);
  sim_write(&s, seq, 6, 11);
  clkv__kv_seq_commit(s.pool, seq);
  int32_t want[11] = {100, 101, 102, 103, 104, 105, 1, 2, 3, 4, 5};
  sim_verify(&s, seq, want, 11, 0);
  /* a fork cut back inside a cached block it shares copies that block before writing */
  int c;
  cr_assert_eq(clkv__kv_seq_fork(s.pool, seq, &c, &err), CLKV_OK);
  cr_assert_eq(clkv__kv_seq_truncate(s.pool, c, 3, &err), CLKV_OK);
  check(&s);
  cr_assert_eq(clkv__kv_seq_append(s.pool, c, other, 2, &err), CLKV_OK);
  cr_assert_eq(sim_ops(&s), 1, "copy-on-write of the shared tail");
  sim_write(&s, c, 3, 5);
  clkv__kv_seq_commit(s.pool, c);
  int32_t want_c[5] = {100, 101, 102, 1, 2};
  sim_verify(&s, c, want_c, 5, 0);
  sim_verify(&s, seq, want, 11, 0);
  check(&s);
  sim_free(&s);
}

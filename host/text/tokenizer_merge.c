/* tokenizer_merge.c — the merge loop shared by GPT-2 BPE and SentencePiece: adjacent symbols
 * merge best pair first (highest priority, then leftmost), with the candidate pairs in a
 * binary heap so a long word costs O(n log n), not O(n^2) (64 KB of "a" took 32 s). */
#include "text/tokenizer_int.h"

#include <math.h>
#include <stdlib.h>

/* A pair (left, right) as it was when pushed: stale once either symbol changed. */
typedef struct cand {
  double prio;
  int left, right;
  int32_t merged;
  uint32_t vl, vr; /* the symbols' versions then */
} cand;

typedef struct merge_state {
  const clkv__tokenizer *t;
  const char *text;
  clkv__sym *sym;
  clkv__pair_fn pair;
  int *next, *prev;
  uint32_t *ver;
  cand *heap;
  int n_heap;
} merge_state;

/* a is merged before b: higher priority, then the leftmost (the order of a left-to-right scan). */
static int before(const cand *a, const cand *b) {
  return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

/* Pushes the pair (l, next[l]) when the vocabulary merges it. */
static void push(merge_state *s, int l) {
  const int r = l >= 0 ? s->next[l] : -1;
  cand c = {.left = l, .right = r};
  if (r < 0 || !s->pair(s->t, s->text, &s->sym[l], &s->sym[r], &c.prio, &c.merged)) return;
  if (isnan(c.prio)) c.prio = -INFINITY; /* a NaN score orders last, not at random */
  c.vl = s->ver[l], c.vr = s->ver[r];
  int i = s->n_heap++;
  for (; i > 0 && before(&c, &s->heap[(i - 1) / 2]); i = (i - 1) / 2) s->heap[i] = s->heap[(i - 1) / 2];
  s->heap[i] = c;
}

static cand pop(merge_state *s) {
  const cand top = s->heap[0], last = s->heap[--s->n_heap];
  int i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= s->n_heap) break;
    if (c + 1 < s->n_heap && before(&s->heap[c + 1], &s->heap[c])) c++;
    if (!before(&s->heap[c], &last)) break;
    s->heap[i] = s->heap[c];
    i = c;
  }
  if (s->n_heap) s->heap[i] = last;
  return top;
}

int clkv__merge_loop(const clkv__tokenizer *t, const char *text, clkv__sym *sym, int n,
                     clkv__pair_fn pair) {
  if (n < 2) return n;
  /* every merge pushes at most two pairs: n - 1 + 2 (n - 1) entries at most */
  merge_state s = {.t = t, .text = text, .sym = sym, .pair = pair,
                   .next = malloc((size_t)n * sizeof(int)), .prev = malloc((size_t)n * sizeof(int)),
                   .ver = calloc((size_t)n, sizeof(uint32_t)),
                   .heap = malloc(3 * (size_t)n * sizeof(cand))};
  int out = -1;
  if (!s.next || !s.prev || !s.ver || !s.heap) goto done;
  for (int i = 0; i < n; i++) {
    s.next[i] = i + 1 < n ? i + 1 : -1;
    s.prev[i] = i - 1;
  }
  for (int i = 0; i + 1 < n; i++) push(&s, i);
  while (s.n_heap) {
    const cand c = pop(&s);
    if (s.next[c.left] != c.right || s.ver[c.left] != c.vl || s.ver[c.right] != c.vr) continue;
    sym[c.left].len += sym[c.right].len;
    sym[c.left].id = c.merged;
    s.ver[c.left]++;
    s.ver[c.right]++; /* gone: any pair still naming it is stale */
    s.next[c.left] = s.next[c.right];
    if (s.next[c.right] >= 0) s.prev[s.next[c.right]] = c.left;
    s.next[c.right] = -2;
    push(&s, s.prev[c.left]);
    push(&s, c.left);
  }
  out = 0;
  for (int i = 0; i >= 0; i = s.next[i]) sym[out++] = sym[i];
done:
  free(s.next);
  free(s.prev);
  free(s.ver);
  free(s.heap);
  return out;
}

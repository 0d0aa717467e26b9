/* tokenizer_bpe.c — GPT-2 byte-level BPE: the pre-tokenizer rules (the regexes the GGUF
 * names, matched by hand over code points), the byte → printable-character map, and the
 * merge-by-rank loop over each pre-token. */
#include "text/tokenizer_int.h"

#include <stdlib.h>
#include <string.h>

static int is_other(uint32_t c) { return !clkv__is_space(c) && !clkv__is_letter(c) && !clkv__is_number(c); }
static int is_nl(uint32_t c) { return c == '\r' || c == '\n'; }
static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at c[i] (c[i] == '\''): returns the match end or i. */
static size_t contraction(const uint32_t *c, size_t i, size_t e, int fold) {
  if (i + 1 >= e) return i;
  uint32_t x = fold ? lower_ascii(c[i + 1]) : c[i + 1];
  if (x == 's' || x == 't' || x == 'm' || x == 'd') return i + 2;
  if (i + 2 >= e) return i;
  uint32_t y = fold ? lower_ascii(c[i + 2]) : c[i + 2];
  if ((x == 'r' && y == 'e') || (x == 'v' && y == 'e') || (x == 'l' && y == 'l')) return i + 3;
  return i;
}

static size_t run(const uint32_t *c, size_t k, size_t e, int (*cls)(uint32_t)) {
  while (k < e && cls(c[k])) k++;
  return k;
}

/* \s+(?!\S)|\s+ at a white-space character c[i]. */
static size_t spaces(const uint32_t *c, size_t i, size_t e) {
  size_t k = run(c, i, e, clkv__is_space);
  if (k == e || k - 1 == i) return k;
  return k - 1; /* leave the last space to the word that follows */
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const uint32_t *c, size_t i, size_t e) {
  if (c[i] == '\'') {
    size_t k = contraction(c, i, e, 0);
    if (k > i) return k;
  }
  size_t j = c[i] == ' ' && i + 1 < e ? i + 1 : i;
  if (clkv__is_letter(c[j])) return run(c, j, e, clkv__is_letter);
  if (clkv__is_number(c[j])) return run(c, j, e, clkv__is_number);
  if (is_other(c[j])) return run(c, j, e, is_other);
  return spaces(c, i, e);
}

/* Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+   (Qwen 2: \p{N} alone) */
static size_t match_llama3(const uint32_t *c, size_t i, size_t e, size_t max_digits) {
  if (c[i] == '\'') {
    size_t k = contraction(c, i, e, 1);
    if (k > i) return k;
  }
  if (clkv__is_letter(c[i])) return run(c, i, e, clkv__is_letter);
  if (!is_nl(c[i]) && !clkv__is_number(c[i]) && i + 1 < e && clkv__is_letter(c[i + 1]))
    return run(c, i + 1, e, clkv__is_letter);
  if (clkv__is_number(c[i])) {
    size_t k = i;
    while (k < e && k - i < max_digits && clkv__is_number(c[k])) k++;
    return k;
  }
  size_t j = c[i] == ' ' && i + 1 < e ? i + 1 : i;
  if (is_other(c[j])) return run(c, run(c, j, e, is_other), e, is_nl);
  size_t k = run(c, i, e, clkv__is_space), last_nl = i;
  int nl = 0;
  for (size_t p = i; p < k; p++)
    if (is_nl(c[p])) last_nl = p, nl = 1;
  if (nl) return last_nl + 1;
  return spaces(c, i, e);
}

typedef struct span {
  size_t start, end; /* byte offsets */
} span;

/* Splits text into pre-tokens (byte spans) by the tokenizer's rules. Returns the count, -1 on OOM. */
static long pretokenize(const clkv__tokenizer *t, const char *text, size_t len, span **out) {
  uint32_t *cp = malloc((len + 1) * sizeof *cp);
  size_t *off = malloc((len + 1) * sizeof *off);
  span *sp = malloc((len + 1) * sizeof *sp);
  long ns = -1;
  if (!cp || !off || !sp) goto done;
  size_t n = 0;
  for (size_t i = 0, k; i < len; i += k) {
    off[n] = i;
    cp[n++] = clkv__utf8_next(text + i, len - i, &k);
  }
  off[n] = len;
  ns = 0;
  for (size_t i = 0; i < n;) {
    size_t e = n; /* the rules see only up to e (the digit pre-split cuts the text) */
    if (t->pretok == PRETOK_DIGITS_GPT2) {
      if (clkv__is_number(cp[i])) {
        sp[ns++] = (span){off[i], off[i + 1]};
        i++;
        continue;
      }
      e = i;
      while (e < n && !clkv__is_number(cp[e])) e++;
    }
    while (i < e) {
      size_t k;
      if (t->pretok == PRETOK_LLAMA3) k = match_llama3(cp, i, e, 3);
      else if (t->pretok == PRETOK_QWEN2) k = match_llama3(cp, i, e, 1);
      else k = match_gpt2(cp, i, e);
      if (k <= i) k = i + 1;
      sp[ns++] = (span){off[i], off[k]};
      i = k;
    }
  }
done:
  free(cp);
  free(off);
  if (ns < 0) free(sp);
  else *out = sp;
  return ns;
}

/* One pre-token: bytes → stand-in characters → symbols → merges → ids. */
static int encode_word(const clkv__tokenizer *t, const char *w, size_t len, char *mapped,
                       clkv__sym *sym, clkv__ids *out) {
  size_t m = 0;
  int n = 0;
  for (size_t i = 0; i < len; i++) {
    size_t k = clkv__utf8_put(clkv__byte_to_cp((unsigned char)w[i]), mapped + m);
    sym[n] = (clkv__sym){(uint32_t)m, (uint32_t)k, clkv__tok_find(t, mapped + m, k)};
    m += k;
    n++;
  }
  int32_t whole;
  if (t->ignore_merges && (whole = clkv__tok_find(t, mapped, m)) >= 0) {
    clkv__ids_push(out, whole);
    return 0;
  }
  n = clkv__merge_loop(t, mapped, sym, n, clkv__bpe_pair);
  if (n < 0) return -1;
  for (int i = 0; i < n; i++) {
    if (sym[i].id >= 0) clkv__ids_push(out, sym[i].id);
    else if (t->unk >= 0) clkv__ids_push(out, t->unk); /* a byte missing from the vocabulary */
  }
  return 0;
}

int clkv__bpe_encode(const clkv__tokenizer *t, const char *text, size_t len, clkv__ids *out) {
  span *sp = NULL;
  long ns = pretokenize(t, text, len, &sp);
  if (ns < 0) return CLKV_ERR_NO_MEMORY;
  size_t longest = 0;
  for (long i = 0; i < ns; i++)
    if (sp[i].end - sp[i].start > longest) longest = sp[i].end - sp[i].start;
  char *mapped = malloc(2 * longest + 1);
  clkv__sym *sym = malloc((longest + 1) * sizeof *sym);
  int rc = mapped && sym ? 0 : CLKV_ERR_NO_MEMORY;
  for (long i = 0; i < ns && !rc; i++)
    if (encode_word(t, text + sp[i].start, sp[i].end - sp[i].start, mapped, sym, out))
      rc = CLKV_ERR_NO_MEMORY;
  free(mapped);
  free(sym);
  free(sp);
  return rc;
}

/* tokenizer_spm.c — SentencePiece BPE (Llama 2 style): spaces become "▁" (with a space
 * prefix), characters merge by the highest vocabulary score, and characters the vocabulary
 * lacks fall back to "<0xXX>" byte tokens (or the unknown token). */
#include "text/tokenizer_int.h"

#include <stdlib.h>
#include <string.h>

/* Merge a and b when their joined text is a token; the higher its score, the sooner. */
static int spm_pair(const clkv__tokenizer *t, const char *text, const clkv__sym *a,
                    const clkv__sym *b, double *prio, int32_t *merged) {
  int32_t id = clkv__tok_find(t, text + a->start, (size_t)a->len + b->len);
  if (id < 0) return 0;
  *prio = t->score[id];
  *merged = id;
  return 1;
}

static int have_all_bytes(const clkv__tokenizer *t, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (t->byte_id[(unsigned char)s[i]] < 0) return 0;
  return 1;
}

int clkv__spm_encode(const clkv__tokenizer *t, const char *text, size_t len, clkv__ids *out) {
  static const char space[] = "\xe2\x96\x81"; /* U+2581 */
  char *esc = malloc(3 * len + 4);
  clkv__sym *sym = malloc((3 * len + 4) * sizeof *sym);
  int rc = CLKV_ERR_NO_MEMORY;
  if (!esc || !sym) goto done;
  size_t m = 0;
  if (t->add_space_prefix) m += (memcpy(esc, space, 3), 3);
  for (size_t i = 0; i < len; i++) {
    if (text[i] == ' ') m += (memcpy(esc + m, space, 3), 3);
    else esc[m++] = text[i];
  }
  int n = 0;
  for (size_t i = 0; i < m;) {
    size_t k; /* one character, or one byte of invalid UTF-8 (never the "▁" after it) */
    clkv__utf8_next(esc + i, m - i, &k);
    sym[n++] = (clkv__sym){(uint32_t)i, (uint32_t)k, clkv__tok_find(t, esc + i, k)};
    i += k;
  }
  n = clkv__merge_loop(t, esc, sym, n, spm_pair);
  if (n < 0) goto done;
  for (int i = 0; i < n; i++) {
    const char *s = esc + sym[i].start;
    if (sym[i].id >= 0) clkv__ids_push(out, sym[i].id);
    else if (have_all_bytes(t, s, sym[i].len))
      for (uint32_t b = 0; b < sym[i].len; b++) clkv__ids_push(out, t->byte_id[(unsigned char)s[b]]);
    else if (t->unk >= 0) clkv__ids_push(out, t->unk);
  }
  rc = 0;
done:
  free(esc);
  free(sym);
  return rc;
}

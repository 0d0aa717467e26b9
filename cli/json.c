/* json.c — every JSON value the clkv command writes is built with jansson (Debian
 * libjansson-dev) from text made valid UTF-8 first: a byte that does not start a
 * well-formed sequence (a character cut by -n, a stray byte) becomes U+FFFD. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0 if there is none
 * (no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  const unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (!len || c > 0xf4 || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && s[1] < 0xa0) return 0; /* overlong */
  if (c == 0xed && s[1] > 0x9f) return 0; /* surrogate */
  if (c == 0xf0 && s[1] < 0x90) return 0; /* overlong */
  if (c == 0xf4 && s[1] > 0x8f) return 0; /* above U+10FFFF */
  return len;
}

char *cli_utf8_valid(const char *s, size_t n, size_t *out_len) {
  char *o = malloc(3 * n + 1); /* each bad byte grows to three */
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_seq((const unsigned char *)s + i, n - i);
    if (l) {
      memcpy(o + k, s + i, l);
      k += l;
      i += l;
    } else {
      memcpy(o + k, "\xef\xbf\xbd", 3);
      k += 3;
      i++;
    }
  }
  o[k] = 0;
  if (out_len) *out_len = k;
  return o;
}

json_t *cli_json_text(const char *s, size_t n) {
  size_t len;
  char *v = cli_utf8_valid(s ? s : "", s ? n : 0, &len);
  json_t *j = v ? json_stringn(v, len) : NULL;
  free(v);
  return j ? j : json_string("");
}

int cli_json_write(FILE *f, json_t *j) {
  int rc = j ? json_dumpf(j, f, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) : -1;
  json_decref(j);
  return rc;
}

void cli_json_str(FILE *f, const char *s) {
  cli_json_write(f, cli_json_text(s, s ? strlen(s) : 0));
}

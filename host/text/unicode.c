/* unicode.c — the Unicode facts the tokenizer needs: UTF-8 decoding, the letter / number /
 * white-space classes of the pre-tokenizer rules (\p{L}, \p{N}, \s), and GPT-2's byte map. */
#include "text/tokenizer_int.h"

#include "unicode_tables.inc"

size_t clkv__utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 1;
}

uint32_t clkv__utf8_next(const char *s, size_t len, size_t *n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t k = clkv__utf8_len(u[0]);
  *n = 1;
  if (k == 1) return u[0] < 0x80 ? u[0] : 0xFFFD;
  if (k > len) return 0xFFFD;
  uint32_t cp = u[0] & (0xFF >> (k + 1));
  for (size_t i = 1; i < k; i++) {
    if ((u[i] & 0xC0) != 0x80) return 0xFFFD;
    cp = cp << 6 | (u[i] & 0x3F);
  }
  /* overlong 3/4-byte forms, surrogates and values past U+10FFFF are invalid */
  if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0xFFFD;
  *n = k;
  return cp;
}

size_t clkv__utf8_put(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid][0]) hi = mid;
    else if (cp > r[mid][1]) lo = mid + 1;
    else return 1;
  }
  return 0;
}

int clkv__is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(clkv__uni_letter, sizeof clkv__uni_letter / sizeof clkv__uni_letter[0], cp);
}

int clkv__is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(clkv__uni_number, sizeof clkv__uni_number / sizeof clkv__uni_number[0], cp);
}

/* The Unicode White_Space property. */
int clkv__is_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

/* GPT-2: the bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68
 * bytes, in increasing order, become U+0100, U+0101, ... */
static int byte_is_printable(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t clkv__byte_to_cp(unsigned char b) {
  if (byte_is_printable(b)) return b;
  if (b <= 0x20) return 0x100 + b;         /* stand-ins 0..32 */
  if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F); /* 33..66 */
  return 0x100 + 67;                       /* 0xAD */
}

int clkv__cp_to_byte(uint32_t cp) {
  if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
  uint32_t k = cp - 0x100;
  if (k < 33) return (int)k;
  if (k < 67) return (int)(0x7F + k - 33);
  return k == 67 ? 0xAD : -1;
}

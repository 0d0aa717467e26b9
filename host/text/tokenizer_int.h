/* tokenizer_int.h — what the tokenizer's own files share (tokenizer.c, tokenizer_bpe.c,
 * tokenizer_spm.c, unicode.c): the tokenizer object, the vocabulary hash, the merge loop
 * both BPE flavours use, and the Unicode helpers. Not for other modules. */
#ifndef CLKV_TOKENIZER_INT_H
#define CLKV_TOKENIZER_INT_H

#include "text/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* GGUF token types (tokenizer.ggml.token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* Pre-tokenizers of GPT-2-style vocabularies (tokenizer.ggml.pre). */
typedef enum clkv__pretok {
  PRETOK_GPT2 = 0,    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
  PRETOK_DIGITS_GPT2, /* every \p{N} split off alone first, then the GPT-2 rules (smollm, starcoder) */
  PRETOK_LLAMA3,      /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|... */
  PRETOK_QWEN2        /* the Llama 3 rules with \p{N} one at a time */
} clkv__pretok;

/* Merge entry of the GPT-2 BPE: the pair (left id, right id) → rank and merged id. */
typedef struct clkv__merge {
  uint64_t key; /* (uint64)left << 32 | right; UINT64_MAX when the slot is empty */
  int32_t rank;
  int32_t result;
} clkv__merge;

struct clkv__tokenizer {
  clkv__tok_kind kind;
  clkv__pretok pretok;
  int ignore_merges;      /* Llama 3: a whole pre-token found in the vocabulary is emitted as is */
  int n_vocab;
  char *tok_blob;         /* all token texts, each NUL-terminated */
  uint32_t *tok_off;      /* (n_vocab) offset in tok_blob */
  uint32_t *tok_len;      /* (n_vocab) */
  char *piece_blob;       /* decoded bytes of every token, each NUL-terminated */
  uint32_t *piece_off;    /* (n_vocab) */
  uint32_t *piece_len;    /* (n_vocab) */
  uint8_t *type;          /* (n_vocab) TT_* */
  uint8_t *eog;           /* (n_vocab) 1: generation stops here */
  float *score;           /* (n_vocab) SPM scores (0 when absent) */
  int32_t *hash;          /* (hash_cap) token ids by text, -1 empty; open addressing */
  uint32_t hash_cap;      /* power of two */
  clkv__merge *merges;    /* (merge_cap) open addressing; NULL when there are no merges */
  uint32_t merge_cap;
  int32_t *special;       /* ids of control/user-defined tokens, matched with parse_special */
  int n_special;
  int32_t byte_id[256];   /* SPM "<0xXX>" tokens, -1 when absent */
  int32_t bos, eos, eot, unk;
  int add_bos, add_space_prefix;
};

/* Growable list of token ids. */
typedef struct clkv__ids {
  int32_t *v;
  size_t n, cap;
  int oom;
} clkv__ids;
void clkv__ids_push(clkv__ids *l, int32_t id);

/* Vocabulary lookup: id of the token with exactly these bytes, or -1. */
int32_t clkv__tok_find(const clkv__tokenizer *t, const char *s, size_t len);

/* The merge loop of both BPE flavours. Symbols are byte spans of `text`; each has a token
 * id (-1: not in the vocabulary). pair() gives the priority of merging a and b (higher
 * first; ties go to the leftmost pair) and the merged id, or returns 0 if they cannot merge. */
typedef struct clkv__sym {
  uint32_t start, len;
  int32_t id;
} clkv__sym;
typedef int (*clkv__pair_fn)(const clkv__tokenizer *t, const char *text, const clkv__sym *a,
                             const clkv__sym *b, double *prio, int32_t *merged);
/* Merges in place; returns the final number of symbols, or -1 when out of memory. */
int clkv__merge_loop(const clkv__tokenizer *t, const char *text, clkv__sym *sym, int n,
                     clkv__pair_fn pair);

/* Encoders of one stretch of raw text (no special tokens inside). */
int clkv__bpe_encode(const clkv__tokenizer *t, const char *text, size_t len, clkv__ids *out);
/* SentencePiece: every stretch starts the text or follows a special token, so it gets the
 * space prefix when add_space_prefix is set. */
int clkv__spm_encode(const clkv__tokenizer *t, const char *text, size_t len, clkv__ids *out);
/* The clkv__pair_fn of the GPT-2 flavour: lower merge rank first. */
int clkv__bpe_pair(const clkv__tokenizer *t, const char *text, const clkv__sym *a,
                   const clkv__sym *b, double *prio, int32_t *merged);

/* ---- unicode.c ---- */
/* Decodes one UTF-8 character at s[0..len) (len > 0); sets *n to its byte length. An
 * invalid or cut sequence gives U+FFFD with *n = 1. */
uint32_t clkv__utf8_next(const char *s, size_t len, size_t *n);
/* Length of the UTF-8 character starting with byte c (1 for invalid lead bytes). */
size_t clkv__utf8_len(unsigned char c);
/* Writes cp as UTF-8 to out (4 bytes room); returns the byte count. */
size_t clkv__utf8_put(uint32_t cp, char *out);
int clkv__is_letter(uint32_t cp);
int clkv__is_number(uint32_t cp);
int clkv__is_space(uint32_t cp);
/* GPT-2 byte ↔ code point map: every byte has a printable stand-in. */
uint32_t clkv__byte_to_cp(unsigned char b);
int clkv__cp_to_byte(uint32_t cp); /* -1 if cp stands for no byte */

#endif /* CLKV_TOKENIZER_INT_H */

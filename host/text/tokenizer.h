/* tokenizer.h — the tokenizer stored in a GGUF: GPT-2 byte-level BPE (with the
 * pre-tokenizer the file names: "smollm", "llama-bpe", "gpt2", ...) and SentencePiece BPE
 * with byte fallback (Llama 2). Special/control tokens, BOS/EOS rules, and a streaming
 * UTF-8 decoder that never cuts a character. Internal to clkv. */
#ifndef CLKV_TOKENIZER_H
#define CLKV_TOKENIZER_H

#include "clkv.h"
#include "format/gguf.h"

#include <stddef.h>
#include <stdint.h>

typedef enum clkv__tok_kind { CLKV_TOK_GPT2 = 1, CLKV_TOK_SPM = 2 } clkv__tok_kind;

typedef struct clkv__tokenizer clkv__tokenizer;

/* Builds the tokenizer from tokenizer.ggml.* metadata (copies what it needs: the
 * clkv__gguf_file may be closed afterwards). Unknown tokenizer.ggml.model → CLKV_ERR_UNSUPPORTED. */
clkv_status clkv__tokenizer_load(const clkv__gguf_file *f, clkv__tokenizer **out, clkv_error *err);
void clkv__tokenizer_free(clkv__tokenizer *t);

clkv__tok_kind clkv__tokenizer_kind(const clkv__tokenizer *t);
int clkv__tokenizer_n_vocab(const clkv__tokenizer *t);
int32_t clkv__tokenizer_bos(const clkv__tokenizer *t);   /* -1 if none */
int32_t clkv__tokenizer_eos(const clkv__tokenizer *t);   /* -1 if none */
int clkv__tokenizer_add_bos(const clkv__tokenizer *t);   /* tokenizer.ggml.add_bos_token (default: SPM 1, GPT2 0) */
/* 1 if generation should stop at this token: EOS, EOT (tokenizer.ggml.eot_token_id) and
 * tokens such as <|im_end|>, <|eot_id|>, <|end|>, </s> when they are control tokens. */
int clkv__tokenizer_is_eog(const clkv__tokenizer *t, int32_t id);

/* Encodes len bytes of text. add_bos: prepend BOS (when the model has one). parse_special:
 * text that equals a control/user-defined token (e.g. "<|im_start|>") becomes that token.
 * Writes at most cap ids; returns the number of ids the text needs (may exceed cap), or a
 * negative clkv_status on failure. */
int clkv__tokenizer_encode(const clkv__tokenizer *t, const char *text, size_t len, int add_bos,
                          int parse_special, int32_t *ids, int cap);

/* The bytes this token stands for when decoded (GPT-2: byte-unmapped; SPM: "▁" → " ",
 * "<0x0A>" → "\n"). Control tokens (BOS, EOS, <|im_start|> ...) give their text only if
 * render_special, else "". Never NULL; *len set. Out-of-range id gives "". */
const char *clkv__tokenizer_piece(const clkv__tokenizer *t, int32_t id, int render_special,
                                 size_t *len);
/* The raw vocabulary string of the token (as stored in the GGUF). */
const char *clkv__tokenizer_token(const clkv__tokenizer *t, int32_t id);

/* Streaming decode: feed token pieces, get back only complete UTF-8 characters. */
typedef struct clkv__utf8_stream {
  char pending[8];
  int n_pending;
} clkv__utf8_stream;
/* Appends the piece to the pending bytes; copies every complete character to out
 * (cap >= len + 8 is enough) and returns the number of bytes written. Invalid bytes are
 * passed through one at a time rather than held forever. */
size_t clkv__utf8_stream_push(clkv__utf8_stream *s, const char *piece, size_t len, char *out,
                             size_t cap);
/* Flushes whatever is left (possibly an incomplete character) into out. */
size_t clkv__utf8_stream_flush(clkv__utf8_stream *s, char *out, size_t cap);

#endif /* CLKV_TOKENIZER_H */

/* text_api.c — the public tokenizer and chat-template entry points (clkv_tokenize,
 * clkv_token_text, clkv_chat_format) over the model's tokenizer and template. */
#include "engine/engine.h"

#include <string.h>

int clkv_tokenize(const clkv_model *m, const char *text, int add_special, int32_t *ids, int cap) {
  if (!m || !text) return CLKV_ERR_INVALID_ARG;
  int bos = add_special && clkv__tokenizer_add_bos(m->tok);
  return clkv__tokenizer_encode(m->tok, text, strlen(text), bos, 1, ids, cap);
}

const char *clkv_token_text(const clkv_model *m, int32_t id, size_t *len) {
  size_t l = 0;
  const char *s = m ? clkv__tokenizer_piece(m->tok, id, 0, &l) : "";
  if (len) *len = l;
  return s;
}

char *clkv_chat_format(const clkv_model *m, const clkv_chat_message *msgs, size_t n,
                       int add_assistant_prefix, clkv_error *err) {
  if (!m || (!msgs && n)) {
    clkv__err(err, CLKV_ERR_INVALID_ARG, "model and messages are required");
    return NULL;
  }
  return clkv__chat_render(m->chat, msgs, n, add_assistant_prefix, m->bos_text, m->eos_text,
                           m->default_system, err);
}

/* chat.h — chat templates for the common model families, recognised from the Jinja
 * template stored in the GGUF (tokenizer.chat_template): ChatML (SmolLM2), Qwen's ChatML,
 * Llama 2, Llama 3, Mistral, Zephyr, Gemma. We render the known families ourselves; no
 * Jinja engine. */
#ifndef CLKV_CHAT_H
#define CLKV_CHAT_H

#include "clkv.h"

#include <stddef.h>

typedef enum clkv__chat_kind {
  CLKV_CHAT_UNKNOWN = 0,
  CLKV_CHAT_CHATML,
  CLKV_CHAT_LLAMA2,
  CLKV_CHAT_LLAMA3,
  CLKV_CHAT_MISTRAL,
  CLKV_CHAT_ZEPHYR,
  CLKV_CHAT_GEMMA, /* <start_of_turn>user|model ... <end_of_turn>; system folded into user */
  CLKV_CHAT_QWEN   /* ChatML as Qwen 2/2.5/3 write it (default system from the template) */
} clkv__chat_kind;

/* Recognises the family from the template text (NULL or "" → CLKV_CHAT_UNKNOWN). */
clkv__chat_kind clkv__chat_detect(const char *tmpl);
const char *clkv__chat_kind_name(clkv__chat_kind k);
/* Default system prompt the template inserts when there is none (ChatML templates of
 * SmolLM2 do: "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
 * extracted from the template text when present, else NULL. malloc'd, caller frees. */
char *clkv__chat_default_system(const char *tmpl);
/* Renders messages in the given family. bos/eos: the model's BOS/EOS token texts (e.g.
 * "<s>", "</s>"), used by Llama 2 / Mistral; may be "". default_system may be NULL.
 * Unknown kind falls back to ChatML. Returns a malloc'd string or NULL with err set. */
char *clkv__chat_render(clkv__chat_kind kind, const clkv_chat_message *msgs, size_t n,
                        int add_assistant_prefix, const char *bos, const char *eos,
                        const char *default_system, clkv_error *err);

#endif /* CLKV_CHAT_H */

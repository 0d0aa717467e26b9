/* test_chat.c — chat templates (host/chat.c): each family renders a known string for
 * system + user + assistant + user, detection on real template snippets (and on the
 * template stored in the default model), default system prompt extraction. */
#include "text/chat.h"
#include "format/gguf.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const clkv_chat_message conv[] = {
    {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};

static void check_render(clkv__chat_kind k, const clkv_chat_message *m, size_t n, int prefix,
                         const char *def_sys, const char *want) {
  clkv_error err = {0};
  char *got = clkv__chat_render(k, m, n, prefix, "<s>", "</s>", def_sys, &err);
  cr_assert_not_null(got, "%s: %s", clkv__chat_kind_name(k), err.message);
  cr_expect_str_eq(got, want, "%s rendered:\n%s", clkv__chat_kind_name(k), got);
  free(got);
}

Test(chat, chatml) {
  check_render(CLKV_CHAT_CHATML, conv, 4, 1, NULL,
               "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
               "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
               "<|im_start|>assistant\n");
  /* the default system prompt comes first when there is no system message, not otherwise */
  check_render(CLKV_CHAT_CHATML, conv + 1, 1, 0, "D",
               "<|im_start|>system\nD<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n");
  check_render(CLKV_CHAT_CHATML, conv, 2, 0, "D",
               "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n");
  check_render(CLKV_CHAT_CHATML, conv, 0, 1, "D", "<|im_start|>assistant\n");
  /* an unknown family renders as ChatML */
  check_render(CLKV_CHAT_UNKNOWN, conv + 1, 1, 1, NULL,
               "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n");
}

Test(chat, llama3) {
  check_render(CLKV_CHAT_LLAMA3, conv, 4, 1, NULL,
               "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const clkv_chat_message padded[] = {{"user", "  hi there \n"}};
  check_render(CLKV_CHAT_LLAMA3, padded, 1, 0, NULL,
               "<|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>");
}

Test(chat, llama2) {
  /* the leading <s> is the tokenizer's BOS; later turns carry their own */
  check_render(CLKV_CHAT_LLAMA2, conv, 4, 1, NULL,
               "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
  check_render(CLKV_CHAT_LLAMA2, conv + 1, 1, 1, NULL, "[INST] U1 [/INST]");
}

Test(chat, mistral) {
  check_render(CLKV_CHAT_MISTRAL, conv, 4, 1, NULL,
               "[INST] S\n\nU1 [/INST]A1</s>[INST] U2 [/INST]");
}

Test(chat, zephyr) {
  check_render(CLKV_CHAT_ZEPHYR, conv, 4, 1, NULL,
               "<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n"
               "<|assistant|>\n");
}

Test(chat, render_rejects_missing_messages) {
  clkv_error err = {0};
  cr_assert_null(clkv__chat_render(CLKV_CHAT_CHATML, NULL, 2, 1, "", "", NULL, &err));
  cr_assert_eq(err.status, CLKV_ERR_INVALID_ARG);
  cr_assert_gt(strlen(err.message), 0);
}

/* Snippets of the Jinja templates the families ship with. */
static const char llama2_tmpl[] =
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
    "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in "
    "messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + "
    "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim "
    "+ ' ' + eos_token }}{% endif %}{% endfor %}";
static const char mistral_tmpl[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' "
    "+ message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% endif %}{% endfor %}";
static const char llama3_tmpl[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
static const char zephyr_tmpl[] =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
    "'<|system|>\n' + message['content'] + eos_token }}\n{% endif %}\n{% endfor %}";
static const char qwen_tmpl[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
static const char chatml_no_default[] =
    "{% for message in messages %}{{'<|im_start|>system\n' + messages[0]['content'] + "
    "'<|im_end|>'}}{% endfor %}";

Test(chat, detect_families) {
  cr_assert_eq(clkv__chat_detect(llama2_tmpl), CLKV_CHAT_LLAMA2);
  cr_assert_eq(clkv__chat_detect(mistral_tmpl), CLKV_CHAT_MISTRAL);
  cr_assert_eq(clkv__chat_detect(llama3_tmpl), CLKV_CHAT_LLAMA3);
  cr_assert_eq(clkv__chat_detect(zephyr_tmpl), CLKV_CHAT_ZEPHYR);
  cr_assert_eq(clkv__chat_detect(qwen_tmpl), CLKV_CHAT_CHATML);
  cr_assert_eq(clkv__chat_detect(NULL), CLKV_CHAT_UNKNOWN);
  cr_assert_eq(clkv__chat_detect(""), CLKV_CHAT_UNKNOWN);
  cr_assert_eq(clkv__chat_detect("{{ messages }}"), CLKV_CHAT_UNKNOWN);
  cr_assert_str_eq(clkv__chat_kind_name(CLKV_CHAT_CHATML), "chatml");
  cr_assert_str_eq(clkv__chat_kind_name(CLKV_CHAT_LLAMA3), "llama3");
  cr_assert_str_eq(clkv__chat_kind_name(CLKV_CHAT_UNKNOWN), "unknown");
}

Test(chat, default_system_only_from_a_literal) {
  char *s = clkv__chat_default_system(qwen_tmpl); /* "\\n" escapes in the template text */
  cr_assert_not_null(s);
  cr_assert_str_eq(s, "You are a helpful assistant.");
  free(s);
  cr_assert_null(clkv__chat_default_system(chatml_no_default));
  cr_assert_null(clkv__chat_default_system(llama3_tmpl));
  cr_assert_null(clkv__chat_default_system(NULL));
}

Test(chat, default_model_template) {
  const char *path = getenv("CLKV_MODEL");
  if (!path) path = CLKV_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (access(path, R_OK) != 0) cr_skip_test("default model not found (run scripts/setup or set CLKV_MODEL)");
  clkv__gguf_file *f = NULL;
  clkv_error err = {0};
  cr_assert_eq(clkv__gguf_open(path, &f, &err), CLKV_OK, "%s", err.message);
  static char tmpl[16384];
  int found = clkv__gguf_get_str(f, "tokenizer.chat_template", tmpl, sizeof tmpl);
  clkv__gguf_close(f);
  if (!found) cr_skip_test("the model stores no chat template");
  cr_assert_eq(clkv__chat_detect(tmpl), CLKV_CHAT_CHATML);
  char *sys = clkv__chat_default_system(tmpl);
  cr_assert_not_null(sys);
  cr_assert_str_eq(sys, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  check_render(CLKV_CHAT_CHATML, conv + 1, 1, 1, sys,
               "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
               "Hugging Face<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n");
  free(sys);
}

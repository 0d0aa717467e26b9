/* fuzz_chat.c — libFuzzer harness: chat-template recognition, the default system prompt
 * taken from the template, and rendering of every family over messages from the input.
 * Input: fields split by NUL: the template, then role and content pairs; the last field,
 * when unpaired, is the BOS text. */
#include "fuzz.h"
#include "text/chat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


enum { MAX_MSGS = 32 };

int clkv_fuzz_chat(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  char *buf = malloc(size + 1);
  memcpy(buf, data, size);
  buf[size] = 0;
  const char *field[2 * MAX_MSGS + 2];
  size_t n = 0;
  for (size_t i = 0; i <= size && n < sizeof field / sizeof field[0]; i += strlen(buf + i) + 1)
    field[n++] = buf + i;
  const char *tmpl = field[0];
  const clkv__chat_kind kind = clkv__chat_detect(tmpl);
  if (!clkv__chat_kind_name(kind)) abort();
  char *sys = clkv__chat_default_system(tmpl);
  if (sys && strlen(sys) > strlen(tmpl)) abort(); /* a part of the template, unescaped */
  clkv_chat_message msgs[MAX_MSGS];
  size_t n_msgs = 0;
  for (size_t i = 1; i + 1 < n && n_msgs < MAX_MSGS; i += 2)
    msgs[n_msgs++] = (clkv_chat_message){.role = field[i], .content = field[i + 1]};
  const char *bos = (n % 2 == 0) ? field[n - 1] : "";
  for (int k = CLKV_CHAT_UNKNOWN; k <= CLKV_CHAT_ZEPHYR; k++) {
    for (int prefix = 0; prefix < 2; prefix++) {
      clkv_error err;
      err.message[0] = 0;
      char *out = clkv__chat_render((clkv__chat_kind)k, msgs, n_msgs, prefix, bos, "</s>", sys, &err);
      if (!out && !err.message[0]) abort(); /* a refusal says why */
      free(out);
    }
  }
  free(sys);
  free(buf);
  return 0;
}

#ifndef CLKV_FUZZ_REPLAY
CLKV_FUZZ_TARGET(clkv_fuzz_chat)
#endif

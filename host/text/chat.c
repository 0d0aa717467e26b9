/* chat.c — chat prompts for the common template families (ChatML, Qwen, Llama 2, Llama 3,
 * Mistral, Zephyr, Gemma): the family is recognised from markers in the GGUF's Jinja template and
 * rendered by hand. A BOS at the very start is left to the tokenizer (add_bos). */
#include "text/chat.h"

#include "clkv_internal.h"

#include <stdlib.h>
#include <string.h>

clkv__chat_kind clkv__chat_detect(const char *tmpl) {
  if (!tmpl || !*tmpl) return CLKV_CHAT_UNKNOWN;
  if (strstr(tmpl, "<|im_start|>"))
    return strstr(tmpl, "Qwen") || strstr(tmpl, "<think>") || strstr(tmpl, "<tool_call>")
               ? CLKV_CHAT_QWEN
               : CLKV_CHAT_CHATML;
  if (strstr(tmpl, "<start_of_turn>")) return CLKV_CHAT_GEMMA;
  if (strstr(tmpl, "<|start_header_id|>")) return CLKV_CHAT_LLAMA3;
  if (strstr(tmpl, "[INST]")) return strstr(tmpl, "<<SYS>>") ? CLKV_CHAT_LLAMA2 : CLKV_CHAT_MISTRAL;
  if (strstr(tmpl, "<|user|>")) return CLKV_CHAT_ZEPHYR;
  return CLKV_CHAT_UNKNOWN;
}

const char *clkv__chat_kind_name(clkv__chat_kind k) {
  switch (k) {
  case CLKV_CHAT_CHATML: return "chatml";
  case CLKV_CHAT_LLAMA2: return "llama2";
  case CLKV_CHAT_LLAMA3: return "llama3";
  case CLKV_CHAT_MISTRAL: return "mistral";
  case CLKV_CHAT_ZEPHYR: return "zephyr";
  case CLKV_CHAT_GEMMA: return "gemma";
  case CLKV_CHAT_QWEN: return "qwen";
  default: return "unknown";
  }
}

/* The literal between "<|im_start|>system\n" and "<|im_end|>" in a template, when it is a
 * plain string literal (no quote ends it: "' + messages[0]['content'] + '" is not one). */
char *clkv__chat_default_system(const char *tmpl) {
  static const char mark[] = "<|im_start|>system";
  const char *p = tmpl ? strstr(tmpl, mark) : NULL;
  for (; p; p = strstr(p + 1, mark)) {
    const char *s = p + sizeof mark - 1;
    if (*s == '\n') s += 1;
    else if (s[0] == '\\' && s[1] == 'n') s += 2;
    else continue;
    const char *e = strstr(s, "<|im_end|>");
    if (!e || e == s) continue;
    char *out = malloc((size_t)(e - s) + 1);
    if (!out) return NULL;
    size_t n = 0;
    int literal = 1;
    for (const char *q = s; q < e && literal; q++) {
      if (*q == '\'' || *q == '"' || *q == '{' || *q == '}') literal = 0;
      else if (*q == '\\' && q + 1 < e) {
        q++;
        out[n++] = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
      } else {
        out[n++] = *q;
      }
    }
    out[n] = 0;
    if (literal) return out;
    free(out);
  }
  return NULL;
}

/* ---- a growable string ---- */
typedef struct sbuf {
  char *s;
  size_t n, cap;
  int oom;
} sbuf;

static void put_n(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void put(sbuf *b, const char *s) { put_n(b, s, strlen(s)); }

/* Content without leading and trailing white space (Jinja's trim). */
static void put_trimmed(sbuf *b, const char *s) {
  const char *e = s + strlen(s);
  while (s < e && strchr(" \t\r\n", *s)) s++;
  while (e > s && strchr(" \t\r\n", e[-1])) e--;
  put_n(b, s, (size_t)(e - s));
}

static int is_role(const clkv_chat_message *m, const char *r) { return m->role && !strcmp(m->role, r); }

/* ChatML, Llama 3, Zephyr: one header + content + terminator per message. */
static void render_headers(sbuf *b, clkv__chat_kind kind, const clkv_chat_message *m, size_t n,
                           int prefix, const char *eos) {
  for (size_t i = 0; i < n; i++) {
    const char *role = m[i].role ? m[i].role : "user", *c = m[i].content ? m[i].content : "";
    if (kind == CLKV_CHAT_LLAMA3) {
      put(b, "<|start_header_id|>"), put(b, role), put(b, "<|end_header_id|>\n\n");
      put_trimmed(b, c), put(b, "<|eot_id|>");
    } else if (kind == CLKV_CHAT_ZEPHYR) {
      put(b, "<|"), put(b, role), put(b, "|>\n"), put(b, c), put(b, eos), put(b, "\n");
    } else {
      put(b, "<|im_start|>"), put(b, role), put(b, "\n"), put(b, c), put(b, "<|im_end|>\n");
    }
  }
  if (!prefix) return;
  if (kind == CLKV_CHAT_LLAMA3) put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
  else if (kind == CLKV_CHAT_ZEPHYR) put(b, "<|assistant|>\n");
  else put(b, "<|im_start|>assistant\n");
}

/* Llama 2: [INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...
 * Mistral: [INST] {sys}\n\n{user} [/INST]{assistant}</s>[INST] ...
 * The system prompt goes into the next user turn. */
static void render_inst(sbuf *b, int llama2, const clkv_chat_message *m, size_t n,
                        const char *bos, const char *eos) {
  const char *sys = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *c = m[i].content ? m[i].content : "";
    if (is_role(&m[i], "system")) {
      sys = c;
    } else if (is_role(&m[i], "assistant")) {
      if (llama2) put(b, " "), put_trimmed(b, c), put(b, " "), put(b, eos);
      else put(b, c), put(b, eos);
    } else {
      if (llama2 && b->n) put(b, bos);
      put(b, "[INST] ");
      if (sys && llama2) put(b, "<<SYS>>\n"), put(b, sys), put(b, "\n<</SYS>>\n\n");
      else if (sys) put(b, sys), put(b, "\n\n");
      sys = NULL;
      if (llama2) put_trimmed(b, c);
      else put(b, c);
      put(b, " [/INST]");
    }
  }
}

/* Gemma: <start_of_turn>{user|model}\n{content, trimmed}<end_of_turn>\n per turn; Gemma has
 * no system turn, so a system prompt opens the next user turn followed by a blank line. */
static void render_gemma(sbuf *b, const clkv_chat_message *m, size_t n, int prefix) {
  const char *sys = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *c = m[i].content ? m[i].content : "";
    if (is_role(&m[i], "system")) {
      sys = c;
      continue;
    }
    put(b, "<start_of_turn>"), put(b, is_role(&m[i], "assistant") ? "model" : "user"), put(b, "\n");
    if (sys) put_trimmed(b, sys), put(b, "\n\n");
    sys = NULL;
    put_trimmed(b, c), put(b, "<end_of_turn>\n");
  }
  if (prefix) put(b, "<start_of_turn>model\n");
}

char *clkv__chat_render(clkv__chat_kind kind, const clkv_chat_message *msgs, size_t n,
                        int add_assistant_prefix, const char *bos, const char *eos,
                        const char *default_system, clkv_error *err) {
  if (!msgs && n) {
    clkv__err(err, CLKV_ERR_INVALID_ARG, "chat: %zu messages but no message array", n);
    return NULL;
  }
  clkv_chat_message *all = malloc((n + 1) * sizeof *all);
  sbuf b = {0};
  if (!all) goto oom;
  size_t k = 0;
  if (default_system && n > 0 && !is_role(&msgs[0], "system"))
    all[k++] = (clkv_chat_message){"system", default_system};
  for (size_t i = 0; i < n; i++) all[k++] = msgs[i];
  bos = bos && *bos ? bos : "<s>";
  eos = eos && *eos ? eos : "</s>";
  put(&b, "");
  if (kind == CLKV_CHAT_GEMMA)
    render_gemma(&b, all, k, add_assistant_prefix);
  else if (kind == CLKV_CHAT_LLAMA2 || kind == CLKV_CHAT_MISTRAL)
    render_inst(&b, kind == CLKV_CHAT_LLAMA2, all, k, bos, eos);
  else
    render_headers(&b, kind, all, k, add_assistant_prefix, eos);
  free(all);
  if (b.oom) goto oom;
  return b.s;
oom:
  free(b.s);
  clkv__err(err, CLKV_ERR_NO_MEMORY, "chat: no memory to render %zu messages", n);
  return NULL;
}

/* arch.c — the architecture table (see arch.h). Facts from the models' published configs
 * and the GGUF conventions: Gemma 3 (embedding × sqrt(dim), per-head Q/K RMSNorm, post-
 * attention and post-FFN norms, GELU-tanh gate, NeoX RoPE, base 10000 on its sliding-window
 * layers and the file's base on every sixth, global layer), Qwen 2 (Q/K/V biases, NeoX),
 * Qwen 3 (per-head Q/K norm, NeoX), Phi-3 (fused QKV and gate‖up tensors, NeoX). */
#include "model/arch.h"

#include <string.h>

static const clkv__arch ARCHS[] = {
    {.name = "llama", .family = "Llama 2/3, SmolLM2, TinyLlama"},
    {.name = "mistral", .family = "Mistral"},
    {.name = "gemma3", .family = "Gemma 3", .rope_neox = 1, .act = CLKV__ACT_GELU_TANH,
     .qk_norm = 1, .post_norms = 1, .swa_period = 6, .rope_base_local = 10000.0f,
     .embd_scale_sqrt = 1},
    {.name = "qwen2", .family = "Qwen 2 / 2.5", .rope_neox = 1, .qkv_bias = 1},
    {.name = "qwen3", .family = "Qwen 3", .rope_neox = 1, .qk_norm = 1},
    {.name = "phi3", .family = "Phi-3", .rope_neox = 1, .fused_qkv = 1, .fused_gate_up = 1},
};
#define N_ARCHS (sizeof ARCHS / sizeof ARCHS[0])

const clkv__arch *clkv__arch_find(const char *name) {
  for (size_t i = 0; name && i < N_ARCHS; i++)
    if (!strcmp(ARCHS[i].name, name)) return &ARCHS[i];
  return NULL;
}

const char *clkv__arch_names(void) {
  static char buf[256];
  if (!buf[0]) {
    size_t n = 0;
    for (size_t i = 0; i < N_ARCHS && n < sizeof buf; i++)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s (%s)", i ? ", " : "", ARCHS[i].name,
                            ARCHS[i].family);
  }
  return buf;
}

int clkv__arch_layer_window(const clkv__arch *a, int window, int l) {
  if (window <= 0) return 0;
  return a->swa_period > 0 && (l + 1) % a->swa_period == 0 ? 0 : window;
}

int clkv__arch_pool_window(const clkv__arch *a, int window) {
  return a->swa_period > 0 ? 0 : window;
}

float clkv__arch_layer_rope_base(const clkv__arch *a, int window, float base, int l) {
  return a->rope_base_local > 0 && clkv__arch_layer_window(a, window, l) ? a->rope_base_local
                                                                          : base;
}

int clkv__arch_split_qkv(const clkv__arch *a) { return a->qkv_bias || a->qk_norm; }

/* arch.h — architectures as data: one description per GGUF `general.architecture`, read by
 * the loader (tensor names, repacks), the engine's layer loop (which steps run), the kernels'
 * build options (activation, embedding scale) and the plain-C reference (tests/ref).
 * Adding an architecture is one entry in arch.c plus any genuinely new operation. */
#ifndef CLKV_ARCH_H
#define CLKV_ARCH_H

#include "format/gguf.h"

typedef enum clkv__act {
  CLKV__ACT_SILU = 0,      /* silu(gate) · up (SwiGLU) */
  CLKV__ACT_GELU_TANH = 1, /* gelu_tanh(gate) · up (GeGLU) */
} clkv__act;

typedef struct clkv__arch {
  const char *name;        /* general.architecture, also the metadata key prefix */
  const char *family;      /* the models it is known for, for messages */
  int rope_neox;           /* 1: RoPE pairs (i, i + head_dim/2) (GPT-NeoX); 0: (2i, 2i+1) */
  clkv__act act;           /* gated feed-forward activation */
  int qkv_bias;            /* blk.N.attn_{q,k,v}.bias added to the projections */
  int qk_norm;             /* blk.N.attn_{q,k}_norm.weight: RMSNorm of each q and k head */
  int post_norms;          /* blk.N.post_attention_norm / post_ffw_norm: RMSNorm of each
                              branch's output before it is added to the residual */
  int fused_qkv;           /* blk.N.attn_qkv.weight (q, k, v rows) instead of three tensors */
  int fused_gate_up;       /* blk.N.ffn_up.weight holds gate rows then up rows; no ffn_gate */
  int swa_period;          /* > 0 with a sliding window: layer l attends globally when
                              (l + 1) % swa_period == 0, within the window otherwise;
                              0: every layer uses the window (when the file has one) */
  float rope_base_local;   /* RoPE base of windowed layers (0: the file's rope.freq_base) */
  int embd_scale_sqrt;     /* the token embedding is multiplied by sqrt(embedding length) */
  float logit_softcap;     /* > 0: logits = cap · tanh(logits / cap) */
} clkv__arch;

/* The description for an architecture name, or NULL. */
const clkv__arch *clkv__arch_find(const char *name);
/* "llama, mistral, gemma3, ..." for messages. */
const char *clkv__arch_names(void);
/* Layer l's sliding window (0: attends to every position) given the file's window. */
int clkv__arch_layer_window(const clkv__arch *a, int window, int l);
/* The window every layer shares (what the KV pool may release blocks by), else 0. */
int clkv__arch_pool_window(const clkv__arch *a, int window);
/* Layer l's RoPE base given the file's base. */
float clkv__arch_layer_rope_base(const clkv__arch *a, int window, float base, int l);
/* 1 when q, k and v cannot take the fused QKV epilogue (bias or per-head norm first). */
int clkv__arch_split_qkv(const clkv__arch *a);

#endif /* CLKV_ARCH_H */

/* ref.h — the plain-C reference (the oracle): dequantization, single ops, and a llama2.c
 * style forward pass over a GGUF model with all weights in F32. Kernels and the engine
 * are compared against it. Used by tests/ and bench/. */
#ifndef CLKV_REF_H
#define CLKV_REF_H

#include "format/gguf.h"
#include "model/arch.h"

#include <stddef.h>
#include <stdint.h>

/* ---- single ops (all F32, row-major, W is [rows][cols] with cols contiguous) ---- */
void ref_matvec(const float *W, const float *x, float *y, int rows, int cols); /* y = W x */
void ref_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* RoPE in the "normal" llama.cpp layout (pairs x[2i], x[2i+1]) over one head of size
 * head_dim, theta_i = pos * base^(-2i/head_dim). */
void ref_rope(float *x, int head_dim, int pos, float base);
/* RoPE in the GPT-NeoX layout (pairs x[i], x[i + head_dim/2]), the same angles. */
void ref_rope_neox(float *x, int head_dim, int pos, float base);
/* gelu_tanh(g) * u (GeGLU). */
void ref_geglu(float *out, const float *gate, const float *up, int n);
void ref_softmax(float *x, int n);
void ref_swiglu(float *out, const float *gate, const float *up, int n); /* silu(g)*u */
/* One head's attention over n_ctx cached keys/values ([n_ctx][head_dim]): out[head_dim]. */
void ref_attention_head(float *out, const float *q, const float *k, const float *v, int n_ctx,
                        int head_dim, int k_stride, int v_stride);
/* Rounds x through fp16 and back (as an F16 KV cache stores it). */
float ref_round_f16(float x);
/* Replaces x[0..n) by what a Q8 (type 1) or Q4 (type 2) KV cache gives back, in groups of
 * qg values: Q8 symmetric, scale = max|x| / 127, q = round(x / scale) in -127..127; Q4
 * asymmetric, scale = (max - min) / 15, offset = min, q = round((x - min) / scale) in 0..15;
 * scale and offset rounded to half values. The format of kernels/common.cl, written
 * independently. */
void ref_kv_quantize(float *x, int n, int qg, int type);

/* ---- model ---- */
typedef struct ref_layer {
  float *attn_norm;  /* (dim) */
  float *wq;         /* (n_heads*head_dim, dim) */
  float *wk;         /* (n_kv_heads*head_dim, dim) */
  float *wv;         /* (n_kv_heads*head_dim, dim) */
  float *wo;         /* (dim, n_heads*head_dim) */
  float *ffn_norm;   /* (dim) */
  float *w_gate;     /* (n_ff, dim) */
  float *w_up;       /* (n_ff, dim) */
  float *w_down;     /* (dim, n_ff) */
  /* as the architecture has them (NULL otherwise) */
  float *bq, *bk, *bv;            /* (q rows), (kv rows) x2 biases */
  float *q_norm, *k_norm;         /* (head_dim) per-head RMSNorm weights */
  float *post_attn_norm, *post_ffn_norm; /* (dim) norms of each branch's output */
  float *qkv, *gate_up;           /* fused tensors the views above point into */
} ref_layer;

typedef struct ref_model {
  const clkv__arch *arch; /* the architecture's description (host/model/arch.c) */
  float rope_base_local;  /* windowed layers' base (the arch's, or rope_base) */
  int n_layers, dim, n_heads, n_kv_heads, head_dim, n_ff, n_vocab, n_ctx;
  float eps, rope_base;
  float *tok_embd;   /* (n_vocab, dim) */
  float *out_norm;   /* (dim) */
  float *output;     /* (n_vocab, dim); == tok_embd when tied */
  ref_layer *layers; /* (n_layers) */
  int kv_f16;        /* 1: K and V rounded through fp16 when cached (default 1) */
  int kv_type;       /* 1 Q8, 2 Q4: K and V quantized per head when cached (overrides kv_f16) */
  int window;        /* sliding window: attend to the last `window` positions (0 = all); from
                        the file, per layer as the architecture's pattern says */
  /* state */
  float *k_cache, *v_cache; /* (n_layers, n_ctx, n_kv_heads*head_dim) */
  float *x, *xb, *xb2, *q, *hb, *hb2, *att, *logits;
} ref_model;

/* Loads every weight as F32 from a GGUF llama model (dequantizing), with a cache of n_ctx
 * positions (0 → the model's context length capped at 2048). Returns NULL with err set. */
ref_model *ref_model_load(const clkv__gguf_file *f, int n_ctx, clkv_error *err);
void ref_model_free(ref_model *m);
/* Runs one token at position pos (0-based; earlier positions must have been run) and
 * returns the logits (n_vocab, owned by m). */
const float *ref_forward(ref_model *m, int32_t token, int pos);
/* Greedy: runs the prompt, then generates n tokens by argmax (lowest id on ties).
 * out must hold n ids. Returns the number generated (stops early on stop_id >= 0). */
int ref_generate_greedy(ref_model *m, const int32_t *prompt, int n_prompt, int n,
                        int32_t stop_id, int32_t *out);

/* ---- tiny random models for tests: a llama GGUF with seeded random weights ---- */
typedef struct ref_tiny_params {
  const char *arch; /* an architecture of host/model/arch.c (NULL: "llama"); its tensors
                       (fused or not, biases, norms) are written as it describes */
  int head_dim;     /* 0: dim / n_heads */
  int n_layers, dim, n_heads, n_kv_heads, n_ff, n_vocab, n_ctx;
  uint32_t wtype;   /* type of the 2-D weights: any runnable type (kernels/contract.h) */
  uint32_t etype;   /* type of token_embd */
  int tied;         /* 1: no output.weight */
  uint64_t seed;
  float rope_base;
  float rms_eps;      /* > 0: the RMSNorm epsilon written; 0: 1e-5 */
  int sliding_window; /* > 0: written as llama.attention.sliding_window */
  const char *chat_template; /* non-NULL: written as tokenizer.chat_template */
} ref_tiny_params;
ref_tiny_params ref_tiny_default(void); /* 2 layers, dim 64, 4 heads, 2 kv heads, ff 128,
                                           vocab 256, ctx 256, Q4_1 weights, Q8_0 embd */
/* Writes the model to path (a gpt2 tokenizer over 256 byte tokens is included so the file
 * is loadable by the engine). Returns CLKV_OK. */
clkv_status ref_tiny_write(const ref_tiny_params *p, const char *path, clkv_error *err);

#endif /* CLKV_REF_H */

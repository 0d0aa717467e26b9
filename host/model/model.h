/* model.h — the loaded model: weights on the device in their stored type (repacked for the
 * fused kernels), tokenizer, chat template, launch shapes and the kernel variants it needs.
 * Internal to clkv. */
#ifndef CLKV_MODEL_H
#define CLKV_MODEL_H

#include "format/gguf.h"
#include "model/arch.h"
#include "ops/gemm.h"
#include "text/chat.h"
#include "text/tokenizer.h"

/* A weight matrix on the device: rows × cols (cols contiguous), stored type. */
typedef struct clkv__weight {
  cl_mem buf;
  uint32_t type;
  uint32_t rows, cols;
  size_t bytes;
} clkv__weight;

typedef struct clkv__layer {
  cl_mem attn_norm, ffn_norm; /* (dim) F32 */
  cl_mem post_attn_norm, post_ffn_norm; /* (dim) when the architecture has post-norms */
  cl_mem q_norm, k_norm;      /* (head_dim) per-head norms, when it has them */
  cl_mem bqkv;                /* (q_rows + 2*kv_rows) q, k, v biases, when it has them */
  clkv__weight wqkv;          /* (q_rows + 2*kv_rows, dim): q, k, v rows concatenated; for
                                 NeoX RoPE each q and k head's rows ordered 0, h/2, 1, h/2+1,
                                 ... so the kernels rotate adjacent pairs (also the norms and
                                 biases); attention is unchanged by the common permutation */
  int split;                  /* 1: wq, wk, wv apart (a bias or per-head norm comes before RoPE,
                                 or their types differ), finished by kernels/norm.cl */
  clkv__weight wq, wk, wv;    /* (q_rows, dim), (kv_rows, dim) x2, when split */
  clkv__weight wo;            /* (dim, q_rows) */
  clkv__weight wgu;           /* (2*n_ff, dim): gate and up rows interleaved */
  clkv__weight wdown;         /* (dim, n_ff) */
} clkv__layer;

struct clkv_model {
  clkv_runtime *rt;
  clkv_model_info info;
  const clkv__arch *arch;   /* the architecture's description (host/model/arch.c) */
  clkv_model_params params;
  int n_ctx;                /* context used (≤ n_ctx_train) */
  int q_rows, kv_rows;      /* n_heads*head_dim, n_kv_heads*head_dim */
  clkv__tokenizer *tok;
  clkv__chat_kind chat;
  char *default_system;     /* from the template, may be NULL */
  char bos_text[64], eos_text[64];
  clkv__weight tok_embd;    /* (n_vocab, dim) */
  clkv__weight output;      /* (n_vocab, dim); tok_embd's buffer when tied */
  int tied;
  cl_mem out_norm;          /* (dim) */
  cl_mem inv_freq;          /* (head_dim/2) RoPE frequencies */
  cl_mem inv_freq_local;    /* (head_dim/2) of windowed layers with their own base, or NULL */
  clkv__layer *layers;      /* (n_layers) */
  size_t weight_bytes;
  clkv__tunables tun;
  char tuning_source[1200]; /* the tuning file applied, or "defaults" */
  cl_kernel k_mv[CLKV__N_WTYPES][CLKV__N_EPI][2]; /* [type slot][epi][phase], lazily */
  clkv__gemm_kernels k_gemm[CLKV__N_WTYPES][CLKV__N_EPI][2]; /* [type slot][epi][F32, F16], lazily */
  int gemm[CLKV__N_PROJ];   /* prefill path in use per projection (tun.gemm, or own where
                               CLBlast cannot run) */
  char gemm_note[320];      /* "qkv=own o=clblast ...", and why a request was not honoured */
  cl_kernel k_embed;
  cl_kernel k_attn[2][2];   /* [windowed layer][prefill]: paged decode, tiled prefill */
  cl_kernel k_qkv_finish, k_norm_add; /* kernels/norm.cl, for architectures that need them */
  char *path;               /* the GGUF file loaded (the disk tier keys on its contents) */
  clkv_error err;
};

/* model_meta.c: hyperparameters from metadata, validated (clear error otherwise). */
clkv_status clkv__model_hparams(const clkv__gguf_file *f, clkv_model_info *info, clkv_error *err);

/* model.c: the launch shape of a matvec variant (tunables fitted to the KV type), and
 * the kernel variant for a weight type, epilogue and phase (created on first use). */
clkv__mv_shape clkv__model_mv_shape(const clkv_model *m, int epi, int phase);
clkv_status clkv__model_matvec_kernel(clkv_model *m, uint32_t wtype, int epi, int phase,
                                      cl_kernel *out, clkv_error *err);

/* The prefill GEMM kernels for a weight type, epilogue and mode (created on first use). */
clkv_status clkv__model_gemm_kernels(clkv_model *m, uint32_t wtype, int epi, int mode,
                                     const clkv__gemm_kernels **out, clkv_error *err);
/* At load: m->gemm from m->tun.gemm, each mode that cannot run here replaced by own with a
 * one-line warning on stderr (it was asked for by the tuning file or CLKV_PREFILL_GEMM). */
void clkv__model_gemm_init(clkv_model *m);
/* Sets the prefill path of projection proj (-1: all) to mode, if it can run here; else
 * returns CLKV_ERR_UNSUPPORTED saying why, and changes nothing. Refreshes gemm_note. */
clkv_status clkv__model_set_gemm(clkv_model *m, int proj, int mode, clkv_error *err);

#endif /* CLKV_MODEL_H */

/* clkv.h — the one public header of clkv, a portable OpenCL runtime for LLM text generation.
 *
 * Usage:
 *   clkv_runtime *rt; clkv_model *m; clkv_context *ctx; clkv_error err;
 *   clkv_runtime_params rp = clkv_runtime_default_params();     // rp.device = "0" or "gpu"
 *   if (clkv_runtime_create(&rp, &rt, &err)) { fprintf(stderr, "%s\n", err.message); ... }
 *   clkv_model_params mp = clkv_model_default_params();
 *   if (clkv_model_load(rt, "model.gguf", &mp, &m, &err)) ...
 *   clkv_context_params cp = clkv_context_default_params();
 *   if (clkv_context_create(m, &cp, &ctx, &err)) ...
 *   clkv_gen_params gp = clkv_gen_default_params();             // gp.temperature = 0 → greedy
 *   clkv_generate(ctx, "Hello", &gp, on_token, user_data, &stats);
 *   clkv_context_free(ctx); clkv_model_free(m); clkv_runtime_free(rt);
 *
 * Conventions: functions return clkv_status (0 ok, negative error); objects are opaque;
 * every *_free(NULL) is a no-op; the detail message of the last failure on an object is
 * clkv_last_error_*(obj), or the clkv_error filled by a create/load call.
 */
#ifndef CLKV_H
#define CLKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLKV_VERSION_STRING "0.1.0"

/* Marks the library's public functions: the only symbols libclkv.so exports (it is built
 * with hidden visibility; tests/test_symbols.c checks the list against this header). */
#if defined(__GNUC__) || defined(__clang__)
#define CLKV_API __attribute__((visibility("default")))
#else
#define CLKV_API
#endif

/* ---- status codes: one X-macro drives the enum, the names and the messages ---- */
#define CLKV_STATUS_MAP(X)                                                              \
  X(OK, 0, "success")                                                                   \
  X(ERR_INVALID_ARG, -1, "invalid argument")                                            \
  X(ERR_NO_MEMORY, -2, "out of host memory")                                            \
  X(ERR_IO, -3, "file input/output error")                                              \
  X(ERR_FORMAT, -4, "malformed or truncated file")                                      \
  X(ERR_UNSUPPORTED, -5, "unsupported model, type or feature")                          \
  X(ERR_NO_DEVICE, -6, "no matching OpenCL device")                                     \
  X(ERR_OPENCL, -7, "OpenCL call failed")                                               \
  X(ERR_BUILD, -8, "OpenCL kernel build failed")                                        \
  X(ERR_DEVICE_MEMORY, -9, "out of device memory")                                      \
  X(ERR_CONTEXT_FULL, -10, "sequence does not fit in the context")                      \
  X(ERR_NOT_FOUND, -11, "not found")                                                    \
  X(ERR_CANCELLED, -12, "cancelled by the caller")                                      \
  X(ERR_INTERNAL, -13, "internal error")

typedef enum clkv_status {
#define CLKV__STATUS_ENUM(name, value, msg) CLKV_##name = value,
  CLKV_STATUS_MAP(CLKV__STATUS_ENUM)
#undef CLKV__STATUS_ENUM
} clkv_status;

/* "CLKV_ERR_IO" and "file input/output error"; unknown values give "CLKV_UNKNOWN_STATUS". */
CLKV_API const char *clkv_status_name(clkv_status s);
CLKV_API const char *clkv_status_str(clkv_status s);

/* The detail of a failure: status plus a message that says what went wrong and what to do. */
typedef struct clkv_error {
  clkv_status status;
  char message[1536];
} clkv_error;

/* ---- devices ---- */
typedef enum clkv_device_type {
  CLKV_DEVICE_CPU = 1,
  CLKV_DEVICE_GPU = 2,
  CLKV_DEVICE_ACCELERATOR = 3,
  CLKV_DEVICE_OTHER = 4
} clkv_device_type;

typedef enum clkv_vendor {
  CLKV_VENDOR_UNKNOWN = 0,
  CLKV_VENDOR_AMD,
  CLKV_VENDOR_NVIDIA,
  CLKV_VENDOR_INTEL,
  CLKV_VENDOR_ARM,
  CLKV_VENDOR_QUALCOMM,
  CLKV_VENDOR_APPLE,
  CLKV_VENDOR_POCL /* a CPU (or other) device driven by PoCL */
} clkv_vendor;

typedef struct clkv_device_info {
  int index;                 /* global index over all platforms, as --device takes it */
  int platform_index;
  char name[256];
  char vendor_name[128];     /* CL_DEVICE_VENDOR */
  char platform_name[128];
  char driver_version[128];
  char cl_version[128];      /* CL_DEVICE_VERSION */
  char clc_version[128];     /* CL_DEVICE_OPENCL_C_VERSION */
  clkv_device_type type;
  clkv_vendor vendor;        /* classified from capabilities, not only the name */
  char arch[64];             /* e.g. "amd-rdna", "nvidia-ampere", "intel-xe", "pocl-cpu" */
  unsigned compute_units;
  unsigned clock_mhz;
  uint64_t global_mem_bytes;
  uint64_t local_mem_bytes;
  uint64_t max_alloc_bytes;
  size_t max_workgroup_size;
  int has_fp16;              /* cl_khr_fp16 */
  int has_fp64;
  int has_subgroups;         /* cl_khr_subgroups or cl_intel_subgroups */
  unsigned subgroup_size;    /* 0 when unknown */
  unsigned vec_width_float;  /* preferred vector widths */
  unsigned vec_width_half;
  int local_mem_is_global;   /* CL_GLOBAL local memory type (CPUs) */
  char extensions[4096];
  char profile[192];         /* platform profile sections applied, most specific first:
                                "arch pocl-cpu > vendor PoCL > default" (platforms/README.md) */
  char quirks[128];          /* driver quirks from the profile, space-separated; "" if none */
} clkv_device_info;

/* Lists every device of every platform. *out is malloc'd (caller frees with free()).
 * Returns CLKV_ERR_NO_DEVICE with a message when there is no platform at all. */
CLKV_API clkv_status clkv_devices_list(clkv_device_info **out, size_t *count, clkv_error *err);
CLKV_API const char *clkv_vendor_name(clkv_vendor v);
CLKV_API const char *clkv_device_type_name(clkv_device_type t);
/* The device's platform profile (the platforms/ profiles merged device → architecture → vendor →
 * default; files in $CLKV_PLATFORMS_DIR replace or add to the built-in ones) as profile text,
 * each value with the section and file:line it came from. Returns a malloc'd string (caller
 * frees with free()), or NULL with err filled (a malformed profile names its file:line). */
CLKV_API char *clkv_device_profile(const clkv_device_info *d, clkv_error *err);

/* ---- runtime: one device, its context, queue and compiled programs ---- */
typedef struct clkv_runtime clkv_runtime;

typedef struct clkv_runtime_params {
  const char *device;     /* index or name substring; NULL → $CLKV_DEVICE → best GPU → CPU */
  const char *cache_dir;  /* NULL → $CLKV_CACHE_DIR → $XDG_CACHE_HOME/clkv → ~/.cache/clkv */
  const char *kernel_dir; /* NULL → $CLKV_KERNEL_DIR → sources embedded in the library */
  int use_binary_cache;   /* 1 (default): keep compiled programs on disk */
  int profiling;          /* 1: queue with profiling (benchmarks, tuner) */
} clkv_runtime_params;

CLKV_API clkv_runtime_params clkv_runtime_default_params(void);
CLKV_API clkv_status clkv_runtime_create(const clkv_runtime_params *p, clkv_runtime **out, clkv_error *err);
CLKV_API void clkv_runtime_free(clkv_runtime *rt);
CLKV_API const clkv_device_info *clkv_runtime_device(const clkv_runtime *rt);
CLKV_API const char *clkv_runtime_cache_dir(const clkv_runtime *rt);
/* Programs compiled from source vs loaded from the binary cache since the runtime began. */
CLKV_API void clkv_runtime_build_counts(const clkv_runtime *rt, unsigned *compiled, unsigned *from_cache);
/* Removes cached program binaries in dir (NULL → default cache dir). *removed may be NULL. */
CLKV_API clkv_status clkv_cache_clear(const char *dir, unsigned *removed, clkv_error *err);
/* Removes the per-device tuning files written by `clkv tune` in dir (NULL → default cache
 * dir): launch shapes fall back to the platform profile. *removed may be NULL. */
CLKV_API clkv_status clkv_cache_clear_tuning(const char *dir, unsigned *removed, clkv_error *err);

/* ---- model ---- */
typedef struct clkv_model clkv_model;

/* Precision of the KV cache. Q8 keeps one half scale per 32 values of a head's key or value
 * (per head_dim when that is smaller), Q4 a half scale and offset: 0.53 and 0.31 of F16's
 * bytes at head_dim 64. */
typedef enum clkv_kv_type {
  CLKV_KV_F16 = 0, /* default */
  CLKV_KV_Q8 = 1,  /* int8, scale = max|x| / 127 */
  CLKV_KV_Q4 = 2   /* 4-bit, scale = (max - min) / 15 and offset = min */
} clkv_kv_type;
CLKV_API const char *clkv_kv_type_name(clkv_kv_type t); /* "f16", "q8", "q4"; "?" otherwise */

typedef struct clkv_model_params {
  int n_ctx;     /* 0 → the model's training context, capped at 2048; any value is capped at
                    the training context */
  int kv_block;  /* tokens per KV block: 8, 16 (default) or 32 */
  int chunk;     /* prefill chunk size in tokens (default 128) */
  int max_seqs;  /* sequences decoded together at most (default 4) */
  clkv_kv_type kv_type; /* KV cache precision (default F16); the kernels are built for it */
} clkv_model_params;

CLKV_API clkv_model_params clkv_model_default_params(void);
CLKV_API clkv_status clkv_model_load(clkv_runtime *rt, const char *path, const clkv_model_params *p,
                            clkv_model **out, clkv_error *err);
CLKV_API void clkv_model_free(clkv_model *m);

typedef struct clkv_model_info {
  char architecture[64];
  char name[256];
  int n_layers, n_embd, n_heads, n_kv_heads, head_dim, n_ff, n_vocab, n_ctx_train;
  float rms_eps, rope_base;
  char tokenizer[32];      /* "gpt2" or "llama" */
  int has_chat_template;
  int bos_id, eos_id;
  int sliding_window;      /* 0, or the positions a token attends to (itself included) */
  int n_ctx;               /* the context this load uses (clkv_model_params.n_ctx, capped) */
} clkv_model_info;
CLKV_API void clkv_model_get_info(const clkv_model *m, clkv_model_info *out);
/* Where the kernel launch shapes came from: the tuning file's path, or "defaults". */
CLKV_API const char *clkv_model_tuning_source(const clkv_model *m);
/* The prefill path of each projection ("qkv=own o=own gu=clblast down=clblast": our
 * quantized matvec, or CLBlast on dequantized weights), and why a requested CLBlast path
 * is not in use (not built with CLBlast, no cl_khr_fp16 for clblast16). */
CLKV_API const char *clkv_model_prefill_gemm(const clkv_model *m);

/* Tokenizer access. clkv_tokenize writes at most cap ids and returns the count needed
 * (which may exceed cap), or a negative status. */
CLKV_API int clkv_tokenize(const clkv_model *m, const char *text, int add_special, int32_t *ids, int cap);
/* Text of one token, raw bytes (may be a partial UTF-8 sequence); "" for control tokens. */
CLKV_API const char *clkv_token_text(const clkv_model *m, int32_t id, size_t *len);

/* Chat prompt from the model's template. roles: "system", "user", "assistant". Returns
 * a malloc'd string (caller frees with free()), or NULL with err filled. */
typedef struct clkv_chat_message {
  const char *role;
  const char *content;
} clkv_chat_message;
CLKV_API char *clkv_chat_format(const clkv_model *m, const clkv_chat_message *msgs, size_t n,
                       int add_assistant_prefix, clkv_error *err);

/* Reads a GGUF file's header without a device: hyperparameters, tokenizer, chat template,
 * tensor count and bytes by type. Validates the whole file as clkv_model_load does. */
typedef struct clkv_type_count {
  char type[16];   /* "Q4_1" */
  uint64_t count;  /* tensors of this type */
  uint64_t bytes;
} clkv_type_count;

typedef struct clkv_file_info {
  clkv_model_info model;
  uint32_t gguf_version;
  uint64_t n_kv, n_tensors, file_bytes, tensor_bytes;
  char chat_template[32];  /* recognised family: "chatml", "llama3", ... or "none" */
  clkv_type_count by_type[16];
  int n_types;
  int runnable;            /* 1 if clkv can run it; else why_not says why */
  char why_not[256];
} clkv_file_info;
CLKV_API clkv_status clkv_model_inspect(const char *path, clkv_file_info *out, clkv_error *err);

/* Rewrites the GGUF file in as out (as llama-quantize): its weight matrices in type ("Q4_K",
 * "Q8_0", "F16", ...; clkv_quantize_types lists them), dequantizing what is stored otherwise;
 * 1-D tensors, norms and matrices under 1024 values are copied as they are. A matrix whose
 * rows are not a whole number of type's blocks goes in the fallback (Q4_K -> Q5_0, Q5_K ->
 * Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K/IQ4_XS -> IQ4_NL) or, failing that, stays as it is. Metadata
 * is copied, general.file_type set. Each such decision is passed to note (NULL: none). */
typedef struct clkv_quantize_params {
  void (*note)(void *user, const char *line); /* one line per tensor kept or in the fallback */
  void *user;
} clkv_quantize_params;
CLKV_API clkv_quantize_params clkv_quantize_default_params(void);
CLKV_API clkv_status clkv_model_quantize(const char *in, const char *out, const char *type,
                                         const clkv_quantize_params *p, clkv_error *err);
/* "Q8_0, Q4_0, ..." — the types clkv_model_quantize writes. */
CLKV_API const char *clkv_quantize_types(void);

/* ---- context: KV cache and sequences; generation ---- */
typedef struct clkv_context clkv_context;

typedef enum clkv_kv_evict {
  CLKV_KV_LRU = 0, /* least recently used cached block first (default) */
  CLKV_KV_LFU = 1, /* fewest prefix hits first */
  CLKV_KV_FIFO = 2 /* oldest cached block first */
} clkv_kv_evict;

typedef struct clkv_context_params {
  int n_seq_max;      /* 0 → model's max_seqs */
  int prefix_cache;   /* 1 (default): reuse K/V of prompt blocks seen before */
  int kv_host_blocks; /* blocks of host memory behind the device tier (0 = none, default) */
  int kv_device_blocks; /* 0 → from kv_mem_bytes / kv_mem_fraction, else enough for every
                           sequence to reach the context length (within device memory) */
  clkv_kv_evict evict;
  uint64_t kv_mem_bytes;  /* device KV budget in bytes (0 = unset); wins over the fraction */
  double kv_mem_fraction; /* 0..1: share of device memory left after the weights (0 = unset) */
  /* Disk tier of the prefix cache (NULL = off; needs prefix_cache). Full prompt blocks are
   * kept in files under DIR/<model sha256>-<kv type>-b<block>/ across runs: read into the
   * host tier at create (which grows to hold them, up to 1 GiB unless kv_host_blocks asks
   * for more), written at clkv_context_save_prefix and clkv_context_free. Files of another
   * model, KV type or block size, and damaged files, are ignored with one warning line on
   * stderr each. The string is copied. See docs/KV_CACHE.md. */
  const char *prefix_cache_dir;
  /* 1: the sequence of the last clkv_generate / clkv_generate_ids call stays in the cache,
   * and a next prompt that starts with all of its tokens continues it, prefilling only the
   * rest (multi-turn chat: each turn prefills only the new message). Default 0. */
  int reuse_last;
} clkv_context_params;

CLKV_API clkv_context_params clkv_context_default_params(void);
CLKV_API clkv_status clkv_context_create(clkv_model *m, const clkv_context_params *p, clkv_context **out,
                                clkv_error *err);
/* Writes the cached prefix blocks to the disk tier now (files already there are kept; the
 * write is also done by clkv_context_free). CLKV_ERR_INVALID_ARG without prefix_cache_dir,
 * CLKV_ERR_IO (clkv_last_error says which file and why) when a file cannot be written. */
CLKV_API clkv_status clkv_context_save_prefix(clkv_context *ctx);
CLKV_API void clkv_context_free(clkv_context *ctx);
CLKV_API const char *clkv_last_error(const clkv_context *ctx);

/* KV-cache statistics: blocks per tier, prefix hit rate, evictions, swaps, bytes moved. */
typedef struct clkv_kv_stats {
  int block_tokens;
  int device_blocks_total, device_blocks_used, device_blocks_cached, device_blocks_free;
  int host_blocks_total, host_blocks_used, host_blocks_cached, host_blocks_free;
  uint64_t device_bytes_used, host_bytes_used; /* referenced + cached blocks */
  uint64_t prompt_tokens, prefix_hit_tokens;   /* hit rate = hit / prompt */
  uint64_t evictions, swaps_out, swaps_in, bytes_moved, cow_copies;
  clkv_kv_type kv_type;
  uint64_t bytes_per_token;                    /* K and V of every layer, scales included */
  /* disk tier: blocks read at create, written by saves, files ignored (mismatch, damage) */
  uint64_t disk_blocks_read, disk_blocks_written, disk_files_ignored;
} clkv_kv_stats;
CLKV_API void clkv_context_kv_stats(const clkv_context *ctx, clkv_kv_stats *out);

/* Speculative decoding with a draft model (docs/SPECULATIVE.md): requests on ctx without
 * lookup_ngram draft up to draft_max tokens with draft's model (greedy at temperature 0, else
 * sampled with the request's settings) and verify them in one pass of ctx's model. draft
 * is a context of another model with the same vocabulary (CLKV_ERR_UNSUPPORTED naming the
 * first difference otherwise) and at least ctx's sequences; its KV blocks are its own. ctx
 * does not own draft: detach it (NULL) before freeing it. */
CLKV_API clkv_status clkv_context_set_draft(clkv_context *ctx, clkv_context *draft);

typedef struct clkv_gen_params {
  int max_tokens;          /* default 128 */
  float temperature;       /* 0 → greedy; default 0.8 */
  int top_k;               /* 0 → off; default 40 */
  float top_p;             /* 1 → off; default 0.95 */
  float min_p;             /* 0 → off; default 0.05 */
  float repeat_penalty;    /* 1 → off; default 1.0 */
  int repeat_last_n;       /* default 64 */
  uint64_t seed;           /* default 42 */
  int add_special;         /* 1: add BOS if the model asks for it */
  const char *const *stop; /* NULL-terminated list of stop strings, may be NULL */
  int logprobs;            /* 0 (default): off; N (1..CLKV_MAX_LOGPROBS): each token event
                              (clkv_request.on_event) carries the N most likely tokens */
  /* Speculative decoding by prompt look-up (docs/SPECULATIVE.md): when the last lookup_ngram
   * tokens occurred earlier in the prompt or the output, the tokens that followed them are
   * drafted (at most draft_max, none when fewer than draft_min) and verified in one forward
   * pass. Temperature 0 gives exactly the tokens of plain decoding; above 0 the draws follow
   * the same distribution (speculative sampling). 0 (default): off. */
  int lookup_ngram;
  int draft_max;           /* default 8 */
  int draft_min;           /* default 1 */
  int draft_always;        /* 0 (default): draft only while the measured pass and decode
                              times and the acceptance so far say it pays; 1: whenever
                              look-up finds draft_min tokens */
} clkv_gen_params;
#define CLKV_MAX_LOGPROBS 20

CLKV_API clkv_gen_params clkv_gen_default_params(void);

/* Why a request stopped generating (clkv_gen_stats.stop_reason). */
typedef enum clkv_stop_reason {
  CLKV_STOP_LENGTH = 0,    /* max_tokens generated */
  CLKV_STOP_EOS = 1,       /* the model ended its turn (an end-of-generation token) */
  CLKV_STOP_STRING = 2,    /* a stop string appeared (its text is not emitted) */
  CLKV_STOP_CANCELLED = 3, /* the token callback returned non-zero */
  CLKV_STOP_CONTEXT = 4,   /* the context is full: the prompt and the text fill n_ctx */
} clkv_stop_reason;
/* "length", "eos", "stop_string", "cancelled", "context"; "unknown" for any other value. */
CLKV_API const char *clkv_stop_reason_name(clkv_stop_reason reason);

typedef struct clkv_gen_stats {
  int prompt_tokens;
  int prefill_tokens;     /* tokens actually computed in prefill */
  int generated_tokens;
  double prefill_ms, decode_ms;
  double ttft_ms;         /* from the call to the first generated token */
  double mean_itl_ms;     /* mean time between generated tokens */
  double launches_per_token; /* kernel launches per decoded token */
  clkv_stop_reason stop_reason;
  /* speculative decoding: tokens drafted, drafts accepted, verification passes; acceptance
   * rate = accepted / drafted, mean accepted length = accepted / spec_passes */
  int drafted_tokens, accepted_tokens, spec_passes;
} clkv_gen_stats;

/* Called for every generated token with its id and the text that became complete
 * (never a cut UTF-8 character; may be empty). Return non-zero to stop. */
typedef int (*clkv_token_cb)(void *user, int32_t id, const char *text, size_t len);

/* Runs prefill then decode for one prompt. stats may be NULL. */
CLKV_API clkv_status clkv_generate(clkv_context *ctx, const char *prompt, const clkv_gen_params *p,
                          clkv_token_cb cb, void *user, clkv_gen_stats *stats);
/* Same from token ids (no tokenization). */
CLKV_API clkv_status clkv_generate_ids(clkv_context *ctx, const int32_t *ids, int n_ids,
                              const clkv_gen_params *p, clkv_token_cb cb, void *user,
                              clkv_gen_stats *stats);

/* What a request produced: one generated token, or (done) the end of the request. */
typedef struct clkv_token_event {
  int32_t id;               /* the token; -1 for text flushed at the end, and when done */
  const char *text;         /* text that became complete (never a cut UTF-8 character
                               before the end; may be empty), len bytes, not NUL-ended */
  size_t len;
  float logprob;            /* natural log-probability of id under the model's distribution
                               (softmax of the logits, temperature 1); 0 when id is -1 */
  int n_top;                /* params.logprobs: the most likely tokens, most likely first */
  const int32_t *top_ids;
  const float *top_logprobs;
  int done;                 /* 1: the request ended; stats and status are final, the
                               request is no longer used by the library */
  const clkv_gen_stats *stats;
  clkv_status status;
} clkv_token_event;
/* Return non-zero to stop the request (as clkv_token_cb). The event lives during the call. */
typedef int (*clkv_event_cb)(void *user, const clkv_token_event *ev);

/* One request of a batch: the prompt as token ids (clkv_tokenize), its own sampling
 * parameters and token callback; stats and status are filled in. */
typedef struct clkv_request {
  const int32_t *ids;
  int n_ids;
  clkv_gen_params params;
  clkv_token_cb cb;
  void *user;
  clkv_gen_stats stats;   /* out */
  clkv_status status;     /* out: CLKV_OK, or why this request failed (others go on) */
  clkv_event_cb on_event; /* optional: called instead of cb, with log-probabilities and a
                             final done event (clkv_sched delivers results through it) */
} clkv_request;

/* Generates for every request with continuous batching: up to the context's n_seq_max
 * sequences decode together, one token each per forward pass; a request that finishes
 * frees its slot for the next waiting one at once. When the KV blocks run out the youngest
 * running request is preempted — swapped to the host tier when there is one with room,
 * else its blocks are released and it is recomputed later (its full blocks stay in the
 * prefix cache) — and resumed when blocks free up; its tokens are the same as if it had
 * run alone. Callbacks of different requests interleave. Returns CLKV_OK when the batch
 * ran (check each request's status), or the error that stopped it (device failure). */
CLKV_API clkv_status clkv_generate_batch(clkv_context *ctx, clkv_request *reqs, int n);

/* ---- a scheduler you can feed while it runs ----
 *
 * The same continuous batching as clkv_generate_batch, but requests join and leave at any
 * time. Thread model: one engine thread owns the context (its OpenCL queue) and calls
 * clkv_sched_step / clkv_sched_wait; any thread may call clkv_sched_submit,
 * clkv_sched_cancel and clkv_sched_counts (they take the scheduler's mutex, never the
 * device). Results reach each request's on_event on the engine thread: one event per
 * token, then exactly one done event for every submitted request (finished, failed or
 * cancelled); after it the library no longer touches the request. A server hands the
 * events to its connection threads through its own queue (cli/serve.c does).
 *
 * Usage:
 *   clkv_sched *s; clkv_sched_create(ctx, &s);
 *   // any thread: r (and r->ids) stay valid until r's done event
 *   clkv_request *r = ...; r->on_event = on_event; r->user = conn;
 *   uint64_t id; if (clkv_sched_submit(s, r, &id)) ...   // CLKV_ERR_INVALID_ARG: bad request
 *   // engine thread
 *   while (!stopping) {
 *     int active;
 *     if (clkv_sched_step(s, &active)) break;       // device failure: every request ended
 *     if (!active) clkv_sched_wait(s, 100);        // sleeps until a submit (or 100 ms)
 *   }
 *   clkv_sched_cancel(s, id);  // any thread: blocks freed at the next step, done event sent
 *   clkv_sched_free(s);        // cancels what is left (done events sent), then frees
 */
typedef struct clkv_sched clkv_sched;
CLKV_API clkv_status clkv_sched_create(clkv_context *ctx, clkv_sched **out);
/* Cancels every request still queued or running (each gets its done event), then frees. */
CLKV_API void clkv_sched_free(clkv_sched *s);
/* Queues r; it is admitted at a next step. *id (may be NULL) names it for cancel. Prompts
 * that can never run (empty, longer than the context) are refused here with
 * CLKV_ERR_INVALID_ARG / CLKV_ERR_CONTEXT_FULL, and no event is sent. Thread-safe. */
CLKV_API clkv_status clkv_sched_submit(clkv_sched *s, clkv_request *r, uint64_t *id);
/* Stops request id (unknown or finished ids are ignored): at the next step its blocks are
 * freed (full prompt blocks stay in the prefix cache) and its done event says
 * CLKV_STOP_CANCELLED. Thread-safe; may be called from on_event. */
CLKV_API void clkv_sched_cancel(clkv_sched *s, uint64_t id);
/* One step, on the engine thread: new requests taken in, cancels applied, swapped-out
 * requests resumed, waiting ones admitted (prefill, first token), one decode token of every
 * running request (preempting the youngest when blocks run out). *active (may be NULL):
 * requests not yet finished. A device failure ends every request with that status. */
CLKV_API clkv_status clkv_sched_step(clkv_sched *s, int *active);
/* Engine thread: waits until a request is submitted or cancelled, or timeout_ms pass. */
CLKV_API void clkv_sched_wait(clkv_sched *s, int timeout_ms);
/* Requests queued (not yet admitted) and running (holding a sequence) now. Thread-safe. */
CLKV_API void clkv_sched_counts(clkv_sched *s, int *waiting, int *running);
/* The KV statistics as of the last step (clkv_context_kv_stats is for the engine thread). */
CLKV_API void clkv_sched_kv_stats(clkv_sched *s, clkv_kv_stats *out);

/* Logits of a sequence's tokens, for log-probabilities, perplexity, or a sampler of your own.
 * clkv_seq_open starts an empty sequence in the context (one of its n_seq_max slots);
 * clkv_seq_eval appends n tokens to it and writes their logits: every position's (all = 1:
 * n rows) or only the last token's (all = 0: one row), n_vocab floats a row
 * (clkv_model_info), into out; clkv_seq_close frees the slot and its cache blocks.
 * Positions continue from the tokens evaluated before (at most the context length). */
CLKV_API clkv_status clkv_seq_open(clkv_context *ctx, int *seq);
CLKV_API clkv_status clkv_seq_eval(clkv_context *ctx, int seq, const int32_t *ids, int n,
                                   int all, float *out);
CLKV_API void clkv_seq_close(clkv_context *ctx, int seq);

/* ---- tuning: kernel launch shapes for one model's shapes on one device ----
 *
 * Usage (what `clkv tune` does):
 *   clkv_file_info fi; clkv_model_inspect("model.gguf", &fi, &err);
 *   clkv_runtime_params rp = clkv_runtime_default_params();
 *   rp.profiling = 1;                                // time with events, not the wall clock
 *   clkv_runtime_create(&rp, &rt, &err);
 *   clkv_tune_params tp = clkv_tune_default_params(); // tp.budget_s = 120
 *   clkv_tune_report rep;
 *   if (clkv_tune(rt, &fi, &tp, on_progress, user, &rep, &err)) ...
 *   // rep.kernels[i]: default against tuned shape and time; rep.tuning_file: where it went
 * A later clkv_model_load on the same device reads the tuning file (clkv_model_tuning_source
 * names it); clkv_cache_clear_tuning removes it. docs/TUNING.md describes the search. */
typedef struct clkv_tune_params {
  double budget_s;         /* about this many seconds in all (default 60); the default shapes
                              are always measured, so a small budget may take longer */
  const char *weight_type; /* GGML type name of the synthetic weights ("Q4_1"); NULL (default)
                              → clkv_file_main_type of the file */
  int save;                /* 1 (default): write the per-device tuning file */
} clkv_tune_params;

CLKV_API clkv_tune_params clkv_tune_default_params(void);

/* Progress: done of total candidates, and what is being timed now ("done" at the end). */
typedef void (*clkv_tune_progress_cb)(void *user, unsigned done, unsigned total, const char *what);

/* One tuned kernel, or one projection's prefill path. */
typedef struct clkv_tune_kernel {
  char name[32];           /* "matvec.decode", "attn.prefill", "gemm.qkv", ... */
  int is_prefill_path;     /* 1: the shapes below are a projection's prefill path ("own",
                              "clblast"), chosen by time; 0: a launch shape ("ksplit=1 rg=4") */
  char default_shape[64], tuned_shape[64];
  double default_ms, tuned_ms; /* median times; default_ms is INFINITY if the default failed */
  unsigned tried, failed;  /* candidates timed / rejected by the check against plain C */
  char runner_up[64];      /* the fastest candidate that lost ("" if none), and its time */
  double runner_up_ms;
} clkv_tune_kernel;

#define CLKV_TUNE_MAX_KERNELS 16

typedef struct clkv_tune_report {
  clkv_tune_kernel kernels[CLKV_TUNE_MAX_KERNELS];
  int n_kernels;
  char weight_type[16];    /* the type tuned for */
  unsigned candidates_checked; /* every timed candidate passed the check first */
  double elapsed_s;
  int budget_hit;          /* a stage used up its share of the budget; best so far kept */
  int wall_clock;          /* 1: timed by the wall clock (runtime without profiling, or the
                              device's event timers disagree with the wall clock) */
  char timer_note[200];    /* the runtime's check of the event timers, in words ("" unchecked) */
  int clblast_available;   /* 1: the CLBlast prefill path can run here; else clblast_why */
  char clblast_why[256];
  char tuning_file[1200];  /* the file written ("" when params.save is 0) */
} clkv_tune_report;

/* Tunes the launch shapes of the matvec and attention kernels, and each projection's prefill
 * path, for the shapes of a model (fi from clkv_model_inspect) on rt's device, with synthetic
 * weights; every candidate is checked against plain C before it is timed, and a tuned shape
 * is never slower than the default. Saves the result to rt's tuning file when p->save.
 * p NULL → defaults; progress may be NULL. CLKV_ERR_INVALID_ARG when the weight type is not
 * one clkv computes or the model has no usable shape. */
CLKV_API clkv_status clkv_tune(clkv_runtime *rt, const clkv_file_info *fi, const clkv_tune_params *p,
                               clkv_tune_progress_cb progress, void *user, clkv_tune_report *out,
                               clkv_error *err);
/* The per-device tuning file: <cache dir>/tuning/<hash of device, driver, platform>.txt.
 * Writes at most cap bytes (NUL included) to buf; returns the length of the whole path. */
CLKV_API int clkv_tuning_path(const clkv_runtime *rt, char *buf, size_t cap);
/* The weight type a file mostly holds: of the types clkv computes (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_1), the one with the most bytes; "F32" when there is none. The string lives
 * in fi (or is a constant). */
CLKV_API const char *clkv_file_main_type(const clkv_file_info *fi);

#ifdef __cplusplus
}
#endif
#endif /* CLKV_H */

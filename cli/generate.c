/* generate.c — `clkv generate` (one prompt, text streamed as it is made; or a file of
 * prompts generated together with continuous batching) and `clkv chat` (an interactive
 * loop over the model's chat template): their options, and the runs. */
#include "cli.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* What one request generated; printed as it comes unless quiet or --json. */
typedef struct sink {
  const gen_opts *o;
  int32_t *ids;
  int n, cap;
  char *text;
  size_t len, tcap;
  int quiet; /* collect only (batch mode prints when all are done) */
  json_t *logprobs; /* --logprobs: per token {id, token, logprob, top: [...]} */
  const clkv_model *m;
  int progress; /* a progress line is on the terminal's stderr: erased at the first token */
} sink;

/* Runtime, model and context of a run. */
typedef struct session {
  clkv_runtime *rt;
  clkv_model *m;
  clkv_context *ctx;
  clkv_model *dm;       /* --draft-model and its context, or NULL */
  clkv_context *dctx;
  int save_warned;
  clkv_gen_stats last; /* of the last reply (chat's /stats) */
  int replies;
} session;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  sink *s = user;
  if (s->progress) {
    fputs("\r\033[K", stderr);
    s->progress = 0;
  }
  if (cli_interrupted) return 1;
  if (id >= 0) {
    if (s->n == s->cap) {
      int cap = s->cap ? s->cap * 2 : 256;
      int32_t *p = realloc(s->ids, sizeof(int32_t) * (size_t)cap);
      if (!p) return 1;
      s->ids = p;
      s->cap = cap;
    }
    s->ids[s->n++] = id;
  }
  if (len) {
    if (s->len + len + 1 > s->tcap) {
      size_t cap = (s->tcap + len + 1) * 2;
      char *p = realloc(s->text, cap);
      if (!p) return 1;
      s->text = p;
      s->tcap = cap;
    }
    memcpy(s->text + s->len, text, len);
    s->len += len;
    s->text[s->len] = 0;
  }
  if (s->o->json || s->quiet) return 0;
  if (s->o->ids) {
    if (id >= 0) printf("%d ", id);
  } else if (len) {
    fwrite(text, 1, len, stdout);
  }
  fflush(stdout);
  return 0;
}

/* {id, token, logprob} of one token; its text made valid UTF-8. */
static json_t *token_json(const clkv_model *m, int32_t id, float logprob) {
  size_t len;
  const char *t = clkv_token_text(m, id, &len);
  return json_pack("{s:i, s:o, s:f}", "id", id, "token", cli_json_text(t, len), "logprob",
                   (double)logprob);
}

/* --logprobs: each token's log-probability and the most likely alternatives are kept. */
static int on_event(void *user, const clkv_token_event *ev) {
  sink *s = user;
  if (ev->done) return 0;
  if (ev->id >= 0 && s->logprobs) {
    json_t *t = token_json(s->m, ev->id, ev->logprob), *top = json_array();
    for (int k = 0; k < ev->n_top; k++)
      json_array_append_new(top, token_json(s->m, ev->top_ids[k], ev->top_logprobs[k]));
    json_object_set_new(t, "top", top);
    json_array_append_new(s->logprobs, t);
  }
  return on_token(user, ev->id, ev->text, ev->len);
}

static int add_stop(const char *opt, const char *v, void *where) {
  stop_list *l = where;
  if (l->n < (int)N_OF(l->v) - 1) {
    l->v[l->n++] = v;
    return 1;
  }
  fprintf(stderr, "clkv: %s takes %d strings at most; '%s' is one more\n", opt,
          (int)N_OF(l->v) - 1, v);
  return 0;
}

static int kv_mem(const char *opt, const char *v, void *where) {
  clkv_context_params *cp = where;
  if (cli_parse_size(v, &cp->kv_mem_bytes, &cp->kv_mem_fraction)) return 1;
  fprintf(stderr, "clkv: %s takes a size (512M, 2G, 65536K) or a fraction (0.5) of the device "
                  "memory the weights leave, not '%s'\n", opt, v);
  return 0;
}

static const char *const kv_blocks[] = {"8", "16", "32", NULL};
static const char *const kv_evicts[] = {"lru", "lfu", "fifo", NULL}; /* clkv_kv_evict order */
static const char *const kv_types[] = {"f16", "q8", "q4", NULL};     /* clkv_kv_type order */

#define AT(field) CLI_AT(gen_opts, field)
static const cli_opt gen_rows[] = {
    {.flag = "-m", .name = "--model", .kind = CLI_STR, .value = "MODEL", AT(model),
     .help = "the GGUF model file [default: $CLKV_MODEL, else models/" CLKV_DEFAULT_MODEL "]"},
    {.flag = "-p", .name = "--prompt", .kind = CLI_STR, .value = "PROMPT", AT(prompt),
     .help = "the prompt; '-' reads it from standard input, as generate does when standard "
             "input is not a terminal and neither -p nor -f is given (chat: the user's "
             "message; chat answers it and exits)"},
    {.flag = "-f", .name = "--file", .kind = CLI_STR, .value = "FILE", AT(file),
     .help = "the prompt is the text of FILE (one trailing newline dropped), as in llama.cpp"},
    {.name = "--batch-file", .kind = CLI_STR, .value = "FILE", AT(batch_file), .only = "generate",
     .help = "many prompts, one per line ('-': standard input), generated together with "
             "continuous batching; results printed in input order as [i] text, or one JSON "
             "object per line with --json"},
    {.name = "--parallel", .kind = CLI_INT, .value = "N", AT(parallel), .lo = 1, .hi = 256,
     .help = "sequences decoded together with --batch-file"},
    {.flag = "-n", .name = "--n-predict", .kind = CLI_INT, .value = "N", AT(gp.max_tokens),
     .lo = 0, .hi = 1 << 20, .help = "tokens to generate at most"},
    {.name = "--temp", .kind = CLI_NUM, .value = "T", AT(gp.temperature), .lo = 0, .hi = 100,
     .help = "temperature, 0 = greedy"},
    {.name = "--top-k", .kind = CLI_INT, .value = "K", AT(gp.top_k), .lo = 0, .hi = 1 << 24,
     .help = "sample among the K most likely tokens (0: all)"},
    {.name = "--top-p", .kind = CLI_NUM, .value = "P", AT(gp.top_p), .lo = 0, .hi = 1,
     .help = "sample among the most likely tokens holding probability P (1: all)"},
    {.name = "--min-p", .kind = CLI_NUM, .value = "P", AT(gp.min_p), .lo = 0, .hi = 1,
     .help = "drop tokens less likely than P times the most likely one (0: none)"},
    {.name = "--repeat-penalty", .kind = CLI_NUM, .value = "R", AT(gp.repeat_penalty),
     .lo = 0.01, .hi = 100, .help = "penalty on the tokens generated last (1: none)"},
    {.flag = "-s", .name = "--seed", .kind = CLI_INT, .value = "S", AT(seed), .lo = -1,
     .hi = 0x7fffffffL, .help = "seed of the sampler's random numbers; -1: a random one, "
     "printed by --stats and --json so the run can be repeated"},
    {.name = "--chat", .kind = CLI_FLAG, AT(chat),
     .help = "wrap the prompt in the model's chat template"},
    {.name = "--system", .alias = "--system-prompt", .kind = CLI_STR, .value = "S", AT(system),
     .help = "the system message of the chat template (generate: with --chat)"},
    {.flag = "-r", .name = "--stop", .alias = "--reverse-prompt", .kind = CLI_CALL,
     .value = "STR", AT(stops), .call = add_stop,
     .help = "stop when the text reaches STR (up to 8 of them)"},
    {.name = "--device", .kind = CLI_STR, .value = "D", AT(device),
     .help = "device index or name substring as clkv devices lists them, or gpu or cpu "
             "[default: $CLKV_DEVICE, else the best GPU, else a CPU]"},
    {.flag = "-c", .name = "--ctx", .alias = "--ctx-size", .kind = CLI_INT, .value = "N", AT(mp.n_ctx), .lo = 16, .hi = 1 << 20,
     .help = "context length in tokens, at most the model's [default: the model's, at most "
             "2048]"},
    {.name = "--kv-block", .kind = CLI_INT, AT(mp.kv_block), .choices = kv_blocks,
     .help = "tokens per KV cache block"},
    {.name = "--chunk", .kind = CLI_INT, .value = "N", AT(mp.chunk), .lo = 1, .hi = 4096,
     .help = "prompt tokens computed per prefill pass"},
    {.name = "--ids", .kind = CLI_FLAG, AT(ids), .help = "print token ids instead of text"},
    {.name = "--stats", .kind = CLI_FLAG, AT(stats),
     .help = "print prompt tokens, prefill/decode tokens/s, TTFT, inter-token latency"},
    {.name = "--json", .kind = CLI_FLAG, AT(json),
     .help = "print one JSON object with text, ids and stats"},
    {.name = "--logprobs", .kind = CLI_INT, .value = "N", AT(gp.logprobs), .lo = 0,
     .hi = CLKV_MAX_LOGPROBS, .only = "generate",
     .help = "with --json: each generated token's log-probability and the N most likely "
             "tokens at its place"},
    {.name = "--lookup-ngram", .kind = CLI_INT, .value = "N", AT(gp.lookup_ngram), .lo = 0,
     .hi = 64, .help = "speculative decoding by prompt look-up: draft the tokens that followed "
     "the last N tokens where they last occurred in the prompt or output, verified in one "
     "pass (0: off; temperature 0 gives the same tokens as without)"},
    {.name = "--draft-model", .kind = CLI_STR, .value = "FILE", AT(draft_model),
     .help = "speculative decoding with a draft model sharing the model's vocabulary: it "
     "drafts, the model verifies in one pass (with --lookup-ngram 0)"},
    {.name = "--draft-max", .kind = CLI_INT, .value = "N", AT(gp.draft_max), .lo = 0, .hi = 255,
     .help = "tokens drafted at most per verification pass (0: as many as one prefill tile "
     "of the device holds, at least 7)"},
    {.name = "--draft-min", .kind = CLI_INT, .value = "N", AT(gp.draft_min), .lo = 1, .hi = 255,
     .help = "fewer drafts than N: decode one token instead"},
    {.name = "--draft-always", .kind = CLI_FLAG, AT(gp.draft_always),
     .help = "verify drafts whenever look-up finds them (default: only while the measured "
     "pass and decode times and the acceptance so far say it pays)"},
    {.name = "--no-prefix-cache", .kind = CLI_FLAG, AT(no_prefix),
     .help = "compute every prompt in full (no reuse of cached KV blocks)"},
    {.name = "--kv-evict", .kind = CLI_CHOICE, AT(cp.evict), .choices = kv_evicts,
     .help = "which cached KV block goes first when blocks run out: least recently used, "
             "fewest prefix hits, or oldest"},
    {.name = "--kv-host-blocks", .kind = CLI_INT, .value = "N", AT(cp.kv_host_blocks), .lo = 0,
     .hi = 1 << 20, .help = "KV blocks in host memory behind the device's (0: none)"},
    {.name = "--kv-type", .kind = CLI_CHOICE, AT(mp.kv_type), .choices = kv_types,
     .help = "KV cache precision: q8 and q4 take about 1/2 and 1/4 of f16's memory"},
    {.name = "--kv-mem", .kind = CLI_CALL, .value = "SIZE|FRACTION", AT(cp), .call = kv_mem,
     .help = "device memory for the KV cache: bytes with K/M/G (512M), or a fraction of what "
             "the weights leave (0.5) [default: enough for the context, within 90% of device "
             "memory]"},
    {.name = "--prefix-cache-dir", .kind = CLI_STR, .value = "DIR", AT(cp.prefix_cache_dir),
     .help = "keep prompt KV blocks in DIR across runs (read at start, written after each "
             "answer; per model file, KV type and block size)"},
};
#undef AT

static int cli_generate(const cli_cmd *c, int argc, char **argv);

const cli_cmd cli_generate_cmd = {
    .name = "generate", .args = "[options]",
    .about = "generate text from a prompt, or from a file of prompts decoded together",
    .opts = gen_rows, .n_opts = N_OF(gen_rows), .size = sizeof(gen_opts),
    .positional = CLI_NO_POSITIONAL, .run = cli_generate};

const cli_cmd cli_chat_cmd = {
    .name = "chat", .args = "[options]",
    .about = "interactive chat with the model (/quit ends it)",
    .opts = gen_rows, .n_opts = N_OF(gen_rows), .size = sizeof(gen_opts),
    .positional = CLI_NO_POSITIONAL, .run = cli_generate,
    .notes = "Each turn computes only its new tokens: the conversation stays in the KV cache\n"
             "(unless --no-prefix-cache).\n"};

static void print_stats(FILE *f, const clkv_gen_stats *s, const clkv_context *ctx,
                        const clkv_model *m, const clkv_device_info *dev, uint64_t seed) {
  clkv_kv_stats k;
  clkv_context_kv_stats(ctx, &k);
  double pf = s->prefill_ms > 0 ? s->prefill_tokens * 1000.0 / s->prefill_ms : 0;
  double dc = s->decode_ms > 0 && s->generated_tokens > 1
                  ? (s->generated_tokens - 1) * 1000.0 / s->decode_ms : 0;
  fprintf(f,
          "\n[stats] prompt tokens %d (%d computed), prefill %.1f tok/s (%.1f ms), decode %.1f "
          "tok/s (%d tokens), TTFT %.1f ms, mean ITL %.2f ms, launches/token %.0f, seed %llu\n",
          s->prompt_tokens, s->prefill_tokens, pf, s->prefill_ms, dc, s->generated_tokens, s->ttft_ms,
          s->mean_itl_ms, s->launches_per_token, (unsigned long long)seed);
  fprintf(f,
          "[kv] %s, %llu bytes/token; device blocks %d used, %d cached, %d free of %d "
          "(%d tokens each, %.1f MiB in use); "
          "prefix hits %llu of %llu prompt tokens; evictions %llu, swaps %llu/%llu\n",
          clkv_kv_type_name(k.kv_type), (unsigned long long)k.bytes_per_token,
          k.device_blocks_used, k.device_blocks_cached, k.device_blocks_free,
          k.device_blocks_total, k.block_tokens, (double)k.device_bytes_used / 1048576.0,
          (unsigned long long)k.prefix_hit_tokens, (unsigned long long)k.prompt_tokens,
          (unsigned long long)k.evictions, (unsigned long long)k.swaps_out,
          (unsigned long long)k.swaps_in);
  if (s->spec_passes)
    fprintf(f, "[spec] drafted %d, accepted %d (%.1f%%), %d verification passes, mean accepted "
               "length %.2f\n", s->drafted_tokens, s->accepted_tokens,
            100.0 * s->accepted_tokens / (s->drafted_tokens ? s->drafted_tokens : 1),
            s->spec_passes, (double)s->accepted_tokens / s->spec_passes);
  if (k.host_blocks_total)
    fprintf(f, "[host] blocks %d used, %d cached, %d free of %d (%.1f MiB in use); %.1f MiB moved "
               "between tiers\n", k.host_blocks_used, k.host_blocks_cached, k.host_blocks_free,
            k.host_blocks_total, (double)k.host_bytes_used / 1048576.0,
            (double)k.bytes_moved / 1048576.0);
  if (k.disk_blocks_read || k.disk_blocks_written || k.disk_files_ignored)
    fprintf(f, "[disk] blocks read %llu, written %llu; files ignored %llu\n",
            (unsigned long long)k.disk_blocks_read, (unsigned long long)k.disk_blocks_written,
            (unsigned long long)k.disk_files_ignored);
  const char *src = clkv_model_tuning_source(m);
  if (strcmp(src, "defaults")) fprintf(f, "[tuning] %s (over platform profile %s)", src, dev->profile);
  else fprintf(f, "[tuning] defaults from platform profile %s (run clkv tune)", dev->profile);
  fprintf(f, "; prefill GEMM %s\n", clkv_model_prefill_gemm(m));
}

static void print_json(const sink *s, const clkv_gen_stats *st, const clkv_context *ctx, int index) {
  clkv_kv_stats k;
  clkv_context_kv_stats(ctx, &k);
  json_t *ids = json_array();
  for (int i = 0; i < s->n; i++) json_array_append_new(ids, json_integer(s->ids[i]));
  json_t *j = json_pack(
      "{s:o, s:o, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:i, s:I, s:I, s:I, s:I}",
      "text", cli_json_text(s->text, s->len), "ids", ids, "prompt_tokens", st->prompt_tokens,
      "prefill_tokens", st->prefill_tokens, "generated_tokens", st->generated_tokens,
      "prefill_ms", st->prefill_ms, "decode_ms", st->decode_ms, "ttft_ms", st->ttft_ms,
      "mean_itl_ms", st->mean_itl_ms, "launches_per_token", st->launches_per_token,
      "stop_reason", (int)st->stop_reason, "prefix_hit_tokens", (json_int_t)k.prefix_hit_tokens,
      "disk_blocks_read", (json_int_t)k.disk_blocks_read,
      "disk_blocks_written", (json_int_t)k.disk_blocks_written,
      "disk_files_ignored", (json_int_t)k.disk_files_ignored);
  if (j) json_object_set_new(j, "seed", json_integer((json_int_t)s->o->gp.seed));
  if (j && index >= 0) json_object_set_new(j, "index", json_integer(index));
  if (j && st->spec_passes)
    json_object_set_new(j, "spec", json_pack("{s:i, s:i, s:i, s:f, s:f}", "drafted",
        st->drafted_tokens, "accepted", st->accepted_tokens, "passes", st->spec_passes,
        "acceptance_rate", (double)st->accepted_tokens / (st->drafted_tokens ? st->drafted_tokens : 1),
        "mean_accepted_length", (double)st->accepted_tokens / st->spec_passes));
  if (j && s->logprobs) json_object_set(j, "logprobs", s->logprobs);
  if (cli_json_write(stdout, j) == 0) fputc('\n', stdout);
}

/* The prompt text of one line: as given, or wrapped in the chat template. */
static char *line_prompt(const gen_opts *o, clkv_model *m, const char *line, clkv_error *err) {
  if (!o->chat) return strdup(line);
  clkv_chat_message msgs[2];
  size_t n = 0;
  if (o->system) msgs[n++] = (clkv_chat_message){"system", o->system};
  msgs[n++] = (clkv_chat_message){"user", line};
  return clkv_chat_format(m, msgs, n, 1, err);
}

typedef struct batch {
  clkv_request *r;
  sink *s;
  int n, cap;
} batch;

static int batch_grow(batch *b) {
  int cap = b->cap ? 2 * b->cap : 16;
  clkv_request *r = realloc(b->r, sizeof *r * (size_t)cap);
  if (r) b->r = r;
  sink *s = realloc(b->s, sizeof *s * (size_t)cap);
  if (s) b->s = s;
  if (!r || !s) return 0;
  b->cap = cap;
  return 1;
}

static void batch_free(batch *b) {
  for (int i = 0; i < b->n; i++) {
    free((void *)b->r[i].ids);
    free(b->s[i].ids);
    free(b->s[i].text);
    json_decref(b->s[i].logprobs);
  }
  free(b->r);
  free(b->s);
}

/* One line of the file as a request: wrapped in the chat template with --chat, tokenized.
 * Returns 0, or the exit status after saying why not. */
static int batch_add(batch *b, const gen_opts *o, clkv_model *m, const char *line) {
  if (b->n == b->cap && !batch_grow(b))
    return cli_die(CLKV_ERR_NO_MEMORY, "out of host memory reading the prompts");
  clkv_error err;
  char *text = line_prompt(o, m, line, &err);
  if (!text) return cli_die(err.status, err.message);
  int tcap = (int)strlen(text) + 8;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)tcap);
  int k = ids ? clkv_tokenize(m, text, o->gp.add_special, ids, tcap) : CLKV_ERR_NO_MEMORY;
  free(text);
  if (k < 0 || k > tcap) { /* a token covers at least one byte but BOS */
    free(ids);
    return cli_die(k < 0 ? (clkv_status)k : CLKV_ERR_INTERNAL, "a prompt could not be tokenized");
  }
  b->s[b->n] = (sink){.o = o, .quiet = 1, .m = m, .logprobs = o->json ? json_array() : NULL};
  b->r[b->n] = (clkv_request){.ids = ids, .n_ids = k, .params = o->gp, .cb = on_token,
                              .on_event = o->json ? on_event : NULL};
  b->n++;
  return 0;
}

/* Every non-empty line of f is a prompt. */
static int batch_read(batch *b, const gen_opts *o, clkv_model *m, FILE *f) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  while (!rc && (len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (len) rc = batch_add(b, o, m, line);
  }
  free(line);
  if (!rc && !b->n) {
    fprintf(stderr, "clkv: %s holds no prompt (one per line)\n", o->batch_file);
    rc = 2;
  }
  return rc;
}

/* The results in input order; with --stats, the batch's throughput. */
static int batch_print(const batch *b, const gen_opts *o, const clkv_context *ctx, double ms) {
  long tokens = 0;
  int rc = 0;
  for (int i = 0; i < b->n; i++) {
    const sink *s = &b->s[i];
    tokens += b->r[i].stats.generated_tokens;
    if (b->r[i].status) {
      fprintf(stderr, "clkv: prompt %d failed: %s\n", i, clkv_status_str(b->r[i].status));
      rc = 1;
    } else if (o->json) {
      print_json(s, &b->r[i].stats, ctx, i);
    } else if (o->ids) {
      printf("[%d]", i);
      for (int j = 0; j < s->n; j++) printf(" %d", s->ids[j]);
      printf("\n");
    } else {
      printf("[%d] %s\n", i, s->text ? s->text : "");
    }
  }
  if (o->stats) {
    clkv_kv_stats k;
    clkv_context_kv_stats(ctx, &k);
    fprintf(stderr, "[batch] %d prompts, %ld tokens in %.1f ms: %.1f tokens/s; %d decoded together "
                    "at most; swaps %llu/%llu; seed %llu\n", b->n, tokens, ms, tokens * 1000.0 / ms,
            o->parallel, (unsigned long long)k.swaps_out, (unsigned long long)k.swaps_in,
            (unsigned long long)o->gp.seed);
  }
  return rc;
}

/* -f: every non-empty line is a prompt; all are generated together (clkv_generate_batch)
 * and printed in input order when done. */
static int run_file(const gen_opts *o, session *se) {
  FILE *f = strcmp(o->batch_file, "-") ? fopen(o->batch_file, "r") : stdin;
  if (!f) {
    fprintf(stderr, "clkv: cannot open %s: %s\n", o->batch_file, strerror(errno));
    return 1;
  }
  batch b = {0};
  int rc = batch_read(&b, o, se->m, f);
  if (f != stdin) fclose(f);
  if (!rc) {
    for (int i = 0; i < b.n; i++) b.r[i].user = &b.s[i]; /* s may have moved */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clkv_status st = clkv_generate_batch(se->ctx, b.r, b.n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
    rc = st ? cli_die(st, clkv_last_error(se->ctx)) : batch_print(&b, o, se->ctx, ms);
    if (!rc && cli_interrupted) rc = 130;
  }
  batch_free(&b);
  return rc;
}

/* Tokens of text as a prompt, or a negative status. */
static int prompt_tokens(const session *se, const gen_opts *o, const char *text) {
  int cap = (int)strlen(text) + 8, n;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
  n = ids ? clkv_tokenize(se->m, text, o->gp.add_special, ids, cap) : CLKV_ERR_NO_MEMORY;
  free(ids);
  return n;
}

/* The conversation in the chat template, its oldest exchanges dropped (said on stderr) until
 * it leaves room for a reply in the context. Caller frees; NULL after an error. */
static char *convo_prompt(const gen_opts *o, const session *se, convo *cv, clkv_error *err) {
  clkv_model_info mi;
  clkv_model_get_info(se->m, &mi);
  const int room = o->gp.max_tokens < mi.n_ctx / 2 ? o->gp.max_tokens : mi.n_ctx / 2;
  int dropped = 0, n = 0;
  char *prompt;
  for (;;) {
    if (!(prompt = clkv_chat_format(se->m, cv->msgs, cv->n, 1, err))) return NULL;
    n = prompt_tokens(se, o, prompt);
    if (n < 0 || n + room <= mi.n_ctx || !convo_drop_oldest(cv)) break;
    free(prompt);
    dropped++;
  }
  if (dropped)
    fprintf(stderr, "clkv: the conversation filled the context (%d tokens): dropped the "
                    "%d oldest exchange%s (the system message stays)\n", mi.n_ctx, dropped,
            dropped > 1 ? "s" : "");
  return prompt;
}

/* Says on stderr why a reply ended early, after its text and newline. */
static void say_cut(const session *se, const clkv_gen_stats *st, int chat) {
  if (st->stop_reason != CLKV_STOP_CONTEXT) return;
  clkv_model_info mi;
  clkv_model_get_info(se->m, &mi);
  if (chat)
    fprintf(stderr, "clkv: the reply was cut: the context (%d tokens) is full; the oldest turns "
                    "are dropped for the next one\n", mi.n_ctx);
  else
    fprintf(stderr, "clkv: warning: generation stopped: the context (%d tokens) is full; --ctx "
                    "gives a longer one, up to the model's %d\n", mi.n_ctx, mi.n_ctx_train);
}

/* A long prompt's prefill takes a while: a line on stderr while it runs, on a terminal only. */
static void say_prefill(const session *se, const gen_opts *o, const char *prompt, sink *s) {
  enum { LONG_PROMPT = 256 }; /* tokens: about a second or more on a CPU */
  if (!isatty(STDERR_FILENO) || strlen(prompt) < LONG_PROMPT) return;
  int n = prompt_tokens(se, o, prompt);
  if (n < LONG_PROMPT) return;
  fprintf(stderr, "clkv: computing the prompt (%d tokens)...", n);
  fflush(stderr);
  s->progress = 1;
}

/* clkv_generate with log-probabilities: the prompt tokenized and run as a one-request
 * batch whose events fill s->logprobs. */
static clkv_status generate_logprobs(session *se, const char *prompt, const clkv_gen_params *gp,
                                     sink *s, clkv_gen_stats *stats) {
  int cap = (int)strlen(prompt) + 8; /* a token covers at least one byte but BOS */
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
  int n = ids ? clkv_tokenize(se->m, prompt, gp->add_special, ids, cap) : CLKV_ERR_NO_MEMORY;
  s->logprobs = json_array();
  clkv_request r = {.ids = ids, .n_ids = n, .params = *gp, .on_event = on_event, .user = s};
  clkv_status st = n < 0 ? (clkv_status)n : n > cap ? CLKV_ERR_INTERNAL
                                                     : clkv_generate_batch(se->ctx, &r, 1);
  free(ids);
  *stats = r.stats;
  return st ? st : r.status;
}

/* One prompt or turn: generated and printed; with keep, the answer joins the conversation.
 * Returns 0, or the exit status after saying what failed. */
static int turn(const gen_opts *o, session *se, convo *cv, const char *user, int keep) {
  clkv_error err;
  char *prompt = NULL;
  if (o->chat) {
    if (convo_add(cv, "user", strdup(user)))
      return cli_die(CLKV_ERR_NO_MEMORY, "out of host memory");
    prompt = convo_prompt(o, se, cv, &err);
    if (!prompt) return cli_die(err.status, err.message);
  }
  sink s = {.o = o, .m = se->m};
  say_prefill(se, o, prompt ? prompt : user, &s);
  clkv_gen_stats stats;
  clkv_status st = o->json && o->gp.logprobs
      ? generate_logprobs(se, prompt ? prompt : user, &o->gp, &s, &stats)
      : clkv_generate(se->ctx, prompt ? prompt : user, &o->gp, on_token, &s, &stats);
  if (s.progress) fputs("\r\033[K", stderr); /* no token came */
  free(prompt);
  if (st) {
    free(s.ids);
    free(s.text);
    json_decref(s.logprobs);
    return cli_die(st, clkv_last_error(se->ctx));
  }
  if (!o->json) fputc('\n', stdout); /* warnings after it, never mid-line */
  fflush(stdout);
  /* after each answer, so the blocks survive an interrupted chat (and --stats counts them);
   * an unusable directory was said when the context was made (the disk tier is off) */
  clkv_status saved = o->cp.prefix_cache_dir ? clkv_context_save_prefix(se->ctx) : CLKV_OK;
  if (saved && saved != CLKV_ERR_INVALID_ARG && !se->save_warned++)
    fprintf(stderr, "clkv: warning: prefix cache not saved: %s\n", clkv_last_error(se->ctx));
  if (o->json) print_json(&s, &stats, se->ctx, -1);
  fflush(stdout);
  say_cut(se, &stats, keep);
  if (cli_interrupted) fprintf(stderr, "clkv: interrupted (Ctrl-C again exits at once)\n");
  if (o->stats) print_stats(stderr, &stats, se->ctx, se->m, clkv_runtime_device(se->rt), o->gp.seed);
  se->last = stats;
  se->replies++;
  if (keep && convo_add(cv, "assistant", s.text ? s.text : strdup("")))
    fprintf(stderr, "clkv: out of host memory: the reply is not kept in the conversation\n");
  if (keep) s.text = NULL;
  free(s.ids);
  free(s.text);
  json_decref(s.logprobs);
  return 0;
}

/* The user's next line into line: 0 at the end of input or Ctrl-C. */
static int read_message(char *line, int cap) {
  for (;;) {
    fputs("> ", stdout);
    fflush(stdout);
    cli_interrupted = 0; /* a Ctrl-C that cut the last reply does not end the chat */
    if (!fgets(line, cap, stdin)) {
      if (cli_interrupted) fputc('\n', stdout);
      return 0;
    }
    line[strcspn(line, "\n")] = 0;
    if (*line) return 1;
  }
}

/* generate: the one prompt; chat: -p's one turn, or turns read from stdin until the end. */
static int converse(const gen_opts *o, session *se, int chat) {
  convo cv;
  convo_init(&cv, o->system);
  char line[8192];
  int rc = 0;
  do {
    const char *user = o->prompt;
    if (chat && !user) {
      if (!read_message(line, sizeof line)) break;
      chat_action a = convo_command(&cv, line);
      if (a == CHAT_QUIT) break;
      if (a == CHAT_STATS && !se->replies) puts("(no reply yet)");
      else if (a == CHAT_STATS)
        print_stats(stdout, &se->last, se->ctx, se->m, clkv_runtime_device(se->rt), o->gp.seed);
      if (a != CHAT_MESSAGE) continue;
      user = line[0] == '/' ? line + 1 : line; /* "//text" sends "/text" */
    }
    rc = turn(o, se, &cv, user, chat && o->chat);
  } while (!rc && chat && !o->prompt);
  convo_free(&cv);
  return rc ? rc : cli_interrupted ? 130 : 0;
}

/* Runtime, model and context as the options say: 0, or the exit status after saying what
 * failed (what was opened stays in se for session_close). */
static int session_open(const gen_opts *o, session *se) {
  clkv_error err;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o->device;
  clkv_status st = clkv_runtime_create(&rp, &se->rt, &err);
  if (st) return cli_die(st, err.message);
  const char *path = cli_model_path(o->model);
  if ((st = clkv_model_load(se->rt, path, &o->mp, &se->m, &err))) {
    fprintf(stderr, "clkv: cannot load %s\n", path);
    return cli_die(st, err.message);
  }
  if ((st = clkv_context_create(se->m, &o->cp, &se->ctx, &err))) return cli_die(st, err.message);
  if (o->draft_model) {
    clkv_context_params dcp = o->cp;
    dcp.prefix_cache_dir = NULL;
    if ((st = clkv_model_load(se->rt, o->draft_model, &o->mp, &se->dm, &err)) ||
        (st = clkv_context_create(se->dm, &dcp, &se->dctx, &err))) {
      fprintf(stderr, "clkv: cannot load the draft model %s\n", o->draft_model);
      return cli_die(st, err.message);
    }
    if ((st = clkv_context_set_draft(se->ctx, se->dctx))) return cli_die(st, clkv_last_error(se->ctx));
  }
  clkv_model_info mi;
  clkv_model_get_info(se->m, &mi);
  if (o->mp.n_ctx > mi.n_ctx)
    fprintf(stderr, "clkv: --ctx %d is more than the model's context: capped to %d tokens\n",
            o->mp.n_ctx, mi.n_ctx);
  return 0;
}

static void session_close(session *se) {
  if (se->ctx) clkv_context_set_draft(se->ctx, NULL);
  clkv_context_free(se->dctx);
  clkv_model_free(se->dm);
  clkv_context_free(se->ctx);
  clkv_model_free(se->m);
  clkv_runtime_free(se->rt);
}

static int cli_generate(const cli_cmd *c, int argc, char **argv) {
  const int chat = c == &cli_chat_cmd;
  gen_opts o = {.chat = chat, .seed = -1, .mp = clkv_model_default_params(),
                .cp = clkv_context_default_params(), .gp = clkv_gen_default_params()};
  o.parallel = o.mp.max_seqs;
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  if (o.system && !o.chat) {
    fprintf(stderr, "clkv: --system is the system message of the chat template: add --chat\n");
    return 2;
  }
  if (o.batch_file && (o.prompt || o.file)) {
    fprintf(stderr, "clkv: --batch-file reads the prompts from its file: drop %s\n",
            o.prompt ? "-p" : "-f");
    return 2;
  }
  char *text = NULL; /* the prompt read from a file or standard input */
  if (!o.batch_file && (rc = cli_prompt(&o.prompt, o.file, !chat, &text)) >= 0) return rc;
  if (o.stops.n) o.gp.stop = o.stops.v;
  o.gp.seed = cli_seed(o.seed);
  o.mp.max_seqs = o.batch_file ? o.parallel : 1;
  o.cp.prefix_cache = !o.no_prefix;
  o.cp.reuse_last = chat && !o.no_prefix; /* each turn continues the conversation's sequence */
  session se = {0};
  cli_catch_sigint();
  rc = session_open(&o, &se);
  if (!rc) rc = o.batch_file ? run_file(&o, &se) : converse(&o, &se, chat);
  session_close(&se);
  free(text);
  return rc;
}

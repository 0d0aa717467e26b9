/* cli_generate.c — `clkv generate` (one prompt, text streamed as it is made; or a file of
 * prompts generated together with continuous batching) and `clkv chat` (an interactive
 * loop over the model's chat template). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gen_opts {
  const char *model, *prompt, *system, *device, *cache_dir, *file;
  int chat, ids, stats, json, n_ctx, kv_block, chunk, no_prefix, kv_host_blocks, parallel;
  clkv_kv_evict evict;
  clkv_kv_type kv_type;
  uint64_t kv_mem;
  double kv_frac;
  const char *stops[9];
  int n_stops;
  clkv_gen_params gp;
} gen_opts;

typedef struct sink {
  const gen_opts *o;
  int32_t *ids;
  int n, cap;
  char *text;
  size_t len, tcap;
  int quiet; /* collect only (batch mode prints when all are done) */
} sink;

static void gen_usage(FILE *f, int chat) {
  fprintf(f,
          "usage: clkv %s [-m MODEL] %s[-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
          "       [--repeat-penalty R] [--seed S] [--chat] [--system S] [--stop STR]\n"
          "       [--device D] [--ctx N] [--kv-block 8|16|32] [--chunk N] [--ids] [--stats] [--json]\n"
          "       [--no-prefix-cache] [--kv-evict lru|lfu|fifo] [--kv-host-blocks N]\n"
          "       [--kv-type f16|q8|q4] [--kv-mem SIZE|FRACTION]\n"
          "       [--prefix-cache-dir DIR]\n"
          "  -p PROMPT      the prompt (with --chat: the user's message)\n"
          "  -f FILE        one prompt per line ('-': standard input), generated together with\n"
          "                 continuous batching; results printed in input order as [i] text,\n"
          "                 or one JSON object per line with --json\n"
          "  --parallel N   sequences decoded together with -f (default 4)\n"
          "  -n N           tokens to generate at most (default 128)\n"
          "  --temp T       temperature, 0 = greedy (default 0.8)\n"
          "  --chat         wrap the prompt in the model's chat template\n"
          "  --ids          print token ids instead of text\n"
          "  --stats        print prompt tokens, prefill/decode tokens/s, TTFT, inter-token latency\n"
          "  --json         print one JSON object with text, ids and stats\n"
          "  --kv-type T    KV cache precision: f16 (default), q8 or q4 (about 1/2, 1/4 the memory)\n"
          "  --kv-mem M     device memory for the KV cache: bytes with K/M/G (512M), or a fraction\n"
          "                 of what the weights leave (0.5); default: enough for the context,\n"
          "                 within 90%% of device memory\n"
          "  --prefix-cache-dir DIR  keep prompt KV blocks in DIR across runs (read at start,\n"
          "                 written after each answer; per model file, KV type and block size)\n",
          chat ? "chat" : "generate", chat ? "" : "[-p PROMPT] ");
}

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  sink *s = user;
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

/* The index of v among names, or -1 with a message naming the choices. */
static int pick(const char *opt, const char *v, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v, names[i])) return i;
  fprintf(stderr, "clkv: %s takes", opt);
  for (int i = 0; i < n; i++) fprintf(stderr, "%s %s", i ? (i + 1 == n ? " or" : ",") : "", names[i]);
  fprintf(stderr, ", not '%s'\n", v);
  return -1;
}

/* "512M", "2G", "65536K", "1048576" → bytes; "0.5" → a fraction in (0, 1]. */
static int parse_mem(const char *v, uint64_t *bytes, double *frac) {
  char *end;
  *bytes = 0;
  *frac = 0;
  if (strchr(v, '.')) {
    double d = strtod(v, &end);
    if (*end || !(d > 0 && d <= 1)) return 0;
    *frac = d;
    return 1;
  }
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || end == v || n == 0 || v[0] == '-') return 0;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10, end++;
  else if (*end == 'M' || *end == 'm') shift = 20, end++;
  else if (*end == 'G' || *end == 'g') shift = 30, end++;
  if (*end == 'i' && shift) end++;
  if (*end == 'B' && shift) end++;
  if (*end || n > (~0ULL >> shift)) return 0;
  *bytes = (uint64_t)n << shift;
  return 1;
}

static int parse(int argc, char **argv, gen_opts *o, int chat) {
  memset(o, 0, sizeof *o);
  o->gp = clkv_gen_default_params();
  o->chat = chat;
  o->kv_block = 16;
  o->parallel = 4;
  o->chunk = 128;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long l;
    double d;
#define NEEDV()                                                                \
  do {                                                                         \
    if (!v) {                                                                  \
      fprintf(stderr, "clkv: %s needs a value\n", a);                          \
      return 2;                                                                \
    }                                                                          \
    i++;                                                                       \
  } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      gen_usage(stdout, chat);
      return 1;
    } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEEDV(); o->model = v; }
    else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEEDV(); o->prompt = v; }
    else if (!strcmp(a, "-f") && !chat) { NEEDV(); o->file = v; }
    else if (!strcmp(a, "--parallel")) {
      NEEDV();
      if (!cli_parse_int(a, v, 1, 256, &l)) return 2;
      o->parallel = (int)l;
    }
    else if (!strcmp(a, "--system")) { NEEDV(); o->system = v; }
    else if (!strcmp(a, "--device")) { NEEDV(); o->device = v; }
    else if (!strcmp(a, "--prefix-cache-dir")) { NEEDV(); o->cache_dir = v; }
    else if (!strcmp(a, "--stop")) {
      NEEDV();
      if (o->n_stops < 8) o->stops[o->n_stops++] = v;
    } else if (!strcmp(a, "-n")) {
      NEEDV();
      if (!cli_parse_int(a, v, 0, 1 << 20, &l)) return 2;
      o->gp.max_tokens = (int)l;
    } else if (!strcmp(a, "--top-k")) {
      NEEDV();
      if (!cli_parse_int(a, v, 0, 1 << 24, &l)) return 2;
      o->gp.top_k = (int)l;
    } else if (!strcmp(a, "--seed")) {
      NEEDV();
      if (!cli_parse_int(a, v, 0, 0x7fffffffL, &l)) return 2;
      o->gp.seed = (uint64_t)l;
    } else if (!strcmp(a, "--ctx")) {
      NEEDV();
      if (!cli_parse_int(a, v, 16, 1 << 20, &l)) return 2;
      o->n_ctx = (int)l;
    } else if (!strcmp(a, "--kv-block")) {
      NEEDV();
      if (!cli_parse_int(a, v, 8, 32, &l) || (l != 8 && l != 16 && l != 32)) {
        fprintf(stderr, "clkv: --kv-block takes 8, 16 or 32\n");
        return 2;
      }
      o->kv_block = (int)l;
    } else if (!strcmp(a, "--chunk")) {
      NEEDV();
      if (!cli_parse_int(a, v, 1, 4096, &l)) return 2;
      o->chunk = (int)l;
    } else if (!strcmp(a, "--temp")) {
      NEEDV();
      if (!cli_parse_float(a, v, 0, 100, &d)) return 2;
      o->gp.temperature = (float)d;
    } else if (!strcmp(a, "--top-p")) {
      NEEDV();
      if (!cli_parse_float(a, v, 0, 1, &d)) return 2;
      o->gp.top_p = (float)d;
    } else if (!strcmp(a, "--min-p")) {
      NEEDV();
      if (!cli_parse_float(a, v, 0, 1, &d)) return 2;
      o->gp.min_p = (float)d;
    } else if (!strcmp(a, "--repeat-penalty")) {
      NEEDV();
      if (!cli_parse_float(a, v, 0.01, 100, &d)) return 2;
      o->gp.repeat_penalty = (float)d;
    } else if (!strcmp(a, "--kv-evict")) {
      NEEDV();
      static const char *const pol[] = {"lru", "lfu", "fifo"}; /* clkv_kv_evict order */
      int i = pick(a, v, pol, 3);
      if (i < 0) return 2;
      o->evict = (clkv_kv_evict)i;
    } else if (!strcmp(a, "--kv-host-blocks")) {
      NEEDV();
      if (!cli_parse_int(a, v, 0, 1 << 20, &l)) return 2;
      o->kv_host_blocks = (int)l;
    } else if (!strcmp(a, "--kv-type")) {
      NEEDV();
      static const char *const types[] = {"f16", "q8", "q4"}; /* clkv_kv_type order */
      int i = pick(a, v, types, 3);
      if (i < 0) return 2;
      o->kv_type = (clkv_kv_type)i;
    } else if (!strcmp(a, "--kv-mem")) {
      NEEDV();
      if (!parse_mem(v, &o->kv_mem, &o->kv_frac)) {
        fprintf(stderr, "clkv: --kv-mem takes a size (512M, 2G, 65536K) or a fraction (0.5) of the "
                        "device memory the weights leave, not '%s'\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--no-prefix-cache")) o->no_prefix = 1;
    else if (!strcmp(a, "--chat")) o->chat = 1;
    else if (!strcmp(a, "--ids")) o->ids = 1;
    else if (!strcmp(a, "--stats")) o->stats = 1;
    else if (!strcmp(a, "--json")) o->json = 1;
    else {
      fprintf(stderr, "clkv: unknown option '%s'\n", a);
      gen_usage(stderr, chat);
      return 2;
    }
#undef NEEDV
  }
  o->stops[o->n_stops] = NULL;
  if (o->n_stops) o->gp.stop = o->stops;
  return 0;
}

static void print_stats(FILE *f, const clkv_gen_stats *s, const clkv_context *ctx,
                        const clkv_model *m, const clkv_device_info *dev) {
  clkv_kv_stats k;
  clkv_context_kv_stats(ctx, &k);
  double pf = s->prefill_ms > 0 ? s->prefill_tokens * 1000.0 / s->prefill_ms : 0;
  double dc = s->decode_ms > 0 && s->generated_tokens > 1
                  ? (s->generated_tokens - 1) * 1000.0 / s->decode_ms : 0;
  fprintf(f,
          "\n[stats] prompt tokens %d (%d computed), prefill %.1f tok/s (%.1f ms), decode %.1f "
          "tok/s (%d tokens), TTFT %.1f ms, mean ITL %.2f ms, launches/token %.0f\n",
          s->prompt_tokens, s->prefill_tokens, pf, s->prefill_ms, dc, s->generated_tokens, s->ttft_ms,
          s->mean_itl_ms, s->launches_per_token);
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
  if (index >= 0) printf("{\"index\":%d,\"text\":", index);
  else printf("{\"text\":");
  cli_json_str(stdout, s->text ? s->text : "");
  printf(",\"ids\":[");
  for (int i = 0; i < s->n; i++) printf("%s%d", i ? "," : "", s->ids[i]);
  printf("],\"prompt_tokens\":%d,\"prefill_tokens\":%d,\"generated_tokens\":%d,"
         "\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"ttft_ms\":%.3f,\"mean_itl_ms\":%.3f,"
         "\"launches_per_token\":%.1f,\"stop_reason\":%d,\"prefix_hit_tokens\":%llu,"
         "\"disk_blocks_read\":%llu,\"disk_blocks_written\":%llu,\"disk_files_ignored\":%llu}\n",
         st->prompt_tokens, st->prefill_tokens, st->generated_tokens, st->prefill_ms,
         st->decode_ms, st->ttft_ms, st->mean_itl_ms, st->launches_per_token, st->stop_reason,
         (unsigned long long)k.prefix_hit_tokens, (unsigned long long)k.disk_blocks_read,
         (unsigned long long)k.disk_blocks_written, (unsigned long long)k.disk_files_ignored);
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

/* -f: every non-empty line is a prompt; all are generated together (clkv_generate_batch)
 * and printed in input order when done. */
static int run_file(const gen_opts *o, clkv_context *ctx, clkv_model *m) {
  FILE *f = strcmp(o->file, "-") ? fopen(o->file, "r") : stdin;
  if (!f) {
    fprintf(stderr, "clkv: cannot open %s: %s\n", o->file, strerror(errno));
    return 1;
  }
  clkv_request *r = NULL;
  sink *s = NULL;
  int n = 0, cap = 0, rc = 0;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  clkv_error err;
  while ((len = getline(&line, &lcap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (!len) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      clkv_request *nr = realloc(r, sizeof *r * (size_t)cap);
      if (nr) r = nr;
      sink *ns = realloc(s, sizeof *s * (size_t)cap);
      if (ns) s = ns;
      if (!nr || !ns) {
        rc = cli_die(CLKV_ERR_NO_MEMORY, "out of host memory reading the prompts");
        goto done;
      }
    }
    char *text = line_prompt(o, m, line, &err);
    if (!text) {
      rc = cli_die(err.status, err.message);
      goto done;
    }
    int tcap = (int)strlen(text) + 8;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)tcap);
    int k = ids ? clkv_tokenize(m, text, o->gp.add_special, ids, tcap) : CLKV_ERR_NO_MEMORY;
    free(text);
    if (k < 0 || k > tcap) { /* a token covers at least one byte but BOS */
      free(ids);
      rc = cli_die(k < 0 ? (clkv_status)k : CLKV_ERR_INTERNAL, "a prompt could not be tokenized");
      goto done;
    }
    s[n] = (sink){o, NULL, 0, 0, NULL, 0, 0, 1};
    r[n] = (clkv_request){.ids = ids, .n_ids = k, .params = o->gp, .cb = on_token, .user = &s[n]};
    n++;
  }
  if (!n) {
    fprintf(stderr, "clkv: %s holds no prompt (one per line)\n", o->file);
    rc = 2;
    goto done;
  }
  for (int i = 0; i < n; i++) r[i].user = &s[i]; /* s may have moved */
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  clkv_status st = clkv_generate_batch(ctx, r, n);
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) * 1e-6;
  if (st) {
    rc = cli_die(st, clkv_last_error(ctx));
    goto done;
  }
  long tokens = 0;
  for (int i = 0; i < n; i++) {
    tokens += r[i].stats.generated_tokens;
    if (r[i].status) {
      fprintf(stderr, "clkv: prompt %d failed: %s\n", i, clkv_status_str(r[i].status));
      rc = 1;
    } else if (o->json) {
      print_json(&s[i], &r[i].stats, ctx, i);
    } else if (o->ids) {
      printf("[%d]", i);
      for (int j = 0; j < s[i].n; j++) printf(" %d", s[i].ids[j]);
      printf("\n");
    } else {
      printf("[%d] %s\n", i, s[i].text ? s[i].text : "");
    }
  }
  if (o->stats) {
    clkv_kv_stats k;
    clkv_context_kv_stats(ctx, &k);
    fprintf(stderr, "[batch] %d prompts, %ld tokens in %.1f ms: %.1f tokens/s; %d decoded together "
                    "at most; swaps %llu/%llu\n", n, tokens, ms, tokens * 1000.0 / ms,
            o->parallel, (unsigned long long)k.swaps_out, (unsigned long long)k.swaps_in);
  }
done:
  for (int i = 0; i < n; i++) {
    free((void *)r[i].ids);
    free(s[i].ids);
    free(s[i].text);
  }
  free(r);
  free(s);
  free(line);
  if (f != stdin) fclose(f);
  return rc;
}

int cli_generate(int argc, char **argv, int chat) {
  gen_opts o;
  int rc = parse(argc, argv, &o, chat);
  if (rc) return rc == 1 ? 0 : rc;
  if (!chat && !o.prompt) o.prompt = "Once upon a time";
  clkv_error err;
  clkv_runtime *rt = NULL;
  clkv_model *m = NULL;
  clkv_context *ctx = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o.device;
  clkv_status st = clkv_runtime_create(&rp, &rt, &err);
  if (st) return cli_die(st, err.message);
  clkv_model_params mp = clkv_model_default_params();
  mp.n_ctx = o.n_ctx;
  mp.kv_block = o.kv_block;
  mp.kv_type = o.kv_type;
  mp.chunk = o.chunk;
  mp.max_seqs = o.file ? o.parallel : 1;
  const char *path = cli_model_path(o.model);
  if ((st = clkv_model_load(rt, path, &mp, &m, &err))) {
    fprintf(stderr, "clkv: cannot load %s\n", path);
    rc = cli_die(st, err.message);
    goto out;
  }
  clkv_context_params cp = clkv_context_default_params();
  cp.prefix_cache = !o.no_prefix;
  cp.evict = o.evict;
  cp.kv_host_blocks = o.kv_host_blocks;
  cp.reuse_last = chat && !o.no_prefix; /* each turn continues the conversation's sequence */
  cp.kv_mem_bytes = o.kv_mem;
  cp.kv_mem_fraction = o.kv_frac;
  cp.prefix_cache_dir = o.cache_dir;
  if ((st = clkv_context_create(m, &cp, &ctx, &err))) {
    rc = cli_die(st, err.message);
    goto out;
  }
  if (o.file) {
    rc = run_file(&o, ctx, m);
    goto out;
  }
  clkv_chat_message msgs[256];
  size_t n_msgs = 0;
  if (o.system) msgs[n_msgs++] = (clkv_chat_message){"system", o.system};
  char line[8192];
  char *owned[256] = {0};
  int n_owned = 0, save_warned = 0;
  for (;;) {
    const char *user = o.prompt;
    if (chat && !user) {
      fputs("> ", stdout);
      fflush(stdout);
      if (!fgets(line, sizeof line, stdin)) break;
      line[strcspn(line, "\n")] = 0;
      if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
      if (!*line) continue;
      user = line;
    }
    char *prompt = NULL;
    if (o.chat) {
      if (n_msgs + 2 > sizeof msgs / sizeof msgs[0] || n_owned + 2 > 256) break;
      owned[n_owned] = strdup(user);
      msgs[n_msgs++] = (clkv_chat_message){"user", owned[n_owned++]};
      prompt = clkv_chat_format(m, msgs, n_msgs, 1, &err);
      if (!prompt) {
        rc = cli_die(err.status, err.message);
        break;
      }
    }
    sink s = {&o, NULL, 0, 0, NULL, 0, 0, 0};
    clkv_gen_stats stats;
    st = clkv_generate(ctx, prompt ? prompt : user, &o.gp, on_token, &s, &stats);
    free(prompt);
    if (st) {
      rc = cli_die(st, clkv_last_error(ctx));
      free(s.ids);
      free(s.text);
      break;
    }
    /* after each answer, so the blocks survive an interrupted chat (and --stats counts them) */
    if (o.cache_dir && clkv_context_save_prefix(ctx) && !save_warned++)
      fprintf(stderr, "clkv: warning: prefix cache not saved: %s\n", clkv_last_error(ctx));
    if (o.json) print_json(&s, &stats, ctx, -1);
    else fputc('\n', stdout);
    if (o.stats) print_stats(stderr, &stats, ctx, m, clkv_runtime_device(rt));
    if (chat && o.chat) {
      owned[n_owned] = s.text ? s.text : strdup("");
      msgs[n_msgs++] = (clkv_chat_message){"assistant", owned[n_owned++]};
      s.text = NULL;
    }
    free(s.ids);
    free(s.text);
    if (!chat || o.prompt) break;
  }
  for (int i = 0; i < n_owned; i++) free(owned[i]);
out:
  clkv_context_free(ctx);
  clkv_model_free(m);
  clkv_runtime_free(rt);
  return rc;
}

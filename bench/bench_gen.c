/* bench_gen.c — `clkv_bench gen`: end-to-end prefill and decode throughput of a model through
 * the public API, time to first token, inter-token latency percentiles, and on every row the
 * roofline (bytes and FLOPs per token against the device's measured bandwidth and compute). */
#include "bench_peaks.h"
#include "bench_plot.h"
#include "bench_util.h"
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define DECODE_TOKENS 32
#define MAX_ROWS 32

typedef struct gen_row {
  const char *kind;    /* "prefill", "decode", or "batch" (decode of several sequences) */
  int batch;           /* sequences decoded together (1 but for "batch" rows) */
  int prompt;          /* prompt tokens */
  int tokens;          /* tokens the rate counts */
  double ctx;          /* mean context a token attends to */
  double tok_s, ttft_ms, itl_p50, itl_p90, itl_p99, launches_per_token;
  double bytes_tok, flops_tok, bw_bound, cp_bound, fraction;
  double bw_fraction;  /* tok_s / bw_bound, whichever bound is tighter */
  const char *bound;   /* "bandwidth" or "compute": the tighter one */
  char test[32];       /* llama-bench name ("pp512", "tg128@d512"), or "" */
  double sd;           /* standard deviation of tok_s over the repetitions (llama-bench rows) */
  int reps;
} gen_row;

/* What a token costs the device, from the model's shapes. */
typedef struct model_cost {
  double layer_params;  /* parameters of the transformer blocks (matmuls only) */
  double out_params;    /* the output projection (n_vocab × n_embd) */
  double weight_bytes;  /* bytes read by one pass over every weight (see weights_read) */
  double kv_pos_bytes;  /* K and V bytes of one position, all layers (F16) */
  double attn_flops_pos; /* attention FLOPs of one query against one position, all layers */
  int chunk;
} model_cost;

typedef struct gen_opts {
  const char *model, *csv, *plot, *device;
  int json, quick;
  int gemm;            /* CLKV__GEMM_* forced on every projection's prefill, or -1 (tuned) */
  /* llama-bench's vocabulary: -p, -n, -d lists and -r; any of them selects that mode */
  int lb, lb_p[8], n_lb_p, lb_n[8], n_lb_n, lb_d[8], n_lb_d, lb_r;
  int prompts[8], n_prompts; /* --prefill-only: these prefill rows and no decode rows */
} gen_opts;

/* ---- per-token times from the token callback ---- */
typedef struct tok_clock {
  double t[DECODE_TOKENS + 4];
  int n;
} tok_clock;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  tok_clock *c = user;
  if (id >= 0 && c->n < (int)(sizeof c->t / sizeof c->t[0])) c->t[c->n++] = bench_now_s();
  return 0;
}

static double percentile(const double *sorted, int n, double p) {
  if (n <= 0) return NAN;
  double r = p * (n - 1);
  int i = (int)r;
  return i + 1 < n ? sorted[i] + (r - i) * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

/* ---- roofline ---- */
static clkv_status model_cost_of(const clkv_model *m, const char *path, model_cost *c,
                                 clkv_error *err) {
  clkv_file_info fi;
  clkv_status st = clkv_model_inspect(path, &fi, err);
  if (st) return st;
  const clkv_model_info *i = &m->info;
  double dim = i->n_embd, q = (double)i->n_heads * i->head_dim,
         kv = (double)i->n_kv_heads * i->head_dim;
  c->layer_params = i->n_layers * (dim * (q + 2 * kv) + q * dim + 3 * dim * i->n_ff);
  c->out_params = (double)i->n_vocab * dim;
  /* Every tensor is read once per forward pass, except the embedding table, of which one
   * row per token is read; a tied output reads the whole table as the output matrix. */
  c->weight_bytes = (double)fi.tensor_bytes - (double)m->tok_embd.bytes +
                    (m->tied ? (double)m->tok_embd.bytes : 0);
  c->kv_pos_bytes = 2.0 * i->n_layers * kv * 2;
  c->attn_flops_pos = 4.0 * i->n_layers * q;
  c->chunk = m->params.chunk;
  return CLKV_OK;
}

/* Prefill of P tokens: weights read once per chunk, logits for the last token only, each
 * token attends to (P+1)/2 positions on average and writes its K/V. Decode at context C:
 * every weight and C positions of K/V read per token. */
static void roofline(const model_cost *c, const bench_peaks *pk, gen_row *r) {
  if (!strcmp(r->kind, "prefill")) {
    double chunks = ceil((double)r->prompt / c->chunk);
    r->bytes_tok = c->weight_bytes * chunks / r->prompt + c->kv_pos_bytes;
    r->flops_tok = 2 * c->layer_params + 2 * c->out_params / r->prompt +
                   c->attn_flops_pos * r->ctx;
  } else { /* a batch of B reads the weights once per step for B tokens */
    r->bytes_tok = c->weight_bytes / (r->batch > 1 ? r->batch : 1) + c->kv_pos_bytes * r->ctx;
    r->flops_tok = 2 * (c->layer_params + c->out_params) + c->attn_flops_pos * r->ctx;
  }
  r->bw_bound = pk->gbps * 1e9 / r->bytes_tok;
  /* multiply-adds at the faster of the fp32 and int8 rates: quantized kernels may use either */
  r->cp_bound = pk->compute * 1e9 / r->flops_tok;
  int bw = r->bw_bound <= r->cp_bound;
  r->bound = bw ? "bandwidth" : "compute";
  r->fraction = r->tok_s / (bw ? r->bw_bound : r->cp_bound);
  r->bw_fraction = r->tok_s / r->bw_bound;
}

/* ---- runs ---- */
static void synth_ids(int32_t *ids, int n, int n_vocab, uint64_t seed) {
  uint64_t s = seed * 2654435761u + 1;
  for (int i = 0; i < n; ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    ids[i] = 100 + (int32_t)((s >> 33) % (uint64_t)(n_vocab - 200));
  }
}

static void progress(int done, int total, const char *what) {
  if (!isatty(STDERR_FILENO)) return;
  const int width = 30;
  int fill = total ? done * width / total : width;
  fprintf(stderr, "\r[%.*s%*s] %d/%d %-28s", fill, "##############################",
          width - fill, "", done, total, what);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

static clkv_status run_prefill(clkv_context *ctx, int n_vocab, int prompt, int reps, gen_row *r) {
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)prompt);
  double rate[8], ttft[8];
  clkv_status st = ids ? CLKV_OK : CLKV_ERR_NO_MEMORY;
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = 1;
  gp.add_special = 0;
  for (int i = 0; i < reps && !st; ++i) {
    clkv_gen_stats s;
    synth_ids(ids, prompt, n_vocab, (uint64_t)(prompt * 31 + i));
    st = clkv_generate_ids(ctx, ids, prompt, &gp, NULL, NULL, &s);
    rate[i] = s.prefill_tokens / (s.prefill_ms * 1e-3);
    ttft[i] = s.ttft_ms;
  }
  free(ids);
  *r = (gen_row){.kind = "prefill", .prompt = prompt, .tokens = prompt, .ctx = (prompt + 1) / 2.0,
                 .itl_p50 = NAN, .itl_p90 = NAN, .itl_p99 = NAN, .launches_per_token = NAN};
  r->tok_s = bench_median(rate, reps);
  r->ttft_ms = bench_median(ttft, reps);
  return st;
}

static clkv_status run_decode(clkv_context *ctx, int n_vocab, int prompt, gen_row *r) {
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)prompt);
  if (!ids) return CLKV_ERR_NO_MEMORY;
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0;
  gp.max_tokens = DECODE_TOKENS;
  gp.add_special = 0;
  clkv_gen_stats s;
  tok_clock c = {.n = 0};
  synth_ids(ids, prompt, n_vocab, (uint64_t)prompt * 17 + 5);
  clkv_status st = clkv_generate_ids(ctx, ids, prompt, &gp, on_token, &c, &s);
  free(ids);
  double itl[DECODE_TOKENS + 4];
  int n = c.n - 1;
  for (int i = 0; i < n; ++i) itl[i] = (c.t[i + 1] - c.t[i]) * 1e3;
  bench_median(itl, n); /* sorts */
  *r = (gen_row){.kind = "decode", .prompt = prompt, .tokens = n,
                 .ctx = prompt + c.n / 2.0, .ttft_ms = s.ttft_ms,
                 .launches_per_token = s.launches_per_token};
  r->itl_p50 = percentile(itl, n, 0.5);
  r->itl_p90 = percentile(itl, n, 0.9);
  r->itl_p99 = percentile(itl, n, 0.99);
  r->tok_s = s.mean_itl_ms > 0 ? 1e3 / s.mean_itl_ms : NAN;
  return st;
}

/* B requests of `prompt` tokens decoded together (continuous batching): tokens/s over the
 * window where all B are decoding (from the last first token to the last token). */
typedef struct batch_clock {
  double first, last;
  double *times; /* every token's time, all requests */
  int n, cap;
} batch_clock;

static int on_batch_token(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  batch_clock *c = user;
  if (id < 0) return 0;
  const double t = bench_now_s();
  if (c->first == 0) c->first = t;
  if (c->n < c->cap) c->times[c->n++] = t;
  c->last = t;
  return 0;
}

static clkv_status run_batch_decode(clkv_context *ctx, int n_vocab, int batch, int prompt,
                                    gen_row *r) {
  enum { MAXB = 16 };
  clkv_request req[MAXB];
  batch_clock clk[MAXB];
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)prompt * (size_t)batch);
  double *times = malloc(sizeof(double) * (size_t)batch * (DECODE_TOKENS + 4));
  if (!ids || !times || batch > MAXB) {
    free(ids);
    free(times);
    return CLKV_ERR_NO_MEMORY;
  }
  for (int b = 0; b < batch; ++b) {
    synth_ids(ids + (size_t)b * prompt, prompt, n_vocab, (uint64_t)(prompt * 7 + b * 101 + 3));
    clk[b] = (batch_clock){0, 0, times + (size_t)b * (DECODE_TOKENS + 4), 0, DECODE_TOKENS + 4};
    req[b] = (clkv_request){.ids = ids + (size_t)b * prompt, .n_ids = prompt,
                            .params = clkv_gen_default_params(), .cb = on_batch_token,
                            .user = &clk[b]};
    req[b].params.temperature = 0;
    req[b].params.max_tokens = DECODE_TOKENS;
    req[b].params.add_special = 0;
  }
  clkv_status st = clkv_generate_batch(ctx, req, batch);
  double start = 0, end = 0, ttft = 0;
  int tokens = 0;
  for (int b = 0; b < batch && !st; ++b) {
    st = req[b].status;
    start = fmax(start, clk[b].first);
    end = fmax(end, clk[b].last);
    ttft += req[b].stats.ttft_ms / batch;
  }
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < clk[b].n; ++i) tokens += clk[b].times[i] > start;
  free(ids);
  free(times);
  *r = (gen_row){.kind = "batch", .batch = batch, .prompt = prompt, .tokens = tokens,
                 .ctx = prompt + DECODE_TOKENS / 2.0, .ttft_ms = ttft, .itl_p50 = NAN,
                 .itl_p90 = NAN, .itl_p99 = NAN, .launches_per_token = NAN};
  r->tok_s = end > start && tokens > 0 ? tokens / (end - start) : NAN;
  return st;
}

static const char *num(char *buf, size_t cap, const char *fmt, double v, const char *none);

/* ---- llama-bench's tests: ppP (prefill of P tokens into an empty context) and tgN@dD (N
 * single-token decode steps after D tokens of context), r repetitions, mean ± stddev of each
 * repetition's tokens/s, as llama-bench computes them ---- */
static void mean_sd(const double *v, int n, double *mean, double *sd) {
  double m = 0, q = 0;
  for (int i = 0; i < n; ++i) m += v[i] / n;
  for (int i = 0; i < n; ++i) q += (v[i] - m) * (v[i] - m);
  *mean = n ? m : NAN;
  *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

typedef struct lb_clock {
  double *t;
  int n, cap;
} lb_clock;

static int on_lb_token(void *user, int32_t id, const char *text, size_t len) {
  (void)text, (void)len;
  lb_clock *c = user;
  if (id >= 0 && c->n < c->cap) c->t[c->n++] = bench_now_s();
  return 0;
}

static clkv_status run_lb_pp(clkv_context *ctx, int n_vocab, int prompt, int reps, gen_row *r) {
  double rate[64];
  gen_row one = {.kind = "prefill"};
  clkv_status st = CLKV_OK;
  reps = reps < 64 ? reps : 64;
  int done = 0;
  st = run_prefill(ctx, n_vocab, prompt, 1, &one); /* untimed warm-up, as llama-bench's */
  for (int i = 0; i < reps && !st; ++i) {
    st = run_prefill(ctx, n_vocab, prompt, 1, &one); /* a new prompt each repetition */
    if (!st) rate[done++] = one.tok_s;
  }
  *r = one;
  mean_sd(rate, done, &r->tok_s, &r->sd);
  r->reps = done;
  snprintf(r->test, sizeof r->test, "pp%d", prompt);
  return st;
}

/* The prompt of D tokens (1 at depth 0: something to decode from), then N+1 tokens: the first
 * comes from the prompt's logits, the N after it are the timed decode steps. A repetition cut
 * short by an end-of-generation token counts the steps it made. */
static clkv_status run_lb_tg(clkv_context *ctx, int n_vocab, int gen, int depth, int reps,
                             gen_row *r) {
  const int prompt = depth > 0 ? depth : 1;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)prompt);
  double *t = malloc(sizeof(double) * (size_t)(gen + 2)), rate[64], launches = 0;
  clkv_status st = ids && t ? CLKV_OK : CLKV_ERR_NO_MEMORY;
  int done = 0;
  reps = reps < 64 ? reps : 64;
  /* An untimed warm-up, as llama-bench's: the first decode steps after a prefill build and
   * page in what the prefill did not use (the fused step's program, the KV pages). */
  for (int i = -1; i < reps && !st; ++i) {
    clkv_gen_params gp = clkv_gen_default_params();
    gp.temperature = 0;
    gp.max_tokens = i < 0 ? 3 : gen + 1;
    gp.add_special = 0;
    clkv_gen_stats s;
    lb_clock c = {t, 0, gen + 2};
    synth_ids(ids, prompt, n_vocab, (uint64_t)(prompt * 13 + i * 7 + 1));
    st = clkv_generate_ids(ctx, ids, prompt, &gp, on_lb_token, &c, &s);
    if (!st && c.n > 1 && i >= 0) {
      rate[done++] = (c.n - 1) / (t[c.n - 1] - t[0]);
      launches += s.launches_per_token / reps;
    }
  }
  free(ids);
  free(t);
  *r = (gen_row){.kind = "decode", .prompt = depth, .tokens = gen, .ctx = depth + gen / 2.0,
                 .ttft_ms = NAN, .itl_p50 = NAN, .itl_p90 = NAN, .itl_p99 = NAN,
                 .launches_per_token = launches, .reps = done};
  mean_sd(rate, done, &r->tok_s, &r->sd);
  if (depth > 0) snprintf(r->test, sizeof r->test, "tg%d@d%d", gen, depth);
  else snprintf(r->test, sizeof r->test, "tg%d", gen);
  return st;
}

static void print_lb_table(const gen_row *rows, int n) {
  printf("| %-12s | %18s | %9s | %-9s | %6s | %6s | %6s |\n", "test", "t/s", "bound t/s",
         "bound", "frac", "BW%", "launch");
  printf("| %.12s | %.18s | %.9s | %.9s | %.6s | %.6s | %.6s |\n", "-------------",
         "-------------------:", "---------:", "----------", "------:", "------:", "------:");
  for (int i = 0; i < n; ++i) {
    const gen_row *r = &rows[i];
    char ts[32], l[16];
    snprintf(ts, sizeof ts, "%.2f ± %.2f", r->tok_s, r->sd);
    printf("| %-12s | %19s | %9.1f | %-9s | %5.1f%% | %5.1f%% | %6s |\n", r->test, ts,
           fmin(r->bw_bound, r->cp_bound), r->bound, 100 * r->fraction, 100 * r->bw_fraction,
           num(l, 16, "%.0f", r->launches_per_token, "-"));
  }
}

/* llama-bench's test matrix: every ppP at depth 0 (pp at a depth is not measured), every tgN
 * at every depth D. */
static int run_lb(clkv_context *ctx, int n_vocab, const gen_opts *o, gen_row *rows, int *n,
                  int *step, int total) {
  for (int di = 0; di < o->n_lb_d; ++di) {
    for (int i = 0; i < o->n_lb_p && o->lb_d[di] == 0 && *n < MAX_ROWS; ++i) {
      progress(++*step, total, "pp");
      if (run_lb_pp(ctx, n_vocab, o->lb_p[i], o->lb_r, &rows[(*n)++])) return -1;
    }
    for (int i = 0; i < o->n_lb_n && *n < MAX_ROWS; ++i) {
      progress(++*step, total, "tg");
      if (run_lb_tg(ctx, n_vocab, o->lb_n[i], o->lb_d[di], o->lb_r, &rows[(*n)++])) return -1;
    }
  }
  return 0;
}

/* ---- output ---- */
/* A number for the table or the CSV; `none` where it was not measured. */
static const char *num(char *buf, size_t cap, const char *fmt, double v, const char *none) {
  if (isfinite(v)) snprintf(buf, cap, fmt, v);
  else snprintf(buf, cap, "%s", none);
  return buf;
}

static void print_table(const gen_row *rows, int n) {
  printf("%-8s %5s %6s %7s %9s %9s %8s %8s %8s %6s %9s %10s %9s %9s %-9s %6s %6s\n", "phase", "batch", "prompt",
         "ctx", "tok/s", "TTFT ms", "ITL p50", "p90", "p99", "launch", "MB/tok", "MFLOP/tok",
         "BW bound", "CP bound", "bound", "frac", "BW%");
  for (int i = 0; i < n; ++i) {
    const gen_row *r = &rows[i];
    char a[16], b[16], c[16], d[16];
    printf("%-8s %5d %6d %7.1f %9.2f %9.1f %8s %8s %8s %6s %9.2f %10.1f %9.1f %9.1f %-9s "
           "%5.1f%% %5.1f%%\n",
           r->kind, r->batch > 1 ? r->batch : 1, r->prompt, r->ctx, r->tok_s, r->ttft_ms, num(a, 16, "%.2f", r->itl_p50, "-"),
           num(b, 16, "%.2f", r->itl_p90, "-"), num(c, 16, "%.2f", r->itl_p99, "-"),
           num(d, 16, "%.0f", r->launches_per_token, "-"), r->bytes_tok * 1e-6,
           r->flops_tok * 1e-6, r->bw_bound, r->cp_bound, r->bound, 100 * r->fraction,
           100 * r->bw_fraction);
  }
}

static void json_row(bench_json *j, const gen_row *r) {
  char key[48];
  if (r->test[0]) snprintf(key, sizeof key, "%s", r->test);
  else if (r->batch > 1) snprintf(key, sizeof key, "%s%d_%d", r->kind, r->batch, r->prompt);
  else snprintf(key, sizeof key, "%s_%d", r->kind, r->prompt);
  bench_json_object(j, key);
  bench_json_str(j, "phase", r->kind);
  bench_json_num(j, "batch", r->batch > 1 ? r->batch : 1);
  bench_json_num(j, "prompt_tokens", r->prompt);
  bench_json_num(j, "tokens", r->tokens);
  bench_json_num(j, "mean_ctx", r->ctx);
  bench_json_num(j, "tokens_per_s", r->tok_s);
  bench_json_num(j, "ttft_ms", r->ttft_ms);
  bench_json_num(j, "itl_p50_ms", r->itl_p50);
  bench_json_num(j, "itl_p90_ms", r->itl_p90);
  bench_json_num(j, "itl_p99_ms", r->itl_p99);
  bench_json_num(j, "launches_per_token", r->launches_per_token);
  bench_json_num(j, "bytes_per_token", r->bytes_tok);
  bench_json_num(j, "flops_per_token", r->flops_tok);
  bench_json_num(j, "bandwidth_bound_tok_s", r->bw_bound);
  bench_json_num(j, "compute_bound_tok_s", r->cp_bound);
  bench_json_str(j, "bound", r->bound);
  bench_json_num(j, "roofline_fraction", r->fraction);
  bench_json_num(j, "bandwidth_fraction", r->bw_fraction);
  if (r->test[0]) {
    bench_json_str(j, "test", r->test);
    bench_json_num(j, "tokens_per_s_stddev", r->sd);
    bench_json_num(j, "repetitions", r->reps);
  }
  bench_json_close(j);
}

static int write_csv(const char *path, const gen_row *rows, int n, const bench_peaks *pk) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "phase,batch,prompt_tokens,tokens,mean_ctx,tokens_per_s,ttft_ms,itl_p50_ms,itl_p90_ms,"
             "itl_p99_ms,launches_per_token,bytes_per_token,flops_per_token,device_gbps,"
             "device_gflops,bandwidth_bound_tok_s,compute_bound_tok_s,bound,roofline_fraction\n");
  for (int i = 0; i < n; ++i) {
    const gen_row *r = &rows[i];
    char a[24], b[24], c[24], d[24];
    fprintf(f, "%s,%d,%d,%d,%.1f,%.4g,%.4g,%s,%s,%s,%s,%.6g,%.6g,%.4g,%.4g,%.4g,%.4g,%s,%.4g\n",
            r->kind, r->batch > 1 ? r->batch : 1, r->prompt, r->tokens, r->ctx, r->tok_s, r->ttft_ms,
            num(a, 24, "%.4g", r->itl_p50, ""), num(b, 24, "%.4g", r->itl_p90, ""),
            num(c, 24, "%.4g", r->itl_p99, ""), num(d, 24, "%.4g", r->launches_per_token, ""),
            r->bytes_tok, r->flops_tok, pk->gbps, pk->gflops, r->bw_bound, r->cp_bound,
            r->bound, r->fraction);
  }
  return fclose(f) ? -1 : 0;
}

/* Two panels: prefill tokens/s against prompt length, decode against context, each with
 * its two roofline bounds. */
static int plot(const char *png, const gen_row *rows, int n, char *msg, size_t cap) {
  double x[2][MAX_ROWS], y[2][MAX_ROWS], bw[2][MAX_ROWS], cp[2][MAX_ROWS];
  int k[2] = {0, 0};
  for (int i = 0; i < n; ++i) {
    if (!strcmp(rows[i].kind, "batch")) continue; /* single-sequence rows only */
    int d = !strcmp(rows[i].kind, "decode");
    x[d][k[d]] = d ? rows[i].ctx : rows[i].prompt;
    y[d][k[d]] = rows[i].tok_s;
    bw[d][k[d]] = rows[i].bw_bound;
    cp[d][k[d]++] = rows[i].cp_bound;
  }
  bench_series s[2][3];
  bench_panel p[2];
  static const char *const titles[2] = {"Prefill", "Decode (32 tokens after the prompt)"};
  static const char *const xl[2] = {"prompt length (tokens)", "mean context length (tokens)"};
  for (int d = 0; d < 2; ++d) {
    s[d][0] = (bench_series){"clkv measured", "linespoints lw 2 pt 7", x[d], y[d], k[d]};
    s[d][1] = (bench_series){"bandwidth bound", "lines lw 2 dt 2", x[d], bw[d], k[d]};
    s[d][2] = (bench_series){"fp32 compute bound", "lines lw 2 dt 4", x[d], cp[d], k[d]};
    p[d] = (bench_panel){titles[d], xl[d], "tokens/s", 1, 1, s[d], 3};
  }
  return bench_plot_png(png, p, 2, msg, cap);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: clkv_bench gen [-m MODEL] [--json] [--csv FILE] [--plot FILE.png] [--quick]\n"
          "                      [--device D] [-p N] [-n N] [-d D] [-r R]\n"
          "  -m MODEL      GGUF model (default $CLKV_MODEL, else " DEFAULT_MODEL ")\n"
          "  --json        one JSON object on stdout instead of the table\n"
          "  --csv FILE    the rows as CSV\n"
          "  --plot FILE   tokens/s vs prompt and context length with the roofline, via gnuplot\n"
          "  --quick       prefill at 32 and 128 tokens, one repetition: a smoke test\n"
          "  --prefill-gemm own|clblast|clblast16\n"
          "                every projection's prefill on our matvec or through CLBlast\n"
          "                (default: as tuned; see docs/TUNING.md)\n"
          "  --prefill-only N[,N...]\n"
          "                only prefill rows, at these prompt lengths (up to 8, 1..4096)\n"
          "llama-bench's tests instead of the rows above (any of these selects them):\n"
          "  -p N[,N...]   ppN: prefill of N tokens into an empty context (default 512)\n"
          "  -n N[,N...]   tgN: N single-token decode steps (default 128)\n"
          "  -d D[,D...]   tgN@dD: the decode steps after D tokens of context (default 0)\n"
          "  -r R          repetitions of each test, mean ± stddev (default 5)\n");
}

/* "512" or "0,512": up to 8 token counts min..4096. 0, or 2 after a message. */
static int parse_list(const char *arg, int min, int *v, int *n) {
  const char *p = arg;
  char *end;
  for (*n = 0; *p && *n < 8; p = *end ? end + 1 : end) {
    long x = strtol(p, &end, 10);
    if (end == p || x < min || x > 4096 || (*end && *end != ',')) break;
    v[(*n)++] = (int)x;
  }
  if (*p || !*n) {
    fprintf(stderr, "clkv_bench gen: '%s': give up to 8 token counts %d..4096, comma-separated\n",
            arg, min);
    return 2;
  }
  return 0;
}

static int parse(int argc, char **argv, gen_opts *o) {
  for (int i = 1; i < argc; ++i) {
    int more = i + 1 < argc;
    if (!strcmp(argv[i], "--json")) o->json = 1;
    else if (!strcmp(argv[i], "--quick")) o->quick = 1;
    else if (!strcmp(argv[i], "-m") && more) o->model = argv[++i];
    else if (!strcmp(argv[i], "--csv") && more) o->csv = argv[++i];
    else if (!strcmp(argv[i], "--plot") && more) o->plot = argv[++i];
    else if (!strcmp(argv[i], "--device") && more) o->device = argv[++i];
    else if (!strcmp(argv[i], "--prefill-only") && more) {
      if (parse_list(argv[++i], 1, o->prompts, &o->n_prompts)) return 2;
    } else if (!strcmp(argv[i], "-p") && more) {
      if (parse_list(argv[++i], 0, o->lb_p, &o->n_lb_p)) return 2;
      o->lb = 1;
    } else if (!strcmp(argv[i], "-n") && more) {
      if (parse_list(argv[++i], 0, o->lb_n, &o->n_lb_n)) return 2;
      o->lb = 1;
    } else if (!strcmp(argv[i], "-d") && more) {
      if (parse_list(argv[++i], 0, o->lb_d, &o->n_lb_d)) return 2;
      o->lb = 1;
    } else if (!strcmp(argv[i], "-r") && more) {
      int r[8], nr = 0;
      if (parse_list(argv[++i], 1, r, &nr) || nr != 1 || r[0] > 64) {
        fprintf(stderr, "clkv_bench gen: -r %s: give one repetition count 1..64\n", argv[i]);
        return 2;
      }
      o->lb_r = r[0], o->lb = 1;
    } else if (!strcmp(argv[i], "--prefill-gemm") && more) {
      if ((o->gemm = clkv__gemm_mode_parse(argv[++i])) < 0) {
        fprintf(stderr, "clkv_bench gen: --prefill-gemm %s: use own, clblast or clblast16\n",
                argv[i]);
        return 2;
      }
    }
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "clkv_bench gen: unknown option or missing value '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (o->lb) { /* llama-bench's defaults for what was not given */
    if (!o->n_lb_p) o->lb_p[0] = 512, o->n_lb_p = 1;
    if (!o->n_lb_n) o->lb_n[0] = 128, o->n_lb_n = 1;
    if (!o->n_lb_d) o->lb_d[0] = 0, o->n_lb_d = 1;
    if (!o->lb_r) o->lb_r = 5;
  }
  if (!o->model) o->model = getenv("CLKV_MODEL");
  if (!o->model || !*o->model) o->model = DEFAULT_MODEL;
  return -1;
}

int bench_gen_main(int argc, char **argv) {
  gen_opts o = {0};
  o.gemm = -1;
  int rc = parse(argc, argv, &o);
  if (rc >= 0) return rc;
  static const int prefill_full[] = {32, 64, 128, 256, 512}, prefill_quick[] = {32, 128};
  static const int decode_ctx[] = {16, 128, 512};
  const int *pre = o.quick ? prefill_quick : prefill_full;
  static const int batches[] = {2, 4};
  int n_pre = o.quick ? 2 : 5, n_dec = 3, reps = o.quick ? 1 : 3, n_bat = o.quick ? 1 : 2;
  if (o.n_prompts) pre = o.prompts, n_pre = o.n_prompts, n_dec = 0, n_bat = 0;
  if (o.lb) n_pre = n_dec = n_bat = 0;
  int n_lb = o.lb ? o.n_lb_d * o.n_lb_n + o.n_lb_p : 0;
  clkv_error err;
  clkv_runtime *rt = NULL;
  clkv_model *m = NULL;
  clkv_context *ctx = NULL;
  gen_row rows[MAX_ROWS];
  int n = 0;
  rc = 1;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o.device;
  rp.profiling = 1; /* the peak kernels are event-timed */
  clkv_model_params mp = clkv_model_default_params();
  clkv_context_params cp = clkv_context_default_params();
  cp.prefix_cache = 0; /* every repetition computes its whole prompt */
  bench_peaks pk;
  model_cost cost;
  if (clkv_runtime_create(&rp, &rt, &err) || clkv_model_load(rt, o.model, &mp, &m, &err) ||
      clkv_context_create(m, &cp, &ctx, &err) || model_cost_of(m, o.model, &cost, &err) ||
      (o.gemm >= 0 && clkv__model_set_gemm(m, -1, o.gemm, &err))) {
    fprintf(stderr, "clkv_bench gen: %s\n", err.message);
    goto done;
  }
  fprintf(stderr, "clkv_bench: %s\n", rt->timer_note); /* events or the wall clock */
  int total = 3 + n_pre + n_dec + n_bat + n_lb, step = 0;
  progress(step, total, "device bandwidth, compute");
  if (bench_device_peaks(rt, o.quick ? 0.02 : 0.05, &pk, &err)) {
    fprintf(stderr, "clkv_bench gen: measuring the device: %s\n", err.message);
    goto done;
  }
  progress(++step, total, "warm-up");
  gen_row warm;
  if (run_prefill(ctx, m->info.n_vocab, 16, 1, &warm)) goto gen_fail; /* builds the kernels */
  if (o.lb && run_lb(ctx, m->info.n_vocab, &o, rows, &n, &step, total)) goto gen_fail;
  for (int i = 0; i < n; ++i) roofline(&cost, &pk, &rows[i]);
  for (int i = 0; i < n_pre; ++i) {
    char what[32];
    snprintf(what, sizeof what, "prefill %d tokens", pre[i]);
    progress(++step, total, what);
    if (run_prefill(ctx, m->info.n_vocab, pre[i], reps, &rows[n])) goto gen_fail;
    roofline(&cost, &pk, &rows[n++]);
  }
  for (int i = 0; i < n_dec; ++i) {
    char what[32];
    snprintf(what, sizeof what, "decode after %d tokens", decode_ctx[i]);
    progress(++step, total, what);
    if (run_decode(ctx, m->info.n_vocab, decode_ctx[i], &rows[n])) goto gen_fail;
    roofline(&cost, &pk, &rows[n++]);
  }
  for (int i = 0; i < n_bat && i < ctx->n_seq_max; ++i) {
    char what[32];
    snprintf(what, sizeof what, "decode, batch of %d", batches[i]);
    progress(++step, total, what);
    if (run_batch_decode(ctx, m->info.n_vocab, batches[i], 128, &rows[n])) goto gen_fail;
    roofline(&cost, &pk, &rows[n++]);
  }
  progress(++step, total, "device bandwidth, compute");
  /* The roofline is the device's limit: keep the better of two measurements (before and
   * after the runs), since a shared machine only ever makes a measurement slower. */
  bench_peaks pk2;
  if (bench_device_peaks(rt, o.quick ? 0.02 : 0.05, &pk2, &err) == CLKV_OK) {
    bench_peaks_merge(&pk, &pk2);
    for (int i = 0; i < n; ++i) roofline(&cost, &pk, &rows[i]);
  }
  progress(total, total, "done");

  const clkv_device_info *d = clkv_runtime_device(rt);
  if (o.json) {
    bench_json j;
    bench_json_begin(&j, stdout);
    bench_json_object(&j, "device");
    bench_json_str(&j, "name", d->name);
    bench_json_str(&j, "driver", d->driver_version);
    bench_json_num(&j, "measured_gbps", pk.gbps);
    bench_json_num(&j, "measured_fp32_gflops", pk.gflops);
    bench_json_close(&j);
    bench_peaks_json(&j, &pk);
    bench_json_object(&j, "model");
    bench_json_str(&j, "path", o.model);
    bench_json_str(&j, "name", m->info.name);
    bench_json_num(&j, "weight_bytes_per_pass", cost.weight_bytes);
    bench_json_num(&j, "params", cost.layer_params + cost.out_params);
    bench_json_num(&j, "prefill_chunk", cost.chunk);
    bench_json_str(&j, "prefill_gemm", clkv_model_prefill_gemm(m));
    bench_json_close(&j);
    bench_json_object(&j, "rows");
    for (int i = 0; i < n; ++i) json_row(&j, &rows[i]);
    bench_json_end(&j);
  } else {
    printf("clkv_bench gen: %s on %s (%s)\n", o.model, d->name, d->driver_version);
    bench_peaks_print(stdout, &pk);
    printf("model: %.1f MB weights per pass, %.1f M params; prefill chunk %d; prefill GEMM: %s\n"
           "bounds: bandwidth (bytes per token at the read limit), compute (2 ops per multiply-add "
           "at the faster of fp32 and int8); frac: of the tighter; BW%%: of the bandwidth bound\n\n",
           cost.weight_bytes * 1e-6, (cost.layer_params + cost.out_params) * 1e-6, cost.chunk,
           clkv_model_prefill_gemm(m));
    if (o.lb) print_lb_table(rows, n);
    else print_table(rows, n);
  }
  rc = 0;
  if (o.csv && write_csv(o.csv, rows, n, &pk)) {
    fprintf(stderr, "clkv_bench gen: cannot write %s\n", o.csv);
    rc = 1;
  }
  if (o.plot) {
    char msg[2048];
    int pr = plot(o.plot, rows, n, msg, sizeof msg);
    fprintf(stderr, "clkv_bench gen: %s\n", msg);
    if (pr < 0) rc = 1;
  }
  goto done;
gen_fail:
  fprintf(stderr, "\nclkv_bench gen: generation failed: %s\n", clkv_last_error(ctx));
done:
  clkv_context_free(ctx);
  clkv_model_free(m);
  clkv_runtime_free(rt);
  return rc;
}

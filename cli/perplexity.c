/* perplexity.c — `clkv perplexity`: llama.cpp's llama-perplexity method, so figures compare:
 * the text tokenized once (BOS first when the model adds one), cut into chunks of -c tokens,
 * BOS put at each chunk's start when the model adds one, and only the second half of each
 * chunk scored (each token's negative log-likelihood given everything before it in the
 * chunk). Prints the running perplexity per chunk and PPL = x +/- y, or JSON. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ppl_opts {
  const char *model, *file, *device;
  int n_ctx, chunks, json;
  clkv_model_params mp;
} ppl_opts;

static const char *const kv_types[] = {"f16", "q8", "q4", NULL}; /* clkv_kv_type order */

#define AT(field) CLI_AT(ppl_opts, field)
static const cli_opt ppl_rows[] = {
    {.flag = "-m", .name = "--model", .kind = CLI_STR, .value = "MODEL", AT(model),
     .help = "GGUF model file (default: the default model)"},
    {.flag = "-f", .kind = CLI_STR, .value = "FILE", AT(file), .help = "the text to score"},
    {.flag = "-c", .name = "--ctx", .kind = CLI_INT, .value = "N", AT(n_ctx), .lo = 16,
     .hi = 1 << 20, .help = "tokens per chunk"},
    {.name = "--chunks", .kind = CLI_INT, .value = "N", AT(chunks), .lo = 0, .hi = 1 << 20,
     .help = "score at most N chunks (0: all the text holds)"},
    {.name = "--kv-type", .kind = CLI_CHOICE, AT(mp.kv_type), .choices = kv_types,
     .help = "KV cache precision"},
    {.name = "--chunk", .kind = CLI_INT, .value = "N", AT(mp.chunk), .lo = 1, .hi = 4096,
     .help = "tokens per prefill pass"},
    {.name = "--device", .kind = CLI_STR, .value = "D", AT(device),
     .help = "device index or name substring as clkv devices lists them, or gpu or cpu"},
    {.name = "--json", .kind = CLI_FLAG, AT(json), .help = "print the result as one JSON object"},
};
#undef AT

static int cli_perplexity(const cli_cmd *c, int argc, char **argv);

const cli_cmd cli_perplexity_cmd = {
    .name = "perplexity", .args = "-f TEXT [options]",
    .about = "perplexity of a model on a text (llama-perplexity's method)",
    .opts = ppl_rows, .n_opts = sizeof ppl_rows / sizeof ppl_rows[0], .size = sizeof(ppl_opts),
    .positional = CLI_NO_POSITIONAL, .run = cli_perplexity};

/* The whole file, NUL-terminated (caller frees), or NULL. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *s = malloc(cap);
  for (size_t r; s && (r = fread(s + n, 1, cap - n - 1, f)) > 0;) {
    n += r;
    if (n + 1 == cap) {
      char *t = realloc(s, cap *= 2);
      if (!t) free(s);
      s = t;
    }
  }
  fclose(f);
  if (s) s[n] = 0;
  return s;
}

/* -log softmax(row)[id], in double. */
static double nll_of(const float *row, int n_vocab, int32_t id) {
  float mx = row[0];
  for (int i = 1; i < n_vocab; i++) mx = row[i] > mx ? row[i] : mx;
  double sum = 0;
  for (int i = 0; i < n_vocab; i++) sum += exp((double)row[i] - mx);
  return log(sum) - ((double)row[id] - mx);
}

/* Running sums of the scored tokens' NLL and NLL². */
typedef struct ppl_sum {
  double nll, nll2;
  long count;
} ppl_sum;

/* Scores one chunk (ids[0] already BOS where the model adds one): the first half evaluated
 * for its cache only, the second half's logits in passes of `pass` rows. */
static clkv_status score_chunk(clkv_context *ctx, const int32_t *ids, int n, int pass, int V,
                               float *logits, ppl_sum *s) {
  int seq;
  clkv_status st = clkv_seq_open(ctx, &seq);
  if (st) return st;
  const int first = n / 2;
  st = clkv_seq_eval(ctx, seq, ids, first, 0, logits);
  for (int p = first; !st && p < n - 1; p += pass) {
    const int len = n - 1 - p < pass ? n - 1 - p : pass;
    if ((st = clkv_seq_eval(ctx, seq, ids + p, len, 1, logits))) break;
    for (int j = 0; j < len; j++) { /* row j predicts token p + j + 1 */
      const double v = nll_of(logits + (size_t)j * (size_t)V, V, ids[p + j + 1]);
      s->nll += v, s->nll2 += v * v, s->count++;
    }
  }
  clkv_seq_close(ctx, seq);
  return st;
}

/* PPL and its error as llama-perplexity computes them (the NLL's standard error through exp). */
static void ppl_value(const ppl_sum *s, double *ppl, double *err) {
  const double mean = s->nll / (double)s->count, var = s->nll2 / (double)s->count - mean * mean;
  *ppl = exp(mean);
  *err = var > 0 && s->count > 1 ? sqrt(var / (double)(s->count - 1)) * *ppl : 0.0;
}

static int run(const ppl_opts *o, clkv_model *m, clkv_context *ctx, const int32_t *ids, int n) {
  clkv_model_info mi;
  clkv_model_get_info(m, &mi);
  const int C = o->n_ctx, bos = mi.bos_id >= 0 && n > 0 && ids[0] == mi.bos_id;
  int n_chunks = n / C;
  if (o->chunks > 0 && o->chunks < n_chunks) n_chunks = o->chunks;
  if (n_chunks < 1) {
    fprintf(stderr, "clkv: error: the text has %d tokens, fewer than one chunk of %d; use a "
            "longer text or a smaller -c\n", n, C);
    return 1;
  }
  const int pass = o->mp.chunk;
  float *logits = malloc(sizeof(float) * (size_t)pass * (size_t)mi.n_vocab);
  int32_t *chunk = malloc(sizeof(int32_t) * (size_t)C);
  double *running = malloc(sizeof(double) * (size_t)n_chunks);
  ppl_sum s = {0, 0, 0};
  clkv_status st = logits && chunk && running ? CLKV_OK : CLKV_ERR_NO_MEMORY;
  if (!o->json) fprintf(stderr, "perplexity: %d tokens, %d chunks of %d\n", n, n_chunks, C);
  for (int i = 0; i < n_chunks && !st; i++) {
    memcpy(chunk, ids + (size_t)i * (size_t)C, sizeof(int32_t) * (size_t)C);
    if (bos) chunk[0] = mi.bos_id;
    st = score_chunk(ctx, chunk, C, pass, mi.n_vocab, logits, &s);
    double err;
    ppl_value(&s, &running[i], &err);
    if (!st && !o->json) {
      printf("[%d]%.4f,%s", i + 1, running[i], i + 1 == n_chunks ? "\n" : "");
      fflush(stdout);
    }
  }
  int rc = st == CLKV_ERR_NO_MEMORY && !running ? cli_die(st, "out of host memory")
           : st                                ? cli_die(st, clkv_last_error(ctx))
                                               : 0;
  if (!rc) {
    double ppl, err;
    ppl_value(&s, &ppl, &err);
    if (o->json) {
      printf("{\"ppl\": %.6f, \"ppl_err\": %.6f, \"tokens\": %d, \"n_ctx\": %d, \"scored\": %ld, "
             "\"kv_type\": \"%s\", \"chunks\": [", ppl, err, n, C, s.count,
             clkv_kv_type_name(o->mp.kv_type));
      for (int i = 0; i < n_chunks; i++) printf("%s%.6f", i ? ", " : "", running[i]);
      printf("]}\n");
    } else {
      printf("PPL = %.4f +/- %.4f\n", ppl, err);
    }
  }
  free(logits), free(chunk), free(running);
  return rc;
}

static int cli_perplexity(const cli_cmd *c, int argc, char **argv) {
  ppl_opts o = {.n_ctx = 512, .mp = clkv_model_default_params()};
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  if (!o.file) return fprintf(stderr, "clkv: error: perplexity needs -f TEXT\n"), 2;
  char *text = read_text(o.file);
  if (!text) return fprintf(stderr, "clkv: error: cannot read %s\n", o.file), 1;
  clkv_error err;
  clkv_runtime *rt = NULL;
  clkv_model *m = NULL;
  clkv_context *ctx = NULL;
  int32_t *ids = NULL;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o.device;
  o.mp.n_ctx = o.n_ctx;
  o.mp.max_seqs = 1;
  clkv_status st = clkv_runtime_create(&rp, &rt, &err);
  if (!st) st = clkv_model_load(rt, cli_model_path(o.model), &o.mp, &m, &err);
  if (!st) st = clkv_context_create(m, NULL, &ctx, &err);
  if (st) {
    rc = cli_die(st, err.message);
  } else {
    const int n = clkv_tokenize(m, text, 1, NULL, 0);
    ids = n > 0 ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    if (!ids || clkv_tokenize(m, text, 1, ids, n) != n)
      rc = cli_die(CLKV_ERR_INVALID_ARG, "cannot tokenize the text");
    else rc = run(&o, m, ctx, ids, n);
  }
  free(ids);
  free(text);
  clkv_context_free(ctx);
  clkv_model_free(m);
  clkv_runtime_free(rt);
  return rc;
}

/* generate.c — the public generation API: tokenize, prefill the prompt in chunks, then
 * decode token by token (sampling on the host), streaming complete UTF-8 text to a
 * callback, stopping on end-of-generation tokens, stop strings or the token limit.
 * Also the tokenizer and chat-template entry points of clkv.h. */
#include "model.h"
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

clkv_gen_params clkv_gen_default_params(void) {
  clkv_gen_params p;
  memset(&p, 0, sizeof p);
  p.max_tokens = 128;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.repeat_penalty = 1.0f;
  p.repeat_last_n = 64;
  p.seed = 42;
  p.add_special = 1;
  return p;
}

int clkv_tokenize(const clkv_model *m, const char *text, int add_special, int32_t *ids, int cap) {
  if (!m || !text) return CLKV_ERR_INVALID_ARG;
  int bos = add_special && clkv_tokenizer_add_bos(m->tok);
  return clkv_tokenizer_encode(m->tok, text, strlen(text), bos, 1, ids, cap);
}

const char *clkv_token_text(const clkv_model *m, int32_t id, size_t *len) {
  size_t l = 0;
  const char *s = m ? clkv_tokenizer_piece(m->tok, id, 0, &l) : "";
  if (len) *len = l;
  return s;
}

char *clkv_chat_format(const clkv_model *m, const clkv_chat_message *msgs, size_t n,
                       int add_assistant_prefix, clkv_error *err) {
  if (!m || (!msgs && n)) {
    clkv__err(err, CLKV_ERR_INVALID_ARG, "model and messages are required");
    return NULL;
  }
  return clkv__chat_render(m->chat, msgs, n, add_assistant_prefix, m->bos_text, m->eos_text,
                           m->default_system, err);
}

/* Text held back because it could be the start of a stop string. */
typedef struct text_out {
  char *buf;         /* all generated text */
  size_t len, cap;
  size_t emitted;    /* bytes of buf already given to the callback */
} text_out;

static int text_append(text_out *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    while (cap < t->len + n + 1) cap *= 2;
    char *b = realloc(t->buf, cap);
    if (!b) return -1;
    t->buf = b;
    t->cap = cap;
  }
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = 0;
  return 0;
}

/* Finds the earliest stop string in the text; returns its offset or -1. Sets *safe to the
 * number of bytes that can be emitted (no stop string can start before it). */
static long find_stop(const text_out *t, const char *const *stop, size_t *safe) {
  *safe = t->len;
  if (!stop) return -1;
  long hit = -1;
  for (int i = 0; stop[i]; i++) {
    size_t sl = strlen(stop[i]);
    if (!sl) continue;
    const char *p = strstr(t->buf + (t->emitted > sl ? t->emitted - sl : 0), stop[i]);
    if (p && (hit < 0 || p - t->buf < hit)) hit = p - t->buf;
    /* a suffix of the text that is a prefix of the stop string must wait */
    for (size_t k = sl - 1; k > 0; k--)
      if (k <= t->len && !memcmp(t->buf + t->len - k, stop[i], k)) {
        if (t->len - k < *safe) *safe = t->len - k;
        break;
      }
  }
  return hit;
}

static int emit(text_out *t, size_t upto, int32_t id, clkv_token_cb cb, void *user) {
  int r = 0;
  if (cb) r = cb(user, id, t->buf + t->emitted, upto > t->emitted ? upto - t->emitted : 0);
  if (upto > t->emitted) t->emitted = upto;
  return r;
}

clkv_status clkv_generate(clkv_context *ctx, const char *prompt, const clkv_gen_params *p,
                          clkv_token_cb cb, void *user, clkv_gen_stats *stats) {
  if (!ctx || !prompt) return CLKV_ERR_INVALID_ARG;
  clkv_gen_params gp = p ? *p : clkv_gen_default_params();
  /* Every token covers at least one byte, except BOS and a SentencePiece space prefix, so
   * this capacity is nearly always enough and the prompt is tokenized once. */
  int cap = (int)strlen(prompt) + 8;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
  if (!ids) return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
  int n = clkv_tokenize(ctx->m, prompt, gp.add_special, ids, cap);
  if (n > cap) {
    int32_t *more = realloc(ids, sizeof(int32_t) * (size_t)n);
    if (!more) {
      free(ids);
      return clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
    }
    ids = more;
    n = clkv_tokenize(ctx->m, prompt, gp.add_special, ids, n);
  }
  if (n < 0) {
    free(ids);
    return clkv__err(&ctx->err, (clkv_status)n, "the prompt could not be tokenized");
  }
  clkv_status st = clkv_generate_ids(ctx, ids, n, &gp, cb, user, stats);
  free(ids);
  return st;
}

clkv_status clkv_generate_ids(clkv_context *ctx, const int32_t *ids, int n_ids,
                              const clkv_gen_params *p, clkv_token_cb cb, void *user,
                              clkv_gen_stats *stats) {
  if (!ctx || (!ids && n_ids)) return CLKV_ERR_INVALID_ARG;
  clkv_model *m = ctx->m;
  clkv_gen_params gp = p ? *p : clkv_gen_default_params();
  clkv_gen_stats S;
  memset(&S, 0, sizeof S);
  if (n_ids <= 0)
    return clkv__err(&ctx->err, CLKV_ERR_INVALID_ARG, "the prompt is empty; give some text");
  if (n_ids >= m->n_ctx)
    return clkv__err(&ctx->err, CLKV_ERR_CONTEXT_FULL,
                     "the prompt has %d tokens but the context holds %d (one more is needed to "
                     "generate); shorten the prompt or raise --ctx (the model allows %d)", n_ids,
                     m->n_ctx, m->info.n_ctx_train);
  int seq = -1, cached = 0;
  const int n_hist_cap = n_ids + (gp.max_tokens > 0 ? gp.max_tokens : 0) + 1;
  int32_t *hist = malloc(sizeof(int32_t) * (size_t)n_hist_cap);
  clkv_sampler *smp = clkv_sampler_new(&gp, m->info.n_vocab);
  text_out out = {0};
  clkv_status st = CLKV_OK;
  if (!hist || !smp) {
    st = clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
    goto done;
  }
  memcpy(hist, ids, sizeof(int32_t) * (size_t)n_ids);
  int n_hist = n_ids;
  S.prompt_tokens = n_ids;
  const double t0 = clkv__now_ms();
  /* leading prompt blocks already in the prefix cache are not computed again */
  if ((st = clkv__seq_start(ctx, ids, n_ids, &seq, &cached))) {
    seq = -1;
    goto done;
  }
  for (int pos = cached; pos < n_ids; pos += m->params.chunk) {
    int len = n_ids - pos < m->params.chunk ? n_ids - pos : m->params.chunk;
    st = clkv__forward_prefill(ctx, seq, ids + pos, len, pos + len == n_ids);
    if (st) goto done;
    S.prefill_tokens += len;
  }
  const double t1 = clkv__now_ms();
  S.prefill_ms = t1 - t0;
  const unsigned long long launches0 = m->rt->launches;
  clkv_utf8_stream u8 = {{0}, 0};
  double last = t1, itl_sum = 0;
  int pos = n_ids;
  S.stop_reason = 0;
  for (int i = 0; i < gp.max_tokens; i++) {
    int32_t tok = clkv_sampler_sample(smp, ctx->h_logits, hist, n_hist);
    double now = clkv__now_ms();
    if (i == 0) S.ttft_ms = now - t0;
    else itl_sum += now - last;
    last = now;
    hist[n_hist++] = tok;
    S.generated_tokens++;
    if (clkv_tokenizer_is_eog(m->tok, tok)) {
      S.stop_reason = 1;
      break;
    }
    size_t plen;
    const char *piece = clkv_tokenizer_piece(m->tok, tok, 0, &plen);
    char buf[256];
    size_t nb = clkv_utf8_stream_push(&u8, piece, plen < 200 ? plen : 200, buf, sizeof buf);
    if (text_append(&out, buf, nb)) {
      st = clkv__err(&ctx->err, CLKV_ERR_NO_MEMORY, "out of host memory");
      goto done;
    }
    size_t safe;
    long hit = find_stop(&out, gp.stop, &safe);
    if (hit >= 0) {
      emit(&out, (size_t)hit, tok, cb, user);
      S.stop_reason = 2;
      break;
    }
    if (emit(&out, safe, tok, cb, user)) {
      S.stop_reason = 3;
      break;
    }
    if (i + 1 == gp.max_tokens) break;
    if (pos + 1 >= m->n_ctx) break; /* context full: stop as at the token limit */
    st = clkv__forward_decode(ctx, &seq, &tok, 1);
    if (st) goto done;
    pos++;
  }
  if (S.stop_reason == 0 || S.stop_reason == 1) {
    char buf[16];
    size_t nb = clkv_utf8_stream_flush(&u8, buf, sizeof buf);
    text_append(&out, buf, nb);
    if (out.len > out.emitted && cb) cb(user, -1, out.buf + out.emitted, out.len - out.emitted);
  }
  S.decode_ms = last - t1;
  S.mean_itl_ms = S.generated_tokens > 1 ? itl_sum / (S.generated_tokens - 1) : 0;
  S.launches_per_token = S.generated_tokens > 1
      ? (double)(m->rt->launches - launches0) / (S.generated_tokens - 1) : 0;
done:
  if (stats) *stats = S;
  if (seq >= 0) clkv__seq_end(ctx, seq);
  clkv_sampler_free(smp);
  free(hist);
  free(out.buf);
  return st;
}

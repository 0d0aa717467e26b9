/* serve_gen.c — POST /v1/chat/completions and /v1/completions: the request's fields
 * checked and turned into a clkv_request, the job the engine thread fills through token
 * events, and the reply: one JSON object, or server-sent events ending in [DONE]. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the request's fields ---- */

/* Why a request is refused: the field, and a message. */
typedef struct bad {
  const char *param;
  char msg[400];
} bad;

static int refuse(bad *b, const char *param, const char *msg) {
  b->param = param;
  size_t n = strlen(msg) < sizeof b->msg - 1 ? strlen(msg) : sizeof b->msg - 1;
  memcpy(b->msg, msg, n);
  b->msg[n] = 0;
  return -1;
}

/* A number field in [lo, hi] into *out (left alone when absent or null). */
static int num(json_t *body, const char *key, double lo, double hi, double *out, bad *b) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
    snprintf(b->msg, sizeof b->msg, "'%s' must be a number from %g to %g", key, lo, hi);
    b->param = key;
    return -1;
  }
  *out = json_number_value(v);
  return 0;
}

static int integer(json_t *body, const char *key, long lo, long hi, long *out, bad *b) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    snprintf(b->msg, sizeof b->msg, "'%s' must be a whole number from %ld to %ld", key, lo, hi);
    b->param = key;
    return -1;
  }
  *out = (long)json_integer_value(v);
  return 0;
}

static int boolean(json_t *body, const char *key, int *out, bad *b) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) {
    snprintf(b->msg, sizeof b->msg, "'%s' must be true or false", key);
    b->param = key;
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

/* Fields clkv cannot honour are refused by name rather than ignored. */
static int unsupported(json_t *body, bad *b) {
  static const char *const keys[] = {"tools", "tool_choice", "functions", "function_call",
                                     "response_format", "suffix", "logit_bias", NULL};
  for (int i = 0; keys[i]; i++) {
    json_t *v = json_object_get(body, keys[i]);
    if (v && !json_is_null(v)) {
      snprintf(b->msg, sizeof b->msg, "'%s' is not supported by clkv serve", keys[i]);
      b->param = keys[i];
      return -1;
    }
  }
  json_t *n = json_object_get(body, "n"), *echo = json_object_get(body, "echo");
  if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1))
    return refuse(b, "n", "'n' other than 1 is not supported by clkv serve (send n requests)");
  if (echo && json_is_true(echo)) return refuse(b, "echo", "'echo' is not supported by clkv serve");
  double pen = 0;
  if (num(body, "presence_penalty", -2, 2, &pen, b) || pen != 0)
    return pen ? refuse(b, "presence_penalty", "'presence_penalty' is not supported (use 0)") : -1;
  if (num(body, "frequency_penalty", -2, 2, &pen, b) || pen != 0)
    return pen ? refuse(b, "frequency_penalty", "'frequency_penalty' is not supported (use 0)") : -1;
  return 0;
}

/* stop: a string or a list of up to 8 strings, copied into j->stops. */
static int stops(json_t *body, srv_job *j, bad *b) {
  json_t *v = json_object_get(body, "stop"), *e;
  size_t i, n = 0;
  if (!v || json_is_null(v)) return 0;
  if (json_is_string(v)) {
    j->stops[n++] = strdup(json_string_value(v));
  } else if (json_is_array(v) && json_array_size(v) <= 8) {
    json_array_foreach(v, i, e) {
      if (!json_is_string(e)) return refuse(b, "stop", "'stop' must be a string or a list of strings");
      j->stops[n++] = strdup(json_string_value(e));
    }
  } else {
    return refuse(b, "stop", "'stop' must be a string or a list of at most 8 strings");
  }
  for (size_t k = 0; k < n; k++)
    if (!j->stops[k]) return refuse(b, "stop", "out of memory");
  j->r.params.stop = n ? (const char *const *)j->stops : NULL;
  return 0;
}

/* Sampling and limits from the body, over the server's defaults. */
static int sampling(server *s, json_t *body, srv_job *j, bad *b) {
  clkv_gen_params *p = &j->r.params;
  double t = p->temperature, tp = p->top_p, mp = p->min_p;
  long k = p->top_k, mx = s->n_ctx, seed = -1, top = 0;
  if (num(body, "temperature", 0, 2, &t, b) || num(body, "top_p", 0, 1, &tp, b) ||
      num(body, "min_p", 0, 1, &mp, b) || integer(body, "top_k", 0, 1 << 24, &k, b) ||
      integer(body, "max_tokens", 0, 1 << 24, &mx, b) ||
      integer(body, "max_completion_tokens", 0, 1 << 24, &mx, b) ||
      integer(body, "seed", -(1L << 62), 1L << 62, &seed, b) || boolean(body, "stream", &j->stream, b))
    return -1;
  json_t *so = json_object_get(body, "stream_options");
  if (so && !json_is_null(so) && (!json_is_object(so) || boolean(so, "include_usage", &j->include_usage, b)))
    return refuse(b, "stream_options", "'stream_options' must be {\"include_usage\": true|false}");
  json_t *lp = json_object_get(body, "logprobs");
  if (j->chat) { /* logprobs: bool; top_logprobs: 0..20 */
    if (boolean(body, "logprobs", &j->logprobs, b) ||
        integer(body, "top_logprobs", 0, CLKV_MAX_LOGPROBS, &top, b))
      return -1;
    if (top && !j->logprobs) return refuse(b, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
  } else if (lp && !json_is_null(lp)) { /* legacy: logprobs is the number of alternatives */
    if (integer(body, "logprobs", 0, 5, &top, b)) return -1;
    j->logprobs = 1;
  }
  j->top_logprobs = (int)top;
  if (mx > s->n_ctx) mx = s->n_ctx; /* the context ends it sooner anyway */
  *p = (clkv_gen_params){.max_tokens = (int)mx, .temperature = (float)t, .top_k = (int)k,
                         .top_p = (float)tp, .min_p = (float)mp, .repeat_penalty = p->repeat_penalty,
                         .repeat_last_n = p->repeat_last_n, .add_special = 1,
                         .seed = seed >= 0 ? (uint64_t)seed
                                           : (uint64_t)time(NULL) * 2654435761u ^ j->num,
                         .logprobs = j->logprobs ? (top ? (int)top : 1) : 0,
                         .lookup_ngram = p->lookup_ngram, .draft_max = p->draft_max,
                         .draft_min = p->draft_min, .draft_always = p->draft_always};
  return stops(body, j, b);
}

/* messages → the chat template's prompt (malloc'd), or NULL with b filled. */
static char *chat_prompt(server *s, json_t *body, bad *b) {
  json_t *ms = json_object_get(body, "messages"), *m;
  static const char *const roles[] = {"system", "developer", "user", "assistant", NULL};
  clkv_chat_message msgs[256];
  size_t i, n = 0;
  if (!json_is_array(ms) || !json_array_size(ms)) {
    refuse(b, "messages", "'messages' must be a non-empty list of {role, content}");
    return NULL;
  }
  if (json_array_size(ms) > 255) {
    refuse(b, "messages", "at most 255 messages");
    return NULL;
  }
  json_array_foreach(ms, i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    const char *content = json_string_value(json_object_get(m, "content"));
    int r = 0;
    while (roles[r] && role && strcmp(roles[r], role)) r++;
    if (!role || !roles[r]) {
      snprintf(b->msg, sizeof b->msg, "messages[%zu].role must be system, user or assistant", i);
      b->param = "messages";
      return NULL;
    }
    if (!content) {
      snprintf(b->msg, sizeof b->msg, "messages[%zu].content must be a string", i);
      b->param = "messages";
      return NULL;
    }
    msgs[n++] = (clkv_chat_message){.role = r == 1 ? "system" : roles[r], .content = content};
  }
  clkv_error err;
  char *p = clkv_chat_format(s->m, msgs, n, 1, &err);
  if (!p) refuse(b, "messages", err.message);
  return p;
}

static char *text_prompt(json_t *body, bad *b) {
  json_t *p = json_object_get(body, "prompt");
  if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
  if (!json_is_string(p)) {
    refuse(b, "prompt", "'prompt' must be a string (or a list of one string)");
    return NULL;
  }
  return strdup(json_string_value(p));
}

/* ---- the job between the connection and the engine thread ---- */

static void job_release(srv_job *j) {
  pthread_mutex_lock(&j->mu);
  const int left = --j->refs;
  pthread_mutex_unlock(&j->mu);
  if (left) return;
  for (int i = 0; i < j->n_toks; i++) free(j->toks[i].text);
  for (int i = 0; j->stops[i]; i++) free(j->stops[i]);
  free(j->toks);
  free(j->ids);
  free(j->out);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}

static void job_metrics(server *s, const clkv_token_event *ev, double gap_ms, int first) {
  pthread_mutex_lock(&s->mu);
  if (ev->done) {
    s->jobs--;
    s->met.prompt_tokens += (uint64_t)ev->stats->prompt_tokens;
    s->met.generated_tokens += (uint64_t)ev->stats->generated_tokens;
    s->met.cancelled += ev->stats->stop_reason == CLKV_STOP_CANCELLED;
    s->met.drafted += (uint64_t)ev->stats->drafted_tokens;
    s->met.accepted += (uint64_t)ev->stats->accepted_tokens;
    s->met.spec_passes += (uint64_t)ev->stats->spec_passes;
  } else if (first) {
    srv_hist_add(&s->met.ttft, ev->stats->ttft_ms / 1e3);
  } else {
    srv_hist_add(&s->met.itl, gap_ms / 1e3);
  }
  pthread_mutex_unlock(&s->mu);
}

/* Engine thread: one token (or the end) into the job. */
static int job_event(void *user, const clkv_token_event *ev) {
  srv_job *j = user;
  const double now = srv_now_ms();
  pthread_mutex_lock(&j->mu);
  const int first = ev->id >= 0 && j->t_last == 0, gap = ev->id >= 0 && j->t_last > 0;
  const double gap_ms = now - j->t_last;
  if (ev->id >= 0) j->t_last = now;
  if (ev->done) {
    j->done = 1;
    j->stats = *ev->stats;
    j->status = ev->status;
  } else if (ev->id >= 0 || ev->len) {
    if (j->n_toks == j->cap) {
      int cap = j->cap ? 2 * j->cap : 64;
      srv_tok *t = realloc(j->toks, sizeof *t * (size_t)cap);
      if (t) j->toks = t, j->cap = cap;
    }
    char *text = malloc(ev->len + 1);
    if (j->n_toks < j->cap && text) {
      memcpy(text, ev->text, ev->len);
      text[ev->len] = 0;
      srv_tok *t = &j->toks[j->n_toks++];
      *t = (srv_tok){.id = ev->id, .text = text, .len = ev->len, .logprob = ev->logprob,
                     .n_top = ev->n_top};
      memcpy(t->top_ids, ev->top_ids, sizeof(int32_t) * (size_t)ev->n_top);
      memcpy(t->top_lp, ev->top_logprobs, sizeof(float) * (size_t)ev->n_top);
    } else {
      free(text);
    }
  }
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (ev->done || first || gap) job_metrics(j->srv, ev, gap_ms, first);
  if (ev->done) job_release(j); /* the engine's reference */
  return 0;
}

/* Tokenizes the prompt into j and submits it; 0, or an HTTP status with b filled. */
static int job_submit(server *s, srv_job *j, const char *prompt, bad *b) {
  int cap = (int)strlen(prompt) + 8;
  j->ids = malloc(sizeof(int32_t) * (size_t)cap);
  int n = j->ids ? clkv_tokenize(s->m, prompt, 1, j->ids, cap) : -1;
  if (n < 0 || n > cap) return refuse(b, NULL, "the prompt could not be tokenized"), 500;
  if (n == 0) return refuse(b, "prompt", "the prompt is empty"), 400;
  j->r.ids = j->ids;
  j->r.n_ids = n;
  j->r.on_event = job_event;
  j->r.user = j;
  pthread_mutex_lock(&s->mu);
  const int full = s->jobs >= s->parallel + s->max_queue;
  if (!full) s->jobs++;
  pthread_mutex_unlock(&s->mu);
  if (full) return refuse(b, NULL, "too many requests are waiting; retry shortly"), 503;
  clkv_status st = srv_submit(s, &j->r, &j->sched_id);
  if (!st) return 0;
  pthread_mutex_lock(&s->mu);
  s->jobs--;
  pthread_mutex_unlock(&s->mu);
  if (st == CLKV_ERR_CANCELLED) return refuse(b, NULL, "the server is shutting down"), 503;
  snprintf(b->msg, sizeof b->msg, st == CLKV_ERR_CONTEXT_FULL
           ? "the prompt has %d tokens, more than the context holds; shorten it"
           : "the request was refused (%d tokens)", n);
  b->param = j->chat ? "messages" : "prompt";
  return 400;
}

/* ---- replies ---- */

static const char *finish_reason(const srv_job *j) {
  return j->stats.stop_reason == CLKV_STOP_LENGTH || j->stats.stop_reason == CLKV_STOP_CONTEXT
             ? "length" : "stop";
}

static json_t *usage(const srv_job *j) {
  return json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->stats.prompt_tokens,
                   "completion_tokens", j->stats.generated_tokens, "total_tokens",
                   j->stats.prompt_tokens + j->stats.generated_tokens);
}

/* {token, logprob, bytes} of one token (chat's shape) */
static json_t *chat_token(server *s, int32_t id, float lp) {
  size_t len;
  const char *t = clkv_token_text(s->m, id, &len);
  json_t *bytes = json_array();
  for (size_t i = 0; i < len; i++) json_array_append_new(bytes, json_integer((unsigned char)t[i]));
  return json_pack("{s:o, s:f, s:o}", "token", cli_json_text(t, len), "logprob", (double)lp,
                   "bytes", bytes);
}

/* The logprobs of tokens [from, to): chat {"content": [...]}, legacy {"tokens", ...}. */
static json_t *logprobs(server *s, const srv_job *j, int from, int to, size_t offset) {
  if (!j->logprobs) return json_null();
  json_t *content = json_array(), *toks = json_array(), *lps = json_array(), *tops = json_array(),
         *offs = json_array();
  for (int i = from; i < to; i++) {
    const srv_tok *t = &j->toks[i];
    const int n_top = t->n_top < j->top_logprobs ? t->n_top : j->top_logprobs;
    if (t->id >= 0 && j->chat) {
      json_t *e = chat_token(s, t->id, t->logprob), *top = json_array();
      for (int k = 0; k < n_top; k++) json_array_append_new(top, chat_token(s, t->top_ids[k], t->top_lp[k]));
      json_object_set_new(e, "top_logprobs", top);
      json_array_append_new(content, e);
    } else if (t->id >= 0) {
      size_t len;
      const char *tx = clkv_token_text(s->m, t->id, &len);
      json_t *top = json_object();
      for (int k = 0; k < n_top; k++) {
        size_t l;
        const char *tt = clkv_token_text(s->m, t->top_ids[k], &l);
        char *v = cli_utf8_valid(tt, l, NULL);
        if (v) json_object_set_new(top, v, json_real(t->top_lp[k]));
        free(v);
      }
      json_array_append_new(toks, cli_json_text(tx, len));
      json_array_append_new(lps, json_real(t->logprob));
      json_array_append_new(tops, top);
      json_array_append_new(offs, json_integer((json_int_t)offset));
    }
    offset += t->len;
  }
  if (j->chat) {
    json_decref(toks), json_decref(lps), json_decref(tops), json_decref(offs);
    return json_pack("{s:o}", "content", content);
  }
  json_decref(content);
  return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs",
                   tops, "text_offset", offs);
}

/* The envelope: id, object, created, model, choices [choice] (choice NULL: []). */
static json_t *envelope(server *s, const srv_job *j, json_t *choice, int chunk) {
  char id[48];
  snprintf(id, sizeof id, "%s-%llu", j->chat ? "chatcmpl" : "cmpl", (unsigned long long)j->num);
  const char *obj = !j->chat ? "text_completion" : chunk ? "chat.completion.chunk" : "chat.completion";
  json_t *choices = json_array();
  if (choice) json_array_append_new(choices, choice);
  return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", id, "object", obj, "created",
                   (json_int_t)j->created, "model", s->model_id, "choices", choices);
}

/* One choice: text (a delta when streaming), logprobs, finish_reason (NULL: null). */
static json_t *choice(const srv_job *j, json_t *text, json_t *lp, const char *finish, int chunk,
                      int role) {
  json_t *fr = finish ? json_string(finish) : json_null();
  if (!j->chat) return json_pack("{s:i, s:o, s:o, s:o}", "index", 0, "text", text, "logprobs", lp,
                                 "finish_reason", fr);
  json_t *msg = json_object();
  if (role || !chunk) json_object_set_new(msg, "role", json_string("assistant"));
  if (text) json_object_set_new(msg, "content", text);
  return json_pack("{s:i, s:o, s:o, s:o}", "index", 0, chunk ? "delta" : "message", msg,
                   "logprobs", lp, "finish_reason", fr);
}

static void wait_done(srv_job *j) {
  pthread_mutex_lock(&j->mu);
  while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
  pthread_mutex_unlock(&j->mu);
}

static enum MHD_Result reply_whole(server *s, struct MHD_Connection *c, srv_job *j) {
  wait_done(j);
  if (j->status)
    return srv_error(s, c, 500, NULL, "generation failed: %s", clkv_status_str(j->status));
  size_t len = 0;
  for (int i = 0; i < j->n_toks; i++) len += j->toks[i].len;
  char *text = malloc(len + 1);
  if (!text) return MHD_NO;
  len = 0;
  for (int i = 0; i < j->n_toks; i++) memcpy(text + len, j->toks[i].text, j->toks[i].len), len += j->toks[i].len;
  json_t *ch = choice(j, cli_json_text(text, len), logprobs(s, j, 0, j->n_toks, 0),
                      finish_reason(j), 0, 1);
  free(text);
  json_t *e = envelope(s, j, ch, 0);
  json_object_set_new(e, "usage", usage(j));
  return srv_reply_json(s, c, 200, e);
}

/* ---- streaming: server-sent events ---- */

static void sse_add(srv_job *j, json_t *obj) {
  char *t = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
  json_decref(obj);
  const char *data = t ? t : "[DONE]";
  const size_t n = strlen(data) + 8;
  char *out = realloc(j->out, j->out_len + n + 1);
  if (out) {
    j->out = out;
    j->out_len += (size_t)snprintf(out + j->out_len, n + 1, "data: %s\n\n", data);
  }
  free(t);
}

/* Formats what came since the last call into j->out (j->mu held): the first chunk (chat: the
 * role), then a chunk per token with text or logprobs, and at the end the finish chunk, the
 * usage chunk when asked, and [DONE]. */
static void sse_fill(server *s, srv_job *j) {
  if (j->phase == 0 && j->chat)
    sse_add(j, envelope(s, j, choice(j, json_string(""), json_null(), NULL, 1, 1), 1));
  if (j->phase == 0) j->phase = 1;
  size_t offset = 0;
  for (int i = 0; i < j->sent; i++) offset += j->toks[i].len;
  for (; j->sent < j->n_toks; j->sent++) {
    const srv_tok *t = &j->toks[j->sent];
    if (!t->len && !(j->logprobs && t->id >= 0)) continue;
    json_t *lp = logprobs(s, j, j->sent, j->sent + 1, offset);
    sse_add(j, envelope(s, j, choice(j, cli_json_text(t->text, t->len), lp, NULL, 1, 0), 1));
    offset += t->len;
  }
  if (!j->done || j->phase != 1) return;
  if (j->status) {
    char msg[300];
    snprintf(msg, sizeof msg, "generation failed: %s", clkv_status_str(j->status));
    sse_add(j, json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "server_error"));
  } else {
    json_t *text = j->chat ? NULL : json_string("");
    sse_add(j, envelope(s, j, choice(j, text, json_null(), finish_reason(j), 1, 0), 1));
    if (j->include_usage) {
      json_t *e = envelope(s, j, NULL, 1);
      json_object_set_new(e, "usage", usage(j));
      sse_add(j, e);
    }
  }
  sse_add(j, NULL);
  j->phase = 2;
}

/* MHD asks for the next bytes of the stream (the connection's thread): waits for tokens. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  srv_job *j = cls;
  pthread_mutex_lock(&j->mu);
  while (j->out_pos == j->out_len) {
    j->out_len = j->out_pos = 0;
    if (j->phase == 2) {
      pthread_mutex_unlock(&j->mu);
      return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (j->phase > 0 && j->sent == j->n_toks && !j->done) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 200000000L;
      if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
      pthread_cond_timedwait(&j->cv, &j->mu, &ts);
      continue;
    }
    sse_fill(j->srv, j);
  }
  size_t n = j->out_len - j->out_pos < max ? j->out_len - j->out_pos : max;
  memcpy(buf, j->out + j->out_pos, n);
  j->out_pos += n;
  pthread_mutex_unlock(&j->mu);
  return (ssize_t)n;
}

/* The stream's end, or the client gone: a request still running is cancelled. */
static void sse_free(void *cls) {
  srv_job *j = cls;
  pthread_mutex_lock(&j->mu);
  const int done = j->done;
  pthread_mutex_unlock(&j->mu);
  if (!done) srv_cancel(j->srv, j->sched_id);
  job_release(j);
}

static enum MHD_Result reply_stream(server *s, struct MHD_Connection *c, srv_job *j) {
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, j,
                                                             sse_free);
  if (!r) {
    job_release(j);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  enum MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  srv_count(s, 200);
  return ok;
}

static srv_job *job_new(server *s, int chat) {
  srv_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  j->srv = s;
  j->chat = chat;
  j->refs = 1;
  j->created = (long)time(NULL);
  j->r.params = s->defaults;
  pthread_mutex_lock(&s->mu);
  j->num = ++s->next_id;
  pthread_mutex_unlock(&s->mu);
  return j;
}

enum MHD_Result srv_completions(server *s, struct MHD_Connection *c, json_t *body, int chat) {
  bad b = {.param = NULL};
  srv_job *j = job_new(s, chat);
  if (!j) return MHD_NO;
  char *prompt = NULL;
  int code = 400;
  if (!unsupported(body, &b) && !sampling(s, body, j, &b) &&
      (prompt = chat ? chat_prompt(s, body, &b) : text_prompt(body, &b))) {
    j->refs++; /* the engine's, from submission to the done event */
    code = job_submit(s, j, prompt, &b);
    if (code) j->refs--;
  }
  free(prompt);
  if (code) {
    job_release(j);
    return srv_error(s, c, (unsigned)code, b.param, "%s", b.msg);
  }
  if (j->stream) return reply_stream(s, c, j);
  enum MHD_Result r = reply_whole(s, c, j);
  job_release(j);
  return r;
}

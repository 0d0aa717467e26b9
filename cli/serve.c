/* serve.c — `clkv serve`: an OpenAI-compatible HTTP server on libmicrohttpd. Its options
 * (the model, KV and sampling rows of generate's table, and its own), the engine loop on
 * the main thread (clkv_sched), routing, bodies, authentication, errors, shutdown. */
#include "serve.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef struct serve_opts {
  gen_opts g;              /* first: generate's rows store into it */
  const char *host, *api_key;
  int port, max_queue, timeout, grace;
  int64_t max_body;
} serve_opts;

#define AT(field) CLI_AT(serve_opts, field)
static const cli_opt own_rows[] = {
    {.name = "--host", .kind = CLI_STR, .value = "ADDR", AT(host),
     .help = "IPv4 address to listen on (0.0.0.0: every interface)"},
    {.name = "--port", .kind = CLI_INT, .value = "N", AT(port), .lo = 0, .hi = 65535,
     .help = "TCP port (0: any free one; the address is printed on stderr)"},
    {.name = "--api-key", .kind = CLI_STR, .value = "KEY", AT(api_key),
     .help = "require 'Authorization: Bearer KEY' (401 otherwise) [default: $CLKV_API_KEY, "
             "else none]"},
    {.name = "--parallel", .kind = CLI_INT, .value = "N", AT(g.parallel), .lo = 1, .hi = 256,
     .help = "requests decoded together (sequences in the KV cache)"},
    {.name = "--max-queue", .kind = CLI_INT, .value = "N", AT(max_queue), .lo = 0,
     .hi = 1 << 20, .help = "requests waiting beyond --parallel before 503 (Retry-After)"},
    {.name = "--max-body", .kind = CLI_INT, .value = "BYTES", AT(max_body), .lo = 64,
     .hi = 1L << 30, .help = "largest request body; larger ones get 413"},
    {.name = "--timeout", .kind = CLI_INT, .value = "S", AT(timeout), .lo = 1, .hi = 86400,
     .help = "seconds an idle or slow connection is kept"},
    {.name = "--grace", .kind = CLI_INT, .value = "S", AT(grace), .lo = 0, .hi = 3600,
     .help = "on SIGINT/SIGTERM: seconds running requests may finish before being cancelled"},
};
#undef AT

/* generate's rows that serve takes too: the model, device, KV cache and sampling defaults */
static const char *const shared_names[] = {
    "--model", "--device", "--ctx", "--kv-block", "--chunk", "--no-prefix-cache",
    "--kv-evict", "--kv-host-blocks", "--kv-type", "--kv-mem", "--prefix-cache-dir",
    "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--lookup-ngram",
    "--draft-max", "--draft-min", "--draft-always", NULL};

static cli_opt rows[N_OF(own_rows) + 24];

static int cli_serve(const cli_cmd *c, int argc, char **argv);

const cli_cmd cli_serve_cmd = {
    .name = "serve", .args = "[options]",
    .about = "OpenAI-compatible HTTP server (chat, completions, streaming, /metrics)",
    .opts = rows, .size = sizeof(serve_opts), .positional = CLI_NO_POSITIONAL,
    .run = cli_serve,
    .notes = "Endpoints: POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize;\n"
             "GET /v1/models, /health, /metrics, / (a chat page). docs/SERVING.md.\n"
             "--temp, --top-k, --top-p, --min-p: defaults for requests that do not set them.\n"};

/* own rows, then generate's shared rows (same table entries, same destinations) */
static int build_rows(void) {
  int n = 0;
  for (size_t i = 0; i < N_OF(own_rows); i++) rows[n++] = own_rows[i];
  for (int k = 0; shared_names[k]; k++)
    for (int i = 0; i < cli_generate_cmd.n_opts; i++)
      if (cli_generate_cmd.opts[i].name && !strcmp(cli_generate_cmd.opts[i].name, shared_names[k]))
        rows[n++] = cli_generate_cmd.opts[i];
  return n;
}

double srv_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

void srv_count(server *s, unsigned code) {
  pthread_mutex_lock(&s->mu);
  if (code < N_OF(s->met.by_code)) s->met.by_code[code]++;
  pthread_mutex_unlock(&s->mu);
}

clkv_status srv_submit(server *s, clkv_request *r, uint64_t *id) {
  pthread_mutex_lock(&s->sched_mu);
  clkv_status st = s->sched ? clkv_sched_submit(s->sched, r, id) : CLKV_ERR_CANCELLED;
  pthread_mutex_unlock(&s->sched_mu);
  return st;
}

void srv_cancel(server *s, uint64_t id) {
  pthread_mutex_lock(&s->sched_mu);
  if (s->sched) clkv_sched_cancel(s->sched, id);
  pthread_mutex_unlock(&s->sched_mu);
}

void srv_counts(server *s, int *waiting, int *running, clkv_kv_stats *kv) {
  *waiting = *running = 0;
  memset(kv, 0, sizeof *kv);
  pthread_mutex_lock(&s->sched_mu);
  if (s->sched) {
    clkv_sched_counts(s->sched, waiting, running);
    clkv_sched_kv_stats(s->sched, kv);
  }
  pthread_mutex_unlock(&s->sched_mu);
}

static enum MHD_Result reply(server *s, struct MHD_Connection *c, unsigned code, const char *type,
                             char *text, size_t len) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(text);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  if (code == 503) MHD_add_response_header(r, "Retry-After", "1");
  if (code == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  enum MHD_Result ok = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  srv_count(s, code);
  return ok;
}

enum MHD_Result srv_reply_json(server *s, struct MHD_Connection *c, unsigned code, json_t *j) {
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
  json_decref(j);
  if (!text) return MHD_NO;
  return reply(s, c, code, "application/json", text, strlen(text));
}

enum MHD_Result srv_error(server *s, struct MHD_Connection *c, unsigned code, const char *param,
                          const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *type = code == 401 ? "authentication_error"
                     : code >= 500 ? (code == 503 ? "overloaded_error" : "server_error")
                                   : "invalid_request_error";
  json_t *e = json_pack("{s:o, s:s, s:o, s:o}", "message", cli_json_text(msg, strlen(msg)),
                        "type", type, "param", param ? json_string(param) : json_null(), "code",
                        code == 401 ? json_string("invalid_api_key") : json_null());
  return srv_reply_json(s, c, code, json_pack("{s:o}", "error", e));
}

/* What one connection's request has received so far. */
typedef struct conn {
  char *body;
  size_t len, cap;
  int too_big;
} conn;

static int body_add(server *s, conn *k, const char *data, size_t n) {
  if (k->too_big || k->len + n > s->max_body) {
    k->too_big = 1;
    return 0;
  }
  if (k->len + n + 1 > k->cap) {
    size_t cap = (k->len + n + 1) * 2;
    char *b = realloc(k->body, cap);
    if (!b) return -1;
    k->body = b;
    k->cap = cap;
  }
  memcpy(k->body + k->len, data, n);
  k->len += n;
  k->body[k->len] = 0;
  return 0;
}

static int authorized(const server *s, struct MHD_Connection *c) {
  if (!s->api_key) return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  return h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, s->api_key);
}

static enum MHD_Result models(server *s, struct MHD_Connection *c) {
  json_t *m = json_pack("{s:s, s:s, s:i, s:s}", "id", s->model_id, "object", "model", "created",
                        0, "owned_by", "clkv");
  return srv_reply_json(s, c, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}

/* POST /tokenize {"content": text, "add_special": bool} → {"tokens": [...]} */
static enum MHD_Result tokenize(server *s, struct MHD_Connection *c, json_t *body) {
  json_t *t = json_object_get(body, "content");
  if (!json_is_string(t)) return srv_error(s, c, 400, "content", "'content' must be a string");
  json_t *sp = json_object_get(body, "add_special");
  const char *text = json_string_value(t);
  int cap = (int)strlen(text) + 8;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
  int n = ids ? clkv_tokenize(s->m, text, sp ? json_is_true(sp) : 0, ids, cap) : -1;
  json_t *out = json_array();
  for (int i = 0; i < n && i < cap; i++) json_array_append_new(out, json_integer(ids[i]));
  free(ids);
  if (n < 0 || n > cap) {
    json_decref(out);
    return srv_error(s, c, 500, NULL, "the text could not be tokenized");
  }
  return srv_reply_json(s, c, 200, json_pack("{s:o}", "tokens", out));
}

/* POST /detokenize {"tokens": [ids]} → {"content": text} */
static enum MHD_Result detokenize(server *s, struct MHD_Connection *c, json_t *body) {
  json_t *t = json_object_get(body, "tokens"), *v;
  clkv_model_info mi;
  clkv_model_get_info(s->m, &mi);
  if (!json_is_array(t)) return srv_error(s, c, 400, "tokens", "'tokens' must be an array of ids");
  size_t i, len = 0;
  char *text = malloc(16 * json_array_size(t) + 1);
  if (!text) return MHD_NO;
  json_array_foreach(t, i, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= mi.n_vocab) {
      free(text);
      return srv_error(s, c, 400, "tokens", "token %zu is not an id from 0 to %d", i, mi.n_vocab - 1);
    }
    size_t l;
    const char *piece = clkv_token_text(s->m, (int32_t)json_integer_value(v), &l);
    if (l > 16) l = 16;
    memcpy(text + len, piece, l);
    len += l;
  }
  json_t *out = cli_json_text(text, len);
  free(text);
  return srv_reply_json(s, c, 200, json_pack("{s:o}", "content", out));
}

static enum MHD_Result get(server *s, struct MHD_Connection *c, const char *url) {
  if (!strcmp(url, "/health")) return srv_reply_json(s, c, 200, json_pack("{s:s}", "status", "ok"));
  if (!strcmp(url, "/v1/models")) return models(s, c);
  if (!strcmp(url, "/metrics")) {
    char *t = srv_metrics_text(s);
    return t ? reply(s, c, 200, "text/plain; version=0.0.4", t, strlen(t)) : MHD_NO;
  }
  if (!strcmp(url, "/") && s->page) {
    char *t = strdup(s->page);
    return t ? reply(s, c, 200, "text/html; charset=utf-8", t, strlen(t)) : MHD_NO;
  }
  return srv_error(s, c, 404, NULL, "no GET %s here (GET /v1/models, /health, /metrics, /)", url);
}

static enum MHD_Result post(server *s, struct MHD_Connection *c, const char *url, conn *k) {
  int which = !strcmp(url, "/v1/chat/completions") ? 1 : !strcmp(url, "/v1/completions") ? 2
              : !strcmp(url, "/tokenize") ? 3 : !strcmp(url, "/detokenize") ? 4 : 0;
  if (!which)
    return srv_error(s, c, 404, NULL, "no POST %s here (/v1/chat/completions, /v1/completions, "
                     "/tokenize, /detokenize)", url);
  json_error_t je;
  json_t *body = json_loadb(k->body ? k->body : "", k->len, 0, &je);
  if (!body) return srv_error(s, c, 400, NULL, "the body is not valid JSON: %s (line %d, column %d)",
                              je.text, je.line, je.column);
  enum MHD_Result r;
  if (!json_is_object(body)) r = srv_error(s, c, 400, NULL, "the body must be a JSON object");
  else if (which <= 2) r = srv_completions(s, c, body, which == 1);
  else r = which == 3 ? tokenize(s, c, body) : detokenize(s, c, body);
  json_decref(body);
  return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls) {
  (void)version;
  server *s = cls;
  conn *k = *con_cls;
  if (!k) { /* headers only: refuse a declared oversized body before reading it */
    if (!(*con_cls = k = calloc(1, sizeof *k))) return MHD_NO;
    pthread_mutex_lock(&s->mu);
    s->inflight++;
    pthread_mutex_unlock(&s->mu);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->max_body) k->too_big = 1;
    if (!k->too_big) return MHD_YES;
  } else if (*size) {
    if (body_add(s, k, data, *size) < 0) return MHD_NO;
    *size = 0;
    return MHD_YES;
  }
  if (k->too_big)
    return srv_error(s, c, 413, NULL, "the body is larger than %zu bytes (--max-body)", s->max_body);
  if (strcmp(url, "/") && strcmp(url, "/health") && !authorized(s, c))
    return srv_error(s, c, 401, NULL, "a valid API key is needed: 'Authorization: Bearer KEY'");
  if (!strcmp(method, "GET")) return get(s, c, url);
  if (!strcmp(method, "POST")) return post(s, c, url, k);
  return srv_error(s, c, 405, NULL, "method %s is not served (GET or POST)", method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)c, (void)why;
  server *s = cls;
  conn *k = *con_cls;
  if (k) {
    free(k->body);
    pthread_mutex_lock(&s->mu);
    s->inflight--;
    pthread_mutex_unlock(&s->mu);
  }
  free(k);
  *con_cls = NULL;
}

static volatile sig_atomic_t stop_signals;
static void on_signal(int sig) {
  (void)sig;
  stop_signals++;
}

/* The engine thread: steps the scheduler until a signal, then (listening stopped) lets
 * running requests finish for --grace seconds; clkv_sched_free cancels the rest. */
static void engine_loop(server *s, struct MHD_Daemon *d, int grace_s) {
  double stop_at = 0;
  for (;;) {
    int active = 0, running = 0;
    if (clkv_sched_step(s->sched, &active))
      fprintf(stderr, "clkv: serve: a step failed: %s\n", clkv_last_error(s->ctx));
    clkv_sched_counts(s->sched, NULL, &running);
    pthread_mutex_lock(&s->mu);
    if (running > s->met.running_max) s->met.running_max = running;
    pthread_mutex_unlock(&s->mu);
    if (stop_signals && !stop_at) {
      MHD_socket fd = MHD_quiesce_daemon(d); /* no new connections */
      if (fd != MHD_INVALID_SOCKET) close(fd);
      stop_at = srv_now_ms() + grace_s * 1e3;
      fprintf(stderr, "clkv: serve: stopping (%d requests running)\n", active);
    }
    if (stop_at && (!active || srv_now_ms() > stop_at || stop_signals > 1)) return;
    if (!active) clkv_sched_wait(s->sched, 100);
  }
}

/* Every request has its done event: lets their replies (the rest of a stream, [DONE]) go
 * out before the connections are closed, for 5 s at most. */
static void drain(server *s) {
  for (int i = 0; i < 250; i++) {
    pthread_mutex_lock(&s->mu);
    const int left = s->inflight;
    pthread_mutex_unlock(&s->mu);
    if (!left) return;
    struct timespec ts = {.tv_nsec = 20000000L};
    nanosleep(&ts, NULL);
  }
}

/* Runtime, model, context (n_seq_max = --parallel) and scheduler: 0 or the exit status. */
static int server_open(server *s, const serve_opts *o) {
  clkv_error err;
  clkv_runtime_params rp = clkv_runtime_default_params();
  rp.device = o->g.device;
  clkv_status st = clkv_runtime_create(&rp, &s->rt, &err);
  if (st) return cli_die(st, err.message);
  const char *path = cli_model_path(o->g.model);
  if ((st = clkv_model_load(s->rt, path, &o->g.mp, &s->m, &err))) {
    fprintf(stderr, "clkv: cannot load %s\n", path);
    return cli_die(st, err.message);
  }
  if ((st = clkv_context_create(s->m, &o->g.cp, &s->ctx, &err))) return cli_die(st, err.message);
  if ((st = clkv_sched_create(s->ctx, &s->sched))) return cli_die(st, clkv_last_error(s->ctx));
  const char *base = strrchr(path, '/');
  snprintf(s->model_id, sizeof s->model_id, "%s", base ? base + 1 : path);
  return 0;
}

static struct MHD_Daemon *listen_on(server *s, const serve_opts *o) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
  if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1) {
    fprintf(stderr, "clkv: --host takes an IPv4 address such as 127.0.0.1, not '%s'\n", o->host);
    return NULL;
  }
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
      (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(4 * (o->g.parallel + o->max_queue) + 64),
      MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "clkv: cannot listen on %s:%d (in use? try another --port)\n", o->host, o->port);
    return NULL;
  }
  const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  fprintf(stderr, "clkv: serving %s on http://%s:%u (%d in parallel)\n", s->model_id, o->host,
          i ? i->port : (unsigned)o->port, o->g.parallel);
  return d;
}

static int cli_serve(const cli_cmd *c, int argc, char **argv) {
  cli_cmd cmd = *c;
  cmd.n_opts = build_rows();
  serve_opts o = {.g = {.mp = clkv_model_default_params(), .cp = clkv_context_default_params(),
                        .gp = clkv_gen_default_params(), .parallel = 4},
                  .host = "127.0.0.1", .port = 8080, .max_queue = 64, .max_body = 1 << 20,
                  .timeout = 60, .grace = 10};
  o.g.gp.temperature = 1.0f; /* OpenAI's defaults */
  o.g.gp.top_p = 1.0f;
  int rc = cli_parse(&cmd, argc, argv, &o);
  if (rc >= 0) return rc;
  if (!o.api_key) o.api_key = getenv("CLKV_API_KEY"); /* after parsing: --help never shows it */
  if (o.api_key && !*o.api_key) o.api_key = NULL;
  o.g.mp.max_seqs = o.g.parallel;
  o.g.cp.prefix_cache = !o.g.no_prefix;
  server s = {.api_key = o.api_key, .parallel = o.g.parallel, .max_queue = o.max_queue,
              .max_body = (size_t)o.max_body, .defaults = o.g.gp, .page = srv_chat_page};
  s.defaults.stop = NULL;
  srv_metrics_init(&s.met);
  pthread_mutex_init(&s.mu, NULL);
  pthread_mutex_init(&s.sched_mu, NULL);
  struct MHD_Daemon *d = NULL;
  rc = server_open(&s, &o);
  if (!rc && !(d = listen_on(&s, &o))) rc = 1;
  if (!rc) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    clkv_model_info mi;
    clkv_model_get_info(s.m, &mi);
    s.n_ctx = mi.n_ctx_train;
    engine_loop(&s, d, o.grace);
  }
  pthread_mutex_lock(&s.sched_mu); /* connection threads no longer reach the scheduler */
  clkv_sched_free(s.sched);        /* cancels what is left: every job gets its done event */
  s.sched = NULL;
  pthread_mutex_unlock(&s.sched_mu);
  drain(&s);
  if (d) MHD_stop_daemon(d);
  if (!rc && o.g.cp.prefix_cache_dir && clkv_context_save_prefix(s.ctx))
    fprintf(stderr, "clkv: warning: prefix cache not saved: %s\n", clkv_last_error(s.ctx));
  clkv_context_free(s.ctx);
  clkv_model_free(s.m);
  clkv_runtime_free(s.rt);
  pthread_mutex_destroy(&s.mu);
  pthread_mutex_destroy(&s.sched_mu);
  if (!rc) fprintf(stderr, "clkv: serve: stopped\n");
  return rc;
}

/* serve.h — what the files of `clkv serve` share: the server (model, scheduler, metrics),
 * one generation job as the engine thread fills it and a connection thread reads it, and
 * the HTTP replies. serve.c: options, engine loop, routing; serve_gen.c: the completions
 * endpoints; serve_metrics.c: /metrics. */
#ifndef CLKV_SERVE_H
#define CLKV_SERVE_H

#include "cli.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

/* Prometheus histogram with fixed bucket bounds (seconds). */
#define SRV_BUCKETS 10
typedef struct srv_hist {
  const double *le;               /* (n) upper bounds; +Inf is implicit */
  int n;
  uint64_t count[SRV_BUCKETS + 1]; /* per bucket, not cumulative; last: above every bound */
  double sum;
} srv_hist;

typedef struct srv_metrics {
  uint64_t by_code[600];          /* responses by HTTP status */
  uint64_t prompt_tokens, generated_tokens, cancelled;
  uint64_t drafted, accepted, spec_passes; /* speculative decoding (--lookup-ngram) */
  int running_max;                /* most requests decoding together so far */
  srv_hist ttft, itl;
} srv_metrics;

typedef struct server {
  clkv_runtime *rt;
  clkv_model *m;
  clkv_context *ctx;
  clkv_sched *sched;               /* NULL once shutting down; connection threads reach it
                                     only through srv_submit/srv_cancel/srv_counts */
  pthread_mutex_t sched_mu;       /* guards the sched pointer against its free at shutdown */
  char model_id[256];             /* what /v1/models names it (the file name) */
  const char *api_key;            /* NULL: no authentication */
  int parallel, max_queue, n_ctx;  /* n_ctx: the model's training context (token cap) */
  size_t max_body;
  clkv_gen_params defaults;       /* sampling defaults from the command line */
  pthread_mutex_t mu;             /* guards what follows */
  int jobs;                       /* submitted, not yet done */
  int inflight;                   /* HTTP requests begun whose reply is not yet sent */
  uint64_t next_id;
  srv_metrics met;
  const char *page;               /* GET / */
} server;

/* One token as the engine thread reported it. */
typedef struct srv_tok {
  int32_t id;
  char *text;                     /* the text that became complete with it (may be "") */
  size_t len;
  float logprob;
  int n_top;
  int32_t top_ids[CLKV_MAX_LOGPROBS];
  float top_lp[CLKV_MAX_LOGPROBS];
} srv_tok;

/* A generation request between its connection thread and the engine thread. */
typedef struct srv_job {
  server *srv;
  clkv_request r;
  int32_t *ids;
  char *stops[9];                 /* NULL-terminated copies of the stop strings */
  int chat, stream, include_usage, logprobs, top_logprobs;
  uint64_t sched_id, num;         /* the scheduler's id; ours ("chatcmpl-<num>") */
  long created;
  pthread_mutex_t mu;             /* guards what follows */
  pthread_cond_t cv;
  srv_tok *toks;                  /* (n_toks, cap) */
  int n_toks, cap, sent;          /* sent: tokens already streamed */
  int done, refs;                 /* refs: the engine (until done) and the connection */
  clkv_gen_stats stats;
  clkv_status status;
  double t_last;                  /* when the last token came, ms */
  char *out;                      /* streaming: formatted bytes not yet handed to MHD */
  size_t out_len, out_pos;
  int phase;                      /* streaming: 0 first chunk, 1 tokens, 2 usage/[DONE], 3 end */
} srv_job;

/* serve.c */
/* Queues a JSON reply (j released) with status code; counts it in the metrics. */
enum MHD_Result srv_reply_json(server *s, struct MHD_Connection *c, unsigned code, json_t *j);
/* An OpenAI error object: {"error": {message, type, param, code}}. */
enum MHD_Result srv_error(server *s, struct MHD_Connection *c, unsigned code, const char *param,
                          const char *fmt, ...);
void srv_count(server *s, unsigned code);
/* clkv_sched_submit, or CLKV_ERR_CANCELLED once the server is stopping. */
clkv_status srv_submit(server *s, clkv_request *r, uint64_t *id);
void srv_cancel(server *s, uint64_t id);
/* Waiting and running requests and the KV statistics (zeros once stopping). */
void srv_counts(server *s, int *waiting, int *running, clkv_kv_stats *kv);
double srv_now_ms(void);

/* serve_gen.c: POST /v1/completions (chat 0) and /v1/chat/completions (chat 1) */
enum MHD_Result srv_completions(server *s, struct MHD_Connection *c, json_t *body, int chat);

/* serve_page.c: the chat page GET / serves */
extern const char srv_chat_page[];

/* serve_metrics.c */
void srv_metrics_init(srv_metrics *m);
void srv_hist_add(srv_hist *h, double seconds);
/* The Prometheus text (malloc'd, caller frees). */
char *srv_metrics_text(server *s);

#endif /* CLKV_SERVE_H */

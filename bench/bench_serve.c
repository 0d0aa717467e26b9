/* bench_serve.c — clkv_bench serve: a fixed set of prompts streamed from `clkv serve` at
 * concurrency 1, 4 and 16 over HTTP: requests/s, output tokens/s, time to first token and
 * inter-token latency (p50/p99); the headline is aggregate tokens/s at the highest
 * concurrency over single-stream decode. Starts its own server unless --port is given. */
#include "bench_util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const prompts[] = {
    "The capital of France is", "Once upon a time, in a small village,",
    "The three primary colors are", "Water boils at", "A good breakfast includes",
    "The largest planet in the solar system is", "To learn a new language, you should",
    "The history of the bicycle begins"};
#define N_PROMPTS (int)(sizeof prompts / sizeof prompts[0])

typedef struct result {
  double ttft_ms, total_ms;
  int tokens;
  double *gaps; /* (tokens - 1) ms between token events */
  int ok;
} result;

typedef struct level {
  int port, max_tokens, n_req;
  int next;            /* next request to send (under mu) */
  pthread_mutex_t mu;
  result *res;         /* (n_req) */
} level;

/* One streamed completion over HTTP/1.0 (no chunked framing; the server closes at the end). */
static void one_request(level *L, int i, result *r) {
  char body[512], req[1024], buf[8192];
  snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0,"
           "\"stream\":true}", prompts[i % N_PROMPTS], L->max_tokens);
  int n = snprintf(req, sizeof req, "POST /v1/completions HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
  r->gaps = calloc((size_t)L->max_tokens + 1, sizeof(double));
  const double t0 = bench_now_s();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)L->port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (fd < 0 || !r->gaps || connect(fd, (struct sockaddr *)&a, sizeof a) || write(fd, req, (size_t)n) != n)
    goto done;
  double last = 0;
  size_t have = 0;
  ssize_t got;
  while ((got = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
    have += (size_t)got;
    buf[have] = 0;
    char *p = buf, *e;
    while ((e = strstr(p, "\n\n"))) { /* one event (or the headers) */
      *e = 0;
      const double now = bench_now_s();
      if (strstr(p, "data: {") && strstr(p, "\"finish_reason\":null")) {
        if (r->tokens == 0) r->ttft_ms = (now - t0) * 1e3;
        else if (r->tokens <= L->max_tokens) r->gaps[r->tokens - 1] = (now - last) * 1e3;
        r->tokens++;
        last = now;
      }
      if (strstr(p, "data: [DONE]")) r->ok = 1;
      p = e + 2;
    }
    have -= (size_t)(p - buf);
    memmove(buf, p, have);
  }
done:
  r->total_ms = (bench_now_s() - t0) * 1e3;
  if (fd >= 0) close(fd);
}

static void *client(void *arg) {
  level *L = arg;
  for (;;) {
    pthread_mutex_lock(&L->mu);
    const int i = L->next < L->n_req ? L->next++ : -1;
    pthread_mutex_unlock(&L->mu);
    if (i < 0) return NULL;
    one_request(L, i, &L->res[i]);
  }
}

static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
  if (n == 0) return NAN;
  qsort(v, (size_t)n, sizeof *v, cmp);
  int k = (int)ceil(p * n) - 1;
  return v[k < 0 ? 0 : k];
}

typedef struct summary {
  int conc, n_req, failed;
  double wall_s, req_s, tok_s, ttft50, ttft99, itl50, itl99;
} summary;

static summary run_level(int port, int conc, int n_req, int max_tokens) {
  level L = {.port = port, .max_tokens = max_tokens, .n_req = n_req};
  pthread_mutex_init(&L.mu, NULL);
  L.res = calloc((size_t)n_req, sizeof(result));
  pthread_t th[64];
  const double t0 = bench_now_s();
  for (int i = 0; i < conc; i++) pthread_create(&th[i], NULL, client, &L);
  for (int i = 0; i < conc; i++) pthread_join(th[i], NULL);
  summary s = {.conc = conc, .n_req = n_req, .wall_s = bench_now_s() - t0};
  double *ttft = calloc((size_t)n_req, sizeof(double)), *gaps = calloc((size_t)n_req * (size_t)max_tokens + 1, sizeof(double));
  int n_gaps = 0, tokens = 0;
  for (int i = 0; i < n_req; i++) {
    result *r = &L.res[i];
    s.failed += !r->ok;
    ttft[i] = r->ttft_ms;
    tokens += r->tokens;
    for (int k = 0; k + 1 < r->tokens && k < max_tokens; k++) gaps[n_gaps++] = r->gaps[k];
    free(r->gaps);
  }
  s.req_s = n_req / s.wall_s;
  s.tok_s = tokens / s.wall_s;
  s.ttft50 = pct(ttft, n_req, 0.5);
  s.ttft99 = pct(ttft, n_req, 0.99);
  s.itl50 = pct(gaps, n_gaps, 0.5);
  s.itl99 = pct(gaps, n_gaps, 0.99);
  free(ttft);
  free(gaps);
  free(L.res);
  pthread_mutex_destroy(&L.mu);
  return s;
}

/* Starts `clkv serve` (beside this program) on a free port; its pid, and the port read from
 * its stderr, or -1. */
static int start_server(const char *model, int parallel, pid_t *pid) {
  char exe[PATH_MAX], par[16];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 8);
  if (n <= 0) return -1;
  exe[n] = 0;
  strcpy(strrchr(exe, '/') + 1, "clkv");
  snprintf(par, sizeof par, "%d", parallel);
  int fds[2];
  if (pipe(fds)) return -1;
  if ((*pid = fork()) == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    const char *args[] = {exe, "serve", "--port", "0", "--parallel", par, "--max-queue", "256",
                          model ? "-m" : NULL, model, NULL};
    execv(exe, (char *const *)args);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[1024];
  int port = -1;
  while (port < 0 && f && fgets(line, sizeof line, f)) {
    const char *p = strstr(line, "http://127.0.0.1:");
    if (p) port = atoi(p + 17);
    else fputs(line, stderr);
  }
  /* the pipe stays open (the server writes little more) and closes when it exits */
  return port;
}

static void print_table(const summary *s, int n, double single, int max_tokens) {
  printf("clkv bench serve: %d-token completions, prompts cycled from %d\n\n", max_tokens, N_PROMPTS);
  printf("%-11s %8s %8s %10s %12s %10s %10s %9s %9s\n", "concurrency", "requests", "failed",
         "req/s", "output tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99");
  for (int i = 0; i < n; i++)
    printf("%-11d %8d %8d %10.2f %12.1f %8.0fms %8.0fms %7.1fms %7.1fms\n", s[i].conc, s[i].n_req,
           s[i].failed, s[i].req_s, s[i].tok_s, s[i].ttft50, s[i].ttft99, s[i].itl50, s[i].itl99);
  printf("\nsingle-stream decode %.1f tok/s (1000 / ITL p50 at concurrency 1); aggregate at %d: "
         "%.1f tok/s = %.2fx\n", single, s[n - 1].conc, s[n - 1].tok_s, s[n - 1].tok_s / single);
}

static void print_json(const summary *s, int n, double single) {
  bench_json j;
  bench_json_begin(&j, stdout);
  for (int i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "concurrency_%d", s[i].conc);
    bench_json_object(&j, key);
    bench_json_num(&j, "requests", s[i].n_req);
    bench_json_num(&j, "failed", s[i].failed);
    bench_json_num(&j, "requests_per_s", s[i].req_s);
    bench_json_num(&j, "output_tokens_per_s", s[i].tok_s);
    bench_json_num(&j, "ttft_p50_ms", s[i].ttft50);
    bench_json_num(&j, "ttft_p99_ms", s[i].ttft99);
    bench_json_num(&j, "itl_p50_ms", s[i].itl50);
    bench_json_num(&j, "itl_p99_ms", s[i].itl99);
    bench_json_close(&j);
  }
  bench_json_num(&j, "single_stream_decode_tokens_per_s", single);
  bench_json_num(&j, "aggregate_over_single", s[n - 1].tok_s / single);
  bench_json_end(&j);
}

int bench_serve_main(int argc, char **argv) {
  const char *model = NULL;
  int port = 0, max_tokens = 32, json = 0, requests = 0, levels[] = {1, 4, 16};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-n") && i + 1 < argc) max_tokens = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--requests") && i + 1 < argc) requests = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json")) json = 1;
    else {
      printf("usage: clkv bench serve [-m MODEL] [--port P] [-n TOKENS] [--requests N] [--json]\n"
             "  streams completions at concurrency 1, 4 and 16 (N requests each, default 2 per\n"
             "  client, at least 8) from a server it starts with --parallel 16, or the one\n"
             "  on 127.0.0.1:P\n");
      return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
    }
  }
  if (max_tokens < 2 || max_tokens > 4096) max_tokens = 32;
  pid_t pid = 0;
  if (!port && (port = start_server(model, 16, &pid)) < 0) {
    fprintf(stderr, "clkv_bench serve: the server did not start\n");
    return 1;
  }
  summary s[3];
  run_level(port, 1, 2, max_tokens); /* warm-up: kernels built, caches filled */
  for (int i = 0; i < 3; i++) {
    int n = requests ? requests : 2 * levels[i] < 8 ? 8 : 2 * levels[i];
    s[i] = run_level(port, levels[i], n, max_tokens);
  }
  if (pid > 0) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
  }
  const double single = 1000.0 / s[0].itl50;
  if (json) print_json(s, 3, single);
  else print_table(s, 3, single, max_tokens);
  return 0;
}

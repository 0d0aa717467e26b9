/* input.c — where a prompt comes from as llama.cpp's tools take it (-p TEXT, -p - or piped
 * standard input, -f FILE), the sampler seed (random unless given), and Ctrl-C. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROMPT_MAX (64u << 20) /* bytes: far beyond any context */

/* All of f (caller frees), one trailing newline dropped as llama.cpp does; NULL after saying
 * why on stderr. */
static char *read_all(FILE *f, const char *name) {
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - 1 - len, f);
    if (ferror(f) || len > PROMPT_MAX) {
      fprintf(stderr, "clkv: cannot read the prompt from %s: %s\n", name,
              ferror(f) ? strerror(errno) : "more than 64 MiB");
      free(buf);
      return NULL;
    }
    if (feof(f)) break;
    if (len + 1 == cap) {
      char *p = realloc(buf, cap *= 2);
      if (!p) free(buf);
      buf = p;
    }
  }
  if (!buf) {
    fprintf(stderr, "clkv: out of host memory reading the prompt\n");
    return NULL;
  }
  buf[len] = 0;
  if (len && buf[len - 1] == '\n') buf[--len] = 0;
  if (len && buf[len - 1] == '\r') buf[--len] = 0;
  return buf;
}

/* The file at path as a prompt: a regular file only (a FIFO would wait for a writer). */
static char *read_file(const char *path) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    fprintf(stderr, "clkv: cannot read the prompt file %s: %s\n", path,
            fd < 0 ? strerror(errno) : "not a regular file");
    if (fd >= 0) close(fd);
    return NULL;
  }
  FILE *f = fdopen(fd, "r");
  char *text = f ? read_all(f, path) : NULL;
  if (f) fclose(f);
  else close(fd);
  return text;
}

int cli_prompt(const char **prompt, const char *file, int need, char **owned) {
  *owned = NULL;
  if (file && *prompt) {
    fprintf(stderr, "clkv: give the prompt once: -p or -f, not both\n");
    return 2;
  }
  if (file) *owned = read_file(file);
  else if (*prompt && !strcmp(*prompt, "-")) *owned = read_all(stdin, "standard input");
  else if (*prompt || !need) return -1;
  else if (!isatty(STDIN_FILENO)) *owned = read_all(stdin, "standard input");
  else {
    fprintf(stderr, "clkv: no prompt: give -p TEXT, -f FILE, or the text on standard input "
                    "(-p -)\n");
    return 2;
  }
  if (!*owned) return 1;
  if (!**owned && need && !file) {
    fprintf(stderr, "clkv: no prompt: standard input was empty; give -p TEXT or -f FILE\n");
    free(*owned);
    *owned = NULL;
    return 2;
  }
  *prompt = *owned;
  return -1;
}

uint64_t cli_seed(int64_t given) {
  if (given >= 0) return (uint64_t)given;
  uint32_t s = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(&s, sizeof s, 1, f) != 1) { /* no /dev/urandom: time and pid */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    s = (uint32_t)t.tv_nsec ^ (uint32_t)t.tv_sec ^ ((uint32_t)getpid() << 16);
  }
  if (f) fclose(f);
  return s & 0x7fffffffu; /* what --seed takes back */
}

/* Ctrl-C: the first SIGINT asks the current generation to stop (the token callback returns
 * non-zero; the text so far, stats and JSON are still printed); the second exits at once. */
volatile sig_atomic_t cli_interrupted;

static void on_sigint(int sig) {
  (void)sig;
  if (cli_interrupted) {
    static const char nl = '\n';
    if (write(STDOUT_FILENO, &nl, 1)) {}
    _exit(130);
  }
  cli_interrupted = 1;
}

/* No SA_RESTART: a Ctrl-C while chat waits for input ends the read (and the chat). */
void cli_catch_sigint(void) {
  struct sigaction sa = {.sa_handler = on_sigint};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

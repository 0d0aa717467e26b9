/* bench_clpeak.c — finds and runs clpeak, and parses its report: section headers such as
 * "Global memory bandwidth (GBPS)" followed by more-indented "name : value" lines, and
 * one-line figures such as "Kernel launch latency : 11.29 us". */
#include "bench_clpeak.h"
#include "bench_util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_clpeak_find(char *path, size_t cap) {
  const char *env = getenv("CLKV_CLPEAK");
  if (env && *env) {
    snprintf(path, cap, "%s", env);
    return access(path, X_OK) == 0;
  }
  const char *p = getenv("PATH");
  if (!p) p = "/usr/local/bin:/usr/bin:/bin";
  while (*p) {
    size_t n = strcspn(p, ":");
    if (n > 0 && (size_t)snprintf(path, cap, "%.*s/clpeak", (int)n, p) < cap &&
        access(path, X_OK) == 0)
      return 1;
    p += n;
    if (*p == ':') ++p;
  }
  return 0;
}

/* Copies s[0..n) into out with surrounding blanks removed. */
static void trim_copy(char *out, size_t cap, const char *s, size_t n) {
  while (n > 0 && isspace((unsigned char)*s)) ++s, --n;
  while (n > 0 && isspace((unsigned char)s[n - 1])) --n;
  snprintf(out, cap, "%.*s", (int)n, s);
}

/* A value is a number optionally followed by a unit word ("11.29 us"), nothing else. */
static int parse_value(const char *s, double *v) {
  char *end;
  *v = strtod(s, &end);
  if (end == s || !isfinite(*v)) return 0;
  while (*end == ' ' || *end == '\t') ++end;
  while (isalpha((unsigned char)*end)) ++end;
  while (isspace((unsigned char)*end)) ++end;
  return *end == 0;
}

static void add_figure(bench_clpeak *out, const char *section, const char *name, double v) {
  if (out->n_fig >= BENCH_CLPEAK_MAX) return;
  bench_clpeak_figure *f = &out->fig[out->n_fig++];
  snprintf(f->section, sizeof f->section, "%s", section);
  snprintf(f->name, sizeof f->name, "%s", name);
  f->value = v;
}

int bench_clpeak_parse(const char *text, bench_clpeak *out) {
  char section[64] = "";
  size_t section_indent = 0;
  int found = 0;
  for (const char *line = text; line && *line;) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
    line = eol ? eol + 1 : NULL;

    size_t indent = strspn(buf, " \t");
    char *colon = strchr(buf, ':');
    char *paren = strrchr(buf, '(');
    size_t blen = strlen(buf);
    while (blen > 0 && isspace((unsigned char)buf[blen - 1])) buf[--blen] = 0;
    if (!colon && paren && blen > 0 && buf[blen - 1] == ')') { /* "Name (UNIT)" header */
      trim_copy(section, sizeof section, buf, (size_t)(paren - buf));
      section_indent = indent;
      continue;
    }
    if (!colon) continue;
    char key[64];
    double v;
    trim_copy(key, sizeof key, buf, (size_t)(colon - buf));
    if (!parse_value(colon + 1, &v)) continue;
    if (section[0] && indent > section_indent) {
      add_figure(out, section, key, v);
    } else {
      section[0] = 0; /* a one-line figure ends the previous section */
      add_figure(out, key, "", v);
    }
    ++found;
  }
  return found;
}

double bench_clpeak_get(const bench_clpeak *c, const char *section, const char *name) {
  size_t sl = strlen(section);
  for (int i = 0; i < c->n_fig; ++i) {
    const bench_clpeak_figure *f = &c->fig[i];
    if (strncasecmp(f->section, section, sl) != 0) continue;
    if (!name || !strcasecmp(f->name, name)) return f->value;
  }
  return NAN;
}

__attribute__((format(printf, 2, 3))) static void add_note(bench_clpeak *out, const char *fmt,
                                                           ...) {
  size_t n = strlen(out->note);
  if (n + 2 >= sizeof out->note) return;
  if (n) out->note[n++] = ' ', out->note[n] = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->note + n, sizeof out->note - n, fmt, ap);
  va_end(ap);
}

void bench_clpeak_run(const char *exe, int platform, int device, const char *tests,
                      bench_clpeak *out) {
  if (strchr(exe, '\'')) {
    add_note(out, "%s: clpeak path contains a quote; not run.", tests);
    return;
  }
  char cmd[1536];
  snprintf(cmd, sizeof cmd, "'%s' -p %d -d %d %s 2>&1", exe, platform, device, tests);
  double t0 = bench_now_s();
  FILE *p = popen(cmd, "r");
  if (!p) {
    add_note(out, "%s: could not start clpeak.", tests);
    return;
  }
  size_t cap = 1 << 16, n = 0;
  char *text = malloc(cap);
  if (!text) {
    pclose(p);
    add_note(out, "%s: out of host memory reading clpeak's output.", tests);
    return;
  }
  size_t got;
  while ((got = fread(text + n, 1, cap - 1 - n, p)) > 0) {
    n += got;
    if (n + 1 >= cap) { /* keep reading, but only the first 64 KiB are parsed */
      char sink[4096];
      while (fread(sink, 1, sizeof sink, p) > 0) {
      }
      break;
    }
  }
  text[n] = 0;
  int status = pclose(p);
  out->seconds += bench_now_s() - t0;
  int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  out->ran += ok;
  int found = bench_clpeak_parse(text, out);
  if (!ok)
    add_note(out, "%s: clpeak exited with status %d.", tests,
             status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  else if (found == 0)
    add_note(out, "%s: could not parse clpeak's output (no figures found).", tests);
  free(text);
}

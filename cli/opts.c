/* opts.c — one parser and one --help printer for every subcommand, both driven by the
 * subcommand's table of options (cli.h): spellings, value kinds and ranges, destinations. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HELP_WIDTH 92 /* columns --help fills */

/* The index of v among choices (NULL-terminated), or -1 with a message naming them. */
static int pick(const char *opt, const char *v, const char *const *choices) {
  int n = 0;
  while (choices[n]) n++;
  for (int i = 0; i < n; i++)
    if (!strcmp(v, choices[i])) return i;
  fprintf(stderr, "clkv: %s takes", opt);
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%s %s", i ? (i + 1 == n ? " or" : ",") : "", choices[i]);
  fprintf(stderr, ", not '%s'\n", v);
  return -1;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long long *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    fprintf(stderr, "clkv: %s needs a whole number from %ld to %ld (got '%s')\n", opt, lo, hi, v);
    return 0;
  }
  *out = x;
  return 1;
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "clkv: %s needs a number from %g to %g (got '%s')\n", opt, lo, hi, v);
    return 0;
  }
  *out = x;
  return 1;
}

/* "512M", "2G", "65536K", "1048576" → bytes; "0.5" → a fraction in (0, 1]. */
int cli_parse_size(const char *v, uint64_t *bytes, double *frac) {
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

/* Integers and reals are stored by the destination's size. */
static void put_int(void *where, size_t size, long long x) {
  if (size == sizeof(int)) *(int *)where = (int)x;
  else if (size == sizeof(int64_t)) *(int64_t *)where = x;
  else assert(!"CLI_INT, CLI_CHOICE and CLI_FLAG store into an int or a 64-bit integer");
}

static long long get_int(const void *where, size_t size) {
  return size == sizeof(int) ? *(const int *)where : *(const int64_t *)where;
}

static void put_num(void *where, size_t size, double x) {
  if (size == sizeof(float)) *(float *)where = (float)x;
  else if (size == sizeof(double)) *(double *)where = x;
  else assert(!"CLI_NUM stores into a float or a double");
}

static double get_num(const void *where, size_t size) {
  return size == sizeof(float) ? *(const float *)where : *(const double *)where;
}

/* Stores the value v of option o (spelled opt) at where: 1, or 0 after saying why not. */
static int take(const cli_opt *o, const char *opt, const char *v, void *where) {
  long long x = 0;
  double d = 0;
  int i;
  switch (o->kind) {
  case CLI_FLAG: put_int(where, o->size, 1); return 1;
  case CLI_STR: *(const char **)where = v; return 1;
  case CLI_CALL: return o->call(opt, v, where);
  case CLI_CHOICE:
    if ((i = pick(opt, v, o->choices)) < 0) return 0;
    put_int(where, o->size, i);
    return 1;
  case CLI_INT:
    if (o->choices) {
      if ((i = pick(opt, v, o->choices)) < 0) return 0;
      x = atoll(o->choices[i]);
    } else if (!parse_int(opt, v, (long)o->lo, (long)o->hi, &x)) {
      return 0;
    }
    put_int(where, o->size, x);
    return 1;
  case CLI_NUM:
    if (!parse_num(opt, v, o->lo, o->hi, &d)) return 0;
    put_num(where, o->size, d);
    return 1;
  }
  return 0;
}

static int spelled(const char *a, const char *spelling) { return spelling && !strcmp(a, spelling); }

static const cli_opt *find(const cli_cmd *c, const char *a) {
  for (int i = 0; i < c->n_opts; i++) {
    const cli_opt *o = &c->opts[i];
    if (o->only && strcmp(o->only, c->name)) continue;
    if (spelled(a, o->flag) || spelled(a, o->name) || spelled(a, o->alias)) return o;
  }
  return NULL;
}

/* Edits (insert, delete, replace a character) that turn a into b, for names under 64. */
static int distance(const char *a, const char *b) {
  int row[64], n = (int)strlen(b);
  if (n >= 64 || strlen(a) >= 64) return 64;
  for (int j = 0; j <= n; j++) row[j] = j;
  for (int i = 1; a[i - 1]; i++) {
    int diag = row[0];
    row[0] = i;
    for (int j = 1; j <= n; j++) {
      int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[n];
}

/* The spelling of c's options nearest to a, if near enough to be a typo, else NULL. */
static const char *nearest(const cli_cmd *c, const char *a) {
  const char *best = NULL;
  int d = (int)strlen(a) / 3 + 1; /* at most this many edits */
  for (int i = 0; i < c->n_opts; i++) {
    const cli_opt *o = &c->opts[i];
    const char *sp[3] = {o->flag, o->name, o->alias};
    for (int k = 0; k < 3 && (!o->only || !strcmp(o->only, c->name)); k++) {
      int e = sp[k] ? distance(a, sp[k]) : 64;
      if (e < d || (e == d && !best && e <= 2)) best = sp[k], d = e;
    }
  }
  return best;
}

/* The first bare-argument slot of c still empty, or NULL. */
static const char **free_positional(const cli_cmd *c, unsigned char *base) {
  if (c->positional == CLI_NO_POSITIONAL) return NULL;
  const char **slot = (const char **)(base + c->positional);
  for (int i = 0; i < (c->n_positional > 1 ? c->n_positional : 1); i++)
    if (!slot[i]) return &slot[i];
  return NULL;
}

int cli_parse(const cli_cmd *c, int argc, char **argv, void *opts) {
  unsigned char *base = opts;
  void *defaults = malloc(c->size); /* for --help, before any option changes opts */
  if (defaults) memcpy(defaults, opts, c->size);
  int rc = -1;
  for (int i = 1; i < argc && rc < 0; i++) {
    const char *a = argv[i];
    const cli_opt *o = find(c, a);
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cli_usage(stdout, c, defaults ? defaults : opts);
      rc = 0;
    } else if (!strcmp(a, "--version")) {
      printf("clkv %s\n", CLKV_VERSION_STRING);
      rc = 0;
    } else if (!o && a[0] != '-' && free_positional(c, base)) {
      *free_positional(c, base) = a;
    } else if (!o) {
      const char *near = nearest(c, a);
      fprintf(stderr, "clkv: unknown option '%s'%s%s%s\n", a, near ? "; did you mean " : "",
              near ? near : "", near ? "?" : "");
      cli_usage(stderr, c, defaults ? defaults : opts);
      rc = 2;
    } else if (o->kind != CLI_FLAG && i + 1 >= argc) {
      fprintf(stderr, "clkv: %s needs a value\n", a);
      rc = 2;
    } else if (!take(o, a, o->kind == CLI_FLAG ? NULL : argv[++i], base + o->at)) {
      rc = 2;
    }
  }
  free(defaults);
  return rc;
}

/* " [default: X]" for a non-zero number, a choice or a string, else "". */
static void default_text(const cli_opt *o, const void *where, char *buf, size_t cap) {
  buf[0] = 0;
  if (o->kind == CLI_CHOICE)
    snprintf(buf, cap, " [default: %s]", o->choices[get_int(where, o->size)]);
  else if (o->kind == CLI_INT && get_int(where, o->size))
    snprintf(buf, cap, " [default: %lld]", get_int(where, o->size));
  else if (o->kind == CLI_NUM && get_num(where, o->size) != 0)
    snprintf(buf, cap, " [default: %g]", get_num(where, o->size));
  else if (o->kind == CLI_STR && *(const char *const *)where)
    snprintf(buf, cap, " [default: \"%s\"]", *(const char *const *)where);
}

/* Words of text from column col on, wrapped at HELP_WIDTH to column indent. */
static void wrap(FILE *f, const char *text, int col, int indent) {
  for (const char *p = text; *p;) {
    size_t w = strcspn(p, " ");
    if (col > indent && col + 1 + (int)w > HELP_WIDTH) {
      fprintf(f, "\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      fputc(' ', f);
      col++;
    }
    fwrite(p, 1, w, f);
    col += (int)w;
    p += w;
    while (*p == ' ') p++;
  }
  fputc('\n', f);
}

/* "-m, --model MODEL", "    --temp T", "    --kv-type f16|q8|q4", "-c, --ctx, --ctx-size N" */
static int spelling(const cli_opt *o, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s%s%s%s%s", o->flag ? o->flag : "    ",
                   o->flag && o->name ? ", " : "", o->name ? o->name : "",
                   o->alias ? ", " : "", o->alias ? o->alias : "");
  if (o->value) return n + snprintf(buf + n, cap - (size_t)n, " %s", o->value);
  for (int i = 0; o->choices && o->choices[i] && (size_t)n < cap; i++)
    n += snprintf(buf + n, cap - (size_t)n, "%c%s", i ? '|' : ' ', o->choices[i]);
  return n;
}

void cli_usage(FILE *f, const cli_cmd *c, const void *defaults) {
  fprintf(f, "usage: clkv %s %s\n%s\n\noptions:\n", c->name, c->args, c->about);
  const int col = 26; /* where the help text starts */
  char sp[128], def[96], help[1024];
  for (int i = 0; i < c->n_opts; i++) {
    const cli_opt *o = &c->opts[i];
    if (o->only && strcmp(o->only, c->name)) continue;
    int n = spelling(o, sp, sizeof sp);
    default_text(o, (const unsigned char *)defaults + o->at, def, sizeof def);
    snprintf(help, sizeof help, "%s%s", o->help, def);
    if (n + 4 > col) fprintf(f, "  %s\n%*s", sp, col, "");
    else fprintf(f, "  %-*s", col - 2, sp);
    wrap(f, help, col, col);
  }
  fprintf(f, "  %-*s", col - 2, "-h, --help");
  wrap(f, "print this help", col, col);
  fprintf(f, "  %-*s", col - 2, "    --version");
  wrap(f, "print the version of clkv", col, col);
  if (c->notes) fprintf(f, "\n%s", c->notes);
}

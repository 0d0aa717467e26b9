/* bench_clpeak.h — runs the clpeak program (when installed) on a device and parses its text
 * report into (section, name, value) figures, to print beside clkv's own measurements. */
#ifndef CLKV_BENCH_CLPEAK_H
#define CLKV_BENCH_CLPEAK_H

#include <stddef.h>

#define BENCH_CLPEAK_MAX 64

typedef struct bench_clpeak_figure {
  char section[64]; /* "Global memory bandwidth", "Kernel launch latency", ... */
  char name[64];    /* "float16", "enqueueReadBuffer", ... ("" for one-line sections) */
  double value;     /* in the section's unit (GBPS, GFLOPS, us) */
} bench_clpeak_figure;

typedef struct bench_clpeak {
  int ran;           /* runs of clpeak that exited 0 */
  double seconds;    /* how long it ran, all runs together */
  char note[512];    /* why a run failed or could not be parsed; "" when all is well */
  bench_clpeak_figure fig[BENCH_CLPEAK_MAX];
  int n_fig;
} bench_clpeak;

/* Finds the clpeak executable: $CLKV_CLPEAK if set, else "clpeak" on $PATH. Returns 1 and
 * fills path when found. */
int bench_clpeak_find(char *path, size_t cap);

/* Runs `exe -p platform -d device <tests>` (tests: e.g. "--global-bandwidth --kernel-latency")
 * and adds the figures it prints to out (zero it before the first run). Never fails hard:
 * problems are appended to out->note. */
void bench_clpeak_run(const char *exe, int platform, int device, const char *tests,
                      bench_clpeak *out);

/* Parses clpeak's text report; lines it does not understand are skipped. Returns the number
 * of figures found. */
int bench_clpeak_parse(const char *text, bench_clpeak *out);

/* The figure whose section starts with `section` (case-insensitive) and whose name equals
 * `name` (NULL: the first of the section); NaN if absent. */
double bench_clpeak_get(const bench_clpeak *c, const char *section, const char *name);

#endif /* CLKV_BENCH_CLPEAK_H */

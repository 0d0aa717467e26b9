/* bench_plot.h — line plots to PNG through gnuplot: a data file and a script are written
 * beside the PNG (FILE.dat, FILE.gp) so the figure can be redrawn or restyled by hand. */
#ifndef CLKV_BENCH_PLOT_H
#define CLKV_BENCH_PLOT_H

#include <stddef.h>

typedef struct bench_series {
  const char *title;
  const char *with; /* gnuplot style, e.g. "linespoints pt 7" or "lines dt 2" */
  const double *x, *y;
  int n;
} bench_series;

typedef struct bench_panel {
  const char *title, *xlabel, *ylabel;
  int logx, logy;
  const bench_series *series;
  int n_series;
} bench_panel;

/* Draws the panels side by side into png. Returns 0 on success; 1 when gnuplot is not
 * installed ($CLKV_GNUPLOT, else `gnuplot` on $PATH) and -1 on failure, with msg saying why. */
int bench_plot_png(const char *png, const bench_panel *panels, int n_panels, char *msg,
                   size_t cap);

#endif /* CLKV_BENCH_PLOT_H */

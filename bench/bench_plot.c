/* bench_plot.c — PNG line plots through gnuplot (pngcairo, else the libgd png terminal):
 * the data go to FILE.dat (one block per series), the script to FILE.gp. */
#include "bench_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_gnuplot(char *out, size_t cap) {
  const char *env = getenv("CLKV_GNUPLOT");
  if (env && *env) {
    snprintf(out, cap, "%s", env);
    return 1;
  }
  FILE *p = popen("command -v gnuplot 2>/dev/null", "r");
  if (!p) return 0;
  int ok = fgets(out, (int)cap, p) != NULL;
  pclose(p);
  if (ok) out[strcspn(out, "\r\n")] = 0;
  return ok && out[0];
}

/* Single-quoted for gnuplot: quotes are doubled. */
static void put_quoted(FILE *f, const char *s) {
  fputc('\'', f);
  for (; s && *s; ++s) {
    if (*s == '\'') fputc('\'', f);
    fputc(*s, f);
  }
  fputc('\'', f);
}

static int write_files(const char *dat, const char *gp, const char *png, const char *terminal,
                       const bench_panel *panels, int n_panels) {
  FILE *d = fopen(dat, "w"), *g = fopen(gp, "w");
  if (!d || !g) {
    if (d) fclose(d);
    if (g) fclose(g);
    return -1;
  }
  int block = 0;
  fprintf(g, "# written by clkv_bench; redraw with: gnuplot %s\n", gp);
  fprintf(g, "set terminal %s size %d,520 font ',10'\nset output ", terminal, 560 * n_panels);
  put_quoted(g, png);
  fprintf(g, "\nset multiplot layout 1,%d\nset grid\nset key top left box opaque\n", n_panels);
  for (int p = 0; p < n_panels; ++p) {
    const bench_panel *pa = &panels[p];
    fputs("set title ", g);
    put_quoted(g, pa->title);
    fputs("\nset xlabel ", g);
    put_quoted(g, pa->xlabel);
    fputs("\nset ylabel ", g);
    put_quoted(g, pa->ylabel);
    fprintf(g, "\n%sset logscale x 2\n%sset logscale y 10\nplot ", pa->logx ? "" : "un",
            pa->logy ? "" : "un");
    for (int s = 0; s < pa->n_series; ++s, ++block) {
      const bench_series *se = &pa->series[s];
      fprintf(d, "# %s\n", se->title);
      for (int i = 0; i < se->n; ++i)
        if (isfinite(se->x[i]) && isfinite(se->y[i])) fprintf(d, "%g %g\n", se->x[i], se->y[i]);
      fputs("\n\n", d);
      fprintf(g, "%s", s ? ", \\\n     " : "");
      put_quoted(g, dat);
      fprintf(g, " index %d using 1:2 with %s title ", block, se->with);
      put_quoted(g, se->title);
    }
    fputs("\n", g);
  }
  fputs("unset multiplot\n", g);
  int bad = ferror(d) || ferror(g);
  bad |= fclose(d) != 0;
  bad |= fclose(g) != 0;
  return bad ? -1 : 0;
}

int bench_plot_png(const char *png, const bench_panel *panels, int n_panels, char *msg,
                   size_t cap) {
  char exe[512], dat[1024], gp[1024], cmd[3200];
  size_t len = strlen(png);
  size_t stem = len > 4 && !strcmp(png + len - 4, ".png") ? len - 4 : len;
  snprintf(dat, sizeof dat, "%.*s.dat", (int)stem, png);
  snprintf(gp, sizeof gp, "%.*s.gp", (int)stem, png);
  if (!find_gnuplot(exe, sizeof exe)) {
    snprintf(msg, cap, "gnuplot not found (install gnuplot-nox, or set CLKV_GNUPLOT); no plot");
    return 1;
  }
  static const char *const terminals[] = {"pngcairo", "png"};
  for (int t = 0; t < 2; ++t) {
    if (write_files(dat, gp, png, terminals[t], panels, n_panels)) {
      snprintf(msg, cap, "cannot write %s or %s; check the directory exists and is writable",
               dat, gp);
      return -1;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' 2>/dev/null", exe, gp);
    if (!strchr(exe, '\'') && !strchr(gp, '\'') && system(cmd) == 0) {
      snprintf(msg, cap, "plot written to %s (data %s, script %s, terminal %s)", png, dat, gp,
               terminals[t]);
      return 0;
    }
  }
  snprintf(msg, cap, "gnuplot (%s) failed on %s; run it by hand to see why", exe, gp);
  return -1;
}

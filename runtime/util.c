/* util.c — small host utilities: a monotonic clock and mkdir -p. */
#include "clkv_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double clkv__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Creates one directory; an existing directory is success. */
static int mkdir_one(const char *p) {
  if (mkdir(p, 0755) == 0) return 0;
  if (errno == EEXIST) {
    struct stat sb;
    if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
  }
  return -1;
}

int clkv__mkdirs(const char *path) {
  char buf[4096];
  size_t n;
  if (!path || !*path) return -1;
  n = strlen(path);
  if (n >= sizeof buf) return -1;
  memcpy(buf, path, n + 1);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
  for (char *q = buf + 1; *q; q++) {
    if (*q != '/') continue;
    *q = '\0';
    if (mkdir_one(buf) != 0) return -1;
    *q = '/';
  }
  return mkdir_one(buf);
}

/* test_symbols.c — the layers hold: libclkv.so exports exactly the functions declared with
 * CLKV_API in include/clkv.h (nm -D --defined-only), and the CLI's sources include no
 * internal header (it is built with only include/ on its path). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAMES 512

typedef struct names {
  char *v[MAX_NAMES];
  int n;
} names;

static void add(names *s, const char *name, size_t len) {
  cr_assert_lt(s->n, MAX_NAMES, "more than %d names", MAX_NAMES);
  s->v[s->n] = strndup(name, len);
  s->n++;
}

static int has(const names *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->v[i], name)) return 1;
  return 0;
}

/* Function names declared CLKV_API in the header: "CLKV_API <type> <name>(" */
static void header_names(names *out) {
  FILE *f = fopen(CLKV_SOURCE_DIR "/include/clkv.h", "r");
  cr_assert(f, "cannot open include/clkv.h");
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "CLKV_API ", 9)) continue;
    char *paren = strchr(line, '(');
    cr_assert(paren, "CLKV_API line without a '(': %s", line);
    char *end = paren;
    while (end > line && isspace((unsigned char)end[-1])) end--;
    char *start = end;
    while (start > line && (isalnum((unsigned char)start[-1]) || start[-1] == '_')) start--;
    add(out, start, (size_t)(end - start));
  }
  fclose(f);
}

/* Defined dynamic symbols of the shared library (functions and data). */
static void exported_names(names *out) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", CLKV_SHARED_LIB);
  FILE *p = popen(cmd, "r");
  cr_assert(p, "cannot run nm");
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    char addr[64], kind[8], name[512];
    if (sscanf(line, "%63s %7s %511s", addr, kind, name) != 3) continue;
    add(out, name, strlen(name));
  }
  cr_assert_eq(pclose(p), 0, "nm -D failed on %s", CLKV_SHARED_LIB);
}

Test(symbols, shared_library_exports_exactly_the_public_api) {
  names hdr = {0}, lib = {0};
  header_names(&hdr);
  exported_names(&lib);
  cr_assert_geq(hdr.n, 30, "found only %d CLKV_API declarations in clkv.h", hdr.n);
  for (int i = 0; i < lib.n; i++) {
    cr_expect(!strncmp(lib.v[i], "clkv_", 5) && strncmp(lib.v[i], "clkv__", 6),
              "libclkv.so exports %s: internal names are clkv__ and hidden", lib.v[i]);
    cr_expect(has(&hdr, lib.v[i]), "libclkv.so exports %s, which clkv.h does not declare CLKV_API",
              lib.v[i]);
  }
  for (int i = 0; i < hdr.n; i++)
    cr_expect(has(&lib, hdr.v[i]), "clkv.h declares %s but libclkv.so does not export it", hdr.v[i]);
}

Test(symbols, cli_includes_only_the_public_header) {
  FILE *p = popen("grep -n '#include \"' " CLKV_SOURCE_DIR "/cli/*.c " CLKV_SOURCE_DIR "/cli/*.h", "r");
  cr_assert(p, "cannot run grep");
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, p)) {
    const char *q = strstr(line, "#include \"") + 10;
    cr_expect(!strncmp(q, "clkv.h\"", 7) || !strncmp(q, "cli.h\"", 6) || !strncmp(q, "serve.h\"", 8),
              "the CLI includes something besides clkv.h and its own cli.h: %s", line);
    n++;
  }
  pclose(p);
  cr_assert_gt(n, 0, "no #include found in cli/");
}

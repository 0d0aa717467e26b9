/* status.c — names and messages of clkv_status (driven by CLKV_STATUS_MAP) and clkv__err,
 * which fills a clkv_error. */
#include "clkv_internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *clkv_status_name(clkv_status s) {
  switch (s) {
#define CLKV__STATUS_NAME(name, value, msg) \
  case CLKV_##name:                         \
    return "CLKV_" #name;
    CLKV_STATUS_MAP(CLKV__STATUS_NAME)
#undef CLKV__STATUS_NAME
  }
  return "CLKV_UNKNOWN_STATUS";
}

const char *clkv_status_str(clkv_status s) {
  switch (s) {
#define CLKV__STATUS_STR(name, value, msg) \
  case CLKV_##name:                        \
    return msg;
    CLKV_STATUS_MAP(CLKV__STATUS_STR)
#undef CLKV__STATUS_STR
  }
  return "unknown status code";
}

clkv_status clkv__err(clkv_error *err, clkv_status s, const char *fmt, ...) {
  if (!err) return s;
  err->status = s;
  err->message[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return s;
}

/* cli_util.h — what the CLI's files share: default model path, JSON string output,
 * option parsing helpers. The CLI uses only the public API (include/clkv.h). */
#ifndef CLKV_CLI_UTIL_H
#define CLKV_CLI_UTIL_H

#include "clkv.h"

#include <stdio.h>

#define CLKV_DEFAULT_MODEL "SmolLM2-135M-Instruct.Q4_1.gguf"

/* -m value, else $CLKV_MODEL, else models/<default>, else <cache>/<default>. */
const char *cli_model_path(const char *given);
void cli_json_str(FILE *f, const char *s);
/* Parses a number option; prints an error and returns 0 when it is not one. */
int cli_parse_int(const char *opt, const char *v, long lo, long hi, long *out);
int cli_parse_float(const char *opt, const char *v, double lo, double hi, double *out);
int cli_devices(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_generate(int argc, char **argv, int chat);
int cli_tune(int argc, char **argv);
int cli_die(clkv_status st, const char *msg);

#endif

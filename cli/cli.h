/* cli.h — what the clkv command's files share: subcommands described by tables of options
 * (parsed, and printed by --help, in cli/opts.c), the default model path, JSON strings.
 * The CLI uses only the public API (include/clkv.h). */
#ifndef CLKV_CLI_H
#define CLKV_CLI_H

#include "clkv.h"

#include <stddef.h>
#include <stdio.h>

#define CLKV_DEFAULT_MODEL "SmolLM2-135M-Instruct.Q4_1.gguf"

/* How an option's value is read, and what it is stored into. */
typedef enum cli_kind {
  CLI_FLAG,   /* no value: sets an int to 1 */
  CLI_STR,    /* a string: a const char * into argv */
  CLI_INT,    /* a whole number in [lo, hi], or one of choices: an int or 64-bit integer */
  CLI_NUM,    /* a number in [lo, hi]: a float or a double */
  CLI_CHOICE, /* one of choices: its index, into an int-sized enum */
  CLI_CALL    /* call(option, value, where) stores it: 1, or 0 after saying what is wrong */
} cli_kind;

/* One option: its spellings, its value, where the value goes (an offset into the
 * subcommand's options struct, which holds the defaults before parsing) and its help. */
typedef struct cli_opt {
  const char *flag;  /* short spelling ("-m"), or NULL */
  const char *name;  /* long spelling ("--model"), or NULL */
  cli_kind kind;
  const char *value; /* the value's name in --help ("N"); NULL: the choices, or none */
  size_t at, size;   /* set with CLI_AT(type, field) */
  double lo, hi;     /* CLI_INT, CLI_NUM: the range taken */
  const char *const *choices; /* CLI_CHOICE, CLI_INT (optional): NULL-terminated */
  int (*call)(const char *opt, const char *v, void *where);
  const char *help;  /* --help adds "[default: X]" for non-zero numbers, choices, strings */
  const char *only;  /* the subcommand that takes it, where several share a table; or NULL */
} cli_opt;

#define CLI_AT(type, field) .at = offsetof(type, field), .size = sizeof(((type *)0)->field)
#define CLI_NO_POSITIONAL ((size_t)-1)

/* A subcommand: what `clkv --help` says of it, its options, and the function that runs it. */
typedef struct cli_cmd {
  const char *name;     /* "generate" */
  const char *args;     /* after "usage: clkv <name> " in --help: "[options] [MODEL]" */
  const char *about;    /* one line */
  const cli_opt *opts;  /* NULL: run parses argv itself (bench passes it on) */
  int n_opts;
  size_t size;          /* of the options struct */
  size_t positional;    /* offset of a const char * taking one bare argument, or
                           CLI_NO_POSITIONAL */
  int n_positional;     /* > 1: that many consecutive const char * take bare arguments */
  const char *notes;    /* printed after the options by --help, or NULL */
  int (*run)(const struct cli_cmd *c, int argc, char **argv); /* argv[0] is the name */
} cli_cmd;

/* Parses argv[1..argc) by c's table into opts (which holds the defaults). Returns -1 to go
 * on, else the exit status: 0 after --help (printed to stdout), 2 after an error (said on
 * stderr, with the usage after an unknown option). */
int cli_parse(const cli_cmd *c, int argc, char **argv, void *opts);
/* --help text of c; defaults is an options struct holding the default values. */
void cli_usage(FILE *f, const cli_cmd *c, const void *defaults);

extern const cli_cmd cli_devices_cmd, cli_inspect_cmd, cli_generate_cmd, cli_chat_cmd,
    cli_tune_cmd, cli_quantize_cmd;

/* -m value, else $CLKV_MODEL, else models/<default>, else <cache>/<default>. */
const char *cli_model_path(const char *given);
void cli_json_str(FILE *f, const char *s);
/* Prints "clkv: error: msg (CLKV_ERR_...)" and returns the exit status 1. */
int cli_die(clkv_status st, const char *msg);

#endif

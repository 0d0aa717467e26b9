/* cli.h — what the clkv command's files share: subcommands described by tables of options
 * (parsed, and printed by --help, in cli/opts.c), the default model path, JSON strings,
 * prompt sources and Ctrl-C (cli/input.c), chat's conversation (cli/convo.c).
 * The CLI uses only the public API (include/clkv.h). */
#ifndef CLKV_CLI_H
#define CLKV_CLI_H

#include "clkv.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
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
  const char *alias; /* another spelling, as llama.cpp's tools name it ("--ctx-size"), or NULL */
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
 * on, else the exit status: 0 after --help or --version (printed to stdout), 2 after an
 * error (said on stderr; an unknown option with the nearest known one and the usage). */
int cli_parse(const cli_cmd *c, int argc, char **argv, void *opts);
/* --help text of c; defaults is an options struct holding the default values. */
void cli_usage(FILE *f, const cli_cmd *c, const void *defaults);

/* The options of generate and chat (cli/generate.c); serve embeds them to reuse the
 * model, KV and sampling rows of their table. */
typedef struct stop_list {
  const char *v[9]; /* NULL-terminated: 8 at most */
  int n;
} stop_list;

typedef struct gen_opts {
  const char *model, *prompt, *system, *device, *file, *batch_file;
  const char *draft_model; /* --draft-model: speculative decoding's draft */
  int chat, ids, stats, json, no_prefix, parallel;
  int64_t seed; /* -1: random */
  stop_list stops;
  clkv_model_params mp;   /* --ctx --kv-block --chunk --kv-type */
  clkv_context_params cp; /* --kv-evict --kv-host-blocks --kv-mem --prefix-cache-dir */
  clkv_gen_params gp;     /* -n and sampling */
} gen_opts;

extern const cli_cmd cli_devices_cmd, cli_inspect_cmd, cli_generate_cmd, cli_chat_cmd,
    cli_tune_cmd, cli_serve_cmd, cli_perplexity_cmd, cli_quantize_cmd;

/* -m value, else $CLKV_MODEL, else models/<default>, else <cache>/<default>. */
const char *cli_model_path(const char *given);
/* cli/json.c: n bytes of s made valid UTF-8 (bad bytes → U+FFFD), malloc'd (caller frees),
 * NUL-ended, its length in *out_len; NULL when out of memory. */
char *cli_utf8_valid(const char *s, size_t n, size_t *out_len);
/* A JSON string of n bytes of text, made valid UTF-8 the same way (new reference). */
json_t *cli_json_text(const char *s, size_t n);
/* Writes j compactly to f and releases it (NULL: writes nothing, returns -1). */
int cli_json_write(FILE *f, json_t *j);
void cli_json_str(FILE *f, const char *s); /* s as a JSON string, through cli_json_text */
void cli_json_str(FILE *f, const char *s);
/* The prompt of generate (need) or chat's one turn: *prompt as given, the file's text (-f),
 * or standard input's (-p -, or piped with neither given). Returns -1 to go on (the text in
 * *prompt; *owned, which the caller frees, holds it when read), else the exit status after
 * saying what is wrong. */
int cli_prompt(const char **prompt, const char *file, int need, char **owned);
/* The sampler seed: given (>= 0), else a random one to print so a run can be repeated. */
uint64_t cli_seed(int64_t given);
/* "512M", "2G", "65536K", "1048576" → *bytes; "0.5" → *frac in (0, 1]. 1, or 0 if neither. */
int cli_parse_size(const char *v, uint64_t *bytes, double *frac);
/* Ctrl-C: after cli_catch_sigint, the first SIGINT sets cli_interrupted (generation stops at
 * its next token: the text so far, stats and JSON are still printed); the second exits at
 * once with status 130. */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_sigint(void);
/* chat's conversation (cli/convo.c): the messages the chat template renders, the oldest
 * dropped when the context fills, and its slash commands (/help /reset /system /stats). */
typedef struct convo {
  clkv_chat_message msgs[256]; /* the system message (if any) first, then user/assistant */
  size_t n;
  char *owned[256]; /* the texts of the user and assistant messages, oldest first */
  int n_owned;
  char *system;     /* the system message set by /system, or NULL */
} convo;

/* A conversation with the system message (not copied; NULL: none). */
void convo_init(convo *cv, const char *system);
void convo_free(convo *cv);
/* Adds a message whose text it takes (freed with the conversation): 0, or -1 when out of
 * memory (text is freed). The oldest exchange goes first when there is no room left. */
int convo_add(convo *cv, const char *role, char *text);
/* Drops the oldest exchange (a user message and its reply; the system message stays):
 * 1, or 0 when only the newest message is left. */
int convo_drop_oldest(convo *cv);

/* What a line typed in chat asks for. */
typedef enum chat_action {
  CHAT_MESSAGE, /* not a command: the user's message */
  CHAT_DONE,    /* a command it carried out (said on stdout) */
  CHAT_STATS,   /* /stats: the caller prints the last reply's statistics */
  CHAT_QUIT     /* /quit or /exit */
} chat_action;
/* Carries out line's command on cv (/help, /reset, /system TEXT) or says what it wants. */
chat_action convo_command(convo *cv, const char *line);

/* Prints "clkv: error: msg (CLKV_ERR_...)" and returns the exit status 1. */
int cli_die(clkv_status st, const char *msg);

#endif

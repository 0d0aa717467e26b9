/* convo.c — chat's conversation and slash commands (declared in cli.h). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

void convo_init(convo *cv, const char *system) {
  *cv = (convo){.n = 0};
  if (system) cv->msgs[cv->n++] = (clkv_chat_message){"system", system};
}

void convo_free(convo *cv) {
  for (int i = 0; i < cv->n_owned; i++) free(cv->owned[i]);
  free(cv->system);
  cv->n_owned = 0;
  cv->n = 0;
  cv->system = NULL;
}

int convo_drop_oldest(convo *cv) {
  const size_t first = cv->n - (size_t)cv->n_owned; /* the system message, if any */
  const int k = cv->n_owned >= 3 ? 2 : 0;           /* keep the newest user message */
  if (!k) return 0;
  for (int i = 0; i < k; i++) free(cv->owned[i]);
  memmove(cv->owned, cv->owned + k, sizeof cv->owned[0] * (size_t)(cv->n_owned - k));
  memmove(cv->msgs + first, cv->msgs + first + k, sizeof cv->msgs[0] * (cv->n - first - k));
  cv->n_owned -= k;
  cv->n -= (size_t)k;
  return 1;
}

int convo_add(convo *cv, const char *role, char *text) {
  if (!text) return -1;
  if (cv->n == N_OF(cv->msgs) || cv->n_owned == (int)N_OF(cv->owned)) convo_drop_oldest(cv);
  cv->owned[cv->n_owned++] = text;
  cv->msgs[cv->n++] = (clkv_chat_message){role, text};
  return 0;
}

/* The user's and assistant's messages go; the system message stays. */
static void convo_reset(convo *cv) {
  for (int i = 0; i < cv->n_owned; i++) free(cv->owned[i]);
  cv->n -= (size_t)cv->n_owned;
  cv->n_owned = 0;
}

/* A new system message, and a conversation started over under it. */
static int convo_set_system(convo *cv, const char *text) {
  char *s = strdup(text);
  if (!s) return -1;
  convo_reset(cv);
  free(cv->system);
  cv->system = s;
  cv->msgs[0] = (clkv_chat_message){"system", s};
  cv->n = 1;
  return 0;
}

static const char HELP[] =
    "/help         this list\n"
    "/reset        forget the conversation (the system message stays)\n"
    "/system TEXT  a new system message; the conversation starts over\n"
    "/stats        timings and KV cache of the last reply\n"
    "/quit, /exit  end the chat (so do Ctrl-D and Ctrl-C at the prompt)\n"
    "Ctrl-C during a reply stops it; twice exits.\n";

chat_action convo_command(convo *cv, const char *line) {
  if (line[0] != '/' || line[1] == '/') return CHAT_MESSAGE; /* "//": a message with a '/' */
  if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) return CHAT_QUIT;
  if (!strcmp(line, "/stats")) return CHAT_STATS;
  if (!strcmp(line, "/help")) {
    fputs(HELP, stdout);
  } else if (!strcmp(line, "/reset")) {
    convo_reset(cv);
    puts("(conversation forgotten)");
  } else if (!strncmp(line, "/system ", 8) && line[8]) {
    puts(convo_set_system(cv, line + 8) ? "(out of memory: system message unchanged)"
                                        : "(new system message; conversation started over)");
  } else {
    printf("unknown command %s; /help lists them (start a message with // to send a '/')\n",
           line);
  }
  return CHAT_DONE;
}

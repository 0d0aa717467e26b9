/* convo.h — chat's conversation (the messages the chat template renders, the oldest dropped
 * when the context fills) and its slash commands (/help /reset /system /stats /quit). */
#ifndef CLKV_CLI_CONVO_H
#define CLKV_CLI_CONVO_H

#include "clkv.h"

#include <stddef.h>

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

#endif

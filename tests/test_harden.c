/* test_harden.c — the clkv command under a user's mistakes and interruptions (issue 15):
 * Ctrl-C during generate and chat, models that are not regular files, launch shapes beyond
 * the device's limits, a full context, messages that say what to do, and what llama.cpp
 * users expect. Runs the built clkv on the default model ($CLKV_MODEL). */
#define _XOPEN_SOURCE 700 /* posix_openpt, ptsname */
#define _DEFAULT_SOURCE   /* mkdtemp, symlink */
#include "test_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};
  while (nanosleep(&t, &t) && errno == EINTR) {}
}

/* A clkv process with its stdin and stdout on pipes and its stderr in a file. */
typedef struct child {
  pid_t pid;
  int in, out;
  char err_path[64];
  char buf[65536]; /* stdout so far */
  size_t len;
} child;

static void clkv_path(char *exe, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", exe, cap - 1);
  cr_assert(n > 0);
  exe[n] = 0;
  strcpy(strrchr(exe, '/') + 1, "clkv");
}

/* Starts clkv with argv (NULL-terminated, argv[0] unused); its stdin is the pipe c->in, or
 * the file tty when not NULL (a terminal). */
static void start_on(child *c, char *const argv[], const char *tty) {
  int in[2], out[2];
  cr_assert(!pipe(in) && !pipe(out));
  snprintf(c->err_path, sizeof c->err_path, "/tmp/clkv-harden-err-XXXXXX");
  int efd = mkstemp(c->err_path);
  cr_assert(efd >= 0);
  char exe[PATH_MAX];
  clkv_path(exe, sizeof exe);
  c->len = 0;
  c->pid = fork();
  cr_assert(c->pid >= 0);
  if (c->pid == 0) {
    dup2(tty ? open(tty, O_RDWR) : in[0], 0);
    dup2(out[1], 1);
    dup2(efd, 2);
    close(in[1]);
    close(out[0]);
    execv(exe, argv);
    _exit(127);
  }
  close(efd);
  close(in[0]);
  close(out[1]);
  c->in = in[1];
  c->out = out[0];
}

static void start(child *c, char *const argv[]) { start_on(c, argv, NULL); }

/* Reads stdout until it holds want (NULL: until EOF) or timeout_s pass; 1 if found. */
static int read_until(child *c, const char *want, double timeout_s) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    c->buf[c->len] = 0;
    if (want && strstr(c->buf, want)) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double left = timeout_s - (double)(t.tv_sec - t0.tv_sec) - (double)(t.tv_nsec - t0.tv_nsec) * 1e-9;
    if (left <= 0) return 0;
    struct pollfd p = {.fd = c->out, .events = POLLIN};
    if (poll(&p, 1, (int)(left * 1000) + 1) <= 0) continue;
    ssize_t n = read(c->out, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !want;
    c->len += (size_t)n;
  }
}

/* Waits for the child (at most timeout_s) and returns its exit status (128 + signal); its
 * stderr into err. */
static int finish(child *c, char *err, size_t cap, double timeout_s) {
  int st = 0;
  for (int i = 0; i < (int)(timeout_s * 10); i++) {
    if (waitpid(c->pid, &st, WNOHANG) == c->pid) goto done;
    sleep_ms(100);
  }
  kill(c->pid, SIGKILL);
  waitpid(c->pid, &st, 0);
  cr_assert(0, "clkv did not exit within %g s", timeout_s);
done:
  read_until(c, NULL, 2);
  close(c->in);
  close(c->out);
  FILE *f = fopen(c->err_path, "r");
  size_t n = f ? fread(err, 1, cap - 1, f) : 0;
  err[n] = 0;
  if (f) fclose(f);
  unlink(c->err_path);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *model(void) {
  const char *m = getenv("CLKV_MODEL");
  cr_assert(m && *m, "set CLKV_MODEL");
  return m;
}

/* Defect 2: the first Ctrl-C stops generate cleanly: the text so far, a trailing newline,
 * [stats], rc 130. */
Test(harden, sigint_stops_generate_cleanly, .timeout = 120) {
  child c;
  char *argv[] = {"clkv", "generate", "-m", (char *)model(), "-p", "1, 2, 3, 4, 5,", "--temp",
                  "0", "-n", "4000", "--stats", NULL};
  start(&c, argv);
  cr_assert(read_until(&c, "9", 60), "no text: %s", c.buf);
  kill(c.pid, SIGINT);
  char err[8192];
  int rc = finish(&c, err, sizeof err, 30);
  cr_assert_eq(rc, 130, "rc %d; stderr: %s", rc, err);
  cr_assert(c.len > 0 && c.buf[c.len - 1] == '\n', "no trailing newline: %s", c.buf);
  cr_assert(strstr(err, "[stats]") && strstr(err, "interrupted"), "%s", err);
}

/* ... and with --json, stdout is still one whole JSON object, stop_reason cancelled. */
Test(harden, sigint_keeps_json_whole, .timeout = 120) {
  child c;
  char *argv[] = {"clkv", "generate", "-m", (char *)model(), "-p", "1, 2, 3, 4, 5,", "--temp",
                  "0", "-n", "4000", "--json", NULL};
  start(&c, argv);
  sleep_ms(3000); /* model load and some tokens; --json prints at the end */
  kill(c.pid, SIGINT);
  char err[8192];
  int rc = finish(&c, err, sizeof err, 30);
  cr_assert_eq(rc, 130, "rc %d; stderr: %s", rc, err);
  cr_assert(c.len > 2 && c.buf[0] == '{' && !strcmp(c.buf + c.len - 2, "}\n"), "%s", c.buf);
  cr_assert(strstr(c.buf, "\"stop_reason\":3"), "%s", c.buf);
}

/* A chat whose first reply is long and under way. */
static void start_long_chat_reply(child *c) {
  char *argv[] = {"clkv", "chat", "-m", (char *)model(), "--temp", "0", "-n", "4000", NULL};
  start(c, argv);
  const char *msg = "Count from 1 to 5000, separated by commas.\n";
  cr_assert(write(c->in, msg, strlen(msg)) == (ssize_t)strlen(msg));
  cr_assert(read_until(c, "9", 60), "no reply: %s", c->buf);
}

/* In chat the first Ctrl-C stops only the reply; the chat goes on. */
Test(harden, sigint_in_chat_stops_only_the_reply, .timeout = 120) {
  child c;
  start_long_chat_reply(&c);
  kill(c.pid, SIGINT);
  size_t at = c.len;
  cr_assert(read_until(&c, "\n> ", 30) && strstr(c.buf + (at > 3 ? at - 3 : 0), "\n> "),
            "no new prompt after Ctrl-C: %s", c.buf);
  cr_assert(write(c.in, "/quit\n", 6) == 6);
  char err[8192];
  int rc = finish(&c, err, sizeof err, 30);
  cr_assert_eq(rc, 0, "rc %d; stderr: %s", rc, err);
}

/* A second Ctrl-C exits at once, even in chat with its input still open. */
Test(harden, second_sigint_exits_at_once, .timeout = 120) {
  child c;
  start_long_chat_reply(&c);
  kill(c.pid, SIGINT);
  sleep_ms(100); /* two signals sent together may arrive as one */
  kill(c.pid, SIGINT);
  char err[8192];
  int rc = finish(&c, err, sizeof err, 10);
  cr_assert_eq(rc, 130, "rc %d; stderr: %s", rc, err);
}

/* Defect 3: launch shapes beyond the device's limits fail before any build, naming the value
 * and its file:line (a profile in $CLKV_PLATFORMS_DIR) or its environment variable. */
Test(harden, launch_shapes_checked_against_the_device, .timeout = 120) {
  char dir[] = "/tmp/clkv-shapes-XXXXXX", path[64], args[512], out[8192];
  cr_assert(mkdtemp(dir));
  static const char *const bad[] = {"decode.rows = 4096", "prefill.tt = 4096"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/pocl.profile", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "[arch pocl-cpu]\ndescription = too big\n%s\n", bad[i]);
    fclose(f);
    setenv("CLKV_PLATFORMS_DIR", dir, 1);
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 1", model());
    int rc = tu_run_cli(args, out, sizeof out);
    char want[160];
    snprintf(want, sizeof want, "%s (%s:3)", bad[i], path);
    cr_assert(rc == 1 && strstr(out, want) && strstr(out, "lower it"), "rc %d: %s", rc, out);
    unsetenv("CLKV_PLATFORMS_DIR");
  }
  setenv("CLKV_MV_TT", "4096", 1);
  snprintf(args, sizeof args, "generate -m '%s' -p hi -n 1", model());
  int rc = tu_run_cli(args, out, sizeof out);
  /* refused for its private memory (the dot per row and token) or, with prefill.form 2 (the
   * outer product, PoCL's default), for the local memory of its token tile */
  cr_assert(rc == 1 && strstr(out, "prefill.tt = 4096 (environment CLKV_MV_TT)") &&
                (strstr(out, "private") || strstr(out, "local memory")) && strstr(out, "lower it"),
            "rc %d: %s", rc, out);
  unsetenv("CLKV_MV_TT");
  unlink(path);
  rmdir(dir);
}

/* Defect 4: a FIFO (or any non-regular file) is refused at once, not waited on. */
Test(harden, fifo_is_not_a_model, .timeout = 60) {
  char dir[] = "/tmp/clkv-fifo-XXXXXX", fifo[64], args[256], out[8192];
  cr_assert(mkdtemp(dir));
  snprintf(fifo, sizeof fifo, "%s/fifo.gguf", dir);
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  static const char *const cmds[] = {"inspect '%s'", "generate -m '%s' -p hi -n 1",
                                     "tune -m '%s' --budget 1", "inspect '%s'"};
  for (int i = 0; i < 4; i++) {
    snprintf(args, sizeof args, cmds[i], i < 3 ? fifo : dir);
    int rc = tu_run_cli(args, out, sizeof out);
    cr_assert(rc == 1 && strstr(out, "not a regular file"), "%s: rc %d: %s", args, rc, out);
  }
  unlink(fifo);
  rmdir(dir);
}

/* A file of lines for a command's standard input. */
static void write_lines(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

/* Defect 6: chat keeps going when the history fills the context: the oldest exchanges go
 * (said on stderr), every message gets a reply; a reply cut by the context says so. */
Test(harden, chat_drops_old_turns_when_the_context_fills, .timeout = 300) {
  char in[] = "/tmp/clkv-chat-XXXXXX", args[512], out[32768];
  int fd = mkstemp(in);
  cr_assert(fd >= 0);
  close(fd);
  write_lines(in, "Tell me about Paris.\nTell me about Rome.\nTell me about Berlin.\n"
                  "Tell me about Madrid.\n");
  snprintf(args, sizeof args, "chat -m '%s' --ctx 160 -n 60 --temp 0 --system 'Be brief.' < '%s'",
           model(), in);
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "dropped the 1 oldest exchange (the system message stays)"),
            "rc %d: %s", rc, out);
  int prompts = 0;
  for (const char *p = out; (p = strstr(p, "> ")); p++) prompts++;
  cr_assert(prompts >= 5, "%d prompts: %s", prompts, out);
  /* a reply longer than the context allows: cut, said, and the chat goes on */
  write_lines(in, "Write a long story about a dragon.\nAnd another one.\n");
  snprintf(args, sizeof args, "chat -m '%s' --ctx 96 -n 500 --temp 0 < '%s'", model(), in);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "the reply was cut: the context (96 tokens) is full"),
            "rc %d: %s", rc, out);
  unlink(in);
}

/* Defect 7: generation stopped by a full context has its own stop reason, and warns. */
Test(harden, full_context_is_its_own_stop_reason, .timeout = 120) {
  char args[512], out[32768];
  snprintf(args, sizeof args, "generate -m '%s' -p 'Once upon a time' --ctx 24 -n 100 --temp 0 "
           "--json", model());
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "\"stop_reason\":4") &&
            strstr(out, "generation stopped: the context (24 tokens) is full"), "rc %d: %s", rc,
            out);
  cr_assert_str_eq(clkv_stop_reason_name(CLKV_STOP_CONTEXT), "context");
}

/* Defect 7: a warning comes after the generated text's newline, never mid-line, and names no
 * C struct field (the prefix-cache directory cannot be made here). */
Test(harden, warnings_never_mid_line, .timeout = 120) {
  char args[512], out[16384];
  snprintf(args, sizeof args, "generate -m '%s' -p hi -n 4 --temp 0 --prefix-cache-dir "
           "/proc/self/no/such/dir", model());
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(!strstr(out, "clkv_context_params") && !strstr(out, "prefix_cache_dir"), "%s", out);
  for (const char *p = out; (p = strstr(p, "clkv:")); p++)
    cr_assert(p == out || p[-1] == '\n', "mid-line: %s", out);
}

/* Defect 7: errors that say what to do: the host tier's size is --kv-host-blocks; an
 * unreadable cache directory fails `cache clear`; PoCL without a writable cache says so. */
Test(harden, advice_names_the_right_knob, .timeout = 120) {
  char args[512], out[16384], dir[] = "/tmp/clkv-cc-XXXXXX", link[64];
  snprintf(args, sizeof args, "generate -m '%s' -p hi -n 1 --kv-host-blocks 1048576", model());
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 1 && strstr(out, "lower --kv-host-blocks") && !strstr(out, "--kv-mem"),
            "rc %d: %s", rc, out);
  cr_assert(mkdtemp(dir));
  snprintf(link, sizeof link, "%s/programs", dir); /* a link to itself: unreadable, even by root */
  cr_assert_eq(symlink("programs", link), 0);
  snprintf(args, sizeof args, "cache clear");
  setenv("CLKV_CACHE_DIR", dir, 1);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 1 && strstr(out, "cannot read") && !strstr(out, "removed"), "rc %d: %s", rc, out);
  unlink(link);
  rmdir(dir);
  setenv("HOME", "/proc/no-home", 1);
  unsetenv("XDG_CACHE_HOME");
  unsetenv("POCL_CACHE_DIR");
  rc = tu_run_cli("devices", out, sizeof out);
  cr_assert(rc != 0 || strstr(out, "[0]"), "rc %d: %s", rc, out);
  if (rc) /* PoCL alone: it creates no device without a writable cache */
    cr_assert(strstr(out, "needs a writable cache directory"), "%s", out);
}

/* Defect 7: options are not dropped without a word: a 9th --stop, --system without --chat,
 * --profile with devices --json, --ctx beyond the model's context. */
Test(harden, options_never_dropped_silently, .timeout = 120) {
  char args[1024], out[65536];
  int n = snprintf(args, sizeof args, "generate -m '%s' -p hi", model());
  for (int i = 1; i <= 9; i++) n += snprintf(args + n, sizeof args - (size_t)n, " --stop s%d", i);
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--stop takes 8 strings at most; 's9' is one more"), "rc %d: %s",
            rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hi --system 'Be brief.'", model());
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "add --chat"), "rc %d: %s", rc, out);
  rc = tu_run_cli("devices --json --profile", out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "\"profile_text\":\"# platform profile"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hi -n 1 --ctx 100000", model());
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "--ctx 100000 is more than the model's context: capped to"),
            "rc %d: %s", rc, out);
}

/* Runs `clkv generate -m MODEL` (no prompt) with a terminal as its standard input. */
static int generate_on_terminal(char *err, size_t cap) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  cr_assert(master >= 0 && !grantpt(master) && !unlockpt(master));
  const char *tty = ptsname(master);
  cr_assert(tty);
  char *argv[] = {"clkv", "generate", "-m", (char *)model(), NULL};
  child c;
  start_on(&c, argv, tty);
  int rc = finish(&c, err, cap, 30);
  close(master);
  return rc;
}

/* What llama.cpp users expect: the prompt from -f FILE, from -p - or piped standard input;
 * none on a terminal is an error at once (no default prompt). */
Test(harden, prompt_from_file_or_stdin, .timeout = 120) {
  char file[] = "/tmp/clkv-prompt-XXXXXX", args[512], want[4096], out[4096];
  int fd = mkstemp(file);
  cr_assert(fd >= 0);
  close(fd);
  write_lines(file, "The capital of France is\n");
  snprintf(args, sizeof args, "generate -m '%s' -p 'The capital of France is' -n 4 --temp 0 --ids",
           model());
  cr_assert_eq(tu_run_cli(args, want, sizeof want), 0, "%s", want);
  static const char *const ways[] = {"-f '%s'", "--file '%s'", "-p - < '%s'", "< '%s'"};
  for (int i = 0; i < 4; i++) {
    char way[300];
    snprintf(way, sizeof way, ways[i], file);
    snprintf(args, sizeof args, "generate -m '%s' -n 4 --temp 0 --ids %s", model(), way);
    int rc = tu_run_cli(args, out, sizeof out);
    cr_assert(rc == 0 && !strcmp(out, want), "%s: rc %d: %s\nwanted: %s", way, rc, out, want);
  }
  snprintf(args, sizeof args, "generate -m '%s' < /dev/null", model());
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "standard input was empty"), "rc %d: %s", rc, out);
  rc = generate_on_terminal(out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "no prompt: give -p TEXT, -f FILE"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hi -f '%s'", model(), file);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "not both"), "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -p hi --batch-file '%s'", model(), file);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "--batch-file reads the prompts from its file: drop -p"),
            "rc %d: %s", rc, out);
  unlink(file);
}

/* The "seed" of a --json line. */
static long long json_seed(const char *out) {
  const char *p = strstr(out, "\"seed\":");
  cr_assert(p, "no seed in %s", out);
  return atoll(p + 7);
}

/* A random seed by default, printed by --json and --stats; -s/--seed repeats a run; -1 is
 * accepted (random). */
Test(harden, random_seed_printed_and_repeatable, .timeout = 120) {
  char args[512], a[8192], b[8192];
  snprintf(args, sizeof args, "generate -m '%s' -p 'Once upon a time' -n 8 --temp 1 --json",
           model());
  cr_assert_eq(tu_run_cli(args, a, sizeof a), 0, "%s", a);
  cr_assert_eq(tu_run_cli(args, b, sizeof b), 0, "%s", b);
  cr_assert_neq(json_seed(a), json_seed(b), "the same seed twice: %s", a);
  snprintf(args, sizeof args, "generate -m '%s' -p 'Once upon a time' -n 8 --temp 1 --json -s %lld",
           model(), json_seed(a));
  cr_assert_eq(tu_run_cli(args, b, sizeof b), 0, "%s", b);
  const char *ia = strstr(a, "\"ids\":["), *ib = strstr(b, "\"ids\":[");
  cr_assert(ia && ib && !strncmp(ia, ib, strcspn(ia, "]")), "a: %s\nb: %s", a, b);
  snprintf(args, sizeof args, "generate -m '%s' -p hi -n 2 --seed -1 --stats", model());
  int rc = tu_run_cli(args, b, sizeof b);
  cr_assert(rc == 0 && strstr(b, ", seed "), "rc %d: %s", rc, b);
}

/* llama.cpp's spellings, --version and --help everywhere, a hint for a mistyped option. */
Test(harden, llama_cpp_spellings, .timeout = 120) {
  char args[512], out[16384];
  snprintf(args, sizeof args, "generate -m '%s' -p hi -c 64 --ctx-size 64 --n-predict 2 -s 1 "
           "-r xyz --reverse-prompt zyx --system-prompt 'Be brief.' --chat", model());
  int rc = tu_run_cli(args, out, sizeof out);
  cr_assert_eq(rc, 0, "%s", out);
  static const char *const cmds[] = {"devices", "inspect", "generate", "chat", "tune", "cache", NULL};
  for (int i = 0; cmds[i]; i++) {
    snprintf(args, sizeof args, "%s --version", cmds[i]);
    rc = tu_run_cli(args, out, sizeof out);
    cr_assert(rc == 0 && !strncmp(out, "clkv ", 5), "%s: rc %d: %s", args, rc, out);
    snprintf(args, sizeof args, "%s --help", cmds[i]);
    rc = tu_run_cli(args, out, sizeof out);
    cr_assert(rc == 0 && strstr(out, "usage: clkv"), "%s: rc %d: %s", args, rc, out);
  }
  rc = tu_run_cli("generate --ctx-sise 64", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "unknown option '--ctx-sise'; did you mean --ctx-size?"),
            "rc %d: %s", rc, out);
  rc = tu_run_cli("chat --frobnicate", out, sizeof out);
  cr_assert(rc == 2 && strstr(out, "unknown option '--frobnicate'\n"), "rc %d: %s", rc, out);
}

/* chat's commands: /help, /stats (none yet, then the last reply's), /system, /reset, an
 * unknown one, /quit ending the chat before the next line. */
Test(harden, chat_commands, .timeout = 120) {
  char in[] = "/tmp/clkv-cmds-XXXXXX", args[512], out[32768];
  int fd = mkstemp(in);
  cr_assert(fd >= 0);
  close(fd);
  write_lines(in, "/help\n/stats\nWhat is 2+2?\n/stats\n/system You answer in French.\n"
                  "/reset\n/bogus\nSay hi.\n/quit\nnot reached\n");
  snprintf(args, sizeof args, "chat -m '%s' -n 8 --temp 0 < '%s'", model(), in);
  int rc = tu_run_cli(args, out, sizeof out);
  static const char *const want[] = {"/reset        forget the conversation", "(no reply yet)",
                                     "[stats] prompt tokens", "(new system message;",
                                     "(conversation forgotten)", "unknown command /bogus", NULL};
  cr_assert_eq(rc, 0, "%s", out);
  for (int i = 0; want[i]; i++) cr_assert(strstr(out, want[i]), "no '%s' in %s", want[i], out);
  int prompts = 0; /* "> " at the start of a line ([tuning] has "a > b") */
  for (const char *p = out; (p = strstr(p, "> ")); p++) prompts += p == out || p[-1] == '\n';
  cr_assert_eq(prompts, 9, "the chat went on after /quit: %s", out);
  unlink(in);
}

/* Runs clkv with argv, its stderr on a terminal (a pseudo-terminal) whose text goes to out,
 * its stdout to /dev/null; returns its exit status. */
static int run_stderr_on_terminal(char *const argv[], char *out, size_t cap) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  cr_assert(master >= 0 && !grantpt(master) && !unlockpt(master) && ptsname(master));
  char tty[128], exe[PATH_MAX];
  snprintf(tty, sizeof tty, "%s", ptsname(master));
  clkv_path(exe, sizeof exe);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    int t = open(tty, O_RDWR), null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(t, 2);
    execv(exe, argv);
    _exit(127);
  }
  size_t len = 0;
  ssize_t n;
  while (len + 1 < cap && (n = read(master, out + len, cap - 1 - len)) > 0) len += (size_t)n;
  out[len] = 0; /* read ends with EIO once the child closed the terminal */
  int st;
  waitpid(pid, &st, 0);
  close(master);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A long prompt's prefill shows a line on a terminal's stderr, erased at the first token;
 * nothing of it when stderr is not a terminal. */
Test(harden, long_prefill_progress_on_a_terminal_only, .timeout = 300) {
  char file[] = "/tmp/clkv-long-XXXXXX", args[512], out[16384];
  int fd = mkstemp(file);
  cr_assert(fd >= 0);
  for (int i = 0; i < 300; i++) cr_assert(write(fd, "word ", 5) == 5);
  close(fd);
  char *argv[] = {"clkv", "generate", "-m", (char *)model(), "-f", file, "-n", "2", "--temp", "0",
                  "--no-prefix-cache", NULL};
  int rc = run_stderr_on_terminal(argv, out, sizeof out);
  cr_assert(rc == 0 && strstr(out, "computing the prompt (") && strstr(out, "\r\033[K"),
            "rc %d: %s", rc, out);
  snprintf(args, sizeof args, "generate -m '%s' -f '%s' -n 2 --temp 0 --no-prefix-cache", model(),
           file);
  rc = tu_run_cli(args, out, sizeof out);
  cr_assert(rc == 0 && !strstr(out, "computing the prompt"), "rc %d: %s", rc, out);
  unlink(file);
}

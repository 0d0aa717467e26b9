/* test_json.c — the JSON clkv writes is valid UTF-8 JSON (issue 15, defect 1: a character
 * cut by -n came out as raw bytes), checked by Python's strict parser; --logprobs. */
#include "test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(json, .timeout = 300);

/* Runs `clkv generate ARGS --json` with stdout piped into a Python check that parses it as
 * strict UTF-8 JSON and evaluates expr on it (d); returns what Python printed. */
static void check(const char *args, const char *expr, char *out, size_t cap) {
  const char *py = getenv("CLKV_PYTHON");
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "generate %s --json 2>/dev/null | %s -c 'import json,sys\n"
           "d=json.loads(sys.stdin.buffer.read().decode(\"utf-8\"))\n"
           "print(\"ok\" if (%s) else \"bad: \"+json.dumps(d))'",
           args, py && *py ? py : "python3", expr);
  int rc = tu_run_cli(cmd, out, cap);
  cr_assert(rc == 0 && !strncmp(out, "ok", 2), "rc %d: %s", rc, out);
}

Test(json, a_character_cut_by_the_token_limit_stays_valid_utf8) {
  char out[8192];
  /* the second token is the first two bytes of a three-byte character */
  check("-p '日本の首都は' -n 2 --temp 0", "d[\"generated_tokens\"]==2 and "
        "d[\"text\"].endswith(\"\\ufffd\")", out, sizeof out);
  check("-p 'The capital of France is' -n 3 --temp 0 --logprobs 3",
        "len(d[\"logprobs\"])==3 and all(len(t[\"top\"])==3 and t[\"logprob\"]<=0 and "
        "t[\"top\"][0][\"id\"]==t[\"id\"] for t in d[\"logprobs\"]) and "
        "[t[\"id\"] for t in d[\"logprobs\"]]==d[\"ids\"] and \"Paris\" in d[\"text\"]",
        out, sizeof out);
}

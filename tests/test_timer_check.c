/* test_timer_check.c — the check of a device's profiling timers against the wall clock
 * (runtime/timer_check.c): the decision on made-up times, then the probe on the device the
 * tests run on ($CLKV_DEVICE), whose verdict must match what is known of its driver. */
#include "clkv_internal.h"
#include "timer_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

Test(timer, judge_trusts_events_close_to_the_wall_clock) {
  char why[160];
  cr_assert(clkv__timer_judge(5.0, 5.1, why, sizeof why), "%s", why);
  cr_assert(strstr(why, "5.000 ms by events"), "%s", why);
  cr_assert(clkv__timer_judge(4.0, 6.0, NULL, 0), "launch overhead on a loaded machine");
  cr_assert(clkv__timer_judge(5.3, 5.0, NULL, 0), "within the clock granularity above the wall");
  cr_assert(clkv__timer_judge(0.06, 0.01, NULL, 0), "the absolute slack for tiny launches");
}

Test(timer, judge_rejects_zero_negative_too_short_and_too_long_events) {
  char why[160];
  /* rusticl on llvmpipe (Mesa 22.3): START and END 1 ns apart for a 6 ms launch */
  cr_assert_not(clkv__timer_judge(1e-6, 6.0, why, sizeof why));
  cr_assert(strstr(why, "less"), "%s", why);
  cr_assert_not(clkv__timer_judge(0.0, 6.0, why, sizeof why));
  cr_assert(strstr(why, "zero or negative"), "%s", why);
  cr_assert_not(clkv__timer_judge(-3.0, 6.0, NULL, 0));
  cr_assert_not(clkv__timer_judge(NAN, 6.0, NULL, 0));
  cr_assert_not(clkv__timer_judge(1.5, 6.0, why, sizeof why), "4x less than the wall clock");
  cr_assert_not(clkv__timer_judge(9.0, 6.0, why, sizeof why));
  cr_assert(strstr(why, "more than"), "%s", why);
  cr_assert_not(clkv__timer_judge(5.0, 0.0, why, sizeof why), "no wall time: nothing to trust");
  cr_assert_not(clkv__timer_judge(5.0, INFINITY, NULL, 0));
}

static clkv_runtime *profiling_runtime(void) {
  clkv_runtime_params p = clkv_runtime_default_params();
  clkv_error err;
  clkv_runtime *rt = NULL;
  p.profiling = 1;
  p.use_binary_cache = 0;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  return rt;
}

Test(timer, a_profiling_runtime_checks_its_timers_and_says_so, .timeout = 300) {
  unsetenv("CLKV_TIMERS");
  clkv_runtime *rt = profiling_runtime();
  cr_assert(rt->timer_note[0], "the verdict is recorded");
  cr_assert(strstr(rt->timer_note, rt->profiling ? "timing by events" : "timing by the wall clock"),
            "%s", rt->timer_note);
  /* what is known of the drivers: PoCL's timestamps are right, rusticl's (Mesa 22.3) are not */
  if (rt->info.vendor == CLKV_VENDOR_POCL)
    cr_assert(rt->profiling, "PoCL: %s", rt->timer_note);
  if (strstr(rt->info.platform_name, "rusticl"))
    cr_assert_not(rt->profiling, "rusticl: %s", rt->timer_note);
  clkv_runtime_free(rt);
}

Test(timer, clkv_timers_wall_forces_the_wall_clock_and_a_plain_runtime_is_not_checked) {
  setenv("CLKV_TIMERS", "wall", 1);
  clkv_runtime *rt = profiling_runtime();
  cr_assert_not(rt->profiling);
  cr_assert(strstr(rt->timer_note, "CLKV_TIMERS=wall"), "%s", rt->timer_note);
  clkv_runtime_free(rt);
  clkv_runtime_params p = clkv_runtime_default_params();
  clkv_error err;
  cr_assert_eq(clkv_runtime_create(&p, &rt, &err), CLKV_OK, "%s", err.message);
  cr_assert_not(rt->profiling);
  cr_assert_str_eq(rt->timer_note, "", "no probe without profiling");
  clkv_runtime_free(rt);
}

/* test_status.c — status names and messages from the X-macro, clkv__err formatting, and
 * the OpenCL error-name table and its status mapping. */
#include "clkv_internal.h"

#include <criterion/criterion.h>
#include <string.h>

static const clkv_status all[] = {
#define CLKV__T(name, value, msg) CLKV_##name,
    CLKV_STATUS_MAP(CLKV__T)
#undef CLKV__T
};
#define N_STATUS (sizeof all / sizeof all[0])

Test(status, every_status_has_distinct_name_and_message) {
  cr_assert_geq(N_STATUS, 14);
  for (size_t i = 0; i < N_STATUS; i++) {
    const char *n = clkv_status_name(all[i]), *m = clkv_status_str(all[i]);
    cr_assert(n && !strncmp(n, "CLKV_", 5), "status %d has name %s", (int)all[i], n ? n : "NULL");
    cr_assert_neq(strcmp(n, "CLKV_UNKNOWN_STATUS"), 0);
    cr_assert(m && strlen(m) > 3, "status %s has no message", n);
    for (size_t j = 0; j < i; j++) {
      cr_assert_neq(all[i], all[j], "two statuses share value %d", (int)all[i]);
      cr_assert_str_neq(n, clkv_status_name(all[j]));
      cr_assert_str_neq(m, clkv_status_str(all[j]));
    }
  }
  cr_assert_str_eq(clkv_status_name(CLKV_OK), "CLKV_OK");
  cr_assert_str_eq(clkv_status_name(CLKV_ERR_IO), "CLKV_ERR_IO");
  cr_assert_str_eq(clkv_status_str(CLKV_ERR_IO), "file input/output error");
  cr_assert_eq(CLKV_OK, 0);
  for (size_t i = 1; i < N_STATUS; i++) cr_assert_lt(all[i], 0, "errors are negative");
}

Test(status, unknown_value_is_handled) {
  cr_assert_str_eq(clkv_status_name((clkv_status)12345), "CLKV_UNKNOWN_STATUS");
  cr_assert_str_eq(clkv_status_name((clkv_status)-999), "CLKV_UNKNOWN_STATUS");
  cr_assert(strlen(clkv_status_str((clkv_status)-999)) > 0);
}

Test(status, err_formats_and_returns_status) {
  clkv_error e;
  memset(&e, 0x55, sizeof e);
  cr_assert_eq(clkv__err(&e, CLKV_ERR_FORMAT, "tensor %s at offset %d", "blk.0", 42), CLKV_ERR_FORMAT);
  cr_assert_eq(e.status, CLKV_ERR_FORMAT);
  cr_assert_str_eq(e.message, "tensor blk.0 at offset 42");
}

Test(status, err_accepts_null_and_truncates) {
  cr_assert_eq(clkv__err(NULL, CLKV_ERR_IO, "x %d", 1), CLKV_ERR_IO);
  clkv_error e;
  char big[4000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  cr_assert_eq(clkv__err(&e, CLKV_ERR_INTERNAL, "%s", big), CLKV_ERR_INTERNAL);
  cr_assert_eq(strlen(e.message), sizeof e.message - 1, "message is truncated and terminated");
}

Test(status, cl_error_names_and_mapping) {
  cr_assert_str_eq(clkv__cl_error_name(CL_SUCCESS), "CL_SUCCESS");
  cr_assert_str_eq(clkv__cl_error_name(-5), "CL_OUT_OF_RESOURCES");
  cr_assert_str_eq(clkv__cl_error_name(-11), "CL_BUILD_PROGRAM_FAILURE");
  cr_assert_str_eq(clkv__cl_error_name(-72), "CL_MAX_SIZE_RESTRICTION_EXCEEDED");
  cr_assert_str_eq(clkv__cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
  cr_assert_str_eq(clkv__cl_error_name(-9999), "CL_UNKNOWN_ERROR");
  /* every code from -1 to -19 and -30 to -72 (OpenCL 1.2-3.0) has a name */
  for (int c = -1; c >= -72; c--) {
    if (c < -19 && c > -30) continue;
    cr_assert_str_neq(clkv__cl_error_name(c), "CL_UNKNOWN_ERROR", "code %d", c);
  }
  cr_assert_eq(clkv__cl_status(CL_SUCCESS), CLKV_OK);
  cr_assert_eq(clkv__cl_status(CL_OUT_OF_RESOURCES), CLKV_ERR_DEVICE_MEMORY);
  cr_assert_eq(clkv__cl_status(CL_MEM_OBJECT_ALLOCATION_FAILURE), CLKV_ERR_DEVICE_MEMORY);
  cr_assert_eq(clkv__cl_status(CL_OUT_OF_HOST_MEMORY), CLKV_ERR_NO_MEMORY);
  cr_assert_eq(clkv__cl_status(CL_BUILD_PROGRAM_FAILURE), CLKV_ERR_BUILD);
  cr_assert_eq(clkv__cl_status(CL_INVALID_KERNEL_ARGS), CLKV_ERR_OPENCL);
}

/* CLKV_CL_TRY records the call text, the CL error name and file:line. */
static clkv_status failing_call(clkv_error *err) {
  clkv_status st = CLKV_OK;
  CLKV_CL_TRY(clReleaseMemObject(NULL));
  return CLKV_OK;
fail:
  return st;
}

Test(status, cl_try_records_call_and_name) {
  clkv_error e;
  cr_assert_eq(failing_call(&e), CLKV_ERR_OPENCL);
  cr_assert(strstr(e.message, "clReleaseMemObject"), "%s", e.message);
  cr_assert(strstr(e.message, "CL_INVALID_MEM_OBJECT"), "%s", e.message);
  cr_assert(strstr(e.message, "test_status.c"), "%s", e.message);
}

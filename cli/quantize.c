/* quantize.c — `clkv quantize [options] IN.gguf OUT.gguf TYPE`: a model's weight matrices
 * rewritten in another type (clkv_model_quantize), as llama-quantize does. */
#include "cli.h"

#include <string.h>

typedef struct quantize_opts {
  const char *args[3]; /* IN, OUT, TYPE */
  int quiet;
} quantize_opts;

static void say(void *user, const char *line) {
  (void)user;
  fprintf(stderr, "clkv: %s\n", line);
}

static int cli_quantize(const cli_cmd *c, int argc, char **argv) {
  quantize_opts o = {0};
  int rc = cli_parse(c, argc, argv, &o);
  if (rc >= 0) return rc;
  if (!o.args[2]) {
    fprintf(stderr, "clkv: quantize needs IN.gguf OUT.gguf TYPE (TYPE one of %s)\n",
            clkv_quantize_types());
    cli_usage(stderr, c, &(quantize_opts){0});
    return 2;
  }
  clkv_quantize_params p = clkv_quantize_default_params();
  if (!o.quiet) p.note = say;
  clkv_error err;
  clkv_status st = clkv_model_quantize(o.args[0], o.args[1], o.args[2], &p, &err);
  if (st) return cli_die(st, err.message);
  clkv_file_info a, b;
  if (!o.quiet && !clkv_model_inspect(o.args[0], &a, &err) && !clkv_model_inspect(o.args[1], &b, &err))
    fprintf(stderr, "clkv: wrote %s: %.1f MiB of tensors (from %.1f MiB)%s%s\n", o.args[1],
            (double)b.tensor_bytes / 1048576.0, (double)a.tensor_bytes / 1048576.0,
            b.runnable ? "" : "; not runnable: ", b.runnable ? "" : b.why_not);
  return 0;
}

static const cli_opt quantize_rows[] = {
    {.flag = "-q", .name = "--quiet", .kind = CLI_FLAG, CLI_AT(quantize_opts, quiet),
     .help = "say nothing of the tensors kept or in a fallback type, nor the sizes"},
};

const cli_cmd cli_quantize_cmd = {
    .name = "quantize", .args = "[options] IN.gguf OUT.gguf TYPE",
    .about = "rewrite a model's weight matrices in another type (Q4_K, Q8_0, F16, ...)",
    .opts = quantize_rows, .n_opts = sizeof quantize_rows / sizeof quantize_rows[0],
    .size = sizeof(quantize_opts), .positional = offsetof(quantize_opts, args), .n_positional = 3,
    .run = cli_quantize,
    .notes = "TYPE: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS,\n"
             "F16, BF16 or F32. Norms, 1-D and small tensors are copied as they are; a matrix\n"
             "whose rows are not whole blocks of TYPE goes in a fallback type (Q4_K: Q5_0, Q5_K:\n"
             "Q5_1, Q6_K: Q8_0, Q2_K/Q3_K/IQ4_XS: IQ4_NL) or stays as it is; stderr says which.\n"
             "Tensors in another quantized type are dequantized first (some quality is lost\n"
             "twice). Metadata is copied; general.file_type is set.\n"};

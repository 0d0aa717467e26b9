/* embed.c — a complete program that embeds clkv through its one header: load a GGUF model,
 * ask it a question through its chat template, stream the answer.
 * Build against the installed library:
 *   cc embed.c $(pkg-config --cflags --libs clkv) -o embed
 *   ./embed MODEL.gguf "What is the capital of France?" */
#include <clkv.h>

#include <stdio.h>
#include <stdlib.h>

static int print_token(void *user, int32_t id, const char *text, size_t len) {
  (void)user;
  (void)id;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 0; /* non-zero would stop generation */
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.gguf QUESTION\n", argv[0]);
    return 2;
  }
  clkv_error err;
  clkv_runtime *rt = NULL;
  clkv_model *model = NULL;
  clkv_context *ctx = NULL;
  char *prompt = NULL;
  int rc = 1;

  clkv_runtime_params rp = clkv_runtime_default_params(); /* best GPU, else the CPU */
  if (clkv_runtime_create(&rp, &rt, &err)) goto fail;
  fprintf(stderr, "device: %s\n", clkv_runtime_device(rt)->name);
  clkv_model_params mp = clkv_model_default_params();
  if (clkv_model_load(rt, argv[1], &mp, &model, &err)) goto fail;
  if (clkv_context_create(model, NULL, &ctx, &err)) goto fail;

  clkv_chat_message msg = {"user", argv[2]};
  prompt = clkv_chat_format(model, &msg, 1, 1, &err);
  if (!prompt) goto fail;
  clkv_gen_params gp = clkv_gen_default_params();
  gp.temperature = 0; /* greedy */
  gp.max_tokens = 64;
  clkv_gen_stats stats;
  clkv_status st = clkv_generate(ctx, prompt, &gp, print_token, NULL, &stats);
  if (st) {
    fprintf(stderr, "\nerror: %s: %s\n", clkv_status_name(st), clkv_last_error(ctx));
  } else {
    printf("\n");
    fprintf(stderr, "%d tokens, %.1f tokens/s\n", stats.generated_tokens,
            stats.decode_ms > 0 ? (stats.generated_tokens - 1) * 1000.0 / stats.decode_ms : 0.0);
    rc = 0;
  }
  goto done;
fail:
  fprintf(stderr, "error: %s: %s\n", clkv_status_name(err.status), err.message);
done:
  free(prompt);
  clkv_context_free(ctx);
  clkv_model_free(model);
  clkv_runtime_free(rt);
  return rc;
}

/* seeds.c — writes the fuzzers' seed inputs into tests/fuzz/<target>/ (scripts/fuzz
 * --seeds): GGUF files with a real vocabulary, tokenizer vocabularies, chat templates,
 * the shipped platform profiles, a tuning file and a chain of prefix-cache block files. */
#include "format/gguf.h"
#include "kv/kv_disk.h"
#include "kv/kv_pool.h"
#include "ref.h"
#include "tune/tunables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct clkv__kernel_source { /* the embedded profiles (cmake/embed_kernels.cmake) */
  const char *name;
  const char *src;
};
extern const struct clkv__kernel_source clkv__profile_sources[];

static const char *root;

static void save(const char *target, const char *name, const void *data, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
    fprintf(stderr, "seeds: cannot write %s\n", path);
    exit(1);
  }
}

/* A tiny model (one layer, dim 32, the 258-token byte vocabulary) and one of each value. */
static void gguf_seeds(void) {
  ref_tiny_params p = ref_tiny_default();
  p.n_layers = 1, p.dim = 32, p.n_heads = 2, p.n_kv_heads = 1, p.n_ff = 32, p.n_vocab = 258;
  char path[1024];
  snprintf(path, sizeof path, "%s/gguf/tiny", root);
  clkv_error err;
  if (ref_tiny_write(&p, path, &err) != CLKV_OK) {
    fprintf(stderr, "seeds: %s\n", err.message);
    exit(1);
  }
  clkv__gguf_writer *w = clkv__gguf_writer_new();
  const char *strs[] = {"a", "", "\xe2\x96\x81the"};
  const int32_t ints[] = {1, -2, 3};
  const float fl[] = {0.5f, -1.0f};
  clkv__gguf_writer_set_u32(w, "u32", 7);
  clkv__gguf_writer_set_i32(w, "i32", -7);
  clkv__gguf_writer_set_u64(w, "u64", 1ull << 40);
  clkv__gguf_writer_set_f32(w, "f32", 1.5f);
  clkv__gguf_writer_set_bool(w, "bool", 1);
  clkv__gguf_writer_set_str(w, "str", "text");
  clkv__gguf_writer_set_arr_str(w, "arr.str", strs, 3);
  clkv__gguf_writer_set_arr_i32(w, "arr.i32", ints, 3);
  clkv__gguf_writer_set_arr_f32(w, "arr.f32", fl, 2);
  const uint64_t ne[2] = {32, 2};
  unsigned char q[2 * 36] = {0};
  clkv__gguf_writer_add_tensor(w, "q8", GGML_T_Q8_0, 2, ne, q, 2 * 34);
  clkv__gguf_writer_add_tensor(w, "f16", GGML_T_F16, 1, ne, q, 64);
  size_t n;
  void *bytes = clkv__gguf_writer_serialize(w, &n);
  save("gguf", "values", bytes, n);
  free(bytes);
  clkv__gguf_writer_free(w);
}

/* The tokenizer harness's input: flags, text, NUL, then entries (type/score byte + text). */
static void tok_seed(const char *name, int flags, const char *text, const char *const *entries) {
  char buf[4096];
  size_t n = 0;
  buf[n++] = (char)flags;
  n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", text) + 1;
  for (; *entries; entries++) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", *entries) + 1;
  save("tokenizer", name, buf, n);
}

static void tokenizer_seeds(void) {
  const char *gpt2[] = {"\x01h", "\x01" "e", "\x01l", "\x01o", "\x01he", "\x01hel", "\x01hell",
                        "\x01hello", "\x01\xc4\xa0", "\x01\xc4\xa0w", "Mh e", "Mhe l", "Mhel l",
                        "Mhell o", "M\xc4\xa0 w", "\x03<|im_start|>", "\x03<|im_end|>", NULL};
  const char *spm[] = {"\x80\xe2\x96\x81", "\x81\xe2\x96\x81h", "\x82h", "\x83" "e", "\x84he",
                       "\x85\xe2\x96\x81he", "\x02<unk>", "\x03<s>", "\x03</s>", "\x06<0x41>", NULL};
  const char *none[] = {NULL};
  tok_seed("gpt2", 0x80 | 0x20, "hello world <|im_start|>user\n12345 don't", gpt2);
  tok_seed("gpt2-llama3", 0x80 | 0x04, "Hello, World!\r\n\n  123456 I'LL", gpt2);
  tok_seed("gpt2-qwen2", 0x06, "\xe6\x97\xa5\xe6\x9c\xac 2024 caf\xc3\xa9\t", gpt2);
  tok_seed("gpt2-round", 0x08 | 0x02, "hello hello\xff\xfe world 42", gpt2);
  tok_seed("spm", 0x01 | 0x80 | 0x40 | 0x10, "he he  hello A\xe2\x82\xac", spm);
  tok_seed("spm-round", 0x01 | 0x08 | 0x40, "hehe h\xc3\xa9 \xf0\x9f\x98\x80 x", spm);
  tok_seed("spm-bytes", 0x01 | 0x08, "\x80\x81 \xe2 \xf0 ", none);
}

static void chat_seeds(void) {
  static const char chatml[] =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM<|im_end|>\\n' }}"
      "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}\0system\0Be brief.\0user\0Hi\0assistant\0Hello";
  static const char llama3[] = "<|start_header_id|>{{ role }}<|end_header_id|>\0user\0Q";
  static const char llama2[] = "[INST] <<SYS>>\\n{{ s }}\\n<</SYS>>\0system\0S\0user\0U\0<s>";
  static const char mistral[] = "[INST] {{ m }} [/INST]\0user\0a\0assistant\0b\0user\0c";
  static const char zephyr[] = "<|user|>\\n{{ c }}</s>\0user\0hey";
  save("chat", "chatml", chatml, sizeof chatml - 1);
  save("chat", "llama3", llama3, sizeof llama3 - 1);
  save("chat", "llama2", llama2, sizeof llama2 - 1);
  save("chat", "mistral", mistral, sizeof mistral - 1);
  save("chat", "zephyr", zephyr, sizeof zephyr - 1);
}

static void profile_and_tuning_seeds(void) {
  for (const struct clkv__kernel_source *e = clkv__profile_sources; e->name; e++) {
    /* fuzz_profile's selector byte, then the file: the device its sections are for */
    const size_t len = strlen(e->src);
    char *buf = malloc(len + 1);
    buf[0] = !strcmp(e->name, "pocl.profile") ? 0 : !strcmp(e->name, "nvidia.profile") ? 1
           : !strcmp(e->name, "amd.profile") ? 2 : !strcmp(e->name, "default.profile") ? 4 | 3 : 3;
    memcpy(buf + 1, e->src, len);
    save("profile", e->name, buf, len + 1);
    free(buf);
  }
  clkv_device_info d;
  memset(&d, 0, sizeof d);
  d.type = CLKV_DEVICE_GPU;
  d.max_workgroup_size = 1024;
  clkv__tunables t;
  clkv__default_tunables(&d, &t);
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  fputs("# clkv tune\n", f);
  clkv__tunables_print(f, &t);
  fclose(f);
  save("tunables", "gpu.txt", text, n);
  free(text);
}

/* Two chained block files for fuzz_kvblock's context (16 tokens, 2 layers, 64 bytes). */
static void kvblock_seeds(void) {
  enum { BT = 16, PAYLOAD = 4 * BT + 2 * 2 * 64 };
  unsigned char file[2][CLKV__KVB_HEADER + PAYLOAD];
  uint64_t parent = clkv__kv_hash_root(0x5eedf00dULL);
  for (int b = 0; b < 2; b++) {
    int32_t tok[BT];
    unsigned char *p = file[b] + CLKV__KVB_HEADER;
    memset(p, 0x3c, PAYLOAD);
    for (int i = 0; i < BT; i++) {
      tok[i] = 100 * b + i;
      for (int k = 0; k < 4; k++) p[4 * i + k] = (unsigned char)((uint32_t)tok[i] >> (8 * k));
    }
    clkv__kvb_header h = {.version = CLKV__KVB_VERSION, .header_bytes = CLKV__KVB_HEADER,
                          .kv_type = "f16", .block_tokens = BT, .n_layers = 2, .block_bytes = 64,
                          .prefix_seed = 0x5eedf00dULL, .parent = parent};
    h.hash = clkv__kv_hash_block(parent, tok, BT, 0x5eedf00dULL);
    clkv__kvb_header_put(&h, file[b]);
    clkv__kvb_checksum(file[b], p, PAYLOAD, h.checksum);
    memcpy(file[b] + 96, h.checksum, 32);
    parent = h.hash;
  }
  save("kvblock", "one.kvb", file[0], sizeof file[0]);
  save("kvblock", "chain.kvb", file, sizeof file);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_seeds DIR (writes DIR/<target>/ seed files; the folders exist)\n");
    return 2;
  }
  root = argv[1];
  gguf_seeds();
  tokenizer_seeds();
  chat_seeds();
  profile_and_tuning_seeds();
  kvblock_seeds();
  return 0;
}

#!/usr/bin/env python3
"""Peer tokenizer for tests/test_tokenizer.c: builds a Hugging Face `tokenizers` BPE from the
vocabulary and merges stored in a GGUF (read with gguf.GGUFReader), with the pre-tokenizer
the GGUF names — or, for a SentencePiece vocabulary (tokenizer.ggml.model "llama": Gemma,
Llama 2), a byte-fallback BPE whose merges are ranked by the scores of the pieces they make,
as SentencePiece's BPE merges the best-scoring pair first — and writes for every text of a JSON list one line:
  <text as hex> TAB <ids, space-separated> TAB <decode of those ids as hex>
Usage: tokenizer_peer.py MODEL.gguf TEXTS.json OUT.txt"""
import json
import sys

import gguf
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers)

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def build_spm(r):
    tokens = field(r, "tokenizer.ggml.tokens")
    scores = field(r, "tokenizer.ggml.scores")
    types = field(r, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for i, t in enumerate(tokens):
        if types[i] != 1 or len(t) < 2:  # only normal pieces are made by merges
            continue
        for k in range(1, len(t)):
            a, b = t[:k], t[k:]
            ia, ib = vocab.get(a), vocab.get(b)
            if ia is not None and ib is not None and types[ia] == 1 and types[ib] == 1:
                merges.append((-scores[i], ia, ib, a, b))
    merges.sort()
    unk = field(r, "tokenizer.ggml.unknown_token_id")
    tok = Tokenizer(models.BPE(vocab, [(m[3], m[4]) for m in merges],
                               unk_token=tokens[unk] if unk is not None else None,
                               byte_fallback=True, fuse_unk=True))
    norm = [normalizers.Replace(" ", "\u2581")]
    if field(r, "tokenizer.ggml.add_space_prefix"):
        norm.insert(0, normalizers.Prepend("\u2581"))
    tok.normalizer = normalizers.Sequence(norm)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty in (3, 4)])
    return tok


def build(path):
    r = gguf.GGUFReader(path)
    if field(r, "tokenizer.ggml.model") == "llama":
        return build_spm(r)
    if field(r, "tokenizer.ggml.model") != "gpt2":
        sys.exit("peer: only GPT-2 byte-level BPE vocabularies are supported")
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = [tuple(m.split(" ", 1)) for m in (field(r, "tokenizer.ggml.merges") or [])]
    pre = field(r, "tokenizer.ggml.pre") or "default"
    vocab = {t: i for i, t in enumerate(tokens)}
    ignore_merges = pre == "llama-bpe"
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=ignore_merges))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("smollm", "starcoder"):
        # SmolLM2's tokenizer.json: Digits(individual_digits) then ByteLevel
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre == "llama-bpe":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif pre in ("gpt2", "default"):
        tok.pre_tokenizer = byte_level
    else:
        sys.exit(f"peer: pre-tokenizer {pre!r} not supported")
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(t, special=True, normalized=False)
               for t, ty in zip(tokens, types) if ty in (3, 4)]
    tok.add_special_tokens(special)
    return tok


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    tok = build(sys.argv[1])
    texts = json.load(open(sys.argv[2], encoding="utf-8"))
    with open(sys.argv[3], "w") as out:
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            dec = tok.decode(ids, skip_special_tokens=False)
            out.write("%s\t%s\t%s\n" % (text.encode().hex(), " ".join(map(str, ids)),
                                        dec.encode().hex()))


if __name__ == "__main__":
    main()

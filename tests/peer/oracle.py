#!/usr/bin/env python3
"""oracle.py — an independent forward pass for GGUF models (llama, mistral, gemma3, qwen2,
qwen3, phi3), in float64 numpy.

It shares no code with clkv: the hyperparameters come from the GGUF metadata read with the
PyPI `gguf` package (GGUFReader), the weights are dequantized with gguf.quants.dequantize,
prompts are tokenized with Hugging Face `tokenizers` built from the GGUF vocabulary
(tokenizer_peer.py), and the forward pass below is written from the architecture
description. tests/test_oracle.c compares clkv with it: the prompts' tokens, the logits of
the top-5 ids at every step within a measured tolerance (0.04 on the real models), the greedy
ids while the top-2 margin is safe, and the perplexity (|log ratio| <= 0.002); the table and
the measured errors are in docs/ARCHITECTURE.md, "Testing against an independent oracle".

usage:
  oracle.py [--steps N] [--prompt TEXT | --prompt-file F | --ids 1,2,3]... [--out FILE] MODEL.gguf...
      every prompt on every model: N greedy steps each
  oracle.py --perplexity TEXTFILE [-c N] [--chunks N] [--out FILE] MODEL.gguf...
      each model's perplexity on the text by llama-perplexity's method (cli/perplexity.c)
  oracle.py --write [MODEL.gguf...]
      recomputes the kept outputs of the real models (KEPT below) in tests/data/: the greedy
      cases (oracle_<name>.json) and the perplexity (oracle_perplexity.json); default every
      kept model found under models/. Run it after changing KEPT or the oracle:
      $HOME/.cache/clkv/venv/bin/python tests/peer/oracle.py --write
  oracle.py --check [MODEL.gguf...]
      recomputes the same and compares with the kept files (ids and top-5 ids equal,
      logits and perplexities within 1e-6); exit status 1 when they differ. Minutes on
      Gemma (its 262144 x 640 embedding is dequantized), so not in CI: CI checks the
      SmolLM2 file's first case for a few steps live (test_oracle.c).

Greedy output (JSON, to --out or stdout): {"oracle": "...", "cases": [case, ...]}, one case per
(model, prompt) in the order given:
  {"model": path, "sha256": of the file, "text": prompt or null, "prompt_ids": [...],
   "ids": [N greedy ids], "top5": [per step [[id, logit] x 5], best first],
   "margin": [per step top-1 minus top-2 logit], "seconds": time of this case}
Step 0 is the prompt's last position; step s > 0 follows feeding ids[s-1]. Greedy picks
the lowest id among equal logits. Generation does not stop at end-of-sequence.

Perplexity output: {"oracle": "...", "perplexity": [one per model: {"model", "sha256",
"text_sha256", "n_ctx", "chunks", "tokens", "scored", "ppl", "ppl_err", "running": [the
running perplexity after each chunk, as clkv perplexity --json prints "chunks"]}]}.
"""
import os

# One BLAS thread: the tests run on few cores, beside clkv itself.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

# The real models whose outputs are kept in tests/data (--write, --check): file name under
# models/, the kept file's name, and its prompts: a plain text, code, and a chat turn in the
# model's template (its special tokens are tokenized as such). Gemma's oracle takes about
# 1.5 minutes of CPU, too slow for CI; SmolLM2's 15 s.
KEPT = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": ("oracle_smollm2.json", 48, [
        "The history of the printing press begins",
        'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    ]),
    "gemma-3-270m-q4_k_m.gguf": ("oracle_gemma3.json", 32, [
        "The history of the printing press begins",
        'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
        "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
    ]),
}
MODELS = os.path.join(ROOT, "models")
DATA = os.path.join(ROOT, "tests", "data")
# The kept perplexities: this text, chunks of PPL_CTX tokens, the first PPL_CHUNKS of them.
PPL_TEXT = os.path.join(DATA, "perplexity.txt")
PPL_OUT = os.path.join(DATA, "oracle_perplexity.json")
PPL_CTX, PPL_CHUNKS = 64, 4


class OracleError(Exception):
    pass


# What each architecture adds to the llama graph, from the models' papers and configs:
#   neox       RoPE rotates (x[i], x[i + n_rot/2]) — the GGUF keeps HF's row order for these
#   bias       q, k, v projections have biases (Qwen 2)
#   qk_norm    RMSNorm over each q and k head before RoPE (Gemma 3, Qwen 3)
#   post_norm  RMSNorm of the attention and FFN outputs before the residual add (Gemma 3)
#   gelu       the gate goes through GELU (tanh approximation) instead of SiLU (Gemma)
#   embd_scale the embedding is multiplied by sqrt(dim) (Gemma)
#   fused      one attn_qkv tensor (q, k, v rows) and ffn_up holding gate then up (Phi-3)
#   swa_every  with a sliding window, every n-th layer attends globally with the file's RoPE
#              base; the others use the window and base `local_base` (Gemma 3: 6, 10000)
ARCHS = {
    "llama": {}, "mistral": {},
    "gemma3": {"neox": 1, "qk_norm": 1, "post_norm": 1, "gelu": 1, "embd_scale": 1,
               "swa_every": 6, "local_base": 10000.0},
    "qwen2": {"neox": 1, "bias": 1},
    "qwen3": {"neox": 1, "qk_norm": 1},
    "phi3": {"neox": 1, "fused": 1},
}


def field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


class Hparams:
    """The llama hyperparameters, each read from the GGUF metadata ("<arch>.<key>")."""

    def __init__(self, reader):
        arch = field(reader, "general.architecture")
        if arch not in ARCHS:
            raise OracleError(f"architecture {arch!r}: the oracle knows {sorted(ARCHS)}")
        self.arch = ARCHS[arch]

        def need(key):
            v = field(reader, f"{arch}.{key}")
            if v is None:
                raise OracleError(f"metadata {arch}.{key} is missing")
            return v

        self.n_layers = int(need("block_count"))
        self.dim = int(need("embedding_length"))
        self.n_heads = int(need("attention.head_count"))
        self.n_kv_heads = int(field(reader, f"{arch}.attention.head_count_kv", self.n_heads))
        self.n_ff = int(need("feed_forward_length"))
        self.n_ctx = int(need("context_length"))
        self.eps = float(need("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(field(reader, f"{arch}.rope.freq_base", 10000.0))
        self.head_dim = int(field(reader, f"{arch}.attention.key_length", self.dim // self.n_heads))
        self.n_rot = int(field(reader, f"{arch}.rope.dimension_count", self.head_dim))
        self.window = int(field(reader, f"{arch}.attention.sliding_window", 0))
        if self.n_heads % self.n_kv_heads or self.n_rot % 2 or self.n_rot > self.head_dim:
            raise OracleError("inconsistent head counts or rope dimension")
        self.add_bos = bool(field(reader, "tokenizer.ggml.add_bos_token", False))
        self.bos_id = field(reader, "tokenizer.ggml.bos_token_id")


class Model:
    """Every weight dequantized to float64, and the forward pass over a KV cache."""

    def __init__(self, path):
        self.path = path
        reader = GGUFReader(path)
        self.reader = reader
        self.hp = hp = Hparams(reader)
        self.tensors = {t.name: t for t in reader.tensors}
        qd, kvd = hp.n_heads * hp.head_dim, hp.n_kv_heads * hp.head_dim
        self.tok_embd = self.weight("token_embd.weight", hp.dim, None)
        self.n_vocab = self.tok_embd.shape[0]
        self.out_norm = self.weight("output_norm.weight", hp.dim)
        # a model without output.weight ties its output matrix to the embedding
        if "output.weight" in self.tensors:
            self.output = self.weight("output.weight", hp.dim, self.n_vocab)
        else:
            self.output = self.tok_embd
        self.layers = [self.layer(i, qd, kvd) for i in range(hp.n_layers)]

    def layer(self, i, qd, kvd):
        """Layer i's weights, the architecture's optional ones included."""
        hp, a = self.hp, self.hp.arch
        w = lambda name, cols, rows=0, kind="weight": self.weight(f"blk.{i}.{name}.{kind}", cols, rows)  # noqa: E731
        L = {"attn_norm": w("attn_norm", hp.dim), "wo": w("attn_output", qd, hp.dim),
             "ffn_norm": w("ffn_norm", hp.dim), "w_down": w("ffn_down", hp.n_ff, hp.dim)}
        if a.get("fused"):
            qkv = w("attn_qkv", hp.dim, qd + 2 * kvd)
            L["wq"], L["wk"], L["wv"] = qkv[:qd], qkv[qd:qd + kvd], qkv[qd + kvd:]
            gu = w("ffn_up", hp.dim, 2 * hp.n_ff)
            L["w_gate"], L["w_up"] = gu[:hp.n_ff], gu[hp.n_ff:]
        else:
            L["wq"], L["wk"] = w("attn_q", hp.dim, qd), w("attn_k", hp.dim, kvd)
            L["wv"] = w("attn_v", hp.dim, kvd)
            L["w_gate"], L["w_up"] = w("ffn_gate", hp.dim, hp.n_ff), w("ffn_up", hp.dim, hp.n_ff)
        if a.get("bias"):
            L["bq"], L["bk"], L["bv"] = (w(n, d, 0, "bias") for n, d in
                                         (("attn_q", qd), ("attn_k", kvd), ("attn_v", kvd)))
        if a.get("qk_norm"):
            L["q_norm"], L["k_norm"] = w("attn_q_norm", hp.head_dim), w("attn_k_norm", hp.head_dim)
        if a.get("post_norm"):
            L["post_attn"] = w("post_attention_norm", hp.dim)
            L["post_ffn"] = w("post_ffw_norm", hp.dim)
        return L

    def windowed(self, li):
        """Whether layer li attends within the sliding window (and uses the local base)."""
        every = self.hp.arch.get("swa_every", 0)
        return self.hp.window > 0 and not (every and (li + 1) % every == 0)

    def weight(self, name, cols, rows=0):
        """A [rows][cols] matrix (GGUF ne = [cols, rows]) as float64; rows 0: a vector of
        cols; rows None: any number of rows."""
        t = self.tensors.get(name)
        if t is None:
            raise OracleError(f"tensor {name} is missing")
        ne = [int(n) for n in t.shape]
        if ne[0] != cols or (rows == 0 and len(ne) != 1) or \
                (rows and (len(ne) != 2 or ne[1] != rows)):
            raise OracleError(f"tensor {name} has shape {ne}, expected [{cols}, {rows}]")
        x = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float64)
        return x.reshape(-1) if rows == 0 else x.reshape(-1, cols)

    # ---- the forward pass ----
    def new_cache(self, n):
        hp = self.hp
        shape = (hp.n_layers, n, hp.n_kv_heads, hp.head_dim)
        return {"k": np.zeros(shape), "v": np.zeros(shape), "len": 0}

    def rmsnorm(self, x, w):
        """x / sqrt(mean(x^2) + eps) * w, per row."""
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.hp.eps) * w

    def rope(self, x, pos, base):
        """Rotates x (T, heads, head_dim) at positions pos (T,).

        HF's llama rotates the pairs (i, i + head_dim/2) of a head by pos * base^(-2i/head_dim)
        (rotate_half). The HF-to-GGUF conversion permutes the rows of attn_q and attn_k within
        each head: it views a head's rows as [2][head_dim/2] and swaps those axes, so HF row
        h * head_dim/2 + i goes to row 2i + h. The pair (i, i + head_dim/2) thus arrives as the
        adjacent pair (2i, 2i + 1), still with frequency index i: in a GGUF llama, RoPE turns
        adjacent pairs, (x[2i], x[2i+1]) by pos * base^(-2i/n_rot), for the first n_rot
        dimensions (llama.cpp's "normal" mode). Dimensions past n_rot are left alone."""
        n = self.hp.n_rot
        freq = base ** (-np.arange(0, n, 2, dtype=np.float64) / n)  # (n/2)
        theta = pos[:, None].astype(np.float64) * freq[None, :]  # (T, n/2)
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        # NeoX architectures keep HF's order: the pair (i, i + n/2) is rotated as it is
        i0, i1 = (slice(0, n // 2), slice(n // 2, n)) if self.hp.arch.get("neox") else \
            (slice(0, n, 2), slice(1, n, 2))
        x0, x1 = x[..., i0], x[..., i1]
        out = x.copy()
        out[..., i0] = x0 * c - x1 * s
        out[..., i1] = x0 * s + x1 * c
        return out

    def attention(self, q, k, v, pos, window):
        """Causal attention of q (T, n_heads, hd) at positions pos over k, v (S, n_kv, hd) at
        positions 0..S-1; query head h reads kv head h // (n_heads / n_kv_heads). With a
        sliding window W a position p sees the W positions p-W+1..p."""
        hp = self.hp
        group = hp.n_heads // hp.n_kv_heads
        kpos = np.arange(k.shape[0])[None, :]
        seen = kpos <= pos[:, None]
        if window > 0:
            seen &= pos[:, None] - kpos < window
        out = np.empty_like(q)
        for h in range(hp.n_heads):
            score = q[:, h, :] @ k[:, h // group, :].T / np.sqrt(hp.head_dim)  # (T, S)
            score = np.where(seen, score, -np.inf)
            score -= score.max(axis=1, keepdims=True)
            p = np.exp(score)
            p /= p.sum(axis=1, keepdims=True)
            out[:, h, :] = p @ v[:, h // group, :]
        return out

    def forward(self, tokens, cache, rows=None):
        """Appends tokens (list of ids) to the cache; returns the logits of the last one, or
        with rows (a slice or index array of the tokens) theirs, one row each."""
        hp = self.hp
        T, start = len(tokens), cache["len"]
        if start + T > cache["k"].shape[1]:
            raise OracleError("the cache is too small")
        pos = np.arange(start, start + T)
        a = hp.arch
        x = self.tok_embd[np.asarray(tokens)]  # (T, dim)
        if a.get("embd_scale"):
            x = x * np.sqrt(hp.dim)
        for li, L in enumerate(self.layers):
            win = self.windowed(li)
            base = a["local_base"] if win and "local_base" in a else hp.rope_base
            h = self.rmsnorm(x, L["attn_norm"])
            q, k, v = h @ L["wq"].T, h @ L["wk"].T, h @ L["wv"].T
            if "bq" in L:
                q, k, v = q + L["bq"], k + L["bk"], v + L["bv"]
            q = q.reshape(T, hp.n_heads, hp.head_dim)
            k = k.reshape(T, hp.n_kv_heads, hp.head_dim)
            v = v.reshape(T, hp.n_kv_heads, hp.head_dim)
            if "q_norm" in L:
                q, k = self.rmsnorm(q, L["q_norm"]), self.rmsnorm(k, L["k_norm"])
            q, k = self.rope(q, pos, base), self.rope(k, pos, base)
            cache["k"][li, start:start + T] = k
            cache["v"][li, start:start + T] = v
            att = self.attention(q, cache["k"][li, :start + T], cache["v"][li, :start + T], pos,
                                 hp.window if win else 0)
            o = att.reshape(T, -1) @ L["wo"].T
            x = x + (self.rmsnorm(o, L["post_attn"]) if "post_attn" in L else o)
            h = self.rmsnorm(x, L["ffn_norm"])
            gate, up = h @ L["w_gate"].T, h @ L["w_up"].T
            if a.get("gelu"):  # GELU, tanh approximation
                act = 0.5 * gate * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (gate + 0.044715 * gate ** 3)))
            else:  # SiLU
                act = gate / (1.0 + np.exp(-gate))
            f = (act * up) @ L["w_down"].T
            x = x + (self.rmsnorm(f, L["post_ffn"]) if "post_ffn" in L else f)
        cache["len"] = start + T
        if rows is None:
            return self.output @ self.rmsnorm(x[-1], self.out_norm)
        return self.rmsnorm(x[rows], self.out_norm) @ self.output.T

    def greedy(self, prompt_ids, steps):
        """The prompt, then `steps` greedy steps: (ids, top5 per step, margin per step)."""
        if not prompt_ids:
            raise OracleError("empty prompt")
        n = len(prompt_ids) + steps - 1
        if n > self.hp.n_ctx:
            raise OracleError(f"{n} positions exceed the context length {self.hp.n_ctx}")
        if min(prompt_ids) < 0 or max(prompt_ids) >= self.n_vocab:
            raise OracleError("a prompt id is outside the vocabulary")
        cache = self.new_cache(n)
        logits = self.forward(prompt_ids, cache)
        ids, top5, margin = [], [], []
        for s in range(steps):
            order = np.lexsort((np.arange(logits.size), -logits))  # by logit, then lower id
            best = order[:5]
            top5.append([[int(i), float(logits[i])] for i in best])
            margin.append(float(logits[order[0]] - logits[order[1]]))
            ids.append(int(order[0]))
            if s + 1 < steps:
                logits = self.forward([ids[-1]], cache)
        return ids, top5, margin


    def perplexity(self, ids, n_ctx, max_chunks):
        """llama-perplexity's method, as cli/perplexity.c: ids (the whole text, BOS first when
        the model adds one) cut into chunks of n_ctx, BOS put at each chunk's start when the
        model adds one, each chunk evaluated from an empty cache, and only the second half
        scored: position p in n_ctx/2 .. n_ctx-2 predicts token p+1 (negative log-likelihood
        under the softmax, in float64). Returns (ppl, ppl_err, scored, running ppl per
        chunk)."""
        n_chunks = len(ids) // n_ctx
        if max_chunks > 0:
            n_chunks = min(n_chunks, max_chunks)
        if n_chunks < 1:
            raise OracleError(f"the text has {len(ids)} tokens, fewer than one chunk of {n_ctx}")
        bos = self.hp.bos_id if self.hp.add_bos and self.hp.bos_id is not None and \
            ids[0] == self.hp.bos_id else None
        first = n_ctx // 2
        nll, running = [], []
        for c in range(n_chunks):
            chunk = list(ids[c * n_ctx:(c + 1) * n_ctx])
            if bos is not None:
                chunk[0] = int(bos)
            logits = self.forward(chunk[:-1], self.new_cache(n_ctx), rows=slice(first, n_ctx - 1))
            mx = logits.max(axis=1, keepdims=True)
            lse = (mx[:, 0] + np.log(np.exp(logits - mx).sum(axis=1)))
            nll.extend(lse - logits[np.arange(logits.shape[0]), chunk[first + 1:]])
            running.append(float(np.exp(np.mean(nll))))
        v = np.asarray(nll)
        mean, var = v.mean(), (v * v).mean() - v.mean() ** 2
        ppl = float(np.exp(mean))
        err = float(np.sqrt(var / (v.size - 1)) * ppl) if var > 0 and v.size > 1 else 0.0
        return ppl, err, int(v.size), running


def tokenize(model, text):
    if not hasattr(model, "tokenizer"):
        from tokenizer_peer import build  # the HF tokenizer built from the GGUF
        model.tokenizer = build(model.path)
    ids = model.tokenizer.encode(text, add_special_tokens=False).ids
    if model.hp.add_bos and model.hp.bos_id is not None:
        ids = [int(model.hp.bos_id)] + ids
    return ids


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(models, prompts, steps):
    """prompts: list of ("text", str) or ("ids", [int]). Returns the cases."""
    cases = []
    for path in models:
        model = Model(path)
        digest = sha256(path)
        for kind, value in prompts:
            t0 = time.perf_counter()
            ids = tokenize(model, value) if kind == "text" else value
            out, top5, margin = model.greedy(ids, steps)
            cases.append({"model": path, "sha256": digest,
                          "text": value if kind == "text" else None, "prompt_ids": ids,
                          "ids": out, "top5": top5, "margin": margin,
                          "seconds": round(time.perf_counter() - t0, 3)})
    return cases


def dump(cases, out):
    """JSON with one line per list of ids and per step's top-5, so stored files diff well."""
    j = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    parts = []
    for c in cases:
        steps = ",\n    ".join(j(t) for t in c["top5"])
        parts.append(
            f'  {{"model": {j(c["model"])}, "sha256": {j(c["sha256"])},\n'
            f'   "text": {j(c["text"])},\n'
            f'   "prompt_ids": {j(c["prompt_ids"])},\n'
            f'   "ids": {j(c["ids"])},\n'
            f'   "margin": {j(c["margin"])},\n'
            f'   "top5": [\n    {steps}],\n'
            f'   "seconds": {j(c["seconds"])}}}')
    text = ('{"oracle": "tests/peer/oracle.py (float64 numpy, gguf dequantize, HF tokenizers)",\n'
            ' "cases": [\n' + ",\n".join(parts) + "\n ]}\n")
    json.loads(text)  # well-formed, whatever the content
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def perplexity(models, text_path, n_ctx, max_chunks):
    """One entry per model: its perplexity on the text (see Model.perplexity)."""
    with open(text_path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    out = []
    for path in models:
        model = Model(path)
        t0 = time.perf_counter()
        ids = tokenize(model, text)
        ppl, err, scored, running = model.perplexity(ids, n_ctx, max_chunks)
        out.append({"model": path, "sha256": sha256(path),
                    "text_sha256": hashlib.sha256(raw).hexdigest(), "n_ctx": n_ctx,
                    "chunks": len(running), "tokens": len(ids), "scored": scored, "ppl": ppl,
                    "ppl_err": err, "running": running,
                    "seconds": round(time.perf_counter() - t0, 3)})
    return out


def dump_perplexity(entries, out):
    text = ('{"oracle": "tests/peer/oracle.py --perplexity (float64 numpy, llama-perplexity\'s '
            'method)",\n "perplexity": [\n' +
            ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in entries) + "\n ]}\n")
    json.loads(text)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def kept_models(paths):
    """The kept models to write or check: those given (each must be in KEPT), else every
    one of KEPT present under models/."""
    if paths:
        for p in paths:
            if os.path.basename(p) not in KEPT:
                raise OracleError(f"{p}: not a kept model ({', '.join(KEPT)})")
        return paths
    found = [os.path.join(MODELS, n) for n in KEPT if os.path.exists(os.path.join(MODELS, n))]
    if not found:
        raise OracleError(f"none of {', '.join(KEPT)} is under {MODELS} (run scripts/setup)")
    return found


def compute_kept(path):
    """The kept greedy cases of one model, with its file name as the model."""
    name = os.path.basename(path)
    _, steps, prompts = KEPT[name]
    cases = run([path], [("text", t) for t in prompts], steps)
    for c in cases:  # stored relative to the repository, whatever the checkout
        c["model"] = name
    return cases


def compute_perplexity(paths):
    entries = perplexity(paths, PPL_TEXT, PPL_CTX, PPL_CHUNKS)
    for e in entries:
        e["model"] = os.path.basename(e["model"])
        e.pop("seconds")
    return entries


def write_kept(paths):
    for p in paths:
        out = os.path.join(DATA, KEPT[os.path.basename(p)][0])
        dump(compute_kept(p), out)
        print(f"oracle: wrote {os.path.relpath(out, ROOT)}", file=sys.stderr)
    new = {e["model"]: e for e in compute_perplexity(paths)}
    old = []
    if os.path.exists(PPL_OUT):  # keep the entries of the models not recomputed
        with open(PPL_OUT, encoding="utf-8") as f:
            old = [e for e in json.load(f)["perplexity"] if e["model"] not in new]
    dump_perplexity(sorted(old + list(new.values()), key=lambda e: e["model"]), PPL_OUT)
    print(f"oracle: wrote {os.path.relpath(PPL_OUT, ROOT)}", file=sys.stderr)


def check_kept(paths, tol=1e-6):
    """Recomputes the kept outputs of paths; returns the differences found (strings)."""
    bad = []
    for p in paths:
        kept_file = os.path.join(DATA, KEPT[os.path.basename(p)][0])
        with open(kept_file, encoding="utf-8") as f:
            kept = json.load(f)["cases"]
        now = compute_kept(p)
        if len(now) != len(kept):
            bad.append(f"{kept_file}: {len(kept)} cases kept, {len(now)} now")
        for i, (a, b) in enumerate(zip(now, kept)):
            for key in ("sha256", "text", "prompt_ids", "ids"):
                if a[key] != b[key]:
                    bad.append(f"{kept_file} case {i}: {key} differs")
            for s, (ta, tb) in enumerate(zip(a["top5"], b["top5"])):
                if [t[0] for t in ta] != [t[0] for t in tb] or \
                        max(abs(x[1] - y[1]) for x, y in zip(ta, tb)) > tol:
                    bad.append(f"{kept_file} case {i} step {s}: top-5 {ta} now, {tb} kept")
        print(f"oracle: checked {os.path.relpath(kept_file, ROOT)}", file=sys.stderr)
    with open(PPL_OUT, encoding="utf-8") as f:
        kept = {e["model"]: e for e in json.load(f)["perplexity"]}
    for e in compute_perplexity(paths):
        k = kept.get(e["model"])
        if k is None:
            bad.append(f"{PPL_OUT}: no entry for {e['model']}")
            continue
        for key in ("sha256", "text_sha256", "n_ctx", "chunks", "tokens", "scored"):
            if e[key] != k[key]:
                bad.append(f"{PPL_OUT} {e['model']}: {key} {e[key]} now, {k[key]} kept")
        now, then = e["running"] + [e["ppl"]], k["running"] + [k["ppl"]]
        if max(abs(x - y) for x, y in zip(now, then)) > tol:
            bad.append(f"{PPL_OUT} {e['model']}: ppl {e['running']} now, {k['running']} kept")
    print(f"oracle: checked {os.path.relpath(PPL_OUT, ROOT)}", file=sys.stderr)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", metavar="MODEL.gguf")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--prompt", action="append", default=[], help="text to tokenize")
    ap.add_argument("--prompt-file", action="append", default=[],
                    help="a file whose whole text (UTF-8) is a prompt")
    ap.add_argument("--ids", action="append", default=[], help="comma-separated prompt ids")
    ap.add_argument("--perplexity", metavar="TEXTFILE", help="perplexity on this text")
    ap.add_argument("-c", "--ctx", type=int, default=PPL_CTX, help="tokens per perplexity chunk")
    ap.add_argument("--chunks", type=int, default=0,
                    help="score at most N chunks (0: all the text holds)")
    ap.add_argument("--out", help="output file (default stdout)")
    ap.add_argument("--write", action="store_true", help="recompute the kept files in tests/data")
    ap.add_argument("--check", action="store_true",
                    help="recompute the kept files' outputs and compare")
    a = ap.parse_args()
    try:
        if a.write or a.check:
            paths = kept_models(a.models)
            if a.write:
                write_kept(paths)
                return
            bad = check_kept(paths)
            for b in bad:
                print(f"oracle: {b}", file=sys.stderr)
            print("oracle: the kept files are " + ("NOT current" if bad else "current"),
                  file=sys.stderr)
            sys.exit(1 if bad else 0)
        if not a.models:
            ap.error("give at least one model")
        if a.perplexity:
            if a.ctx < 4:
                ap.error("-c must be at least 4")
            dump_perplexity(perplexity(a.models, a.perplexity, a.ctx, a.chunks), a.out)
            return
        if a.steps < 1:
            ap.error("--steps must be >= 1")
        prompts = [("text", p) for p in a.prompt]
        for fn in a.prompt_file:
            with open(fn, encoding="utf-8", newline="") as f:
                prompts.append(("text", f.read()))
        prompts += [("ids", [int(i) for i in s.split(",") if i.strip()]) for s in a.ids]
        if not prompts:
            ap.error("give a --prompt or --ids")
        dump(run(a.models, prompts, a.steps), a.out)
    except (OracleError, OSError, ValueError) as e:
        sys.exit(f"oracle: {e}")


if __name__ == "__main__":
    main()

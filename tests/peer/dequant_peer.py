#!/usr/bin/env python3
"""dequant_peer.py — the reference side of tests/test_quant.c: dequantizes tensors of the real
model, and seeded random blocks of each GGML type the C test names, with the `gguf` package,
and writes raw float32 files plus a manifest for the C test to compare against
clkv__dequantize_row.

usage: dequant_peer.py MODEL.gguf OUT_DIR [ID:ELEMS:BYTES ...]
  each ID:ELEMS:BYTES is a row of kernels/contract.h: type id, elements and bytes per block
manifest.txt lines:  model <tensor name> <n elements> <file.f32>
                     raw <ggml type id> <n elements> <file.raw> <file.f32>
                     skip <ggml type id> <why>   (the package cannot decode it, or its
                                                  block sizes differ from the row's)
Random blocks get small finite values in their fp16 scale fields (random bytes there could be
inf or nan). Those fields are found, not listed: a field is one where an inf turns the
dequantized block of an all-zero block non-finite.
"""
import os
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as Q, GGML_QUANT_SIZES
from gguf.quants import dequantize


def model_tensors(path, out, manifest):
    """A few named tensors, and the first rows (up to 8192 values) of the first tensor of
    every type the file holds (a K-quant mix has five)."""
    r = GGUFReader(path)
    want = {"token_embd.weight": 4, "blk.0.attn_q.weight": None, "blk.0.ffn_down.weight": None,
            "blk.0.attn_norm.weight": None}
    seen = set()
    for t in r.tensors:
        if t.name not in want and t.tensor_type not in seen and len(t.data.shape) == 2:
            want[t.name] = max(1, 8192 // int(t.shape[0]))
        seen.add(t.tensor_type)
    for t in r.tensors:
        if t.name not in want:
            continue
        data = t.data
        if want[t.name] is not None:
            data = data[: want[t.name]]
        y = np.asarray(dequantize(data, t.tensor_type), dtype=np.float32).reshape(-1)
        fn = t.name.replace(".", "_") + ".f32"
        y.tofile(os.path.join(out, fn))
        manifest.append(f"model {t.name} {y.size} {fn}")


def scale_fields(qt, size):
    """Byte offsets of the fp16 fields whose value scales the block."""
    fields = []
    for o in range(0, size - 1, 2):
        raw = np.zeros((1, size), dtype=np.uint8)
        raw[0, o : o + 2] = (0x00, 0x7C)  # fp16 +inf, little-endian
        with np.errstate(all="ignore"):
            y = np.asarray(dequantize(raw, qt), dtype=np.float32)
        if not np.all(np.isfinite(y)):
            fields.append(o)
    return fields


def random_blocks(qt, block, size, rng):
    """Random blocks with small scales; a block that decodes to a non-finite or huge value
    (a plain F32/BF16 element, say) is drawn again."""
    n_blocks = max(16, 512 // block)
    fields = scale_fields(qt, size)
    raw = np.zeros((n_blocks, size), dtype=np.uint8)
    for b in range(n_blocks):
        for _ in range(1000):
            raw[b] = rng.integers(0, 256, size=size, dtype=np.uint8)
            for o in fields:
                h = np.float16(rng.standard_normal() * 0.05)
                raw[b, o : o + 2] = np.frombuffer(h.tobytes(), dtype=np.uint8)
            with np.errstate(all="ignore"):
                y = np.asarray(dequantize(raw[b : b + 1], qt), dtype=np.float32)
            if np.all(np.isfinite(y)) and np.max(np.abs(y)) < 1e4:
                break
    return raw, n_blocks


def row_blocks(row, out, manifest, rng):
    tid, block, size = (int(v) for v in row.split(":"))
    try:
        qt = Q(tid)
    except ValueError:
        manifest.append(f"skip {tid} the gguf package does not know type {tid}")
        return
    if GGML_QUANT_SIZES[qt] != (block, size):
        manifest.append(f"skip {tid} gguf's {qt.name} blocks are {GGML_QUANT_SIZES[qt]}, "
                        f"the row's ({block}, {size})")
        return
    try:
        raw, n_blocks = random_blocks(qt, block, size, rng)
    except NotImplementedError:
        manifest.append(f"skip {tid} the gguf package cannot dequantize {qt.name}")
        return
    y = np.asarray(dequantize(raw, qt), dtype=np.float32).reshape(-1)
    base = f"rand_{qt.name}"
    raw.tofile(os.path.join(out, base + ".raw"))
    y.tofile(os.path.join(out, base + ".f32"))
    manifest.append(f"raw {tid} {n_blocks * block} {base}.raw {base}.f32")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model, out = sys.argv[1], sys.argv[2]
    manifest = []
    model_tensors(model, out, manifest)
    rng = np.random.default_rng(1234)
    for row in sys.argv[3:]:
        row_blocks(row, out, manifest, rng)
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()

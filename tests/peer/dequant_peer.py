#!/usr/bin/env python3
"""dequant_peer.py — the reference side of tests/test_quant.c: dequantizes tensors of the real
model and seeded random blocks of every K/legacy quant type with the `gguf` package, and writes
raw float32 files plus a manifest for the C test to compare against clkv_dequantize_row.

usage: dequant_peer.py MODEL.gguf OUT_DIR
manifest.txt lines:  model <tensor name> <n elements> <file.f32>
                     raw <ggml type id> <n elements> <file.raw> <file.f32>
"""
import os
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as Q, GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of the fp16 scale fields in one block (random bytes there could be inf/nan).
HALF_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def model_tensors(path, out, manifest):
    r = GGUFReader(path)
    want = {"token_embd.weight": 4, "blk.0.attn_q.weight": None, "blk.0.ffn_down.weight": None,
            "blk.0.attn_norm.weight": None}
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


def random_blocks(out, manifest, n_blocks=16):
    rng = np.random.default_rng(1234)
    for qt, offs in HALF_FIELDS.items():
        block, size = GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
        for o in offs:
            h = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
            raw[:, o : o + 2] = h.view(np.uint8).reshape(n_blocks, 2)
        y = np.asarray(dequantize(raw, qt), dtype=np.float32).reshape(-1)
        base = f"rand_{qt.name}"
        raw.tofile(os.path.join(out, base + ".raw"))
        y.tofile(os.path.join(out, base + ".f32"))
        manifest.append(f"raw {int(qt)} {n_blocks * block} {base}.raw {base}.f32")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model, out = sys.argv[1], sys.argv[2]
    manifest = []
    model_tensors(model, out, manifest)
    random_blocks(out, manifest)
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()

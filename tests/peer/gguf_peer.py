#!/usr/bin/env python3
"""gguf_peer.py — the peer of clkv's GGUF writer and reader (tests/test_gguf_peer.c): reads a
GGUF file with the PyPI `gguf` package's GGUFReader and prints what it holds, one line each:

  version <n>
  alignment <n>
  kv <key> <value>
  tensor <name> <ggml type id> <ne0,ne1,...> <bytes> <data offset in the file> <sha256 of the bytes>

A value is u:<decimal> (unsigned integers and bool), i:<decimal> (signed), f:<hex bits>
(float32), d:<hex bits> (float64), s:<hex bytes> (string), or a<element type id>[<n>]
followed by its n elements, space-separated. Keys and tensors in file order.

usage: gguf_peer.py FILE.gguf
"""
import hashlib
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType as V

UNSIGNED = {V.UINT8, V.UINT16, V.UINT32, V.UINT64, V.BOOL}
SIGNED = {V.INT8, V.INT16, V.INT32, V.INT64}


def scalar(vtype, part):
    if vtype in UNSIGNED:
        return f"u:{int(part[0])}"
    if vtype in SIGNED:
        return f"i:{int(part[0])}"
    if vtype == V.FLOAT32:
        return f"f:{int(np.asarray(part, dtype=np.float32).view(np.uint32)[0]):08x}"
    if vtype == V.FLOAT64:
        return f"d:{int(np.asarray(part, dtype=np.float64).view(np.uint64)[0]):016x}"
    if vtype == V.STRING:
        return "s:" + bytes(part).hex()
    raise ValueError(f"value type {vtype} is not a scalar")


def render(field):
    if field.types[0] != V.ARRAY:
        return scalar(field.types[0], field.parts[field.data[0]])
    if len(field.types) > 2:
        raise ValueError(f"{field.name}: nested arrays are not compared")
    etype = field.types[1] if len(field.types) > 1 else None
    if etype is None:  # an empty array: the reader keeps no element type
        etype = V(int(field.parts[-2][0]))
    items = [scalar(etype, field.parts[i]) for i in field.data]
    return f"a{int(etype)}[{len(items)}]" + "".join(" " + x for x in items)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("usage: ")[1].strip())
    r = GGUFReader(sys.argv[1])
    out = [f"version {int(r.fields['GGUF.version'].parts[-1][0])}", f"alignment {r.alignment}"]
    for name, field in r.fields.items():
        if name.startswith("GGUF."):  # the header, not key-value pairs
            continue
        out.append(f"kv {name} {render(field)}")
    for t in r.tensors:
        raw = np.ascontiguousarray(t.data).tobytes()
        shape = ",".join(str(int(x)) for x in t.shape)
        out.append(f"tensor {t.name} {int(t.tensor_type)} {shape} {int(t.n_bytes)} "
                   f"{int(t.data_offset)} {hashlib.sha256(raw).hexdigest()}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""chat_peer.py — the peer of clkv's chat templates (tests/test_chat_peer.c): renders each case
with the real Jinja template, as Hugging Face transformers does (jinja2's sandbox with
trim_blocks and lstrip_blocks, loop controls, raise_exception), so the hand-written
renderers of host/text/chat.c are checked against the templates themselves.

usage: chat_peer.py CASES.json OUT_DIR
CASES.json is a list of cases:
  {"gguf": MODEL.gguf | "template": TEXT, "bos": TEXT, "eos": TEXT,
   "add_generation_prompt": true|false, "messages": [{"role": R, "content": C}, ...]}
With "gguf" the template and the BOS/EOS texts come from the model file (read with the gguf
package); "bos"/"eos" are then ignored. Writes OUT_DIR/<i>.txt (the rendering) for case i,
or OUT_DIR/<i>.err (the message of the template's raise_exception) when the template refuses
it. Any other error (a template jinja2 cannot parse, say) fails the run.
"""
import json
import os
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Refused(Exception):
    """The template's own raise_exception: it does not accept the conversation."""


def raise_exception(message):
    raise Refused(message)


def from_gguf(path):
    from gguf import GGUFReader

    r = GGUFReader(path)

    def field(name):
        f = r.fields[name]
        return f.parts[f.data[0]]

    tokens = r.fields["tokenizer.ggml.tokens"]

    def token(key):
        return bytes(tokens.parts[tokens.data[int(field(key)[0])]]).decode()

    template = bytes(field("tokenizer.chat_template")).decode()
    return template, token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("usage: ")[1].split("\n")[0])
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    for i, c in enumerate(cases):
        if c.get("gguf"):
            text, bos, eos = from_gguf(c["gguf"])
        else:
            text, bos, eos = c["template"], c["bos"], c["eos"]
        try:
            out = env.from_string(text).render(messages=c["messages"], bos_token=bos, eos_token=eos,
                                               add_generation_prompt=c["add_generation_prompt"])
            name = f"{i}.txt"
        except Refused as e:
            out, name = str(e), f"{i}.err"
        with open(os.path.join(sys.argv[2], name), "w", encoding="utf-8", newline="") as f:
            f.write(out)


if __name__ == "__main__":
    main()

"""test_page.py — the chat page of `clkv serve` in headless Debian chromium, driven over
the DevTools protocol: type a question, press Enter, see the streamed answer in the page.
Run by scripts/test:  python tests/serve/test_page.py build/clkv MODEL
Skipped (exit 0 with a note) when no chromium is installed."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

from serve_util import Server


class Browser:
    """Headless chromium with a DevTools websocket on a page."""

    def __init__(self, exe):
        self.dir = tempfile.mkdtemp(prefix="clkv-chromium-")
        self.p = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run", "--remote-debugging-address=127.0.0.1",
                                   "--remote-debugging-port=0", f"--user-data-dir={self.dir}",
                                   "about:blank"], stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        port = None
        while time.time() < deadline and port is None:
            line = self.p.stderr.readline()
            if not line:
                raise RuntimeError("chromium exited")
            m = re.search(r"ws://127\.0\.0\.1:(\d+)/", line)
            port = m and int(m.group(1))
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.n = 0

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def close(self):
        self.ws.close()
        self.p.kill()
        self.p.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    clkv, model = sys.argv[1], sys.argv[2]
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("page: no chromium installed (scripts/setup installs it); skipped")
        return
    srv = Server(clkv, model, None, "--parallel", "2")
    b = None
    try:
        b = Browser(exe)
        b.call("Page.enable")
        b.call("Page.navigate", url=f"http://127.0.0.1:{srv.port}/")
        deadline = time.time() + 30
        while b.js("document.readyState") != "complete" or not b.js("!!document.getElementById('q')"):
            assert time.time() < deadline, "the chat page did not load"
            time.sleep(0.1)
        b.js("document.getElementById('q').focus()")
        b.call("Input.insertText", text="What is the capital of France?")  # typed, as a user would
        for kind in ("keyDown", "keyUp"):
            b.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                   windowsVirtualKeyCode=13, text="\r" if kind == "keyDown" else "")
        deadline, seen = time.time() + 120, []
        while time.time() < deadline:
            text = b.js("(document.querySelector('.assistant')||{}).textContent||''")
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            if b.js("!!(document.querySelector('.assistant')||{dataset:{}}).dataset.done"):
                break
            time.sleep(0.05)
        answer = seen[-1] if seen else ""
        assert "Paris" in answer, f"no Paris in the page: {answer!r}"
        assert b.js("document.querySelector('.user').textContent") == "What is the capital of France?"
        print(f"page: typed the question, the answer streamed in {len(seen)} visible steps: "
              f"{answer!r}: ok")
    finally:
        if b:
            b.close()
        rc = srv.stop()
    assert rc == 0, rc


if __name__ == "__main__":
    main()

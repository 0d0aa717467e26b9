"""serve_util.py — a `clkv serve` process for the tests: started on a free loopback port
(--port 0, the address read from its stderr), raw HTTP requests, /metrics as a dict."""
import http.client
import json
import re
import signal
import subprocess
import threading
import time


class Server:
    """A clkv serve process on 127.0.0.1, port chosen by the kernel (--port 0)."""

    def __init__(self, clkv, model, key, *args):
        self.key = key
        self.p = subprocess.Popen([clkv, "serve", "-m", model, "--port", "0", *args],
                                  stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + 180
        while time.time() < deadline:
            line = self.p.stderr.readline()
            if not line:
                raise RuntimeError("clkv serve exited:\n" + "".join(self.log))
            self.log.append(line)
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("clkv serve did not start in 180 s")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            self.log.append(line)

    def http(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers, body bytes) of one request on a fresh connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": "Bearer " + self.key} if self.key else {}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        out = (r.status, dict(r.getheaders()), r.read())
        c.close()
        return out

    def metrics(self):
        status, _, body = self.http("GET", "/metrics")
        assert status == 200
        m = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                m[name] = float(value)
        return m

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(timeout=60)

"""test_nginx.py — two `clkv serve` processes behind Debian nginx on loopback, with
session affinity (docs/SERVING.md): requests of one session (X-Session-Id) always reach
the same server, where their shared prompt prefix is cached; requests are spread over both
and all answered. Run by scripts/test:  python tests/serve/test_nginx.py build/clkv MODEL
Skipped (exit 0 with a note) when no nginx is installed."""
import concurrent.futures as cf
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from serve_util import Server

CONF = """worker_processes 1;
daemon off;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  # a session's requests go to one server (its KV blocks are there); no session: spread
  map $http_x_session_id $clkv_affinity {{
    ""      $request_id;
    default $http_x_session_id;
  }}
  upstream clkv {{
    hash $clkv_affinity consistent;
    server 127.0.0.1:{p1};
    server 127.0.0.1:{p2};
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://clkv;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;          # server-sent events pass through as they come
      proxy_read_timeout 300s;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
"""

SYSTEM = ("You are a helpful assistant for a travel agency. Answer in one short sentence, "
          "name the city, and do not add anything else to the answer.")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(port, session, question):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            "max_tokens": 3, "temperature": 0}
    h = {"Content-Type": "application/json"}
    if session:
        h["X-Session-Id"] = session
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=h)
    r = c.getresponse()
    out = (r.status, r.getheader("X-Upstream"), json.loads(r.read()))
    c.close()
    return out


def main():
    clkv, model = sys.argv[1], sys.argv[2]
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        print("nginx: not installed (scripts/setup installs it); skipped")
        return
    servers = [Server(clkv, model, None, "--parallel", "2", "--ctx", "512") for _ in range(2)]
    d = tempfile.mkdtemp(prefix="clkv-nginx-")
    port = free_port()
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(CONF.format(dir=d, p1=servers[0].port, p2=servers[1].port, port=port,
                            user="user root;" if os.getuid() == 0 else ""))
    ng = subprocess.Popen([nginx, "-p", d, "-c", f"{d}/nginx.conf"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert ng.poll() is None, ng.stderr.read()
                assert time.time() < deadline, "nginx did not start"
                time.sleep(0.1)
        jobs = [(f"s{i % 4}", f"Question {i}: where is the Eiffel tower?") for i in range(12)]
        jobs += [(None, f"Question {i}: where is the Colosseum?") for i in range(8)]
        with cf.ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda j: (j[0],) + post(port, *j), jobs))
        assert all(status == 200 and r["choices"][0]["message"]["content"] for _, status, _, r in got), got
        by_session = {}
        for session, _, upstream, _ in got:
            if session:
                by_session.setdefault(session, set()).add(upstream)
        assert all(len(u) == 1 for u in by_session.values()), by_session
        used = {upstream for _, _, upstream, _ in got}
        assert len(used) == 2, f"every request went to {used}"
        # The hash ring depends on the servers' (random) ports, so all four sessions may land on
        # one server (about one run in five), leaving the other only session-less requests that
        # arrive together and share nothing cached yet. Then more sessions, one request after
        # another, until one lands on the other server; its second request hits the cache there.
        homes = {next(iter(u)) for u in by_session.values()}
        for i in range(4, 40):
            if len(homes) == 2:
                break
            first = post(port, f"s{i}", "Where is the Louvre?")
            second = post(port, f"s{i}", "Where is the Louvre, again?")
            assert first[0] == second[0] == 200 and first[1] == second[1], (first, second)
            homes.add(first[1])
        assert len(homes) == 2, f"40 sessions all went to {homes}"
        hits = [s.metrics()["clkv_prefix_hit_tokens_total"] for s in servers]
        assert all(h > 0 for h in hits), hits
        print(f"nginx: {len(got)} requests answered through nginx, spread over both servers; each "
              f"session kept to one; prefix hits per server {[int(h) for h in hits]}: ok")
    finally:
        ng.terminate()
        ng.wait(timeout=30)
        rcs = [s.stop() for s in servers]
        shutil.rmtree(d, ignore_errors=True)
    assert rcs == [0, 0], rcs


if __name__ == "__main__":
    main()

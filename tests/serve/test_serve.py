"""test_serve.py — `clkv serve` through the official openai package and raw HTTP: chat,
streaming, completions, models, logprobs, seeds, 16 concurrent clients, every bad-input
case, a client that goes away, slow and idle connections, SIGTERM. Run by scripts/test:
    python tests/serve/test_serve.py build/clkv MODEL
The server listens on a free loopback port; every wait here is bounded."""
import concurrent.futures as cf
import http.client
import json
import signal
import socket
import sys
import time

import openai

from serve_util import Server

CLKV, MODEL = sys.argv[1], sys.argv[2]
KEY = "test-key-123"
CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]


def client(srv):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key=KEY,
                         timeout=120, max_retries=0)


def ask(c, messages, **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 12)
    r = c.chat.completions.create(model="m", messages=messages, **kw)
    return r.choices[0].message.content


def check_basics(srv, c):
    r = c.chat.completions.create(model="m", messages=CAPITAL, temperature=0, max_tokens=16)
    assert "Paris" in r.choices[0].message.content, r
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    chunks = list(c.chat.completions.create(model="m", messages=CAPITAL, temperature=0,
                                            max_tokens=16, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == r.choices[0].message.content, (text, r.choices[0].message.content)
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == [r.choices[0].finish_reason], finals
    assert chunks[-1].usage and chunks[-1].usage.completion_tokens == r.usage.completion_tokens

    t = c.completions.create(model="m", prompt="The capital of France is", temperature=0, max_tokens=3)
    assert "Paris" in t.choices[0].text and t.choices[0].finish_reason == "length", t
    st = "".join(x.choices[0].text for x in c.completions.create(
        model="m", prompt="The capital of France is", temperature=0, max_tokens=3, stream=True) if x.choices)
    assert st == t.choices[0].text, (st, t.choices[0].text)

    models = c.models.list().data
    assert len(models) == 1 and models[0].id.endswith(".gguf"), models

    stop = c.completions.create(model="m", prompt="The capital of France is", temperature=0,
                                max_tokens=8, stop=["."])
    assert stop.choices[0].finish_reason == "stop" and "." not in stop.choices[0].text, stop

    status, _, body = srv.http("POST", "/tokenize", {"content": "Hello world"})
    ids = json.loads(body)["tokens"]
    status2, _, body2 = srv.http("POST", "/detokenize", {"tokens": ids})
    assert status == status2 == 200 and json.loads(body2)["content"] == "Hello world", body2
    print("serve: chat, stream, completions, stop, models, tokenize: ok")


def check_logprobs_and_seed(c):
    r = c.chat.completions.create(model="m", messages=CAPITAL, temperature=0, max_tokens=6,
                                  logprobs=True, top_logprobs=3)
    lp = r.choices[0].logprobs.content
    assert len(lp) == r.usage.completion_tokens, (len(lp), r.usage)
    for t in lp:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token  # greedy: the chosen one is the likeliest
        assert [x.logprob for x in t.top_logprobs] == sorted((x.logprob for x in t.top_logprobs), reverse=True)
    legacy = c.completions.create(model="m", prompt="The capital of France is", temperature=0,
                                  max_tokens=3, logprobs=2)
    assert len(legacy.choices[0].logprobs.token_logprobs) == 3
    a = ask(c, CAPITAL, temperature=1.0, seed=7, max_tokens=16)
    b = ask(c, CAPITAL, temperature=1.0, seed=7, max_tokens=16)
    assert a == b, (a, b)
    print("serve: logprobs, seed determinism: ok")


PROMPTS = ["The capital of France is", "The capital of Italy is", "Two plus two is",
           "My favourite color is", "Once upon a time", "The sun rises in the",
           "Monday comes before", "A cat is an"]


def complete(c, prompt):
    r = c.completions.create(model="m", prompt=prompt, temperature=0, max_tokens=5)
    return r.choices[0].text


def check_concurrency(srv, c):
    """64 completions (short prompts, 5 tokens: CI time) from 16 threads, each its own client."""
    alone = {p: complete(c, p) for p in PROMPTS}
    before = srv.metrics()
    jobs = [PROMPTS[i % len(PROMPTS)] for i in range(64)]
    with cf.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda p: (p, complete(client(srv), p)), jobs))
    assert len(got) == 64
    for p, text in got:
        assert text == alone[p], (p, text, alone[p])
    m = srv.metrics()
    assert m["clkv_requests_running_max"] > 1, m["clkv_requests_running_max"]
    # 64 answers and the /metrics reply that read `before`
    assert m['clkv_requests_total{code="200"}'] - before['clkv_requests_total{code="200"}'] == 65
    assert m["clkv_prefix_hit_tokens_total"] > 0  # the chat template's shared prefix, earlier
    print(f"serve: 64 requests from 16 clients identical to alone; "
          f"{int(m['clkv_requests_running_max'])} decoded together at most: ok")


def expect_error(srv, code, path, body, param=None, headers=None):
    status, h, raw = srv.http("POST", path, body, headers)
    assert status == code, (status, raw)
    err = json.loads(raw)["error"]
    assert err["message"] and err["type"], err
    if param:
        assert err["param"] == param, err
    return h


def check_bad_input(srv):
    chat = "/v1/chat/completions"
    expect_error(srv, 400, chat, "{not json")
    expect_error(srv, 400, chat, "[1, 2]")
    expect_error(srv, 400, chat, {"messages": []}, "messages")
    expect_error(srv, 400, chat, {"messages": "hi"}, "messages")
    expect_error(srv, 400, chat, {"messages": [{"role": "wizard", "content": "x"}]}, "messages")
    expect_error(srv, 400, chat, {"messages": [{"role": "user", "content": 7}]}, "messages")
    expect_error(srv, 400, chat, {"messages": CAPITAL, "temperature": "hot"}, "temperature")
    expect_error(srv, 400, chat, {"messages": CAPITAL, "max_tokens": -1}, "max_tokens")
    expect_error(srv, 400, chat, {"messages": CAPITAL, "stream": "yes"}, "stream")
    expect_error(srv, 400, chat, {"messages": CAPITAL, "stop": [1]}, "stop")
    for field, value in (("n", 2), ("tools", []), ("response_format", {"type": "json_object"})):
        expect_error(srv, 400, chat, {"messages": CAPITAL, field: value}, field)
    expect_error(srv, 400, "/v1/completions", {"prompt": 5}, "prompt")
    expect_error(srv, 400, "/v1/completions", {"prompt": "hello " * 3000}, "prompt")
    expect_error(srv, 413, "/v1/completions", "x" * (70 * 1024))
    expect_error(srv, 401, chat, {"messages": CAPITAL}, headers={"Authorization": "Bearer wrong"})
    status, _, _ = srv.http("GET", "/nowhere")
    assert status == 404
    status, _, _ = srv.http("GET", "/health", headers={"Authorization": ""})
    assert status == 200
    print("serve: bad input (JSON, types, roles, context, n/tools/response_format, 413, 401, 404): ok")


def check_overload_and_disconnect(srv, limit):
    """More streams than --parallel + --max-queue: some get 503 with Retry-After; the rest are
    dropped mid-stream, which cancels them; the KV cache goes back to idle."""
    conns, codes = [], []
    body = json.dumps({"model": "m", "messages": CAPITAL, "max_tokens": 400, "stream": True,
                       "temperature": 0.7})
    for _ in range(limit + 3):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        c.request("POST", "/v1/chat/completions", body=body,
                  headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
        conns.append(c)
    for c in conns:
        r = c.getresponse()
        codes.append(r.status)
        if r.status == 503:
            assert r.getheader("Retry-After"), r.getheaders()
        else:
            r.read1(64)  # the stream has begun
    assert codes.count(503) >= 3 and codes.count(200) == limit, codes
    for c in conns:
        c.sock.close() if c.sock else None
        c.close()
    wait_idle(srv)
    m = srv.metrics()
    assert m["clkv_requests_cancelled_total"] >= 1, m["clkv_requests_cancelled_total"]
    assert ask(client(srv), CAPITAL).count("Paris") >= 1  # still serving
    print(f"serve: {codes.count(503)} of {len(codes)} streams refused with 503, the rest "
          f"cancelled by disconnect: ok")


def wait_idle(srv):
    deadline = time.time() + 60
    while time.time() < deadline:
        m = srv.metrics()
        busy = (m["clkv_requests_running"], m["clkv_requests_waiting"],
                m['clkv_kv_blocks{tier="device",state="used"}'])
        if busy == (0, 0, 0):
            return
        time.sleep(0.2)
    raise AssertionError(f"not idle after 60 s: running, waiting, used blocks = {busy}")


def main():
    parallel, queue = 4, 16
    srv = Server(CLKV, MODEL, KEY, "--api-key", KEY, "--parallel", str(parallel), "--max-queue", str(queue),
                 "--max-body", str(64 * 1024), "--ctx", "1024", "--timeout", "30", "--grace", "1")
    try:
        c = client(srv)
        for check in (lambda: check_basics(srv, c), lambda: check_logprobs_and_seed(c),
                      lambda: check_concurrency(srv, c), lambda: check_bad_input(srv),
                      lambda: wait_idle(srv), lambda: check_overload_and_disconnect(srv, parallel + queue),
                      lambda: wait_idle(srv)):
            t0 = time.time()
            check()
            print(f"  ({time.time() - t0:.1f} s)")
        print("serve: KV blocks back to idle: ok")
    except BaseException:
        print("".join(srv.log[-30:]), file=sys.stderr)
        srv.p.kill()
        raise
    check_shutdown(srv)
    check_timeouts()


def check_timeouts():
    """A connection that sends half a request, and one that sends nothing, are closed after
    --timeout; the server keeps answering others."""
    srv = Server(CLKV, MODEL, None, "--timeout", "1", "--parallel", "1")
    try:
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        slow.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        t0 = time.time()
        for s in (slow, idle):
            assert s.recv(4096) == b"", "the connection should be closed without a reply"
        waited = time.time() - t0
        assert waited < 15, waited
        status, _, body = srv.http("GET", "/health")
        assert status == 200, body
        print(f"serve: half-sent and idle connections closed after {waited:.1f} s (--timeout 1), "
              f"others still served: ok")
    finally:
        assert srv.stop() == 0


def check_shutdown(srv):
    """SIGTERM with a stream running: after --grace it is cancelled, its stream still ends
    with [DONE], and the server exits 0."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    c.request("POST", "/v1/completions", headers={"Authorization": "Bearer " + KEY},
              body=json.dumps({"prompt": "Once upon a time", "max_tokens": 1000, "stream": True}))
    r = c.getresponse()
    assert r.status == 200
    first = r.readline()
    assert first.startswith(b"data: "), first
    srv.p.send_signal(signal.SIGTERM)
    rest = r.read()  # to the end of the stream
    assert rest.rstrip().endswith(b"data: [DONE]"), rest[-200:]
    rc = srv.p.wait(timeout=60)
    assert rc == 0, rc
    assert "stopped" in "".join(srv.log), srv.log
    print("serve: SIGTERM mid-stream: the stream ends with [DONE], exit 0: ok")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Soak: concurrent clients mixing every endpoint against one `hearth serve`, with
disconnects in the middle of streams, for a bounded time; then checks that nothing broke.

    bench/soak.py HEARTH_BINARY MODEL.gguf [--seconds 120] [--clients 16] [--seed 1]

The server runs on a loopback port over a temporary store holding MODEL.gguf as "soak".
Each client loops over a table of actions (generate and chat, streamed and not, /v1 chat
and completions, /v1/messages, tokenize, show, tags, ps, metrics, blob upload, create +
copy + delete of its own scratch models, malformed and unknown-model requests, streams
abandoned after a few lines) and checks every answer's status against what that action
must get. After the load it waits for the server to settle and checks:

  - no request failed: every answer had its expected status, none was a 5xx, none was cut
    off (except the streams the client abandoned on purpose), no connection error;
  - the server's thread count returns to its idle level and its RSS to within a margin of
    it (read from /proc/PID/status; the margin covers the allocator's retained pages);
  - the store is what the load meant: the same manifests as before with the same bytes,
    every blob they name present with its digest (scratch models were all deleted).

Prints one table of counts and figures; exits 1 on any violation. The ctest `soak_short`
runs it for 25 s with 8 clients; a longer soak is `--seconds 600`.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from serve_bench import free_port  # the load generator beside this script


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) * 1024


class Client:
    """One keep-alive connection; reconnects after a failure or an abandoned stream."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, raw=None, headers=None, abandon_after=None):
        """Returns (status, body bytes). abandon_after=N: read N lines of the answer, then
        drop the connection (a client that goes away); status then as received."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
            if abandon_after is not None:
                for _ in range(abandon_after):
                    if not r.readline():
                        break
                self.close()
                return r.status, b""
            out = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, out
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise RuntimeError(f"{method} {path}: {type(e).__name__}: {e}")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def ndjson_done(body):
    lines = [json.loads(x) for x in body.splitlines() if x.strip()]
    return bool(lines) and lines[-1].get("done") is True


GEN = {"temperature": 0.7, "num_predict": 24, "seed": 3}


def actions(me, n):
    """The action table: name -> (method, path, body or raw, expected statuses, check, abandon)."""
    scratch, copy = f"scratch-{me}-{n}", f"scratch-{me}-{n}-copy"
    blob = f"soak {me} {n} ".encode() * 200
    return {
        "generate": [("POST", "/api/generate", {"model": "soak", "prompt": "Once upon a time", "stream": False,
                                                "options": GEN}, None, {200}, None, None)],
        "generate_stream": [("POST", "/api/generate", {"model": "soak", "prompt": "The dog", "options": GEN},
                             None, {200}, ndjson_done, None)],
        "chat_stream": [("POST", "/api/chat", {"model": "soak", "messages": [{"role": "user", "content": "Hi"}],
                                               "options": GEN}, None, {200}, ndjson_done, None)],
        "abandon_stream": [("POST", "/api/generate", {"model": "soak", "prompt": "A long story",
                                                      "options": {"num_predict": 400}}, None, {200}, None, 3)],
        "openai_chat": [("POST", "/v1/chat/completions", {"model": "soak", "stream": True, "max_tokens": 16,
                                                          "messages": [{"role": "user", "content": "Hello"}]},
                         None, {200}, lambda b: b.rstrip().endswith(b"data: [DONE]"), None)],
        "openai_abandon": [("POST", "/v1/chat/completions", {"model": "soak", "stream": True, "max_tokens": 300,
                                                             "messages": [{"role": "user", "content": "Go"}]},
                            None, {200}, None, 4)],
        "openai_completion": [("POST", "/v1/completions", {"model": "soak", "prompt": "Once", "max_tokens": 8},
                               None, {200}, None, None)],
        "anthropic": [("POST", "/v1/messages", {"model": "soak", "max_tokens": 8,
                                                "messages": [{"role": "user", "content": "Hi"}]}, None, {200}, None, None)],
        "tokenize": [("POST", "/api/tokenize", {"model": "soak", "content": "Once upon a time"}, None, {200}, None, None)],
        "reads": [("GET", "/api/tags", None, None, {200}, None, None), ("GET", "/api/ps", None, None, {200}, None, None),
                  ("POST", "/api/show", {"model": "soak"}, None, {200}, None, None),
                  ("GET", "/api/version", None, None, {200}, None, None),
                  ("GET", "/metrics", None, None, {200}, None, None), ("GET", "/v1/models", None, None, {200}, None, None)],
        "errors": [("POST", "/api/chat", None, b"{not json", {400}, None, None),
                   ("POST", "/api/generate", {"model": "missing-model", "prompt": "x"}, None, {404}, None, None),
                   ("POST", "/api/show", {"model": "missing-model"}, None, {404}, None, None),
                   ("GET", "/nowhere", None, None, {404}, None, None)],
        "store_churn": [("POST", "/api/blobs/sha256:" + hashlib.sha256(blob).hexdigest(), None, blob, {200, 201}, None, None),
                        ("POST", "/api/create", {"model": scratch, "from": "soak", "system": f"s{n}", "stream": False},
                         None, {200}, None, None),
                        ("POST", "/api/copy", {"source": scratch, "destination": copy}, None, {200}, None, None),
                        ("DELETE", "/api/delete", {"model": copy}, None, {200}, None, None),
                        ("DELETE", "/api/delete", {"model": scratch}, None, {200}, None, None)],
    }


def snapshot(store):
    manifests = {}
    for root, _, files in os.walk(os.path.join(store, "manifests")):
        for f in files:
            p = os.path.join(root, f)
            manifests[os.path.relpath(p, store)] = open(p, "rb").read()
    return manifests


def check_blobs(store, manifests, problems):
    for path, raw in manifests.items():
        m = json.loads(raw)
        for d in [m["config"]["digest"]] + [layer["digest"] for layer in m["layers"]]:
            p = os.path.join(store, "blobs", d.replace(":", "-"))
            if not os.path.exists(p):
                problems.append(f"{path} names missing blob {d}")
            elif "sha256:" + hashlib.sha256(open(p, "rb").read()).hexdigest() != d:
                problems.append(f"blob {d} does not hold its digest")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("model")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-margin-mib", type=int, default=64,
                    help="RSS allowed above idle after the load (at least half the idle RSS; more under ASan)")
    a = ap.parse_args()
    margin = a.rss_margin_mib << 20

    store = tempfile.mkdtemp(prefix="hearth-soak-")
    port = free_port()
    env = dict(os.environ, OLLAMA_MODELS=store, OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_NUM_PARALLEL="4",
               HEARTH_THREADS="2", OLLAMA_KEEP_ALIVE="-1", HEARTH_API_KEY="")
    proc = subprocess.Popen([a.binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    problems = []
    try:
        setup = Client(port)
        for _ in range(100):
            try:
                if setup.request("GET", "/api/version")[0] == 200:
                    break
            except RuntimeError:
                time.sleep(0.1)
        data = open(a.model, "rb").read()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert setup.request("POST", f"/api/blobs/{digest}", raw=data)[0] in (200, 201)
        status, body = setup.request("POST", "/api/create", {"model": "soak", "files": {"m.gguf": digest}, "stream": False})
        assert status == 200, body
        assert setup.request("POST", "/api/generate", {"model": "soak", "prompt": "warm", "options": GEN,
                                                       "stream": False})[0] == 200
        setup.close()
        time.sleep(1)
        idle_threads, idle_rss = proc_status(proc.pid)
        before = snapshot(store)

        counts, failures = {}, []
        lock = threading.Lock()
        stop_at = time.time() + a.seconds

        def client(me):
            rnd = random.Random(a.seed * 1000 + me)
            c = Client(port)
            n = 0
            while time.time() < stop_at:
                n += 1
                table = actions(me, n)
                name = rnd.choice(sorted(table))
                for method, path, body, raw, want, check, abandon in table[name]:
                    try:
                        status, out = c.request(method, path, body=body, raw=raw, abandon_after=abandon)
                        ok = status in want and (check is None or check(out))
                        why = f"{method} {path} ({name}): {status} {out[:200]!r}"
                    except RuntimeError as e:
                        ok, why = False, f"{name}: {e}"
                    with lock:
                        counts[name] = counts.get(name, 0) + 1
                        if not ok:
                            failures.append(why)
                    if not ok:
                        break
            c.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        peak_threads, peak_rss = idle_threads, idle_rss
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            th, rss = proc_status(proc.pid)
            peak_threads, peak_rss = max(peak_threads, th), max(peak_rss, rss)
            time.sleep(0.5)
        for t in threads:
            t.join()
        problems += failures[:20]
        if len(failures) > 20:
            problems.append(f"... and {len(failures) - 20} more failed requests")

        # Settling: abandoned streams end, threads go back to the pool.
        deadline = time.time() + 20
        while True:
            threads_now, rss_now = proc_status(proc.pid)
            if (threads_now <= idle_threads and rss_now <= idle_rss + max(margin, idle_rss // 2)) or time.time() > deadline:
                break
            time.sleep(0.5)
        if threads_now > idle_threads:
            problems.append(f"threads {threads_now} after the load, {idle_threads} before")
        if rss_now > idle_rss + max(margin, idle_rss // 2):
            problems.append(f"RSS {rss_now >> 20} MiB after the load, {idle_rss >> 20} MiB before")
        if proc.poll() is not None:
            problems.append(f"the server exited with {proc.returncode}")
        after = snapshot(store)
        if after != before:
            problems.append(f"manifests changed: before {sorted(before)}, after {sorted(after)}")
        check_blobs(store, after, problems)

        total = sum(counts.values())
        print(f"| soak: {a.clients} clients, {a.seconds:.0f} s | |")
        print("|---|---|")
        for name in sorted(counts):
            print(f"| {name} | {counts[name]} |")
        print(f"| requests | {total} ({total / a.seconds:.1f}/s) |")
        print(f"| threads idle / peak / after | {idle_threads} / {peak_threads} / {threads_now} |")
        print(f"| RSS MiB idle / peak / after | {idle_rss >> 20} / {peak_rss >> 20} / {rss_now >> 20} |")
        print(f"| failures | {len(failures)} |")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            problems.append("the server did not stop within 60 s of SIGTERM")
        shutil.rmtree(store, ignore_errors=True)
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

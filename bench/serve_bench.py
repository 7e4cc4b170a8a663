#!/usr/bin/env python3
"""Serving under load: Hearth's `hearth serve` against llama.cpp's llama-server, same file, same threads.

    bench/serve_bench.py MODEL.gguf [--hearth build/bin/hearth] [--llama-server PATH/llama-server]
        [-t 2] [--rounds 2] [--clients 8] [--prompt 128] [--gen 128] [--ctx 2048]
        [--scenarios single,parallel,interrupt,chat,schema,apis]

Each round starts each server in turn on a loopback port (Hearth over a temporary store
holding MODEL.gguf as model "bench"; llama-server with -np CLIENTS -t T), runs the
scenarios against it, stops it, and goes on with the other one, so that both see the same
minutes of a noisy machine. Scenarios:

  single     one client, PROMPT tokens in, GEN tokens out (greedy): decode tokens/s (1 / mean
             inter-token time), beside `hearth bench model -p PROMPT -n GEN` run in the same round
  parallel   CLIENTS clients at once, each its own prompt: aggregate decode tokens/s (tokens
             after each client's first / time from the first first token to the last token),
             the sum of the clients' own decode rates (each: tokens after its first / time from
             its first token to its last),
             end-to-end tokens/s (all tokens / wall time), time to first token (TTFT) and inter-token
             latency (ITL) percentiles; with llama-server also at -np 1 (Ollama's default)
  interrupt  a 2000-token prompt, and a 64-token one sent 0.3 s later: the short one's TTFT
  chat       a 1500-token first turn, then the next turn (first turn + answer + 20 tokens):
             both TTFTs and their ratio (prompt-prefix reuse)
  apis       (Hearth) the same greedy chat through /api/chat, /v1/chat/completions,
             /v1/responses and /v1/messages: one client's decode t/s and TTFT, CLIENTS clients' aggregate decode
             t/s, and GET /metrics latency while they stream
  schema     one client decoding GEN tokens freely, then constrained to a JSON schema (six
             typed fields and an array of objects; Hearth's `format`, llama-server's
             `json_schema`) until the document ends: both decode rates and their ratio

Prints one markdown table: every figure per server (mean of the rounds; min-max when more
than one) and Hearth / llama-server ratios. The load stays on 127.0.0.1 and every loop is
bounded. Nothing of llama.cpp is part of Hearth: point --llama-server at a build of your own.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WORDS = ("the a little big dog cat girl boy sun tree house ran jumped saw happy sad red blue green "
         "played with in on under over and then one day was very said mom dad friend park ball").split()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def text_of(n_words, seed):
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(n_words))


def wait_up(port, path, proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("server did not come up")


class Hearth:
    """hearth serve over a temporary store with MODEL as "bench"; raw prompts, greedy."""
    name = "hearth"

    def __init__(self, binary, model, threads, parallel, ctx):
        self.store = tempfile.mkdtemp(prefix="hearth-serve-bench-")
        self.port = free_port()
        env = dict(os.environ, OLLAMA_MODELS=self.store, OLLAMA_HOST=f"127.0.0.1:{self.port}",
                   OLLAMA_NUM_PARALLEL=str(parallel), HEARTH_THREADS=str(threads), OLLAMA_CONTEXT_LENGTH=str(ctx),
                   OLLAMA_KEEP_ALIVE="-1", HEARTH_API_KEY="")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(self.port, "/", self.proc)
        digest = "sha256:" + hashlib.sha256(open(model, "rb").read()).hexdigest()
        blobs = os.path.join(self.store, "blobs")
        os.makedirs(blobs, exist_ok=True)
        shutil.copyfile(model, os.path.join(blobs, digest.replace(":", "-")))
        status, body = post(self.port, "/api/create", {"model": "bench", "files": {"m.gguf": digest}, "stream": False})
        if status != 200:
            sys.exit(f"create failed: {body}")
        post(self.port, "/api/generate", {"model": "bench"})  # load

    def stream(self, prompt, n, on_token, schema=None):
        """Sends one request; calls on_token(time) per generated token; returns (prompt tokens evaluated, tokens).
        With a schema, the output is constrained to it (`format`) and ends with the document."""
        body = {"model": "bench", "prompt": prompt, "raw": True, "stream": True,
                "options": {"temperature": 0, "num_predict": n, "seed": 1}}
        if schema:
            body["format"] = schema
        last = {}
        for obj in ndjson(self.port, "/api/generate", body):
            if obj.get("done"):
                last = obj
            elif obj.get("response") is not None:
                on_token(time.perf_counter())
        self.reported = last.get("eval_count", 0) / max(last.get("eval_duration", 1), 1) * 1e9
        return last.get("prompt_eval_count", 0), last.get("eval_count", 0)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.store, ignore_errors=True)


class LlamaServer:
    """llama-server -np PARALLEL with ctx positions per slot; /completion, greedy, EOS ignored."""
    name = "llama-server"

    def __init__(self, binary, model, threads, parallel, ctx):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "-m", model, "-t", str(threads), "-tb", str(threads), "-np", str(parallel), "-c", str(ctx * parallel),
             "--host", "127.0.0.1", "--port", str(self.port), "--no-webui", "-fa", "off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(self.port, "/health", self.proc)

    def stream(self, prompt, n, on_token, schema=None):
        body = {"prompt": prompt, "n_predict": n, "temperature": 0, "stream": True, "cache_prompt": True,
                "ignore_eos": not schema, "seed": 1}
        if schema:  # the end of the document is the end of generation: EOS must stay possible
            body["json_schema"] = schema
        timings = {}
        for obj in sse(self.port, "/completion", body):
            if obj.get("stop"):
                timings = obj.get("timings", {})
            elif obj.get("content") is not None:
                on_token(time.perf_counter())
        self.reported = timings.get("predicted_per_second", float("nan"))
        return timings.get("prompt_n", 0), timings.get("predicted_n", 0)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read().decode()


def lines(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        sys.exit(f"{path}: HTTP {r.status}: {r.read()[:500]}")
    while True:
        line = r.readline()
        if not line:
            return
        yield line.decode(errors="replace").strip()


def ndjson(port, path, body):
    for line in lines(port, path, body):
        if line:
            obj = json.loads(line)
            if "error" in obj:
                sys.exit(f"{path}: {obj['error']}")
            yield obj


def sse(port, path, body):
    for line in lines(port, path, body):
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


def one_request(server, prompt, n, start_at=None, schema=None):
    """Runs one request; returns dict(ttft, itl list, tokens, prompt_n, end)."""
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.perf_counter()))
    t0 = time.perf_counter()
    stamps = []
    prompt_n, tokens = server.stream(prompt, n, stamps.append, schema)
    return {"ttft": stamps[0] - t0 if stamps else float("nan"), "itl": [b - a for a, b in zip(stamps, stamps[1:])],
            "tokens": len(stamps), "prompt_n": prompt_n, "start": t0, "first": stamps[0] if stamps else t0,
            "end": time.perf_counter()}


def concurrently(server, jobs):
    """jobs: list of (prompt, n, start_at or None); returns their results in order."""
    out = [None] * len(jobs)

    def run(i):
        out[i] = one_request(server, *jobs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)
    return out


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def words_for(tokens):
    return max(1, int(tokens * 0.85))  # these words are about 1.2 tokens each with a llama vocabulary


def scenario_single(server, a, seed):
    r = one_request(server, text_of(words_for(a.prompt), seed), a.gen)
    return {"single: decode t/s": 1.0 / statistics.mean(r["itl"]) if r["itl"] else float("nan"),
            "single: decode t/s as the server reports it": server.reported,
            "single: TTFT ms": r["ttft"] * 1e3}


# The structured-output benchmark's schema: six typed fields and an array of objects.
BENCH_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40}, "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
        "rating": {"type": "number", "minimum": 0, "maximum": 10}, "seen": {"type": "boolean"},
        "genre": {"enum": ["drama", "comedy", "horror"]}, "notes": {"type": ["string", "null"], "maxLength": 30},
        "cast": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
            "actor": {"type": "string", "maxLength": 20}, "lead": {"type": "boolean"}}, "required": ["actor", "lead"]}}},
    "required": ["title", "year", "rating", "seen", "genre", "notes", "cast"],
}


def scenario_schema(server, a, seed):
    """One client decoding freely, then constrained to BENCH_SCHEMA (greedy, until the document ends)."""
    prompt = text_of(words_for(a.prompt), seed)
    free = one_request(server, prompt, a.gen)
    bound = one_request(server, prompt, a.gen, schema=BENCH_SCHEMA)
    rate = lambda r: 1.0 / statistics.mean(r["itl"]) if len(r["itl"]) > 1 else float("nan")
    return {"schema: free decode t/s": rate(free), "schema: constrained decode t/s": rate(bound),
            "schema: constrained tokens": bound["tokens"], "schema: constrained / free": rate(bound) / rate(free)}


def api_stream(port, api, prompt, n, on_token):
    """One greedy chat turn through one of Hearth's APIs, calling on_token(time) per token."""
    messages = [{"role": "user", "content": prompt}]
    if api == "ollama":
        body = {"model": "bench", "messages": messages, "stream": True, "options": {"temperature": 0, "num_predict": n}}
        for obj in ndjson(port, "/api/chat", body):
            if not obj.get("done") and obj.get("message", {}).get("content"):
                on_token(time.perf_counter())
    elif api == "openai":
        body = {"model": "bench", "messages": messages, "stream": True, "temperature": 0, "max_tokens": n}
        for obj in sse(port, "/v1/chat/completions", body):
            if obj["choices"] and obj["choices"][0]["delta"].get("content"):
                on_token(time.perf_counter())
    elif api == "responses":
        body = {"model": "bench", "input": prompt, "stream": True, "temperature": 0, "max_output_tokens": n}
        for obj in sse(port, "/v1/responses", body):
            if obj.get("type") == "response.output_text.delta" and obj.get("delta"):
                on_token(time.perf_counter())
    else:
        body = {"model": "bench", "messages": messages, "stream": True, "temperature": 0, "max_tokens": n}
        for obj in sse(port, "/v1/messages", body):
            if obj.get("type") == "content_block_delta" and obj["delta"].get("text"):
                on_token(time.perf_counter())


def scenario_apis(server, a, seed):
    """The same chat through /api/chat, /v1/chat/completions, /v1/responses and /v1/messages (Hearth only):
    one client's decode t/s and TTFT, CLIENTS clients' aggregate decode t/s per API, and the
    latency of GET /metrics while the clients stream."""
    if not isinstance(server, Hearth):
        return {}
    out = {}
    names = ["ollama", "openai", "responses", "anthropic"]
    apis = names[seed % 4:] + names[:seed % 4]  # rounds rotate the order (the machine drifts)
    for api in apis:
        # Prompts of their own per API and round: none is a cached prefix of another's.
        base = (seed * 4 + names.index(api)) * 1000 + 17
        prompt = text_of(words_for(a.prompt), base)
        stamps, t0 = [], time.perf_counter()
        api_stream(server.port, api, prompt, a.gen, stamps.append)
        itl = [y - x for x, y in zip(stamps, stamps[1:])]
        out[f"apis: {api} one client decode t/s"] = 1.0 / statistics.mean(itl)
        out[f"apis: {api} one client TTFT ms"] = (stamps[0] - t0) * 1e3
        all_stamps = [[] for _ in range(a.clients)]
        threads = [threading.Thread(target=api_stream, args=(server.port, api, text_of(words_for(a.prompt), base + 1 + i),
                                                               a.gen, all_stamps[i].append)) for i in range(a.clients)]
        scrapes = []
        for t in threads:
            t.start()
        time.sleep(1.0)
        while any(t.is_alive() for t in threads) and len(scrapes) < 50:
            t1 = time.perf_counter()
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            c.request("GET", "/metrics")
            c.getresponse().read()
            scrapes.append(time.perf_counter() - t1)
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=1800)
        first = min(st[0] for st in all_stamps if st)
        last = max(st[-1] for st in all_stamps if st)
        out[f"apis: {api} {a.clients} clients aggregate decode t/s"] = sum(len(st) - 1 for st in all_stamps) / (last - first)
        if scrapes:
            out[f"apis: GET /metrics during {api} streams p50 ms"] = pct(scrapes, 50) * 1e3
            out[f"apis: GET /metrics during {api} streams max ms"] = max(scrapes) * 1e3
    return out


def scenario_parallel(server, a, seed, tag="parallel"):
    jobs = [(text_of(words_for(a.prompt), seed * 100 + i), a.gen, None) for i in range(a.clients)]
    res = concurrently(server, jobs)
    wall = max(r["end"] for r in res) - min(r["start"] for r in res)
    itl = [x for r in res for x in r["itl"]]
    # Decoding: every token after each client's first, over the time from the first client's
    # first token to the last client's last one (prompts excluded, as the issue asks).
    decode_wall = max(r["end"] for r in res) - min(r["first"] for r in res)
    # ... and the sum of each client's own decode rate (its tokens after the first over the
    # time from its first token to its last): what the clients see while they decode together.
    rates = [(r["tokens"] - 1) / (r["end"] - r["first"]) for r in res if r["tokens"] > 1]
    return {f"{tag}: aggregate decode t/s": sum(r["tokens"] - 1 for r in res) / decode_wall,
            f"{tag}: sum of clients' decode t/s": sum(rates),
            f"{tag}: end-to-end t/s": sum(r["tokens"] for r in res) / wall,
            f"{tag}: TTFT p50 ms": pct([r["ttft"] for r in res], 50) * 1e3,
            f"{tag}: TTFT p99 ms": pct([r["ttft"] for r in res], 99) * 1e3,
            f"{tag}: ITL p50 ms": pct(itl, 50) * 1e3, f"{tag}: ITL p99 ms": pct(itl, 99) * 1e3}


def scenario_interrupt(server, a, seed):
    now = time.perf_counter()
    long_job = (text_of(words_for(2000), seed * 7 + 1), 16, None)
    short_job = (text_of(words_for(64), seed * 7 + 2), 16, now + 0.3)
    res = concurrently(server, [long_job, short_job])
    return {"interrupt: short TTFT ms": res[1]["ttft"] * 1e3, "interrupt: long TTFT ms": res[0]["ttft"] * 1e3}


def scenario_chat(server, a, seed):
    first = text_of(words_for(1500), seed * 13 + 5)
    r1 = one_request(server, first, 32)
    # The next turn: the first prompt, an answer of the model's length, and a new question.
    second = first + " " + text_of(24, seed * 13 + 6) + " " + text_of(words_for(20), seed * 13 + 7)
    r2 = one_request(server, second, 16)
    return {"chat: turn 1 TTFT ms": r1["ttft"] * 1e3, "chat: turn 2 TTFT ms": r2["ttft"] * 1e3,
            "chat: turn 1 / turn 2": r1["ttft"] / r2["ttft"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--hearth", default="build/bin/hearth")
    ap.add_argument("--llama-server")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--ctx", type=int, default=2048, help="positions per sequence")
    ap.add_argument("--scenarios", default="single,parallel,interrupt,chat")
    a = ap.parse_args()
    scen = a.scenarios.split(",")
    results = {}  # (server, metric) -> [values per round]

    def record(server_name, d):
        for k, v in d.items():
            results.setdefault((server_name, k), []).append(v)

    servers = [("hearth", lambda np: Hearth(a.hearth, a.model, a.t, np, a.ctx))]
    if a.llama_server:
        servers.append(("llama-server", lambda np: LlamaServer(a.llama_server, a.model, a.t, np, a.ctx)))
    for rnd in range(a.rounds):
        if "single" in scen:  # the engine alone, for the single client's decode rate
            out = subprocess.run([a.hearth, "bench", "model", a.model, "-p", str(a.prompt), "-n", str(a.gen), "-r", "3",
                                  "-t", str(a.t), "--json"], check=True, capture_output=True, text=True)
            record("hearth", {"bench model tg t/s": json.loads(out.stdout)["tg"]["tps_mean"]})
        for name, make in servers:
            s = make(a.clients)
            try:
                if "single" in scen:
                    record(name, scenario_single(s, a, rnd))
                    if name == "hearth":
                        single = results[("hearth", "single: decode t/s")][-1]
                        record(name, {"single / bench model": single / results[("hearth", "bench model tg t/s")][-1]})
                if "parallel" in scen:
                    record(name, scenario_parallel(s, a, rnd))
                if "interrupt" in scen:
                    record(name, scenario_interrupt(s, a, rnd))
                if "chat" in scen:
                    record(name, scenario_chat(s, a, rnd))
                if "schema" in scen:
                    record(name, scenario_schema(s, a, rnd))
                if "apis" in scen:
                    record(name, scenario_apis(s, a, rnd))
            finally:
                s.stop()
            if name == "llama-server" and "parallel" in scen:  # Ollama's default: one sequence at a time
                s = make(1)
                try:
                    record("llama-server -np 1", scenario_parallel(s, a, rnd, "parallel"))
                finally:
                    s.stop()
            print(f"round {rnd + 1}/{a.rounds}: {name} done", file=sys.stderr)

    names = [n for n in ("hearth", "llama-server", "llama-server -np 1") if any(k[0] == n for k in results)]
    metrics = list(dict.fromkeys(k[1] for k in results))

    def cell(vals):
        if not vals:
            return "–"
        m = statistics.mean(vals)
        f = ".2f" if m < 10 else ".1f"
        return f"{m:{f}}" + (f" ({min(vals):{f}}–{max(vals):{f}})" if len(vals) > 1 else "")

    head = "| metric | " + " | ".join(names) + (" | hearth / llama-server | hearth / llama-server -np 1 |" if len(names) > 1 else " |")
    print(f"{a.model}, {a.t} threads, {a.clients} clients, prompt {a.prompt}, gen {a.gen}, {a.rounds} round(s)\n")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for m in metrics:
        row = [cell(results.get((n, m), [])) for n in names]
        extra = ""
        if len(names) > 1:
            h = results.get(("hearth", m))
            for other in ("llama-server", "llama-server -np 1"):
                o = results.get((other, m))
                extra += f" {statistics.mean(h) / statistics.mean(o):.2f} |" if h and o else " – |"
        print(f"| {m} | " + " | ".join(row) + " |" + extra)


if __name__ == "__main__":
    main()

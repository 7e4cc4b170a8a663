#!/usr/bin/env python3
"""Embedding throughput: Hearth's encoder alone (bench_embed), Hearth's /api/embed, and
llama.cpp's llama-embedding, on the same synthetic encoders and the same inputs.

    bench/embed_bench.py --build build --llama-embedding PATH/llama-embedding
        [--shapes minilm,bge-base] [--types F16,Q8_0] [--inputs 256] [--rounds 2] [-t 2]

For each shape and type: `hearth synth --arch bert` writes the model (MiniLM-L6's shape:
384 wide, 6 layers; bge-base's: 768 wide, 12 layers); the inputs are INPUTS lines of
32-256 tokens (random common words; [CLS] and [SEP] included). In each round, in turn:
bench_embed (the encoder as the runner batches it, one run);
`hearth serve` with the model created in a temporary store, one warm-up request, then all
inputs in one POST /api/embed (embeddings/s from the request's total_duration minus its
load_duration, and from the client's wall time); llama-embedding with every input in
batches of up to 64 sequences and 4096 tokens, as Hearth's runner (-b/-ub 4096 -np 64;
embeddings/s from its first batch to its exit; the model load is excluded on both sides).
Prints a markdown table: the mean of the rounds (min-max) and the ratios. Nothing of
llama.cpp is part of Hearth: point --llama-embedding at a build of your own.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_bench import free_port, wait_up  # noqa: E402

WORDS = ("the a little big dog cat girl boy sun tree house ran jumped saw happy sad red blue green "
         "played with in on under over and then one day was very said mom dad friend park ball "
         "water river city music school garden window morning night story family light").split()


def make_inputs(path, n, seed=1):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 254))) + "\n")


def engine(build, model, inputs, threads):
    out = subprocess.run([os.path.join(build, "bin", "bench_embed"), model, inputs, str(threads), "1"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["embeddings_per_s"]


def request(port, method, path, body=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    c.request(method, path, raw if raw is not None else (json.dumps(body) if body is not None else None),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{path}: HTTP {r.status}: {data[:300]}")
    return data


def served(build, model, inputs, threads):
    """Embeddings/s through /api/embed: (server-side, client wall time)."""
    lines = open(inputs).read().splitlines()
    with tempfile.TemporaryDirectory() as store:
        port = free_port()
        env = dict(os.environ, OLLAMA_MODELS=store, OLLAMA_HOST=f"127.0.0.1:{port}", HEARTH_THREADS=str(threads),
                   OLLAMA_KEEP_ALIVE="-1", HEARTH_API_KEY="")
        proc = subprocess.Popen([os.path.join(build, "bin", "hearth"), "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(port, "/api/version", proc)
            blob = open(model, "rb").read()
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            request(port, "POST", f"/api/blobs/{digest}", raw=blob)
            request(port, "POST", "/api/create", {"model": "enc", "files": {"m.gguf": digest}, "stream": False})
            request(port, "POST", "/api/embed", {"model": "enc", "input": lines[:4]})  # load and warm up
            t0 = time.perf_counter()
            r = json.loads(request(port, "POST", "/api/embed", {"model": "enc", "input": lines}))
            wall = time.perf_counter() - t0
            assert len(r["embeddings"]) == len(lines)
            server_s = (r["total_duration"] - r["load_duration"]) / 1e9
            return len(lines) / server_s, len(lines) / wall
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def llama(binary, model, inputs, threads):
    """Embeddings/s of llama-embedding: wall time from its first batch (its log's timestamp,
    after the model load) to its exit."""
    n = len(open(inputs).read().splitlines())
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(binary))
    t0 = time.perf_counter()
    p = subprocess.run([binary, "-m", model, "-f", inputs, "--pooling", "mean", "--embd-normalize", "-1",
                        "-c", "4096", "-b", "4096", "-ub", "4096", "-np", "64", "-t", str(threads), "-fa", "off"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"^(\d+)\.(\d+)\.(\d+)\.(\d+) I batch_decode", p.stderr, re.M)
    if p.returncode != 0 or not m:
        sys.exit(f"llama-embedding failed: {p.stderr[-2000:]}")
    loaded = int(m.group(1)) * 60 + int(m.group(2)) + int(m.group(3)) / 1e3 + int(m.group(4)) / 1e6
    return n / (wall - loaded)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--llama-embedding", required=True)
    ap.add_argument("--shapes", default="minilm,bge-base")
    ap.add_argument("--types", default="F16,Q8_0")
    ap.add_argument("--inputs", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    vocab = os.path.join(os.environ.get("HEARTH_TESTDATA", os.path.join(here, "../../shared/testdata")),
                         "vocab/ggml-vocab-bert-bge.gguf")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.txt")
        make_inputs(inputs, a.inputs)
        for shape in a.shapes.split(","):
            for typ in a.types.split(","):
                model = os.path.join(tmp, f"{shape}.{typ}.gguf")
                subprocess.run([os.path.join(a.build, "bin", "hearth"), "synth", "--vocab", vocab, "--arch", "bert",
                                "--shape", shape, "--type", typ, model], check=True)
                res = {"engine": [], "api": [], "api wall": [], "llama": []}
                for rnd in range(a.rounds):
                    steps = [("engine", lambda: [engine(a.build, model, inputs, a.threads)]),
                             ("api", lambda: served(a.build, model, inputs, a.threads)),
                             ("llama", lambda: [llama(a.llama_embedding, model, inputs, a.threads)])]
                    for name, run in steps[rnd % 3:] + steps[:rnd % 3]:  # rounds rotate the order
                        vals = run()
                        res[name].append(vals[0])
                        if name == "api":
                            res["api wall"].append(vals[1])
                    print(f"{shape} {typ}: round {rnd + 1}/{a.rounds} done", file=sys.stderr)
                rows.append((shape, typ, res))

    def cell(v):
        m = statistics.mean(v)
        return f"{m:.1f}" + (f" ({min(v):.1f}–{max(v):.1f})" if len(v) > 1 else "")

    print(f"{a.inputs} inputs of 32–256 tokens, {a.threads} threads, {a.rounds} round(s); embeddings/s\n")
    print("| model | Hearth engine | /api/embed (server time) | /api/embed (client wall) | llama-embedding | engine / llama | /api/embed / engine |")
    print("|---|---|---|---|---|---|---|")
    for shape, typ, r in rows:
        e, s, w, l = (statistics.mean(r[k]) for k in ("engine", "api", "api wall", "llama"))
        print(f"| {shape} {typ} | {cell(r['engine'])} | {cell(r['api'])} | {cell(r['api wall'])} | {cell(r['llama'])} "
              f"| {e / l:.2f} | {s / e:.2f} |")


if __name__ == "__main__":
    main()

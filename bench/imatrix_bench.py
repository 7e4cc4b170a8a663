#!/usr/bin/env python3
"""Importance-matrix speed: `hearth imatrix` against llama.cpp's `llama-imatrix` (a build of
your own, outside the repository) on the same model and text, alternating in rounds.

    bench/imatrix_bench.py --build build --llama-imatrix PATH/llama-imatrix \
        [--model M.gguf] [--text T] [--chunks 20] [-c 512] [-t 2] [--rounds 2]

Without --model, `hearth synth --shape 1b --type F16` writes a TinyLlama-1.1B-shaped F16
model (2.2 GB) into a temporary directory; the default text is the shared testdata's
wiki.test.raw. Both tools run with their defaults otherwise (llama-imatrix: batches of 2048
tokens, F16 cache, flash attention auto; hearth: the same cache and attention numerics).
Wall time per run, from start to exit (loading included, the model file in the page cache
after a first warm-up run of each), tokens/s over chunks × c, and the ratio
llama-imatrix time / hearth time per round. Prints a markdown table and the medians.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd, log):
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    dt = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"{cmd[0]} failed ({rc}); see {log}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--llama-imatrix", required=True)
    ap.add_argument("--model")
    ap.add_argument("--text")
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("-c", type=int, default=512)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    hearth = os.path.join(a.build, "bin", "hearth")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    testdata = os.environ.get("HEARTH_TESTDATA", os.path.join(root, "..", "shared", "testdata"))
    text = a.text or os.path.join(testdata, "text", "wiki.test.raw")
    tmp = tempfile.mkdtemp(prefix="hearth-imatrix-bench-")
    model = a.model
    if not model:
        model = os.path.join(tmp, "tinyllama-f16.gguf")
        vocab = os.path.join(testdata, "vocab", "ggml-vocab-llama-spm.gguf")
        subprocess.run([hearth, "synth", "--vocab", vocab, "--shape", "1b", "--type", "F16", model], check=True,
                       stdout=subprocess.DEVNULL)
    common = ["-f", text, "-c", str(a.c), "--chunks", str(a.chunks), "-t", str(a.t)]
    runs = {
        "hearth": [hearth, "imatrix", model] + common + ["-o", os.path.join(tmp, "h.gguf")],
        "llama-imatrix": [a.llama_imatrix, "-m", model] + common + ["-o", os.path.join(tmp, "l.gguf")],
    }
    for name, cmd in runs.items():  # warm-up: the model into the page cache, one chunk
        warm = list(cmd)
        warm[warm.index("--chunks") + 1] = "2"
        timed(warm, os.path.join(tmp, name + ".warm.log"))
    tokens = a.chunks * a.c
    rows = []
    for r in range(a.rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        t = {name: timed(runs[name], os.path.join(tmp, f"{name}.{r}.log")) for name in order}
        rows.append(t)
        print(f"round {r + 1}: hearth {t['hearth']:.1f} s, llama-imatrix {t['llama-imatrix']:.1f} s", file=sys.stderr)
    print(f"\n{a.chunks} chunks of {a.c} tokens, {a.t} threads, {os.path.basename(model)}\n")
    print("| round | hearth s | hearth tokens/s | llama-imatrix s | llama-imatrix tokens/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for i, t in enumerate(rows):
        h, l = t["hearth"], t["llama-imatrix"]
        print(f"| {i + 1} | {h:.1f} | {tokens / h:.1f} | {l:.1f} | {tokens / l:.1f} | {l / h:.2f}× |")
    hm = statistics.median(t["hearth"] for t in rows)
    lm = statistics.median(t["llama-imatrix"] for t in rows)
    print(f"| median | {hm:.1f} | {tokens / hm:.1f} | {lm:.1f} | {tokens / lm:.1f} | {lm / hm:.2f}× |")
    print(f"\n(logs and outputs in {tmp})")


if __name__ == "__main__":
    main()

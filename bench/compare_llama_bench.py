#!/usr/bin/env python3
"""Hearth against llama.cpp's llama-bench on the same files, threads and machine.

    bench/compare_llama_bench.py --llama-bench PATH/llama-bench MODEL.gguf [MODEL.gguf ...]
        [--hearth build/bin/hearth] [-p 512] [-n 128] [-r 3] [-t 2] [--rounds 2] [--fa 0]

Each round measures the machine's roofs (`hearth bench machine`), then runs every model
through `hearth bench model --json` and then through `llama-bench -o json`, alternating,
so that both see the same minutes of a noisy machine. Prints one markdown row per model
and test: the two tokens/s (mean of the rounds ± their spread), their ratio, and each as
a share of the roof (tg: weights read per token x tokens/s against the read bandwidth;
pp: operations per token x tokens/s against the int8 dot-product peak). Nothing of
llama.cpp is part of Hearth: point --llama-bench at a build of your own.
"""
import argparse
import json
import statistics
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"{' '.join(cmd)} printed no JSON ({e}):\n{out.stdout[-2000:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--hearth", default="build/bin/hearth")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fa", default="0", help="llama-bench --flash-attn (0/1/auto)")
    a = ap.parse_args()

    # samples[(model, test, tool)] = [(mean, std) of each round]
    samples = {}
    roofs = []  # (read GB/s, int8 GOP/s) of each round
    cost = {}  # model -> (weight bytes per token, ops per token)
    for rnd in range(a.rounds):
        mach = run_json([a.hearth, "bench", "machine", "--threads", str(a.t), "--json"])[0]
        roofs.append((mach["read_gbps"], mach["int8_gops"]))
        for m in a.models:
            h = run_json([a.hearth, "bench", "model", m, "-p", str(a.p), "-n", str(a.n), "-r", str(a.r), "-t", str(a.t),
                          "--json"])
            cost[m] = (h["weight_bytes_per_token"], h["ops_per_token"])
            for test in ("pp", "tg"):
                samples.setdefault((m, test, "hearth"), []).append((h[test]["tps_mean"], h[test]["tps_std"]))
            ll = run_json([a.llama_bench, "-m", m, "-p", str(a.p), "-n", str(a.n), "-r", str(a.r), "-t", str(a.t), "-fa",
                           a.fa, "-o", "json"])
            for row in ll:
                test = "pp" if row["n_prompt"] > 0 else "tg"
                samples.setdefault((m, test, "llama"), []).append((row["avg_ts"], row["stddev_ts"]))
            print(f"round {rnd + 1}/{a.rounds} {m}: " +
                  ", ".join(f"{t} hearth {samples[(m, t, 'hearth')][-1][0]:.1f} llama {samples[(m, t, 'llama')][-1][0]:.1f}"
                            for t in ("pp", "tg")), file=sys.stderr, flush=True)

    # Mean of the rounds' means, ± their spread (one round: the tool's own std).
    def fmt(v):
        means = [x[0] for x in v]
        spread = statistics.pstdev(means) if len(means) > 1 else v[0][1]
        return statistics.mean(means), spread

    bw = statistics.mean(r[0] for r in roofs)
    int8 = statistics.mean(r[1] for r in roofs)
    print(f"roofs ({a.t} threads, mean of {len(roofs)} rounds): read {bw:.1f} GB/s "
          f"({min(r[0] for r in roofs):.1f}-{max(r[0] for r in roofs):.1f}), "
          f"int8 {int8:.0f} GOP/s ({min(r[1] for r in roofs):.0f}-{max(r[1] for r in roofs):.0f})\n")
    print("| model | test | hearth t/s | llama-bench t/s | hearth / llama | hearth % of roof | llama % of roof |")
    print("|---|---|---|---|---|---|---|")
    for m in a.models:
        for test, n in (("pp", a.p), ("tg", a.n)):
            hm, hs = fmt(samples[(m, test, "hearth")])
            lm, ls = fmt(samples[(m, test, "llama")])
            per_s = (cost[m][0] / 1e9 / bw) if test == "tg" else (cost[m][1] / 1e9 / int8)
            print(f"| {m} | {test}{n} | {hm:.2f} ± {hs:.2f} | {lm:.2f} ± {ls:.2f} | {hm / lm:.2f} | "
                  f"{100 * hm * per_s:.0f} % | {100 * lm * per_s:.0f} % |")


if __name__ == "__main__":
    main()

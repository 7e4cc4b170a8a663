#!/usr/bin/env python3
"""Pull throughput: /api/pull of a ~1 GB model from a registry on loopback (Debian's
docker-registry) against `cp` of the same bytes on the same disk, alternating.

    bench/pull_bench.py --build build [--model M.gguf] [--rounds 3]

Without --model, `hearth synth --shape 1b --type Q8_0` writes the model (1.1 GiB). The model
is created in a temporary store, pushed once (push GB/s reported), then in each round, in
turn: `cp` of the registry's copy of the model blob into a directory of the store's
filesystem (then removed), and a pull of the whole model into the emptied store (wall time
from the request to "success"; the SHA-256 is computed while the parts arrive, so the
pull includes verifying). Also the SHA-256 of the blob alone (hashlib, from the page
cache), which is what verifying after the download would add. Prints a markdown table:
GB/s per round and the ratio pull / cp (`cp`'s copy is fsync'd, as a pulled blob is),
and the medians. HEARTH_REGISTRY_CONNECTIONS etc. in the environment reach the server.
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_bench import free_port, wait_up  # noqa: E402


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if r.status not in (200, 201):
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return data


def transfer(port, verb, name):
    body = json.dumps({"model": name, "insecure": True, "stream": False})
    t = time.perf_counter()
    out = json.loads(call(port, "POST", f"/api/{verb}", body))
    if out.get("status") != "success":
        sys.exit(f"{verb}: {out}")
    return time.perf_counter() - t


def start_registry(tmp):
    port = free_port()
    with open(os.path.join(tmp, "registry.yml"), "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {tmp}/registry\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", os.path.join(tmp, "registry.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/v2/")
            c.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    sys.exit("docker-registry did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--model")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    hearth = os.path.join(a.build, "bin", "hearth")
    tmp = tempfile.mkdtemp(prefix="hearth-pull-bench-")
    procs = []
    try:
        model = a.model
        if not model:
            model = os.path.join(tmp, "model.gguf")
            vocab = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/testdata/models/stories260K.gguf")
            subprocess.run([hearth, "synth", "--vocab", vocab, "--shape", "1b", "--type", "Q8_0", model], check=True,
                           stdout=subprocess.DEVNULL)
        size = os.path.getsize(model)
        reg, reg_port = start_registry(tmp)
        procs.append(reg)
        store = os.path.join(tmp, "store")
        port = free_port()
        serve = subprocess.Popen([hearth, "serve"], env={**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}",
                                                         "OLLAMA_MODELS": store, "HEARTH_API_KEY": ""},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(serve)
        wait_up(port, "/api/version", serve)

        h = hashlib.sha256()
        with open(model, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        with open(model, "rb") as f:
            call(port, "POST", f"/api/blobs/{digest}", f, {"Content-Length": str(size)})
        call(port, "POST", "/api/create", json.dumps({"model": "big", "files": {"m.gguf": digest}, "stream": False}))
        name = f"127.0.0.1:{reg_port}/bench/big:latest"
        call(port, "POST", "/api/copy", json.dumps({"source": "big", "destination": name}))
        push_s = transfer(port, "push", name)
        call(port, "DELETE", "/api/delete", json.dumps({"model": "big"}))

        src = os.path.join(tmp, "registry/docker/registry/v2/blobs/sha256", digest[7:9], digest[7:], "data")
        dst_dir = os.path.join(store, "cp-target")
        t = time.perf_counter()
        hashlib.sha256(open(src, "rb").read()).hexdigest()
        sha_s = time.perf_counter() - t
        cps, pulls = [], []
        for _ in range(a.rounds):
            os.makedirs(dst_dir, exist_ok=True)
            subprocess.run(["sync"], check=True)
            t = time.perf_counter()
            subprocess.run(["cp", src, os.path.join(dst_dir, "blob")], check=True)
            subprocess.run(["sync", os.path.join(dst_dir, "blob")], check=True)  # pull publishes fsync'd files
            cps.append(time.perf_counter() - t)
            shutil.rmtree(dst_dir)
            call(port, "DELETE", "/api/delete", json.dumps({"model": name}))
            subprocess.run(["sync"], check=True)  # both start with nothing dirty
            pulls.append(transfer(port, "pull", name))
        gb = size / 1e9
        print(f"model {size / 2**30:.2f} GiB; push {gb / push_s:.2f} GB/s; sha256 alone {gb / sha_s:.2f} GB/s\n")
        print("| round | cp GB/s | pull GB/s | pull / cp |\n|---|---|---|---|")
        for i, (c, p) in enumerate(zip(cps, pulls)):
            print(f"| {i + 1} | {gb / c:.2f} | {gb / p:.2f} | {c / p:.2f} |")
        c, p = statistics.median(cps), statistics.median(pulls)
        print(f"| median | {gb / c:.2f} | {gb / p:.2f} | {c / p:.2f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

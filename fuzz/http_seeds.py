#!/usr/bin/env python3
"""Seed corpus for fuzz_http: requests as Ollama, OpenAI and Anthropic clients send them,
chunked bodies, and the probe's hostile shapes (smuggling, lying lengths, folded lines)."""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
H = "Host: localhost:11434\r\n"
seeds = [
    "GET /api/tags HTTP/1.1\r\n" + H + "Accept: application/json\r\nUser-Agent: ollama-js/0.5\r\n\r\n",
    "POST /api/chat HTTP/1.1\r\n" + H + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "POST /v1/chat/completions HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nAuthorization: Bearer k\r\n\r\n"
    "5;x=y\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "POST /api/blobs/sha256:aa HTTP/1.1\r\n" + H + "Expect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd",
    "POST /api/copy HTTP/1.1\r\nHost: evil\r\nContent-Length: 60\r\n\r\nDELETE /api/delete HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET http://localhost/%41pi/tags?x=%zz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET / HTTP/1.1\r\n" + H + "X: a\r\n folded\r\n\r\n",
    "\r\n\r\nOPTIONS * HTTP/1.1\r\n" + H + "Origin: http://x\r\n\r\n",
    "a\r\n0123456789\r\nffffffffffffffff\r\n",
]
for i, s in enumerate(seeds):
    with open(os.path.join(out, f"seed{i:02d}"), "wb") as f:
        f.write(s.encode("latin-1"))

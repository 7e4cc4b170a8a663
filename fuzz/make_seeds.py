#!/usr/bin/env python3
"""Writes small valid GGUF files as seeds for the reader's fuzzer: every value type,
nested arrays, several tensor types, a custom alignment, and an empty file."""
import os
import struct
import sys


def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, payload):
    return s(key) + struct.pack("<I", typ) + payload


def gguf(kvs, tensors, align=32, version=3):
    """tensors: list of (name, dims, type_id, nbytes)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    off = 0
    infos = b""
    for name, dims, typ, nbytes in tensors:
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, off)
        off += (nbytes + align - 1) // align * align
    out += infos
    if tensors:
        out += b"\0" * (-len(out) % align)
        for i, (_, _, _, nbytes) in enumerate(tensors):
            out += bytes((i * 7 + j) & 0xFF for j in range(nbytes)) + b"\0" * (-nbytes % align)
    return out


def main(outdir):
    scalars = [
        kv("u8", 0, struct.pack("<B", 200)), kv("i8", 1, struct.pack("<b", -5)),
        kv("u16", 2, struct.pack("<H", 60000)), kv("i16", 3, struct.pack("<h", -300)),
        kv("u32", 4, struct.pack("<I", 7)), kv("i32", 5, struct.pack("<i", -7)),
        kv("f32", 6, struct.pack("<f", 1e-5)), kv("bool", 7, struct.pack("<B", 1)),
        kv("str", 8, s("héllo")), kv("u64", 10, struct.pack("<Q", 2**63)),
        kv("i64", 11, struct.pack("<q", -2**40)), kv("f64", 12, struct.pack("<d", 0.1)),
    ]
    arrays = [
        kv("a.str", 9, struct.pack("<IQ", 8, 3) + s("<s>") + s("") + s("\u2581t")),
        kv("a.f32", 9, struct.pack("<IQ", 6, 2) + struct.pack("<ff", 0.5, -1.0)),
        kv("a.nested", 9, struct.pack("<IQ", 9, 2) + struct.pack("<IQ", 5, 1) + struct.pack("<i", 3)
           + struct.pack("<IQ", 8, 1) + s("x")),
    ]
    arch = [kv("general.architecture", 8, s("llama"))]
    seeds = {
        "empty.gguf": gguf([], []),
        "scalars.gguf": gguf(arch + scalars, []),
        "arrays.gguf": gguf(arch + arrays, [("t", [4], 0, 16)]),
        "types.gguf": gguf(arch, [("f32", [8, 2], 0, 64), ("f16", [8], 1, 16), ("q4_0", [32, 2], 2, 36),
                                  ("q8_0", [32], 8, 34), ("q4_K", [256], 12, 144), ("bf16", [2, 2, 2, 2], 30, 32)]),
        "align64.gguf": gguf(arch + [kv("general.alignment", 4, struct.pack("<I", 64))],
                             [("a", [3], 0, 12), ("b", [5], 0, 20)], align=64),
        "v2.gguf": gguf(arch, [("t", [2], 0, 8)], version=2),
    }
    os.makedirs(outdir, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Seeds for fuzz_json_schema: each schema of tests/js/schemas.json, a NUL, then 200
seeded bytes that pick the tokens of a walk.   usage: schema_seeds.py SCHEMAS.json OUT_DIR"""
import json
import random
import sys

schemas, out = sys.argv[1], sys.argv[2]
rnd = random.Random(1)
for i, case in enumerate(json.load(open(schemas))):
    walk = bytes(rnd.randrange(256) for _ in range(200))
    with open(f"{out}/schema-{i:02d}", "wb") as f:
        f.write(json.dumps(case["schema"]).encode() + b"\0" + walk)

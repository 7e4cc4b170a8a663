#!/usr/bin/env python3
"""Seed corpus for fuzz_requests: one file per family (first byte = family, see
fuzz/fuzz_requests.cpp), from the request shapes the clients send, real manifests' shape,
names, and the imatrix files in ../shared/reference/imatrix.

    fuzz/request_seeds.py OUT_DIR REFERENCE_DIR"""
import json
import os
import sys

out, reference = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                         "required": ["city"]}}}
chat = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "", "tool_calls": [
                                       {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                                   {"role": "tool", "content": "sunny", "tool_name": "get_weather"}],
        "tools": [tool], "format": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "options": {"temperature": 0.2, "num_ctx": 512, "stop": ["\n"]}, "think": True, "keep_alive": "5m"}
openai = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
          "tools": [tool], "tool_choice": "required", "response_format": {"type": "json_schema", "json_schema": {
              "name": "x", "schema": {"type": "object"}}}, "max_tokens": 9, "stream": True,
          "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 2}
anthropic = {"model": "m", "max_tokens": 16, "system": [{"type": "text", "text": "Be brief."}],
             "messages": [{"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather",
                                                             "input": {"city": "Paris"}}]},
                          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}],
             "tools": [{"name": "get_weather", "input_schema": tool["function"]["parameters"]}], "stream": True}
completion = {"model": "m", "prompt": "Once", "max_tokens": 5, "logprobs": 2, "suffix": "end", "stop": ["."]}
responses = {"model": "m", "instructions": "Be brief.", "max_output_tokens": 9, "stream": True,
             "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                       {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}]},
                       {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                       {"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
             "tools": [{"type": "function", "name": "get_weather", "parameters": tool["function"]["parameters"]}],
             "tool_choice": {"type": "function", "name": "get_weather"}, "reasoning": {"effort": "low"},
             "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}}
create = {"model": "x", "from": "m", "system": "s", "template": "{{ .Prompt }}", "parameters": {"top_k": 5},
          "messages": [{"role": "user", "content": "q"}], "quantize": "q4_K_M",
          "files": {"a.gguf": "sha256:" + "0" * 64}, "license": ["MIT"]}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + "a" * 64,
                       "size": 10},
            "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "b" * 64, "size": 5,
                        "from": "x"}]}
seeds = [(0, json.dumps(chat)), (1, json.dumps(openai)), (2, json.dumps(anthropic)), (3, json.dumps(completion)),
         (4, json.dumps(create)), (5, "registry.ollama.ai/library/llama3:8b"), (5, "http://localhost:5000/a/b:c"),
         (6, json.dumps(manifest)), (7, json.dumps(chat["options"])), (10, json.dumps(responses)),
         (11, "\x00Bearer realm=\"https://auth.example/token\",service=\"registry\",scope=\"repository:a/b:pull\""),
         (11, "\x01" + json.dumps(manifest)),
         (11, "\x02" + json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}))]
# Tokenizers: the selector byte after the family picks the vocabulary and the specials mode.
for pick in range(4):
    seeds.append((9, chr(pick | 0x30) + "Hello <s> world!\n\t  ünïcödé 🦙 [CLS] <|endoftext|> 123,456"))
for i, (family, text) in enumerate(seeds):
    with open(os.path.join(out, f"seed{i:02d}"), "wb") as f:
        f.write(bytes([family]) + text.encode())
for name in sorted(os.listdir(os.path.join(reference, "imatrix"))):
    if "imatrix" in name:
        data = open(os.path.join(reference, "imatrix", name), "rb").read()
        if len(data) <= 65536:
            with open(os.path.join(out, "imatrix-" + name), "wb") as f:
                f.write(bytes([8]) + data)

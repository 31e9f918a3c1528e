#!/usr/bin/python3
"""Reference deltas of a PEFT LoRA adapter, for lora/peft_test.go.

Usage: peft_delta.py ADAPTER_FOLDER. Prints a JSON object mapping each
module path to its delta, flattened row-major: scale * (B @ A) in float64,
where for each module r and alpha are taken from the first rank_pattern /
alpha_pattern key (in the file's order) that re.match(r"(.*\.)?(KEY)$")
accepts, else from "r" and "lora_alpha", and scale is alpha / r, or
alpha / sqrt(r) with use_rslora. Written for this project; needs only the
standard library and NumPy (Debian python3-numpy).
"""
import json
import math
import re
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(body[lo:hi], dtype=DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def pattern_value(patterns, module, default):
    for key, value in patterns.items():  # JSON order: the first match wins
        if re.match(r"(.*\.)?(%s)$" % key, module):
            return value
    return default


def main():
    folder = sys.argv[1]
    with open(folder + "/adapter_config.json") as f:
        cfg = json.load(f)
    tensors = read_safetensors(folder + "/adapter_model.safetensors")
    prefix = "base_model.model."
    result = {}
    for name, a in tensors.items():
        if not name.endswith(".lora_A.weight"):
            continue
        module = name[len(prefix):-len(".lora_A.weight")]
        b = tensors[prefix + module + ".lora_B.weight"]
        r = pattern_value(cfg.get("rank_pattern") or {}, module, cfg.get("r", 8))
        alpha = pattern_value(cfg.get("alpha_pattern") or {}, module, cfg.get("lora_alpha", 8))
        if a.shape[0] != r:
            sys.exit("%s: rank %d in the file, %d by the config" % (module, a.shape[0], r))
        scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
        result[module] = (scale * (b @ a)).ravel().tolist()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

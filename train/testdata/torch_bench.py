#!/usr/bin/env python3
"""Times one LoRA training step in PyTorch (CPU), for scripts/bench-finetune.sh.

    torch_bench.py step --model HF_DIR [--seq-len 128] [--batch 1] [--rank 8]
        [--alpha 16] [--target all-linear] [--steps 3] [--threads 2]
        [--dtype f32|bf16] [--lr 1e-3] [--seed 0]
    torch_bench.py table RESULTS.jsonl

"step" loads the Hugging Face folder's weights (safetensors, single or
sharded; F32, F16 or BF16 stored) into frozen tensors of --dtype, puts LoRA
pairs (A Kaiming-uniform, B zero, float32, scale alpha/rank) on the target
projections, and runs --steps optimizer steps of what `qtool finetune` does:
the forward of --batch random windows of --seq-len tokens (the model of
torch_ref.py, which train/torch_test.go checks qtool's gradients against),
mean cross-entropy over every position, backward, clipping to global norm 1,
AdamW. It prints one JSON object a step and then a summary with the median
seconds of the steps after the first (allocation and first-touch warm-up are
left out, as the script does for qtool).

"table" reads the JSON objects the script collected (one a line: the
summaries of both tools, with "tool", "case" and the memory fields) and
prints the tables of the report.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import MODULES, llama_logits  # noqa: E402

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def safetensors_files(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            return sorted(set(json.load(f)["weight_map"].values()))
    return ["model.safetensors"]


def read_safetensors(path, want, dtype):
    """The tensors of path named in want, as torch tensors of dtype."""
    out = {}
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, ti in hdr.items():
        if name == "__metadata__" or name not in want:
            continue
        b, e = ti["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=ST_DTYPES[ti["dtype"]]).reshape(ti["shape"])
        if ti["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[want[name]] = torch.from_numpy(np.array(raw, dtype=np.float32)).to(dtype)
    return out


def load_model(d, dtype):
    with open(os.path.join(d, "config.json")) as f:
        hc = json.load(f)
    heads = hc["num_attention_heads"]
    c = {
        "hidden": hc["hidden_size"], "heads": heads, "kv_heads": hc.get("num_key_value_heads", heads),
        "head_dim": hc.get("head_dim") or hc["hidden_size"] // heads, "ffn": hc["intermediate_size"],
        "layers": hc["num_hidden_layers"], "vocab": hc["vocab_size"], "eps": hc["rms_norm_eps"],
        "rope_theta": hc.get("rope_theta", 10000.0), "interleaved": False, "hf_freqs": True,
    }
    want = {"model.embed_tokens.weight": "embed", "model.norm.weight": "out_norm", "lm_head.weight": "output"}
    for l in range(c["layers"]):
        p = "model.layers.%d." % l
        want[p + "input_layernorm.weight"] = "L%d.attn_norm" % l
        want[p + "post_attention_layernorm.weight"] = "L%d.ffn_norm" % l
        for m in MODULES:
            kind = "self_attn" if m in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            want["%s%s.%s.weight" % (p, kind, m)] = "L%d.%s.W" % (l, m)
            want["%s%s.%s.bias" % (p, kind, m)] = "L%d.%s.bias" % (l, m)
    w = {}
    for fn in safetensors_files(d):
        w.update(read_safetensors(os.path.join(d, fn), want, dtype))
    if "output" not in w:
        w["output"] = w["embed"]  # tied embeddings
    return c, w


def step_cmd(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    t0 = time.perf_counter()
    c, w = load_model(a.model, dtype)
    load_s = time.perf_counter() - t0
    targets = MODULES if a.target == "all-linear" else a.target.split(",")
    lora = {}
    for l in range(c["layers"]):
        for m in targets:
            wt = w["L%d.%s.W" % (l, m)]
            out, inp = wt.shape
            bound = 1 / (inp ** 0.5)
            A = torch.empty(a.rank, inp).uniform_(-bound, bound).requires_grad_(True)
            B = torch.zeros(out, a.rank).requires_grad_(True)
            lora["L%d.%s" % (l, m)] = (A, B)
    params = [p for pair in lora.values() for p in pair]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    scale = a.alpha / a.rank
    g = torch.Generator().manual_seed(a.seed)
    times = []
    for s in range(1, a.steps + 1):
        toks = torch.randint(0, c["vocab"], (a.batch, a.seq_len + 1), generator=g)
        t0 = time.perf_counter()
        cast = {k: (A.to(dtype), B.to(dtype)) for k, (A, B) in lora.items()}
        logits = llama_logits(c, w.get, cast, scale, toks[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c["vocab"]).float(), toks[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        times.append(dt)
        print(json.dumps({"step": s, "loss": loss.item(), "seconds": dt}), flush=True)
    steady = times[1:] or times
    sec = statistics.median(steady)
    print(json.dumps({
        "summary": True, "seconds_per_step": sec, "tokens_per_s": a.batch * a.seq_len / sec,
        "step_seconds": times, "load_seconds": load_s, "trainable_params": sum(p.numel() for p in params),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "dtype": a.dtype,
    }), flush=True)


def mib(b):
    return "%.1f" % (b / 2**20) if b else "-"


def best(r):
    return min(r["step_seconds"][1:] or r["step_seconds"])


def table_cmd(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    qt = [r for r in rows if r["tool"] == "qtool"]
    print("seconds per optimizer step: median of the steps after the first (best of them); tokens/s from the median")
    print("%-12s %-9s %17s %7s %-13s %17s %7s %14s" % ("case", "shape", "qtool s/step", "tok/s", "vs", "PyTorch s/step", "tok/s", "qtool faster"))
    for q in qt:
        shape = "%dx%d r%d" % (q["seq_len"], q["batch"], q["rank"])
        qs = "%.4g (%.4g)" % (q["seconds_per_step"], best(q))
        ts = [r for r in rows if r["tool"] == "torch" and r["case"] == q.get("torch_case")] or [None]
        for t in ts:
            if t is None:
                print("%-12s %-9s %17s %7.0f" % (q["case"], shape, qs, q["tokens_per_s"]))
                continue
            ratio = "%.2fx (%.2fx)" % (t["seconds_per_step"] / q["seconds_per_step"], best(t) / best(q))
            print("%-12s %-9s %17s %7.0f %-13s %17s %7.0f %14s" % (q["case"], shape, qs, q["tokens_per_s"],
                  "PyTorch " + t["dtype"], "%.4g (%.4g)" % (t["seconds_per_step"], best(t)), t["tokens_per_s"], ratio))
    print()
    print("peak RSS, MiB: VmHWM; the largest RssAnon and RssFile, sampled from /proc/PID/status every %s s" % a.interval)
    print("and at each step's end (--json); those at step ends alone; PyTorch's peak RSS (ru_maxrss):")
    print("%-12s %9s %9s %9s %14s %14s  %s" % ("case", "VmHWM", "anon", "file", "anon@step-end", "file@step-end", "PyTorch"))
    for q in qt:
        anon = max(q.get("sampled_anon", 0), q["peak_rss_anon"])
        file = max(q.get("sampled_file", 0), q["peak_rss_file"])
        ts = [r for r in rows if r["tool"] == "torch" and r["case"] == q.get("torch_case")]
        tr = ", ".join("%s %s" % (t["dtype"], mib(t["peak_rss"])) for t in ts) or "-"
        print("%-12s %9s %9s %9s %14s %14s  %s" % (q["case"], mib(q["peak_rss"]), mib(anon), mib(file),
              mib(q["peak_rss_anon"]), mib(q["peak_rss_file"]), tr))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("step")
    s.add_argument("--model", required=True)
    s.add_argument("--seq-len", type=int, default=128)
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--rank", type=int, default=8)
    s.add_argument("--alpha", type=float, default=16)
    s.add_argument("--target", default="all-linear")
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("--interval", default="0.1")
    a = p.parse_args()
    if a.cmd == "step":
        step_cmd(a)
    else:
        table_cmd(a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference loss and LoRA gradients for qtool's trainer, by torch autograd.

An independent float64 implementation of the Llama block of
TRAINER-DESIGN.md §2 with LoRA on any projection (§1), used by
train/torch_test.go:

    /usr/bin/python3 torch_ref.py DIR

DIR holds config.json and float64 .npy arrays written by the Go test:

    config.json  {"hidden", "heads", "kv_heads", "head_dim", "ffn",
                  "layers", "vocab", "eps", "rope_theta", "interleaved",
                  "hf_freqs", "scale", "tokens", "targets", "mask",
                  "adapters": [{"layer", "module"}, ...]}
    embed.npy [vocab, hidden], output.npy [vocab, hidden], out_norm.npy
    L{l}.attn_norm.npy, L{l}.ffn_norm.npy
    L{l}.{module}.W.npy [out, in] (frozen, as stored: GGUF Q/K rows
        permuted, so interleaved RoPE; HF rows with rotate-half RoPE)
    L{l}.{module}.bias.npy (optional)
    L{l}.{module}.A.npy [r, in], L{l}.{module}.B.npy [out, r]

Prints one JSON object: {"loss": summed NLL over the masked targets,
"count", "grads": {"L{l}.{module}": {"A": [...], "B": [...]}}} with the
gradients of the summed loss, flattened row-major.
"""
import json
import math
import os
import sys

import numpy as np
import torch

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load(d, name):
    return torch.from_numpy(np.load(os.path.join(d, name))).to(torch.float64)


def rmsnorm(x, g, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * g


def rope(x, n_heads, head_dim, theta, interleaved, hf_freqs):
    # x: [T, n_heads*head_dim]; position p rotates pair j by p*theta^(-2j/d).
    t = x.shape[0]
    half = head_dim // 2
    freqs = [theta ** (-(2.0 * j) / head_dim) for j in range(half)]
    if hf_freqs:  # transformers computes the inverse frequencies in float32
        freqs = [float(np.float32(f)) for f in freqs]
    freqs = torch.tensor(freqs, dtype=torch.float64)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * freqs[None, :]  # [T, half]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    xh = x.reshape(t, n_heads, head_dim)
    if interleaved:
        x0, x1 = xh[..., 0::2], xh[..., 1::2]
        y0, y1 = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        y = torch.stack([y0, y1], dim=-1).reshape(t, n_heads, head_dim)
    else:
        x0, x1 = xh[..., :half], xh[..., half:]
        y = torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return y.reshape(t, n_heads * head_dim)


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    hidden, heads, kvh, hd = c["hidden"], c["heads"], c["kv_heads"], c["head_dim"]
    eps, scale = c["eps"], c["scale"]
    tokens = torch.tensor(c["tokens"], dtype=torch.long)
    targets = torch.tensor(c["targets"], dtype=torch.long)
    mask = torch.tensor(c["mask"], dtype=torch.bool)
    t = len(c["tokens"])

    lora = {}
    for ad in c["adapters"]:
        key = "L%d.%s" % (ad["layer"], ad["module"])
        a = load(d, key + ".A.npy").requires_grad_(True)
        b = load(d, key + ".B.npy").requires_grad_(True)
        lora[key] = (a, b)

    def linear(x, layer, module):
        key = "L%d.%s" % (layer, module)
        y = x @ load(d, key + ".W.npy").T
        if os.path.exists(os.path.join(d, key + ".bias.npy")):
            y = y + load(d, key + ".bias.npy")
        if key in lora:
            a, b = lora[key]
            y = y + scale * ((x @ a.T) @ b.T)
        return y

    h = load(d, "embed.npy")[tokens]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    group = heads // kvh
    for l in range(c["layers"]):
        a = rmsnorm(h, load(d, "L%d.attn_norm.npy" % l), eps)
        q = rope(linear(a, l, "q_proj"), heads, hd, c["rope_theta"], c["interleaved"], c["hf_freqs"])
        k = rope(linear(a, l, "k_proj"), kvh, hd, c["rope_theta"], c["interleaved"], c["hf_freqs"])
        v = linear(a, l, "v_proj")
        outs = []
        for j in range(heads):
            g = j // group
            qj, kj, vj = q[:, j * hd:(j + 1) * hd], k[:, g * hd:(g + 1) * hd], v[:, g * hd:(g + 1) * hd]
            s = (qj @ kj.T) / math.sqrt(hd)
            s = s.masked_fill(~causal, float("-inf"))
            outs.append(torch.softmax(s, dim=-1) @ vj)
        h = h + linear(torch.cat(outs, dim=-1), l, "o_proj")
        m = rmsnorm(h, load(d, "L%d.ffn_norm.npy" % l), eps)
        act = torch.nn.functional.silu(linear(m, l, "gate_proj")) * linear(m, l, "up_proj")
        h = h + linear(act, l, "down_proj")
    xn = rmsnorm(h, load(d, "out_norm.npy"), eps)
    logits = xn @ load(d, "output.npy").T
    nll = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
    nll.backward()
    grads = {}
    for key, (a, b) in lora.items():
        grads[key] = {"A": a.grad.reshape(-1).tolist(), "B": b.grad.reshape(-1).tolist()}
    json.dump({"loss": nll.item(), "count": int(mask.sum()), "grads": grads}, sys.stdout)


if __name__ == "__main__":
    main()

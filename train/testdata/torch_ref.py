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

The model itself (llama_logits) is shared with torch_bench.py, which times
the same training step in float32 or bfloat16.
"""
import json
import math
import os
import sys

import numpy as np
import torch

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def rmsnorm(x, g, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * g


def rope(x, n_heads, head_dim, theta, interleaved, hf_freqs):
    # x: [..., T, n_heads*head_dim]; position p rotates pair j by
    # p*theta^(-2j/d), computed in float64 and applied in x's dtype.
    t = x.shape[-2]
    half = head_dim // 2
    freqs = [theta ** (-(2.0 * j) / head_dim) for j in range(half)]
    if hf_freqs:  # transformers computes the inverse frequencies in float32
        freqs = [float(np.float32(f)) for f in freqs]
    freqs = torch.tensor(freqs, dtype=torch.float64)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * freqs[None, :]  # [T, half]
    cos, sin = torch.cos(ang)[:, None, :].to(x.dtype), torch.sin(ang)[:, None, :].to(x.dtype)
    xh = x.reshape(*x.shape[:-1], n_heads, head_dim)
    if interleaved:
        x0, x1 = xh[..., 0::2], xh[..., 1::2]
        y0, y1 = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        y = torch.stack([y0, y1], dim=-1).reshape(xh.shape)
    else:
        x0, x1 = xh[..., :half], xh[..., half:]
        y = torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return y.reshape(x.shape)


def attention(q, k, v, heads, kv_heads, head_dim):
    # q [B, T, heads*d], k and v [B, T, kv_heads*d]: causal softmax
    # attention with query head j reading key/value head j // (heads/kv_heads).
    b, t = q.shape[0], q.shape[1]
    group = heads // kv_heads
    qh = q.reshape(b, t, heads, head_dim).transpose(1, 2)
    kh = k.reshape(b, t, kv_heads, head_dim).transpose(1, 2).repeat_interleave(group, dim=1)
    vh = v.reshape(b, t, kv_heads, head_dim).transpose(1, 2).repeat_interleave(group, dim=1)
    s = (qh @ kh.transpose(-1, -2)) / math.sqrt(head_dim)
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    s = s.masked_fill(~causal, float("-inf"))
    return (torch.softmax(s, dim=-1) @ vh).transpose(1, 2).reshape(b, t, heads * head_dim)


def llama_logits(c, w, lora, scale, tokens):
    """Logits [B, T, vocab] of a Llama model for tokens [B, T].

    c has "heads", "kv_heads", "head_dim", "layers", "eps", "rope_theta",
    "interleaved" and "hf_freqs"; w(name) returns a frozen tensor or None:
    "embed", "output", "out_norm", "L{l}.attn_norm", "L{l}.ffn_norm",
    "L{l}.{module}.W" [out, in], "L{l}.{module}.bias"; lora maps
    "L{l}.{module}" to (A [r, in], B [out, r]), added as scale·x·Aᵀ·Bᵀ.
    """
    heads, kvh, hd, eps = c["heads"], c["kv_heads"], c["head_dim"], c["eps"]

    def linear(x, layer, module):
        key = "L%d.%s" % (layer, module)
        y = x @ w(key + ".W").T
        bias = w(key + ".bias")
        if bias is not None:
            y = y + bias
        if key in lora:
            a, b = lora[key]
            y = y + scale * ((x @ a.T) @ b.T)
        return y

    def pos(x, n):
        return rope(x, n, hd, c["rope_theta"], c["interleaved"], c["hf_freqs"])

    h = w("embed")[tokens]
    for l in range(c["layers"]):
        a = rmsnorm(h, w("L%d.attn_norm" % l), eps)
        q, k = pos(linear(a, l, "q_proj"), heads), pos(linear(a, l, "k_proj"), kvh)
        att = attention(q, k, linear(a, l, "v_proj"), heads, kvh, hd)
        h = h + linear(att, l, "o_proj")
        m = rmsnorm(h, w("L%d.ffn_norm" % l), eps)
        act = torch.nn.functional.silu(linear(m, l, "gate_proj")) * linear(m, l, "up_proj")
        h = h + linear(act, l, "down_proj")
    xn = rmsnorm(h, w("out_norm"), eps)
    return xn @ w("output").T


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    tokens = torch.tensor(c["tokens"], dtype=torch.long)
    targets = torch.tensor(c["targets"], dtype=torch.long)
    mask = torch.tensor(c["mask"], dtype=torch.bool)

    cache = {}

    def w(name):
        if name not in cache:
            p = os.path.join(d, name + ".npy")
            cache[name] = torch.from_numpy(np.load(p)).to(torch.float64) if os.path.exists(p) else None
        return cache[name]

    lora = {}
    for ad in c["adapters"]:
        key = "L%d.%s" % (ad["layer"], ad["module"])
        lora[key] = (w(key + ".A").requires_grad_(True), w(key + ".B").requires_grad_(True))

    logits = llama_logits(c, w, lora, c["scale"], tokens[None, :])[0]
    nll = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
    nll.backward()
    grads = {}
    for key, (a, b) in lora.items():
        grads[key] = {"A": a.grad.reshape(-1).tolist(), "B": b.grad.reshape(-1).tolist()}
    json.dump({"loss": nll.item(), "count": int(mask.sum()), "grads": grads}, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch baseline for `spvit bench step --tokens`: the same ViT + UNETR-style decoder, the same shapes and FLOPs,
trained the way a PyTorch user would (eager, bf16 autocast, fused AdamW, default SDPA backend choice).

Mirrors src/model/{vit_encoder,vit_block,attention,segmenter,halo_conv}.cpp on one GPU: patchify -> Linear embed +
learned position table -> pre-LN blocks (fused qkv Linear, SDPA, proj; GELU MLP) -> final LayerNorm; decoder with
log2(P) stages of ConvTranspose(2, 2) + skip chains from blocks (j * depth / stages - 1) + 3x3 fuse convs, a 3x3 stem
on the image and a 1x1 head. Prints one JSON line per size, with the same fields as `spvit bench step --tokens`.

    python3 benchmarks/pytorch_baseline.py --tokens 4096,16384,65536 [--compile] [--checkpointing] [--out f.jsonl]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as ckpt


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, round(mlp_ratio * dim))
        self.fc2 = nn.Linear(round(mlp_ratio * dim), dim)

    def attention(self, x):
        b, n, e = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, n, e))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Segmenter(nn.Module):
    def __init__(self, a, tokens):
        super().__init__()
        self.a = a
        self.embed = nn.Linear(a.channels * a.patch ** 2, a.dim)
        self.pos = nn.Parameter(torch.randn(tokens, a.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.mlp_ratio) for _ in range(a.depth))
        self.norm = nn.LayerNorm(a.dim)
        self.stages = int(math.log2(a.patch))
        self.taps = [max(0, j * a.depth // self.stages - 1) for j in range(1, self.stages)]
        width = lambda s: a.decoder_width << (self.stages - s)
        self.up, self.skip_up, self.fuse = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for j in range(1, self.stages + 1):
            self.up.append(nn.ConvTranspose2d(a.dim if j == 1 else width(j - 1), width(j), 2, 2))
            chain = [nn.ConvTranspose2d(a.dim if s == 0 else width(j), width(j), 2, 2)
                     for s in range(j)] if j < self.stages else []
            self.skip_up.append(nn.ModuleList(chain))
            self.fuse.append(nn.Conv2d(2 * width(j), width(j), 3, padding=1))
        self.stem = nn.Conv2d(a.channels, width(self.stages), 3, padding=1)
        self.head = nn.Conv2d(width(self.stages), a.classes, 1)

    def forward(self, image):
        b, c, h, w = image.shape
        p, r, cols = self.a.patch, h // self.a.patch, w // self.a.patch
        tokens = image.reshape(b, c, r, p, cols, p).permute(0, 2, 4, 1, 3, 5).reshape(b, r * cols, c * p * p)
        x = self.embed(tokens) + self.pos
        features = []
        for i, blk in enumerate(self.blocks):
            x = ckpt.checkpoint(blk, x, use_reentrant=False) if self.a.checkpointing else blk(x)
            features += [x] * self.taps.count(i)
        features.append(self.norm(x))
        grid = lambda t: t.transpose(1, 2).reshape(b, -1, r, cols)
        x = grid(features[-1])
        for j in range(1, self.stages + 1):
            x = self.up[j - 1](x)
            if j < self.stages:
                skip = grid(features[self.stages - j - 1])
                for up in self.skip_up[j - 1]:
                    skip = up(skip)
            else:
                skip = F.gelu(self.stem(image))
            x = F.gelu(self.fuse[j - 1](torch.cat([x, skip], 1)))
        return self.head(x)


def encoder_flops(a, n):
    return 3 * (a.depth * (24 * n * a.dim ** 2 + 4 * n * n * a.dim) + 2 * n * (a.channels * a.patch ** 2) * a.dim)


def attention_only_ms(a, n):
    d = a.dim // a.heads
    q, k, v = (torch.randn(1, a.heads, n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    def once():
        o = F.scaled_dot_product_attention(q, k, v)
        o.backward(torch.ones_like(o))
    once()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.depth):
        once()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1e3


def run_size(a, n):
    side = math.isqrt(n)
    assert side * side == n, f"--tokens {n} must be a square number"
    torch.manual_seed(0)
    model = Segmenter(a, n).cuda()
    if a.compile:
        model = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=True)
    pixels = side * a.patch
    image = torch.randn(1, a.channels, pixels, pixels, device="cuda")
    mask = torch.randint(0, a.classes, (1, pixels, pixels), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = model(image)
        loss = F.cross_entropy(logits.float(), mask)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    step_ms = (time.perf_counter() - t) * 1e3 / a.steps
    return {"tokens": n, "image_side": pixels, "step_ms": step_ms, "tokens_per_s": n / (step_ms / 1e3),
            "encoder_tflops": encoder_flops(a, n) / (step_ms / 1e3) / 1e12,
            "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "loss": loss.item(),
            "attention_ms": attention_only_ms(a, n)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", default="4096,16384,65536")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--mlp-ratio", type=float, default=4.0)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--decoder-width", type=int, default=16)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--find-max", action="store_true", help="x4 tokens after the last size until out of memory")
    p.add_argument("--out", help="append one JSON line per size")
    a = p.parse_args()
    sizes = [int(s) for s in a.tokens.split(",")]
    i = 0
    while i < len(sizes):
        n = sizes[i]
        try:
            r = run_size(a, n)
        except torch.OutOfMemoryError:
            r = {"tokens": n, "error": "out of memory"}
        r.update(framework="pytorch " + torch.__version__, precision=a.precision, checkpointing=a.checkpointing,
                 compile=a.compile)
        print(json.dumps(r), flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps(r) + "\n")
        torch.cuda.empty_cache()
        if "error" in r:
            break
        if a.find_max and i + 1 == len(sizes):
            sizes.append(n * 4)
        i += 1


if __name__ == "__main__":
    main()

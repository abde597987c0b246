#!/usr/bin/env python3
"""PyTorch/HF eager reference for `texplain bench`: the same computations, shapes and JSON keys.

- vit-train: HF `ViTForImageClassification` (attn_implementation="sdpa", dropout 0 like the quickstart) on random
  weights and random inputs; one step = forward with labels (HF's cross-entropy), backward, `torch.optim.AdamW`
  step (lr 1e-3, weight decay 0.05, none on biases, norms and embeddings: the grouping of `build_optimizer`).
- sampling: HF `GPT2LMHeadModel.generate(inputs_embeds=prefix, do_sample=True, top_p=0.95, top_k=0,
  min_new_tokens=max_new_tokens=T, num_return_sequences=N)` for all images in one call: EOS is blocked for every
  token, so every sentence has exactly T tokens, as in `texplain bench` (top_k=0 because texplain applies no top-k;
  HF's default top_k=50 would add a filtering step the Rust side does not do).
- --precision bf16: the forward pass (vit-train; backward and the AdamW step outside, as the PyTorch AMP recipe
  has it) and `generate` (sampling) run under `torch.autocast(device_type, dtype=torch.bfloat16)`, the weights
  and the optimiser state staying f32: the counterpart of `texplain bench --precision bf16`.

Usage: python scripts/bench_reference.py --what all --device cpu --threads 2 --json ref.json
(needs torch and transformers; run by scripts/bench.sh next to `texplain bench`).
"""
import argparse
import contextlib
import json
import os
import statistics
import time

import torch


def vit_config(preset):
    from transformers import ViTConfig

    common = dict(
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-12,
        qkv_bias=True,
        num_channels=3,
        num_labels=2,
    )
    if preset == "tiny":
        return ViTConfig(image_size=48, patch_size=8, hidden_size=64, num_hidden_layers=3,
                         num_attention_heads=2, intermediate_size=256, **common)
    return ViTConfig(image_size=384, patch_size=16, hidden_size=768, num_hidden_layers=12,
                     num_attention_heads=12, intermediate_size=3072, **common)


def flops_per_image(c):
    """Same count as texplain's `models::vit::flops_per_image` (2 x multiply-accumulates of the matmuls)."""
    d, m, l = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    p = (c.image_size // c.patch_size) ** 2
    n = p + 1
    patch = p * c.num_channels * c.patch_size ** 2 * d
    layer = 4 * n * d * d + 2 * n * n * d + 2 * n * d * m
    return 2.0 * (patch + l * layer + d * c.num_labels)


def is_no_decay(name):
    """texplain's `train::is_no_decay`."""
    return (name.endswith(".bias") or "layernorm" in name or "ln_" in name or "embeddings" in name
            or "wte" in name or "wpe" in name)


def autocast(args, device):
    """The precision's region: bf16 autocast, or nothing for f32."""
    if args.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_median(device, warmup, steps, f):
    for _ in range(warmup):
        f()
    sync(device)
    times = []
    for _ in range(max(steps, 1)):
        start = time.perf_counter()
        f()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_vit_train(args, device):
    from transformers import ViTForImageClassification

    cfg = vit_config(args.vit_preset)
    batch = args.batch or (64 if args.vit_preset == "tiny" else 32)
    torch.manual_seed(args.seed)
    model = ViTForImageClassification._from_config(cfg, attn_implementation="sdpa").to(device)
    model.train()
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not is_no_decay(n)], "weight_decay": 0.05},
        {"params": [p for n, p in named if is_no_decay(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999))
    xs = torch.randn(batch, cfg.num_channels, cfg.image_size, cfg.image_size, device=device)
    ys = torch.randint(cfg.num_labels, (batch,), device=device)

    def step():
        with autocast(args, device):
            loss = model(pixel_values=xs, labels=ys).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    seconds = time_median(device, args.warmup, args.steps, step)
    images_per_s = batch / seconds
    train_tflops = 3.0 * flops_per_image(cfg) * images_per_s / 1e12
    return {
        "preset": args.vit_preset,
        "batch": batch,
        "image_size": cfg.image_size,
        "step_ms": seconds * 1e3,
        "images_per_s": images_per_s,
        "train_tflops": train_tflops,
        "mfu": train_tflops / args.peak_tflops if args.peak_tflops else None,
    }


def bench_sampling(args, device):
    from transformers import GPT2Config, GPT2LMHeadModel

    if args.lm_preset == "tiny":
        cfg = GPT2Config(vocab_size=300, n_positions=128, n_embd=96, n_layer=2, n_head=2,
                         bos_token_id=0, eos_token_id=0)
        k, default_tokens = 4, 16
    else:
        cfg = GPT2Config()
        k, default_tokens = 10, 30
    new_tokens = args.new_tokens or default_tokens
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa").to(device).eval()
    prefix = torch.randn(args.images, k, cfg.n_embd, device=device)
    mask = torch.ones(args.images, k, dtype=torch.long, device=device)
    eos = cfg.eos_token_id

    def call():
        with autocast(args, device):
            out = generate()
        # With inputs_embeds, generate returns only the new tokens: [images * samples, new_tokens].
        if tuple(out.shape) != (args.images * args.samples, new_tokens) or bool((out == eos).any()):
            raise RuntimeError(f"generate gave {tuple(out.shape)} (or an EOS); expected equal-length sentences")

    def generate():
        return model.generate(
            inputs_embeds=prefix,
            attention_mask=mask,
            do_sample=True,
            top_p=0.95,
            top_k=0,
            temperature=1.0,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            num_return_sequences=args.samples,
            pad_token_id=eos,
            eos_token_id=eos,
        )

    seconds = time_median(device, args.warmup, args.steps, call)
    sentences = args.images * args.samples
    return {
        "preset": args.lm_preset,
        "images": args.images,
        "samples": args.samples,
        "prefix_len": k,
        "new_tokens": new_tokens,
        "call_ms": seconds * 1e3,
        "sentences_per_s": sentences / seconds,
        "tokens_per_s": sentences * new_tokens / seconds,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--what", choices=["vit-train", "sampling", "all"], default="all")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vit-preset", choices=["tiny", "base"], default="tiny")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--peak-tflops", type=float)
    ap.add_argument("--lm-preset", choices=["tiny", "small"], default="tiny")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--new-tokens", type=int)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    args = ap.parse_args()

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = {
        "implementation": f"pytorch {torch.__version__} eager",
        "device": f"cpu ({torch.get_num_threads()} threads)" if device.type == "cpu" else str(device),
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "warmup": args.warmup,
        "vit_train": bench_vit_train(args, device) if args.what in ("vit-train", "all") else None,
        "sampling": bench_sampling(args, device) if args.what in ("sampling", "all") else None,
    }
    print(f"pytorch reference on {figures['device']}, {args.precision} (median of {args.steps} steps after {args.warmup} warmup)")
    if figures["vit_train"]:
        v = figures["vit_train"]
        print(f"vit-train {v['preset']} batch {v['batch']}: {v['step_ms']:.2f} ms/step, "
              f"{v['images_per_s']:.1f} images/s, {v['train_tflops']:.3f} TFLOP/s")
    if figures["sampling"]:
        s = figures["sampling"]
        print(f"sampling {s['preset']} {s['images']} images x {s['samples']} samples x {s['new_tokens']} tokens: "
              f"{s['call_ms']:.2f} ms/call, {s['sentences_per_s']:.1f} sentences/s, {s['tokens_per_s']:.0f} tokens/s")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(figures, f, indent=2)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the HF-transformers parity fixtures that tests/parity.rs checks the Rust models against.

Run by hand (not in CI), from the repository root, with a Python that has torch, transformers and safetensors:

    python3 -m venv /tmp/venv-parity
    /tmp/venv-parity/bin/pip install torch==2.11.0 transformers safetensors numpy
    /tmp/venv-parity/bin/python scripts/make_parity_fixtures.py

(The committed fixtures were made with torch 2.11.0 and transformers 5.24.0 on CPU.)

Writes under tests/fixtures/parity/:
  vit/{config.json,model.safetensors}     tiny random ViTForImageClassification (save_pretrained)
  vit_io.safetensors                      pixel_values, logits, hidden_states_{0,1,2}, last_hidden_state
  gpt2/{config.json,model.safetensors}    tiny random GPT2LMHeadModel (save_pretrained: keys `transformer.*`)
  gpt2_base/{config.json,model.safetensors}
                                          the same weights as openai-community/gpt2 stores them: saved from
                                          GPT2Model (no `transformer.` prefix) plus the old persistent buffers
                                          `h.{i}.attn.bias` (causal mask) and `h.{i}.attn.masked_bias`
  gpt2_io.safetensors                     input_ids, prefix_embeds, logits_full (ids), logits_prefix
                                          (inputs_embeds = [prefix; wte(ids)]), logits_incremental (the same sequence
                                          fed through past_key_values in chunks of K+2, 2, 1, 1, 1 positions)
Weights are re-drawn from N(0, 0.2) (layer norms 1 + N(0, 0.2)) so that every parameter matters to the outputs;
HF's own init (std 0.02, layer norms exactly 1/0) would leave a weak test.
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel, ViTConfig, ViTForImageClassification

OUT = os.path.join("tests", "fixtures", "parity")


def redraw(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.2
            is_norm = "layernorm" in name or ".ln_" in name or name.startswith("ln_") or "ln_f" in name
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)


def vit():
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        qkv_bias=True,
        num_labels=3,
        attn_implementation="eager",
    )
    model = ViTForImageClassification(cfg).eval()
    redraw(model, torch.Generator().manual_seed(1))
    model.save_pretrained(os.path.join(OUT, "vit"), safe_serialization=True)
    pixel_values = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(pixel_values=pixel_values, output_hidden_states=True)
        last = model.vit(pixel_values=pixel_values).last_hidden_state
    io = {"pixel_values": pixel_values, "logits": out.logits, "last_hidden_state": last}
    for i, h in enumerate(out.hidden_states):
        io[f"hidden_states_{i}"] = h
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT, "vit_io.safetensors"))


def gpt2():
    cfg = GPT2Config(
        vocab_size=100,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_inner=None,
        activation_function="gelu_new",
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    model = GPT2LMHeadModel(cfg).eval()
    redraw(model, torch.Generator().manual_seed(3))
    model.save_pretrained(os.path.join(OUT, "gpt2"), safe_serialization=True)

    # openai-community/gpt2 layout: GPT2Model keys + the old persistent mask buffers.
    base_dir = os.path.join(OUT, "gpt2_base")
    os.makedirs(base_dir, exist_ok=True)
    base = {k: v.clone().contiguous() for k, v in model.transformer.state_dict().items()}
    n = cfg.n_positions
    for i in range(cfg.n_layer):
        base[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
        base[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(base, os.path.join(base_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(OUT, "gpt2", "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(base_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    gen = torch.Generator().manual_seed(4)
    b, t, k = 2, 7, 3
    input_ids = torch.randint(0, cfg.vocab_size, (b, t), generator=gen)
    prefix = torch.randn(b, k, cfg.n_embd, generator=gen)
    with torch.no_grad():
        logits_full = model(input_ids=input_ids).logits
        embeds = torch.cat([prefix, model.transformer.wte(input_ids)], dim=1)
        logits_prefix = model(inputs_embeds=embeds).logits
        out = model(inputs_embeds=embeds[:, : k + 2], use_cache=True)
        parts, past, pos = [out.logits], out.past_key_values, k + 2
        for step in [2, 1, 1, 1]:
            ids = input_ids[:, pos - k : pos - k + step]
            out = model(input_ids=ids, past_key_values=past, use_cache=True)
            parts.append(out.logits)
            past, pos = out.past_key_values, pos + step
        assert pos == k + t
        logits_incremental = torch.cat(parts, dim=1)
    io = {
        "input_ids": input_ids,
        "prefix_embeds": prefix,
        "logits_full": logits_full,
        "logits_prefix": logits_prefix,
        "logits_incremental": logits_incremental,
    }
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT, "gpt2_io.safetensors"))
    # Reference-side sanity: the cache reproduces the full forward in transformers itself.
    print("hf incremental vs full max abs:", (logits_incremental - logits_prefix).abs().max().item())


if __name__ == "__main__":
    torch.manual_seed(0)
    vit()
    gpt2()
    for root, _, files in sorted(os.walk(OUT)):
        for name in sorted(files):
            path = os.path.join(root, name)
            print(f"{os.path.getsize(path):>8}  {path}")
    print({k: tuple(v.shape) for k, v in load_file(os.path.join(OUT, "vit", "model.safetensors")).items()})

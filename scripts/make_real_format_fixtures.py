#!/usr/bin/env python3
"""Writes tiny fixtures in the exact on-disk formats a real TExplain run reads (tests/real_format.rs runs
`texplain run configs/waterbirds-table1.yaml` on them with `--set` overrides).

Run by hand (not in CI), from the repository root, with a Python that has torch, transformers, tokenizers and
Pillow:

    python3 -m venv /tmp/venv-realfmt
    /tmp/venv-realfmt/bin/pip install torch==2.11.0 transformers tokenizers numpy pillow
    /tmp/venv-realfmt/bin/python scripts/make_real_format_fixtures.py

(The committed fixtures were made with torch 2.11.0, transformers 5.24.0, tokenizers 0.23.3, Pillow 13.0.0.)

Writes under tests/fixtures/real-format/:
  vit/          tiny random ViTForImageClassification (save_pretrained, safetensors) with a 1000-label head, as
                google/vit-base-patch16-384 ships it (32 px, patch 8, hidden 32, 2 layers), plus its
                preprocessor_config.json
  gpt2/         tiny random GPT2LMHeadModel (save_pretrained: config.json, generation_config.json,
                model.safetensors; n_embd 16, 2 layers, 128 positions: a short context, as
                small LMs have, that sentences re-encoded for the GradCAM score must fit) with a byte-level BPE tokenizer trained by `tokenizers`
                (ByteLevel pre-tokenizer and decoder, ~400 merges+bytes, `<|endoftext|>` added last as GPT-2's
                50256) saved as GPT2TokenizerFast saves it (tokenizer.json, tokenizer_config.json) plus the
                vocab.json/merges.txt pair of openai-community/gpt2. Random weights make it write what a real
                byte-level LM can write: newlines, tabs, control characters and partial UTF-8 (U+FFFD).
  coco/         annotations/captions_train2017.json (COCO layout: info, licenses, images, annotations) and
                train2017/<12-digit id>.jpg: small JPEGs of varied size, one greyscale, one progressive, one CMYK
                (all occur in real photo collections); captions with COCO's quirks (trailing newline, leading
                space, non-ASCII).
  waterbirds/   metadata.csv (img_id,img_filename,y,split,place,place_filename as waterbirds_v1.0) and JPEGs in
                CUB species folders; per split x group: train 4/1/1/4 (spuriously correlated), val and test 2 each.
                No fg_masks/ (the real folder has none).
"""
import json
import os
import random
import shutil

import torch
from PIL import Image, ImageDraw
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPT2TokenizerFast,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

OUT = os.path.join("tests", "fixtures", "real-format")

WATER = [(40, 90, 170), (30, 110, 150), (60, 120, 190)]
LAND = [(50, 120, 40), (90, 110, 30), (40, 90, 50)]
SPECIES = {
    1: ["001.Black_footed_Albatross", "002.Laysan_Albatross", "059.California_Gull"],
    0: ["031.Black_billed_Cuckoo", "095.Baltimore_Oriole", "118.House_Sparrow"],
}


def scene(rng, w, h, water, bird):
    """A background of the place's colour with noise and a horizon, and optionally an ellipse 'bird'."""
    bg = rng.choice(WATER if water else LAND)
    img = Image.new("RGB", (w, h), bg)
    px = img.load()
    for y in range(h):
        for x in range(w):
            n = rng.randint(-18, 18)
            shade = 25 if y < h // 3 else 0  # a lighter sky band
            px[x, y] = tuple(max(0, min(255, c + n + shade)) for c in bg)
    if bird is not None:
        d = ImageDraw.Draw(img)
        bw, bh = rng.randint(w // 4, w // 2), rng.randint(h // 5, h // 3)
        x0, y0 = rng.randint(0, w - bw), rng.randint(h // 3, h - bh)
        colour = (235, 235, 225) if bird == 1 else (220, 170, 40)
        d.ellipse([x0, y0, x0 + bw, y0 + bh], fill=colour)
        d.ellipse([x0 + bw - bh // 2, y0 - bh // 3, x0 + bw + bh // 4, y0 + bh // 3], fill=colour)
    return img


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
        num_labels=1000,
        id2label={i: f"imagenet_class_{i}" for i in range(1000)},
        label2id={f"imagenet_class_{i}": i for i in range(1000)},
    )
    model = ViTForImageClassification(cfg).eval()
    out = os.path.join(OUT, "vit")
    model.save_pretrained(out, safe_serialization=True)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(out)


def captions():
    """COCO-format caption file and images; returns the caption texts (the tokenizer's training corpus)."""
    rng = random.Random(7)
    root = os.path.join(OUT, "coco")
    img_dir = os.path.join(root, "train2017")
    os.makedirs(img_dir)
    os.makedirs(os.path.join(root, "annotations"))
    places = {True: ["a lake", "the ocean", "a pond", "the sea"], False: ["a forest", "a bamboo grove", "a field"]}
    images, annotations, texts = [], [], []
    ann_id = 37
    for k in range(10):
        image_id = 9 + 97 * k
        water, has_bird = k % 2 == 0, k % 5 != 4
        w, h = rng.choice([(40, 30), (30, 40), (48, 32), (36, 36)])
        img = scene(rng, w, h, water, rng.randint(0, 1) if has_bird else None)
        name = f"{image_id:012d}.jpg"
        path = os.path.join(img_dir, name)
        if k == 3:
            img.convert("L").save(path, quality=85)  # greyscale JPEG
        elif k == 5:
            img.save(path, quality=85, progressive=True)
        elif k == 7:
            img.convert("CMYK").save(path, quality=85)  # CMYK (Adobe) JPEG
        else:
            img.save(path, quality=85)
        images.append(
            {
                "license": 3,
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/train2017/{name}",
                "height": h,
                "width": w,
                "date_captured": "2013-11-14 11:18:45",
                "flickr_url": f"http://farm4.staticflickr.com/{image_id}.jpg",
                "id": image_id,
            }
        )
        for c in range(5):
            place = rng.choice(places[water])
            if has_bird:
                bird = rng.choice(["bird", "small bird", "duck", "seagull", "sparrow"])
                text = rng.choice([f"A {bird} standing near {place}.", f"a photo of a {bird} by {place}", f"There is a {bird} in front of {place}"])
            else:
                text = rng.choice([f"A view of {place}.", f"{place} on a quiet day", f"An empty scene of {place}."])
            if (k, c) == (1, 2):
                text = text + "\n"  # COCO captions sometimes end with a newline ...
            if (k, c) == (2, 0):
                text = " " + text + "  "  # ... or carry stray spaces
            if (k, c) == (6, 1):
                text = "A bird near a café by the lake"
            annotations.append({"image_id": image_id, "id": ann_id, "caption": text})
            texts.append(text.strip())
            ann_id += 11
    coco = {
        "info": {"description": "COCO 2017 Dataset (texplain fixture)", "version": "1.0", "year": 2017},
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 3, "name": "Attribution-NonCommercial-ShareAlike License"}],
        "images": images,
        "annotations": annotations,
    }
    with open(os.path.join(root, "annotations", "captions_train2017.json"), "w") as f:
        json.dump(coco, f)
    return texts


def gpt2(corpus):
    out = os.path.join(OUT, "gpt2")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[], show_progress=False
    )
    tok.train_from_iterator(corpus * 4, trainer)
    tok.add_special_tokens(["<|endoftext|>"])  # the last id, as GPT-2's 50256
    eos = tok.token_to_id("<|endoftext|>")
    fast = GPT2TokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    fast.model_max_length = 128
    fast.save_pretrained(out)
    if not os.path.exists(os.path.join(out, "vocab.json")):
        tok.model.save(out)  # vocab.json + merges.txt, as openai-community/gpt2 ships them beside tokenizer.json
    cfg = GPT2Config(
        vocab_size=tok.get_vocab_size(),
        n_positions=128,
        n_embd=16,
        n_layer=2,
        n_head=2,
        activation_function="gelu_new",
        bos_token_id=eos,
        eos_token_id=eos,
    )
    GPT2LMHeadModel(cfg).eval().save_pretrained(out, safe_serialization=True)
    return tok


def waterbirds():
    rng = random.Random(11)
    root = os.path.join(OUT, "waterbirds")
    rows = []
    img_id = 1
    # split code -> images per group g = 2*y + place
    counts = {0: [4, 1, 1, 4], 1: [2, 2, 2, 2], 2: [2, 2, 2, 2]}
    for split, per_group in counts.items():
        for g, n in enumerate(per_group):
            y, place = g // 2, g % 2
            for _ in range(n):
                folder = rng.choice(SPECIES[y])
                stem = folder.split(".", 1)[1].replace("_b", "_B").replace("_f", "_F")
                name = f"{folder}/{stem}_{rng.randint(1, 120):04d}_{rng.randint(100, 99999)}.jpg"
                w, h = rng.choice([(48, 36), (36, 48), (44, 44), (52, 40)])
                path = os.path.join(root, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                scene(rng, w, h, place == 1, y).save(path, quality=80)
                place_file = rng.choice(["/o/ocean/00002178.jpg", "/l/lake/natural/00001230.jpg"]) if place else rng.choice(
                    ["/b/bamboo_forest/00004409.jpg", "/f/forest/broadleaf/00000016.jpg"]
                )
                rows.append(f"{img_id},{name},{y},{split},{place},{place_file}")
                img_id += 1
    with open(os.path.join(root, "metadata.csv"), "w") as f:
        f.write("img_id,img_filename,y,split,place,place_filename\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    vit()
    tok = gpt2(captions())
    waterbirds()
    total = 0
    for root, _, files in sorted(os.walk(OUT)):
        for name in sorted(files):
            path = os.path.join(root, name)
            total += os.path.getsize(path)
            if not name.endswith(".jpg"):
                print(f"{os.path.getsize(path):>8}  {path}")
    print(f"{total:>8}  total")
    print("vocab", tok.get_vocab_size(), "eos", tok.token_to_id("<|endoftext|>"))
    print("round trip:", repr(tok.decode(tok.encode("A bird\ton the\nlake, café").ids)))

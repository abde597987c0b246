#!/usr/bin/env python3
"""Writes the Background Challenge / ImageNet-9 fixtures that tests/data_upstream.rs checks the loader against.

Run by hand, from the repository root, with a Python that has numpy and Pillow:

    python3 -m pip install numpy pillow
    python3 scripts/make_bg_challenge_fixtures.py

(The committed fixtures were made with numpy 2.4.6 and Pillow 13.0.0.) Output is deterministic.

tests/fixtures/npy/ -- one 3x4 0/1 pattern saved by numpy in the dtypes and layouts a user's masks may have:
  mask_u1.npy (uint8, what the Background Challenge release writes), mask_b1.npy (bool), mask_f4.npy (float32),
  mask_f8_fortran.npy (float64, Fortran order), mask_i8_hw1.npy (int64, shape [3, 4, 1]),
  mask_u2_big_endian.npy (>u2), mask_u1_v2.npy (format version 2.0); pattern.txt holds the pattern.

tests/fixtures/bg_challenge_mini/ -- the release's layout (MadryLab/backgrounds_challenge; Xiao et al. 2020) in
miniature: three IN-9 classes (`00_dog`, `01_bird`, `02_wheeled vehicle` -- with its space), ImageNet-style file
names (`n02085620_10074.JPEG`), non-square 48x40 JPEGs:
  in9l/train/<class>/ (2 images each), in9l/val/<class>/ (1 each)
  bg_challenge/{original,only_fg,no_fg,only_bg_b,only_bg_t}/val/<class>/<synset>_<n>.JPEG
  bg_challenge/{mixed_same,mixed_rand,mixed_next}/val/<class>/fg_<synset>_<n>_bg_<synset>_<m>.JPEG
  bg_challenge/fg_mask/val/<class>/<synset>_<n>.npy   uint8 0/1 [40, 48] (h, w of the original image)
Each image is a blue-ish gradient with a red ellipse (the object, exactly the .npy mask) so a test can check that
image and mask keep the same geometry after resizing.
"""
import os

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

PATTERN = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]], dtype=np.uint8)


def write_npy_fixtures():
    d = os.path.join(ROOT, "npy")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "mask_u1.npy"), PATTERN)
    np.save(os.path.join(d, "mask_b1.npy"), PATTERN.astype(bool))
    # 0.6 and 0.2 instead of 1/0 so that the float threshold (>= 0.5) is exercised.
    np.save(os.path.join(d, "mask_f4.npy"), np.where(PATTERN == 1, 0.6, 0.2).astype(np.float32))
    np.save(os.path.join(d, "mask_f8_fortran.npy"), np.asfortranarray(PATTERN.astype(np.float64)))
    np.save(os.path.join(d, "mask_i8_hw1.npy"), (PATTERN.astype(np.int64) * 7)[:, :, None])
    np.save(os.path.join(d, "mask_u2_big_endian.npy"), PATTERN.astype(">u2") * 300)
    with open(os.path.join(d, "mask_u1_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, PATTERN, version=(2, 0))
    with open(os.path.join(d, "pattern.txt"), "w") as f:
        f.write("\n".join(" ".join(str(v) for v in row) for row in PATTERN) + "\n")


CLASSES = [("00_dog", "n02085620"), ("01_bird", "n01530575"), ("02_wheeled vehicle", "n02701002")]
H, W = 40, 48


def scene(k):
    """Image k: a gradient background (its hue depends on k) and a red ellipse; returns (rgb, mask)."""
    y, x = np.mgrid[0:H, 0:W]
    bg = np.stack(
        [8 + k + 0 * x, 60 + 2 * y + 4 * k, 150 + 2 * x // 3 + 0 * y], axis=-1
    ).clip(0, 255)
    cx, cy = 18 + 3 * (k % 4), 20 + (k % 3)
    mask = (((x - cx) / 11.0) ** 2 + ((y - cy) / 8.0) ** 2 <= 1.0).astype(np.uint8)
    rgb = np.where(mask[:, :, None] == 1, np.array([220, 30, 30]), bg).astype(np.uint8)
    return rgb, mask, bg.astype(np.uint8)


def save_jpeg(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)


def write_bg_challenge_mini():
    root = os.path.join(ROOT, "bg_challenge_mini")
    k = 0
    for split, n in [("train", 2), ("val", 1)]:
        for cls, syn in CLASSES:
            for i in range(n):
                rgb, _, _ = scene(k)
                save_jpeg(os.path.join(root, "in9l", split, cls, f"{syn}_{1000 + k}.JPEG"), rgb)
                k += 1
    bgc = os.path.join(root, "bg_challenge")
    items = []
    for c, (cls, syn) in enumerate(CLASSES):
        rgb, mask, bg = scene(k)
        items.append((cls, f"{syn}_{10000 + k}", rgb, mask, bg))
        k += 1
    for c, (cls, name, rgb, mask, bg) in enumerate(items):
        m3 = mask[:, :, None] == 1
        ys, xs = np.nonzero(mask)
        box = np.zeros_like(mask, dtype=bool)
        box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        b3 = box[:, :, None]
        out = {
            "original": rgb,
            "only_fg": np.where(m3, rgb, 0),
            "no_fg": np.where(m3, 0, rgb),
            "only_bg_b": np.where(b3, 0, rgb),
            # The release tiles a background strip; the clean background stands in for it here.
            "only_bg_t": np.where(b3, bg, rgb),
        }
        for variant, img in out.items():
            save_jpeg(os.path.join(bgc, variant, "val", cls, f"{name}.JPEG"), img.astype(np.uint8))
        partners = {"mixed_same": c, "mixed_rand": (c + 2) % 3, "mixed_next": (c + 1) % 3}
        for variant, j in partners.items():
            other = items[j]
            img = np.where(m3, rgb, other[4]).astype(np.uint8)
            save_jpeg(os.path.join(bgc, variant, "val", cls, f"fg_{name}_bg_{other[1]}.JPEG"), img)
        mdir = os.path.join(bgc, "fg_mask", "val", cls)
        os.makedirs(mdir, exist_ok=True)
        np.save(os.path.join(mdir, f"{name}.npy"), mask)


if __name__ == "__main__":
    write_npy_fixtures()
    write_bg_challenge_mini()

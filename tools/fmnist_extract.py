#!/usr/bin/python3
"""Extracts Fashion-MNIST test images for the checks and the demo.

    /usr/bin/python3 tools/fmnist_extract.py [--split t10k] [--start 0] [--count N]
        [--png-dir DIR] [--one-per-class] [--raw FILE] [--bin-dir DIR] [--labels FILE]

  --png-dir DIR    8-bit grayscale PNGs, named NNNNN_L.png (NNNNN = index in
                   the split, L = true class 0-9), plus DIR/labels.csv
                   (file,index,label,name).
  --one-per-class  with --png-dir: only the first image of each class found
                   in the range (the demo samples).
  --raw FILE       all selected images, preprocessed exactly as the model
                   expects ((pixel/255 - mean)/std, float32 NCHW, batch 1 each),
                   back to back: N * 1*28*28 little-endian float32.
  --bin-dir DIR    the same tensors as one file per image: DIR/NNNNN.bin.
  --labels FILE    the true labels of the selected images, one per line.

Without --count, the whole range from --start to the end of the split is used.
"""
import argparse
import csv
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_data  # noqa: E402


def write_png_gray(path, img):
    """Minimal PNG encoder: 8-bit grayscale, no interlace, filter 0 rows."""
    h, w = img.shape

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9))
           + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=fmnist_data.DEFAULT_DIR)
    ap.add_argument("--split", default="t10k", choices=["t10k", "train"])
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int)
    ap.add_argument("--png-dir")
    ap.add_argument("--one-per-class", action="store_true")
    ap.add_argument("--raw")
    ap.add_argument("--bin-dir")
    ap.add_argument("--labels")
    a = ap.parse_args()
    if not (a.png_dir or a.raw or a.bin_dir or a.labels):
        ap.error("nothing to do: give --png-dir, --raw, --bin-dir and/or --labels")

    images, labels = fmnist_data.load(a.split, a.data_dir)
    end = images.shape[0] if a.count is None else min(images.shape[0], a.start + a.count)
    if a.start < 0 or a.start >= end:
        ap.error("empty range")
    idx = np.arange(a.start, end)

    if a.png_dir:
        os.makedirs(a.png_dir, exist_ok=True)
        sel = idx
        if a.one_per_class:
            seen, sel = set(), []
            for i in idx:
                if int(labels[i]) not in seen:
                    seen.add(int(labels[i]))
                    sel.append(i)
            sel.sort(key=lambda i: int(labels[i]))
        with open(os.path.join(a.png_dir, "labels.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "index", "label", "name"])
            for i in sel:
                name = "%05d_%d.png" % (i, labels[i])
                write_png_gray(os.path.join(a.png_dir, name), images[i])
                w.writerow([name, int(i), int(labels[i]), fmnist_data.LABELS[labels[i]]])

    if a.raw or a.bin_dir:
        x = fmnist_data.preprocess(images[idx])
        if a.raw:
            x.astype("<f4").tofile(a.raw)
        if a.bin_dir:
            os.makedirs(a.bin_dir, exist_ok=True)
            for k, i in enumerate(idx):
                x[k].astype("<f4").tofile(os.path.join(a.bin_dir, "%05d.bin" % i))

    if a.labels:
        with open(a.labels, "w") as f:
            f.write("\n".join(str(int(labels[i])) for i in idx) + "\n")


if __name__ == "__main__":
    main()

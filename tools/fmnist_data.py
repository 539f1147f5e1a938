"""Fashion-MNIST loading shared by train_fmnist.py and fmnist_extract.py.

Reads the IDX files of Debian's dataset-fashion-mnist package directly
(gzip'd or not). No torchvision dataset classes, no downloads.
"""
import gzip
import os

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Preprocessing used for training, for the ONNX model and for `occ pack`:
#   x = pixel * SCALE;  x = (x - MEAN) / STD
# MEAN/STD are the training-set statistics of pixel/255, rounded to 4 digits.
SCALE = 1.0 / 255.0
MEAN = 0.2860
STD = 0.3530


def _open(path):
    if os.path.exists(path):
        return open(path, "rb")
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rb")
    raise FileNotFoundError("%s(.gz) not found; install dataset-fashion-mnist" % path)


def read_idx(path):
    """Returns the IDX array at path (or path + '.gz')."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("%s: not an IDX file" % path)
    if data[2] != 0x08:
        raise ValueError("%s: IDX type 0x%02x, only unsigned byte supported" % (path, data[2]))
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(data) - off != n:
        raise ValueError("%s: expected %d bytes of data, got %d" % (path, n, len(data) - off))
    return np.frombuffer(data, dtype=np.uint8, offset=off).reshape(dims)


def load(split, data_dir=DEFAULT_DIR):
    """split is 'train' or 't10k'; returns (images uint8 [N,28,28], labels uint8 [N])."""
    images = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte" % split))
    labels = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte" % split))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("image/label count mismatch in %s" % split)
    return images, labels


def preprocess(images_u8):
    """uint8 [N,28,28] -> float32 [N,1,28,28] normalised as the model expects."""
    x = images_u8.astype(np.float32) * np.float32(SCALE)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return x[:, None, :, :].astype(np.float32)

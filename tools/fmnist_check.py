#!/usr/bin/python3
"""Fashion-MNIST accuracy check helpers (used by scripts/check-fmnist.sh and
tests/cli_fmnist.sh).

  predict-occ --occ BIN --pack P (--raw RAW | --png-dir DIR) --out PRED [--jobs N]
        Classifies every tensor of RAW (N x 1x28x28 float32, from
        fmnist_extract.py --raw) with `occ run --input/--output`, or every
        PNG listed in DIR/labels.csv with `occ run --image --top 1 --json`,
        and writes the predicted class of each, one per line, to PRED.
        If `occ run --help` mentions --batch-input, RAW is classified with a
        single `occ run --batch-input RAW --output OUT` call instead.
  argmax --in OUT.bin --classes 10 --out PRED
        Predictions from a raw float32 file of N x classes logits.
  score --labels L --pred P [--ref R] [--min-acc A] [--min-agree G]
        Accuracy of P against the true labels L and agreement of P with the
        reference predictions R (fractions). Prints a JSON summary; exit 1 if
        a threshold is not met.
"""
import argparse
import concurrent.futures as cf
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonfield import last_object  # noqa: E402

IN_FLOATS = 28 * 28


def read_lines(path):
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def occ_supports(occ, flag):
    try:
        p = subprocess.run([occ, "run", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in (p.stdout + p.stderr)


def run_checked(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()[-500:]))
    return p.stdout


def predict_tensor(occ, pack, x, tmp, i):
    inp = os.path.join(tmp, "%d.in.bin" % i)
    out = os.path.join(tmp, "%d.out.bin" % i)
    x.astype("<f4").tofile(inp)
    run_checked([occ, "run", pack, "--input", inp, "--output", out, "--threads", "1"])
    y = np.fromfile(out, dtype="<f4")
    os.remove(inp)
    os.remove(out)
    if y.size == 0 or not np.isfinite(y).all():
        raise RuntimeError("image %d: empty or non-finite output" % i)
    return int(np.argmax(y))


def predict_image(occ, pack, png):
    out = run_checked([occ, "run", pack, "--image", png, "--top", "1", "--json", "--threads", "1"])
    obj = last_object(out)
    if obj is None or not obj.get("top"):
        raise RuntimeError("%s: no JSON with a top class in occ output: %r" % (png, out[-200:]))
    return int(obj["top"][0]["index"])


def cmd_predict_occ(a):
    if a.raw:
        xs = np.fromfile(a.raw, dtype="<f4")
        if xs.size % IN_FLOATS:
            sys.exit("fmnist_check: %s is not a whole number of 1x28x28 tensors" % a.raw)
        xs = xs.reshape(-1, IN_FLOATS)
        if not a.no_batch and occ_supports(a.occ, "--batch-input"):
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "out.bin")
                run_checked([a.occ, "run", a.pack, "--batch-input", a.raw, "--output", out])
                ys = np.fromfile(out, dtype="<f4")
            if ys.size % xs.shape[0]:
                sys.exit("fmnist_check: batch output size %d not a multiple of %d" % (ys.size, xs.shape[0]))
            preds = ys.reshape(xs.shape[0], -1).argmax(1).tolist()
        else:
            with tempfile.TemporaryDirectory() as tmp, cf.ThreadPoolExecutor(a.jobs) as ex:
                preds = list(ex.map(lambda i: predict_tensor(a.occ, a.pack, xs[i], tmp, i),
                                    range(xs.shape[0])))
    else:
        with open(os.path.join(a.png_dir, "labels.csv")) as f:
            files = [row["file"] for row in csv.DictReader(f)]
        with cf.ThreadPoolExecutor(a.jobs) as ex:
            preds = list(ex.map(lambda fn: predict_image(a.occ, a.pack, os.path.join(a.png_dir, fn)),
                                files))
    with open(a.out, "w") as f:
        f.write("\n".join(str(p) for p in preds) + "\n")


def cmd_argmax(a):
    ys = np.fromfile(a.inp, dtype="<f4")
    if ys.size == 0 or ys.size % a.classes:
        sys.exit("fmnist_check: %s: %d floats is not a multiple of %d" % (a.inp, ys.size, a.classes))
    preds = ys.reshape(-1, a.classes).argmax(1)
    with open(a.out, "w") as f:
        f.write("\n".join(str(int(p)) for p in preds) + "\n")


def cmd_score(a):
    labels = np.array(read_lines(a.labels))
    pred = np.array(read_lines(a.pred))
    res = {"n": int(labels.size)}
    ok = True
    if pred.size != labels.size:
        res["error"] = "%d predictions for %d labels" % (pred.size, labels.size)
        print(json.dumps(res))
        sys.exit(1)
    res["correct"] = int((pred == labels).sum())
    res["accuracy"] = round(res["correct"] / labels.size, 4)
    if a.min_acc is not None:
        res["min_accuracy"] = a.min_acc
        ok &= res["accuracy"] >= a.min_acc
    if a.ref:
        ref = np.array(read_lines(a.ref))
        if ref.size != labels.size:
            res["error"] = "%d reference predictions for %d labels" % (ref.size, labels.size)
            print(json.dumps(res))
            sys.exit(1)
        res["agree"] = int((pred == ref).sum())
        res["agreement"] = round(res["agree"] / labels.size, 4)
        res["ref_accuracy"] = round(float((ref == labels).mean()), 4)
        res["disagree_idx"] = [int(i) for i in np.nonzero(pred != ref)[0][:20]]
        if a.min_agree is not None:
            res["min_agreement"] = a.min_agree
            ok &= res["agree"] >= a.min_agree * labels.size - 1e-9
    res["ok"] = bool(ok)
    print(json.dumps(res))
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict-occ")
    p.add_argument("--occ", required=True)
    p.add_argument("--pack", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--raw")
    g.add_argument("--png-dir")
    p.add_argument("--out", required=True)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-batch", action="store_true", help="never use --batch-input")
    p.set_defaults(fn=cmd_predict_occ)
    p = sub.add_parser("argmax")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_argmax)
    p = sub.add_parser("score")
    p.add_argument("--labels", required=True)
    p.add_argument("--pred", required=True)
    p.add_argument("--ref")
    p.add_argument("--min-acc", type=float)
    p.add_argument("--min-agree", type=float)
    p.set_defaults(fn=cmd_score)
    a = ap.parse_args()
    try:
        a.fn(a)
    except RuntimeError as e:
        sys.exit("fmnist_check: %s" % e)


if __name__ == "__main__":
    main()

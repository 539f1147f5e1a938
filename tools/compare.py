#!/usr/bin/python3
"""Compares two raw float32 output tensors.

    /usr/bin/python3 tools/compare.py OUT.bin REF.bin [--tol 1e-3] [--json]

Metric: max|out - ref| / max|ref| (relative to the reference's largest
magnitude), plus top-1 agreement over the last axis (batch 1: the whole
tensor). Passes when the metric is <= --tol and top-1 is the same.
Prints one line "rel=... top1=A/B ok|FAIL" (or a JSON object with --json)
and exits 0 on pass, 1 on failure, 2 on a usage or I/O error.
"""
import argparse
import json
import sys

import numpy as np


def load(path):
    try:
        return np.fromfile(path, dtype="<f4")
    except OSError as e:
        print("compare: %s" % e, file=sys.stderr)
        sys.exit(2)


def compare(out, ref, tol):
    res = {"n": int(ref.size), "tol": tol}
    if out.size != ref.size:
        res.update(ok=False, error="size mismatch: %d vs %d floats" % (out.size, ref.size))
        return res
    if out.size == 0:
        res.update(ok=False, error="empty tensors")
        return res
    finite = bool(np.isfinite(out).all())
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    scale = float(np.abs(ref).max())
    max_abs = float(diff.max()) if finite else float("inf")
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    top_out = int(np.argmax(out))
    top_ref = int(np.argmax(ref))
    res.update(max_abs=max_abs, ref_absmax=scale, rel=rel, finite=finite,
               top1_out=top_out, top1_ref=top_ref, top1_same=top_out == top_ref)
    res["ok"] = bool(finite and rel <= tol and top_out == top_ref)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = compare(load(a.out), load(a.ref), a.tol)
    if a.json:
        print(json.dumps(res))
    elif "error" in res:
        print("%s FAIL" % res["error"])
    else:
        print("rel=%.3g top1=%d/%d %s" % (res["rel"], res["top1_out"], res["top1_ref"],
                                          "ok" if res["ok"] else "FAIL"))
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()

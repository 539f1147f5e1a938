#!/usr/bin/python3
"""Runs the ONNX project's single-operator node tests through `occ pack` + `occ run`.

    /usr/bin/python3 tools/onnx_node_check.py [--occ build/release/occ]
        [--data /usr/share/libonnx-testdata/data/node] [--filter REGEX]
        [--list FILE] [--jobs 2] [--timeout 60] [--markdown FILE] [--verbose]

Each test directory holds model.onnx and test_data_set_*/{input,output}_N.pb
(TensorProtos). For every test in scope the tool packs the model, runs every
data set and compares each output with the reference:
|out - ref| <= atol + rtol * |ref| elementwise (rtol 1e-3, atol 1e-5), same
element count, NaN where the reference has NaN. bfloat16 outputs (which
ONNX 1.12's numpy_helper reads as their uint16 bits) are compared as values
within one bfloat16 step (|out - ref| <= 2^-7 |ref|): ONNX 1.12's reference
data truncates float32 to bfloat16, the engine rounds to nearest even (as
ONNX >= 1.13 and ONNX Runtime do), so the two may differ in the last bit.

Inputs. A graph input that steers the operator (an integer tensor, or a float
input in a slot the packer folds into an attribute: Clip min/max, Resize
roi/scales, Pad value) must be known at pack time (docs/architecture.md): it
is bound with `occ pack --bind NAME=FILE` when the CLI has that flag, else
the tool writes a copy of the model with that input turned into an
initializer (what --bind does). Every other input is a runtime input, given
with `occ run --input NAME=FILE` (raw little-endian in the declared type)
when the CLI has it; without it (before typed tensors) only a model with one
float32 runtime input can run (`--input FILE`), and the others fail with a
reason saying so. Outputs come from `--output-dir DIR` (DIR/<name>.bin, name
sanitised to [A-Za-z0-9_.-]) or, without it, from `--output FILE` (all float
outputs back to back, split by the reference sizes).

Tests outside the design (strings, sequences, optionals, training, random
operators, losses and optimisers) are listed as out of scope with the reason.
A crash (killed by a signal, or a sanitizer report on stderr) is counted
apart from ordinary failures; the bar is zero. Exit status: 1 when a test
crashed, or (with --list) when a listed test did not pass; else 0.
"""
import argparse
import collections
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

RTOL, ATOL = 1e-3, 1e-5
DEFAULT_DATA = "/usr/share/libonnx-testdata/data/node"

# Operators outside the design: what the engine never runs by construction.
OUT_OF_SCOPE_OPS = {
    "Bernoulli": "random operator", "RandomNormal": "random operator",
    "RandomNormalLike": "random operator", "RandomUniform": "random operator",
    "RandomUniformLike": "random operator", "Multinomial": "random operator",
    "Adagrad": "training (optimiser)", "Adam": "training (optimiser)",
    "Momentum": "training (optimiser)", "Gradient": "training (gradient)",
    "NegativeLogLikelihoodLoss": "training (loss)",
    "SoftmaxCrossEntropyLoss": "training (loss)",
    "StringNormalizer": "string tensors", "TfIdfVectorizer": "string/n-gram text op",
}
# If, Loop and Scan are in scope: an If whose condition is known at pack time
# is inlined; a run-time condition, a Loop or a Scan is refused by the packer
# and counts as a failure with its reason (those carrying sequences or
# optionals are out of scope by those types).
OUT_OF_SCOPE_NAMES = [
    (re.compile(r"string"), "string tensors"),
    (re.compile(r"^test_sequence_|sequence_map|_sequence"), "sequence type"),
    (re.compile(r"^test_optional_|optional"), "optional type"),
    (re.compile(r"_training"), "training mode"),
    (re.compile(r"^test_(bernoulli|random)"), "random operator"),
    (re.compile(r"loss|^test_(nllloss|sce)_"), "training (loss)"),
    (re.compile(r"^test_(adagrad|adam|momentum|nesterov)"), "training (optimiser)"),
]

# Float inputs the packer folds into attributes (src/pack/onnx_import.c's
# rules): they must be known at pack time, so they are bound, not fed.
STEERING = {
    "Clip": {1, 2}, "Resize": {1, 2, 3}, "Upsample": {1}, "Pad": {1, 2, 3},
    "Reshape": {1}, "Squeeze": {1}, "Unsqueeze": {1}, "Expand": {1}, "Tile": {1},
    "Slice": {1, 2, 3, 4}, "Split": {1}, "TopK": {1}, "OneHot": {1, 2},
    "ConstantOfShape": {0}, "Range": {0, 1, 2}, "CumSum": {1}, "Trilu": {1},
    "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}, "ReduceMin": {1},
    "ReduceProd": {1}, "ReduceL1": {1}, "ReduceL2": {1}, "ReduceLogSum": {1},
    "ReduceLogSumExp": {1}, "ReduceSumSquare": {1}, "Dropout": {1, 2},
    "BatchNormalization": {1, 2, 3, 4}, "InstanceNormalization": {1, 2},
    "LayerNormalization": {1, 2}, "Conv": {1, 2}, "ConvTranspose": {1, 2},
    "Gemm": {1, 2}, "PRelu": {1}, "LSTM": {1, 2, 3, 4, 7}, "GRU": {1, 2, 3, 4},
    "RNN": {1, 2, 3, 4}, "GroupNormalization": {1, 2},
}
# Weight-like float inputs above (Conv W, Gemm B...) are bound too: a model
# carries them as initializers; the node tests make them graph inputs only
# because a node test has no initializers.

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")


def sanitise(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class Cli:
    def __init__(self, occ):
        self.occ = occ
        run_help = self._help("run")
        pack_help = self._help("pack")
        self.named_inputs = "NAME=FILE" in run_help
        self.output_dir = "--output-dir" in run_help
        self.bind = "--bind" in pack_help

    def _help(self, cmd):
        try:
            p = subprocess.run([self.occ, cmd, "--help"], capture_output=True, text=True, timeout=30)
            return p.stdout + p.stderr
        except (OSError, subprocess.TimeoutExpired):
            return ""


def load_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def value_kind(vi):
    """'tensor' or the name of the non-tensor type."""
    return vi.type.WhichOneof("value")


def main_op(model, name, data):
    ops = [n.op_type for n in model.graph.node]
    if name.endswith("_expanded"):
        base = os.path.join(data, name[: -len("_expanded")], "model.onnx")
        if os.path.exists(base):
            bops = [n.op_type for n in onnx.load(base).graph.node]
            if bops:
                return bops[0] + " (expanded)"
    rest = [o for o in ops if o != "Constant"]
    return (rest or ops or ["?"])[0]


def scope(name, model):
    """None when in scope, else the reason."""
    for n in model.graph.node:
        if n.op_type in OUT_OF_SCOPE_OPS:
            return "%s: %s" % (n.op_type, OUT_OF_SCOPE_OPS[n.op_type])
        if n.domain not in ("", "ai.onnx"):
            return "operator domain %s" % n.domain
    for rx, why in OUT_OF_SCOPE_NAMES:
        if rx.search(name):
            return why
    for vi in list(model.graph.input) + list(model.graph.output):
        k = value_kind(vi)
        if k != "tensor_type":
            return "%s value '%s'" % (k.replace("_type", ""), vi.name)
        if vi.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            return "string tensors"
    return None


def steering_inputs(model):
    """Names of graph inputs that must be bound at pack time."""
    names = set()
    for n in model.graph.node:
        slots = STEERING.get(n.op_type, set())
        for k, inp in enumerate(n.input):
            if k in slots and inp:
                names.add(inp)
    return names


def bind_into_model(model, values, path):
    """Writes a copy of model with the inputs in values made initializers."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [vi for vi in m.graph.input if vi.name not in values]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for nm, arr in values.items():
        m.graph.initializer.append(numpy_helper.from_array(arr, nm))
    onnx.save(m, path)


def run_cmd(args, timeout):
    """(returncode, output, crashed, timed_out)."""
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", False, True
    out = (p.stderr or "") + (p.stdout or "")
    crashed = p.returncode < 0 or bool(SANITIZER.search(p.stderr or ""))
    return p.returncode, out, crashed, False


def last_line(text):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    for l in lines:
        if SANITIZER.search(l) or l.startswith("occ"):
            # "occ pack: error: /path/model.onnx: node ..." -> "node ..."
            return re.sub(r"^occ \w+: (error: )?\S+\.(onnx|occ): ", "", l)[:300]
    return (lines[-1] if lines else "(no message)")[:300]


def compare(out, ref):
    """None when equal within tolerance, else the reason."""
    if out.size != ref.size:
        return "output has %d elements, expected %d" % (out.size, ref.size)
    if ref.size == 0:
        return None
    o = out.astype(np.float64).reshape(-1)
    r = ref.astype(np.float64).reshape(-1)
    nan_ref = np.isnan(r)
    if (np.isnan(o) != nan_ref).any():
        return "NaN where the reference has none (or the reverse)"
    o, r = o[~nan_ref], r[~nan_ref]
    inf = np.isinf(r)
    if (o[inf] != r[inf]).any():
        return "infinity differs"
    o, r = o[~inf], r[~inf]
    if o.size == 0:
        return None
    d = np.abs(o - r)
    bad = d > ATOL + RTOL * np.abs(r)
    if bad.any():
        i = int(np.argmax(d))
        return "max error %.3g at %d (got %.6g, expected %.6g)" % (d[i], i, o[i], r[i])
    return None


def bf16_values(bits):
    """float64 values of bfloat16 bits (uint16)."""
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def compare_bf16(out, ref):
    """compare() for bfloat16 bits: values within one bfloat16 step."""
    if out.size != ref.size:
        return "output has %d elements, expected %d" % (out.size, ref.size)
    o, r = bf16_values(out.reshape(-1)), bf16_values(ref.reshape(-1))
    nan_ref = np.isnan(r)
    if (np.isnan(o) != nan_ref).any():
        return "NaN where the reference has none (or the reverse)"
    o, r = o[~nan_ref], r[~nan_ref]
    inf = np.isinf(r)
    if (o[inf] != r[inf]).any():
        return "infinity differs"
    o, r = o[~inf], r[~inf]
    d = np.abs(o - r)
    bad = d > np.abs(r) * 2.0 ** -7
    if bad.any():
        i = int(np.argmax(d))
        return "max error %.3g at %d (got %.6g, expected %.6g; bfloat16)" % (d[i], i, o[i], r[i])
    return None


def declared_shape_mismatch(model, name, arr):
    """Why the test data of graph input name cannot fill its declared static
    shape (None when the element counts agree or the shape is symbolic)."""
    for vi in model.graph.input:
        if vi.name != name or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            return None
        want = [d.dim_value for d in dims]
        if int(np.prod(want)) != arr.size:  # same count, other shape: the raw bytes still fit
            return ("test data: input '%s' has shape %s, the model declares %s "
                    "(inconsistent test data)" % (name, list(arr.shape), want))
    return None


def run_test(cli, data, name, timeout, tmp_root, dev_bind_all):
    """Returns (status, op, reason) with status pass/fail/crash/skip."""
    tdir = os.path.join(data, name)
    try:
        model = onnx.load(os.path.join(tdir, "model.onnx"))
    except Exception as ex:  # noqa: BLE001 - a bad test file is a failure
        return "fail", "?", "cannot load model.onnx: %s" % ex
    op = main_op(model, name, data)
    why = scope(name, model)
    if why:
        return "skip", op, why
    inits = {i.name for i in model.graph.initializer}
    ginputs = [vi for vi in model.graph.input if vi.name not in inits]
    sets = sorted(d for d in os.listdir(tdir) if d.startswith("test_data_set_"))
    if not sets:
        return "fail", op, "no test data"
    work = tempfile.mkdtemp(prefix=sanitise(name) + ".", dir=tmp_root)
    try:
        r = _run(cli, tdir, model, ginputs, sets, work, timeout, dev_bind_all)
        return ("pass", op, "") if r is None else (r[0], op, r[1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(cli, tdir, model, ginputs, sets, work, timeout, dev_bind_all):
    steer = steering_inputs(model)
    # Inputs of the first data set decide what is bound (they are the same
    # constants in every set of a node test).
    def inputs_of(ds):
        vals = []
        for k, vi in enumerate(ginputs):
            p = os.path.join(tdir, ds, "input_%d.pb" % k)
            if not os.path.exists(p):
                return None
            vals.append((vi.name, load_tensor(p)))
        return vals

    first = inputs_of(sets[0])
    if first is None:
        return ("fail", "input files missing for the graph inputs")
    bound, runtime = {}, []
    for nm, arr in first:
        if nm in steer:
            bound[nm] = arr
        else:
            runtime.append(nm)
    if not cli.named_inputs and len(runtime) > 1 and dev_bind_all:
        runtime.sort(key=lambda nm: dict(first)[nm].dtype != np.float32)
    if not cli.named_inputs and len(runtime) > 1:
        if dev_bind_all:
            for nm, arr in first:
                if nm in runtime[1:]:
                    bound[nm] = arr
            runtime = runtime[:1]
        else:
            return ("fail", "%d runtime inputs (%s): needs `occ run --input NAME=FILE` "
                    "(typed tensors)" % (len(runtime), ", ".join(runtime)))
    for nm in runtime:
        why = declared_shape_mismatch(model, nm, dict(first)[nm])
        if why:
            return ("fail", why)
    if not runtime and not (cli.named_inputs and cli.bind):
        return ("fail", "no runtime input: every input steers the operator (the whole node "
                "folds at pack time)")
    if not cli.named_inputs:
        arr = dict(first)[runtime[0]]
        if arr.dtype != np.float32:
            return ("fail", "runtime input '%s' is %s: needs typed tensors" % (runtime[0], arr.dtype))
    outs = [vi for vi in model.graph.output]
    if not cli.output_dir:
        for vi in outs:
            if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                return ("fail", "output '%s' is not float32: needs typed tensors" % vi.name)

    while True:
        model_path = os.path.join(tdir, "model.onnx")
        pack = [cli.occ, "pack", model_path, "-o", os.path.join(work, "m.occ")]
        if bound:
            if cli.bind:
                for nm, arr in bound.items():
                    f = os.path.join(work, "bind_" + sanitise(nm) + ".bin")
                    arr.astype(arr.dtype.newbyteorder("<")).tofile(f)
                    pack += ["--bind", "%s=%s" % (nm, f)]
            else:
                model_path = os.path.join(work, "bound.onnx")
                bind_into_model(model, bound, model_path)
                pack[2] = model_path
        rc, out, crashed, to = run_cmd(pack, timeout)
        if crashed:
            return ("crash", "occ pack: " + last_line(out))
        if to:
            return ("fail", "occ pack timed out after %ds" % timeout)
        # The packer names an input that steers a shape through other nodes
        # (what the table above cannot know): bind it, as its message says a
        # user would, and pack again.
        m = re.search(r"with --bind (\S+)=FILE", out) if rc != 0 and cli.bind else None
        # (never an If condition: a node test feeds it at run time, and the
        # packer takes only conditions known at pack time - a failure)
        if_conds = {n.input[0] for n in model.graph.node if n.op_type == "If" and n.input}
        if (m and m.group(1) in runtime and m.group(1) not in if_conds
                and (cli.named_inputs or len(runtime) > 1)):
            bound[m.group(1)] = dict(first)[m.group(1)]
            runtime.remove(m.group(1))
            continue
        break
    if rc != 0:
        return ("fail", "pack: " + last_line(out))

    for ds in sets:
        vals = inputs_of(ds)
        if vals is None:
            return ("fail", "%s: input files missing" % ds)
        vals = dict(vals)
        run = [cli.occ, "run", os.path.join(work, "m.occ")]
        for nm in runtime:
            f = os.path.join(work, "in_" + sanitise(nm) + ".bin")
            a = vals[nm]
            a.astype(a.dtype.newbyteorder("<")).tofile(f)
            run += ["--input", ("%s=%s" % (nm, f)) if cli.named_inputs else f]
        odir = os.path.join(work, "out")
        os.makedirs(odir, exist_ok=True)
        ofile = os.path.join(work, "out.bin")
        run += ["--output-dir", odir] if cli.output_dir else ["--output", ofile]
        rc, out, crashed, to = run_cmd(run, timeout)
        if crashed:
            return ("crash", "occ run: " + last_line(out))
        if to:
            return ("fail", "occ run timed out after %ds" % timeout)
        if rc != 0:
            return ("fail", "run: " + last_line(out))
        refs = []
        for k, vi in enumerate(outs):
            p = os.path.join(tdir, ds, "output_%d.pb" % k)
            if not os.path.exists(p):
                return ("fail", "%s: reference output_%d.pb missing" % (ds, k))
            refs.append((vi.name, load_tensor(p)))
        if cli.output_dir:
            bf16 = {vi.name for vi in outs if vi.type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16}
            for nm, ref in refs:
                p = os.path.join(odir, sanitise(nm) + ".bin")
                if not os.path.exists(p):
                    return ("fail", "no output file for '%s'" % nm)
                got = np.fromfile(p, dtype=ref.dtype.newbyteorder("<"))
                r = compare_bf16(got, ref) if nm in bf16 and ref.dtype == np.uint16 else compare(got, ref)
                if r:
                    return ("fail", "%s: %s" % (nm, r))
        else:
            got = np.fromfile(ofile, dtype="<f4")
            total = sum(r.size for _, r in refs)
            if got.size != total:
                return ("fail", "output has %d floats, expected %d" % (got.size, total))
            at = 0
            for nm, ref in refs:
                r = compare(got[at:at + ref.size], ref)
                at += ref.size
                if r:
                    return ("fail", "%s: %s" % (nm, r))
    return None


def reason_category(why):
    """A coarse bucket for a failure reason: what would have to change."""
    if "needs `occ run --input NAME=FILE`" in why:
        return "several runtime inputs: needs named `--input` (typed-tensor CLI)"
    if re.search(r"runtime input '.*' is \w+: needs typed", why):
        return "non-float32 runtime input: needs typed tensors"
    if "is not float32: needs typed" in why:
        return "non-float32 output: needs typed tensors"
    m = re.search(r"\((\w+)\): operator not supported \(no kernel\)", why)
    if m:
        return "no kernel for " + m.group(1)
    if why.startswith("no runtime input"):
        return "no runtime input (the node folds at pack time)"
    m = re.search(r"has element type (\d+) \(", why)
    if m:
        names = {4: "uint16", 5: "int16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}
        return "%s tensors: not a supported dtype (refused at pack)" % names.get(int(m.group(1)), "type " + m.group(1))
    m = re.search(r"to = (\d+) is not a supported type|dtype = (\d+) is not a supported", why)
    if m:
        return "cast/output to an unsupported dtype (float64, bfloat16)"
    if re.search(r"= 0 \(only an input fixed|dimension \d+ = 0 \(must be > 0\)|slices to nothing", why):
        return "zero-size tensors (shapes are static and non-empty)"
    if why.startswith("test data: "):
        return "inconsistent test data (input shape differs from the model's declared one)"
    if "control flow decided at run time" in why or "control flow must be decided at pack time" in why:
        return "control flow decided at run time (If on a run-time condition, Loop, Scan: refused)"
    if "its output shape depends on the data" in why:
        return "data-dependent output shape (refused: memory is planned before the run)"
    m = re.search(r"\((\w+)\): input \d+ \('[^']*'\) is (\w+), which", why)
    if m:
        return "%s on %s: type not taken" % (m.group(1), m.group(2))
    m = re.search(r"\((\w+)\): \d+ outputs, expected", why)
    if m:
        return "%s: optional output not supported" % m.group(1)
    if why.startswith("pack:"):
        return "refused at pack time (other)"
    if why.startswith("run:"):
        return "run error"
    return "wrong result or other"


def categories(results):
    c = collections.Counter(reason_category(why) for st, _, why in results.values()
                            if st in ("fail", "crash"))
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def markdown(results, summary, cli, path):
    by_op = collections.OrderedDict()
    for name, (st, op, why) in sorted(results.items(), key=lambda kv: (kv[1][1], kv[0])):
        by_op.setdefault(op, []).append((name, st, why))
    lines = [
        "# ONNX node-test conformance",
        "",
        "Generated by `make check-onnx` (`tools/onnx_node_check.py`): every single-operator",
        "model of libonnx-testdata (ONNX 1.12, `/usr/share/libonnx-testdata/data/node/`)",
        "through `occ pack` + `occ run`, outputs compared with rtol %g, atol %g" % (RTOL, ATOL),
        "(bfloat16 outputs as values within one bfloat16 step: ONNX 1.12's references truncate,",
        "the engine rounds to nearest even as ONNX >= 1.13 and ONNX Runtime do).",
        "",
        "CLI seen: named inputs (`--input NAME=FILE`): %s; `--output-dir`: %s; `occ pack --bind`: %s."
        % ("yes" if cli.named_inputs else "no (one float input only)",
           "yes" if cli.output_dir else "no (float outputs only)",
           "yes" if cli.bind else "no (bound inputs become initializers in a copy of the model)"),
        "",
        "**%s**" % summary,
        "",
    ]
    if cli.named_inputs and cli.output_dir:
        lines += [
            "Every runtime input is given typed (`occ run --input NAME=FILE`), every output",
            "read back typed (`--output-dir`). Inputs that steer an operator (axes, pads,",
            "scales, k, depth, weights such as Conv's W) are fixed with `occ pack --bind`, and",
            "so is any input the packer names as steering a shape (it says `--bind NAME=FILE`).",
            "Failures by cause:",
            "",
        ]
    else:
        lines += [
            "Until the typed-tensor CLI lands (named `--input NAME=FILE`, `--output-dir`), a test",
            "runs only when it has one float32 runtime input and float32 outputs; inputs that",
            "steer an operator (axes, pads, scales, weights such as Conv's W) are bound at pack",
            "time. What the failures need:",
            "",
        ]
    lines += [
        "| failures | cause |",
        "|---|---|",
    ]
    lines += ["| %d | %s |" % (n, cat) for cat, n in categories(results)]
    lines += [
        "",
        "| operator | pass / in scope | out of scope |",
        "|---|---|---|",
    ]
    for op, rows in by_op.items():
        ins = [r for r in rows if r[1] != "skip"]
        ok = sum(1 for r in ins if r[1] == "pass")
        lines.append("| %s | %d / %d | %d |" % (op, ok, len(ins), len(rows) - len(ins)))
    lines += ["", "## Failures and crashes", "", "| test | result | reason |", "|---|---|---|"]
    for op, rows in by_op.items():
        for name, st, why in rows:
            if st in ("fail", "crash"):
                lines.append("| %s | %s | %s |" % (name, st, why.replace("|", "\\|")))
    lines += ["", "## Out of scope", "", "| test | reason |", "|---|---|"]
    for op, rows in by_op.items():
        for name, st, why in rows:
            if st == "skip":
                lines.append("| %s | %s |" % (name, why.replace("|", "\\|")))
    # hand-written sections after the generated ones (the classifiers outside
    # the zoo, make check-zoo-extra) are carried over from the previous file
    kept = []
    try:
        with open(path) as f:
            old = f.read().split("\n")
        keep = False
        for l in old:
            if l.startswith("## "):
                keep = l.startswith("## Torchvision classifiers outside the zoo")
            if keep:
                kept.append(l)
    except OSError:
        pass
    if kept:
        lines += [""] + [l for l in "\n".join(kept).rstrip().split("\n")]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_all(cli, a, names, dev_bind_all, verbose):
    tmp_root = tempfile.mkdtemp(prefix="occ-onnx-node.")
    results = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as ex:
            futs = {ex.submit(run_test, cli, a.data, n, a.timeout, tmp_root, dev_bind_all): n
                    for n in names}
            for f in concurrent.futures.as_completed(futs):
                results[futs[f]] = f.result()
                if verbose:
                    st, op, why = results[futs[f]]
                    print("%-5s %s %s" % (st, futs[f], why), flush=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--occ", default="build/release/occ")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--filter", default="")
    ap.add_argument("--list", help="file with one test name a line (# comments): run only these; "
                    "every one must pass")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--markdown")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--estimate-named", action="store_true",
                    help="without named inputs, also run every test with the extra float inputs "
                    "bound as constants and report that count apart, as an estimate of what "
                    "named inputs would give")
    ap.add_argument("--dev-bind-all", action="store_true",
                    help="(development aid, not a conformance result) without named inputs, bind "
                    "every float input but the first as a constant")
    a = ap.parse_args()
    if not os.path.isdir(a.data):
        print("onnx_node_check: %s not found: install libonnx-testdata "
              "(scripts/install-deps.sh)" % a.data, file=sys.stderr)
        return 2
    if not os.access(a.occ, os.X_OK):
        print("onnx_node_check: %s is not an executable occ binary" % a.occ, file=sys.stderr)
        return 2
    cli = Cli(a.occ)
    names = sorted(d for d in os.listdir(a.data) if os.path.isdir(os.path.join(a.data, d)))
    if a.list:
        with open(a.list) as f:
            want = [l.split("#")[0].strip() for l in f]
        want = [w for w in want if w]
        missing = [w for w in want if w not in names]
        if missing:
            print("onnx_node_check: not in %s: %s" % (a.data, ", ".join(missing)), file=sys.stderr)
            return 2
        names = want
    if a.filter:
        names = [n for n in names if re.search(a.filter, n)]
    results = run_all(cli, a, names, a.dev_bind_all, a.verbose)
    estimate = None
    if a.estimate_named and not cli.named_inputs and not a.dev_bind_all:
        est = run_all(cli, a, names, True, False)
        estimate = sum(1 for st, _, _ in est.values() if st == "pass")
        crashes = [n for n, (st, _, _) in est.items() if st == "crash"]
        for n in crashes:
            results[n] = est[n]  # a crash in either run is a crash
    count = collections.Counter(st for st, _, _ in results.values())
    total = len(results)
    in_scope = total - count["skip"]
    summary = ("%d / %d pass (%d in scope: %d pass, %d fail, %d crash; %d out of scope)"
               % (count["pass"], total, in_scope, count["pass"], count["fail"], count["crash"],
                  count["skip"]))
    if a.dev_bind_all:
        summary += " [--dev-bind-all: extra float inputs bound as constants; not a conformance result]"
    est_line = None
    if estimate is not None:
        est_line = ("estimate, not a result: %d / %d would pass with the extra float inputs "
                    "bound as constants (what named inputs would feed)" % (estimate, total))
    per_op = collections.OrderedDict()
    for name, (st, op, why) in sorted(results.items(), key=lambda kv: (kv[1][1], kv[0])):
        p = per_op.setdefault(op, [0, 0, 0])
        if st == "skip":
            p[2] += 1
        else:
            p[1] += 1
            p[0] += st == "pass"
    print("%-36s %s" % ("operator", "pass/in-scope (out of scope)"))
    for op, (ok, n, sk) in per_op.items():
        print("%-36s %d/%d%s" % (op, ok, n, " (%d)" % sk if sk else ""))
    print()
    for st in ("crash", "fail", "skip"):
        rows = sorted((n, why) for n, (s, _, why) in results.items() if s == st)
        if rows:
            print({"crash": "CRASHES", "fail": "FAILURES", "skip": "OUT OF SCOPE"}[st])
            for n, why in rows:
                print("  %s: %s" % (n, why))
            print()
    cats = categories(results)
    if cats:
        print("FAILURES BY CAUSE")
        for cat, n in cats:
            print("  %4d  %s" % (n, cat))
        print()
    print("onnx node tests: " + summary)
    if est_line:
        print("onnx node tests: " + est_line)
    if a.markdown:
        markdown(results, summary + (". " + est_line[0].upper() + est_line[1:] if est_line else ""),
                 cli, a.markdown)
    if count["crash"]:
        return 1
    if a.list and count["pass"] != total:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

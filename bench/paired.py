#!/usr/bin/python3
"""Paired, alternating latency comparison (docs/benchmarks.md, "Paired runs").

This VM's host changes speed within seconds (steal bursts, a slower host
minutes later). Timing configuration A for a while and then B compares the
host's two moments as much as A and B. Here every configuration of a model is
one long-lived process that has loaded its model and made one warm-up run
(`occ run --lockstep`, `node bench/ort_named.js --lockstep`); a round gives
each configuration one burst of BURST runs back to back after untimed ones
(WARM, and at least WARM_MS of them) (the median of the burst counts, as `--repeat` does: warm threads,
caches and vCPUs - a vCPU that sat idle is slow to wake, see
docs/benchmarks.md), one process at a time, in a shuffled order, with a
short pause between bursts so that no pool's spinning threads overlap the
next one. A ratio is taken per round
between bursts seconds apart, and its median over the rounds is reported
beside the median of each configuration.

  bench/paired.py seq      [OCC] [SEQZOO] [PACKS]   issue 13: occ vs ONNX Runtime
  bench/paired.py allcores [OCC] [PACKS] [ZOO]      issue 14: occlumency vs native
  bench/paired.py native   [OCC] [PACKS] [ZOO]      issue 14: native vs ONNX Runtime
                                                    (ZOO holds NAME.onnx, input "input")

Environment: ROUNDS (15), BURST (3), WARM (1; and at least WARM_MS, 100, of
untimed runs by the configuration's last time), GAP_MS (30), VERBOSE (1: every round, in
its order), MODELS, OCC_B (another occ build beside the first: allcores runs
it as occ93_B and occ32_B, seq as occ_t1_B and occ_t2_B on PACKS_B's packs
when given (a packer change needs packs of its own); the ratios "A/B"), CONFIGS (a subset of the
configuration names), SEED (1), JSON_OUT (a file
for every sample). seq's CONFIGS default: occ_t1 ort_t1 occ_t2 ort_t2 (also
occ93_t1 occ32_t1).
"""
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time

OCC_B = os.environ.get("OCC_B")
WARM = int(os.environ.get("WARM", "1"))
WARM_MS = float(os.environ.get("WARM_MS", "100"))
VERBOSE = os.environ.get("VERBOSE", "0") != "0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Worker:
    """One configuration: a process that runs once per line it reads."""

    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("%s: ended before 'ready': %s\n%s" %
                                 (name, " ".join(argv), self.p.stderr.read()))
            if line.strip() == "ready":
                break

    def run(self, burst):
        # untimed runs first: at least WARM, and enough to fill WARM_MS (by
        # this process's last answer) - a short model's burst otherwise
        # starts on a vCPU the host has let go idle (docs/benchmarks.md)
        warm = WARM
        if getattr(self, "last", 0) > 0:
            warm = max(warm, min(64, int(WARM_MS / self.last) + 1))
        self.p.stdin.write("%d %d\n" % (burst, warm))
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        try:
            self.last = float(line)
            return self.last
        except ValueError:
            raise SystemExit("%s: expected a time, got %r\n%s" %
                             (self.name, line, self.p.stderr.read()))

    def close(self):
        self.p.stdin.close()
        self.p.stdout.read()
        self.p.wait()


def measure(group, configs, rounds, burst, gap, rng):
    """configs: {name: argv}; returns {name: [ms per round]}"""
    workers = {}
    try:
        for name, argv in configs.items():
            workers[name] = Worker("%s %s" % (group, name), argv)
        samples = {name: [] for name in configs}
        for _ in range(rounds):
            order = list(configs)
            rng.shuffle(order)
            for name in order:
                time.sleep(gap)
                samples[name].append(workers[name].run(burst))
            if VERBOSE:
                print("  %s" % " ".join("%s=%.2f" % (n, samples[n][-1]) for n in order),
                      flush=True)
        return samples
    finally:
        for w in workers.values():
            w.close()


def ratio_per_round(samples, num, den):
    """median over rounds of num / (the best of den in the same round)"""
    r = [samples[num][i] / min(samples[d][i] for d in den) for i in range(len(samples[num]))]
    return statistics.median(r)


def geomean(v):
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def occ_cmd(occ, pack, inputs, *extra):
    return [occ, "run", pack] + inputs + list(extra) + ["--lockstep", "--json"]


def ort_cmd(onnx, inputs, threads):
    return (["node", os.path.join(ROOT, "bench/ort_named.js"), onnx] + inputs +
            ["--threads", str(threads), "--lockstep"])


def with_b(c, names, pack_b):
    """OCC_B: configurations names again on that build (and pack_b)"""
    for n in names:
        if n in c:
            argv = list(c[n][1:])
            argv[1] = pack_b
            c[n + "_B"] = [OCC_B] + argv


def seq_preset(args):
    occ = args[0] if len(args) > 0 else os.path.join(ROOT, "build/release/occ")
    z = args[1] if len(args) > 1 else "/work/seqzoo"
    p = args[2] if len(args) > 2 else z
    occ_in = {
        "bert_base": ["--input", "input_ids=%s/bert_base.input_ids.bin" % z,
                      "--input", "attention_mask=%s/bert_base.attention_mask.bin" % z],
        "vit_b_16": ["--input", "%s/vit_b_16.input.bin" % z],
        "wav2vec2_base": ["--input", "%s/wav2vec2_base.waveform.bin" % z],
        "lstm_kws": ["--input", "%s/lstm_kws.mfcc.bin" % z]}
    ort_in = {
        "bert_base": ["--input", "input_ids=%s/bert_base.input_ids.bin:int64:1,128" % z,
                      "--input", "attention_mask=%s/bert_base.attention_mask.bin:int64:1,128" % z],
        "vit_b_16": ["--input", "input=%s/vit_b_16.input.bin:float32:1,3,224,224" % z],
        "wav2vec2_base": ["--input", "waveform=%s/wav2vec2_base.waveform.bin:float32:1,16000" % z],
        "lstm_kws": ["--input", "mfcc=%s/lstm_kws.mfcc.bin:float32:1,98,40" % z]}
    models = os.environ.get("MODELS", "bert_base vit_b_16 wav2vec2_base lstm_kws").split()
    groups = []
    for m in models:
        pack, c = "%s/%s.occ" % (p, m), {}
        for t in (1, 2):
            c["occ_t%d" % t] = occ_cmd(occ, pack, occ_in[m], "--threads", str(t))
            c["ort_t%d" % t] = ort_cmd("%s/%s.onnx" % (z, m), ort_in[m], t)
        for b in ("93M", "32M"):
            c["occ%s_t1" % b[:2]] = occ_cmd(occ, pack, occ_in[m], "--threads", "1", "--mode",
                                             "occlumency", "--budget", b)
        if OCC_B:  # another build (on PACKS_B's packs if given): old vs new
            with_b(c, ("occ_t1", "occ_t2"), "%s/%s.occ" % (os.environ.get("PACKS_B", p), m))
        groups.append((m, c))
    ratios = [("occ/ORT t1", "occ_t1", ["ort_t1"]), ("occ/ORT t2", "occ_t2", ["ort_t2"]),
              ("A/B t1", "occ_t1", ["occ_t1_B"]), ("A/B t2", "occ_t2", ["occ_t2_B"]),
              ("93M/native t1", "occ93_t1", ["occ_t1"]), ("32M/native t1", "occ32_t1", ["occ_t1"])]
    return groups, ratios, "occ_t1 ort_t1 occ_t2 ort_t2"


def allcores_preset(args):
    occ = args[0] if len(args) > 0 else os.path.join(ROOT, "build/release/occ")
    p = args[1] if len(args) > 1 else os.path.join(ROOT, "build/zoo-packs")
    z = args[2] if len(args) > 2 else os.path.join(ROOT, "build/zoo")
    models = os.environ.get("MODELS", "alexnet vgg16 vgg19 resnet50 resnet101 resnet152 "
                            "googlenet squeezenet1_0 mobilenet_v2").split()
    groups = []
    for m in models:
        pack, x = "%s/%s.occ" % (p, m), ["--input", "%s/%s.input.bin" % (z, m)]
        c = {"native_t1": occ_cmd(occ, pack, x, "--threads", "1"),
             "native_t2": occ_cmd(occ, pack, x, "--threads", "2"),
             "occ93": occ_cmd(occ, pack, x, "--mode", "occlumency", "--budget", "93M"),
             "occ32": occ_cmd(occ, pack, x, "--mode", "occlumency", "--budget", "32M"),
             "occ93_t2": occ_cmd(occ, pack, x, "--mode", "occlumency", "--budget", "93M",
                                 "--threads", "2")}
        if OCC_B:  # another build, same pack and arguments: old vs new
            with_b(c, ("occ93", "occ32"), pack)
        groups.append((m, c))
    ratios = [("93M/best", "occ93", ["native_t1", "native_t2"]),
              ("32M/best", "occ32", ["native_t1", "native_t2"]),
              ("t2: 93M/native", "occ93_t2", ["native_t2"]),
              ("93M: A/B", "occ93", ["occ93_B"]), ("32M: A/B", "occ32", ["occ32_B"])]
    return groups, ratios, None


def native_preset(args):
    occ = args[0] if len(args) > 0 else os.path.join(ROOT, "build/release/occ")
    p = args[1] if len(args) > 1 else os.path.join(ROOT, "build/zoo-packs")
    z = args[2] if len(args) > 2 else os.path.join(ROOT, "build/zoo")
    models = os.environ.get("MODELS", "alexnet vgg16 resnet50 googlenet squeezenet1_0 "
                            "mobilenet_v2").split()
    groups = []
    for m in models:
        c = {}
        for t in (1, 2):
            c["occ_t%d" % t] = occ_cmd(occ, "%s/%s.occ" % (p, m),
                                       ["--input", "%s/%s.input.bin" % (z, m)], "--threads", str(t))
            c["ort_t%d" % t] = ort_cmd("%s/%s.onnx" % (z, m),
                                       ["--input", "input=%s/%s.input.bin:float32:1,3,224,224"
                                        % (z, m)], t)
        groups.append((m, c))
    return groups, [("occ/ORT t1", "occ_t1", ["ort_t1"]), ("occ/ORT t2", "occ_t2", ["ort_t2"])], None


def pick(groups, default):
    """CONFIGS (or the preset's default) and, with OCC_B, their _B twins"""
    want = os.environ.get("CONFIGS", default)
    if not want:
        return groups
    names = want.split()
    names += [n + "_B" for n in names]
    return [(g, {k: v for k, v in c.items() if k in names}) for g, c in groups]


PRESETS = {"seq": seq_preset, "allcores": allcores_preset, "native": native_preset}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in PRESETS:
        sys.stderr.write(__doc__)
        return 2
    groups, ratios, default = PRESETS[sys.argv[1]](sys.argv[2:])
    groups = pick(groups, default)
    rounds = int(os.environ.get("ROUNDS", "15"))
    gap = float(os.environ.get("GAP_MS", "30")) / 1000.0
    burst = int(os.environ.get("BURST", "3"))
    rng = random.Random(int(os.environ.get("SEED", "1")))
    print("# %s, %d rounds of %d runs (after >= %d untimed and %g ms of them), %s, load %s" % (
        sys.argv[1], rounds, burst, WARM, WARM_MS, time.strftime("%H:%M:%S"),
        " ".join("%.2f" % x for x in os.getloadavg())))
    results = {}
    for g, configs in groups:
        results[g] = measure(g, configs, rounds, burst, gap, rng)
        s = results[g]
        line = ["%s=%.2f" % (n, statistics.median(v)) for n, v in s.items()]
        rs = ["%s %.3f" % (rn, ratio_per_round(s, num, den)) for rn, num, den in ratios
              if num in s and all(d in s for d in den)]
        print("%-14s %s | %s" % (g, " ".join(line), "; ".join(rs)), flush=True)
    print("# done %s, load %s" % (time.strftime("%H:%M:%S"),
                                  " ".join("%.2f" % x for x in os.getloadavg())))
    for rn, num, den in ratios:
        v = [ratio_per_round(results[g], num, den) for g in results
             if num in results[g] and all(d in results[g] for d in den)]
        if v:
            print("geomean %-16s %.3f  (max %.3f, %d models)" % (rn, geomean(v), max(v), len(v)))
    if os.environ.get("JSON_OUT"):
        with open(os.environ["JSON_OUT"], "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

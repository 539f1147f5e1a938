#!/usr/bin/python3
"""Strip chains (docs/streaming.md "Strip chains", docs/benchmarks.md):
VGG at 16M (strip chains) against 32M and native, 1 and 2 threads, paired
and alternated with bench/paired.py's machinery (long-lived `occ run
--lockstep` processes, shuffled bursts, per-round ratios).

  bench/strips_paired.py [OCC] [PACKS] [ZOO]

Environment as bench/paired.py (ROUNDS, BURST, WARM, GAP_MS, VERBOSE, SEED,
JSON_OUT); MODELS (default: vgg16 vgg19); BUDGETS (default: 16M 32M); EXTRA
(more `occ run` arguments for every configuration, e.g. "--batch 2").
"""
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paired  # noqa: E402


def main():
    root = paired.ROOT
    occ = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build/release/occ")
    p = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "build/zoo-packs")
    z = sys.argv[3] if len(sys.argv) > 3 else os.path.join(root, "build/zoo")
    models = os.environ.get("MODELS", "vgg16 vgg19").split()
    budgets = os.environ.get("BUDGETS", "16M 32M").split()
    rounds = int(os.environ.get("ROUNDS", "9"))
    burst = int(os.environ.get("BURST", "3"))
    gap = float(os.environ.get("GAP_MS", "30")) / 1000.0
    rng = random.Random(int(os.environ.get("SEED", "1")))
    print("# strips, %d rounds of %d runs, %s, load %s" % (
        rounds, burst, time.strftime("%H:%M:%S"),
        " ".join("%.2f" % x for x in os.getloadavg())), flush=True)
    for m in models:
        pack = "%s/%s.occ" % (p, m)
        x = ["--input", "%s/%s.input.bin" % (z, m)] + os.environ.get("EXTRA", "").split()
        c = {}
        for t in (1, 2):
            c["native_t%d" % t] = paired.occ_cmd(occ, pack, x, "--threads", str(t))
            for b in budgets:
                c["occ%s_t%d" % (b, t)] = paired.occ_cmd(occ, pack, x, "--mode", "occlumency",
                                                         "--budget", b, "--threads", str(t))
        s = paired.measure(m, c, rounds, burst, gap, rng)
        line = ["%s=%.1f" % (n, statistics.median(v)) for n, v in s.items()]
        rs = []
        for t in (1, 2):
            for b in budgets:
                rs.append("%s/native t%d %.3f" % (b, t, paired.ratio_per_round(
                    s, "occ%s_t%d" % (b, t), ["native_t%d" % t])))
            if len(budgets) > 1:
                rs.append("%s/%s t%d %.3f" % (budgets[0], budgets[1], t, paired.ratio_per_round(
                    s, "occ%s_t%d" % (budgets[0], t), ["occ%s_t%d" % (budgets[1], t)])))
        print("%-8s %s | %s" % (m, " ".join(line), "; ".join(rs)), flush=True)
    print("# done %s, load %s" % (time.strftime("%H:%M:%S"),
                                  " ".join("%.2f" % x for x in os.getloadavg())))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Trains the small Fashion-MNIST CNN shipped in models/ and exports it to ONNX.

    /usr/bin/python3 tools/train_fmnist.py [--out-dir models] [--epochs 8]

Uses Debian's python3-torch on CPU and the IDX files of dataset-fashion-mnist.
Deterministic: fixed seeds, deterministic algorithms, fixed thread count.
Writes OUT_DIR/fmnist.onnx (opset 13, input "input" [1,1,28,28], output
"logits" [1,10]), OUT_DIR/fmnist.labels and OUT_DIR/fmnist.train.json (the
training record: accuracy per epoch, time, preprocessing constants).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_data  # noqa: E402

SEED = 20240601


class FmnistNet(nn.Module):
    """conv3x3(16)-BN-ReLU-pool, conv3x3(32)-BN-ReLU-pool, conv3x3(64)-BN-ReLU-pool,
    FC 576->128-ReLU, FC 128->10.  ~98 k parameters (~0.4 MB of float32),
    ~2 M MACs; sized so that training takes a few minutes on 2 CPU cores.
    The last pool maps 7x7 to 3x3 (floor mode drops the last row/column)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 3 * 3, 128)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)   # 16x14x14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)   # 32x7x7
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)   # 64x3x3
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model(x[i:i + batch]).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "models"))
    ap.add_argument("--data-dir", default=fmnist_data.DEFAULT_DIR)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    xtr_u8, ytr = fmnist_data.load("train", args.data_dir)
    xte_u8, yte = fmnist_data.load("t10k", args.data_dir)
    measured_mean = float((xtr_u8.astype(np.float64) / 255.0).mean())
    measured_std = float((xtr_u8.astype(np.float64) / 255.0).std())
    xtr = torch.from_numpy(fmnist_data.preprocess(xtr_u8))
    xte = torch.from_numpy(fmnist_data.preprocess(xte_u8))
    ytr = torch.from_numpy(ytr.astype(np.int64))
    yte = torch.from_numpy(yte.astype(np.int64))
    print("train %s test %s; pixel/255 mean %.4f std %.4f (using %.4f / %.4f)"
          % (tuple(xtr.shape), tuple(xte.shape), measured_mean, measured_std,
             fmnist_data.MEAN, fmnist_data.STD), flush=True)

    model = FmnistNet()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = (xtr.shape[0] + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(SEED)
    history = []
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        total_loss = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb, yb = xtr[idx], ytr[idx]
            # augmentation: random horizontal flip of half the batch
            flip = torch.rand(xb.shape[0], generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), yb, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss) * xb.shape[0]
        acc = evaluate(model, xte, yte)
        rec = {"epoch": epoch + 1, "loss": round(total_loss / xtr.shape[0], 4),
               "test_acc": round(acc, 4), "elapsed_s": round(time.time() - t0, 1)}
        history.append(rec)
        print(json.dumps(rec), flush=True)

    train_acc = evaluate(model, xtr, ytr)
    test_acc = evaluate(model, xte, yte)
    print("final: train acc %.4f, test acc %.4f, %d params, %.0f s"
          % (train_acc, test_acc, n_params, time.time() - t0), flush=True)

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "fmnist.onnx")
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(model, dummy, onnx_path, opset_version=13, do_constant_folding=True,
                      input_names=["input"], output_names=["logits"],
                      training=torch.onnx.TrainingMode.EVAL)
    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    print("exported %s (%d bytes), ops: %s" % (onnx_path, os.path.getsize(onnx_path), ", ".join(ops)))

    with open(os.path.join(args.out_dir, "fmnist.labels"), "w") as f:
        f.write("\n".join(fmnist_data.LABELS) + "\n")
    record = {
        "seed": SEED, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
        "optimizer": "AdamW(wd=1e-4) + OneCycleLR, label smoothing 0.05, random h-flip",
        "threads": args.threads, "params": n_params,
        "train_acc": round(train_acc, 4), "test_acc": round(test_acc, 4),
        "train_s": round(time.time() - t0, 1), "history": history,
        "preprocess": {"scale": fmnist_data.SCALE, "mean": fmnist_data.MEAN, "std": fmnist_data.STD},
        "onnx_ops": ops, "torch": torch.__version__, "onnx": onnx.__version__,
    }
    with open(os.path.join(args.out_dir, "fmnist.train.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

"""Trains blindml's small default Fashion-MNIST model and exports models/fashion-small.onnx.

Sized for interactive Paillier inference: the service's linear work is about 30,000
multiply-accumulates per image, and only 216 + 32 values go through the client's ReLU rounds.

conv 5x5x6 stride 2 (6 x 12 x 12), avg-pool 2x2 (6 x 6 x 6), ReLU, flatten (216),
dense 32, ReLU, dense 10.

Run from the repository root: /usr/bin/python3 models/fashion_small.py [epochs [out.onnx]]
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_common as common  # noqa: E402


def build():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, stride=2),  # 6 x 12 x 12
        nn.AvgPool2d(2),               # 6 x 6 x 6
        nn.ReLU(),
        nn.Flatten(),                  # 216
        nn.Linear(216, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    torch.manual_seed(0)
    model = build()
    print(f"{common.parameter_count(model)} parameters", flush=True)
    common.train(model, epochs, lr=3e-3, batch=64)
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-small.onnx")
    common.export(model, out, (1, 28, 28))


if __name__ == "__main__":
    main()

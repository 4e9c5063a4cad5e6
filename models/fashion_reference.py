"""Trains the reference CNN of the published Paillier inference scheme on Fashion-MNIST and
exports models/fashion-reference.onnx.

conv 3x3x20, ReLU, avg-pool 2x2 stride 1, conv 3x3x50, ReLU, avg-pool 2x2 stride 2,
flatten (6050), dense 256, ReLU, dense 10: 1,560,876 parameters.

Run from the repository root: /usr/bin/python3 models/fashion_reference.py [epochs [out.onnx]]
(about 140 s per epoch on 2 cores).
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_common as common  # noqa: E402

PARAMETERS = 1_560_876


def build():
    return nn.Sequential(
        nn.Conv2d(1, 20, 3),          # 20 x 26 x 26
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1),    # 20 x 25 x 25
        nn.Conv2d(20, 50, 3),         # 50 x 23 x 23
        nn.ReLU(),
        nn.AvgPool2d(2, stride=2),    # 50 x 11 x 11
        nn.Flatten(),                 # 6050
        nn.Linear(6050, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.manual_seed(0)
    model = build()
    count = common.parameter_count(model)
    assert count == PARAMETERS, f"{count} parameters, expected {PARAMETERS}"
    print(f"{count} parameters", flush=True)
    common.train(model, epochs, batch=64)
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-reference.onnx")
    common.export(model, out, (1, 28, 28))


if __name__ == "__main__":
    main()

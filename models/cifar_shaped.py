"""Builds a CIFAR-10-shaped network (3 x 32 x 32 input, 10 classes) and exports
models/cifar-shaped.onnx. There is no CIFAR data here, so the weights are random (fixed seed)
and the batch-norm statistics synthetic: the model exists to show that colour inputs and deeper
nets import and run, and to exercise the importer's BatchNormalization, MaxPool, AveragePool
(with count_include_pad padding) and GlobalAveragePool paths.

Batch norm is kept in the file (PyTorch would fold it into the conv in eval mode) by exporting
with TrainingMode.PRESERVE from eval mode and without constant folding, so blindml's importer
does the folding.

Run from the repository root: /usr/bin/python3 models/cifar_shaped.py
"""
import os

import onnx
import torch
import torch.nn as nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),                              # 16 x 32 x 32
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),                                             # 16 x 16 x 16
        nn.Conv2d(16, 32, 3, padding=1),                             # 32 x 16 x 16
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True),  # 32 x 8 x 8
        nn.Conv2d(32, 64, 3, stride=2, padding=1),                   # 64 x 4 x 4
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),                                     # 64 x 1 x 1
        nn.Flatten(),                                                # 64
        nn.Linear(64, 32),
        nn.BatchNorm1d(32),
        nn.Tanh(),
        nn.Linear(32, 10),
    )


def main():
    torch.manual_seed(2024)
    model = build()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n) * 0.3)
            m.running_var.copy_(torch.rand(n) * 1.5 + 0.25)
            m.weight.data.copy_(torch.rand(n) + 0.5)
            m.bias.data.copy_(torch.randn(n) * 0.2)
    model.eval()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cifar-shaped.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), out, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    ops = [n.op_type for n in onnx.load(out).graph.node]
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters())} parameters, ops {ops}")
    assert "BatchNormalization" in ops, "batch norm was folded by the exporter"


if __name__ == "__main__":
    main()

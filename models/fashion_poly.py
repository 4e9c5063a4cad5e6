"""Trains the CryptoNets-sized polynomial network for non-interactive CKKS inference
(`blindml infer --scheme ckks-poly`) and exports models/fashion-poly.onnx.

conv 5x5, 5 channels, stride 2, padding 1 (5 x 13 x 13 = 845) -> p1 -> flatten ->
dense 100 -> p2 -> dense 10, where p1 and p2 are degree-2 polynomials standing in for ReLU:
the architecture of CryptoNets (Gilad-Bachrach et al., 2016), whose service evaluates the whole
network on ciphertexts in one round.

Steps (each printed as it runs):
1. train the same network with ReLU (a few epochs);
2. calibrate: the interval of each activation is [-B, B] with B the largest |pre-activation|
   over 10,000 training images;
3. fit ReLU on that interval by least squares at degree 2 (numpy.polyfit on 1001 evenly spaced
   points: exactly blindml's `fitActivation('relu', 'least-squares', 2, [-B, B])`), and print
   the fit's interval and max error;
4. replace each ReLU by its fixed polynomial and fine-tune all weights with the polynomials in
   place, so the network learns to live with them;
5. export: PyTorch writes each polynomial as Mul/Add nodes with scalar constants (Horner's rule),
   which blindml's importer reads back as one polynomial layer; the fits go to
   models/fashion-poly.json.

Run from the repository root: /usr/bin/python3 models/fashion_poly.py [relu_epochs [poly_epochs]]
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_common as common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class PolyAct(nn.Module):
    """p(x) = sum c_k x^k with fixed coefficients, evaluated by Horner's rule."""

    def __init__(self, coefficients):
        super().__init__()
        self.coefficients = [float(c) for c in coefficients]

    def forward(self, x):
        c = self.coefficients
        y = x * c[-1]
        for k in range(len(c) - 2, -1, -1):
            y = y + c[k]
            if k > 0:
                y = y * x
        return y


def build(act1, act2):
    return nn.Sequential(
        nn.Conv2d(1, 5, 5, stride=2, padding=1),  # 5 x 13 x 13
        act1,
        nn.Flatten(),                             # 845
        nn.Linear(845, 100),
        act2,
        nn.Linear(100, 10),
    )


def pre_activation_bounds(model, x):
    """Largest |input| of each activation (modules 1 and 4) over the images x."""
    bounds = {}
    hooks = [model[i].register_forward_hook(
        lambda m, inp, out, i=i: bounds.__setitem__(i, max(bounds.get(i, 0.0), inp[0].abs().max().item())))
        for i in (1, 4)]
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            model(x[i:i + 1000])
    for h in hooks:
        h.remove()
    return [bounds[1], bounds[4]]


def fit_relu(bound, degree=2):
    grid = np.linspace(-bound, bound, 1001)
    coefficients = np.polyfit(grid, np.maximum(grid, 0), degree)[::-1]
    fine = np.linspace(-bound, bound, 20001)
    max_error = float(np.max(np.abs(np.polyval(coefficients[::-1], fine) - np.maximum(fine, 0))))
    return [float(c) for c in coefficients], max_error


def main():
    relu_epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    poly_epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    torch.manual_seed(0)
    model = build(nn.ReLU(), nn.ReLU())
    print(f"{common.parameter_count(model)} parameters", flush=True)
    print("step 1: ReLU network", flush=True)
    common.train(model, relu_epochs, lr=3e-3, batch=64)

    x, _ = common.load("train")
    bounds = pre_activation_bounds(model, x[:10000])
    fits = []
    for layer, bound in zip(("conv", "dense"), bounds):
        coefficients, max_error = fit_relu(bound)
        fits.append({"after": layer, "target": "relu", "method": "least-squares", "degree": 2,
                     "interval": [-bound, bound], "coefficients": coefficients, "maxError": max_error})
        print(f"step 2-3: ReLU after {layer}: interval [-{bound:.3f}, {bound:.3f}], "
              f"p(x) = {coefficients[0]:.6f} + {coefficients[1]:.6f} x + {coefficients[2]:.6f} x^2, "
              f"max error {max_error:.4f}", flush=True)

    print("step 4: fine-tune with the polynomials in place", flush=True)
    model[1] = PolyAct(fits[0]["coefficients"])
    model[4] = PolyAct(fits[1]["coefficients"])
    acc = common.train(model, poly_epochs, lr=1e-3, batch=64, seed=1)

    after = pre_activation_bounds(model, x[:10000])
    for fit, bound in zip(fits, after):
        fit["largestInputAfterFineTuning"] = bound
    out = os.path.join(HERE, "fashion-poly.onnx")
    common.export(model, out, (1, 28, 28))
    with open(os.path.join(HERE, "fashion-poly.json"), "w") as f:
        json.dump({"model": "fashion-poly.onnx", "pytorchTestAccuracy": acc, "activations": fits}, f, indent=2)
        f.write("\n")
    print(f"largest |pre-activation| after fine-tuning: {after}", flush=True)


if __name__ == "__main__":
    main()

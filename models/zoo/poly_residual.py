"""A small residual network with degree-2 polynomial activations on Fashion-MNIST, for
non-interactive CKKS inference (`blindml infer --scheme ckks-poly`): the service evaluates the
whole graph on ciphertexts, skip connection included.

stem conv 5x5 stride 2 padding 1 + BN + p (4 x 13 x 13) -> residual block: depthwise 3x3
(groups = 4) + BN + p -> pointwise 1x1 4 -> 4 + BN -> Add (identity shortcut from the stem) ->
BN -> p -> flatten (676) -> linear 676 -> 10.

p(x) = 0.125 x^2 + 0.5 x + 0.25 stands in for ReLU (close to it on [-2, 2]); batch norm before
each activation keeps its inputs in that range while training. Exported in eval mode: PyTorch
folds the BNs that follow a conv into it; the BN after the Add stays a BatchNormalization node
(an affine map blindml folds into the next linear stage). Depth 3 (three squares on the longest
path; the shortcut skips one). Trained 8 epochs on 10,000 training images.

Run from the repository root: /usr/bin/python3 models/zoo/poly_residual.py
"""
import torch.nn as nn

import zoo_common as z

COEFFICIENTS = (0.25, 0.5, 0.125)


class PolyAct(nn.Module):
    """c0 + c1 x + c2 x^2 with fixed coefficients (exported as Mul/Add with scalar constants)."""

    def forward(self, x):
        c0, c1, c2 = COEFFICIENTS
        return (x * c2 + c1) * x + c0


class PolyResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 5, 2, 1, bias=False), nn.BatchNorm2d(4), PolyAct())
        self.depthwise = nn.Sequential(nn.Conv2d(4, 4, 3, 1, 1, groups=4, bias=False), nn.BatchNorm2d(4), PolyAct())
        self.pointwise = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.after_add = nn.Sequential(nn.BatchNorm2d(4), PolyAct())
        self.fc = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        s = self.stem(x)
        y = self.after_add(self.pointwise(self.depthwise(s)) + s)
        return self.fc(y.flatten(1))


def main():
    z.setup(7)
    x, y, xt, yt = z.fashion(10000)
    model = PolyResidual()
    z.train(model, x, y, epochs=8)
    z.export(model, "poly-residual", (1, 28, 28), xt, yt, x[-z.CALIBRATION_COUNT:],
             eval_name="fashion-mnist test 10000")


if __name__ == "__main__":
    main()

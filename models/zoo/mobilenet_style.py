"""A MobileNet-style network on Fashion-MNIST: depthwise-separable convolutions (a 3x3
depthwise conv, groups = channels, then a 1x1 pointwise conv), batch norm and ReLU6 (ONNX Clip).

stem conv 3x3 stride 2 + BN + ReLU6 (8 x 14 x 14) -> depthwise 3x3 stride 2 + BN + ReLU6
(8 x 7 x 7) -> pointwise 1x1 8 -> 16 + BN + ReLU6 (16 x 7 x 7) -> flatten (784) ->
linear 784 -> 10. Trained 4 epochs on 10,000 training images.

Run from the repository root: /usr/bin/python3 models/zoo/mobilenet_style.py
"""
import torch.nn as nn

import zoo_common as z


def build():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


def main():
    z.setup(2)
    x, y, xt, yt = z.fashion(10000)
    model = build()
    z.train(model, x, y, epochs=4)
    z.export(model, "mobilenet-style", (1, 28, 28), xt, yt, x[-z.CALIBRATION_COUNT:],
             eval_name="fashion-mnist test 10000")


if __name__ == "__main__":
    main()

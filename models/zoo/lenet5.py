"""LeNet-5 on 32 x 32 inputs (Fashion-MNIST padded by 2 pixels on each side, as LeCun et al.
padded MNIST): conv 5x5 6 -> ReLU -> max pool 2 -> conv 5x5 16 -> ReLU -> max pool 2 ->
flatten (400) -> linear 120 -> ReLU -> linear 84 -> ReLU -> linear 10. Trained 3 epochs on
10,000 training images.

Run from the repository root: /usr/bin/python3 models/zoo/lenet5.py
"""
import torch.nn as nn

import zoo_common as z


def build():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def main():
    z.setup(5)
    x, y, xt, yt = z.fashion(10000, pad_to=32)
    model = build()
    z.train(model, x, y, epochs=3)
    z.export(model, "lenet5", (1, 32, 32), xt, yt, x[-z.CALIBRATION_COUNT:],
             eval_name="fashion-mnist test 10000 (padded to 32)")


if __name__ == "__main__":
    main()

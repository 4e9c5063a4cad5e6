"""An Inception-style block on Fashion-MNIST: three parallel branches (1x1; 1x1 then 3x3;
3x3 max pool then 1x1) concatenated along channels (ONNX Concat), then LeakyReLU and a 3x3
stride-2 max pool with ceil_mode (6 x 6 instead of 5 x 5).

stem conv 5x5 stride 2 + ReLU (8 x 12 x 12) -> block (4 + 4 + 4 = 12 x 12 x 12) -> LeakyReLU ->
max pool 3x3 stride 2 ceil_mode (12 x 6 x 6) -> flatten (432) -> linear 432 -> 10. Trained 3
epochs on 10,000 training images.

Run from the repository root: /usr/bin/python3 models/zoo/inception_style.py
"""
import torch
import torch.nn as nn

import zoo_common as z


class InceptionStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 5, 2), nn.ReLU())
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 4, 1))
        self.act = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(12 * 6 * 6, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)
        return self.fc(torch.flatten(self.pool(self.act(x)), 1))


def main():
    z.setup(3)
    x, y, xt, yt = z.fashion(10000)
    model = InceptionStyle()
    z.train(model, x, y, epochs=3)
    z.export(model, "inception-style", (1, 28, 28), xt, yt, x[-z.CALIBRATION_COUNT:],
             eval_name="fashion-mnist test 10000")


if __name__ == "__main__":
    main()

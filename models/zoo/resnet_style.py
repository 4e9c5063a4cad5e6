"""A ResNet-style network for CIFAR-shaped inputs (3 x 32 x 32, 10 classes), trained briefly on
a synthetic colour data set (zoo_common.synthetic_colour: there is no CIFAR here).

stem conv 3x3 stride 2 + BN + ReLU (8 x 16 x 16) -> basic residual block (two 3x3 convs with BN,
identity shortcut, Add, ReLU) -> downsampling block (3x3 stride 2 and a 1x1 stride-2 projection
shortcut, 16 x 8 x 8) -> global average pool written as x.mean((2, 3)) (ONNX ReduceMean) ->
linear 16 -> 10. Exported in eval mode, so PyTorch folds each BN into its conv.

Run from the repository root: /usr/bin/python3 models/zoo/resnet_style.py
"""
import torch.nn as nn

import zoo_common as z


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNetStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block1 = Block(8, 8, 1)
        self.block2 = Block(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(x.mean((2, 3)))


def main():
    z.setup(1)
    x, y = z.synthetic_colour(4000, seed=1)
    xt, yt = z.synthetic_colour(z.EVAL_COUNT, seed=2)
    xc, _ = z.synthetic_colour(z.CALIBRATION_COUNT, seed=3)
    model = ResNetStyle()
    z.train(model, x, y, epochs=4)
    z.export(model, "resnet-style", (3, 32, 32), xt, yt, xc, eval_name=f"synthetic {z.EVAL_COUNT}")


if __name__ == "__main__":
    main()

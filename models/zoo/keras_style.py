"""A network exported the way Keras-trained models often reach ONNX, written in PyTorch:
channels-last input (N x 28 x 28 x 1, permuted to NCHW in the graph, ONNX Transpose), input
normalization inside the graph ((x - mean) / std), 'same' padding for an even kernel done with
F.pad (1 before, 2 after), batch norm after the ReLU (not foldable into the conv before it),
a `reshape(x.size(0), -1)` flatten (as `view` exports) (Shape/Gather/Unsqueeze/Concat/Reshape with a dynamic batch) and
a LogSoftmax head. Exported without constant folding, so the shape arithmetic stays in the file.

permute -> normalize -> pad(1, 2) -> conv 4x4 stride 2 (8 x 14 x 14) -> ReLU -> BN -> pad(0, 1)
-> conv 3x3 stride 2 (16 x 7 x 7) -> ReLU -> reshape -> linear 784 -> 10 -> LogSoftmax. Trained 3
epochs on 10,000 training images.

Run from the repository root: /usr/bin/python3 models/zoo/keras_style.py
"""
import torch.nn as nn
import torch.nn.functional as F

import zoo_common as z

MEAN, STD = 0.286, 0.353


class KerasStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 4, 2)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, 2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = (x.permute(0, 3, 1, 2).contiguous() - MEAN) / STD
        x = self.bn(F.relu(self.conv1(F.pad(x, (1, 2, 1, 2)))))
        x = F.relu(self.conv2(F.pad(x, (0, 1, 0, 1))))
        x = x.reshape(x.size(0), -1)
        return F.log_softmax(self.fc(x), dim=1)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def main():
    z.setup(4)
    x, y, xt, yt = z.fashion(10000)
    x, xt = nhwc(x), nhwc(xt)
    model = KerasStyle()
    z.train(model, x, y, epochs=3)
    z.export(model, "keras-style", (28, 28, 1), xt, yt, x[-z.CALIBRATION_COUNT:],
             eval_name="fashion-mnist test 10000", constant_folding=False)


if __name__ == "__main__":
    main()

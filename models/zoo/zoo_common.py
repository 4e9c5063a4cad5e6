"""Shared helpers of the model-zoo scripts: data (Fashion-MNIST subsets, optionally padded to
32 x 32 or laid out NHWC, and a synthetic colour data set), short training runs, ONNX export,
and the IDX files the zoo commits so that blindml's CLI can evaluate and calibrate each model
on inputs of the model's own shape.

Every model here is tiny and trains in a minute or two on 2 cores: the zoo shows that graphs
of these shapes import and run, not state-of-the-art accuracy.
"""
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import fashion_common  # noqa: E402  (models/fashion_common.py: the IDX search path)

DATA = os.path.join(HERE, "data")
# Images the zoo commits per model: evaluation set (labelled) and calibration set (from the
# training distribution, never evaluated on).
EVAL_COUNT = 200
CALIBRATION_COUNT = 100


def setup(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))


def fashion(train_count, pad_to=None):
    """(train x, train y, test x, test y) as N x 1 x H x W in [0, 1]; all 10,000 test images."""
    x, y = fashion_common.load("train")
    xt, yt = fashion_common.load("test")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(x), generator=g)[:train_count]
    x, y = x[idx], y[idx]
    if pad_to is not None:
        p = (pad_to - x.shape[-1]) // 2
        x = nn.functional.pad(x, (p, p, p, p))
        xt = nn.functional.pad(xt, (p, p, p, p))
    return x, y, xt, yt


def synthetic_colour(count, seed, classes=10):
    """A colour data set with 10 classes, 3 x 32 x 32 in [0, 1]: each class is a smooth random
    prototype (8 x 8 noise upsampled) in a class colour; a sample is its class prototype moved by
    up to 3 pixels, with per-sample brightness changes and strong pixel noise."""
    proto_rng = np.random.default_rng(12345)
    base = proto_rng.random((classes, 3, 8, 8)).astype(np.float32)
    protos = torch.nn.functional.interpolate(torch.from_numpy(base), size=32, mode="bilinear",
                                             align_corners=False).numpy()
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=count)
    x = np.empty((count, 3, 32, 32), dtype=np.float32)
    for i, c in enumerate(y):
        dy, dx = rng.integers(-3, 4, size=2)
        img = np.roll(protos[c], (dy, dx), axis=(1, 2))
        img = img * rng.uniform(0.6, 1.4) + rng.normal(0, 0.6, size=img.shape)
        x[i] = np.clip(img, 0, 1)
    # Quantize to bytes as the committed IDX files store them, so PyTorch and blindml see equal inputs.
    x = np.round(x * 255) / 255
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def accuracy(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(model, x, y, epochs, lr=3e-3, batch=64):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()


def write_idx(path, array):
    """Unsigned-byte IDX (gzip), any rank; values in [0, 1] become 0-255. Single-channel NCHW
    images are written N x H x W, the layout of MNIST files that every IDX reader takes."""
    a = np.asarray(array)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    data = np.round(a * 255).astype(np.uint8) if a.dtype != np.uint8 and a.dtype.kind == "f" else a.astype(np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, data.ndim) + b"".join(struct.pack(">I", d) for d in data.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + data.tobytes())


def export(model, name, input_shape, x_eval, y_eval, x_cal, *, eval_name, layout=None,
           opset=13, constant_folding=True):
    """Writes models/zoo/<name>.onnx, its evaluation and calibration IDX files (in the model's
    input layout) and <name>.json with PyTorch's accuracy and the ONNX operators used."""
    os.makedirs(DATA, exist_ok=True)
    model.eval()
    path = os.path.join(HERE, f"{name}.onnx")
    torch.onnx.export(model, torch.zeros(1, *input_shape), path, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=constant_folding)
    to_layout = layout if layout is not None else (lambda t: t)
    ev, cal = to_layout(x_eval[:EVAL_COUNT]), to_layout(x_cal[:CALIBRATION_COUNT])
    write_idx(os.path.join(DATA, f"{name}-eval-images.idx.gz"), ev.numpy())
    write_idx(os.path.join(DATA, f"{name}-eval-labels.idx.gz"), y_eval[:EVAL_COUNT].numpy())
    write_idx(os.path.join(DATA, f"{name}-calibration-images.idx.gz"), cal.numpy())
    import onnx
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    info = {
        "model": f"{name}.onnx",
        "inputShape": list(input_shape),
        "parameters": sum(p.numel() for p in model.parameters()),
        "pytorchAccuracy": {
            eval_name: accuracy(model, to_layout(x_eval), y_eval),
            f"committed {EVAL_COUNT}": accuracy(model, ev, y_eval[:EVAL_COUNT]),
        },
        "onnxOps": ops,
    }
    with open(os.path.join(HERE, f"{name}.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print(json.dumps(info), flush=True)

"""Shared helpers for the Fashion-MNIST model scripts: data loading (same search order as
blindml's src/data/fashion-mnist.ts), training, evaluation and ONNX export.

Inputs are the raw pixels scaled to [0, 1], shape N x 1 x 28 x 28, with no mean/std
normalization: that is the convention blindml's loaders and executors use.
"""
import gzip
import os
import time

import numpy as np
import torch
import torch.nn as nn

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def data_dirs():
    root = os.environ.get("BLINDML_DATA_DIR")
    first = (os.path.join(root, "fashion-mnist") if root
             else os.path.expanduser("~/.cache/blindml/fashion-mnist"))
    return [first, "/usr/share/datasets/fashion-mnist"]


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def _find(name):
    for d in data_dirs():
        for candidate in (os.path.join(d, name + ".gz"), os.path.join(d, name)):
            if os.path.exists(candidate):
                return candidate
    raise SystemExit(f"{name} not found in {data_dirs()}; run `npx blindml data fetch fashion-mnist`")


def load(split):
    images_name, labels_name = FILES[split]
    x = _read_idx(_find(images_name)).astype(np.float32) / 255.0
    y = _read_idx(_find(labels_name)).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(model, epochs, lr=1e-3, batch=128, seed=0):
    torch.manual_seed(seed)
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    x, y = load("train")
    xt, yt = load("test")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * ((len(x) + batch - 1) // batch))
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        start = time.time()
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}, "
              f"test accuracy {accuracy(model, xt, yt):.4f}, {time.time() - start:.0f} s", flush=True)
    acc = accuracy(model, xt, yt)
    print(f"PyTorch test accuracy on all {len(xt)} test images: {acc:.4f}", flush=True)
    return acc


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def export(model, path, input_shape):
    model.eval()
    dummy = torch.zeros(1, *input_shape)
    torch.onnx.export(model, dummy, path, opset_version=13, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)

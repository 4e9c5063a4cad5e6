#!/bin/sh
# Retrains and re-exports the committed models, then prints the plaintext accuracies that
# models/README.md records (PyTorch's in each script's output, blindml's from `model eval`).
# Needs Debian's python3-torch and python3-onnx, and the full Fashion-MNIST
# (`npx tsx src/cli/run.ts data fetch fashion-mnist`). Takes about 20 minutes on 2 cores.
set -e
cd "$(dirname "$0")/.."
/usr/bin/python3 models/fashion_small.py
/usr/bin/python3 models/fashion_reference.py
/usr/bin/python3 models/cifar_shaped.py
/usr/bin/python3 models/fashion_poly.py
for model in fashion-small fashion-reference fashion-poly; do
  npx tsx src/cli/run.ts model eval "models/$model.onnx"
done

#!/bin/sh
# Retrains and re-exports the zoo (a minute or two per model on 2 cores), then checks each model
# with blindml's executor and onnxruntime-web (models/zoo/evaluate.ts).
# Needs Debian's python3-torch, python3-onnx and dataset-fashion-mnist.
set -e
cd "$(dirname "$0")/../.."
for script in resnet_style mobilenet_style inception_style keras_style lenet5 poly_residual; do
  /usr/bin/python3 "models/zoo/$script.py"
done
npx tsx models/zoo/evaluate.ts

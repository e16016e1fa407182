#!/usr/bin/env bash
# The GPU checks, run once on a lent GPU machine (torch there, no gradio/pydicom: neither is needed here).
# Writes into $OUT (default ./gpu-out): the CUDA precision tests, bench on CUDA, a short training run on CUDA.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 MRNET_SAMPLE_DIR=/tmp/mrnet-samples
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
lscpu | grep 'Model name' | tee -a "$OUT/gpu.txt"
timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_precision.py tests/test_layout.py -k "cuda or compute" 2>&1 | tail -4 | tee "$OUT/precision.txt"
timeout 240 $PY -m mrnet bench --device cuda --repeats 20 > "$OUT/bench_cuda.json" 2> "$OUT/bench_cuda.err"
# timeout 120 $PY -m mrnet bench --device cpu --repeats 3 > "$OUT/bench_cpu16.json" 2> "$OUT/bench_cpu16.err"
timeout 60 $PY -m mrnet phantom --out /tmp/ph --n-train 60 --n-valid 20 --seed 5 --workers 16 > /dev/null
start=$(date +%s)
timeout 200 $PY -m mrnet train --data /tmp/ph --out /tmp/w --epochs 1 --slice-steps 200 --device cuda --no-progress \
  > "$OUT/train_cuda.json" 2> "$OUT/train_cuda.log"
echo "train_seconds $(( $(date +%s) - start ))" | tee -a "$OUT/train_cuda.log"
tail -3 "$OUT/train_cuda.log"; cat "$OUT/bench_cuda.json" | head -40

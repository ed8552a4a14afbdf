#!/usr/bin/env bash
# The first GPU figures in one command of at most 9 minutes (a lent GPU gives about 15 minutes in all).
#
#   PYTHONPATH=src bash benchmarks/gpu_campaign.sh DATA OUT
#   CAMPAIGN_TOY=1 PYTHONPATH=src bash benchmarks/gpu_campaign.sh DATA OUT     # CPU, toy sizes (CI)
#
# DATA: the CIFAR-10 JPEG folder, or cifar10-jpeg.tar.gz (unpacked once under $CAMPAIGN_TMP, default
# /tmp). Runs from a checkout without installing (PYTHONPATH=src). Parts, each under its own time limit,
# each writing its figures into OUT as it goes (so what was measured is kept when a part is cut short):
#   1. throughput at the paper's settings (cc-paper-cifar10): fast path against the official-style loader
#   2. throughput at the fast preset's settings (cifar10-fast)
#   3. time-to-quality curve of the fast CIFAR-10 recipe
#   4. contraclust reproduce of CC on CIFAR-10 (fast preset) within the time left
# OUT/summary.md gathers the device, the date, the commands and every part's output.
set -u
DATA=${1:?usage: gpu_campaign.sh DATA OUT}
OUT=${2:?usage: gpu_campaign.sh DATA OUT}
source "$(dirname "$0")/campaign_lib.sh"

write_header "GPU campaign"

if [[ "$TOY" == 1 ]]; then
    TOY_MODEL=(--set model.width=8 --set model.head_hidden=32 --set model.feature_dim=16)
    part throughput-paper 60 python "$HERE/throughput.py" --preset cc-paper-cifar10 --synthetic 64 --batch-size 8 \
        --steps 1 --warmup 1 --workers 1 --set augment.size=32 "${TOY_MODEL[@]}"
    part throughput-fast 60 python "$HERE/throughput.py" --preset cifar10-fast --synthetic 64 --batch-size 8 \
        --steps 1 --warmup 1 --workers 1 "${TOY_MODEL[@]}"
    part time-to-quality 60 python "$HERE/time_to_quality.py" --synthetic 128 --preset cifar10-fast --epochs 2 \
        --eval-every 1 --budget 20 --set train.batch_size=32 "${TOY_MODEL[@]}"
    part reproduce-cc 120 python -m contraclust reproduce --method cc --dataset cifar10 --data "$DATA" \
        --preset cifar10-fast --limit 200 --epochs 1 --set train.batch_size=32 "${TOY_MODEL[@]}" \
        --out "$OUT/reproduce-cc" --no-progress
else
    part throughput-paper 80 python "$HERE/throughput.py" --preset cc-paper-cifar10 --data "$DATA" --steps 20 --warmup 5
    part throughput-fast 100 python "$HERE/throughput.py" --preset cifar10-fast --data "$DATA" --steps 50 --warmup 10
    part time-to-quality 200 python "$HERE/time_to_quality.py" --preset cifar10-fast --data "$DATA" --budget 180 \
        --eval-every 5
    budget=$(( $(left) - 40 ))
    part reproduce-cc $(( budget + 30 )) python -m contraclust reproduce --method cc --dataset cifar10 --data "$DATA" \
        --preset cifar10-fast --budget "${budget}s" --out "$OUT/reproduce-cc" --no-progress
fi
echo "campaign finished in $(( $(date +%s) - START )) s" | tee -a "$OUT/summary.md"

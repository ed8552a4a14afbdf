#!/usr/bin/env bash
# The first GPU figures in one command of at most 8 minutes (a lent GPU gives 15 minutes in all, so a
# rerun still fits).
#
#   PYTHONPATH=src bash benchmarks/gpu_campaign.sh DATA OUT
#   CAMPAIGN_TOY=1 PYTHONPATH=src bash benchmarks/gpu_campaign.sh DATA OUT     # CPU, toy sizes (CI)
#
# DATA: the CIFAR-10 JPEG folder, or cifar10-jpeg.tar.gz (unpacked once under $CAMPAIGN_TMP, default
# /tmp). Runs from a checkout without installing (PYTHONPATH=src), with $PYTHON (default python3).
# Parts, each under its own time limit, each printing its headline figure first:
#   1. throughput at the paper's settings (cc-paper-cifar10): fast path against the official-style loader
#   2. throughput at the fast preset's settings (cifar10-fast)
#   3. time-to-quality of the fast CIFAR-10 recipe, its cosine fitted to the part's budget
#   4. contraclust reproduce of CC on CIFAR-10 (fast preset) within half of the time left
#   5. the same with a self-labelling stage at its end (--then self-label's stage), in the same time
# OUT receives summary.md (device, date, commands, every part's output) and logs.tar.gz; nothing else.
set -u
DATA=${1:?usage: gpu_campaign.sh DATA OUT}
OUT=${2:?usage: gpu_campaign.sh DATA OUT}
source "$(dirname "$0")/campaign_lib.sh"

write_header "GPU campaign"

if [[ "$TOY" == 1 ]]; then
    TOY_MODEL=(--set model.width=8 --set model.head_hidden=32 --set model.feature_dim=16)
    part throughput-paper 60 "$PYTHON" "$HERE/throughput.py" --preset cc-paper-cifar10 --synthetic 64 --batch-size 8 \
        --steps 1 --warmup 1 --workers 1 --no-streaming --set augment.size=32 "${TOY_MODEL[@]}"
    part throughput-fast 60 "$PYTHON" "$HERE/throughput.py" --preset cifar10-fast --synthetic 64 --batch-size 8 \
        --steps 1 --warmup 1 --workers 1 --no-streaming "${TOY_MODEL[@]}"
    part time-to-quality 60 "$PYTHON" "$HERE/time_to_quality.py" --synthetic 128 --preset cifar10-fast --budget 12 \
        --eval-every 1 --set train.batch_size=32 "${TOY_MODEL[@]}"
    part reproduce-cc 120 "$PYTHON" -m contraclust reproduce --method cc --dataset cifar10 --data "$DATA" \
        --preset cifar10-fast --limit 200 --epochs 1 --set train.batch_size=32 "${TOY_MODEL[@]}" \
        --out "$WORK/contraclust-reproduce-cc-$START" --no-progress
    part reproduce-cc-self-label 120 "$PYTHON" -m contraclust reproduce --method cc --dataset cifar10 --data "$DATA" \
        --preset cifar10-fast --limit 200 --epochs 1 --set train.batch_size=32 "${TOY_MODEL[@]}" \
        --set self_label.enabled=true --set self_label.epochs=1 --set self_label.threshold=0.5 \
        --out "$WORK/contraclust-reproduce-cc-self-label-$START" --no-progress
else
    part throughput-paper 70 "$PYTHON" "$HERE/throughput.py" --preset cc-paper-cifar10 --data "$DATA" --steps 20 \
        --warmup 5 --no-streaming
    part throughput-fast 90 "$PYTHON" "$HERE/throughput.py" --preset cifar10-fast --data "$DATA" --steps 50 \
        --warmup 10 --no-streaming
    part time-to-quality 170 "$PYTHON" "$HERE/time_to_quality.py" --preset cifar10-fast --data "$DATA" --budget 120 \
        --eval-every 5
    budget=$(( ($(left) - 90) / 2 ))
    part reproduce-cc $(( budget + 35 )) "$PYTHON" -m contraclust reproduce --method cc --dataset cifar10 \
        --data "$DATA" --preset cifar10-fast --budget "${budget}s" --out "$WORK/contraclust-reproduce-cc-$START" --no-progress
    part reproduce-cc-self-label $(( budget + 35 )) "$PYTHON" -m contraclust reproduce --method cc --dataset cifar10 \
        --data "$DATA" --preset cifar10-fast --budget "${budget}s" --set self_label.enabled=true \
        --out "$WORK/contraclust-reproduce-cc-self-label-$START" --no-progress
fi
echo "campaign finished in $(( $(date +%s) - START )) s" | tee -a "$OUT/summary.md"

#!/usr/bin/env bash
# Resident against streamed data on one device, at 64 px and at 224 px, in one command of at most 8 minutes.
#
#   PYTHONPATH=src bash benchmarks/streaming_campaign.sh DATA OUT
#   CAMPAIGN_TOY=1 PYTHONPATH=src bash benchmarks/streaming_campaign.sh DATA OUT     # CPU, toy sizes (CI)
#
# DATA: the CIFAR-10 JPEG folder, or cifar10-jpeg.tar.gz (as gpu_campaign.sh). Packs it with
# ``contraclust pack`` at 64 px and at 224 px under $CAMPAIGN_TMP (default /tmp; 0.7 GB and 9 GB), then
# runs benchmarks/throughput.py on each pack: the resident path (the pack copied to the device) and the
# streaming path (the memory map gathered by a background thread, pinned, copied asynchronously), with
# images/s and peak device memory of each. OUT receives summary.md (the device, the commands and the
# figures) and logs.tar.gz; the packs stay under $CAMPAIGN_TMP.
set -u
DATA=${1:?usage: streaming_campaign.sh DATA OUT}
OUT=${2:?usage: streaming_campaign.sh DATA OUT}
source "$(dirname "$0")/campaign_lib.sh"
write_header "Streaming campaign"

if [[ "$TOY" == 1 ]]; then
    TOY_MODEL=(--set model.width=8 --set model.head_hidden=32 --set model.feature_dim=16)
    mkdir -p "$WORK/contraclust-toy-folder"
    "$PYTHON" - "$DATA" "$WORK/contraclust-toy-folder" <<'PY'
import shutil, sys
from pathlib import Path
source, target = Path(sys.argv[1]), Path(sys.argv[2])
for class_dir in sorted(p for p in (source / "train").iterdir() if p.is_dir())[:2]:
    (target / class_dir.name).mkdir(parents=True, exist_ok=True)
    for file in sorted(class_dir.iterdir())[:32]:
        shutil.copy(file, target / class_dir.name / file.name)
PY
    for size in 64 224; do
        part "pack-$size" 60 "$PYTHON" -m contraclust pack --data "$WORK/contraclust-toy-folder" --size "$size" \
            --output "$WORK/contraclust-toy-$size.ccpack" --no-progress --workers 1
        part "throughput-$size" 120 "$PYTHON" "$HERE/throughput.py" --preset cifar10-fast --data "$WORK/contraclust-toy-$size.ccpack" \
            --batch-size 8 --steps 1 --warmup 1 --no-reference --set augment.size=$(( size / 4 )) "${TOY_MODEL[@]}"
    done
else
    part pack-64 60 "$PYTHON" -m contraclust pack --data "$DATA" --size 64 --output "$WORK/cifar10-64.ccpack" --no-progress
    part throughput-64 100 "$PYTHON" "$HERE/throughput.py" --preset cifar10-fast --data "$WORK/cifar10-64.ccpack" \
        --steps 50 --warmup 10 --no-reference --set augment.size=64
    part pack-224 120 "$PYTHON" -m contraclust pack --data "$DATA" --size 224 --output "$WORK/cifar10-224.ccpack" --no-progress
    part throughput-224 150 "$PYTHON" "$HERE/throughput.py" --preset cc-paper-cifar10 --data "$WORK/cifar10-224.ccpack" \
        --steps 20 --warmup 5 --no-reference
fi
echo "campaign finished in $(( $(date +%s) - START )) s" | tee -a "$OUT/summary.md"

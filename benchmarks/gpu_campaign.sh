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
TOTAL=${CAMPAIGN_SECONDS:-540}
TOY=${CAMPAIGN_TOY:-0}
WORK=${CAMPAIGN_TMP:-/tmp}
HERE=$(cd "$(dirname "$0")" && pwd)
START=$(date +%s)
mkdir -p "$OUT"
export CONTRACLUST_CACHE=${CONTRACLUST_CACHE:-$WORK/contraclust-cache}  # CIFAR-10 is decoded once, for all parts
export PYTHONUNBUFFERED=1

if [[ "$DATA" == *.tar.gz ]]; then
    if [[ ! -d "$WORK/contraclust-data/cifar10" ]]; then
        mkdir -p "$WORK/contraclust-data" && tar xzf "$DATA" -C "$WORK/contraclust-data" || { echo "cannot unpack $DATA" >&2; exit 1; }
    fi
    DATA="$WORK/contraclust-data/cifar10"
fi
[[ -d "$DATA" ]] || { echo "no CIFAR-10 folder at $DATA" >&2; exit 1; }

left() { echo $(( TOTAL - ($(date +%s) - START) )); }

# part NAME SECONDS COMMAND...: run COMMAND for at most SECONDS (or what is left), output into OUT/NAME.txt
part() {
    local name=$1 limit=$2
    shift 2
    local remaining
    remaining=$(left)
    (( limit > remaining - 5 )) && limit=$(( remaining - 5 ))
    {
        echo "## $name"
        echo '```'
        echo "\$ $*   # limit ${limit} s"
    } >>"$OUT/summary.md"
    if (( limit < 10 )); then
        echo "skipped: no time left" | tee "$OUT/$name.txt" >>"$OUT/summary.md"
    else
        timeout -k 10 --signal=INT "$limit" "$@" 2>"$OUT/$name.log" | tee "$OUT/$name.txt" >>"$OUT/summary.md"
        local code=${PIPESTATUS[0]}
        (( code == 124 || code == 130 )) && echo "(stopped at its ${limit} s limit)" | tee -a "$OUT/$name.txt" >>"$OUT/summary.md"
        (( code != 0 && code != 124 && code != 130 )) && { echo "(failed, exit $code; last lines of $name.log:)"; tail -n 5 "$OUT/$name.log"; } | tee -a "$OUT/$name.txt" >>"$OUT/summary.md"
    fi
    echo '```' >>"$OUT/summary.md"
}

{
    echo "# GPU campaign, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo '```'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi (CPU)"
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpus', __import__('os').cpu_count())"
    echo "data $DATA, toy $TOY, total limit $TOTAL s"
    echo '```'
} >"$OUT/summary.md"

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

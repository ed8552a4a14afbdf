# Shared by the campaign scripts (sourced, not run): settings, the data folder, and ``part``.
# Expects DATA and OUT set; sets TOTAL, TOY, WORK, HERE, START; unpacks DATA when it is a .tar.gz.
TOTAL=${CAMPAIGN_SECONDS:-540}
TOY=${CAMPAIGN_TOY:-0}
WORK=${CAMPAIGN_TMP:-/tmp}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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


# write_header TITLE: OUT/summary.md begins with the title, the date, the device and the software
write_header() {
    {
        echo "# $1, $(date -u +%Y-%m-%dT%H:%MZ)"
        echo '```'
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi (CPU)"
        python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpus', __import__('os').cpu_count())"
        echo "data $DATA, toy $TOY, total limit $TOTAL s"
        echo '```'
    } >"$OUT/summary.md"
}

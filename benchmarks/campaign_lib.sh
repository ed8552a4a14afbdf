# Shared by the campaign scripts (sourced, not run): settings, the data folder, and ``part``.
# Expects DATA and OUT set; sets TOTAL, TOY, WORK, HERE, START, PYTHON; unpacks DATA when it is a .tar.gz.
#
# What comes back from a lent device is at most 8 files of $OUT, none deeper than $OUT/a/b/file. So $OUT
# receives exactly two: summary.md (the device, the commands and every part's figures, appended as each
# part ends) and logs.tar.gz (each part's full output and log, rebuilt after every part, so that a
# campaign cut short still returns what it measured). Run folders, checkpoints, packs and the decoded
# data live under $CAMPAIGN_TMP (default /tmp), never under $OUT.
TOTAL=${CAMPAIGN_SECONDS:-480}
TOY=${CAMPAIGN_TOY:-0}
WORK=${CAMPAIGN_TMP:-/tmp}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START=$(date +%s)
LOGS="$WORK/contraclust-campaign-logs"
mkdir -p "$OUT" "$LOGS"
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

# part NAME SECONDS COMMAND...: run COMMAND for at most SECONDS (or what is left); its output goes into
# summary.md, its output and log into logs.tar.gz.
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
        echo "skipped: no time left" | tee "$LOGS/$name.txt" >>"$OUT/summary.md"
    else
        local began=$SECONDS
        timeout -k 10 --signal=INT "$limit" "$@" 2>"$LOGS/$name.log" | tee "$LOGS/$name.txt" >>"$OUT/summary.md"
        local code=${PIPESTATUS[0]}
        (( code == 124 || code == 130 )) && echo "(stopped at its ${limit} s limit)" | tee -a "$LOGS/$name.txt" >>"$OUT/summary.md"
        (( code != 0 && code != 124 && code != 130 )) && { echo "(failed, exit $code; last lines of $name.log:)"; tail -n 5 "$LOGS/$name.log"; } | tee -a "$LOGS/$name.txt" >>"$OUT/summary.md"
        echo "(part took $(( SECONDS - began )) s)" >>"$OUT/summary.md"
    fi
    echo '```' >>"$OUT/summary.md"
    tar czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
}


# write_header TITLE: OUT/summary.md begins with the title, the date, the device and the software
write_header() {
    {
        echo "# $1, $(date -u +%Y-%m-%dT%H:%MZ)"
        echo '```'
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi (CPU)"
        "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpus', __import__('os').cpu_count())"
        echo "data $DATA, toy $TOY, total limit $TOTAL s, work folder $WORK"
        echo '```'
    } >"$OUT/summary.md"
}

#!/usr/bin/env bash
# The GPU session's one command, run THERE (the device machine) after prepare.sh ran here:
#
#   run(command="bash benchmarks/gpu_session/run.sh", carry=[".gpu-carry"], timeout_s=600)
#
# Usage: bash benchmarks/gpu_session/run.sh [--minutes TOTAL] [--device cuda|cpu]
#            [--renderer-minutes M] [--deblur-minutes D] [--edits 1|0]
# (defaults: 9 min in all, cuda, per-clip renderer minutes from the budget, deblur 1.5 min when
# the renderer leaves that much). 9 min: with the machine's start, one call takes about 11 of the
# session's 15 device minutes, and a second start needs 4 left, so this call gets what there is.
# Unpacks .gpu-carry/inputs.tar.xz (wheels installed for python 3.12, the clips, their cached
# analysis) to /tmp/gpu-session, sets PYTHONPATH (repo + its site) and FACEPIPE_WORKDIR (the cache),
# prints the GPU and torch, then, each step under `timeout` inside the total budget:
#   1. inference_gpu.json: crops/s of the 256 px config through the edit's inference call;
#   2. renderer_gpu.{json,md} + renderer_gpu_sheets.tar: benchmarks/renderer.py with
#      RendererConfig.for_device (256 px, width 64 on CUDA) on the edit clips (--edits 1, the
#      default: two clips, so each trains minutes, not seconds) or on all carried clips (--edits 0);
#   3. edits_NAME.tar per edit clip: its carried 24-frame source edited to happy, sad and surprised
#      with the renderer step 2 trained on the clip (session.py edits), scored back here with
#      `session.py score --json OUT edits_*.tar` (the harness needs mediapipe, which is not there);
#   4. deblur_gpu.pt (when under 16 MiB): `facepipe train deblur`, width 64 on CUDA, if time is left.
# OVERHEAD_S=30 bash ... assumes less per-clip overhead (more training per clip).
# All into $OUT (the tool's; at most 8 files come back), with the whole output in $OUT/log.txt,
# so a step that fails or runs out of time still leaves the others' results.
# CPU dry run here (a bundle made with GPU_PYTHON_VERSION matching the python that runs it):
#   OUT=/tmp/gpu-out PYTHON=.venv/bin/python bash benchmarks/gpu_session/run.sh --device cpu \
#       --minutes 6 --renderer-minutes 0.1 --deblur-minutes 0.2
set -uo pipefail  # not -e: a failed step must not cancel the steps after it
cd "$(dirname "$0")/../.."
minutes=9 device=cuda renderer_minutes="" deblur_minutes=1.5 edits=1
while (($#)); do
    case $1 in
        --minutes) minutes=$2 ;;
        --edits) edits=$2 ;;
        --device) device=$2 ;;
        --renderer-minutes) renderer_minutes=$2 ;;
        --deblur-minutes) deblur_minutes=$2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
: "${OUT:?set OUT to the folder the results go to (the device tool sets it)}"
PY=${PYTHON:-python3}
WORK=/tmp/gpu-session
RESULTS=$WORK/results
rm -rf "$RESULTS"  # a rerun on the same machine must not return the last run's files
mkdir -p "$OUT" "$RESULTS"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
deadline=$((SECONDS + $(awk -v m="$minutes" 'BEGIN { print int(m * 60) }')))
left() { echo $((deadline - SECONDS)); }
step() {  # step NAME LIMIT_S COMMAND...: run it under timeout, log its exit status and time
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    echo "== $name: limit ${limit} s, $(left) s of the budget left"
    timeout -k 10 "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s$( ((rc == 124)) && echo ' (timed out)')"
    return $rc
}

# Python's own xz reader: the image may lack the xz tool that tar -J needs.
step unpack 120 "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
    .gpu-carry/inputs.tar.xz "$WORK" || exit 1
export PYTHONPATH=$PWD:$WORK/site${PYTHONPATH:+:$PYTHONPATH} FACEPIPE_WORKDIR=$WORK/work
mapfile -t clips < <(sed "s|^|$WORK/|" "$WORK/clips.txt")

if command -v nvidia-smi > /dev/null; then timeout 20 nvidia-smi; fi
step versions 60 "$PY" -c '
import os, torch, numpy, av, kornia, diffusers, facepipe
print("python", os.sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__,
      "av", av.__version__, "kornia", kornia.__version__, "diffusers", diffusers.__version__, "cores", os.cpu_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(p.name, f"{p.total_memory / 2**30:.0f} GiB", f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs")
' || exit 1

batches=1,8,32
[[ $device == cpu ]] && batches=1,2  # the 256 px net runs about 1 crop/s on a CPU: the dry run checks the plumbing
step inference 120 "$PY" benchmarks/gpu_session/session.py inference --device "$device" --batches "$batches" \
    --json "$OUT/inference_gpu.json"

# The renderer gets what is left but a minute for the rest; per clip, its samples (decoding,
# conditioning maps at 256 px on the CPU) and validation cost about OVERHEAD_S. The deblur
# training runs only on the time the renderer leaves (when the overhead was smaller).
edits_s=0 train=("${clips[@]}")
if ((edits)) && [[ ! -s $WORK/edits.txt ]]; then
    echo "edits: the bundle carries no sources (made before prepare.sh staged them): --edits 0"
    edits=0
fi
if ((edits)); then
    edits_s=${EDITS_S:-90}  # six 24-frame edits (two crops a frame through the 256 px renderer; about 3 s each on a CPU at 96 px)
    mapfile -t sources < <(sed "s|^|$WORK/|" "$WORK/edits.txt")
    train=()
    for source in "${sources[@]}"; do  # the carried clip each source (edits/NAME.first24.mkv) was cut from
        name=$(basename "$source")
        train+=("$WORK/clips/${name%%.*}.mp4")
    done
fi
renderer_s=$(($(left) - 60 - edits_s))
overhead_s=${OVERHEAD_S:-45}
if [[ -z $renderer_minutes ]]; then
    renderer_minutes=$(awk -v s="$renderer_s" -v n="${#train[@]}" -v o="$overhead_s" \
        'BEGIN { m = (s - 30 - n * o) / n / 60; printf "%.2f", (m < 0.1) ? 0.1 : m }')
fi
echo "renderer: ${#train[@]} clips, $renderer_minutes min each, limit $renderer_s s"
step renderer "$renderer_s" "$PY" benchmarks/renderer.py --device "$device" --minutes "$renderer_minutes" \
    --json "$RESULTS/renderer_gpu.json" --save-renderers --clips "${train[@]}"
cp "$RESULTS"/renderer_gpu.json "$RESULTS"/renderer_gpu.md "$OUT"/ 2> /dev/null
[[ -d $RESULTS/sheets ]] && tar -C "$RESULTS" -cf "$OUT/renderer_gpu_sheets.tar" sheets

if ((edits)); then
    step edits "$edits_s" "$PY" benchmarks/gpu_session/session.py edits --device "$device" --out "$RESULTS/edits" \
        "${sources[@]}"
    cp "$RESULTS"/edits/*.tar "$OUT"/ 2> /dev/null
fi

# The deblur GAN: trained on all carried clips but the last, validated on the last.
deblur_s=$(awk -v m="$deblur_minutes" 'BEGIN { print int(m * 60) + 60 }')  # + reading the windows
if ((deblur_s > 60 && $(left) > deblur_s)); then
    width=64
    [[ $device == cpu ]] && width=16  # the CPU config
    step deblur "$deblur_s" "$PY" -m facepipe train deblur "${clips[@]:0:${#clips[@]}-1}" --val "${clips[-1]}" \
        --minutes "$deblur_minutes" --width "$width" --device "$device" --out "$RESULTS/deblur_gpu.pt" --force
    if [[ -f $RESULTS/deblur_gpu.pt ]] && (($(stat -c %s "$RESULTS/deblur_gpu.pt") < 16 * 1048576)); then
        cp "$RESULTS/deblur_gpu.pt" "$OUT"/
    fi
else
    echo "deblur: skipped ($(left) s left, needs $deblur_s)"
fi
echo "== done, $(left) s of the budget left; in \$OUT:"
ls -la "$OUT"

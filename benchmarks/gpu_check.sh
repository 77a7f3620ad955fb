#!/usr/bin/env bash
# One prepared check for a GPU machine (H100, torch 2.11, triton 3.6, no internet).
#
#   bash benchmarks/gpu_check.sh            # from the repo root; everything lands in $OUT
#
# Steps, each logged with its exit code and seconds, none aborting the others:
#   env        nvidia-smi, Python / torch / triton / CUDA versions, git commit
#   wheels     pip install --no-index --target /tmp/site from ./wheels or ./.whl (PyAV, scikit-video;
#              benchmarks/fetch_gpu_wheels.sh downloads them), /tmp/site put on PYTHONPATH
#   install    pip install --no-deps --no-build-isolation -e .   (fastsiren.kernels / .benchmarks),
#              or, if that fails, symlinks fastsiren/kernels and fastsiren/benchmarks in the tree
#   cuda       the CUDA extension: ahead of time with FASTSIREN_BUILD_CUDA=1, else the JIT build
#              that the first use of the "cuda" backend triggers; a failure is recorded, not fatal
#   pytest-focus  the GPU tests matching GPU_CHECK_FOCUS (a -k expression) alone, without xdist,
#              with faulthandler; if they crash, once more under cuda-gdb for a native backtrace
#   pytest     python -m pytest -v -m 'gpu or kernels' tests -n 8  (the GPU tier and the float64 kernel
#              checks; xdist if present)
#   bench      the BENCH_SUITES at --size default for every provider (results/*.csv, bench.txt)
#   bench2     optional: BENCH2_SUITES for BENCH2_PROVIDERS only (appended to bench.txt)
#   weighted   benchmarks/weighted_cost.py: the wave step with and without its Laplacian weights, per
#              backend (results/weighted-cost-gpu.json)
#   profile    benchmarks/profile_step.py: each provider's kernels per step (results/profile-gpu.json)
#   tune       benchmarks/triton_tune.py: the Triton fp32 GEMM tiles swept on whole training steps
#              (results/triton-tune-gpu.json), with the time left before the experiments
#   precision  benchmarks/precision.py: each Triton precision's error vs float64 and render time
#              (results/precision-gpu.json: the training and inference defaults it recommends)
#   scaling    time vs points / width / D for the SCALING_SUITES, if time is left
#   task-*     the paper-profile experiments of GPU_CHECK_TASKS, if time is left, each publishing into
#              work/docs/{results,figures}
#
# The whole script stays under GPU_CHECK_BUDGET seconds (default 470, i.e. under 8 minutes):
# each step runs under `timeout -k 10` with min(its own limit, time left - RESERVE (25 s)), so
# the last step ends by BUDGET - 15 s even when its kill needs the 10 s grace; the closing
# README tables get the time left to the deadline (at least 10 s), the manifest and the bundle
# a second or two: the end comes at about BUDGET, BUDGET + 20 s at the worst. The experiments
# are listed (a torch import) only when GPU_CHECK_TASKS asks for some.
# What comes back (at most 8 files, per the device machine's rules): manifest.json (steps,
# rc, seconds, versions; "finished": false until the end), gpu_check.log, env.txt,
# pytest_gpu.txt, bench.txt, bench.md (the README tables of this run) and bundle.tgz (results
# CSVs and JSONs, figures, run folders without their *.pt checkpoints, step logs, and
# work/docs even when empty), the manifest and the bundle rewritten after every step so that a
# call killed at its limit (rc 124/137) still brings back what the finished steps wrote (a
# step cut off by that kill loses its log and the rows it wrote since the last step ended).
# Give the call a timeout_s of at least GPU_CHECK_BUDGET + 30. Import the numbers here (outside the tree: an unpacked work/ would
# travel with the next call) with:
#   d=$(mktemp -d) && tar xzf bundle.tgz -C $d && fastsiren bench --merge $d/work/results &&
#   cp -r $d/work/docs/. docs/   (and cp $d/work/results/*.json benchmarks/results/ for the
#   profile, tune and precision documents, which --merge does not take; where no bench suite
#   finished, --merge finds no *.csv and fails the chain: run the cp alone)
#
# A session's 15 minutes of device time count the machine's start (minutes), every call, idle
# waits and the close, so plan one long call, not two short ones (each needs the other's start
# or a warm machine, and a fresh start is refused under 4 minutes left). For example, with run's
# timeout_s = 570 and no `carry` (the wheels are for the video tasks only):
#   FASTSIREN_COMMIT=<sha> GPU_CHECK_BUDGET=540 GPU_CHECK_TASKS="" GPU_CHECK_SKIP="weighted tune scaling" \
#   BENCH_SUITES="poisson-laplacian poisson-grad fit layer wave" BENCH2_SUITES=render \
#   BENCH2_PROVIDERS="reference reference+compile torch triton cuda" bash benchmarks/gpu_check.sh
# (a suite's rows are written when it finishes; earlier H200 calls finished about three suites
# in the bench step's 200 s, so the training suites of the targets come first, and render, the
# slowest with every provider and the one whose reference row needs a rerun (the README's note
# on commit 251b650), gets the second pass's own 120 s with the providers of its target, the
# per-point fused kernels left out; profile and precision run in what is left). A second call only if status leaves
# time for it: the scaling sweeps (GPU_CHECK_SKIP="cuda pytest bench weighted profile tune
# precision") or paper-profile tasks (GPU_CHECK_TASKS=..., carry [".whl"] for the video ones).
#
# The copy of the tree on the GPU machine may carry a stale .git (on 2026-11-28 it kept the
# session's first commit): pass the commit in, as FASTSIREN_COMMIT=<sha> (computed here, typed
# into the device command), and every results file and the manifest record it.
#
# Environment: OUT (default ./gpu_out), PYTHON (default python3), GPU_CHECK_BUDGET, FASTSIREN_COMMIT,
# FASTSIREN_BUILD_CUDA=1, GPU_CHECK_FOCUS (see pytest-focus), GPU_CHECK_PYTEST_LIMIT and
# GPU_CHECK_BENCH_LIMIT (seconds of the pytest and bench steps, default 210 and 200), BENCH_SUITES (default
# "poisson-laplacian poisson-grad fit render layer wave"), BENCH_PROVIDERS (default all), BENCH2_SUITES and
# BENCH2_PROVIDERS (an optional second bench pass), SCALING_PROVIDERS (default BENCH_PROVIDERS),
# SCALING_REPEATS (default 5), SCALING_SUITES (default "poisson-laplacian fit"), SCALING_SWEEPS (default all:
# points width dim), SCALING_MAX_POINTS (default 1e7), GPU_CHECK_SCALING_LIMIT (seconds, default 100),
# BENCH_ARGS (extra bench options,
# e.g. "--tol 1e-2"), GPU_CHECK_TASKS (paper-profile experiments in order, names from
# `fastsiren experiments --list`; default: all of them, as time allows; "" runs none),
# GPU_CHECK_TASK_LIMIT (seconds per task, default 240), GPU_CHECK_PROFILE (their profile,
# default paper; quick tests the plumbing on a CPU), GPU_CHECK_SKIP (step names to skip, e.g.
# "cuda pytest bench weighted profile tune precision scaling" for a call that only runs experiments; keep
# install: a fresh machine has no fastsiren.kernels without it), GPU_CHECK_WORK (where work/ is
# built, outside OUT; default a fresh folder under /tmp).

set -u

OUT=${OUT:-./gpu_out}
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-470}
RESERVE=25          # seconds kept for the manifest and the bundle
MIN_STEP=15         # a step with less time than this left is skipped, not started
START=$(date +%s)
DEADLINE=$((START + BUDGET))

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# work/ is built outside OUT (the device returns at most 8 files, 2 folders down) and packed
# into OUT/bundle.tgz after every step
WORKROOT=${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
WORK="$WORKROOT/work"
# work/docs from the start: the import's `cp -r work/docs/. docs/` needs it in every bundle,
# also one packed before a call killed at its limit reached the experiments
mkdir -p "$WORK/logs" "$WORK/results" "$WORK/figures" "$WORK/runs" "$WORK/docs/results" "$WORK/docs/figures"
LOG="$OUT/gpu_check.log"
STEPS="$WORK/steps.tsv"
: >"$LOG"
: >"$STEPS"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg MAX_JOBS=${MAX_JOBS:-16}
unset TRITON_INTERPRET

say() { echo "[gpu_check $(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
left() { echo $((DEADLINE - $(date +%s) - RESERVE)); }
# seconds for a closing command: what is left until the deadline, at least 10 and at most 60
# (the last step ends by DEADLINE - RESERVE + its 10 s kill grace, so the closing steps end
# about at the deadline, 20 s after it at the worst; the call's timeout_s is BUDGET + 30)
closing() {
    local t=$((DEADLINE - $(date +%s)))
    [ "$t" -lt 10 ] && t=10
    [ "$t" -gt 60 ] && t=60
    echo "$t"
}
# bundle.tgz from what work/ holds now; no checkpoints or finished pieces (*.pt, parts/*.npz:
# paper-profile runs would push it past the 16 MiB a returned file may have, and the whole
# bundle would be lost)
pack() {
    # (a failed tar removes its .part: OUT must stay within the 8 files that come back)
    { tar czf "$OUT/bundle.tgz.part" --exclude='*.pt' --exclude='*.npz' -C "$WORKROOT" work 2>>"$LOG" &&
        mv -f "$OUT/bundle.tgz.part" "$OUT/bundle.tgz"; } || { rm -f "$OUT/bundle.tgz.part"; return 1; }
}
# manifest.json (steps so far, versions, files) after every step and at the end, so that a call
# killed at its limit still brings it back; MANIFEST_PY is written below, before the first step
MANIFEST_PY="$WORKROOT/manifest.py"
manifest() {
    timeout -k 5 "${1:-20}" $PY "$MANIFEST_PY" "$OUT" "$STEPS" "$START" "$(date +%s)" "$WORKROOT" \
        "${2:-step}" 2>>"$LOG" || cp "$STEPS" "$OUT/manifest.tsv"
}
cat >"$MANIFEST_PY" <<'EOF'
import json, os, re, subprocess, sys
from pathlib import Path

out, steps, start, end = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
root = Path(sys.argv[5])
rows = []
for line in steps.read_text().splitlines():
    name, rc, secs, note = (line.split("\t") + [""] * 4)[:4]
    rows.append({"step": name, "rc": None if rc == "skipped" else int(rc), "status":
                 "skipped" if rc == "skipped" else ("ok" if rc == "0" else "failed"),
                 "seconds": int(secs), "note": note, "log": f"work/logs/{name}.log"})
# versions from the env step's log, not by importing torch here: this runs after every step
# (a second each), and a wedged GPU must not stop the manifest of the steps that finished
info = {}
env_log = root / "work" / "logs" / "env.log"
text = env_log.read_text(errors="replace") if env_log.exists() else ""
m = re.search(r"^torch (\S+) cuda (\S+) gpu (.*)$", text, re.M)
if m:
    info = {"torch": m[1], "cuda": "" if m[2] == "None" else m[2],
            "device": "no CUDA device" if m[3].strip() == "False" else m[3].strip()}
m = re.search(r"^triton (\S+)$", text, re.M)
if m:
    info["triton"] = m[1]
m = re.search(r"^python (\S+)$", text, re.M)
if m:
    info["python"] = m[1]
if not info and sys.argv[6] == "final":  # no env step (skipped): ask torch, once, at the end
    try:
        import torch
        info = {"torch": torch.__version__, "cuda": torch.version.cuda or "",
                "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"}
        import triton
        info["triton"] = triton.__version__
    except Exception as exc:
        info["error"] = str(exc)
commit = os.environ.get("FASTSIREN_COMMIT")
if not commit:  # git may be missing there (FileNotFoundError would lose manifest.json)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
files = sorted([str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.suffix != ".part"]
               + [str(p.relative_to(root)) for p in (root / "work").rglob("*") if p.is_file() and p.suffix != ".pt"])
manifest = {"script": "benchmarks/gpu_check.sh", "commit": commit, "started": start, "seconds": end - start,
            "finished": sys.argv[6] == "final", **info, "steps": rows, "files": files}
part = out / "manifest.json.part"
part.write_text(json.dumps(manifest, indent=1))
part.replace(out / "manifest.json")
if sys.argv[6] == "final":
    print(json.dumps({k: v for k, v in manifest.items() if k != "files"}, indent=1))
EOF

# step NAME LIMIT_SECONDS COMMAND...  (the command runs in bash -c; output to logs/NAME.log)
step() {
    local name=$1 limit=$2
    shift 2
    local rem
    rem=$(left)
    case " ${GPU_CHECK_SKIP:-} " in *" $name "*)
        say "SKIP $name: in GPU_CHECK_SKIP"
        printf '%s\tskipped\t0\t%s\n' "$name" "in GPU_CHECK_SKIP" >>"$STEPS"
        return 0 ;;
    esac
    if [ "$rem" -lt "$MIN_STEP" ]; then
        say "SKIP $name: ${rem}s left"
        printf '%s\tskipped\t0\t%s\n' "$name" "only ${rem}s left" >>"$STEPS"
        return 0
    fi
    [ "$limit" -gt "$rem" ] && limit=$rem
    say "START $name (limit ${limit}s): $*"
    local t0 rc
    t0=$(date +%s)
    timeout -k 10 "$limit" bash -c "$*" >"$WORK/logs/$name.log" 2>&1
    rc=$?
    local dt=$(($(date +%s) - t0))
    tail -n 15 "$WORK/logs/$name.log" | sed "s/^/    $name| /" | tee -a "$LOG"
    local note=""
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note="timed out after ${limit}s"
    say "END $name rc=$rc ${dt}s $note"
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$dt" "$note" >>"$STEPS"
    manifest
    pack
    return 0
}

# ---------------------------------------------------------------- environment
step env 30 "nvidia-smi; echo; $PY -c 'import sys, torch; print(\"python\", sys.version.split()[0]); \
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"gpu\", torch.cuda.is_available() \
and torch.cuda.get_device_name()); import triton; print(\"triton\", triton.__version__)'; \
echo commit \${FASTSIREN_COMMIT:-\$(git rev-parse --short=10 HEAD 2>/dev/null)}; nvcc --version | tail -n 2"
cp "$WORK/logs/env.log" "$OUT/env.txt" 2>/dev/null

# ---------------------------------------------------------------- packages
WHEELS=""
for d in wheels .whl; do [ -d "$d" ] && ls "$d"/*.whl >/dev/null 2>&1 && WHEELS="$WHEELS $d"; done
# The device README's recipe: wheels into /tmp/site, on PYTHONPATH for every later step
# (benchmarks/fetch_gpu_wheels.sh fills ./.whl here, where PyPI is reachable).
SITE=${GPU_CHECK_SITE:-/tmp/site}
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "$WHEELS" ]; then
    step wheels 90 "$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
--target $SITE $(for d in $WHEELS; do ls "$d"/*.whl; done | tr '\n' ' ')"
else
    say "SKIP wheels: no ./wheels or ./.whl folder"
    printf '%s\tskipped\t0\t%s\n' wheels "no ./wheels or ./.whl folder" >>"$STEPS"
fi
# An editable install maps kernels/ and benchmarks/ to fastsiren.kernels / .benchmarks; where
# the interpreter's site-packages cannot take it, links in this copy of the tree do the same.
step install 90 "$PY -m pip install -q --no-index --disable-pip-version-check --no-deps --no-build-isolation -e . || \
{ echo 'editable install failed: linking fastsiren/kernels and fastsiren/benchmarks instead'; \
ln -sfn ../kernels fastsiren/kernels && ln -sfn ../benchmarks fastsiren/benchmarks; }; \
$PY -c 'import fastsiren, fastsiren.kernels, fastsiren.benchmarks; print(fastsiren.available_backends(\"cuda\"))'"

if [ "${FASTSIREN_BUILD_CUDA:-0}" = "1" ]; then
    step cuda 200 "FASTSIREN_BUILD_CUDA=1 $PY -m pip install --no-index --disable-pip-version-check --no-deps \
--no-build-isolation -e . && \
$PY -c 'from fastsiren.backends import unavailable_reason as u; r = u(\"cuda\", \"cuda\"); \
print(r or \"cuda backend loaded\"); raise SystemExit(0 if r is None else 1)'"
else
    step cuda 200 "$PY -c 'from fastsiren.backends import unavailable_reason as u; r = u(\"cuda\", \"cuda\"); \
print(r or \"cuda backend loaded (JIT)\"); raise SystemExit(0 if r is None else 1)'"
fi

# ---------------------------------------------------------------- tests and benchmarks
# The GPU tier compiles about 100 Triton specializations, one at a time
# (benchmarks/results/compile-sm90-gpu-tier.json lists them): pytest-xdist (in the GPU
# image) spreads them over 8 workers sharing triton's cache.
XDIST=$($PY -c 'import xdist' 2>/dev/null && echo "-n ${GPU_CHECK_WORKERS:-8}")
if [ -n "${GPU_CHECK_FOCUS:-}" ]; then
    FOCUS="-m gpu tests -p no:cacheprovider -p no:xdist -rs -k '$GPU_CHECK_FOCUS'"
    step pytest-focus 120 "$PY -X faulthandler -m pytest -q $FOCUS; rc=\$?; if [ \$rc -gt 1 ] && \
command -v cuda-gdb >/dev/null; then echo '--- native backtrace (cuda-gdb)'; cuda-gdb -batch -ex run -ex bt \
--args $PY -m pytest -q $FOCUS 2>&1 | grep -v '^\[New Thread' | tail -n 80; fi; exit \$rc"
fi
# The GPU tier, and the float64 kernel checks at odd shapes (marker kernels: widths 24 and 40, D 1-3,
# both last layers), which the CPU tier runs under the interpreter, here on compiled kernels.
# -v: a step killed at its limit still shows which tests passed or failed (-q leaves only dots)
step pytest "${GPU_CHECK_PYTEST_LIMIT:-210}" "$PY -m pytest -v -m 'gpu or kernels' tests -p no:cacheprovider -rsfE $XDIST"
cp "$WORK/logs/pytest.log" "$OUT/pytest_gpu.txt" 2>/dev/null

PROVIDER_ARGS=""
for p in ${BENCH_PROVIDERS:-all}; do PROVIDER_ARGS="$PROVIDER_ARGS --provider $p"; done
# Most important first: a timeout still leaves the finished suites' rows in results/.
SUITE_ARGS=""
for s in ${BENCH_SUITES:-poisson-laplacian poisson-grad fit render layer wave}; do SUITE_ARGS="$SUITE_ARGS --suite $s"; done
step bench "${GPU_CHECK_BENCH_LIMIT:-200}" "$PY -m benchmarks --size default --out $WORK/results $PROVIDER_ARGS ${BENCH_ARGS:-} $SUITE_ARGS"
cp "$WORK/logs/bench.log" "$OUT/bench.txt" 2>/dev/null
# An optional second pass with its own providers (e.g. two variants of one backend on the training
# suites, without timing every provider again): BENCH2_SUITES and BENCH2_PROVIDERS.
if [ -n "${BENCH2_SUITES:-}" ]; then
    B2=""
    for p in ${BENCH2_PROVIDERS:-all}; do B2="$B2 --provider $p"; done
    for s in $BENCH2_SUITES; do B2="$B2 --suite $s"; done
    step bench2 "${GPU_CHECK_BENCH2_LIMIT:-120}" "$PY -m benchmarks --size default --out $WORK/results $B2 ${BENCH_ARGS:-}"
    cat "$WORK/logs/bench2.log" >>"$OUT/bench.txt" 2>/dev/null
fi

# What the wave suite's Laplacian weights cost each backend (the same step with the plain Laplacian).
step weighted 60 "$PY -m benchmarks.weighted_cost --out $WORK/results/weighted-cost-gpu.json"

# Where each provider's step time goes (kernel by kernel), then the Triton GEMM tiles swept.
# The layer suite last: its triton forward+backward ran at 0.37x of reference on the H200
# (d23161d, slower than triton+ieee), which no profile has explained yet.
step profile 60 "$PY -m benchmarks.profile_step --out $WORK/results/profile-gpu.json \
${PROFILE_ARGS:---suite poisson-laplacian --suite poisson-grad --suite fit --suite render --suite layer}"
TUNE_LIMIT=${GPU_CHECK_TUNE_LIMIT:-150}
TUNE_BUDGET=$(($(left) < TUNE_LIMIT ? $(left) : TUNE_LIMIT))
# the sweep stops starting configurations 20 s before its step's limit (results kept per suite);
# its parallel compile phase (--warm-limit, 90 s by default) gets at most half of that, or the
# step is killed before the first suite's results are written
TUNE_SWEEP=$((TUNE_BUDGET > 40 ? TUNE_BUDGET - 20 : 20))
step tune "$TUNE_LIMIT" "$PY -m benchmarks.triton_tune --out $WORK/results/triton-tune-gpu.json \
--budget $TUNE_SWEEP --warm-limit $((TUNE_SWEEP / 2)) ${TUNE_ARGS:-}"

# The Triton precisions' accuracy against float64 and their render times (pick the training and
# inference defaults; see kernels/config.py).
# It writes its document only at the end (66 to 99 s on an H200): not started without that time.
if [ "$(left)" -lt "${GPU_CHECK_PRECISION_MIN:-100}" ]; then
    say "SKIP precision: only $(left)s left (needs ${GPU_CHECK_PRECISION_MIN:-100}s)"
    printf '%s\tskipped\t0\t%s\n' precision "only $(left)s left (needs ${GPU_CHECK_PRECISION_MIN:-100}s)" >>"$STEPS"
else
    step precision 150 "$PY -m benchmarks.precision --out $WORK/results/precision-gpu.json"
fi

SCALING_ARGS=""
for p in ${SCALING_PROVIDERS:-${BENCH_PROVIDERS:-all}}; do SCALING_ARGS="$SCALING_ARGS --provider $p"; done
for s in ${SCALING_SUITES:-poisson-laplacian fit}; do SCALING_ARGS="$SCALING_ARGS --suite $s"; done
for s in ${SCALING_SWEEPS:-}; do SCALING_ARGS="$SCALING_ARGS --sweep $s"; done
[ -n "${SCALING_MAX_POINTS:-}" ] && SCALING_ARGS="$SCALING_ARGS --max-points $SCALING_MAX_POINTS"
step scaling "${GPU_CHECK_SCALING_LIMIT:-100}" "$PY -m benchmarks --scaling \
--repeats ${SCALING_REPEATS:-5} --out $WORK/results --figures $WORK/figures $SCALING_ARGS ${BENCH_ARGS:-}"

# ---------------------------------------------------------------- paper-profile experiments
# `fastsiren experiments` (one place for their command lines) runs each and publishes its
# results file and captioned figures into work/docs/{results,figures}, the layout of this
# repo's docs/: importing them is one copy (see the header).
DOCS="$WORK/docs"  # made with work/ at the start
PROFILE=${GPU_CHECK_PROFILE:-paper}
EXP_ARGS="--profile $PROFILE --runs $WORK/runs --results-dir $DOCS/results --figures-dir $DOCS/figures --no-progress"
# the names are listed only when experiments may run (GPU_CHECK_TASKS unset, or naming some)
KNOWN=" "
if [ -n "${GPU_CHECK_TASKS-all}" ] && [ "$(left)" -ge 60 ]; then
    KNOWN=" $(timeout -k 5 30 $PY -m fastsiren.cli experiments --list 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ') "
fi
for task in ${GPU_CHECK_TASKS-$KNOWN}; do
    if [ "$(left)" -lt 60 ]; then  # first: KNOWN is not listed with less than that left
        printf '%s\tskipped\t0\t%s\n' "task-$task" "less than 60s left" >>"$STEPS"
        continue
    fi
    case $KNOWN in *" $task "*) ;; *)
        printf '%s\tskipped\t0\t%s\n' "task-$task" "not a name of fastsiren experiments --list" >>"$STEPS"
        continue ;;
    esac
    step "task-$task" "${GPU_CHECK_TASK_LIMIT:-240}" "$PY -m fastsiren.cli experiments --only $task $EXP_ARGS"
done

# ---------------------------------------------------------------- manifest and bundle
timeout -k 5 "$(closing)" $PY -m benchmarks.readme_tables --results "$WORK/results" --print >"$OUT/bench.md" 2>>"$LOG" ||
    echo "readme_tables failed" >>"$LOG"
manifest "$(closing)" final
pack && [ -z "${GPU_CHECK_WORK:-}" ] && rm -rf "$WORKROOT"
say "done in $(($(date +%s) - START))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit 0

#!/usr/bin/env bash
# Run CPython's asyncio suites (the kit's hookloop.testing.conformance) against hookloop on CPython 3.14,
# inside the Debian sid chroot made by py314-chroot.sh (default /tmp/sid).
#
#   bash tests/conformance/run_py314.sh [PYTEST ARGS...]
#   HOOKLOOP_CONFORMANCE_BASELINE=1 bash tests/conformance/run_py314.sh     # + asyncio's loop
#   bash tests/conformance/run_py314.sh --hookloop-backend=epoll -x
#   bash tests/conformance/run_py314.sh -n 4 --dist loadscope          # pytest-xdist workers
#   HOOKLOOP_CONFORMANCE_BASELINE=only bash tests/conformance/run_py314.sh -k "TestStreams_"
#   bash tests/conformance/run_py314.sh --all -n 3      # every test of the repository, not just these
#
# Steps: build wheels of core, the poller backends and the tls/subprocess plugins (when present)
# on the host (pip wheel --no-deps; they are pure Python), copy them into the chroot, install
# them into /opt/v314 with --no-index --force-reinstall --no-deps (pluggy and pytest are already
# there), copy the workspace pytest config into /opt/hl, run pytest --pyargs hookloop.testing.conformance there
# and print its summary line.  Exits with pytest's status.
#
# Environment: PY314_ROOT (chroot, default /tmp/sid), PY314_CHROOT_TOOL (the script that makes
# the chroot, default /work/shared/tools/py314-chroot.sh; run when the chroot is missing or its
# mounts are gone), HOST_PYTHON (python with pip used to build wheels; default .venv's, else
# python3), HOOKLOOP_BACKEND and HOOKLOOP_CONFORMANCE_BASELINE (passed through).
set -euo pipefail

ALL=0
if [ "${1:-}" = "--all" ]; then ALL=1; shift; fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
R=${PY314_ROOT:-/tmp/sid}
TOOL=${PY314_CHROOT_TOOL:-/work/shared/tools/py314-chroot.sh}
PY=/opt/v314/bin/python
# The core, every poller backend, and the TLS and subprocess plugins once they exist (their
# tests are deselected while they are missing).  Not the bench plugin: it is not needed here.
DISTS=("$REPO/core")
EXTRA_DISTS=("$REPO/plugins/tls" "$REPO/plugins/subprocess")
# --all: the bench plugin too, for its own tests.
if [ "$ALL" = 1 ]; then EXTRA_DISTS+=("$REPO/plugins/bench"); fi
for d in "$REPO"/plugins/*_backend "${EXTRA_DISTS[@]}"; do
  if [ -f "$d/pyproject.toml" ]; then DISTS+=("$d"); fi
done

if [ -z "${HOST_PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then HOST_PYTHON=$REPO/.venv/bin/python; else HOST_PYTHON=python3; fi
fi

if [ ! -x "$R$PY" ] || ! mountpoint -q "$R/proc"; then
  [ -f "$TOOL" ] || { echo "no 3.14 chroot at $R and no $TOOL to make one" >&2; exit 2; }
  echo "== preparing the 3.14 chroot at $R (first time: minutes)" >&2
  bash "$TOOL" "$R" >&2
fi

echo "== building wheels" >&2
WHEELS=$(mktemp -d /tmp/hookloop-wheels.XXXXXX)
trap 'rm -rf "$WHEELS"' EXIT
# Build from clean copies: setuptools writes build/ and *.egg-info into the tree it builds, and a
# stale build/lib would leak deleted modules into the wheel.
for d in "${DISTS[@]}"; do
  src="$WHEELS/src/$(basename "$d")"
  mkdir -p "$src"
  (cd "$d" && tar --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ -cf - .) \
    | tar -C "$src" -xf -
  "$HOST_PYTHON" -m pip wheel -q --no-deps -w "$WHEELS" "$src" >&2
done

# pytest-xdist and execnet, for `-n 4 --dist loadscope` (about 3 min instead of 10+), and
# pytest-timeout, which the workspace config sets up (a hung test fails): fetched
# on the host, where pip can reach the registry; the chroot installs with --no-index.
"$HOST_PYTHON" -m pip download -q --no-deps -d "$WHEELS/extra" pytest-xdist execnet pytest-timeout >&2
# hookloop-uring's binding (an abi3 wheel; pinned in plugins/uring_backend/pyproject.toml).
if [ -f "$REPO/plugins/uring_backend/pyproject.toml" ]; then
  "$HOST_PYTHON" -m pip download -q --no-deps -d "$WHEELS/extra" --only-binary=:all: \
    --python-version 3.14 --implementation cp --platform manylinux_2_17_x86_64 \
    "$(grep -o 'liburing==[0-9.]*' "$REPO/plugins/uring_backend/pyproject.toml")" >&2
fi
if [ "$ALL" = 1 ]; then
  # What the repository's own tests need besides: mypy (tests/test_types.py, compiled: the
  # 3.14 wheels) and a setuptools that builds wheels (tests/test_out_of_tree_backend.py).
  "$HOST_PYTHON" -m pip download -q -d "$WHEELS/extra" --only-binary=:all: --python-version 3.14 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any mypy "setuptools>=77" >&2
fi

echo "== installing into $R$PY" >&2
rm -rf "$R/opt/hl-wheels"
mkdir -p "$R/opt/hl-wheels/extra"
cp "$WHEELS"/*.whl "$R/opt/hl-wheels/"
cp "$WHEELS"/extra/*.whl "$R/opt/hl-wheels/extra/"
chroot "$R" sh -c "$PY -m pip install -q --no-index --force-reinstall --no-deps /opt/hl-wheels/*.whl" >&2
chroot "$R" sh -c "$PY -m pip install -q --no-index --no-deps /opt/hl-wheels/extra/*.whl" >&2

echo "== copying tests" >&2
rm -rf "$R/opt/hl"
mkdir -p "$R/opt/hl"
if [ "$ALL" = 1 ]; then
  # The whole work tree but what is made or installed from it; pytest finds the testpaths of
  # the workspace config there (the installed wheels are what gets imported).
  # The sources come too (test_source_rules scans them), but the wheels are what gets
  # imported: the contract kit is collected from its installed package (--pyargs), as a
  # third-party backend's author runs it, not from core/src (pytest would refuse the two
  # files of one module name).
  (cd "$REPO" && tar --exclude=./.venv --exclude=./.git --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ -cf - .) | tar -C "$R/opt/hl" -xf -
  # tests/integration/ is left out: its frameworks, database clients and the PostgreSQL and
  # Redis servers it starts are not in the chroot.
  TESTS=(--pyargs hookloop.testing.contract hookloop.testing.conformance tests
         --ignore=tests/integration)
  for d in "$REPO"/plugins/*/tests; do TESTS+=("plugins/$(basename "$(dirname "$d")")/tests"); done
else
  # The workspace's pytest settings (xfail_strict, filterwarnings, -ra) apply there too; the
  # suites are the installed kit's, as a third-party backend's author runs them.
  cp "$REPO/pyproject.toml" "$R/opt/hl/pyproject.toml"
  TESTS=(--pyargs hookloop.testing.conformance)
fi

echo "== pytest on $(chroot "$R" $PY -c 'import sys; print(sys.version.split()[0])')" >&2
ENVS=()
for v in HOOKLOOP_BACKEND HOOKLOOP_CONFORMANCE_BASELINE; do
  if [ -n "${!v:-}" ]; then ENVS+=("$v=${!v}"); fi
done
LOG=$(mktemp /tmp/hookloop-py314.XXXXXX.log)
set +e
chroot "$R" env "${ENVS[@]}" sh -c 'cd /opt/hl && exec "$0" -m pytest "$@"' "$PY" "${TESTS[@]}" "$@" \
  2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo "py314 conformance summary: $(grep -E '^=*.*\b(passed|failed|error|errors|skipped|deselected|no tests ran)\b' "$LOG" | tail -n 1 | sed 's/^=* *//; s/ *=*$//')"
rm -f "$LOG"
exit "$status"

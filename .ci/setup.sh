#!/usr/bin/env bash
# Install what a fresh machine lacks, then make .venv with mfgpde installed editable.
# Where petsc4py, mpi4py, h5py, scipy and matplotlib already import (a cluster module,
# conda), they are used as they are and no system package is installed.  sympy is for
# the tests only (the Stackelberg Riccati derivation is re-derived symbolically there).
set -euo pipefail
cd "$(dirname "$0")/.."
SYSPY=${MFGPDE_PYTHON:-}
need_import='import petsc4py, mpi4py, h5py, numpy, scipy, matplotlib, pytest'

petsc_path() {  # Debian's petsc4py lives outside sys.path unless petsc-dev is installed
    ls -d /usr/lib/petscdir/petsc3*/*-real/lib/python3/dist-packages 2>/dev/null | sort -V | tail -n 1
}
imports_ok() {  # $1: a python interpreter
    PYTHONPATH="$(petsc_path)${PYTHONPATH:+:$PYTHONPATH}" "$1" -c "$need_import" 2>/dev/null \
        && command -v mpirun >/dev/null
}

if [ -z "$SYSPY" ]; then
    for cand in "$(command -v python3 || true)" /usr/bin/python3; do
        if [ -n "$cand" ] && imports_ok "$cand"; then SYSPY=$cand; break; fi
    done
fi
if [ -z "$SYSPY" ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup: petsc4py/mpi4py/h5py not importable and no apt-get; load your site's modules and set MFGPDE_PYTHON" >&2
        exit 2
    fi
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        python3-petsc4py python3-petsc4py-real python3-mpi4py python3-h5py-mpi \
        python3-numpy python3-scipy python3-matplotlib python3-pytest python3-sympy \
        python3-venv python3-pip openmpi-bin >/dev/null
    SYSPY=/usr/bin/python3
fi

rm -rf .venv
"$SYSPY" -m venv --system-site-packages .venv
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pp=$(petsc_path)
if [ -n "$pp" ]; then echo "$pp" > "$site/debian-petsc4py.pth"; fi
# No dependency resolution: the scientific stack comes from the system (see README).
.venv/bin/python -m pip install -q --no-build-isolation --no-deps -e .
.venv/bin/python -c "$need_import; import mfgpde" \
    || { echo "setup: .venv cannot import the scientific stack" >&2; exit 2; }
.venv/bin/python -c 'import sympy' 2>/dev/null \
    || echo "setup: note: sympy is missing; the symbolic Riccati derivation test will be skipped" >&2
echo "setup: .venv ready ($SYSPY)"

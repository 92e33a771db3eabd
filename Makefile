# mfgpde: commands for a fresh Debian/Ubuntu machine.
#   make run        set up what is missing, then run the default 1-D LQ MFG study under mpirun -n 2
#   make test       set up what is missing, then run the whole test suite (serial and MPI); fails
#                   unless the MPI tests ran and passed
#   make test-fast  the same set-up, then the tests not marked slow or mpi (seconds; stops at the
#                   first failure)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
NP ?= 2
OUT ?= out
# mpirun as root inside containers and with more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
export OMP_NUM_THREADS := 1
export MPLBACKEND := Agg

.PHONY: run test test-fast setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py .ci/setup.sh
	bash .ci/setup.sh
	touch $@

run: setup
	mkdir -p $(OUT)
	timeout 1200 mpirun -n $(NP) $(VENV)/bin/mfgpde run runs/lq_mfg_1d.toml -o $(OUT)/lq_mfg_1d.h5
	@echo "results: $(OUT)/lq_mfg_1d.h5 and $(OUT)/lq_mfg_1d_*.png ($(VENV)/bin/mfgpde info $(OUT)/lq_mfg_1d.h5)"

test: setup
	$(PY) -m pytest -q --require-mpi tests

test-fast: setup
	$(PY) -m pytest -q -x -m "not slow and not mpi" tests

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info

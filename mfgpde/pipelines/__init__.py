"""The pipelines, one per game family: from a resolved configuration to a solved, checked
and written study.  Each module's `run(cfg, out, verbose=True, restart=None)` returns
(solution, written path), `solution.converged` and `solution.status` saying how the solve
ended; `common` holds what they share (the model built and checked, paths refused before
any work, the output or its unconverged sibling, the root attributes)."""

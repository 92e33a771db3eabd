"""Rewrite the generated key tables of docs/run-files.md from mfgpde/schema.py:

    .venv/bin/python tools/write_run_files.py
"""
import pathlib

from mfgpde import schema

schema.rewrite(pathlib.Path(__file__).resolve().parents[1] / "docs" / "run-files.md")

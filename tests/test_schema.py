"""The run-file schema is the one declaration: docs/run-files.md shows it, and the
validation accepts exactly its keys and fills in exactly its defaults."""
import copy
import tomllib

import pytest

from conftest import ROOT, RUNS
from mfgpde import config, schema

PAGE = ROOT / "docs" / "run-files.md"
EXAMPLE = {"mfg": "lq_mfg_2d.toml", "leader_follower": "stackelberg_lq.toml", "discrete": "infection_vaccination.toml",
           "incentive": "incentive_major_minor.toml"}


def test_the_page_shows_the_schema():
    text = PAGE.read_text()
    assert schema.BEGIN in text and schema.END in text
    generated = schema.BEGIN + text.split(schema.BEGIN, 1)[1].split(schema.END, 1)[0] + schema.END
    assert generated == schema.markdown(), "docs/run-files.md is stale: run tools/write_run_files.py"


@pytest.mark.parametrize("family", list(schema.SCHEMA))
def test_validation_follows_the_schema(family):
    data = tomllib.loads((RUNS / EXAMPLE[family]).read_text())
    cfg = config.validate(copy.deepcopy(data))
    assert set(cfg) == set(schema.SCHEMA[family])
    for section, keys in schema.SCHEMA[family].items():
        if section in schema.OPEN:
            continue
        for key in keys:  # every declared key is there, its default where the run file is silent
            assert key.name in cfg[section], (section, key.name)
            if key.name not in data.get(section, {}) and key.default is not schema.REQUIRED:
                normalised = key.name in ("axes", "boundary", "n")  # the validator spells these out per axis
                assert normalised or cfg[section][key.name] == key.default
        bad = copy.deepcopy(data)
        bad.setdefault(section, {})["not_a_key"] = 1
        with pytest.raises(config.ConfigError, match=f"{section}.not_a_key: unknown key"):
            config.validate(bad)
        for key in schema.required(family)[section]:
            bad = copy.deepcopy(data)
            del bad[section][key]
            with pytest.raises(config.ConfigError, match=f"{section}.{key}: missing"):
                config.validate(bad)

"""Settings have one home: the defaults of deltagdml.settings agree with the config schema's
``default:`` values, with ``config.yaml`` and with the command line's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deltagdml.cli import build_parser
from deltagdml.data.calculators import TBLITE_DEFAULTS
from deltagdml.errors import ConfigError
from deltagdml.settings import (
    ActiveLearningSettings,
    AnalysisSettings,
    DynamicsSettings,
    SamplingSettings,
    TrainingSettings,
    UncertaintySettings,
    defaults,
)
from deltagdml.workflow.config import dynamics_settings, sampling_settings, training_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SECTIONS = {
    "sampling": SamplingSettings,
    "training": TrainingSettings,
    "dynamics": DynamicsSettings,
    "analysis": AnalysisSettings,
    "uncertainty": UncertaintySettings,
    "active_learning": ActiveLearningSettings,
}


def resolve(node: dict) -> dict:
    """A schema node with ``$ref`` and ``allOf`` folded in."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**SCHEMA["definitions"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    for part in node.get("allOf", []):
        node = {**resolve(part), **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def schema_defaults(node: dict, where: str) -> list[tuple[str, object]]:
    """(key path, default) of every property below ``node`` that states a default."""
    out = []
    for key, sub in (resolve(node).get("properties") or {}).items():
        sub = resolve(sub)
        if "default" in sub and sub["default"] != {}:
            out.append((f"{where}.{key}", sub["default"]))
        out += schema_defaults(sub, f"{where}.{key}")
    return out


def lookup(tree: dict, path: str) -> object:
    for key in path.split(".")[1:]:
        tree = tree[key]
    return tree


def leaves(tree: dict, where: str) -> list[tuple[str, object]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += leaves(value, f"{where}.{key}")
        else:
            out.append((f"{where}.{key}", value))
    return out


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_schema_defaults_are_the_settings_defaults(section):
    expected = defaults(SECTIONS[section])
    stated = schema_defaults(SCHEMA["properties"][section], section)
    for path, value in stated:
        assert lookup(expected, path) == value, f"schema default of {path}"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_config_yaml_states_the_settings_defaults(section):
    """config.yaml writes the defaults out for users to edit; it must not drift from them."""
    expected = defaults(SECTIONS[section])
    for path, value in leaves(CONFIG[section], section):
        assert lookup(expected, path) == value, f"config.yaml {path} = {value!r}"


def test_every_settings_key_is_in_the_schema():
    """A settings field the schema does not know could never be set from a config."""
    for section, cls in SECTIONS.items():
        allowed = resolve(SCHEMA["properties"][section]).get("properties") or {}
        assert set(defaults(cls)) <= set(allowed), section


def test_reference_default_matches_the_calculator_defaults():
    default = SCHEMA["properties"]["reference"]["default"]
    assert default == {"name": "tblite", "method": TBLITE_DEFAULTS["method"]}
    assert CONFIG["reference"] == default


def test_cli_defaults_come_from_the_settings():
    parser = build_parser()
    train = parser.parse_args(["train", "data.npz", "-o", "model.npz"])
    t = TrainingSettings()
    assert (train.n_train, train.n_valid, train.lam, train.patience, train.perms) == (
        t.n_train,
        t.n_valid,
        t.lam,
        t.patience,
        t.symmetries,
    )
    assert tuple(train.sigmas) == t.sigmas
    md = parser.parse_args(["md", "model.npz", "start.xyz", "-o", "out.xyz"])
    d = DynamicsSettings()
    assert (md.timestep, md.friction, md.stride) == (d.timestep_fs, d.friction_per_fs, d.stride)


def test_resolved_settings_are_frozen_and_layered():
    config = {
        "sampling": {"n_frames": 40, "restraint": {"k": 2.0}},
        "training": {"n_train": 10, "parts": {"binding": {"n_train": 5, "sigmas": [3]}}},
        "systems": {"wb": {"preset": "water_benzene", "dynamics": {"duration_ps": 2.0}}},
    }
    s = sampling_settings(config, "wb")
    assert s.restraint.k == 2.0 and s.restraint.enabled  # merged over the defaults
    assert training_settings(config, "wb", "binding").sigmas == (3,)
    assert training_settings(config, "wb", "fragment_0").n_train == 10
    d = dynamics_settings(config, "wb")
    assert d.n_steps == 4000 and d.analysis.cv2 == {"kind": "min_distance"}
    with pytest.raises(AttributeError):
        s.n_frames = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="temperatures_K"):
        sampling_settings({**config, "sampling": {"temperatures_K": []}}, "wb")


def test_system_label_is_the_users_then_the_presets_then_the_key():
    """Figures name a system by its ``label``, else its preset's, else its key with spaces;
    the schema refuses an empty label."""
    from snakemake.utils import validate

    from deltagdml.workflow.config import system_labels

    systems = {
        "na_benzene": {"preset": "na_benzene"},
        "ion": {"preset": "na_benzene", "label": "Na⁺ over C₆H₆"},
        "my_dimer": {"structure": "Methane_dimer", "fragments": [[0, 1, 2, 3, 4], "5-9"]},
    }
    assert system_labels({"systems": systems}, systems) == {
        "na_benzene": "Na⁺–benzene",
        "ion": "Na⁺ over C₆H₆",
        "my_dimer": "my dimer",
    }
    schema = str(ROOT / "workflow/schemas/config.schema.yaml")
    validate({"systems": systems}, schema)
    with pytest.raises(Exception, match="label"):
        validate({"systems": {"ion": {"preset": "na_benzene", "label": ""}}}, schema)

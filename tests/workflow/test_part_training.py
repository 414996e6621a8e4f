"""Per-part training settings (``training.parts``): splits, config checks and training."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import copy  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from deltagdml.data.splits import (  # noqa: E402
    load_splits,
    make_splits,
    save_splits,
    train_indices,
    train_valid_test_split,  # noqa: E402
)
from deltagdml.errors import ConfigError, DatasetError  # noqa: E402
from deltagdml.gdml.dataset import Dataset, save_dataset  # noqa: E402
from deltagdml.gdml.model_io import load_model  # noqa: E402
from deltagdml.workflow.checks import check_config
from deltagdml.workflow.config import (  # noqa: E402
    part_overrides,
    train_pool_size,
    training_settings,
)
from deltagdml.workflow.steps.data import split  # noqa: E402
from deltagdml.workflow.steps.train import train_model  # noqa: E402


def test_without_part_sizes_the_splits_are_unchanged():
    E = np.random.default_rng(1).normal(size=300)
    plain = train_valid_test_split(E, 60, 20, 50, seed=3)
    same = make_splits(E, 60, 20, 50, seed=3, part_sizes={"full": 60, "binding": 60})
    assert set(same) == {"train", "valid", "test"}
    for key in plain:
        np.testing.assert_array_equal(plain[key], same[key])


def test_smaller_parts_get_seeded_stratified_subsets_of_the_pool(tmp_path):
    rng = np.random.default_rng(0)
    E = np.concatenate([rng.normal(0, 1, 240), rng.normal(8, 1, 60)])  # a rare upper mode
    sizes = {"full": 40, "fragment_0": 120, "binding": 40}
    a = make_splits(E, 120, 30, 60, seed=5, part_sizes=sizes)
    assert set(a) == {"train", "valid", "test", "train_full", "train_binding"}
    for part, n in sizes.items():
        idx = train_indices(a, part)
        assert idx.size == n and np.isin(idx, a["train"]).all()
        # stratified by energy: the rare mode keeps roughly its share (1/5)
        assert abs(np.mean(E[idx] > 4) - np.mean(E[a["train"]] > 4)) < 0.1
    assert not np.array_equal(a["train_full"], a["train_binding"])  # own seed per part
    b = make_splits(E, 120, 30, 60, seed=5, part_sizes=sizes)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    save_splits(a, tmp_path / "s.npz", n_geometries=300)
    loaded = load_splits(tmp_path / "s.npz", n_geometries=300)
    assert set(loaded) == set(a)
    for key in a:
        np.testing.assert_array_equal(loaded[key], a[key])


def test_part_subsets_are_checked(tmp_path):
    E = np.arange(100.0)
    with pytest.raises(ConfigError, match="n_train of 'full' must lie in \\[1, 50\\]"):
        make_splits(E, 50, 10, 10, seed=0, part_sizes={"full": 60})
    np.savez(
        tmp_path / "bad.npz",
        idxs_train=[0, 1, 2],
        idxs_valid=[3],
        idxs_test=[4],
        idxs_train_full=[0, 3],
    )
    with pytest.raises(DatasetError, match="'train_full' is not a subset of the training"):
        load_splits(tmp_path / "bad.npz")


def water_benzene_config(**parts) -> dict:
    return {
        "seed": 0,
        "results": "results",
        "sampling": {"n_frames": 60},
        "training": {"n_train": 10, "n_valid": 8, "n_test": 10, "parts": parts},
        "systems": {"water_benzene": {"preset": "water_benzene"}},
    }


def test_part_settings_merge_and_are_checked():
    config = water_benzene_config(fragment_0={"n_train": 30, "symmetries": "none"})
    assert training_settings(config, "water_benzene", "fragment_0").n_train == 30
    assert training_settings(config, "water_benzene", "fragment_0").symmetries == "none"
    assert training_settings(config, "water_benzene", "full").symmetries == "auto"
    assert set(part_overrides(config, "water_benzene")) == {"fragment_0"}
    assert train_pool_size(config, "water_benzene") == 30
    check_config(config)
    # the largest part sets the training pool, which must fit in the sampled frames
    too_big = water_benzene_config(binding={"n_train": 50})
    with pytest.raises(ConfigError, match="= 68 exceeds the 60 sampled frames"):
        check_config(too_big)
    with pytest.raises(ConfigError, match=r"training.parts names \['fragment_7'\]"):
        check_config(water_benzene_config(fragment_7={"n_train": 5}))


def test_schema_refuses_bad_part_entries():
    from snakemake.utils import validate

    schema = "workflow/schemas/config.schema.yaml"
    base = yaml.safe_load(open("config.yaml"))
    for parts, message in (
        ({"fragment_x": {"n_train": 5}}, "fragment_x"),
        ({"binding": {"n_valid": 5}}, "n_valid"),
        ({"binding": {"n_train": 0}}, "minimum"),
        ({"binding": {"solver": "magic"}}, "magic"),
    ):
        config = copy.deepcopy(base)
        config["training"]["parts"] = parts
        with pytest.raises(Exception, match=message):
            validate(config, schema)
    config = copy.deepcopy(base)
    config["training"]["parts"] = {"fragment_0": {"n_train": 150, "symmetries": "none"}}
    validate(config, schema)


def pair_dataset(n: int) -> Dataset:
    """Water on benzene (preset order) with smooth synthetic labels."""
    from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config

    system = system_from_config("water_benzene", DEFAULT_SYSTEMS["water_benzene"])
    rng = np.random.default_rng(0)
    R = system.atoms.positions + rng.normal(0, 0.03, (n, system.n_atoms, 3))
    E, F = pair_labels(R)
    return Dataset(R=R, z=system.z, E=E, F=F, name="synthetic", theory="1/r")


def pair_labels(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energies and forces of the 1/r pair sum over geometries R (M, N, 3)."""
    d = np.linalg.norm(R[:, :, None] - R[:, None], axis=-1) + np.eye(R.shape[1])
    diff = R[:, :, None] - R[:, None]
    return (1.0 / d).sum(axis=(1, 2)) / 2, (diff / d[..., None] ** 3).sum(axis=2)  # F = −∇E


def test_train_uses_the_parts_own_size_and_symmetries(tmp_path):
    ds = pair_dataset(60)
    config = water_benzene_config(
        full={"n_train": 6, "symmetries": "none", "sigmas": [10]},
        binding={"n_train": 20, "symmetries": "auto", "sigmas": [10]},
    )
    save_dataset(ds, tmp_path / "full.npz")
    full, splits_path = str(tmp_path / "full.npz"), str(tmp_path / "s.npz")
    split(config=config, system="water_benzene", full=full, splits=splits_path)
    splits = load_splits(tmp_path / "s.npz", 60)
    assert splits["train"].size == 20 and splits["train_full"].size == 6
    for part, n, n_perms in (("full", 6, 1), ("binding", 20, None)):
        out = {k: str(tmp_path / f"{part}_{k}") for k in ("model.npz", "s.csv", "t.csv")}
        train_model(
            config=config,
            system="water_benzene",
            part=part,
            dataset=full,
            splits=splits_path,
            model=out["model.npz"],
            scores=out["s.csv"],
            timing=out["t.csv"],
        )
        model = load_model(out["model.npz"])
        assert model.X_train_.shape[0] == n
        if n_perms is not None:
            assert len(model.perms_) == n_perms
        else:  # benzene's and water's automorphisms
            assert len(model.perms_) > 1
        with np.load(out["model.npz"]) as stored:
            np.testing.assert_array_equal(stored["idxs_train"], train_indices(splits, part))


def test_a_subset_search_marks_only_the_refit_as_selected(tmp_path):
    ds = pair_dataset(60)
    config = water_benzene_config(binding={"n_train": 20, "symmetries": "none"})
    config["training"].update(sigmas=[2, 5, 10], sigma_subset=10)
    save_dataset(ds, tmp_path / "full.npz")
    full, splits_path = str(tmp_path / "full.npz"), str(tmp_path / "s.npz")
    split(config=config, system="water_benzene", full=full, splits=splits_path)
    out = {k: str(tmp_path / f) for k, f in (("model", "m.npz"), ("scores", "s.csv"))}
    train_model(
        config=config,
        system="water_benzene",
        part="binding",
        dataset=full,
        splits=splits_path,
        timing=str(tmp_path / "t.csv"),
        **out,
    )
    scores = pd.read_csv(out["scores"])
    assert scores.loc[scores["selected"], "stage"].tolist() == ["refit"]
    assert scores["stage"].iloc[:-1].str.startswith("subset_").all()
    assert load_model(out["model"]).X_train_.shape[0] == 20


def test_cards_and_summary_report_each_parts_force_r2(tmp_path):
    """Water–benzene with learnable fragments (1/r pair forces) and a binding residual of
    weak random forces: the evaluation, the cards and summary.md give each part's force R² on
    validation and test, and summary.md warns that the binding model explains nothing."""
    from deltagdml.data.delta import build_delta_datasets, write_delta_datasets
    from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config
    from deltagdml.workflow.steps.evaluate import LOW_R2, evaluate, model_card, summarise

    system = system_from_config("water_benzene", DEFAULT_SYSTEMS["water_benzene"])
    ds, rng = pair_dataset(60), np.random.default_rng(1)
    labels = {"R": ds.R, "z": ds.z, "frame_index": np.arange(60), "n_fragments": 2}
    # the binding residual: random forces, too weak for the energy–force check to judge
    # (their path integral between neighbouring frames stays below its noise floor)
    labels |= {"E": np.zeros(60), "F": rng.normal(scale=1e-3, size=ds.F.shape)}
    for k, idx in enumerate(system.fragments):
        labels[f"frag_idx_{k}"] = idx
        labels[f"E_frag_{k}"], labels[f"F_frag_{k}"] = pair_labels(ds.R[:, idx])
        labels["E"] += labels[f"E_frag_{k}"]
        labels["F"][:, idx] += labels[f"F_frag_{k}"]
    paths = write_delta_datasets(build_delta_datasets(system, labels, "1/r"), tmp_path)
    config = water_benzene_config()
    config["training"].update(sigmas=[10], symmetries="none")
    splits = str(tmp_path / "s.npz")
    split(config=config, system="water_benzene", full=str(paths["full"]), splits=splits)
    parts = ["full", "fragment_0", "fragment_1", "binding"]
    files = {p: {k: str(tmp_path / f"m_{p}{k}") for k in (".npz", ".csv", ".t.csv")} for p in parts}
    for part in parts:
        train_model(
            config=config,
            system="water_benzene",
            part=part,
            dataset=str(paths[part]),
            splits=splits,
            model=files[part][".npz"],
            scores=files[part][".csv"],
            timing=files[part][".t.csv"],
        )
    scores = [files[p][".csv"] for p in parts]
    out = {k: str(tmp_path / k) for k in ("metrics.csv", "fragments.csv", "pred.npz")}
    evaluate(
        config=config,
        system="water_benzene",
        models={p: files[p][".npz"] for p in parts},
        scores=scores,
        full_dataset=str(paths["full"]),
        binding_dataset=str(paths["binding"]),
        splits=splits,
        metrics=out["metrics.csv"],
        fragments=out["fragments.csv"],
        predictions=out["pred.npz"],
    )
    metrics = pd.read_csv(out["metrics.csv"]).set_index("model")
    cards = {}
    for card in ("fragment_0", "binding", "delta"):
        model_card(
            config=config,
            system="water_benzene",
            card=card,
            model=files.get(card, files["binding"])[".npz"],
            dataset=None if card == "delta" else str(paths[card]),
            splits=splits,
            scores=scores,
            metrics=out["metrics.csv"],
            output=str(tmp_path / f"{card}.json"),
        )
        cards[card] = json.loads((tmp_path / f"{card}.json").read_text())
    tested = dict(item.split("=") for item in metrics.loc["delta", "part_f_r2_test"].split(";"))
    validated = dict(item.split("=") for item in metrics.loc["delta", "part_f_r2_valid"].split(";"))
    assert float(tested["fragment_0"]) > 0.9 and cards["fragment_0"]["validation"]["f_r2"] > 0.9
    for part in ("fragment_0", "binding"):  # the evaluation's R² is the card's, on its dataset
        assert float(tested[part]) == pytest.approx(cards[part]["test"]["f_r2"], abs=1e-4)
        assert float(validated[part]) == pytest.approx(cards[part]["validation"]["f_r2"], abs=1e-4)
    assert cards["binding"]["test"]["f_r2"] < LOW_R2
    assert cards["delta"]["test"]["f_r2"] == pytest.approx(metrics.loc["delta", "f_r2"])
    for part in ("fragment_0", "binding"):  # the estimator and its stored threshold
        stored = load_model(files[part][".npz"]).uncertainty_threshold_
        assert cards[part]["uncertainty"] == {
            "method": "gp",
            "unit": "kcal/mol",
            "threshold": stored,
        }
    tables = ("metrics", "comparison", "fragments", "training_times", "paper")
    summary = {k: str(tmp_path / f"all_{k}.csv") for k in tables}
    figures = [(f, x) for f in ("fig6", "fig7") for x in ("png", "pdf")]
    summary |= {f"{f}_{x}": str(tmp_path / f"{f}.{x}") for f, x in figures}
    summary["summary"] = str(tmp_path / "summary.md")
    summarise(
        metrics=[out["metrics.csv"]],
        fragments=[out["fragments.csv"]],
        timings=[files[p][".t.csv"] for p in parts],
        presets={"water_benzene": "water_benzene"},
        names={"water_benzene": "water–benzene"},
        out=summary,
    )
    text = (tmp_path / "summary.md").read_text()
    assert "| water_benzene | binding |" in text and "R² validation | R² test" in text
    assert "Warning: the binding model of water_benzene explains almost nothing" in text

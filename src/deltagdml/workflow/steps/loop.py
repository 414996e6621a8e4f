"""Steps of ``loop.smk``: active-learning rounds of the Δ model and the second test set.

Round r ≥ 1 explores with the Δ model of round r − 1 (round 0: the pipeline's models),
selects, labels and pools frames, and retrains the parts that need them. Units: Å, ps, K,
kcal/mol, kcal/mol/Å.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from deltagdml.active.candidates import collect, select
from deltagdml.active.explore import (
    explore,
    largest_ratio,
    load_runs,
    run_seed,
    save_runs,
    start_indices,
)
from deltagdml.active.pool import append_labels, grow_splits
from deltagdml.active.rounds import decision, exploration_rows
from deltagdml.atomic_io import atomic_path, save_npz_atomic, write_text_atomic
from deltagdml.data.calculators import set_single_thread
from deltagdml.data.frames import write_frames
from deltagdml.data.labelling import label_frames, load_labels, save_labels
from deltagdml.data.splits import load_splits, save_splits, train_indices
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.delta_io import load_delta_model
from deltagdml.gdml.metrics import error_summary, mae
from deltagdml.gdml.model_io import load_model
from deltagdml.npz_io import read_npz
from deltagdml.workflow.config import (
    active_learning_settings,
    dynamics_settings,
    load_system,
    reference_settings,
    training_settings,
)
from deltagdml.workflow.steps.dynamics import analysed_frames, load_run
from deltagdml.workflow.steps.train import train_model

log = logging.getLogger(__name__)


def loop_explore(
    *,
    config: dict,
    system: str,
    round_: int,
    temperature: float,
    model: str,
    full_dataset: str,
    splits: str,
    runs: str,
    base_dir: str = ".",
) -> None:
    """Exploration runs of round ``round_`` at ``temperature`` (K) with the Δ ``model`` of
    the previous round, from training geometries of its ``full_dataset``."""
    s = active_learning_settings(config, system)
    complex_ = load_system(config, system, base_dir)
    delta = load_delta_model(model)
    ds = load_dataset(full_dataset)
    split = load_splits(splits, ds.n_geometries)
    starts = start_indices(ds.E, train_indices(split, "binding"), s.n_starts)
    seed = int(config.get("seed", 0))
    result = explore(
        delta,
        complex_.fragments,
        ds.R[starts],
        temperature,
        s,
        dynamics_settings(config, system).stability,
        [run_seed(seed, round_, temperature, int(i)) for i in starts],
        progress=lambda line: log.info(
            "%s round %d at %g K: %s", system, round_, temperature, line
        ),
    )
    for i, run in zip(starts, result, strict=True):
        log.info(
            "%s round %d at %g K, start %d: %s after %.2f ps, largest ratio %.3g",
            system,
            round_,
            temperature,
            i,
            run["reason"] or "stable",
            run["time_ps"][-1],
            largest_ratio(run).max(),
        )
    save_runs(result, runs, temperature)


def loop_select(
    *, config: dict, system: str, runs: list[str], selected: str, decision_file: str, frames: str
) -> None:
    """Collect and choose the frames to label in a round, with the parts that need each,
    and decide whether the loop goes on (``decision_file``, JSON)."""
    s = active_learning_settings(config, system)
    explorations = [load_runs(p) for p in runs]
    candidates = collect(explorations, s.pre_failure_frames, s.accept_ratio)
    chosen = select(candidates, s.budget)
    outcome = decision(explorations, len(chosen), s.accept_ratio)
    needs = candidates.needs()[chosen]
    log.info(
        "%s: %d candidate frames, %d chosen (%s); %s",
        system,
        len(candidates.R),
        len(chosen),
        ", ".join(
            f"{p}: {int(n)}" for p, n in zip(candidates.parts, needs.sum(axis=0), strict=True)
        ),
        outcome["reason"],
    )
    save_npz_atomic(
        selected,
        R=candidates.R[chosen],
        ratio=candidates.ratio[chosen],
        needs=needs,
        parts=np.array(candidates.parts),
        before_failure=candidates.before_failure[chosen],
        source=candidates.source[chosen],
        r_unit=np.array("Ang"),
    )
    if chosen.size:
        info = {"ratio": candidates.ratio[chosen].max(axis=1)}
        write_frames(frames, load_system(config, system).z, candidates.R[chosen], info=info)
    else:  # no frame: an empty file
        write_text_atomic(frames, "")
    write_text_atomic(decision_file, json.dumps(outcome, indent=2) + "\n")


def loop_label(
    *, config: dict, system: str, selected: str, labels: str, base_dir: str = "."
) -> None:
    """Reference labels of the complex and its fragments at the chosen frames."""
    set_single_thread()
    complex_ = load_system(config, system, base_dir)
    R = read_npz(selected, ("R",), "selected frames")["R"]
    save_labels(label_frames(complex_, R, reference_settings(config), progress=log.info), labels)


def loop_pool(
    *,
    system: str,
    new_labels: str,
    previous_labels: str,
    previous_splits: str,
    selected: str,
    labels: str,
    splits: str,
) -> None:
    """The training pool of the next model: the labels so far plus the new ones, and each
    part's training indices grown by the new frames it needs."""
    before = load_labels(previous_labels)
    pooled = append_labels(before, load_labels(new_labels))
    chosen = read_npz(selected, ("needs", "parts"), "selected frames")
    parts = [str(p) for p in chosen["parts"]]
    needs = {p: chosen["needs"][:, k] for k, p in enumerate(parts)}
    n_before = len(before["R"])
    grown = grow_splits(load_splits(previous_splits, n_before), n_before, needs)
    log.info(
        "%s: pool %d → %d frames; added %s",
        system,
        n_before,
        len(pooled["R"]),
        ", ".join(f"{p}: {int(m.sum())}" for p, m in needs.items()),
    )
    save_labels(pooled, labels)
    save_splits(grown, splits, len(pooled["R"]))


def neighbour_sigmas(grid: tuple[float, ...], sigma: float) -> list[float]:
    """σ and its neighbours on the configured ``grid`` (beyond its ends: by the end ratio)."""
    grid = sorted(grid)
    below = [s for s in grid if s < sigma]
    above = [s for s in grid if s > sigma]
    low = below[-1] if below else sigma * (grid[0] / grid[1] if len(grid) > 1 else 0.5)
    high = above[0] if above else sigma * (grid[-1] / grid[-2] if len(grid) > 1 else 2.0)
    return [low, sigma, high]


def retrain_part(
    *,
    config: dict,
    system: str,
    part: str,
    dataset: str,
    splits: str,
    previous_model: str,
    previous_splits: str,
    previous_scores: str,
    model: str,
    scores: str,
    timing: str,
    base_dir: str = ".",
) -> None:
    """Model ``part`` of a round: the previous round's files where its training geometries
    did not change; else trained anew, σ searched around the previous σ (and its grid
    neighbours, extended outwards while it improves)."""
    ds = load_dataset(dataset)
    now = train_indices(load_splits(splits, ds.n_geometries), part)
    before = train_indices(load_splits(previous_splits), part)
    if np.array_equal(now, before):
        log.info("%s/%s: no new training geometries; the previous model is kept", system, part)
        for src, dst in ((previous_model, model), (previous_scores, scores)):
            shutil.copyfile(src, dst)
        with atomic_path(timing) as tmp:
            pd.DataFrame([{"system": system, "part": part, "train_s": 0.0}]).to_csv(
                tmp, index=False
            )
        return
    previous_sigma = load_model(previous_model).sigma
    grid = neighbour_sigmas(training_settings(config, system, part).sigmas, previous_sigma)
    log.info(
        "%s/%s: %d → %d training geometries; σ grid %s", system, part, len(before), len(now), grid
    )
    train_model(
        config=config,
        system=system,
        part=part,
        dataset=dataset,
        splits=splits,
        model=model,
        scores=scores,
        timing=timing,
        base_dir=base_dir,
        sigmas=grid,
    )


def loop_summary(
    *,
    system: str,
    label: str,
    models: list[str],
    splits: list[str],
    decisions: list[str],
    explorations: list[list[str]],
    test_datasets: dict[str, str],
    test_splits: str,
    table: str,
    png: str,
    pdf: str,
) -> None:
    """One row per model of the loop (r = 0: the pipeline's) and exploration temperature:
    frames added to make it (per part), its force MAE on round 0's test set (composite:
    ``test_f_mae_delta``; each part on its own labels: ``test_f_mae_<part>``, kcal/mol/Å),
    and how its own exploration (in round r + 1) went. ``test_datasets``: round 0's
    datasets by part (``full`` for the composite)."""
    from deltagdml.active.figures import plot_rounds

    data = {part: load_dataset(path) for part, path in test_datasets.items()}
    test = load_splits(test_splits, data["full"].n_geometries)["test"]
    rows = []
    for r, (model_path, split_path) in enumerate(zip(models, splits, strict=True)):
        delta = load_delta_model(model_path)
        ref = data["full"].subset(test)
        row: dict = {"round": r, "test_f_mae_delta": mae(delta.predict(ref.R)[1], ref.F)}
        for part, gdml in delta.parts().items():
            ref = data[part].subset(test)
            row[f"test_f_mae_{part}"] = mae(gdml.predict(ref.R)[1], ref.F)
        current = load_splits(split_path)
        previous = load_splits(splits[r - 1]) if r else current
        for part in delta.parts():
            n = len(train_indices(current, part))
            row[f"added_{part}"] = n - len(train_indices(previous, part))
            row[f"n_train_{part}"] = n
        if r < len(decisions):
            row["decision"] = json.loads(Path(decisions[r]).read_text())["reason"]
            rows += [row | e for e in exploration_rows([load_runs(p) for p in explorations[r]])]
        else:
            rows.append(row | {"decision": "final model: explored by the MD study"})
    frame = pd.DataFrame(rows)
    with atomic_path(table) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    plot_rounds(frame, label, png, pdf)


def md_test_frames(*, config: dict, system: str, runs: list[str], frames: str) -> None:
    """``active_learning.md_test_frames`` frames of the final Δ model's MD study runs,
    evenly over all runs after equilibration (a failing frame excluded): the second test
    set, where the dynamics go."""
    s = active_learning_settings(config, system)
    eq = dynamics_settings(config, system).analysis.equilibration_ps
    R = np.concatenate([analysed_frames(load_run(path), eq) for path in runs])
    idx = np.unique(np.round(np.linspace(0, len(R) - 1, min(s.md_test_frames, len(R)))).astype(int))
    save_npz_atomic(frames, R=R[idx], r_unit=np.array("Ang"))


def md_test_evaluate(
    *,
    config: dict,
    system: str,
    models: dict[str, str],
    binding_dataset: str,
    labels: str,
    metrics: str,
    base_dir: str = ".",
) -> None:
    """Errors of the full and Δ models on the relabelled MD frames (second test set)."""
    complex_ = load_system(config, system, base_dir)
    ref = load_labels(labels, complex_)
    full = load_model(models["full"])
    delta = DeltaModel.from_files(complex_.z, complex_.fragments, models, binding_dataset)
    rows = []
    for name, model in (("full", full), ("delta", delta)):
        E, F = model.predict(ref["R"])
        rows.append(
            {
                "system": system,
                "model": name,
                "test_set": "final Δ model's MD frames",
                "n_test": len(ref["R"]),
                **error_summary(E, F, ref["E"], ref["F"]),
            }
        )
    with atomic_path(metrics) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6g")

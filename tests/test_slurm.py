"""Cluster execution: the tiny workflow through the SLURM profile on a real SLURM cluster.

The cluster is the throw-away single-node one of ``$LOCAL_SLURM_DIR/start.sh`` (default
``/work/shared/local-slurm``; needs root and apt-get, about 10 s). It is started here when no
cluster answers ``scontrol ping`` and stopped again at the end; a cluster that was already up
is used and left running. The same config is also run locally (``workflow/profiles/local``),
and the two result trees are compared.

What must be identical, and why: sampling and labelling run single-threaded (tblite), splits
are seeded, so trajectories, labels, Δ datasets and splits are compared bitwise. Training
solves with 2 BLAS threads in both runs; a multi-threaded Cholesky is not guaranteed to give
the same last bits (reduction order), so models and test predictions are compared to
rtol = 1e-10, and the metric tables (6 significant digits) exactly, without the wall-clock
column ``train_s``.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SLURM = Path(os.environ.get("LOCAL_SLURM_DIR", "/work/shared/local-slurm"))
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
PROFILES = ROOT / "workflow" / "profiles"
JOBNAME_PREFIX = "deltagdml_ci"
# bitwise: everything upstream of training; to RTOL: models and predictions (see docstring)
EXACT_NPZ = re.compile(r"/(data|datasets)/|/splits\.npz$")
RTOL, ATOL = 1e-10, 1e-12
TIMING_COLUMNS = ["train_s"]
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.")

pytestmark = pytest.mark.slow


def run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def cluster_is_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = run(["scontrol", "ping"], timeout=30)
    return ping.returncode == 0 and "UP" in ping.stdout


def why_no_cluster() -> str | None:
    """Why this machine cannot run the throw-away cluster at all, or None if it can."""
    if os.geteuid() != 0:
        return "not running as root"
    installed = all(Path(p).exists() for p in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd"))
    if not installed and shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    if cluster_is_up():
        yield "already running (left running)"
        return
    reason = why_no_cluster()
    if reason is not None:
        pytest.skip(f"no SLURM cluster on this machine and none can be started: {reason}")
    start = LOCAL_SLURM / "start.sh"
    if not start.is_file():
        pytest.fail(f"{start} not found; set LOCAL_SLURM_DIR to the local-slurm scripts")
    started = run(["bash", str(start)], timeout=900)
    if started.returncode != 0:
        pytest.fail(
            f"{start} failed ({started.returncode}); if it says the cluster is already "
            f"started, run {LOCAL_SLURM / 'stop.sh'} first:\n"
            f"{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        )
    try:
        yield "started by this test"
    finally:
        stopped = run(["bash", str(LOCAL_SLURM / "stop.sh")], timeout=300)
        print(stopped.stdout, stopped.stderr)


def workflow_env() -> dict[str, str]:
    """The jobs inherit this (sbatch --export=ALL): make them import this checkout."""
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def make_workdir(base: Path) -> Path:
    base.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())
    config["results"] = "results"
    (base / "config.yaml").write_text(yaml.safe_dump(config))
    return base


def snakemake(work: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = run(
        [*SNAKEMAKE, "--configfile", "config.yaml", "--directory", str(work), *args],
        timeout=900,
        cwd=work,
        env=workflow_env(),
    )
    return proc, time.perf_counter() - t0


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm")
    slurm_work = make_workdir(base / "slurm")
    slurm, slurm_s = snakemake(
        slurm_work,
        "--profile",
        str(PROFILES / "slurm"),
        # this cluster has no accounting: sacct-based polling would never see a job end
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--slurm-keep-successful-logs",
        "--slurm-jobname-prefix",
        JOBNAME_PREFIX,
    )
    log = slurm.stdout + slurm.stderr
    (base / "slurm_snakemake.log").write_text(log)
    assert slurm.returncode == 0, log[-6000:]

    local_work = make_workdir(base / "local")
    local, local_s = snakemake(local_work, "--profile", str(PROFILES / "local"), "--cores", "2")
    assert local.returncode == 0, (local.stdout + local.stderr)[-6000:]
    print(f"tiny workflow wall time: SLURM {slurm_s:.0f} s, local (2 cores) {local_s:.0f} s")
    return {
        "slurm": slurm_work,
        "local": local_work,
        "slurm_log": log,
        "slurm_s": slurm_s,
        "local_s": local_s,
    }


def min_job_age() -> int:
    config = run(["scontrol", "show", "config"], timeout=30).stdout
    match = re.search(r"^MinJobAge\s*=\s*(\d+)", config, re.MULTILINE)
    return int(match.group(1)) if match else 0


def squeue_all() -> dict[str, dict[str, str]]:
    """Jobs slurmctld still knows (finished ones for MinJobAge seconds)."""
    fields = ["id", "state", "name", "comment", "cpus", "mem", "timelimit"]
    out = run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%j|%k|%C|%m|%l"], timeout=30)
    assert out.returncode == 0, out.stderr
    jobs = [dict(zip(fields, line.split("|"), strict=True)) for line in out.stdout.splitlines()]
    return {job["id"]: job for job in jobs}


def test_every_job_ran_as_a_slurm_job(runs):
    work, log = runs["slurm"], runs["slurm_log"]
    submitted = SUBMITTED.findall(log)
    ids = {slurm_id for _, slurm_id, _ in submitted}
    # one SLURM job per system for sampling, per label chunk, for the grouped
    # merge/Δ-dataset/split steps, per model and for evaluation; one for the summary
    config = yaml.safe_load((work / "config.yaml").read_text())
    n_models = len(list((work / "results").glob("*/models/*_sigma_scores.csv")))
    n_systems = len(config["systems"])
    expected = n_systems * (3 + config["labelling"]["n_chunks"]) + n_models + 1
    assert len(submitted) == len(ids) == expected, log[-4000:]

    # SLURM wrote one log per job id (kept with --slurm-keep-successful-logs)
    logs = {Path(path).stem: Path(path) for _, _, path in submitted}
    assert set(logs) == ids
    assert all(p.is_file() for p in logs.values())
    by_dir: dict[str, int] = {}
    for p in logs.values():
        top = p.relative_to(work / ".snakemake" / "slurm_logs").parts[0]
        by_dir[top] = by_dir.get(top, 0) + 1
    assert by_dir == {
        "rule_sample_trajectory": n_systems,
        "rule_label_chunk": n_systems * config["labelling"]["n_chunks"],
        "group_prep": n_systems,
        "rule_train_model": n_models,
        "rule_evaluate": n_systems,
        "rule_summarise": 1,
    }

    # slurmctld's view: all COMPLETED, with the resources of the profile
    jobs = squeue_all()
    seen = ids & set(jobs)
    if runs["slurm_s"] < min_job_age():
        assert seen == ids, f"jobs unknown to squeue: {sorted(ids - seen)}"
    assert seen, "no job of this run is known to squeue"
    for slurm_id in seen:
        job = jobs[slurm_id]
        assert job["state"] == "COMPLETED", job
        assert job["name"].startswith(JOBNAME_PREFIX), job
        rule = job["comment"].split("_wildcards_")[0].removeprefix("rule_")
        if rule == "train_model":
            assert job["cpus"] == str(config["training_threads"]), job
        elif rule == "prep":  # the group asks for one CPU, not one per Δ dataset
            assert (job["cpus"], job["mem"]) == ("1", "2000M"), job
        else:
            assert job["cpus"] == "1", job
        if rule == "label_chunk":
            assert job["timelimit"] == "2:00:00", job


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_same_files_as_a_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"

    def tree(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    assert tree(slurm) == tree(local)


def test_data_identical_and_models_equal_to_a_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*.npz"))
    exact = [f for f in files if EXACT_NPZ.search("/" + f)]
    assert any("/data/labels/" in f for f in exact) and any("models/" in f for f in files)
    for name in files:
        a, b = npz_arrays(slurm / name), npz_arrays(local / name)
        assert a.keys() == b.keys(), name
        for key in a:
            if name in exact or a[key].dtype.kind not in "fc":
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")
            else:
                np.testing.assert_allclose(
                    a[key], b[key], rtol=RTOL, atol=ATOL, err_msg=f"{name}:{key}"
                )


def test_metric_tables_equal_to_a_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"
    tables = sorted(str(p.relative_to(local)) for p in local.rglob("*.csv"))
    assert "summary/metrics.csv" in tables
    for name in tables:
        a, b = pd.read_csv(slurm / name), pd.read_csv(local / name)
        timing = [c for c in TIMING_COLUMNS if c in a.columns]
        pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing), obj=name)
    summary = "summary/summary.md"
    assert (slurm / summary).read_text() == (local / summary).read_text()

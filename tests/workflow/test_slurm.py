"""Cluster execution: a tiny workflow through the SLURM profile on a real SLURM cluster.

The cluster is the throw-away single-node one of ``tests/slurm/start_cluster.sh`` (needs
root, and apt-get if SLURM is not installed; about 15 s). It is started here when no
cluster answers ``scontrol ping`` and stopped again at the end; a cluster that was already up
is used and left running. The same config is then run locally (``workflow/profiles/local``)
and the two result trees are compared.

Equality is bitwise for every array (trajectories, labels, Δ datasets, splits, models, test
predictions) and every table apart from wall-clock columns (names ending in ``_s``). Sampling
and labelling are single-threaded (tblite); training uses 2 threads in both runs, on the same
CPU with the same OpenBLAS, whose threaded Cholesky splits the work statically, so the same
bits are expected and were observed. On a cluster with other CPUs or another BLAS, models may
differ from a local run in the last bits; that is outside this test.
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

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
PROFILES = ROOT / "workflow" / "profiles"
JOBNAME_PREFIX = "deltagdml_ci"
# one system keeps the run short; water-benzene has two fragments, so all step kinds occur
SYSTEM = "water_benzene"
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
    start = HARNESS / "start_cluster.sh"
    stop = ["bash", str(HARNESS / "stop_cluster.sh")]
    try:
        # `nproc` obeys OMP_NUM_THREADS (set to 1 by conftest.py); keep the node's true size
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
        started = run(["bash", str(start)], timeout=600, env=env)
    except subprocess.TimeoutExpired:
        run(stop, timeout=300)
        pytest.fail(f"{start} did not finish within 10 minutes")
    if started.returncode != 0:
        output = f"{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        if "run stop_cluster.sh first" in output:  # a stale cluster: not ours to stop
            pytest.fail(f"{start}: {output}\nif no cluster is running, run {stop[1]} first")
        run(stop, timeout=300)  # whatever start_cluster.sh started before it failed
        pytest.fail(f"{start} failed ({started.returncode}):\n{output}")
    try:
        yield "started by this test"
    finally:
        stopped = run(stop, timeout=300)
        print(stopped.stdout, stopped.stderr)


def workflow_env() -> dict[str, str]:
    """The jobs inherit this (sbatch --export=ALL): make them import this checkout."""
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def make_workdir(base: Path) -> Path:
    base.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())
    config["results"] = "results"
    config["systems"] = {SYSTEM: config["systems"][SYSTEM]}
    (base / "config.yaml").write_text(yaml.safe_dump(config))
    return base


def snakemake(work: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = run(
        [*SNAKEMAKE, "--configfile", "config.yaml", "--directory", str(work), *args],
        timeout=600,
        cwd=work,
        env=workflow_env(),
    )
    return proc, time.perf_counter() - t0


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm")
    slurm_work = make_workdir(base / "slurm")
    threads = yaml.safe_load((slurm_work / "config.yaml").read_text())["training_threads"]
    cpus = max(int(c) for c in run(["sinfo", "-h", "-o", "%c"], timeout=30).stdout.split())
    assert cpus >= threads, f"the cluster's nodes have {cpus} CPUs, training needs {threads}"
    slurm_started = time.monotonic()
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
        "slurm_started": slurm_started,
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


def job_stats(log: str) -> dict[str, int]:
    """Jobs per rule from the table Snakemake prints before it starts."""
    table = log[log.index("Job stats:") :].split("total")[0]
    rows = (line.split() for line in table.splitlines()[3:])
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def test_every_job_ran_as_a_slurm_job(runs):
    work, log = runs["slurm"], runs["slurm_log"]
    config = yaml.safe_load((work / "config.yaml").read_text())
    submitted = SUBMITTED.findall(log)
    ids = {slurm_id for _, slurm_id, _ in submitted}
    assert len(ids) == len(submitted), log[-4000:]

    # every job of the DAG went to SLURM: one job per rule instance, except `all`
    # (no action) and the merge/Δ-dataset/split steps, which form one group job per system
    stats = job_stats(log)
    local_rules = set(re.findall(r"^localrule (\w+):", log, re.MULTILINE)) | {"all"}
    grouped = {"merge_labels", "delta_dataset", "split"}
    n_systems = len(config["systems"])
    expected = {f"rule_{rule}": n for rule, n in stats.items() if rule not in local_rules | grouped}
    expected["group_prep"] = n_systems
    assert sum(expected.values()) == len(ids), (stats, log[-4000:])

    # SLURM wrote one log per job (kept with --slurm-keep-successful-logs), named by job id
    logs = [Path(path) for _, _, path in submitted]
    assert {p.stem for p in logs} == ids and all(p.is_file() for p in logs)
    by_dir: dict[str, int] = {}
    for p in logs:
        top = p.relative_to(work / ".snakemake" / "slurm_logs").parts[0]
        top = "group_prep" if top.startswith("group_prep") else top
        by_dir[top] = by_dir.get(top, 0) + 1
    assert by_dir == expected

    # slurmctld's view: COMPLETED, under this run's job name, with the profile's resources
    jobs = squeue_all()
    seen = ids & set(jobs)
    # slurmctld forgets a finished job MinJobAge seconds after it ended: all of them are still
    # known only if the first one ended less than MinJobAge ago (the local run came after)
    if time.monotonic() - runs["slurm_started"] < min_job_age():
        assert seen == ids, f"jobs unknown to squeue: {sorted(ids - seen)}"
    assert seen, "no job of this run is known to squeue any more"
    print(f"squeue --states=all knows {len(seen)} of this run's {len(ids)} SLURM jobs:")
    for slurm_id in sorted(seen, key=int):
        print(
            "  " + "  ".join(jobs[slurm_id][k] for k in ("id", "state", "comment", "cpus", "mem"))
        )
    for slurm_id in seen:
        job = jobs[slurm_id]
        assert job["state"] == "COMPLETED", job
        assert job["name"].startswith(JOBNAME_PREFIX), job
        rule = job["comment"].split("_wildcards_")[0].removeprefix("rule_")
        if rule == "train_model":
            assert job["cpus"] == str(config["training_threads"]), job
        elif rule.startswith("prep"):  # the group asks for one CPU, not one per Δ dataset
            assert (job["cpus"], job["mem"]) == ("1", "2000M"), job
        elif rule == "sample_replica":
            assert (job["cpus"], job["timelimit"]) == ("1", "12:00:00"), job


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_same_files_as_a_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"

    def tree(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    assert tree(slurm) == tree(local)


def test_arrays_bitwise_equal_to_a_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*.npz"))
    # label chunks are temp(): gone after the merge in both runs, their merged labels remain
    assert not any("/data/labels/" in f for f in files)
    assert any(f.endswith("/data/labels.npz") for f in files)
    assert any("/models/" in f for f in files)
    for name in files:
        a, b = npz_arrays(slurm / name), npz_arrays(local / name)
        assert a.keys() == b.keys(), name
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}", strict=True)


def test_tables_equal_to_a_local_run_apart_from_wall_times(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"
    tables = sorted(str(p.relative_to(local)) for p in local.rglob("*.csv"))
    assert "summary/metrics.csv" in tables
    for name in tables:
        assert not (local / name).read_text().startswith("#"), f"{name}: not a plain CSV"
        a, b = pd.read_csv(slurm / name), pd.read_csv(local / name)
        wall_times = [c for c in a.columns if c.endswith("_s")]
        pd.testing.assert_frame_equal(
            a.drop(columns=wall_times), b.drop(columns=wall_times), obj=name
        )
    summary = "summary/summary.md"
    assert (slurm / summary).read_text() == (local / summary).read_text()

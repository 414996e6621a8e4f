"""Outputs never destroy anything, files get the user's umask, numeric options are checked
(issue 27): each refusal is one line naming the option, before any work, leaving the
inputs as they were and no output behind."""

import contextlib
import os
import signal
import stat
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones
from conftest import morse_energy_forces

from deltagdml.atomic_io import save_npz_atomic, write_text_atomic
from deltagdml.cli import main as cli
from deltagdml.dynamics.run import run_md
from deltagdml.errors import DeltaGDMLError
from deltagdml.gdml.dataset import Dataset, save_dataset
from deltagdml.settings import StabilitySettings

WATER = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
R_REF = np.vstack([WATER, WATER + [0.0, 0.0, 3.0]])
Z = np.array([8, 1, 1, 8, 1, 1])
FRAGMENTS = [np.arange(3), np.arange(3, 6)]
TINY = ["--n-train", "6", "--n-valid", "4", "--sigmas", "2", "--perms", "none"]


class Overtime(Exception):
    """A command still ran at its deadline (not an OSError, which the CLI reports)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`Overtime` in the test if the block runs longer than ``seconds``."""

    def expire(*_):
        raise Overtime(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A water-dimer dataset, each water's labels, a start geometry, a tiny model."""
    tmp = tmp_path_factory.mktemp("guards")
    R = R_REF + np.random.default_rng(0).normal(scale=0.04, size=(16, 6, 3))
    E, F = morse_energy_forces(R, R_REF)
    paths = {"data": tmp / "dimer.npz", "start": tmp / "start.xyz", "model": tmp / "model.npz"}
    save_dataset(Dataset(R=R, z=Z, F=F, E=E, name="dimer"), paths["data"])
    for k, f in enumerate(FRAGMENTS):
        E_k, F_k = morse_energy_forces(R[:, f], R_REF[f])
        paths[f"water_{k}"] = tmp / f"water_{k}.npz"
        save_dataset(Dataset(R=R[:, f], z=Z[f], F=F_k, E=E_k), paths[f"water_{k}"])
    ase.io.write(paths["start"], Atoms(Z, positions=R_REF))
    assert cli(["train", str(paths["data"]), "-o", str(paths["model"]), *TINY]) == 0
    return paths


def refused(args: list[str], capsys, *words: str) -> str:
    """Run the CLI, expect the one-line refusal (exit 1) holding ``words``; return it."""
    with deadline(60):
        rc = cli(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1, (args, err)
    assert err[-1].startswith("error: ") and all(w in err[-1] for w in words), err[-1]
    return err[-1]


def usage_error(args: list[str], capsys, option: str) -> None:
    """Run the CLI, expect argparse's usage error (exit 2) naming ``option``."""
    with deadline(30), pytest.raises(SystemExit) as exc:
        cli(args)
    assert exc.value.code == 2, args
    assert f"argument {option}: " in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("link", ["same path", "symlink", "hard link"])
def test_output_on_the_perms_input_is_refused_and_the_file_kept(files, tmp_path, capsys, link):
    perms = tmp_path / "perms.npy"
    np.save(perms, np.arange(6)[None])
    before = perms.read_bytes()
    out = tmp_path / "out.npy"
    if link == "same path":
        out = perms
    elif link == "symlink":
        out.symlink_to(perms)
    else:
        os.link(perms, out)
    args = ["train", str(files["data"]), "-o", str(out), *TINY[:-2], "--perms", str(perms)]
    refused(args, capsys, "-o", "overwrite an input", "--perms")
    assert perms.read_bytes() == before
    assert out.samefile(perms)


def test_train_output_and_scores_on_one_path_are_refused(files, tmp_path, capsys):
    out = tmp_path / "m.npz"
    args = ["train", str(files["data"]), "-o", str(out), "--scores", str(out), *TINY]
    refused(args, capsys, "--scores", "same file as -o")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("link", ["same path", "hard link"])
def test_delta_output_and_full_model_on_one_file_are_refused(files, tmp_path, capsys, link):
    out, full = tmp_path / "d.npz", tmp_path / "d.npz"
    if link == "hard link":
        out.write_bytes(b"an earlier model")
        full = tmp_path / "f.npz"
        os.link(out, full)
    labels = [str(files["water_0"]), str(files["water_1"])]
    args = ["train-delta", str(files["data"]), "--fragments", "0-2", "3-5"]
    args += ["--fragment-labels", *labels, "-o", str(out), "--full-model", str(full), *TINY]
    refused(args, capsys, "--full-model", "same file as -o")
    if link == "hard link":
        assert out.read_bytes() == b"an earlier model" and out.samefile(full)
    else:
        assert not out.exists()


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_output_that_is_no_regular_file_is_refused(files, tmp_path, capsys, kind):
    out = tmp_path / "out.npz"
    if kind == "directory":
        out.mkdir()
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        out.symlink_to(os.devnull)  # a path naming a device node (/dev/null)
    before = stat.S_IFMT(os.stat(out).st_mode)
    refused(["train", str(files["data"]), "-o", str(out), *TINY], capsys, "-o", "regular file")
    assert stat.S_IFMT(os.stat(out).st_mode) == before
    assert kind != "device" or out.is_symlink()
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=oct)
def test_written_files_get_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "a")
        save_npz_atomic(tmp_path / "b.npz", x=np.zeros(2))
        (tmp_path / "c.txt").write_text("old")
        os.chmod(tmp_path / "c.txt", 0o600)
        write_text_atomic(tmp_path / "c.txt", "new")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.npz", "c.txt"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask, name


def test_cli_model_gets_the_umask_mode(files):
    assert stat.S_IMODE(os.stat(files["model"]).st_mode) == 0o666 & ~_current_umask()


def _current_umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


MD_CASES = [
    (["--stride", "0"], "--stride"),
    (["--steps", "-5"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--timestep", "0"], "--timestep"),
    (["--timestep", "nan"], "--timestep"),
    (["--temperature", "-10"], "--temperature"),
    (["--friction", "-0.1"], "--friction"),
]


@pytest.mark.parametrize(("extra", "option"), MD_CASES, ids=[" ".join(c[0]) for c in MD_CASES])
def test_md_numeric_options_are_refused(files, tmp_path, capsys, extra, option):
    out = tmp_path / "md.xyz"
    args = ["md", str(files["model"]), str(files["start"]), "--steps", "20", "-o", str(out)]
    usage_error([*args, *extra], capsys, option)
    assert not out.exists()


SIZE_CASES = [
    ("train", ["--patience", "0"], "--patience"),
    ("train", ["--n-train", "0"], "--n-train"),
    ("train", ["--n-valid", "-1"], "--n-valid"),
    ("train-delta", ["--patience", "0"], "--patience"),
    ("test", ["--n-test", "-1"], "--n-test"),
    ("train", ["--sigmas", "10", "0"], "--sigmas"),
    ("train-delta", ["--sigmas", "-5"], "--sigmas"),
    ("train", ["--lam", "-1e-10"], "--lam"),
]


@pytest.mark.parametrize(
    ("command", "extra", "option"), SIZE_CASES, ids=[f"{c[0]} {c[1][0]}" for c in SIZE_CASES]
)
def test_sizes_and_patience_are_refused(files, tmp_path, capsys, command, extra, option):
    out = tmp_path / "m.npz"
    if command == "train":
        args = ["train", str(files["data"]), *TINY, "-o", str(out)]
    elif command == "train-delta":
        labels = [str(files["water_0"]), str(files["water_1"])]
        args = ["train-delta", str(files["data"]), "--fragments", "0-2", "3-5", *TINY]
        args += ["--fragment-labels", *labels, "-o", str(out)]
    else:
        args = ["test", str(files["model"]), str(files["data"])]
    usage_error([*args, *extra], capsys, option)
    assert not out.exists()


def test_calculator_with_fragment_labels_is_refused(files, tmp_path, capsys):
    out = tmp_path / "d.npz"
    labels = [str(files["water_0"]), str(files["water_1"])]
    before = [Path(p).read_bytes() for p in labels]
    args = ["train-delta", str(files["data"]), "--fragments", "0-2", "3-5", *TINY]
    args += ["--fragment-labels", *labels, "--calculator", "ase.calculators.lj:LennardJones"]
    refused([*args, "-o", str(out)], capsys, "--calculator", "--fragment-labels")
    assert not out.exists()
    assert [Path(p).read_bytes() for p in labels] == before


RUN_MD_CASES = [
    ({"n_steps": -5}, "n_steps"),
    ({"n_steps": 0}, "n_steps"),
    ({"stride": 0}, "stride"),
    ({"timestep_fs": 0.0}, "timestep_fs"),
    ({"temperature_K": -1.0}, "temperature_K"),
    ({"temperature_K": float("nan")}, "temperature_K"),
    ({"friction_per_fs": -0.01}, "friction_per_fs"),
]


@pytest.mark.parametrize(("bad", "name"), RUN_MD_CASES, ids=[c[1] for c in RUN_MD_CASES])
def test_run_md_refuses_bad_arguments_by_name(bad, name):
    kwargs = {
        "temperature_K": 10.0,
        "timestep_fs": 0.5,
        "n_steps": 10,
        "stride": 5,
        "friction_per_fs": 0.01,
    }
    atoms = Atoms(Z, positions=R_REF)
    with deadline(30), pytest.raises(DeltaGDMLError, match=name):
        run_md(
            atoms, LennardJones(), FRAGMENTS, **(kwargs | bad), seed=0, criteria=StabilitySettings()
        )

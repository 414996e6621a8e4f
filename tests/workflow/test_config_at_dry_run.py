"""Every config error a job would hit is refused by `snakemake -n`, with one line naming the
key, before any job and with no results folder left behind (issue 27, class 7); so is an MD
job that would run for ever (class 5), and a config file that repeats a key."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_door import ROOT, TINY, dry_run

from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config

K = 2.0  # harmonic force constant of the test labels (kcal/mol/Å²)


def write_labels(work: Path, preset: str, n: int = 80, ion_force: bool = False) -> None:
    """``<preset>.npz`` and ``<preset>_f<k>.npz``: harmonic labels (E = ½K|R − R0|², F =
    −K(R − R0)) of ``n`` geometries, per fragment; a single-atom fragment gets a constant
    energy and zero force unless ``ion_force``."""
    system = system_from_config(preset, DEFAULT_SYSTEMS[preset])
    R0 = system.atoms.positions
    R = R0 + np.random.default_rng(0).normal(0, 0.03, (n, system.n_atoms, 3))
    F = -K * (R - R0)

    def save(name: str, idx: np.ndarray, constant: bool) -> None:
        E = 0.5 * K * ((R[:, idx] - R0[idx]) ** 2).sum(axis=(1, 2))
        F_idx = F[:, idx]
        if constant:
            E, F_idx = np.full(n, -3.0), np.zeros_like(F_idx)
        np.savez(work / name, R=R[:, idx], z=system.z[idx], E=E, F=F_idx)

    save(f"{preset}.npz", np.arange(system.n_atoms), False)
    for k, idx in enumerate(system.fragments):
        save(f"{preset}_f{k}.npz", idx, len(idx) == 1 and not ion_force)


def with_system(preset: str, **entry) -> dict:
    """``tiny.yaml`` with the one system ``preset`` (``entry``: its own keys)."""
    config = copy.deepcopy({**TINY, "results": "results"})
    config["systems"] = {preset: {"preset": preset, **entry}}
    return config


def changed(path: tuple[str, ...], value) -> dict:
    """``tiny.yaml`` with the key at ``path`` set to ``value``."""
    config = copy.deepcopy({**TINY, "results": "results"})
    section = config
    for key in path[:-1]:
        section = section.setdefault(key, {})
    section[path[-1]] = value
    return config


def labels(preset: str, files: tuple[str, ...]) -> dict:
    return with_system(preset, dataset=f"{preset}.npz", fragment_labels=list(files))


def gfnff_open_shell(where: str) -> dict:
    """water–benzene as a radical cation (benzene⁺, doublet) with gfnff at ``where``."""
    config = with_system(
        "water_benzene", charges=[1, 0], multiplicities=[2, 1], charge=1, multiplicity=2
    )
    if where == "reference":
        config["reference"] = {"name": "gfnff"}
    else:
        config["sampling"]["calculator"] = {"name": "gfnff"}
    return config


def permutations(name: str) -> np.ndarray:
    """Permutation files of water–benzene's 15 atoms: a good group (the water's hydrogens
    swapped) and bad ones."""
    identity = np.arange(15)
    if name == "good":
        return np.array([identity, [*range(12), 12, 14, 13]])
    if name == "short":
        return identity[None, :5]
    if name == "repeat":
        return np.array([identity, np.zeros(15, dtype=int)])
    swap = identity.copy()
    swap[[0, 12]] = [12, 0]  # a carbon for the oxygen
    return np.array([identity, swap])


def symmetries(name: str) -> dict:
    config = with_system("water_benzene")
    config["training"]["symmetries"] = f"perm_{name}.npy"
    return config


# (case id, config, the message the one-line refusal must hold)
BAD_CONFIGS = [
    (
        "ion labels with forces",
        labels("na_benzene", ("ion/na_benzene_f0.npz", "ion/na_benzene_f1.npz")),
        "system 'na_benzene'.fragment_labels: labels of system 'na_benzene': single-atom "
        "fragment 1 must have a constant energy and zero forces",
    ),
    (
        "fragment labels swapped, same elements",
        labels("methane_dimer", ("methane_dimer_f1.npz", "methane_dimer_f0.npz")),
        "system 'methane_dimer'.fragment_labels: methane_dimer_f1.npz: geometry 0 differs "
        "from fragment 0",
    ),
    (
        "fragment labels swapped, other atoms",
        labels("water_benzene", ("water_benzene_f1.npz", "water_benzene_f0.npz")),
        "system 'water_benzene'.fragment_labels: water_benzene_f1.npz: 3 atoms, but fragment 0",
    ),
    (
        "fragment labels without dataset",
        with_system("water_benzene", fragment_labels=["water_benzene_f0.npz"] * 2),
        "system 'water_benzene'.fragment_labels: given without 'dataset'",
    ),
    (
        "symmetries of the wrong size",
        symmetries("short"),
        "model 'full': training.symmetries 'perm_short.npy': permutations have length 5 but "
        "the molecule has 15 atoms",
    ),
    (
        "symmetries not a permutation",
        symmetries("repeat"),
        "training.symmetries 'perm_repeat.npy': permutation 1 is not a permutation",
    ),
    (
        "symmetries across elements",
        symmetries("elements"),
        "training.symmetries 'perm_elements.npy': permutation 1 maps atom 0 (Z=6) to atom 12",
    ),
    (
        "gfnff reference, open shell",
        gfnff_open_shell("reference"),
        "reference: gfnff has no spin, but the complex of system 'water_benzene' is open-shell",
    ),
    (
        "gfnff sampler, open shell",
        gfnff_open_shell("sampling"),
        "sampling.calculator: gfnff has no spin",
    ),
    (
        "n_frames float",
        changed(("sampling", "n_frames"), 1e12),
        "config key 'sampling.n_frames': 1000000000000.0 is not of type 'integer'",
    ),
    (
        "equilibration_steps float",
        changed(("sampling", "equilibration_steps"), 1e15),
        "config key 'sampling.equilibration_steps': 1000000000000000.0 is not of type 'integer'",
    ),
    (
        "n_frames endless",
        changed(("sampling", "n_frames"), 10**12),
        "sampling.n_frames over the replicas unless set) = 20 + 1000000000000 × 5 = 5e+12 MD steps",
    ),
    (
        "equilibration_steps endless",
        changed(("sampling", "equilibration_steps"), 10**15),
        "one sampling replica: sampling.equilibration_steps + frames_per_replica × stride",
    ),
    (
        "MD study endless",
        changed(("dynamics", "duration_ps"), 1e9),
        "one MD run: dynamics.duration_ps / dynamics.timestep_fs = 2e+12 MD steps",
    ),
    (
        "exploration endless",
        changed(("active_learning",), {"enabled": True, "timestep_fs": 1e-9}),
        "one exploration run: active_learning.duration_ps / timestep_fs = 2e+12 MD steps",
    ),
    (
        "loop accepts above where it stops",
        changed(("active_learning",), {"enabled": True, "accept_ratio": 3.0}),
        "active_learning.accept_ratio = 3 exceeds stop_ratio = 2",
    ),
    ("results in ~", changed(("results",), "~/x"), "results: '~/x' starts with '~'"),
    ("results a file", changed(("results",), "a_file"), "results: 'a_file' names an existing file"),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("config_at_dry_run")
    for preset in ("na_benzene", "methane_dimer", "water_benzene"):
        write_labels(work, preset)
    (work / "ion").mkdir()
    write_labels(work / "ion", "na_benzene", ion_force=True)
    for name in ("good", "short", "repeat", "elements"):
        np.save(work / f"perm_{name}.npy", permutations(name))
    (work / "a_file").write_text("not a folder\n")
    return work


def refused(work: Path, text: str, message: str) -> None:
    """`snakemake -n` with the config file ``text`` fails with one line holding ``message``,
    and leaves no results folder behind."""
    (work / "bad.yaml").write_text(text)
    proc = dry_run(work, "--configfile", "bad.yaml")
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Config error: ")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not (work / "results").exists() and not (work / "~").exists()


@pytest.mark.parametrize(
    ("config", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_dry_run_refuses_what_a_job_would_fail_on(workdir, config, message):
    refused(workdir, yaml.safe_dump(config, allow_unicode=True), message)


def test_dry_run_refuses_a_duplicate_key_in_the_configfile(workdir):
    text = (ROOT / "workflow" / "configs" / "tiny.yaml").read_text()
    text = text.replace("  n_frames: 60\n", "  n_frames: 60\n  stride: 5\n  n_frames: 61\n")
    refused(workdir, text, "bad.yaml: duplicate key 'n_frames' at line 13 (first at line 11)")


def test_duplicate_keys_are_found_in_nested_yaml_and_json_but_merge_keys_pass(tmp_path):
    from deltagdml.errors import ConfigError
    from deltagdml.workflow.checks import check_unique_keys

    (tmp_path / "nested.yaml").write_text("a:\n  b: 1\n  c: {d: 2, d: 3}\n")
    (tmp_path / "dup.json").write_text('{"seed": 1, "seed": 2}')
    (tmp_path / "merge.yaml").write_text("x: &x {n: 1, m: 2}\ny:\n  <<: *x\n  n: 3\n")
    (tmp_path / "tabs.json").write_text('{\n\t"seed": 1,\n\t"results": "r"\n}')
    with pytest.raises(ConfigError, match=r"nested.yaml: duplicate key 'd' at line 3"):
        check_unique_keys([tmp_path / "nested.yaml"])
    with pytest.raises(ConfigError, match=r"dup.json: duplicate key 'seed'"):
        check_unique_keys([tmp_path / "dup.json"])
    check_unique_keys([tmp_path / "merge.yaml", tmp_path / "tabs.json"])


def test_good_configs_still_plan(workdir):
    """The tiny config, user labels with an ion of constant energy and zero force, and a
    permutation group of the full model's atoms."""
    good = {
        "tiny": {**TINY, "results": "results"},
        "ion": labels("na_benzene", ("na_benzene_f0.npz", "na_benzene_f1.npz")),
        "symmetries": with_system(
            "water_benzene", training={"parts": {"full": {"symmetries": "perm_good.npy"}}}
        ),
    }
    for name, config in good.items():
        (workdir / f"{name}.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        proc = dry_run(workdir, "--configfile", f"{name}.yaml")
        assert proc.returncode == 0, (name, proc.stderr[-3000:])
        assert "This was a dry-run" in proc.stdout, (name, proc.stdout[-2000:])

"""Model files know their training geometries by content and prove their integrity.

``test`` leaves out a model's training and validation geometries in any dataset (any
order, any subset, single or double precision); a model file whose numbers, shapes,
manifest or bytes are wrong is refused with one line naming the file (issue 27).
"""

import json
import logging

import numpy as np
import pytest
from conftest import MorseMolecule, morse_energy_forces

from deltagdml import load_model
from deltagdml.cli import main as cli
from deltagdml.errors import ModelError
from deltagdml.gdml.dataset import Dataset, load_dataset, save_dataset
from deltagdml.gdml.delta_io import extract_part

WATER = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
R_REF = np.vstack([WATER, WATER + [0.0, 0.0, 3.0]])
Z = np.array([8, 1, 1, 8, 1, 1])
FRAGMENTS = [np.arange(3), np.arange(3, 6)]
N_TRAIN, N_VALID = 20, 10


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A methane model (``single``) and a water-dimer Δ model (``delta``), each trained by
    the CLI on 20 + 10 of 60 geometries of its dataset (``single_data``, ``delta_data``)."""
    tmp = tmp_path_factory.mktemp("integrity")
    paths = {"single_data": tmp / "ch4.npz", "delta_data": tmp / "dimer.npz"}
    methane = MorseMolecule("CH4", seed=3)
    R, E, F = methane.sample(60)
    save_dataset(Dataset(R=R, z=methane.z, F=F, E=E, name="ch4"), paths["single_data"])
    R = R_REF + np.random.default_rng(0).normal(scale=0.04, size=(60, 6, 3))
    E, F = morse_energy_forces(R, R_REF)
    save_dataset(Dataset(R=R, z=Z, F=F, E=E, name="dimer"), paths["delta_data"])
    labels = []
    for k, f in enumerate(FRAGMENTS):
        labels.append(tmp / f"water_{k}.npz")
        Ek, Fk = morse_energy_forces(R[:, f], R_REF[f])
        save_dataset(Dataset(R=R[:, f], z=Z[f], F=Fk, E=Ek), labels[-1])
    paths["single"], paths["delta"] = tmp / "ch4_model.npz", tmp / "delta.npz"
    sizes = ["--n-train", str(N_TRAIN), "--n-valid", str(N_VALID), "--sigmas", "2", "4"]
    assert cli(["train", str(paths["single_data"]), *sizes, "-o", str(paths["single"])]) == 0
    rc = cli(
        ["train-delta", str(paths["delta_data"]), "--fragments", "0-2", "3-5",
         "--fragment-labels", *map(str, labels), *sizes, "-o", str(paths["delta"])]
    )  # fmt: skip
    assert rc == 0
    return paths


def used_indices(model_path) -> np.ndarray:
    """The training and validation indices the model file records."""
    training = load_model(model_path).training_
    return np.array([*training.idxs_train, *training.idxs_valid])


def write_subset(src, idx, dst, float32: bool = False) -> None:
    """The geometries ``idx`` of dataset ``src`` (in that order) as dataset ``dst``."""
    ds = load_dataset(src)
    save_dataset(ds.subset(idx), dst)
    if float32:
        with np.load(dst, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["R"] = arrays["R"].astype(np.float32)
        np.savez(dst, **arrays)


def run_test(capsys, *args: str) -> tuple[int, dict | str]:
    """Exit code of ``deltagdml test`` and its JSON output (or its last stderr line)."""
    rc = cli(["test", *map(str, args)])
    out = capsys.readouterr()
    return rc, json.loads(out.out) if rc == 0 else out.err.strip().splitlines()[-1]


def one_line_refusal(capsys, model, dataset, *words: str) -> None:
    rc, err = run_test(capsys, model, dataset)
    assert rc == 1 and err.startswith(f"error: {model}") and "Traceback" not in err, err
    for word in words:
        assert word in err, err


# -- class 2: `test` knows its training data by content --------------------------------------
@pytest.mark.parametrize("kind", ["single", "delta"])
def test_a_reordered_training_set_is_refused(files, kind, tmp_path, capsys):
    used = used_indices(files[kind])
    assert used.size == N_TRAIN + N_VALID
    shuffled = np.random.default_rng(1).permutation(used)
    write_subset(files[f"{kind}_data"], shuffled, tmp_path / "again.npz")
    rc, err = run_test(capsys, files[kind], tmp_path / "again.npz")
    assert rc == 1 and f"all {used.size} geometries" in err and "training" in err, err
    assert err.startswith(f"error: {tmp_path / 'again.npz'}")


@pytest.mark.parametrize("kind", ["single", "delta"])
def test_two_training_frames_alone_are_refused(files, kind, tmp_path, capsys):
    training = load_model(files[kind]).training_
    write_subset(files[f"{kind}_data"], training.idxs_train[-2:], tmp_path / "two.npz")
    rc, err = run_test(capsys, files[kind], tmp_path / "two.npz")
    assert rc == 1 and "all 2 geometries" in err, err


@pytest.mark.parametrize("kind", ["single", "delta"])
def test_mixed_shuffled_dataset_leaves_out_exactly_the_training_frames(
    files, kind, tmp_path, capsys, caplog
):
    """Held-out and training frames shuffled, R stored as float32: exactly the training
    ones are left out and counted; the errors are those of the held-out frames alone."""
    used = used_indices(files[kind])
    held_out = np.setdiff1d(np.arange(60), used)
    some_used = used[::3]
    mixed = np.random.default_rng(2).permutation(np.concatenate([held_out, some_used]))
    write_subset(files[f"{kind}_data"], mixed, tmp_path / "mixed.npz", float32=True)
    write_subset(files[f"{kind}_data"], held_out, tmp_path / "held_out.npz", float32=True)
    with caplog.at_level(logging.INFO):
        rc, report = run_test(capsys, files[kind], tmp_path / "mixed.npz")
    assert rc == 0, report
    assert report["n_test"] == held_out.size and report["n_left_out"] == some_used.size
    assert f"left out {some_used.size} training/validation" in caplog.text
    rc, alone = run_test(capsys, files[kind], tmp_path / "held_out.npz")
    assert rc == 0 and alone["n_left_out"] == 0
    for key in ("e_mae_kcal_mol", "f_mae_kcal_mol_A"):
        assert report[key] == pytest.approx(alone[key], rel=1e-12), key
    rc, everything = run_test(capsys, files[kind], tmp_path / "mixed.npz", "--include-training")
    assert rc == 0 and everything["n_left_out"] == 0 and everything["n_test"] == mixed.size


NEW_KEYS = ("checksum", "geometry_hashes_train", "geometry_hashes_valid")


def strip_new_keys(src, dst) -> None:
    """``src`` as sGDML (or an older version) writes it: without the content hashes and the
    checksums, of the file and of each part."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k.rsplit("/", 1)[-1] not in NEW_KEYS}
    np.savez(dst, **arrays)


@pytest.mark.parametrize("kind", ["single", "delta"])
def test_a_file_without_the_new_keys_loads_predicts_alike_and_falls_back_to_md5(
    files, kind, tmp_path, capsys, caplog
):
    plain = tmp_path / "plain.npz"
    strip_new_keys(files[kind], plain)
    R = load_dataset(files[f"{kind}_data"]).R[:7]
    stripped, original = load_model(plain).predict(R), load_model(files[kind]).predict(R)
    for a, b in zip(stripped, original, strict=True):
        np.testing.assert_array_equal(a, b)
    used = used_indices(files[kind])
    with caplog.at_level(logging.INFO):
        rc, report = run_test(capsys, plain, files[f"{kind}_data"])
    assert rc == 0 and report["n_left_out"] == used.size and report["n_test"] == 60 - used.size
    assert "no content hashes" in caplog.text
    write_subset(files[f"{kind}_data"], used[::-1], tmp_path / "reordered.npz")
    rc, report = run_test(capsys, plain, tmp_path / "reordered.npz")
    assert rc == 0 and report["n_left_out"] == 0  # not recognised: warned above


def test_extracted_part_keeps_its_hashes_and_checksum(files, tmp_path):
    extract_part(files["delta"], "fragment_1", tmp_path / "water.npz")
    with np.load(tmp_path / "water.npz", allow_pickle=False) as f:
        assert f["geometry_hashes_train"].size == N_TRAIN and len(str(f["checksum"])) == 64
    assert load_model(tmp_path / "water.npz").training_.by_content


def test_a_loaded_delta_model_saves_to_the_same_bytes_and_still_knows_its_data(
    files, tmp_path, capsys
):
    """Load and save again without arguments: the part hashes, md5s, record and theory
    come along, so the file is byte-identical and `test` still refuses training data."""
    from deltagdml.gdml.delta_io import save_delta_model

    save_delta_model(load_model(files["delta"]), tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == files["delta"].read_bytes()
    used = used_indices(tmp_path / "again.npz")
    write_subset(files["delta_data"], used[::-1], tmp_path / "reordered.npz")
    rc, err = run_test(capsys, tmp_path / "again.npz", tmp_path / "reordered.npz")
    assert rc == 1 and f"all {used.size} geometries" in err, err


# -- class 4: model files prove their integrity ---------------------------------------------
def edited(src, dst, **changes) -> None:
    """``src`` with the arrays ``changes`` (a callable edits the array in place)."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k].copy() for k in f.files}
    for key, change in changes.items():
        key = key.replace("__", "/")
        if callable(change):
            change(arrays[key])
        else:
            arrays[key] = change
    np.savez(dst, **arrays)


def set_z(z: np.ndarray) -> None:
    z[0] = 7  # the carbon becomes a nitrogen; methane's permutations leave it in place


def dataset_like(src, tmp_path, model) -> str:
    """Dataset ``src`` with the atoms of ``model`` (unchecked), so ``test`` gets as far as
    the model file's own checks."""
    with np.load(model, allow_pickle=False) as f:
        z = f["z"]
    ds = load_dataset(src)
    save_dataset(Dataset(R=ds.R, z=z, F=ds.F, E=ds.E), tmp_path / "data.npz")
    return str(tmp_path / "data.npz")


def flip_byte(a: np.ndarray) -> None:
    a.view(np.uint8).ravel()[5] ^= 0x10


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"std": np.array(np.nan)}, ["'std'", "NaN"]),
        ({"std": np.array(0.0)}, ["'std' is 0.0", "positive"]),
        ({"c": np.array(np.nan)}, ["'c'", "NaN"]),
        ({"z": set_z}, ["checksum mismatch"]),
        ({"R_d_desc_alpha": flip_byte}, ["checksum mismatch"]),
    ],
    ids=["nan_std", "zero_std", "nan_c", "edited_z", "flipped_byte"],
)
def test_a_corrupted_model_file_is_refused_in_one_line(files, tmp_path, capsys, changes, words):
    bad = tmp_path / "bad.npz"
    edited(files["single"], bad, **changes)
    with pytest.raises(ModelError, match="bad.npz"):
        load_model(bad)
    one_line_refusal(capsys, bad, dataset_like(files["single_data"], tmp_path, bad), *words)


@pytest.mark.parametrize("kind", ["single", "delta"])
def test_a_byte_flipped_on_disk_is_refused_in_one_line(files, kind, tmp_path):
    """The zip's own CRC catches a flip inside an array's bytes: one line, no traceback."""
    bad = tmp_path / "bad.npz"
    data = bytearray(files[kind].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="bad.npz: key '.*' is corrupted"):
        load_model(bad)


def test_an_edited_z_without_checksum_is_refused_by_the_permutations(files, tmp_path, capsys):
    plain, bad = tmp_path / "plain.npz", tmp_path / "bad.npz"
    strip_new_keys(files["single"], plain)

    def hydrogen_to_fluorine(z: np.ndarray) -> None:
        z[1] = 9

    edited(plain, bad, z=hydrogen_to_fluorine)
    data = dataset_like(files["single_data"], tmp_path, bad)
    one_line_refusal(capsys, bad, data, "'perms'", "other elements")


def manifest_edit(edit):
    def change(arrays_manifest: np.ndarray) -> np.ndarray:
        manifest = json.loads(str(arrays_manifest))
        edit(manifest)
        return np.array(json.dumps(manifest, sort_keys=True))

    return change


def swap_fragments(m: dict) -> None:
    m["fragments"][0]["atoms"], m["fragments"][1]["atoms"] = [3, 4, 5], [0, 1, 2]


def wrong_element(m: dict) -> None:
    m["fragments"][1]["elements"] = ["N", "H", "H"]


def unknown_unit(m: dict) -> None:
    m["units"]["energy"] = "eV"


def overlapping(m: dict) -> None:
    m["fragments"][1]["atoms"] = [2, 4, 5]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (swap_fragments, ["checksum mismatch"]),
        (wrong_element, ["fragment 1 lists elements ['N', 'H', 'H']"]),
        (unknown_unit, ["units", "eV"]),
        (overlapping, ["do not cover atoms 0…5 exactly once"]),
    ],
    ids=["swapped_atoms", "wrong_element", "unknown_unit", "overlapping_atoms"],
)
def test_a_delta_file_with_an_inconsistent_manifest_is_refused(
    files, tmp_path, capsys, edit, words
):
    bad = tmp_path / "bad.npz"
    with np.load(files["delta"], allow_pickle=False) as f:
        manifest = manifest_edit(edit)(f["manifest"])
    edited(files["delta"], bad, manifest=manifest)
    with pytest.raises(ModelError, match="bad.npz"):
        load_model(bad)
    one_line_refusal(capsys, bad, files["delta_data"], *words)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"binding__R_d_desc_alpha": flip_byte}, ["part 'binding'", "checksum mismatch"]),
        ({"fragment_0__std": np.array(0.0)}, ["part 'fragment_0'", "'std' is 0.0"]),
        ({"geometry_hashes_train": flip_byte}, ["checksum mismatch"]),
    ],
    ids=["flipped_part_byte", "zero_part_std", "flipped_hash"],
)
def test_a_corrupted_delta_file_is_refused_in_one_line(files, tmp_path, capsys, changes, words):
    bad = tmp_path / "bad.npz"
    edited(files["delta"], bad, **changes)
    with pytest.raises(ModelError, match="bad.npz"):
        load_model(bad)
    one_line_refusal(capsys, bad, files["delta_data"], *words)


def test_sgdml_predicts_alike_with_the_new_keys(files, tmp_path):
    """sGDML 1.0.3 reads a file with content hashes and checksum, and an extracted part,
    exactly as the same file without them, and as we do."""
    from test_interop_sgdml import _sgdml_importable, run_reference

    if not _sgdml_importable():
        pytest.skip("no sGDML 1.0.3 environment (see test_interop_sgdml.py)")
    extract_part(files["delta"], "binding", tmp_path / "binding.npz")
    cases = {
        files["single"]: load_dataset(files["single_data"]).R[:5],
        tmp_path / "binding.npz": load_dataset(files["delta_data"]).R[:5],
    }
    for path, R in cases.items():
        np.save(tmp_path / "q.npy", R)
        strip_new_keys(path, tmp_path / "plain.npz")
        out = []
        for model in (path, tmp_path / "plain.npz"):
            run_reference("predict", str(model), str(tmp_path / "q.npy"), str(tmp_path / "o.npz"))
            with np.load(tmp_path / "o.npz") as f:
                out.append((f["E"], f["F"]))
        for a, b in zip(*out, strict=True):
            np.testing.assert_array_equal(a, b)
        E, F = load_model(path).predict(R)
        np.testing.assert_allclose(out[0][0], E, rtol=1e-6)
        np.testing.assert_allclose(out[0][1], F, rtol=1e-6, atol=1e-7)

"""The Δ-sGDML composite: one model per fragment plus a binding model on the complex.

E(X) = Σ_k E_k(x_k) + E_b(X) and F(X) = (F_1(x_1), …, F_n(x_n)) + F_b(X).
A single-atom fragment (an ion) contributes a constant energy and zero force.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from deltagdml.errors import ModelError
from deltagdml.gdml.model import GDMLModel, check_same_atoms
from deltagdml.gdml.model_io import load_model
from deltagdml.npz_io import read_npz


@dataclass
class FragmentTerm:
    """A learned fragment model, or the constant energy of a single-atom fragment."""

    atoms: np.ndarray
    model: GDMLModel | None = None
    constant_energy: float = 0.0

    def __post_init__(self) -> None:
        self.atoms = np.asarray(self.atoms, dtype=int)
        if self.model is None and self.atoms.size != 1:
            raise ModelError(
                f"fragment with atoms {self.atoms.tolist()} has no model; only a single-atom "
                "fragment may be a constant"
            )
        if self.model is not None and self.model.n_atoms != self.atoms.size:
            raise ModelError(
                f"fragment model is for {self.model.n_atoms} atoms but the fragment has "
                f"{self.atoms.size}"
            )


class DeltaModel:
    """Sum of fragment models and a binding model; same ``predict`` as :class:`GDMLModel`."""

    def __init__(self, z: np.ndarray, fragments: list[FragmentTerm], binding: GDMLModel) -> None:
        self.z_ = np.asarray(z, dtype=int)
        self.fragments = fragments
        self.binding = binding
        covered = np.sort(np.concatenate([f.atoms for f in fragments]))
        if not np.array_equal(covered, np.arange(self.z_.size)):
            raise ModelError("fragments must cover every atom of the complex exactly once")
        if not np.array_equal(binding.z_, self.z_):
            raise ModelError("the binding model is for different atoms than the complex")
        for k, f in enumerate(fragments):
            if f.model is not None and not np.array_equal(f.model.z_, self.z_[f.atoms]):
                raise ModelError(f"the model of fragment {k} is for different atoms")

    @classmethod
    def from_parts(
        cls,
        z: np.ndarray,
        fragments: list[np.ndarray],
        parts: dict[str, GDMLModel],
        constant_energies: dict[int, float],
    ) -> DeltaModel:
        """The composite of learned ``parts`` (``fragment_k``, ``binding``); a single-atom
        fragment k is the constant ``constant_energies[k]`` (kcal/mol)."""
        terms = []
        for k, idx in enumerate(fragments):
            if len(idx) == 1:
                if k not in constant_energies:
                    raise ModelError(f"no constant energy for single-atom fragment {k}")
                terms.append(FragmentTerm(idx, None, float(constant_energies[k])))
            else:
                terms.append(FragmentTerm(idx, parts[f"fragment_{k}"]))
        return cls(z, terms, parts["binding"])

    @classmethod
    def from_files(
        cls,
        z: np.ndarray,
        fragments: list[np.ndarray],
        model_paths: dict[str, str | os.PathLike],
        binding_dataset: str | os.PathLike,
    ) -> DeltaModel:
        """The composite of the sGDML model files ``model_paths`` (by part; a ``full`` entry
        is ignored), with the single-atom fragments' constant energies stored in the binding
        dataset."""
        parts = {part: load_model(path) for part, path in model_paths.items() if part != "full"}
        return cls.from_parts(z, fragments, parts, read_constant_energies(binding_dataset))

    @property
    def n_atoms(self) -> int:
        return int(self.z_.size)

    def parts(self) -> dict[str, GDMLModel]:
        """The learned parts by name: ``fragment_k`` (multi-atom fragments), ``binding``."""
        out = {f"fragment_{k}": f.model for k, f in enumerate(self.fragments) if f.model}
        return out | {"binding": self.binding}

    def check_atoms(self, z: np.ndarray, source: str) -> None:
        """Raise :class:`ModelError` unless ``z`` are the atoms of the complex."""
        check_same_atoms(self.z_, z, source)

    def predict_parts(self, R: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Energy and force of each term: 'fragment_k' (forces on its atoms), 'binding'."""
        R = np.asarray(R, dtype=float)
        if R.ndim == 2:
            R = R[None]
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for k, f in enumerate(self.fragments):
            if f.model is None:
                parts[f"fragment_{k}"] = (
                    np.full(R.shape[0], f.constant_energy),
                    np.zeros((R.shape[0], f.atoms.size, 3)),
                )
            else:
                parts[f"fragment_{k}"] = f.model.predict(R[:, f.atoms])
        parts["binding"] = self.binding.predict(R)
        return parts

    def predict(
        self, R: np.ndarray, return_std: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies (Q,) and forces (Q, N, 3) of the complex; with ``return_std`` also the
        uncertainty (Q,), the parts' combined as independent errors: √(Σ_k std_k²)."""
        parts = self.predict_parts(R)
        E, F = parts["binding"]
        E, F = E.copy(), F.copy()
        for k, f in enumerate(self.fragments):
            E_k, F_k = parts[f"fragment_{k}"]
            E += E_k
            F[:, f.atoms] += F_k
        if not return_std:
            return E, F
        return E, F, self.predict_std(R)

    def predict_std(self, R: np.ndarray) -> np.ndarray:
        """Uncertainty (Q,) of the composite: √(Σ_k std_k²) over the learned parts."""
        stds = self.predict_std_parts(R)
        return np.sqrt(sum(s**2 for s in stds.values()))

    def predict_std_parts(self, R: np.ndarray) -> dict[str, np.ndarray]:
        """Uncertainty (Q,) of each learned part (a constant fragment has none)."""
        R = np.asarray(R, dtype=float)
        if R.ndim == 2:
            R = R[None]
        out = {f"fragment_{k}": f.model.predict_std(R[:, f.atoms]) for k, f in self._learned()}
        return out | {"binding": self.binding.predict_std(R)}

    def _learned(self) -> list[tuple[int, FragmentTerm]]:
        return [(k, f) for k, f in enumerate(self.fragments) if f.model is not None]


def uncertainty_by_part(model: GDMLModel | DeltaModel, R: np.ndarray) -> dict[str, np.ndarray]:
    """Uncertainty (Q,) of each part of ``model``: ``{"model": ...}`` for a single model."""
    if isinstance(model, DeltaModel):
        return model.predict_std_parts(R)
    return {"model": model.predict_std(R)}


def thresholds_by_part(model: GDMLModel | DeltaModel) -> dict[str, float | None]:
    """The calibrated uncertainty threshold of each part (None: not calibrated), keyed as
    :func:`uncertainty_by_part`."""
    if isinstance(model, DeltaModel):
        return {part: m.uncertainty_threshold_ for part, m in model.parts().items()}
    return {"model": model.uncertainty_threshold_}


def threshold_ratio(stds: dict[str, np.ndarray], thresholds: dict[str, float | None]) -> np.ndarray:
    """max_k std_k / threshold_k per geometry: above 1, a part has left its data. NaN where
    no part has a threshold."""
    ratios = [stds[k] / t for k, t in thresholds.items() if t is not None and t > 0]
    if not ratios:
        return np.full(len(next(iter(stds.values()))), np.nan)
    return np.max(ratios, axis=0)


def read_constant_energies(binding_dataset: str | os.PathLike) -> dict[int, float]:
    """Energies (kcal/mol) of the single-atom fragments, by fragment index, as stored in a
    binding dataset (keys ``constant_fragments``, ``constant_energies``)."""
    keys = ("constant_fragments", "constant_energies")
    stored = read_npz(binding_dataset, keys, "binding dataset")
    return dict(
        zip(
            stored["constant_fragments"].tolist(),
            stored["constant_energies"].tolist(),
            strict=True,
        )
    )

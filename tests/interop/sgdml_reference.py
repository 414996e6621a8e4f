"""Run sGDML 1.0.3 (reference implementation) in its own environment.

Called by tests/gdml/test_interop_sgdml.py with the interpreter of a separate virtual
environment holding ``sgdml`` and ``numpy<2.4``; never imported by the package.

    python sgdml_reference.py predict MODEL.npz GEOMS.npy OUT.npz
    python sgdml_reference.py train DATASET.npz N_TRAIN N_VALID SIGMA SEED OUT_MODEL.npz
"""

import logging
import sys

import numpy as np

logging.disable(logging.CRITICAL)


def predict(model_path: str, geoms_path: str, out_path: str) -> None:
    from sgdml.predict import GDMLPredict

    model = dict(np.load(model_path, allow_pickle=True))
    gdml = GDMLPredict(model, max_processes=1, use_torch=False)
    R = np.load(geoms_path)
    E, F = gdml.predict(R.reshape(R.shape[0], -1))
    np.savez(out_path, E=E, F=F.reshape(R.shape))


def train(dataset_path, n_train, n_valid, sigma, seed, out_path) -> None:
    from sgdml.train import GDMLTrain

    np.random.seed(int(seed))  # noqa: NPY002 - sGDML draws from the global RNG
    dataset = dict(np.load(dataset_path, allow_pickle=True))
    trainer = GDMLTrain(max_processes=1, use_torch=False)
    task = trainer.create_task(
        dataset, int(n_train), dataset, int(n_valid), sig=float(sigma), use_sym=True
    )
    model = trainer.train(task)
    np.savez(out_path, **model)


if __name__ == "__main__":
    {"predict": predict, "train": train}[sys.argv[1]](*sys.argv[2:])

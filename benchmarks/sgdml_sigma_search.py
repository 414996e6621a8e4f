"""σ search with sGDML 1.0.3 itself, for the kernel benchmark's side-by-side timing.

Run with the interpreter of the sGDML environment (tests/interop/setup_sgdml_env.sh):
    .venv-sgdml/bin/python benchmarks/sgdml_sigma_search.py TRAIN.npz VALID.npz TEST.npz S1 S2 …
Each file is an sGDML dataset holding exactly its split; prints one JSON line: the wall
time of the whole search (train + validate every σ, test the best), the σ chosen and its
test force MAE (kcal/mol/Å).
"""

import json
import logging
import sys
import time

import numpy as np

logging.disable(logging.CRITICAL)


def main(train_path: str, valid_path: str, test_path: str, *sigmas: str) -> None:
    from sgdml.predict import GDMLPredict
    from sgdml.train import GDMLTrain

    paths = (train_path, valid_path, test_path)
    train, valid, test = (dict(np.load(p, allow_pickle=False)) for p in paths)
    trainer = GDMLTrain(max_processes=2, use_torch=False)
    np.random.seed(0)  # noqa: NPY002 - sGDML draws from the global RNG
    t0 = time.perf_counter()
    best = None
    for sigma in map(float, sigmas):
        task = trainer.create_task(
            train, len(train["R"]), valid, len(valid["R"]), sig=sigma, use_sym=True
        )
        model = trainer.train(task)
        predictor = GDMLPredict(model, max_processes=2, use_torch=False)
        _, F = predictor.predict(valid["R"].reshape(len(valid["R"]), -1))
        rmse = float(np.sqrt(np.mean((F.reshape(valid["F"].shape) - valid["F"]) ** 2)))
        if best is None or rmse < best[0]:
            best = (rmse, sigma, predictor)
    _, F = best[2].predict(test["R"].reshape(len(test["R"]), -1))
    mae = float(np.abs(F.reshape(test["F"].shape) - test["F"]).mean())
    wall = time.perf_counter() - t0
    print(json.dumps({"search_s": wall, "sigma": best[1], "test_f_mae": mae}))


if __name__ == "__main__":
    main(*sys.argv[1:])

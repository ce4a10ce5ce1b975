import json

import numpy as np

import fastleaky
from fastleaky import config, registry, tune


def test_crossover_ignores_one_noisy_point():
    sizes = [1, 2, 4, 8, 16, 32]
    serial = [1, 1, 1, 1, 1, 1]
    parallel = [2, 2, 0.5, 0.5, 1.2, 0.5]
    assert tune._crossover(sizes, serial, parallel) == 4
    assert tune._crossover(sizes, serial, [2] * 6) == 64  # never wins: off


def test_tune_writes_file_the_dispatcher_reads(tmp_path, monkeypatch):
    path = tmp_path / "tune.json"
    monkeypatch.setenv(config.ENV_TUNE_FILE, str(path))
    config.reload()
    try:
        data = tune.run(sizes=(1024, 2048, 4096))
        saved = json.loads(path.read_text())
        assert saved["parallel_min_elements"] == data["parallel_min_elements"]
        for name, n in saved["parallel_min_elements"].items():
            assert config.parallel_min_elements(name) == n
        assert config.thresholds_in_force()["source"] == str(path)
        x = np.linspace(-1, 1, 5000, dtype=np.float32)
        np.testing.assert_array_equal(fastleaky.leaky_relu(x), np.where(x > 0, x, x * np.float32(0.01)))
    finally:
        monkeypatch.undo()  # the session's tune file (see conftest), not this one
        config.reload()
        registry.forget_decisions()

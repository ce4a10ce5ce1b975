import json
import os
import threading
import warnings

import numpy as np
import pytest

import fastleaky
from fastleaky import cli, config, info, reference, registry, tune


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


# ---------------------------------------------------------------- a tune file that does not validate

BAD_FILES = [
    pytest.param('{"parallel_min_elements": {"float32": "abc"}}', "must be a whole number",
                 id="string"),
    pytest.param('{"parallel_min_elements": {"float32": null}}', "must be a whole number",
                 id="null"),
    pytest.param('{"parallel_min_elements": {"float64": 1e30}}', "must be a whole number",
                 id="huge-float"),
    pytest.param('{"parallel_min_elements": {"float64": 100000000000000000000000000000}}',
                 "must be between 0 and", id="huge-int"),
    pytest.param('{"parallel_min_elements": {"float32": Infinity}}', "Infinity is not JSON",
                 id="infinity"),
    pytest.param('{"parallel_min_elements": {"float32": NaN}}', "NaN is not JSON", id="nan"),
    pytest.param('{"parallel_min_elements": {"float32": true}}', "must be a whole number",
                 id="bool"),
    pytest.param('{"parallel_min_elements": {"float32": 65536.0}}', "must be a whole number",
                 id="float"),
    pytest.param('{"parallel_min_elements": 5}', "must map dtype names to sizes", id="not-a-map"),
    pytest.param('{"parallel_min_elements": {"float32": -5}}', "must be between 0 and",
                 id="negative"),
    pytest.param('{"parallel_min_elements": {"flaot32": 5}}', "unknown dtype", id="typo"),
    pytest.param('{"threads": 2}', "no 'parallel_min_elements' entry", id="no-thresholds"),
    pytest.param('[1, 2]', "expected a JSON object", id="list"),
    pytest.param('{"parallel_min_elements": {"float32": 5', "not a valid tune file",
                 id="truncated"),
    pytest.param('', "not a valid tune file", id="empty"),
]


@pytest.fixture
def tune_file_at(tmp_path, monkeypatch):
    """``tune_file_at(text)``: the dispatcher reads a tune file holding ``text``."""
    path = tmp_path / "tune.json"

    def use(text):
        path.write_text(text)
        monkeypatch.setenv(config.ENV_TUNE_FILE, str(path))
        config.reload()
        registry.forget_decisions()
        return path

    yield use
    monkeypatch.undo()
    config.reload()
    registry.forget_decisions()


def _calls_with_defaults():
    """Every dtype through "auto" (the fast entries included) and each host
    backend, at sizes on both sides of the default thresholds."""
    for dtype in ("float16", "float32", "float64"):
        for n in (10, config.DEFAULT_PARALLEL_MIN_ELEMENTS[dtype] + 1):
            x = np.linspace(-1, 1, n, dtype=dtype)
            for backend in [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]:
                np.testing.assert_array_equal(fastleaky.leaky_relu(x, backend=backend),
                                              reference.leaky_relu(x))
            np.testing.assert_array_equal(fastleaky.leaky_relu(x), reference.leaky_relu(x))


@pytest.mark.parametrize(("text", "problem"), BAD_FILES)
def test_bad_tune_file_is_ignored_with_one_warning(tune_file_at, text, problem):
    path = tune_file_at(text)
    with pytest.warns(config.TuneFileWarning) as record:
        _calls_with_defaults()
        _calls_with_defaults()
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert str(path) in message and problem in message, message
    assert record[0].filename == __file__  # points at the caller, not at fastleaky
    in_force = config.thresholds_in_force()
    assert in_force["parallel_min_elements"] == config.DEFAULT_PARALLEL_MIN_ELEMENTS
    assert in_force["source"] == "built-in defaults"
    assert problem in in_force["ignored"]


def test_info_says_the_tune_file_was_ignored(tune_file_at):
    path = tune_file_at('{"parallel_min_elements": {"float64": Infinity}}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # info reports it instead of warning
        text = info.render_text()
    assert f"{path} ignored: it is not a valid tune file (Infinity is not JSON)" in text
    assert "parallel from 262,144 elements (float64)" in text


def test_unreadable_tune_file_is_ignored_with_a_warning(tmp_path, tune_file_at):
    path = tune_file_at("{}")
    path.unlink()
    path.mkdir()
    with pytest.warns(config.TuneFileWarning, match="cannot be read"):
        assert config.parallel_min_elements("float32") == 262_144


def test_missing_tune_file_is_silent(tmp_path, tune_file_at):
    path = tune_file_at("{}")
    path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config.thresholds_in_force()["ignored"] is None
        _calls_with_defaults()


def test_valid_partial_tune_file_is_used(tune_file_at):
    path = tune_file_at('{"parallel_min_elements": {"float32": 0}, "cpu": "x", "other": [1]}')
    assert config.parallel_min_elements("float32") == 0  # threads for every size
    assert config.parallel_min_elements("float64") == 262_144
    assert config.thresholds_in_force()["source"] == str(path)
    _calls_with_defaults()


# ---------------------------------------------------------------- writing the tune file

def _fake_measure(n_dtypes, points):
    """``tune.measure`` without the measuring: ``points`` sizes per dtype."""
    def measure(dtypes=None, sizes=None, progress=None):
        names = list(config.DEFAULT_PARALLEL_MIN_ELEMENTS)[:n_dtypes]
        return {"threads": 2, "dtypes": {
            name: {"threshold": 1024 * (i + 1), "sizes": list(range(points)),
                   "serial_s": [1e-3] * points, "parallel_s": [2e-3] * points}
            for i, name in enumerate(names)}}
    return measure


def test_readers_never_see_a_partial_tune_file(tmp_path, monkeypatch):
    """Two ``tune.run`` writing files of different lengths while readers
    read: every read is one whole file or the other."""
    path = tmp_path / "tune.json"
    by_writer = {"long": _fake_measure(3, 400), "short": _fake_measure(1, 3)}
    monkeypatch.setattr(tune, "measure",
                        lambda **kw: by_writer[threading.current_thread().name]())
    stop = threading.Event()
    bad = []

    def write():
        try:
            for _ in range(150):
                tune.run(path=path)
        finally:
            stop.set()

    def read():
        while not stop.is_set():
            try:
                config.validate_tune_data(json.loads(path.read_text()))
            except FileNotFoundError:  # before the first write
                pass
            except ValueError as exc:
                bad.append(str(exc))

    threads = [threading.Thread(target=write, name=name) for name in by_writer]
    threads += [threading.Thread(target=read) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        config.reload()
        registry.forget_decisions()
    assert not bad, f"{len(bad)} partial reads, e.g. {bad[0]}"
    assert not list(tmp_path.glob(".tune.json.*")), "temporary files left behind"


def _measure_must_not_run(**kw):
    raise AssertionError("measured before the target was checked")


@pytest.mark.parametrize("kind", ["folder", "under-a-file"])
def test_unwritable_target_fails_before_measuring(tmp_path, monkeypatch, capsys, kind):
    monkeypatch.setattr(tune, "measure", _measure_must_not_run)
    (tmp_path / "plain").write_text("")
    target = tmp_path if kind == "folder" else tmp_path / "plain" / "tune.json"
    with pytest.raises(OSError, match="cannot write the tune file"):
        tune.run(path=target)
    # the command line: one line, exit status 2, nothing measured
    assert cli.main(["tune", "-q", "-o", str(target)]) == 2
    assert "fastleaky tune: error: cannot write the tune file" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="POSIX permissions, which root bypasses")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_target_fails_before_measuring(tmp_path, monkeypatch, what):
    monkeypatch.setattr(tune, "measure", _measure_must_not_run)
    target = tmp_path / "tune.json"
    target.write_text("{}")
    locked = target if what == "file" else tmp_path
    mode = locked.stat().st_mode
    locked.chmod(mode & 0o555)
    try:
        with pytest.raises(OSError, match="cannot write the tune file"):
            tune.run(path=target)
    finally:
        locked.chmod(mode)


def test_written_file_validates_and_follows_a_link(tmp_path, monkeypatch):
    monkeypatch.setattr(tune, "measure", _fake_measure(3, 4))
    real = tmp_path / "real" / "tune.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "tune.json"
    link.symlink_to(real)
    try:
        tune.run(path=link)
    finally:
        config.reload()
        registry.forget_decisions()
    assert link.is_symlink()  # the link stays; the file it points to is replaced
    saved = config.validate_tune_data(json.loads(real.read_text()))
    assert saved == {"float16": 1024, "float32": 2048, "float64": 3072}
    umask = os.umask(0)
    os.umask(umask)
    assert real.stat().st_mode & 0o777 == 0o666 & ~umask  # as open(path, "w") creates it
    assert sorted(p.name for p in real.parent.iterdir()) == ["tune.json"]

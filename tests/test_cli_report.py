"""The report commands: bench, report, plot and info; their help and their errors.

Fast and without timing assertions: tiny sizes, one repeat, no minimum repeat time.
"""

import json
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

from fastleaky import cli
from fastleaky.bench import impls, report, runner

pytest.importorskip("matplotlib")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = ["--sizes", "1000,3000", "--dtypes", "float32", "--repeats", "1",
        "--min-repeat-ms", "0"]


def _python_m(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastleaky", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def _one_error_line(capsys, *argv):
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # a usage error, from the argument parser
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and err[0].startswith(f"fastleaky {argv[0]}: error:")
    return err[0]


@pytest.mark.parametrize("command", ["info", "demo", "bench", "report", "plot"])
def test_help_for_each_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: fastleaky {command}" in capsys.readouterr().out


def test_python_m_fastleaky_is_the_same_cli():
    done = _python_m("bench", "--help")
    assert done.returncode == 0 and "--quick" in done.stdout
    done = _python_m("bench", "--backends", "no-such-backend")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "fastleaky bench: error: unknown fastleaky backend 'no-such-backend'; valid names: "
        + ", ".join(__import__("fastleaky").registry.NAMES)]


def test_the_parser_imports_nothing_heavy():
    code = ("import sys, fastleaky.cli; fastleaky.cli.build_parser(); "
            "print(sorted(m for m in ('numba', 'matplotlib', 'torch', 'rich', 'numexpr') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_info_names_threads_and_gpu(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "threads:" in out and "usable_cpus" in out
    assert "GPU:" in out  # found or, without one, why not


def test_bench_writes_the_three_files(tmp_path, capsys):
    folder = tmp_path / "report"
    assert cli.main(["bench", *TINY, "--output", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(report.FILES)
    assert (folder / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((folder / "results.json").read_text())
    names = {r["impl"] for r in data["results"]}
    assert names == set(impls.registry())  # every implementation, nothing dropped
    assert {r["size"] for r in data["results"]} == {1000, 3000}
    for r in data["results"]:
        assert r["seconds"] > 0 and r["gbps"] > 0
        if r["family"] != "peer":
            assert r["check"] == "bit-exact", r
    prov = data["provenance"]
    for key in ("cpu", "logical_cpus", "memory_bytes", "os", "python", "versions",
                "threading", "command", "date"):
        assert prov.get(key), key
    assert "numba_threading_layer" in prov["threading"]
    md = (folder / "report.md").read_text()
    assert "](throughput.png)" in md and "## Provenance" in md
    assert "measured too briefly" in md  # a 1-repeat sweep cannot be called quiet
    assert "| numpy:copyto | " in md
    for r in data["results"]:
        assert len(r["samples"]) == 1 and r["ratio_best_copy"] is not None
        if r["family"] == "limit":
            assert r["ratio_best_copy"] <= 1.0
    out = capsys.readouterr().out
    assert "numpy:where" in out and "report.md" in out


def test_bench_filters_keep_the_baselines(tmp_path, capsys):
    chosen = [i.name for i in runner.select(["torch:*"], None)]
    assert set(chosen) >= {"numpy:copyto", "numpy:where"}
    assert not any(n.startswith("fastleaky:") for n in chosen)
    chosen = [i.name for i in runner.select(None, ["cython"])]
    assert "fastleaky:cython" in chosen and "fastleaky:numba-cpu" not in chosen
    assert cli.main(["bench", "--list", "--impls", "numpy:*"]) == 0
    assert "numpy:two-pass" in capsys.readouterr().out


def test_two_pass_is_skipped_where_it_is_wrong(tmp_path, capsys):
    folder = tmp_path / "r"
    assert cli.main(["bench", *TINY, "--alpha", "1.5", "--impls", "numpy:*",
                     "-o", str(folder)]) == 0
    data = json.loads((folder / "results.json").read_text())
    assert "numpy:two-pass" not in {r["impl"] for r in data["results"]}
    assert any(s["impl"] == "numpy:two-pass" for s in data["skipped"])
    assert "wrong for alpha=1.5" in (folder / "report.md").read_text()


def test_bench_errors_are_one_line(tmp_path, capsys):
    line = _one_error_line(capsys, "bench", "--backends", "nope")
    assert "unknown fastleaky backend 'nope'" in line
    line = _one_error_line(capsys, "bench", "--impls", "nothing-like-this")
    assert "no implementation matches" in line
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _one_error_line(capsys, "bench", *TINY, "--output", str(blocker / "sub"))
    assert "cannot write to output folder" in line


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmark suite not beside the tests")
def test_report_renders_pytest_benchmark_json(tmp_path, capsys):
    pytest.importorskip("pytest_benchmark")
    json_file = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCHMARKS), "-q", "-p", "no:cacheprovider",
         "--benchmark-enable", "--bench-sizes", "1000", "-k", "numpy and float32",
         "--bench-repeats", "3", "--bench-min-repeat-ms", "0.1",
         "--benchmark-json", str(json_file)],
        capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    measured = json.loads(json_file.read_text())["benchmarks"]
    assert {b["stats"]["rounds"] for b in measured} == {3}  # fastleaky bench's timing
    assert all("other_cpus" in b["extra_info"]["machine"] for b in measured)
    folder = tmp_path / "out"
    assert cli.main(["report", str(json_file), "--output", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(report.FILES)
    md = (folder / "report.md").read_text()
    assert "## float32: GB/s ±spread (× best copy)" in md
    assert "| numpy:copyto | 1.0" not in md  # GB/s first, then the ratio
    assert "numpy:where" in md and "## Provenance" in md and "pytest" in md


def test_report_errors_are_one_line(tmp_path, capsys):
    _one_error_line(capsys, "report", str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not JSON" in _one_error_line(capsys, "report", str(bad))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"benchmarks": []}))
    assert "no fastleaky benchmarks" in _one_error_line(capsys, "report", str(other))


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_plot_writes_png_and_svg(tmp_path, suffix, magic, capsys):
    path = tmp_path / f"leaky{suffix}"
    assert cli.main(["plot", "--alpha", "0.1", "--alpha", "0.5", "--xmin", "-3",
                     "-o", str(path)]) == 0
    assert magic in path.read_bytes()[:400]


def test_plot_errors_are_one_line(tmp_path, capsys):
    assert ".png or .svg" in _one_error_line(capsys, "plot", "-o", str(tmp_path / "x.gif"))
    assert "--xmin" in _one_error_line(capsys, "plot", "--xmin", "2", "--xmax", "1",
                                       "-o", str(tmp_path / "x.png"))


def test_size_labels():
    assert [report.size_label(n) for n in (1000, 50_000_000, 100_000_000, 1234, 7)] == [
        "1e3", "5e7", "1e8", "1,234", "7"]


def test_bench_isolate_measures_each_implementation_in_its_own_process(tmp_path, capsys,
                                                                        monkeypatch):
    # A working directory holding another "fastleaky" (a source checkout without
    # its compiled loops, say) must not be what the fresh processes import.
    decoy = tmp_path / "cwd" / "fastleaky"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy package was imported')\n")
    monkeypatch.chdir(decoy.parent)
    folder = tmp_path / "iso"
    argv = ["bench", *TINY, "--repeats", "2", "--alpha", "1.5", "--isolate", "--rounds", "2",
            "--impls", "numpy:*,fastleaky:cython", "-o", str(folder)]
    assert cli.main(argv) == 0
    data = json.loads((folder / "results.json").read_text())
    assert data["settings"]["isolated"] is True
    assert "fresh process" in data["settings"]["timing"]
    got = [(r["dtype"], r["size"], r["impl"]) for r in data["results"]]
    copies = [n for n, i in impls.registry().items() if i.family == "limit"]  # always run
    names = [*copies, "fastleaky:cython", "numpy:where"]  # maximum: wrong at 1.5
    assert got == [("float32", n, name) for n in (1000, 3000) for name in names]
    for r in data["results"]:
        assert len(r["samples"]) == 4 == r["repeats"]  # 2 rounds x 2 repeats
        assert r["seconds"] == sorted(r["samples"])[1] + (
            sorted(r["samples"])[2] - sorted(r["samples"])[1]) / 2
        assert r["check"] == "bit-exact" or r["impl"].startswith("numpy:")
    assert {s["impl"] for s in data["skipped"]} == {"numpy:two-pass", "numpy:maximum"}


def test_bench_isolate_reports_a_failed_worker_in_one_line(tmp_path, capsys, monkeypatch):
    from fastleaky.bench import isolated

    if sys.platform == "win32":
        pytest.skip("a shell script stands in for a crashing Python")
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'worker crashed' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(isolated, "_PYTHON", str(broken))
    line = _one_error_line(capsys, "bench", *TINY, "--isolate", "--impls", "numpy:copyto",
                           "-o", str(tmp_path / "r"))
    assert "measuring numpy:copyto failed (exit 3): worker crashed" in line


def test_bench_isolate_keeps_the_worst_output_check(monkeypatch):
    from fastleaky.bench import isolated

    verdicts = iter(["close (max rel. err 1e-07)", "WRONG (max rel. err 1e+00)", "bit-exact"])

    def fake_process(name, settings):
        rec = {"impl": name, "family": "peer", "device": "cpu", "dtype": "float32",
               "size": 1000, "nbytes": 4000, "seconds": 1e-6, "samples": [1e-6],
               "repeats": 1, "loops": 1, "check": next(verdicts)}
        return {"results": [rec], "skipped": []}

    monkeypatch.setattr(isolated, "_in_fresh_process", fake_process)
    settings = runner.Settings(sizes=(1000,), dtypes=("float32",))
    chosen = [impls.registry()["numpy:copyto"]]
    measured = isolated.run(chosen, settings, rounds=3)
    assert measured["results"][0]["check"] == "WRONG (max rel. err 1e+00)"
    assert measured["results"][0]["samples"] == [1e-6] * 3


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastleaky {__import__('fastleaky').__version__}"


def test_sizes_in_any_notation_everywhere(capsys):
    assert cli.main(["demo", "--size", "1e3"]) == 0
    assert "leaky_relu on 1,000 float32 values" in capsys.readouterr().out
    assert [cli.whole_number(t) for t in ("1000", "1_000", "1e3", "1.5e6", "0")] == [
        1000, 1000, 1000, 1_500_000, 0]
    assert cli.whole_number("123456789012345678901") == 123456789012345678901  # exact
    for bad in ("1.5", "abc", "-1", "nan", "inf", "1e999"):
        with pytest.raises(__import__("argparse").ArgumentTypeError):
            cli.whole_number(bad)


@pytest.mark.parametrize("argv, words", [
    (["bench", "--alpha", "nan"], "alpha must be finite"),
    (["bench", "--sizes", "1e20"], "--sizes: 100,000,000,000,000,000,000 float32 elements"),
    (["bench", "--repeats", "0"], "--repeats: must be >= 1"),
    (["bench", "--rounds", "0"], "--rounds: must be >= 1"),
    (["bench", "--min-repeat-ms", "-1"], "--min-repeat-ms: must be a finite number >= 0"),
    (["bench", "--bogus"], "unrecognized arguments: --bogus"),
    (["demo", "--size", "1.5"], "not a whole number"),
])
def test_bad_bench_arguments_are_one_line_and_write_nothing(argv, words, tmp_path, capsys):
    folder = tmp_path / "never"
    line = _one_error_line(capsys, *argv, *(["-o", str(folder)] if argv[0] == "bench" else []))
    assert words in line, line
    assert not folder.exists()


def test_report_takes_the_bench_folder(tmp_path, capsys):
    folder = tmp_path / "first"
    assert cli.main(["bench", *TINY, "--impls", "numpy:*", "-o", str(folder)]) == 0
    again = tmp_path / "again"
    assert cli.main(["report", str(folder), "-o", str(again)]) == 0
    assert sorted(p.name for p in again.iterdir()) == sorted(report.FILES)
    capsys.readouterr()
    assert "without a results.json" in _one_error_line(capsys, "report", str(tmp_path))


def _valid_results():
    rec = {"impl": "numpy:where", "family": "peer", "device": "cpu", "dtype": "float32",
           "size": 1000, "nbytes": 4000, "seconds": 1e-6, "samples": [1e-6]}
    return {"format": report.FORMAT, "results": [rec]}


def _valid_pytest_benchmark():
    return {"benchmarks": [{"extra_info": {"impl": "numpy:where", "family": "peer",
                                           "dtype": "float32", "size": 1000, "nbytes": 4000},
                            "stats": {"median": 1e-6, "q1": 1e-6, "q3": 1e-6}}]}


def _broken(make, path, value):
    data = make()
    *where, last = path
    target = data
    for key in where:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize("make, path, value, words", [
    (_valid_results, ["results", 0, "dtype"], KeyError, "results[0].dtype"),
    (_valid_results, ["results"], KeyError, "results: expected a list"),
    (_valid_results, ["results", 0, "seconds"], -1.0, "results[0].seconds"),
    (_valid_results, ["results", 0, "seconds"], float("nan"), "results[0].seconds"),
    (_valid_results, ["results", 0, "size"], 1e400, "results[0].size"),
    (_valid_results, ["results", 0, "samples"], [1e-6, -2.0], "results[0].samples[1]"),
    (_valid_results, ["results", 0, "dtype"], "int32", "floating-point dtype"),
    (_valid_pytest_benchmark, ["benchmarks", 0], None, "benchmarks[0]: expected an object"),
    (_valid_pytest_benchmark, ["benchmarks", 0, "extra_info", "size"], 1e400,
     "extra_info.size"),
    (_valid_pytest_benchmark, ["benchmarks", 0, "extra_info", "dtype"], KeyError,
     "extra_info.dtype"),
    (_valid_pytest_benchmark, ["benchmarks", 0, "stats", "median"], float("nan"),
     "stats.median"),
    (_valid_pytest_benchmark, ["benchmarks", 0, "stats"], KeyError, "stats: expected an"),
])
def test_malformed_files_are_one_line_and_write_nothing(make, path, value, words, tmp_path,
                                                        capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_broken(make, path, value)))
    folder = tmp_path / "never"
    line = _one_error_line(capsys, "report", str(bad), "-o", str(folder))
    assert "not a valid benchmark file" in line and words in line, line
    assert not folder.exists()


def test_pytest_benchmark_without_datetime_renders(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_valid_pytest_benchmark()))  # no datetime, no machine_info
    folder = tmp_path / "out"
    assert cli.main(["report", str(good), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(report.FILES)
    assert "not watched" in (folder / "report.md").read_text()


def test_plot_output_must_be_a_file_in_an_existing_folder(tmp_path, capsys):
    assert "is a folder" in _one_error_line(capsys, "plot", "-o", str(tmp_path))
    missing = tmp_path / "missing" / "dir" / "x.png"
    assert "no folder" in _one_error_line(capsys, "plot", "-o", str(missing))
    assert not (tmp_path / "missing").exists()


def test_info_names_a_bad_setting_and_still_reports(capsys, monkeypatch):
    monkeypatch.setenv("FASTLEAKY_BACKEND", "bogus")
    monkeypatch.setenv("FASTLEAKY_NUM_THREADS", "two")
    assert cli.main(["info"]) == 2  # everything printed, then a failure naming them
    captured = capsys.readouterr()
    assert "FASTLEAKY_BACKEND='bogus' is not a fastleaky backend" in captured.out
    assert "FASTLEAKY_NUM_THREADS='two' is not a whole number" in captured.out
    assert "backends:" in captured.out and "threads:" in captured.out
    assert "dispatcher thresholds" in captured.out and "GPU:" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("fastleaky info: error: FASTLEAKY_") for e in err)

"""``fastleaky compare``: ratios judged against the spread, the summary, the
exit status for CI, and runs from other machines or other formats."""

import json

import pytest

from fastleaky import cli
from fastleaky.bench import compare, report


def _run(tmp_path, name, times, *, cpu="CPU A", disturbed=False):
    """A results.json with one cell per implementation: ``times`` maps name ->
    the five repeats' seconds."""
    results = []
    for impl, samples in times.items():
        family = "limit" if impl == "numpy:copyto" else impl.split(":")[0]
        results.append({"impl": impl, "family": "fastleaky" if family == "fastleaky"
                        else family if family == "limit" else "peer",
                        "device": "cpu", "dtype": "float32", "size": 1_000_000,
                        "nbytes": 4_000_000, "seconds": sorted(samples)[len(samples) // 2],
                        "samples": samples, "check": "bit-exact", "disturbed": disturbed,
                        "machine": {"seconds": 1.0, "other_cpus": 1.0 if disturbed else 0.0,
                                    "other_cpu_s": 1.0 if disturbed else 0.0,
                                    "steal_cpus": 0.0}})
    path = tmp_path / name
    path.write_text(json.dumps({"format": report.FORMAT, "results": results,
                                "provenance": {"cpu": cpu, "logical_cpus": 2}}))
    return str(path)


FAST = [1.00e-4, 1.01e-4, 0.99e-4, 1.02e-4, 1.00e-4]
SLOW = [v * 3 for v in FAST]
NOISY = [0.6e-4, 1.0e-4, 1.6e-4, 0.8e-4, 1.3e-4]


def test_the_same_run_passes(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": FAST, "numpy:where": FAST})
    assert cli.main(["compare", base, base, "--fail-above", "25"]) == 0
    out = capsys.readouterr().out
    assert "0 slower, 0 faster, 1 same of 1 cells" in out
    assert "passed: no cell of fastleaky:* got slower by more than 25%" in out
    assert "different machines" not in out


def test_a_regression_beyond_the_threshold_fails(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": FAST, "numpy:where": FAST})
    new = _run(tmp_path, "b.json", {"fastleaky:auto": SLOW, "numpy:where": FAST})
    assert cli.main(["compare", base, new, "--fail-above", "25"]) == 1
    out = capsys.readouterr().out
    assert "3.00×  slower  REGRESSION" in out
    assert "FAILED: 1 cells of fastleaky:* got slower by more than 25%" in out
    # a threshold above the change, or no threshold, passes; so does a peer's regression
    assert cli.main(["compare", base, new, "--fail-above", "250"]) == 0
    assert cli.main(["compare", base, new]) == 0
    assert cli.main(["compare", new, base, "--fail-above", "25"]) == 0  # faster is fine
    assert "1 faster" in capsys.readouterr().out


def test_a_change_within_the_spread_is_the_same(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": NOISY})
    new = _run(tmp_path, "b.json", {"fastleaky:auto": [v * 1.3 for v in NOISY]})
    assert cli.main(["compare", base, new, "--fail-above", "25"]) == 0
    assert "1.30×  same" in capsys.readouterr().out


def test_chosen_implementations_and_busy_cells(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": FAST, "numpy:where": FAST})
    new = _run(tmp_path, "b.json", {"fastleaky:auto": FAST, "numpy:where": SLOW},
               disturbed=True)
    assert cli.main(["compare", base, new, "--impls", "numpy:*", "--fail-above", "25"]) == 1
    out = capsys.readouterr().out
    assert "numpy:where†" in out and "measured on a busy machine" in out


def test_other_machine_is_said(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": FAST})
    new = _run(tmp_path, "b.json", {"fastleaky:auto": FAST}, cpu="CPU B")
    assert cli.main(["compare", base, new]) == 0
    assert "different machines or versions (CPU: CPU A vs CPU B)" in capsys.readouterr().out


def test_pytest_benchmark_json_against_results_json(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": FAST})
    bench = {"benchmarks": [{"extra_info": {
        "impl": "fastleaky:auto", "family": "fastleaky", "device": "cpu", "dtype": "float32",
        "size": 1_000_000, "nbytes": 4_000_000},
        "stats": {"median": 3e-4, "q1": 2.9e-4, "q3": 3.1e-4, "rounds": 5}}]}
    new = tmp_path / "bench.json"
    new.write_text(json.dumps(bench))
    assert cli.main(["compare", base, str(new), "--fail-above", "25"]) == 1


def test_errors_are_one_line(tmp_path, capsys):
    base = _run(tmp_path, "a.json", {"fastleaky:auto": FAST})
    other = _run(tmp_path, "b.json", {"numpy:where": FAST})
    for argv, words in ((["compare", base, other], "no cell"),
                        (["compare", base, base, "--impls", "torch:*"], "matches 'torch:*'"),
                        (["compare", base, str(tmp_path / "missing.json")], "no such file")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", base, base, "--fail-above", "-1"])
    assert exc.value.code == 2


def test_verdict_needs_both_the_spread_and_the_floor():
    one = {"seconds": 1.0, "q1": 0.999, "q3": 1.001}
    assert compare.verdict(one, {"seconds": 1.03, "q1": 1.029, "q3": 1.031}) == "same"
    assert compare.verdict(one, {"seconds": 1.10, "q1": 1.09, "q3": 1.11}) == "slower"
    assert compare.verdict(one, {"seconds": 0.90, "q1": 0.89, "q3": 0.91}) == "faster"

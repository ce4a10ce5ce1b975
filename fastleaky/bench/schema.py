"""The structure ``fastleaky report`` and ``fastleaky compare`` accept, checked
before anything is printed or written.

Two formats: a ``results.json`` written by ``fastleaky bench`` (format
``fastleaky-bench/1``) and pytest-benchmark's ``--benchmark-json`` from the
suite in ``benchmarks/``.  Every field the report reads is checked for its
type and range here, so that a malformed or foreign file gives one line
naming the field (``results[3].size: ...``), never a traceback, and never a
row built from a negative or NaN time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np

if TYPE_CHECKING:
    from ..info import GpuInfo, ThreadingInfo

#: What an implementation is: fastleaky's own, another library's, or a copy.
Family = Literal["fastleaky", "peer", "limit"]
FAMILIES: tuple[Family, ...] = ("fastleaky", "peer", "limit")


class Window(TypedDict):
    """What other work did while one (dtype, size) was measured (``activity.between``)."""

    seconds: float
    other_cpus: float
    other_cpu_s: float
    steal_cpus: float


class _CellKeys(TypedDict):
    impl: str
    dtype: str
    size: int
    nbytes: int
    seconds: float


class Result(_CellKeys, total=False):
    """One measured cell: the median time per call and how it was measured.

    ``fastleaky bench`` writes every field but ``q1``/``q3``;
    pytest-benchmark's JSON gives ``q1``/``q3`` or ``samples``, and
    ``machine``/``disturbed`` only when the suite watched the machine.
    """

    family: Family
    device: str
    samples: list[float]
    q1: float
    q3: float
    repeats: int
    loops: int
    check: str
    machine: Window | None
    disturbed: bool


class Enriched(Result):
    """A :class:`Result` with the report's derived columns (``report.enrich``)."""

    gbps: float
    spread: float | None
    wide: bool
    ratio_copy: float | None
    best_copy: str | None
    ratio_best_copy: float | None
    speedup: float | None


class Skipped(TypedDict):
    """A cell not measured, and why."""

    impl: str
    dtype: str
    size: int
    reason: str


class Measured(TypedDict):
    """What a sweep gives: the measured cells and the skipped ones."""

    results: list[Result]
    skipped: list[Skipped]


class ImplRecord(TypedDict, total=False):
    """What the report says about one implementation."""

    family: Family
    device: str
    description: str
    note: str


class Provenance(TypedDict, total=False):
    """Where and how a report was measured (``provenance.collect``)."""

    date: str
    command: str
    cpu: str | None
    logical_cpus: int | None
    memory_bytes: int | None
    os: str
    python: str | None
    versions: dict[str, str]
    threading: ThreadingInfo
    load_average: list[float] | None
    load_average_end: list[float] | None
    machine_activity: str
    gpu: GpuInfo
    note: str


class RunSettings(TypedDict, total=False):
    """How the sweep was run; ``timing`` is the report's sentence about it."""

    sizes: list[int]
    dtypes: list[str]
    alpha: float
    repeats: int
    min_repeat_s: float
    elapsed_s: float
    timing: str
    isolated: bool
    source: str


class _ReportKeys(TypedDict):
    results: list[Result]


class Report(_ReportKeys, total=False):
    """A whole report: ``results.json`` of ``fastleaky bench`` (format
    ``fastleaky-bench/1``), or what ``report.from_pytest_benchmark`` makes."""

    format: str
    provenance: Provenance
    settings: RunSettings
    impls: dict[str, ImplRecord]
    skipped: list[Skipped]


class SchemaError(ValueError):
    """The file does not have the structure of a benchmark result; the message says where."""


def _fail(where: str, expected: str, value: object) -> SchemaError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return SchemaError(f"{where}: expected {expected}, got {shown}")


def _dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, "a list", value)
    return value


def _text(value: object, where: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise _fail(where, "a non-empty string" if not empty else "a string", value)
    return value


def _count(value: object, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"a whole number >= {minimum}", value)
    return value


def _time(value: object, where: str, *, zero: bool = False) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not (value > 0 or (zero and value == 0))):
        raise _fail(where, "a finite time in seconds " + (">= 0" if zero else "> 0"), value)
    return float(value)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, "a finite number", value)
    return float(value)


def _dtype(value: object, where: str) -> str:
    name = _text(value, where)
    try:
        ok = np.dtype(name).kind == "f"
    except TypeError:
        ok = False
    if not ok:
        raise _fail(where, "a floating-point dtype name", value)
    return name


def _optional(data: Mapping[str, Any], key: str, check: Callable[[Any, str], object],
              where: str) -> None:
    if data.get(key) is not None:
        check(data[key], f"{where}.{key}" if where else key)


def _cell(rec: Mapping[str, Any], where: str) -> None:
    """The fields that name a cell: implementation, dtype, size, bytes."""
    _text(rec.get("impl"), f"{where}.impl")
    _dtype(rec.get("dtype"), f"{where}.dtype")
    _count(rec.get("size"), f"{where}.size")
    _count(rec.get("nbytes"), f"{where}.nbytes", minimum=0)
    _optional(rec, "device", _text, where)
    if rec.get("family") is not None and rec["family"] not in FAMILIES:
        raise _fail(f"{where}.family", f"one of {', '.join(FAMILIES)}", rec["family"])
    _optional(rec, "check", _text, where)


def _samples(value: object, where: str) -> None:
    for i, v in enumerate(_list(value, where)):
        _time(v, f"{where}[{i}]")


def validate_results(data: Mapping[str, Any]) -> None:
    """Check a ``fastleaky bench`` results.json; raises :class:`SchemaError`."""
    results = _list(data.get("results"), "results")
    for i, rec in enumerate(results):
        where = f"results[{i}]"
        _dict(rec, where)
        _cell(rec, where)
        _time(rec.get("seconds"), f"{where}.seconds")
        _optional(rec, "samples", _samples, where)
        if rec.get("disturbed") is not None and not isinstance(rec["disturbed"], bool):
            raise _fail(f"{where}.disturbed", "true or false", rec["disturbed"])
        machine = rec.get("machine")
        if machine is not None:
            _dict(machine, f"{where}.machine")
            for key in ("seconds", "other_cpus", "other_cpu_s", "steal_cpus"):
                _number(machine.get(key), f"{where}.machine.{key}")
    for i, rec in enumerate(_list(data.get("skipped", []), "skipped")):
        where = f"skipped[{i}]"
        _dict(rec, where)
        _text(rec.get("impl"), f"{where}.impl")
        _dtype(rec.get("dtype"), f"{where}.dtype")
        _count(rec.get("size"), f"{where}.size")
        _text(rec.get("reason"), f"{where}.reason", empty=True)
    _common(data)


def validate_pytest_benchmark(data: Mapping[str, Any]) -> None:
    """Check pytest-benchmark JSON, the benchmarks of ``benchmarks/`` in it;
    raises :class:`SchemaError`.  Benchmarks without ``extra_info.impl`` are
    someone else's and are left alone (but must be objects)."""
    benchmarks = _list(data.get("benchmarks"), "benchmarks")
    for i, bench in enumerate(benchmarks):
        where = f"benchmarks[{i}]"
        _dict(bench, where)
        extra = bench.get("extra_info")
        if extra is None:
            continue
        _dict(extra, f"{where}.extra_info")
        if "impl" not in extra:
            continue
        _cell(extra, f"{where}.extra_info")
        _optional(extra, "alpha", _number, f"{where}.extra_info")
        stats = _dict(bench.get("stats"), f"{where}.stats")
        _time(stats.get("median"), f"{where}.stats.median")
        for key in ("q1", "q3", "min", "max"):
            _optional(stats, key, lambda v, w: _time(v, w, zero=True), f"{where}.stats")
        _optional(stats, "rounds", _count, f"{where}.stats")
        _optional(stats, "iterations", _count, f"{where}.stats")
        _optional(stats, "data", _samples, f"{where}.stats")
    _optional(data, "datetime", _text, "")
    _optional(data, "machine_info", _dict, "")
    machine = data.get("machine_info") or {}
    _optional(machine, "fastleaky", _dict, "machine_info")
    _optional(machine, "cpu", _dict, "machine_info")


def _common(data: Mapping[str, Any]) -> None:
    for key in ("provenance", "settings", "impls"):
        _optional(data, key, _dict, "")
    settings = data.get("settings") or {}
    _optional(settings, "alpha", _number, "settings")
    for name, meta in (data.get("impls") or {}).items():
        _dict(meta, f"impls.{name}")

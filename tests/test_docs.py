"""Every code block of the README and of the docs site (docs/**/*.md).

Python blocks run as scripts, each in a fresh interpreter, in a folder
shared by the blocks of one document (so a ``.pyx`` block can be built by
the ``setup.py`` block after it).  Conventions a block may use:

- a first line ``# NAME.EXT`` writes the block to that file instead of
  running it; ``# NAME.py -- COMMAND`` writes it and runs ``COMMAND``;
- a block that imports ``numba.cuda`` or ``fastleaky.cuda`` runs under the
  Numba CUDA simulator where there is no GPU; one that imports a library
  not installed here (CuPy, PyTorch, dask, ...) is skipped, saying which.

Shell blocks are not run (they install packages or run for minutes): each
command in them is checked instead -- the extras a ``pip install`` names
exist, a ``fastleaky`` subcommand exists, the paths ``pytest`` and ``bash``
are given exist.
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: the extras of pip commands are not checked
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# Blocks known to fail as written, keyed by a line of theirs: once the line
# changes, the block runs like any other.
KNOWN_FRAGMENTS: dict = {}  # code line -> why the block cannot run as written

FENCE = re.compile(r"^```([\w{}-]*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    lang: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def _blocks():
    for doc in DOCUMENTS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            lang = match.group(1).lower()
            if lang.startswith("{"):  # MyST directives (include, toctree)
                continue
            line = text.count("\n", 0, match.start()) + 1
            yield Block(doc, line, lang, match.group(2))


BLOCKS = list(_blocks())
PYTHON = [b for b in BLOCKS if b.lang in ("python", "py", "cython", "pyx")]
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]


def test_every_block_is_python_or_shell():
    """A block of another language would be neither run nor checked."""
    other = [(b.id, b.lang) for b in BLOCKS if b not in PYTHON and b not in SHELL]
    assert not other, other
    assert len(PYTHON) >= 10 and SHELL  # the documents were found and read


# ---------------------------------------------------------------- Python

_OPTIONAL = {"cupy": "cupy", "torch": "torch", "dask": "dask", "distributed": "distributed",
             "xarray": "xarray", "numba": "numba", "Cython": "Cython"}
_IMPORT = re.compile(r"^\s*(?:import|from)\s+([\w.]+(?:\s*,\s*[\w.]+)*)", re.M)


def _imported(code: str) -> set[str]:
    names = set()
    for group in _IMPORT.findall(code):
        for name in group.split(","):
            names.add(name.strip().split(".")[0])
    if "import cupy" in code or "cupy as" in code:
        names.add("cupy")
    return names


def _uses_cuda(code: str) -> bool:
    return bool(re.search(r"numba import cuda|numba\.cuda|fastleaky\.cuda|fastleaky import cuda",
                          code))


def _has_gpu() -> bool:
    return os.path.exists("/dev/nvidia0")


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """One folder per document, shared by its blocks in order."""
    made = {}

    def get(doc: Path) -> Path:
        if doc not in made:
            made[doc] = tmp_path_factory.mktemp(doc.stem)
        return made[doc]

    return get


def _header(code: str) -> tuple[str | None, str | None]:
    """(file name, command) from a first line ``# NAME.EXT [-- COMMAND]``."""
    first = code.split("\n", 1)[0].strip()
    match = re.fullmatch(r"#\s*([\w.-]+\.(?:py|pyx|pxd))\s*(?:--\s*(.+))?", first)
    return (match.group(1), match.group(2)) if match else (None, None)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block_runs(block, workdirs):
    for line, why in KNOWN_FRAGMENTS.items():
        if line in block.code:
            pytest.xfail(why)
    where = workdirs(block.document)
    name, command = _header(block.code)
    if name is not None:
        (where / name).write_text(block.code)
        if command is None:
            return
    missing = {m for m in _imported(block.code)
               if m in _OPTIONAL and importlib.util.find_spec(_OPTIONAL[m]) is None}
    if "cupy" in _imported(block.code) and not _has_gpu():
        missing.add("cupy")
    if missing:
        pytest.skip(f"needs {', '.join(sorted(missing))}")
    env = dict(os.environ)
    if _uses_cuda(block.code) and not _has_gpu():
        if importlib.util.find_spec("numba_cuda") is None:
            pytest.skip("needs numba-cuda")
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    if command is not None:
        if "build_ext" in command:
            cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
            if shutil.which(cc) is None:
                pytest.skip(f"no C compiler ({cc})")
        argv = shlex.split(command)
        if argv[0] == "python":
            argv[0] = sys.executable
    else:
        script = where / f"block_{block.line}.py"
        script.write_text(block.code)
        # NumPy's warnings are errors (fastleaky never warns on numbers);
        # libraries' own deprecation warnings from their internals are not.
        argv = [sys.executable, "-W", "error::RuntimeWarning", str(script)]
    proc = subprocess.run(argv, cwd=where, env=env, capture_output=True, text=True,
                          timeout=280)
    assert proc.returncode == 0, (
        f"{block.id} failed:\n{block.code}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}")
    ours = [line for line in proc.stderr.splitlines()
            if "Warning:" in line and f"{os.sep}fastleaky{os.sep}" in line]
    assert not ours, f"{block.id}: fastleaky warned:\n" + "\n".join(ours)


# ---------------------------------------------------------------- shell

def _commands(code: str):
    for raw in code.splitlines():
        line = raw.split("  #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s*(?:&&|\|\||;)\s*", line):
            if part:
                yield shlex.split(part)


def _check_pip(argv):
    if tomllib is None:
        return
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    for arg in argv[2:]:
        if arg.startswith("-"):
            continue
        match = re.fullmatch(r"\.\[([\w,-]+)\]", arg)
        if match:
            unknown = set(match.group(1).split(",")) - extras
            assert not unknown, f"pip install {arg}: no extra {unknown}"


def _check_fastleaky(argv):
    proc = subprocess.run([sys.executable, "-m", "fastleaky", argv[1], "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _check_paths(argv):
    for arg in argv[1:]:
        if not arg.startswith("-") and ("/" in arg or arg.endswith((".py", ".sh"))):
            assert (ROOT / arg).exists() or arg.endswith(".json"), f"{argv[0]} {arg}: no such path"


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_block_commands_exist(block):
    for argv in _commands(block.code):
        if argv[:2] in (["pip", "install"], ["python", "-m"]) and "pip" in argv[:3]:
            _check_pip(argv if argv[0] == "pip" else argv[2:])
        elif argv[0] == "fastleaky":
            _check_fastleaky(argv)
        elif argv[0] in ("pytest", "bash", "python"):
            _check_paths(argv)
        else:
            pytest.fail(f"{block.id}: no check for the command {argv[0]!r}")

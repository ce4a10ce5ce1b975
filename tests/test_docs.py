"""Every code block of the README and of the docs site (docs/**/*.md) runs.

Python blocks run as scripts, each in a fresh interpreter, in a folder
shared by the blocks of one document (so a ``.pyx`` block can be built by
the ``setup.py`` block after it, and used by the next).  Conventions a
block may use:

- a first line ``# NAME.EXT`` writes the block to that file instead of
  running it; ``# NAME.py -- COMMAND`` writes it and runs ``COMMAND``;
- a block that imports ``numba.cuda`` or ``fastleaky.cuda`` runs under the
  Numba CUDA simulator where there is no GPU; one that imports a library
  not installed here (CuPy, PyTorch, dask, ...) is skipped, saying which.

Shell blocks run with ``bash`` (errexit, pipefail) in that same folder,
with the installed ``fastleaky`` first on PATH and ``fastleaky tune``
writing into the folder.  A shell block with a command that installs
packages or needs the source tree and minutes (``pip``, ``pytest``,
``bash SCRIPT``, ``python SCRIPT.py``) is not run here: CI runs it, and
the test checks that every command of the block is, in the block's order,
a command of one script that ``.ci/run`` runs (``ci/docs`` holds those no
other script runs).  Two spellings count as the same command there:
``python -m pip`` and ``pip`` (CI runs in an activated virtual
environment), and a trailing ``"$@"`` (``.ci/run`` passes its scripts no
arguments).
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

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md",
             *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)]
CI_ENTRY = ROOT / ".ci" / "run"

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
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell")]


def test_every_block_is_python_or_shell():
    """A block of another language would be neither run nor checked."""
    other = [(b.id, b.lang) for b in BLOCKS if b not in PYTHON and b not in SHELL]
    assert not other, other
    assert len(PYTHON) >= 10 and len(SHELL) >= 5  # the documents were found and read


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """One folder per document, shared by its blocks in order."""
    made = {}

    def get(doc: Path) -> Path:
        if doc not in made:
            made[doc] = tmp_path_factory.mktemp(doc.stem)
        return made[doc]

    return get


# ---------------------------------------------------------------- Python

_OPTIONAL = {"cupy": "cupy", "torch": "torch", "dask": "dask", "distributed": "distributed",
             "xarray": "xarray", "pandas": "pandas", "numba": "numba", "Cython": "Cython"}
_IMPORT = re.compile(r"^\s*(?:import|from)\s+([\w.]+(?:\s*,\s*[\w.]+)*)", re.M)


def _imported(code: str) -> set[str]:
    names = set()
    for group in _IMPORT.findall(code):
        for name in group.split(","):
            names.add(name.strip().split(" ")[0].split(".")[0])
    if "import cupy" in code or "cupy as" in code:
        names.add("cupy")
    return names


def _uses_cuda(code: str) -> bool:
    return bool(re.search(r"numba import cuda|numba\.cuda|fastleaky\.cuda|fastleaky import cuda",
                          code))


def _has_gpu() -> bool:
    return os.path.exists("/dev/nvidia0")


def _header(code: str) -> tuple[str | None, str | None]:
    """(file name, command) from a first line ``# NAME.EXT [-- COMMAND]``."""
    first = code.split("\n", 1)[0].strip()
    match = re.fullmatch(r"#\s*([\w.-]+\.(?:py|pyx|pxd))\s*(?:--\s*(.+))?", first)
    return (match.group(1), match.group(2)) if match else (None, None)


def _unbuilt_extensions(code: str, where: Path) -> set[str]:
    """Modules the block imports whose ``.pyx`` an earlier block wrote but
    that were not built (no C compiler here)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return {m for m in _imported(code)
            if (where / f"{m}.pyx").exists() and not (where / f"{m}{suffix}").exists()}


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
    missing |= {f"{m} built" for m in _unbuilt_extensions(block.code, where)}
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

def _normalised(command: str) -> str:
    """A command in the one spelling the block and the CI scripts are
    compared in (see the module docstring)."""
    command = " ".join(command.split())
    if command.startswith("python -m pip "):
        command = command[len("python -m "):]
    if command.endswith(' "$@"'):
        command = command[: -len(' "$@"')]
    return command


def _command_lines(text: str, note: str | None = None) -> list[str]:
    """The commands of a shell text, in order: continued lines joined,
    comment lines (and what follows ``note`` on a line) dropped, ``a && b``
    as two commands."""
    text = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for raw in text.splitlines():
        line = (raw.split(note, 1)[0] if note else raw).strip()
        if line and not line.startswith("#"):
            commands += [_normalised(part) for part in line.split("&&") if part.strip()]
    return commands


def _block_commands(code: str) -> list[str]:
    # "  # ..." after a command is a note to the reader
    return _command_lines(code, "  #")


def _script_commands(path: Path) -> list[str]:
    return _command_lines(path.read_text())


def _ci_scripts() -> list[Path]:
    """``.ci/run`` and every script it runs with ``bash PATH``, transitively."""
    found, todo = [], [CI_ENTRY]
    while todo:
        script = todo.pop(0)
        if script in found:
            continue
        found.append(script)
        for match in re.finditer(r"^\s*bash\s+(\S+)", script.read_text(), re.M):
            path = ROOT / match.group(1)
            if path.is_file():
                todo.append(path)
    return found


def _is_subsequence(wanted: list[str], commands: list[str]) -> bool:
    it = iter(commands)
    return all(any(c == w for c in it) for w in wanted)


def _runs_in_ci(block_commands: list[str], scripts: dict[str, list[str]]) -> list[str]:
    """The scripts holding every command of the block, in its order."""
    return [name for name, commands in scripts.items()
            if _is_subsequence(block_commands, commands)]


_CI_ONLY = {"pip", "pip3", "pytest", "bash", "sh"}


def _needs_ci(command: str) -> bool:
    """Installs packages, or needs the source tree and minutes."""
    argv = shlex.split(command)
    while argv and re.fullmatch(r"\w+=.*", argv[0]):  # VAR=value before the command
        argv = argv[1:]
    if not argv:
        return False
    if argv[0] in _CI_ONLY:
        return True
    if argv[:2] == ["fastleaky", "torch-node"]:  # compiles a C++ extension of torch
        return True
    if argv[0] in ("python", "python3"):
        return argv[1:3] in (["-m", "pip"], ["-m", "pytest"]) or \
            (len(argv) > 1 and argv[1].endswith(".py"))
    return False


CI_SHELL = [b for b in SHELL if any(_needs_ci(c) for c in _block_commands(b.code))]
LOCAL_SHELL = [b for b in SHELL if b not in CI_SHELL]


def test_ci_command_matching():
    """The check below can fail: a command missing, or out of order, is
    found in no script; the two spellings CI uses are one."""
    scripts = {"s": _command_lines('python -m pip install ".[x]"\n# pytest\n'
                                   'cd somewhere && pytest "$@"\nbash ci/a \\\n  --flag\n')}
    assert scripts["s"] == ['pip install ".[x]"', "cd somewhere", "pytest", "bash ci/a --flag"]
    assert _runs_in_ci(_block_commands('pip install ".[x]" && pytest  # tests\n'), scripts)
    assert _runs_in_ci(_block_commands("bash ci/a --flag\n"), scripts)
    assert not _runs_in_ci(_block_commands('pytest && pip install ".[x]"\n'), scripts)
    assert not _runs_in_ci(_block_commands('pip install ".[y]"\n'), scripts)
    assert not _runs_in_ci(_block_commands("bash ci/a\n"), scripts)
    assert _needs_ci('python -m pip install x') and _needs_ci("pytest benchmarks/")
    assert _needs_ci("python benchmarks/under_load.py") and not _needs_ci("fastleaky info")
    assert not _needs_ci("FASTLEAKY_NUM_THREADS=1 fastleaky bench")


def test_readme_setup_commands_run_in_ci():
    """The README's two set-up commands, as users and CI run them."""
    readme = [b.code.strip() for b in SHELL if b.document.name == "README.md"]
    assert 'pip install ".[bench]" && fastleaky bench --quick' in readme
    assert 'pip install ".[test,dask]" torch==2.13.0 && pytest' in readme
    assert all(b in CI_SHELL for b in SHELL if b.document.name == "README.md")


@pytest.mark.parametrize("block", CI_SHELL, ids=[b.id for b in CI_SHELL])
def test_long_shell_block_runs_in_ci(block):
    """A block that installs packages or runs for minutes is CI's to run."""
    scripts = {str(p.relative_to(ROOT)): _script_commands(p) for p in _ci_scripts()}
    commands = _block_commands(block.code)
    assert _runs_in_ci(commands, scripts), (
        f"{block.id}: these commands are, in this order, in none of the scripts CI runs "
        f"({', '.join(scripts)}); add them to ci/docs as written:\n" + "\n".join(commands))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", LOCAL_SHELL, ids=[b.id for b in LOCAL_SHELL])
def test_shell_block_runs(block, workdirs):
    where = workdirs(block.document)
    env = dict(os.environ)
    # the installed console script first; `fastleaky tune` writes here
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["FASTLEAKY_TUNE_FILE"] = str(where / "tune.json")
    env["MPLBACKEND"] = "Agg"
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash")
    proc = subprocess.run([bash, "-e", "-o", "pipefail", "-c", block.code], cwd=where, env=env,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, (
        f"{block.id} failed (exit {proc.returncode}):\n{block.code}\n--- stdout\n"
        f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")


# ---------------------------------------------------------------- links

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's (and MyST's) anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = FENCE.sub("", doc.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


@pytest.mark.parametrize("doc", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_relative_links_resolve(doc):
    """Links between the README and the guide pages work on GitHub (and in
    the site): each relative link names a file that exists, and a heading
    of it where it names one."""
    bad = []
    for match in _LINK.finditer(FENCE.sub("", doc.read_text())):
        target = match.group(1) or match.group(2)
        if re.match(r"\w+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            bad.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            bad.append(f"{target}: no heading #{anchor}")
    assert not bad, bad

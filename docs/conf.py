"""Sphinx configuration: the user guide (MyST Markdown), the API reference
from the numpydoc docstrings, and the performance report.  Built by
``bash ci/docs`` with warnings as errors."""

import importlib.util
import os
import sys

# fastleaky.cuda imports numba.cuda: without a GPU its docs come from the
# simulator, which numba-cuda picks when it is first imported.
if importlib.util.find_spec("numba_cuda") is not None and not os.path.exists("/dev/nvidia0"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import fastleaky  # noqa: E402

project = "fastleaky"
copyright = "fastleaky developers"
release = version = fastleaky.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# The measurements log and the report's raw data are sources, not pages.
exclude_patterns = ["_build", "report/results.json", "report-float16/results.json",
                    "design-measurements.md"]

myst_heading_anchors = 3

autodoc_typehints = "none"  # the numpydoc sections give the types; the overloads live in the stubs
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()

html_theme = "alabaster"
html_title = f"fastleaky {release}"

"""Sphinx configuration of the sklearn_blend documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors). The gallery
(``examples/``) runs each example in its quick form when ``SKLEARN_BLEND_GALLERY=run``; by
default the pages are built from the scripts without running them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

import api_pages  # noqa: E402

import sklearn_blend  # noqa: E402

project = "sklearn_blend"
author = "the sklearn_blend developers"
copyright = "2026, the sklearn_blend developers"
release = version = sklearn_blend.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "sg_execution_times.rst"]
myst_heading_anchors = 4
myst_enable_extensions = ["dollarmath"]

autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set = set()
# numpydoc reads the parameter lists; sections it does not know stay as they are written
numpydoc_xref_param_type = False


html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_blend {version}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
html_static_path: list = []

RUN_GALLERY = os.environ.get("SKLEARN_BLEND_GALLERY") == "run"
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py",
    "plot_gallery": RUN_GALLERY,
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": (),
    "remove_config_comments": True,
}
if RUN_GALLERY:
    os.environ.setdefault("SKLEARN_BLEND_QUICK", "1")

# the API reference lists every public name; written before autosummary reads it
api_pages.write(DOCS / "api.rst")

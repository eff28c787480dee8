"""The documentation site: every public name has a page and an example; the site builds.

``docs/api_pages.py`` lists the public modules; each module's ``__all__`` is its public names.
The API reference is rendered from them at every build, so a page exists for every name the
build does not warn about. The examples in the docstrings run as doctests in the main suite
(``--doctest-modules``).
"""

import importlib
import inspect
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import api_pages  # noqa: E402


def public():
    for module, _ in api_pages.PUBLIC:
        for name, obj in api_pages.public_names(module):
            yield f"{module}.{name}", obj


def test_every_public_module_declares_its_public_names():
    for module, _ in api_pages.PUBLIC:
        names = importlib.import_module(module).__all__
        assert len(names) == len(set(names)), module
        assert api_pages.public_names(module), module


def test_every_public_name_has_a_docstring():
    missing = [name for name, obj in public() if not inspect.getdoc(obj)]
    assert not missing, f"no docstring: {missing}"


def test_every_public_callable_has_an_example():
    missing = [name for name, obj in public() if not api_pages.is_data(obj)
               and "\nExamples\n--------\n" not in (inspect.getdoc(obj) or "")]
    assert not missing, f"no Examples section: {missing}"


def test_the_reference_lists_every_public_name(tmp_path):
    api_pages.write(tmp_path / "api.rst")
    text = (tmp_path / "api.rst").read_text()
    for module, _ in api_pages.PUBLIC:
        assert f".. currentmodule:: {module}" in text
    for name, _ in public():
        assert f"   {name.rsplit('.', 1)[1]}\n" in text, name


def test_the_site_builds_without_warnings(tmp_path):
    """The one documented command, warnings as errors, the gallery built from the scripts
    without running them (``tests/test_examples.py`` runs them)."""
    pytest.importorskip("sphinx")
    from sphinx.cmd.build import build_main

    out = tmp_path / "html"
    status = build_main(["-W", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
                         str(ROOT / "docs"), str(out)])
    assert status == 0
    for page in ("index", "api", "install", "quickstart", "user_guide/blend",
                 "user_guide/neds", "user_guide/crossmodal", "benchmarks/mc_maze_small",
                 "auto_examples/index", "generated/sklearn_blend.BlendEstimator"):
        assert (out / f"{page}.html").exists(), page

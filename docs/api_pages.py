"""The API reference: every public name of the package, one page each (autosummary).

:data:`PUBLIC` lists the public modules; a module's public names are its ``__all__``.
:func:`write` renders ``api.rst`` from them at every build, so a name added to an ``__all__``
gets its page without anyone editing the reference, and ``tests/test_docs.py`` checks that
each has a docstring with an example.
"""

from __future__ import annotations

import importlib
import inspect

#: (module, title) of every public module, in the order of the reference
PUBLIC = (
    ("sklearn_blend", "Estimators and top-level functions"),
    ("sklearn_blend.distill", "Distillation strategies"),
    ("sklearn_blend.models", "Base models"),
    ("sklearn_blend.datasets", "Datasets"),
    ("sklearn_blend.metrics", "Metrics (NLB)"),
    ("sklearn_blend.scoring", "Scorers"),
    ("sklearn_blend.model_selection", "Model selection"),
    ("sklearn_blend.evaluation", "Evaluation"),
    ("sklearn_blend.nlb", "NLB submissions"),
    ("sklearn_blend.lfp", "LFP preprocessing"),
    ("sklearn_blend.modalities", "Modalities"),
    ("sklearn_blend.losses", "Losses (functional core)"),
    ("sklearn_blend.persistence", "Saving and loading"),
)


def public_names(module_name):
    """``[(name, object)]`` of a public module's ``__all__``, modules and dunders left out."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        raise ValueError(f"{module_name} has no __all__: say which of its names are public")
    return [(name, getattr(module, name)) for name in names
            if not name.startswith("__") and not inspect.ismodule(getattr(module, name))]


def is_data(obj):
    """A constant (a registry, a version number): documented, but not callable."""
    return not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)
                or callable(obj))


def write(path):
    """Render the reference to ``path`` (unchanged files are not rewritten)."""
    lines = ["API reference", "=============", "",
             "Every public name of the package, by module. Each page is generated from the",
             "name's docstring (numpydoc).", ""]
    for module_name, title in PUBLIC:
        lines += [title, "-" * len(title), "", f".. currentmodule:: {module_name}", "",
                  ".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name, _ in public_names(module_name)]
        lines.append("")
    text = "\n".join(lines)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)

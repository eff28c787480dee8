"""The import graph of ``sklearn_blend``: no import cycles, and a layering that only points down.

The graph is read from the source with :mod:`ast`; nothing of the package is imported. How the
imports are counted:

* every ``import`` and ``from ... import`` statement of a file counts, at module level and inside
  functions, methods and classes alike (an import inside a function is still a dependency);
  those under ``if TYPE_CHECKING:`` do not (their ``else:`` branch does);
* relative imports are resolved against the importing module's package; a package's
  ``__init__.py`` is the package itself, so ``from . import x`` in ``pkg/__init__.py`` is ``pkg.x``;
* ``from A import B`` is an edge to ``A.B`` where ``A.B`` is a module of the package (a file or a
  package directory), else an edge to ``A``; ``import A.B.C`` is an edge to ``A.B.C``;
* only edges to modules of ``sklearn_blend`` are kept, and no self-edges;
* no implicit edges are added: importing ``a.b.c`` also runs ``a/__init__.py`` and
  ``a/b/__init__.py``, but only the statements that are written count.

``test_no_import_cycles`` asserts that no group of modules imports itself in a ring;
``test_layers`` asserts the contract in ``LAYERS``. Both messages give the file and line of each
import responsible. ``python tests/test_imports.py`` prints the whole report and exits with 0.
"""

import ast
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "sklearn_blend"

#: The layering contract, lowest layer first: lists of module-name prefixes. A module belongs to
#: the layer of its LONGEST matching prefix; a prefix matches the module of that name and its
#: submodules (``sklearn_blend.data`` matches ``sklearn_blend.data.validation``, not
#: ``sklearn_blend.dataset``), except the root package's name, which matches only the root
#: module (its ``__init__.py``), so that every module has to be placed. A module may import its
#: own layer and the layers below it, never one above.
LAYERS = [
    # 1. pure utilities: functions of arrays and tensors, input checks, the version, and the
    #    allow-list of the model format (that the classes below register with)
    ["sklearn_blend.seeding", "sklearn_blend.losses", "sklearn_blend.metrics",
     "sklearn_blend.masking", "sklearn_blend.data.validation", "sklearn_blend._version",
     "sklearn_blend.persistence.registry"],
    # 2. modalities as data
    ["sklearn_blend.modalities"],
    # 3. what users pass in: behavior, trials of sessions, recordings of neurons
    ["sklearn_blend.data"],
    # 4. the PyTorch models and their registry
    ["sklearn_blend.models"],
    # 5. distillation strategies
    ["sklearn_blend.distill"],
    # 6. the training core (skorch) and the teacher cache
    ["sklearn_blend.training"],
    # 7. save / load
    ["sklearn_blend.persistence"],
    # 8. the scikit-learn estimators and transformers (lfp's are saved like the estimators)
    ["sklearn_blend.estimators", "sklearn_blend.lfp"],
    # 9. built on the estimators: data sets, scorers, evaluation, model selection, NLB
    ["sklearn_blend.datasets", "sklearn_blend.scoring", "sklearn_blend.evaluation",
     "sklearn_blend.model_selection", "sklearn_blend.nlb"],
    # 10. entry points and the public facade
    ["sklearn_blend.cli", "sklearn_blend.__main__", "sklearn_blend"],
]


class Edge(NamedTuple):
    """One import statement's dependency: ``source`` imports ``target`` at ``path:lineno``."""

    source: str
    target: str
    path: str
    lineno: int


# ------------------------------------------------------------------ reading the package
def module_files(package_dir):
    """``{dotted module name: path}`` of every ``.py`` file under ``package_dir``.

    Where a directory's ``__init__.py`` and a same-named ``.py`` file both exist (mid-way through
    turning a module into a package), the package wins, as it does for Python's importer.
    """
    package_dir = Path(package_dir)
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if name in modules and modules[name].name == "__init__.py":
            continue
        modules[name] = path
    return modules


def _is_type_checking(test):
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


class _ImportStatements(ast.NodeVisitor):
    """Collects every import statement of a tree, at any depth, except under TYPE_CHECKING."""

    def __init__(self):
        self.found = []

    def visit_If(self, node):
        if _is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node):
        self.found.append(node)

    def visit_ImportFrom(self, node):
        self.found.append(node)


def import_statements(path):
    """The ``Import`` and ``ImportFrom`` nodes of the file at ``path``, in order of lines."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    collector = _ImportStatements()
    collector.visit(tree)
    return sorted(collector.found, key=lambda node: node.lineno)


def from_base(module, is_package, node):
    """The absolute name of ``A`` in ``from A import ...``; None if it climbs above the top."""
    if node.level == 0:
        return node.module
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    climb = node.level - 1
    if climb >= len(parts):
        return None
    base = ".".join(parts[:len(parts) - climb])
    return f"{base}.{node.module}" if node.module else base


def imported_names(module, is_package, node, modules):
    """The modules one import statement depends on (names outside the package included)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = from_base(module, is_package, node)
    if base is None:
        return []
    names = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        names.append(submodule if submodule in modules else base)
    return names


def _in_package(name, package):
    return name == package or name.startswith(package + ".")


def written_imports(package_dir):
    """Every import of a name inside the package, as ``Edge`` s, modules or not, self-edges too."""
    package_dir = Path(package_dir)
    package = package_dir.name
    modules = module_files(package_dir)
    edges = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        where = path.relative_to(package_dir.parent).as_posix()
        for node in import_statements(path):
            targets = sorted(set(imported_names(module, is_package, node, modules)))
            for target in targets:
                if _in_package(target, package):
                    edges.append(Edge(module, target, where, node.lineno))
    return edges


def import_edges(package_dir):
    """The package's import edges ``(source, target, path, lineno)``: one per import statement
    and module it imports (``from .m import a, b`` is one edge), to modules of the package
    only, without self-edges."""
    modules = module_files(package_dir)
    return [edge for edge in written_imports(package_dir)
            if edge.target in modules and edge.target != edge.source]


def missing_imports(package_dir):
    """Imports of names inside the package that are no module of it (a module not written yet,
    or removed): edges that ``import_edges`` cannot keep."""
    modules = module_files(package_dir)
    return [edge for edge in written_imports(package_dir) if edge.target not in modules]


def import_graph(package_dir):
    """``{module: set of the package's modules it imports}``, every module a key."""
    graph = {module: set() for module in module_files(package_dir)}
    for edge in import_edges(package_dir):
        graph[edge.source].add(edge.target)
    return graph


def edge_locations(edges):
    """``{(source, target): ["path:line", ...]}`` of the statements behind each edge."""
    locations = defaultdict(list)
    for edge in edges:
        locations[edge.source, edge.target].append(f"{edge.path}:{edge.lineno}")
    return locations


# ------------------------------------------------------------------ cycles
def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm), each a
    sorted list, the list sorted."""
    index, lowlink = {}, {}
    stack, on_stack = [], set()
    components = []

    def visit(module):
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                lowlink[module] = min(lowlink[module], lowlink[target])
            elif target in on_stack:
                lowlink[module] = min(lowlink[module], index[target])
        if lowlink[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(components)


def cycle_report(components, edges):
    """Lines naming each cycle and, under it, its edges with the statements behind them."""
    locations = edge_locations(edges)
    lines = []
    for number, component in enumerate(components, 1):
        members = set(component)
        lines.append(f"cycle {number} ({len(component)} modules): {', '.join(component)}")
        for (source, target), where in sorted(locations.items()):
            if source in members and target in members:
                lines.append(f"    {source} -> {target}    {', '.join(where)}")
    return lines


# ------------------------------------------------------------------ layers
def _matches(prefix, module, package):
    if prefix == package:
        return module == package
    return _in_package(module, prefix)


def layer_of(module, layers=LAYERS, package=PACKAGE_DIR.name):
    """The index in ``layers`` of the layer of ``module``'s longest matching prefix; None if no
    prefix matches."""
    best_layer, best_length = None, -1
    for number, prefixes in enumerate(layers):
        for prefix in prefixes:
            if _matches(prefix, module, package) and len(prefix) > best_length:
                best_layer, best_length = number, len(prefix)
    return best_layer


def unplaced_modules(graph, layers=LAYERS):
    """The modules that no prefix of ``layers`` matches."""
    return sorted(module for module in graph if layer_of(module, layers) is None)


def unused_prefixes(graph, layers=LAYERS):
    """The prefixes of ``layers`` that match no module (a typo, or a module gone)."""
    package = PACKAGE_DIR.name
    return [prefix for prefixes in layers for prefix in prefixes
            if not any(_matches(prefix, module, package) for module in graph)]


def layer_violations(edges, layers=LAYERS):
    """One line per import of a module of a higher layer than the importer's."""
    lines = []
    for edge in edges:
        source_layer = layer_of(edge.source, layers)
        target_layer = layer_of(edge.target, layers)
        if source_layer is None or target_layer is None:
            continue  # reported as unplaced
        if target_layer > source_layer:
            lines.append(f"{edge.path}:{edge.lineno}: {edge.source} (layer {source_layer + 1}) "
                         f"imports {edge.target} (layer {target_layer + 1})")
    return lines


def layer_problems(edges, graph, layers=LAYERS):
    """Every breach of the contract: unplaced modules, unused prefixes, upward imports."""
    problems = [f"unplaced module: {module}" for module in unplaced_modules(graph, layers)]
    problems += [f"prefix matching no module: {prefix}"
                 for prefix in unused_prefixes(graph, layers)]
    return problems + layer_violations(edges, layers)


# ------------------------------------------------------------------ tests
def test_no_import_cycles():
    edges = import_edges(PACKAGE_DIR)
    found = cycles(import_graph(PACKAGE_DIR))
    assert found == [], "import cycles (cut one edge of each):\n" + "\n".join(
        cycle_report(found, edges))


def test_layers():
    edges = import_edges(PACKAGE_DIR)
    problems = layer_problems(edges, import_graph(PACKAGE_DIR))
    assert problems == [], "layering contract (LAYERS) broken:\n" + "\n".join(problems)


# ------------------------------------------------------------------ report
def main():
    edges = import_edges(PACKAGE_DIR)
    graph = import_graph(PACKAGE_DIR)
    n_edges = sum(len(targets) for targets in graph.values())
    print(f"{len(graph)} modules, {n_edges} edges "
          f"({len(edges)} counting each import statement apart)")

    found = cycles(graph)
    print(f"\n{len(found)} cycles")
    for line in cycle_report(found, edges):
        print(line)

    problems = layer_problems(edges, graph)
    print(f"\n{len(problems)} layering problems")
    for line in problems:
        print(line)

    missing = missing_imports(PACKAGE_DIR)
    print(f"\n{len(missing)} imports of names in the package that are no module (not counted)")
    for edge in missing:
        print(f"{edge.path}:{edge.lineno}: {edge.source} imports {edge.target}")

    print("\nlayers, lowest first")
    for number in range(len(LAYERS)):
        members = sorted(module for module in graph if layer_of(module) == number)
        print(f"layer {number + 1}: {', '.join(members)}")
    unplaced = unplaced_modules(graph)
    if unplaced:
        print(f"unplaced: {', '.join(unplaced)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

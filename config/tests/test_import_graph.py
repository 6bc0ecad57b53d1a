"""The product's modules import one another without a cycle, and tests share support
only through support modules.

Every import statement counts, wherever it stands (a function's body, an
`if TYPE_CHECKING:` block): a cycle held apart by a late import is still a cycle.
Tests and migrations are left out of the product's graph; every other
first-party module is in. A test module imports neither another test module nor
a conftest: what tests share lives in config/testing/ and each app's
tests/factories.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = {"tests", "migrations"}


def product_modules(root: Path) -> dict[str, Path]:
    """Map each first-party product module's dotted name to its file."""
    modules: dict[str, Path] = {}
    for package in sorted(p.parent for p in root.glob("*/__init__.py")):
        for path in package.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if LEFT_OUT & set(parts) or not all(
                (root.joinpath(*parts[:depth]) / "__init__.py").exists()
                for depth in range(1, len(parts))
            ):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module `name` names, or the nearest package holding it (None: not first-party)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Map each product module to the product modules it imports."""
    modules = product_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            else:
                continue
            for target in targets:
                found = _target(target, modules)
                if found is not None and found != name:
                    edges.add(found)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_the_graph_holds_the_product_and_leaves_tests_out() -> None:
    graph = import_graph(ROOT)
    assert {"accounts.models", "images.pipeline", "classifier.services", "audit.services"} <= set(
        graph
    )
    assert not any(".tests" in name or ".migrations" in name for name in graph)
    assert "classifier.services" in graph["images.pipeline"]


def test_product_modules_import_one_another_without_a_cycle() -> None:
    cycles = import_cycles(import_graph(ROOT))
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_a_cycle_is_found_wherever_its_import_stands(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "first.py").write_text("from app import second\n")
    (tmp_path / "app" / "second.py").write_text("def late():\n    from app.first import x\n")
    (tmp_path / "app" / "third.py").write_text("from . import first\n")
    assert import_cycles(import_graph(tmp_path)) == [["app.first", "app.second"]]


def imports_of_test_modules(root: Path) -> dict[str, list[str]]:
    """Map each test module of the first-party packages under `root` (never a virtualenv's
    or another folder's) to the test modules and conftests it imports."""
    found: dict[str, list[str]] = {}
    packages = sorted(p.parent for p in root.glob("*/__init__.py"))
    for path in sorted(path for package in packages for path in package.rglob("test_*.py")):
        if not (path.parent / "__init__.py").exists():
            continue
        imported = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for name in names:
                last = name.rpartition(".")[2]
                if last.startswith("test_") or last == "conftest":
                    imported.append(name)
        if imported:
            found[str(path.relative_to(root))] = sorted(set(imported))
    return found


def test_no_test_module_imports_another_test_module_or_a_conftest() -> None:
    found = imports_of_test_modules(ROOT)
    assert found == {}, "shared test support belongs in config/testing or tests/factories.py:\n" + (
        "\n".join(f"{module}: {', '.join(names)}" for module, names in found.items())
    )


def test_an_import_of_a_test_module_or_a_conftest_is_found(tmp_path: Path) -> None:
    (tmp_path / "app" / "tests").mkdir(parents=True)
    for name in ("app/__init__.py", "app/tests/__init__.py", "app/tests/test_first.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "app" / "tests" / "test_second.py").write_text(
        "from app.tests.test_first import helper\nfrom conftest import login_client\n"
    )
    (tmp_path / "app" / "tests" / "test_third.py").write_text("from app.tests import test_first\n")
    # A virtualenv's packages are not the project's (`make model` keeps one beside it).
    venv_tests = tmp_path / ".venv-model" / "lib" / "site-packages" / "lib" / "tests"
    venv_tests.mkdir(parents=True)
    for name in ("__init__.py", "test_a.py"):
        (venv_tests / name).write_text("from lib.tests.test_b import x\n")
    assert imports_of_test_modules(tmp_path) == {
        "app/tests/test_second.py": ["app.tests.test_first", "conftest"],
        "app/tests/test_third.py": ["app.tests.test_first"],
    }


def imported_names(path: Path) -> set[str]:
    """Every dotted name a module imports, first-party or not, wherever the import stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _room(prefix: str) -> dict[str, Path]:
    return {
        name: path
        for name, path in product_modules(ROOT).items()
        if name == prefix or name.startswith(f"{prefix}.")
    }


def _reaching(room: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for name, path in _room(room).items():
        hits = sorted(n for n in imported_names(path) if n.startswith(forbidden))
        if hits:
            found[name] = hits
    return found


def test_who_is_calling_is_settled_without_asking_what_they_may_do() -> None:
    assert _room("accounts.identity")
    assert _reaching("accounts.identity", ("accounts.authz",)) == {}


def test_services_take_plain_values_and_never_import_the_drf_layer() -> None:
    apps = ("accounts", "images", "classifier", "audit", "webhooks")
    drf = ("rest_framework", *(f"{app}.api" for app in apps))
    for room in (f"{app}.services" for app in apps):
        assert _room(room), room
        assert _reaching(room, drf) == {}, room


def _orm_managers(path: Path) -> list[int]:
    """The lines of a module that reach a model's manager (`Model.objects`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in {"objects", "_default_manager"}
    )


def test_views_read_through_selectors_and_write_through_services() -> None:
    rooms = [
        f"{room}.{layer}"
        for room in ("accounts", "images", "classifier", "audit", "webhooks")
        for layer in ("views", "api")
    ]
    views = {name: path for room in rooms for name, path in _room(room).items()}
    assert len(views) > 10
    assert {name: lines for name, path in views.items() if (lines := _orm_managers(path))} == {}


def test_a_view_reaching_a_manager_is_found(tmp_path: Path) -> None:
    module = tmp_path / "view.py"
    module.write_text("def page(request):\n    return Image.objects.filter(id=1)\n")
    assert _orm_managers(module) == [2]

"""The shape of service/, read from the source (AST only: nothing of the service is imported here).

- No import cycle between modules. ``from pkg import name`` counts as importing the package ``pkg`` (its
  ``__init__`` runs and is read), ``from pkg.mod import name`` / ``import pkg.mod`` as importing ``pkg.mod``; so
  a package ``__init__`` that imports its children while a child imports the package is a cycle. An import also
  runs the ``__init__`` of every package above the module it names (``import a.b.c`` runs ``a/__init__`` and
  ``a/b/__init__``) unless the importer is itself inside that package (then it is running already): those count
  too, for cycles and layers, through what each such ``__init__`` imports (one that imports nothing adds nothing).
- No upward import between layers (``ALLOWED`` below): infra < certification < features (proxy < console <
  wechat) < composition (service.schema, service.features.install) < adapters. Features may also use the HTTP
  kit of the adapter (``HTTP_KIT``), which itself stays below the features.
- No fastapi, starlette, celery or argparse in service/certification/ or service/infra/.
- An import inside a function only with a ``# lazy: <why>`` comment on its line (a heavy optional dependency,
  start-up time), or in a module that says once, at the left margin, ``# lazy-imports: <why>`` (the CLI's command
  modules): imports placed in functions used to hide the cycles above.
- The environment is read in service/infra/config.py only (the settings); another read (a variable handed to a
  child process, a command's own input) says why with ``# env: <why>`` on its line.
Imports under ``if TYPE_CHECKING:`` are for the type checker only and are not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("fastapi", "starlette", "celery", "argparse")
NO_FRAMEWORK_LAYERS = ("infra", "certification")
LAZY_MARK = "# lazy:"
# Once at the left margin of a module whose every function-level import is lazy for one reason (a CLI command
# module: `--help` and usage errors answer without loading the runtime).
MODULE_LAZY_MARK = "# lazy-imports:"
ENV_MARK = "# env:"
SETTINGS_MODULE = "service.infra.config"

# The HTTP building blocks a feature's routes may use: dependencies, the error body, the response schemas and the
# upload reader. They import nothing of a feature. Not service.adapters.http.limits: its per-requester limit reads
# the WeChat identity; what the console's login back-off shares with it is in service/infra/ratelimit.py.
HTTP_KIT = frozenset(
    {
        "service.adapters.http.deps",
        "service.adapters.http.errors",
        "service.adapters.http.schemas",
        "service.adapters.http.upload",
    }
)
FEATURE_ORDER = ("proxy", "console", "wechat")  # a feature may import the ones before it
BELOW_FEATURES = frozenset({"infra", "certification", "http-kit"})
# What each layer may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "infra": frozenset(),
    "certification": frozenset({"infra"}),
    "http-kit": frozenset({"infra", "certification"}),
    **{
        f"features.{name}": BELOW_FEATURES | {f"features.{lower}" for lower in FEATURE_ORDER[:i]}
        for i, name in enumerate(FEATURE_ORDER)
    },
    "composition": BELOW_FEATURES | {f"features.{name}" for name in FEATURE_ORDER},
    "adapters": BELOW_FEATURES | {f"features.{name}" for name in FEATURE_ORDER} | {"composition"},
    "package": frozenset(),  # service/, service/features/, service/adapters/: their __init__ imports nothing
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported name, absolute (a module, or a module plus an attribute)
    line: int
    in_function: bool
    lazy_comment: bool  # `# lazy: <why>` on the statement, or `# lazy-imports: <why>` in the module
    statement: str  # as written, for the message


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `package` (a package is named by its __init__)."""
    out: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import statement of one file, outside ``if TYPE_CHECKING:`` blocks, resolved to absolute names."""
    lines = path.read_text(encoding="utf-8").splitlines()
    is_package = path.name == "__init__.py"
    module_lazy = any(line.startswith(MODULE_LAZY_MARK) for line in lines)

    def visit(nodes: list[ast.stmt], in_function: bool) -> Iterator[Import]:
        for node in nodes:
            if _is_type_checking(node):
                yield from visit(getattr(node, "orelse", []), in_function)
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                text = "\n".join(lines[node.lineno - 1 : node.end_lineno or node.lineno])
                lazy = module_lazy or LAZY_MARK in text
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    base = _absolute(module, is_package, node)
                    targets = [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
                for target in targets:
                    yield Import(module, target, node.lineno, in_function, lazy, ast.unparse(node))
                continue
            inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from visit([c for c in children if isinstance(c, ast.AST)], inner)  # type: ignore[misc]

    tree = ast.parse("\n".join(lines), filename=str(path))
    yield from visit(tree.body, False)


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lands in: ``pkg.mod.name`` -> ``pkg.mod``; None outside the package."""
    name = target
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def packages_run(importer: str, hit: str, modules: dict[str, Path]) -> list[str]:
    """The package ``__init__`` modules that importing `hit` runs on the way: every package above it, less the
    importer's own packages (running already when the importer runs)."""
    parts = hit.split(".")
    above = [".".join(parts[:i]) for i in range(1, len(parts))]
    running = {importer, *(".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 1))}
    return [p for p in above if p in modules and p not in running]


def edges_of(imp: Import, modules: dict[str, Path]) -> set[str]:
    """Modules this import runs: the named module, the packages above it (their ``__init__``); for
    ``from pkg import sub`` also the package itself."""
    found: set[str] = set()
    hit = resolve(imp.target, modules)
    if hit:
        found.add(hit)
        found.update(packages_run(imp.module, hit, modules))
        parent = imp.target.rpartition(".")[0]
        if hit == imp.target and parent in modules:
            found.add(parent)  # `from pkg import sub`: pkg's __init__ is read for the name
    found.discard(imp.module)
    return found


def graph(modules: dict[str, Path], root: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for imp in imports_of(module, path):
            out[module] |= edges_of(imp, modules) - {root}
    return out


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path (a -> b -> ... -> a) per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            components.append(comp)

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return [_cycle_path(sorted(c)[0], c, edges) for c in components if len(c) > 1]


def _cycle_path(start: str, comp: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from `start` back to itself inside its component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for w in sorted(edges[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start]


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 3 and (len(parts) == 1 or parts[1] in ("features", "adapters")):
        return "package"
    if parts[1] in ("infra", "certification"):
        return parts[1]
    if parts[1] == "features" and parts[2] in FEATURE_ORDER:
        return f"features.{parts[2]}"
    assert not (parts[1] == "features" and len(parts) > 3), f"{module}: add its feature to FEATURE_ORDER"
    if module in HTTP_KIT:
        return "http-kit"
    if parts[1] == "adapters":
        return "adapters"
    # A module at the top of service/ or of service/features/ (service.schema, service.features.install): it
    # wires the layers together, and only the adapters (the composition roots) import it.
    return "composition"


def violations(package: Path) -> list[str]:
    """Everything wrong with `package`'s imports, one readable line each."""
    modules = module_names(package)
    root = package.name
    problems: list[str] = []  # in order, each once (two names from one module are one problem)
    for cycle in find_cycles(graph(modules, root)):
        problems.append("import cycle: " + " -> ".join(cycle))
    for module, path in modules.items():
        where = path.relative_to(package.parent)
        for imp in imports_of(module, path):
            top = imp.target.split(".")[0]
            if imp.in_function and not imp.lazy_comment:
                problems.append(
                    f"{where}:{imp.line}: `{imp.statement}` inside a function: move it to the top, or say why it "
                    f"must be lazy with '{LAZY_MARK} <why>' on its line"
                )
            if layer(module) in NO_FRAMEWORK_LAYERS and top in FRAMEWORKS:
                problems.append(f"{where}:{imp.line}: {layer(module)} imports {top} (a framework of the adapters)")
            target = resolve(imp.target, modules)
            if target and target != root:
                mine, theirs = layer(module), layer(target)
                if mine != theirs and theirs != "package" and theirs not in ALLOWED[mine]:
                    problems.append(f"{where}:{imp.line}: {mine} imports {target} ({theirs}): upward import")
                for package_init in packages_run(module, target, modules):
                    for brought in sorted(brought_by(package_init, modules) - {target}):
                        theirs = layer(brought)
                        if mine != theirs and theirs != "package" and theirs not in ALLOWED[mine]:
                            problems.append(
                                f"{where}:{imp.line}: {mine} imports {brought} ({theirs}) through the __init__ of "
                                f"{package_init}, which the import of {target} runs: upward import"
                            )
    return list(dict.fromkeys(problems))


def brought_by(package_init: str, modules: dict[str, Path], seen: frozenset[str] = frozenset()) -> set[str]:
    """What running a package's ``__init__`` imports: the modules it names, and what the ``__init__`` of the
    packages above those (not its own) bring in turn. An ``__init__`` that imports nothing brings nothing."""
    out: set[str] = set()
    for imp in imports_of(package_init, modules[package_init]):
        hit = resolve(imp.target, modules)
        if not hit or hit == package_init:
            continue
        out.add(hit)
        for above in packages_run(package_init, hit, modules):
            if above not in seen:
                out |= brought_by(above, modules, seen | {package_init})
    return out


def environment_reads(package: Path) -> list[str]:
    """Every read of the process environment (``os.environ``, ``os.getenv``, ``environ`` imported from os)
    outside the settings module without an ``# env: <why>`` comment on its line."""
    problems: list[str] = []
    for module, path in module_names(package).items():
        if module == SETTINGS_MODULE:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.Attribute | ast.Name):
                continue
            dotted = ast.unparse(node)
            if dotted in ("os.environ", "os.getenv", "environ", "getenv") and ENV_MARK not in lines[node.lineno - 1]:
                problems.append(
                    f"{path.relative_to(package.parent)}:{node.lineno}: reads the environment: add the setting to "
                    f"{SETTINGS_MODULE}, or say why not with '{ENV_MARK} <why>' on the line"
                )
    return list(dict.fromkeys(problems))


def test_only_the_settings_read_the_environment() -> None:
    problems = environment_reads(ROOT / "service")
    assert not problems, "\n".join(problems)


def test_the_environment_check_finds_a_read(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "service/__init__.py": "",
            "service/infra/__init__.py": "",
            "service/infra/config.py": "import os\nA = os.environ.get('A')\n",
            "service/feature.py": "import os\nB = os.getenv('B')\nC = os.environ['C']  # env: handed by the parent\n",
        },
    )
    assert environment_reads(package) == [
        "service/feature.py:2: reads the environment: add the setting to service.infra.config, or say why not "
        "with '# env: <why>' on the line"
    ]


def test_service_has_no_cycle_no_upward_import_no_hidden_import() -> None:
    problems = violations(ROOT / "service")
    assert not problems, f"{len(problems)} problem(s) in service/:\n" + "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "service"


def test_the_checker_passes_a_clean_package(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "service/__init__.py": "",
            "service/infra/__init__.py": "",
            "service/infra/config.py": "import os\n",
            "service/certification/__init__.py": "",
            "service/certification/core.py": (
                "from typing import TYPE_CHECKING\nfrom service.infra import config\n"
                "if TYPE_CHECKING:\n    from service.features.proxy.hooks import Hook\n"
                "def f():\n    import boto3  # lazy: boto3 only when configured\n"
            ),
            "service/features/__init__.py": "",
            "service/features/proxy/__init__.py": "",
            "service/features/proxy/hooks.py": "from service.certification.core import f\n"
            "from service.adapters.http.deps import Ctx\n",
            "service/features/wechat/__init__.py": "from service.features.wechat.api import X\n",
            "service/features/wechat/api.py": "from service.features.proxy import hooks\nX = 1\n",
            "service/adapters/__init__.py": "",
            "service/adapters/http/__init__.py": "",
            "service/adapters/http/deps.py": "import fastapi\nfrom service.certification import core\n",
            "service/adapters/http/app.py": "from service.features.wechat import X\n",
            "service/adapters/cli/__init__.py": "",
            "service/adapters/cli/run.py": "# lazy-imports: --help answers at once\n"
            "def main():\n    from service.adapters.http.app import X\n    import cv2, numpy\n",
        },
    )
    assert violations(package) == []


def test_the_checker_finds_each_kind_of_problem(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "service/__init__.py": "",
            "service/infra/__init__.py": "",
            "service/infra/logs.py": "from service.infra.security import mask\n",
            "service/infra/security.py": "from .logs import configure\nimport starlette.requests\n",
            "service/certification/__init__.py": "",
            "service/certification/core.py": "def f():\n    from service.features.proxy import hooks\n",
            "service/features/__init__.py": "",
            "service/features/proxy/__init__.py": "",
            "service/features/proxy/hooks.py": "from service.features.wechat.api import X\n",
            "service/features/wechat/__init__.py": "from service.features.wechat.api import X\n",
            "service/features/wechat/api.py": "from service.features.wechat import helpers\nX = 1\n",
            "service/features/wechat/helpers.py": "def f():\n    import boto3  # boto3 only when configured\n",
        },
    )
    problems = violations(package)
    assert "import cycle: service.infra.logs -> service.infra.security -> service.infra.logs" in problems
    assert "import cycle: service.features.wechat -> service.features.wechat.api -> service.features.wechat" in problems
    assert "service/infra/security.py:2: infra imports starlette (a framework of the adapters)" in problems
    assert any(
        p.startswith("service/certification/core.py:2: `from service.features.proxy import hooks` inside a function")
        for p in problems
    )
    assert (
        "service/certification/core.py:2: certification imports service.features.proxy.hooks (features.proxy): "
        "upward import" in problems
    )
    assert (
        "service/features/proxy/hooks.py:1: features.proxy imports service.features.wechat.api (features.wechat): "
        "upward import" in problems
    )
    assert any(p.startswith("service/features/wechat/helpers.py:2: `import boto3` inside a function") for p in problems)
    assert len(problems) == 7, "\n".join(problems)


# The cycle of the last session, in small: the HTTP package's __init__ imports the app (eagerly, or lazily in a
# module __getattr__: an import in a function is still an import); the app mounts the WeChat routes; the routes
# import voice; voice imports the HTTP kit (deps), whose package __init__ runs first.
CYCLE_THROUGH_A_PACKAGE = {
    "service/__init__.py": "",
    "service/adapters/__init__.py": "",
    "service/adapters/http/deps.py": "X = 1\n",
    "service/adapters/http/app.py": "from service.features.wechat.routes import router\n",
    "service/features/__init__.py": "",
    "service/features/wechat/__init__.py": "",
    "service/features/wechat/routes.py": "from service.features.wechat import voice\nrouter = 1\n",
    "service/features/wechat/voice.py": "from service.adapters.http.deps import X\n",
}


@pytest.mark.parametrize(
    "init",
    [
        "from service.adapters.http.app import router\n",
        "def __getattr__(name):\n    from service.adapters.http.app import router  # lazy: as last session\n",
    ],
)
def test_the_checker_follows_the_package_init_an_import_runs(tmp_path: Path, init: str) -> None:
    files = {**CYCLE_THROUGH_A_PACKAGE, "service/adapters/http/__init__.py": init}
    problems = violations(_write(tmp_path, files))
    assert (
        "import cycle: service.adapters.http -> service.adapters.http.app -> service.features.wechat.routes -> "
        "service.features.wechat.voice -> service.adapters.http" in problems
    ), "\n".join(problems)
    assert (
        "service/features/wechat/voice.py:1: features.wechat imports service.adapters.http.app (adapters) through "
        "the __init__ of service.adapters.http, which the import of service.adapters.http.deps runs: upward import"
        in problems
    ), "\n".join(problems)
    assert len(problems) == 2, "\n".join(problems)


def test_a_package_init_that_imports_nothing_adds_nothing(tmp_path: Path) -> None:
    files = {**CYCLE_THROUGH_A_PACKAGE, "service/adapters/http/__init__.py": '"""The HTTP adapter."""\n'}
    assert violations(_write(tmp_path, files)) == []


def test_a_module_inside_the_package_does_not_run_its_init_again(tmp_path: Path) -> None:
    # service.features.wechat's __init__ imports its client; the client imports a sibling: the package is running
    # already when the client runs, so that is no cycle (Python finds the package in sys.modules).
    files = {
        "service/__init__.py": "",
        "service/features/__init__.py": "",
        "service/features/wechat/__init__.py": "from service.features.wechat.client import Api\n",
        "service/features/wechat/client.py": "from service.features.wechat.tokens import Store\nApi = 1\n",
        "service/features/wechat/tokens.py": "Store = 1\n",
    }
    assert violations(_write(tmp_path, files)) == []

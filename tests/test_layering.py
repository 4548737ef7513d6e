"""The module layering of DESIGN.md, read from the source: arrows go one way.

    cli -> model_registry (public API: api.py) -> resolve -> aliases, providers -> types, errors

`store` and `limits` sit just above `types` and `errors`; clients import `types`, `errors`,
`store`, `limits` and each other, never `resolve`, `aliases` or `providers`, not even inside
a function or under TYPE_CHECKING. Every import counts, wherever it is written.
The call policy (`clients._policy`: limits, cooldowns, retries, fallbacks) is the clients'
own; `api` takes only its fallback wrapper from it and defines no class.
`testing` (the test double users import) is a leaf on top: it imports the public package and
the bottom layer, and nothing of ours imports it, not even `import model_registry`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import model_registry
from model_registry import api

PACKAGE = Path(model_registry.__file__).parent

#: The bottom layer: `types`, `errors`, and the private modules `types` is built from.
BOTTOM = frozenset(
    {"types", "errors", "_redaction", "_prompts", "_litellm_providers", "_kwarg_names", "_options"}
    | {"_tool_call"}
)
#: Modules that import nothing of ours: `types` stands on them.
LEAVES = frozenset({"errors", "_redaction", "_litellm_providers", "_options", "_tool_call"})
#: Just above the bottom layer (DESIGN: they import nothing else of ours), so clients may
#: use them; a private module named after one of them (`_store_values`) is part of it.
JUST_ABOVE = ("store", "limits")
#: What a client may import, besides other clients (`_embeddings`: a value type on `types`;
#: `events`, `_events`: the events clients emit, on `types`).
CLIENT_MAY_IMPORT = BOTTOM | frozenset(JUST_ABOVE) | {"_embeddings", "events", "_events"}

#: Imports that break the arrows today, each to be removed by its module's owner (then the
#: entry goes). (importer, imported), names relative to model_registry.
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: Modules over MAX_MODULE_LINES today, each being split by its owner (then the entry goes).
KNOWN_LONG_MODULES: frozenset[str] = frozenset()
#: Functions over MAX_FUNCTION_LINES today, as "module:function" (the owner splits it).
KNOWN_LONG_FUNCTIONS: frozenset[str] = frozenset()


def _module_name(path: Path) -> str:
    """`clients/litellm.py` -> "clients.litellm"; the package itself -> "model_registry"."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "model_registry"


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def _tree(name: str) -> ast.Module:
    return ast.parse(_modules()[name].read_text(encoding="utf-8"))


def _imported_names(name: str) -> Iterator[str]:
    """Every module an import statement anywhere in `name` names, absolute and dotted."""
    package = name if _modules()[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = ["model_registry", *package.split(".")] if package else ["model_registry"]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                # `from model_registry import providers` names the submodule, not the package
                submodule = f"{module}.{alias.name}"
                yield submodule if _ours(submodule) not in (None, "model_registry") else module


def _ours(imported: str) -> str | None:
    """The module of ours that an imported name is, or None."""
    if imported == "model_registry":
        return "model_registry"
    if not imported.startswith("model_registry."):
        return None
    relative = imported.removeprefix("model_registry.")
    return relative if relative in _modules() else None


@cache
def _graph() -> dict[str, frozenset[str]]:
    graph = {}
    for name in _modules():
        found = {_ours(i) for i in _imported_names(name)}
        graph[name] = frozenset(m for m in found if m is not None and m != name)
    return graph


def _violations(rule: typing.Callable[[str, str], bool]) -> list[str]:
    """Imports (importer -> imported) that break `rule`, known exceptions left out."""
    return [
        f"{importer} -> {imported}"
        for importer, imports in _graph().items()
        for imported in sorted(imports)
        if not rule(importer, imported) and (importer, imported) not in KNOWN_EXCEPTIONS
    ]


def _is_client(name: str) -> bool:
    return name == "clients" or name.startswith("clients.")


def _just_above(name: str) -> bool:
    return any(name == m or name.startswith(f"_{m}") for m in JUST_ABOVE)


def _is_cli(name: str) -> bool:
    """The CLI: `cli` (the typer app) and the private `_cli` package it is built from."""
    return name in ("cli", "_cli") or name.startswith("_cli.")


def _is_testing(name: str) -> bool:
    """The test double: `testing` and the private `_testing_*` modules it is built from."""
    return name == "testing" or name.startswith("_testing")


def test_the_parser_sees_imports_inside_functions_and_under_type_checking() -> None:
    # the lazy import of a client inside client_class, and its TYPE_CHECKING import
    assert "clients.litellm" in _graph()["clients"]
    assert "clients.base" in _graph()["clients"]
    assert {"aliases", "api", "resolve", "types"} <= _graph()["model_registry"]


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for imported in sorted(graph[name]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (cycle := visit(imported, [*path, imported])):
                return cycle
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name, [name])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_types_and_errors_import_nothing_above_them() -> None:
    assert _violations(lambda a, b: a not in LEAVES) == []
    assert _violations(lambda a, b: a not in BOTTOM or b in BOTTOM) == []
    assert _violations(lambda a, b: a not in BOTTOM - {"types"} or b != "types") == []


def test_store_and_limits_import_only_the_bottom_layer() -> None:
    assert _violations(lambda a, b: not _just_above(a) or b in BOTTOM or _just_above(b)) == []


def test_clients_import_only_types_errors_store_limits_and_each_other() -> None:
    allowed = lambda a, b: (  # noqa: E731
        not _is_client(a) or b in CLIENT_MAY_IMPORT or _just_above(b) or _is_client(b)
    )
    assert _violations(allowed) == []


def _is_policy(name: str) -> bool:
    return name == "clients._policy" or name.startswith("clients._policy.")


def test_only_clients_import_the_call_policy_and_api_only_its_fallback_wrapper() -> None:
    allowed = lambda a, b: (  # noqa: E731
        not _is_policy(b) or _is_client(a) or (a, b) == ("api", "clients._policy.fallback")
    )
    assert _violations(allowed) == []
    assert "clients._policy.fallback" in _graph()["api"]  # the rule sees it
    from_clients = {m for m in _graph()["api"] if _is_client(m)}
    assert from_clients == {"clients", "clients.base", "clients._policy.fallback"}


def test_api_defines_functions_only() -> None:
    classes = [n.name for n in ast.walk(_tree("api")) if isinstance(n, ast.ClassDef)]
    assert classes == []


def test_no_module_imports_a_private_name_of_another_package_module() -> None:
    """`from model_registry.x import _name` only within one package (clients take each
    other's); never from above (api reading a client's private constant)."""
    offenders = []
    for name in _modules():
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "model_registry."
            ):
                imported = _ours(node.module or "") or ""
                same_package = imported.split(".")[0] == name.split(".")[0]
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and not same_package:
                    offenders.append(f"{name}: from {node.module} import {', '.join(private)}")
    assert offenders == []


def test_cli_imports_only_the_public_package() -> None:
    # the CLI's own modules may import each other; of the library, only `model_registry`
    # (and `model_registry.ray`, a public leaf, inside `run --ray`)
    allowed = ("model_registry", "ray")
    assert _violations(lambda a, b: not _is_cli(a) or b in allowed or _is_cli(b)) == []
    assert {"_cli.output", "_cli.run", "_cli.views"} <= _graph()["cli"]  # the rule sees them


def test_nothing_imports_the_cli_but_the_entry_point() -> None:
    assert _violations(lambda a, b: not _is_cli(b) or a == "__main__" or _is_cli(a)) == []


def test_the_test_double_imports_only_the_public_package_and_the_bottom_layer() -> None:
    allowed = lambda a, b: (  # noqa: E731
        not _is_testing(a) or b == "model_registry" or b in BOTTOM or _is_testing(b)
    )
    assert _violations(allowed) == []
    assert "_testing_model" in _graph()["testing"]  # the rule sees its private modules
    assert "errors" in _graph()["_testing_model"]


def test_nothing_imports_the_test_double() -> None:
    assert _violations(lambda a, b: not _is_testing(b) or _is_testing(a)) == []


def test_the_test_double_is_not_loaded_by_the_package_and_loads_no_backend() -> None:
    code = (
        "import sys, json\n"
        "import model_registry\n"
        "before = sorted(m for m in sys.modules if 'testing' in m)\n"
        "import model_registry.testing\n"
        "heavy = {'litellm', 'vllm', 'torch', 'transformers', 'aiohttp', 'pytest', 'ray'}\n"
        "print(json.dumps([before, sorted({m.split('.')[0] for m in sys.modules} & heavy)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], []]


def test_nothing_imports_tests_or_benchmarks() -> None:
    offenders = [
        f"{name} -> {imported}"
        for name in _modules()
        for imported in _imported_names(name)
        if imported.split(".")[0] in ("tests", "benchmarks")
    ]
    assert offenders == []


def test_no_module_over_400_lines() -> None:
    long = []
    for name, path in _modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES and name not in KNOWN_LONG_MODULES:
            long.append(f"{name} ({lines} lines)")
    assert long == []


def test_no_function_over_60_lines() -> None:
    long = []
    for name in _modules():
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{name}:{node.name}"
                if length > MAX_FUNCTION_LINES and where not in KNOWN_LONG_FUNCTIONS:
                    long.append(f"{where} ({length} lines)")
    assert long == []


def test_get_client_returns_the_exported_client_type() -> None:
    # the type users annotate with is the one get_client returns, exported once
    # (api.py names the class only for type checkers: clients load with the first client)
    from model_registry.clients.base import BaseClient

    names = {**vars(api), "BaseClient": BaseClient, "ResultStore": model_registry.ResultStore}
    returned = typing.get_type_hints(api.get_client, names)["return"]
    assert returned is model_registry.ModelClient
    client = model_registry.get_client("openai:gpt-4.1", api_key="sk-test")
    assert isinstance(client, model_registry.ModelClient)


def test_clients_learn_how_litellm_finds_a_key_from_the_spec() -> None:
    # what clients/litellm.py read from providers.BUILTIN_PROVIDERS is a field now
    from model_registry.providers import BUILTIN_PROVIDERS, litellm_provider_spec

    hosted = [spec for spec in BUILTIN_PROVIDERS.values() if spec.kind == "hosted"]
    assert hosted and all(spec.litellm_reads_key for spec in hosted)
    groq = litellm_provider_spec("groq")
    assert groq is not None and groq.litellm_reads_key  # LiteLLM reads GROQ_API_KEY itself
    declared = model_registry.ProviderSpec(name="fleet", api_base="http://10.0.0.1:9/v1")
    assert not declared.litellm_reads_key
    assert "litellm_reads_key" not in declared.to_dict()  # `list --full` shows settings only

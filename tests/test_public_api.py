"""The public surface: __all__, the error tree, and an import that stays free."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import model_registry
from model_registry import errors

HEAVY = ("litellm", "vllm", "torch", "transformers", "ray")
HEAVY_LOADED = f"sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))"
REQUIRE_VLLM = "MODEL_REGISTRY_REQUIRE_VLLM"  # CI: a skipped local-engine test is a failure


def test_all_lists_exactly_the_public_names() -> None:
    # submodules (model_registry.errors, ...) show up as attributes once imported
    public = {
        name
        for name, value in vars(model_registry).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    # loaded on first use by the package's __getattr__ (each may be loaded already)
    lazy = {"__version__", "ModelClient", *model_registry._LAZY}
    assert set(model_registry.__all__) == public | lazy
    for name in model_registry.__all__:
        assert getattr(model_registry, name) is not None


def test_every_error_is_a_model_registry_error_and_exported() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert getattr(model_registry, name) is cls
        if name != "TRANSIENT_ERRORS":
            assert issubclass(cls, errors.ModelRegistryError)


def test_the_transient_errors_are_public_and_are_the_ones_retried_and_fallen_back_from() -> None:
    assert (
        errors.RateLimitError,
        errors.ServiceUnavailableError,
        errors.APIConnectionError,
        errors.RequestTimeoutError,
    ) == model_registry.TRANSIENT_ERRORS


def test_user_mistakes_are_value_errors_for_pipelines_of_the_original_registry() -> None:
    assert issubclass(errors.UnknownModelError, ValueError)
    assert issubclass(errors.AliasConfigError, ValueError)
    assert not issubclass(errors.ModelCallError, ValueError)


def test_call_errors_carry_provider_model_and_status() -> None:
    error = errors.RateLimitError("slow down", provider="openai", model="gpt-4.1", status_code=429)
    assert str(error) == "openai model 'gpt-4.1' (HTTP 429): slow down"
    assert (error.provider, error.model, error.status_code, error.message) == (
        "openai",
        "gpt-4.1",
        429,
        "slow down",
    )


def test_import_reads_no_file_and_loads_no_heavy_library() -> None:
    code = (
        "import sys, builtins, json\n"
        "opened = []\n"
        "import io\n"
        "orig = io.open\n"
        "def spy(file, *a, **k):\n"
        "    opened.append(str(file)); return orig(file, *a, **k)\n"
        "io.open = builtins.open = spy\n"
        "import model_registry\n"
        f"print(json.dumps({{'heavy': {HEAVY_LOADED},"
        " 'toml': [f for f in opened if f.endswith('.toml')]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"heavy": [], "toml": []}


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )


#: Makes `import vllm` (and `find_spec("vllm")`) behave as on a machine without vLLM.
NO_VLLM = (
    "import sys, importlib.abc\n"
    "class NoVllm(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'vllm': raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, NoVllm())\n"
)


def test_resolve_listing_and_a_hosted_client_load_no_heavy_library() -> None:
    code = (
        "import sys, model_registry as m\n"
        "m.resolve('my-reasoning-model'); m.list_available_models(); m.list_providers()\n"
        "m.get_client('my-reasoning-model'); m.get_client('claude-sonnet')\n"
        f"print({HEAVY_LOADED})\n"
    )
    keys = {"OPENAI_API_KEY": "sk-dummy", "ANTHROPIC_API_KEY": "sk-ant-dummy"}
    assert _run(code, **keys).stdout.strip() == "[]"


def test_a_local_client_without_vllm_says_how_to_install_it() -> None:
    code = NO_VLLM + (
        "import json, model_registry as m\n"
        "try:\n"
        "    m.get_client('Qwen/Qwen3-4B-Instruct-2507')\n"
        "except m.BackendNotInstalledError as e:\n"
        f"    print(json.dumps({{'error': str(e), 'heavy': {HEAVY_LOADED}}}))\n"
    )
    out = json.loads(_run(code).stdout)
    assert out["heavy"] == []
    assert "uv sync --extra local" in out["error"]  # in a checkout
    assert "pip install 'vllm>=0.32,<0.33'" in out["error"]  # installed with pip
    assert "'model-registry[local]'" not in out["error"]  # another project on PyPI


@pytest.mark.local
@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None and os.environ.get(REQUIRE_VLLM) != "1",
    reason="vLLM is not installed",
)
def test_a_local_client_with_vllm_imports_nothing_heavy_before_its_first_call() -> None:
    code = (
        "import sys, model_registry as m\n"
        "client = m.get_client('Qwen/Qwen3-4B-Instruct-2507')\n"
        f"print({HEAVY_LOADED})\n"
    )
    assert _run(code).stdout.strip() == "[]"


def test_a_warm_resolve_of_an_alias_reads_no_model_list_and_loads_no_store_or_event_loop() -> None:
    code = (
        "import sys, json\n"
        "import model_registry\n"
        "model_registry.resolve('claude-sonnet')\n"
        "model_registry.resolve('claude-sonnet', temperature=0.2)\n"
        "from model_registry import _model_list\n"
        "watched = ('sqlite3', 'asyncio', 'ssl', 'aiolimiter', 'hashlib')\n"
        "loaded = [m for m in watched if m in sys.modules]\n"
        "print(json.dumps(loaded + ['the model list'] * _model_list._load.cache_info().currsize))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


#: What `import model_registry` and a warm resolve of an alias leave unloaded: the store,
#: the rules for names that are no alias (and LiteLLM's model list with them), and the
#: stdlib modules only a mistake, a warning or a JSON credential needs.
UNUSED_BY_AN_ALIAS = (
    "model_registry.store",
    "model_registry._name_match",
    "model_registry._typo_guard",
    "model_registry._model_list",
    "logging",
    "difflib",
    "json",
    "random",
    "asyncio",
)


def test_an_import_and_a_warm_alias_resolve_load_only_what_they_use() -> None:
    code = (
        "import sys, model_registry as m\n"
        "m.resolve('my-reasoning-model'); m.resolve('my-reasoning-model', temperature=0.2)\n"
        f"print(sorted(set({UNUSED_BY_AN_ALIAS!r}) & set(sys.modules)))\n"
    )
    assert _run(code).stdout.strip() == "[]"
    # each loads where it is needed: a name that is no alias, the store, a warning
    code = (
        "import sys, model_registry as m\n"
        "m.resolve('gpt-4o'); m.ResultStore; m.get_client('claude-sonet')\n"
        "print(sorted({'model_registry.store', 'model_registry._typo_guard', 'logging'}"
        " - set(sys.modules)))\n"
    )
    assert _run(code, ANTHROPIC_API_KEY="sk-ant-dummy").stdout.strip() == "[]"


#: Public submodules by design: their own `__all__` is their surface.
PUBLIC_SUBMODULES = frozenset({"testing", "cli", "ray", "events"})


def _public_modules() -> list[str]:
    """Every module under model_registry/ whose dotted path has no underscore-led part."""
    package = Path(model_registry.__file__).parent
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


def test_public_named_modules_declare_only_what_model_registry_exports() -> None:
    exported = {id(getattr(model_registry, name)) for name in model_registry.__all__}
    wider = {}
    modules = [m for m in _public_modules() if m not in PUBLIC_SUBMODULES]
    assert {"api", "limits", "store", "types", "clients", "clients.base"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"model_registry.{name}")
        assert hasattr(module, "__all__"), f"model_registry.{name} declares no __all__"
        extra = [n for n in module.__all__ if id(getattr(module, n)) not in exported]
        if extra:
            wider[name] = extra
    assert wider == {}, f"names in a module's __all__ that model_registry does not export: {wider}"


def test_the_package_imports_no_client_nor_event_loop_library_until_one_is_needed() -> None:
    code = (
        "import sys, json\n"
        "import model_registry\n"
        "before = sorted(m for m in ('anyio', 'model_registry.clients.base', 'email.utils',"
        " 'model_registry.limits', 'model_registry.events', 'model_registry.otel',"
        " 'model_registry._unknown_names') if m in sys.modules)\n"
        "client = model_registry.ModelClient\n"
        "print(json.dumps([before, client.__name__, 'anyio' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], "BaseClient", True]


def test_the_modules_loaded_on_first_use_are_still_attributes_of_the_package() -> None:
    code = (
        "import model_registry\n"
        "print(model_registry.events.dropped(), model_registry.limits.Limits.__name__,"
        " model_registry.otel.instrument is model_registry.instrument)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "Limits", "True"]

"""The built wheel: its name on the index, its licence, the tested vLLM range, and the
default aliases it carries, working outside the checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    return uv


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `uv build` makes of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def _metadata(wheel: Path) -> tuple[Message, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(meta).decode()), names


def test_wheel_is_published_as_model_registry_llm(built_wheel: Path) -> None:
    # "model-registry" on PyPI is another project (a Kubeflow client)
    metadata, names = _metadata(built_wheel)
    assert metadata["Name"] == "model-registry-llm"
    assert built_wheel.name.startswith("model_registry_llm-")
    assert "model_registry/__init__.py" in names  # the import name stays model_registry


def test_wheel_carries_the_mit_licence(built_wheel: Path) -> None:
    metadata, names = _metadata(built_wheel)
    assert metadata["License-Expression"] == "MIT"
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(built_wheel) as archive:
        text = archive.read(licence).decode()
    assert text.startswith("MIT License") and "2026 the model-registry authors" in text


def test_local_extra_pins_the_tested_vllm_range(built_wheel: Path) -> None:
    metadata, _ = _metadata(built_wheel)
    requires = metadata.get_all("Requires-Dist") or []
    vllm = [r for r in requires if r.startswith("vllm")]
    assert vllm == ["vllm<0.33,>=0.32; extra == 'local'"]
    assert "local" in (metadata.get_all("Provides-Extra") or [])


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Path:
    uv = _uv()
    out = tmp_path_factory.mktemp("wheel")
    wheel = built_wheel
    venv = out / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    # the locked runtime dependencies, then the wheel itself (not the checkout)
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    requirements = out / "requirements.txt"
    requirements.write_text(exported.stdout)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "-r", str(requirements), str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def test_wheel_ships_the_packaged_aliases_and_loads_them_from_site_packages(
    installed_wheel: Path, tmp_path: Path
) -> None:
    code = (
        "import json, model_registry as m\n"
        "from model_registry.aliases import packaged_aliases_path\n"
        "print(json.dumps({'path': str(packaged_aliases_path()),"
        " 'names': [a.name for a in m.list_available_models()],"
        " 'qwen': dict(m.resolve('Qwen/Qwen3-4B-Instruct-2507').params)}))"
    )
    out = subprocess.run(
        [str(installed_wheel / "bin" / "python"), "-c", code],
        cwd=tmp_path,  # no ./config here: only the packaged file
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["path"].endswith("site-packages/model_registry/_data/model_aliases.toml")
    assert "my-reasoning-model" in data["names"]
    assert data["qwen"] == {"dtype": "bfloat16", "max_model_len": 32768, "trust_remote_code": True}


def test_wheel_console_script_lists_models(installed_wheel: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(installed_wheel / "bin" / "model-registry"), "list", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    names = [a["name"] for a in json.loads(out.stdout)["aliases"]]
    assert "Nanbeige/Nanbeige4.1-3B" in names


#: Runs `import model_registry` and reports who imported importlib.metadata (the file of
#: the first frame outside the import machinery), and whether `__version__` was set.
_VERSION_PROBE = """
import json, sys
importers = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "importlib.metadata":
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
                frame = frame.f_back
            importers.append(frame.f_code.co_filename if frame else "?")
        return None

sys.meta_path.insert(0, Watch())
import model_registry
at_import = "__version__" in vars(model_registry)
print(json.dumps({"importers": importers, "set_at_import": at_import}))
"""


def test_version_is_read_from_the_package_metadata_lazily() -> None:
    import importlib.metadata

    import model_registry

    assert model_registry.__version__ == importlib.metadata.version("model-registry-llm")
    assert "__version__" in model_registry.__all__
    out = subprocess.run(
        [sys.executable, "-c", _VERSION_PROBE], capture_output=True, text=True, check=True
    )
    probe = json.loads(out.stdout)
    assert probe["set_at_import"] is False  # written nowhere: the metadata has it
    package = str(ROOT / "model_registry")
    assert not [f for f in probe["importers"] if f.startswith(package)], probe["importers"]


def test_the_vllm_install_hint_names_the_local_extras_range() -> None:
    import tomllib

    from model_registry._testing_model import INSTALL_HINT as TINY_MODEL_HINT
    from model_registry.clients._vllm_params import INSTALL_HINT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (vllm,) = project["optional-dependencies"]["local"]
    for hint in (INSTALL_HINT, TINY_MODEL_HINT):
        assert f"pip install '{vllm}'" in hint
        assert "model-registry-llm[local]" not in hint  # not on PyPI: that install fails


#: Imported by model_registry, yet not a dependency: the local extra brings them (vLLM,
#: and the tokenizers it depends on), `pytest` only for `model_registry.testing`'s
#: pytest helpers, inside a pytest run, and `typing_extensions` only for type checkers
#: (under `if TYPE_CHECKING:`; mypy depends on it, pyright bundles it). `ray` and its
#: `pyarrow` come with the `ray` extra, imported only inside `model_registry.ray`'s calls;
#: `opentelemetry` with the `otel` extra, inside `model_registry.instrument()`.
NOT_DEPENDENCIES = {"vllm", "tokenizers", "pytest", "typing_extensions", "ray", "pyarrow"}
NOT_DEPENDENCIES |= {"opentelemetry"}


def _imported_packages() -> set[str]:
    import ast

    found = set()
    for path in (ROOT / "model_registry").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"model_registry"}


def test_every_package_the_code_imports_is_a_declared_dependency() -> None:
    import importlib.metadata
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in project["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    imported = _imported_packages() - NOT_DEPENDENCIES
    missing = {
        name
        for name in imported
        if not {d.lower() for d in distributions.get(name, [name])} & declared
    }
    assert {"jsonschema", "rich", "aiohttp"} <= imported  # the scan sees lazy imports too
    assert not missing, f"imported but not in pyproject.toml's dependencies: {sorted(missing)}"
    assert {"pydantic", "jsonschema"} <= declared  # response_format's two schema kinds


def test_the_wheel_carries_classifiers_and_the_direct_dependencies(built_wheel: Path) -> None:
    metadata, _ = _metadata(built_wheel)
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers and "Framework :: AsyncIO" in classifiers
    requires = {r.split(";")[0] for r in metadata.get_all("Requires-Dist") or []}
    assert {"pydantic<3,>=2.11", "jsonschema<5,>=4.18"} <= requires

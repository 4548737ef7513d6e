"""The built wheel carries the default aliases and works outside the checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(out / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (out / "dist").glob("model_registry-*.whl")
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

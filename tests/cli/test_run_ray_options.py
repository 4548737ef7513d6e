"""`run --ray` options without Ray: `--ray-address` and `--workers` need `--ray`, and a
plain run imports nothing of Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import RunCli


@pytest.mark.parametrize("option", [("--workers", "2"), ("--ray-address", "auto")])
def test_ray_options_without_ray_are_a_usage_error(
    run_cli: RunCli, cli_dir: Path, option: tuple[str, str]
) -> None:
    (cli_dir / "prompts.jsonl").write_text('"hello"\n', encoding="utf-8")

    result = run_cli("run", "openai:m", "prompts.jsonl", "--out", "r.jsonl", *option)

    assert result.code == 2, result.stderr
    assert "--ray-address and --workers go with --ray" in result.stderr
    assert not (cli_dir / "r.jsonl").exists()

"""docs/cli.md documents every command of `model-registry`: in the synopsis, and in a
section of its own or a bullet that starts with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model_registry.cli import app

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
COMMANDS = [c.name or "" for c in app.registered_commands]


def test_the_cli_has_commands() -> None:
    assert {"list", "run", "embed", "batches"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_synopsis_and_described(command: str) -> None:
    text = PAGE.read_text(encoding="utf-8")
    synopsis = text.partition("```bash\n")[2].partition("```")[0]
    assert re.search(rf"^model-registry {command}\b", synopsis, re.M), (
        f"docs/cli.md: add `model-registry {command} ...` to the synopsis block"
    )
    heading = re.search(rf"^## `{command}`", text, re.M)
    bullet = re.search(rf"^- `{command}` ", text, re.M)
    assert heading or bullet, (
        f"docs/cli.md: describe `{command}` in a '## `{command}`: ...' section or a bullet "
        f"starting with '- `{command}` '"
    )

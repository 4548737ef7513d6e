"""CLI fixtures: the real console script in a subprocess, in-process runs, a loopback server.

Every subprocess runs in an empty working directory with no provider keys and no
MODEL_REGISTRY_ALIASES unless a test sets them, so only the packaged aliases load.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model_registry.cli import app
from model_registry.providers import BUILTIN_PROVIDERS
from tests.fixtures.openai_server import FakeOpenAIServer, openai_server_fixture

openai_server = openai_server_fixture()

#: The libraries that `list`, `resolve`, `validate` and `--help` must never import.
HEAVY_MODULES = ("litellm", "vllm", "torch", "transformers", "ray")

_SCRIPT = Path(sys.executable).with_name("model-registry")

#: Runs the CLI's main() with argv from the command line, then reports which heavy
#: modules were imported, as the last line of stderr.
_IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys
    heavy = {heavy!r}
    sys.argv = ["model-registry", *sys.argv[1:]]
    code = 0
    try:
        from model_registry.cli import main
        main()
    except SystemExit as exc:
        code = exc.code
    finally:
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
        sys.stderr.write("\\nHEAVY_MODULES=" + json.dumps(loaded) + "\\n")
    sys.exit(code)
    """
).format(heavy=HEAVY_MODULES)


#: The line `prompt` prints when loading a backend takes over a second (timing-dependent).
_LOADING_NOTICE = re.compile(r"^(loading (LiteLLM|vLLM)|starting the vLLM engine) .*\.\.\.\n", re.M)


@dataclass(frozen=True)
class CliResult:
    """What one CLI run printed, and its exit code; `stderr` leaves out the loading notices,
    which come or not with the machine's speed (`notices` has them)."""

    code: int
    stdout: str
    stderr: str
    notices: tuple[str, ...] = ()

    def json(self) -> object:
        return json.loads(self.stdout)


def cli_result(code: int, stdout: str, stderr: str) -> CliResult:
    notices = tuple(m.group().rstrip("\n") for m in _LOADING_NOTICE.finditer(stderr))
    return CliResult(code, stdout, _LOADING_NOTICE.sub("", stderr), notices)


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for spec in BUILTIN_PROVIDERS.values():
        if spec.api_key_env:
            env.pop(spec.api_key_env, None)
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        HF_HUB_OFFLINE="1",
        COLUMNS="200",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("MODEL_REGISTRY_DEBUG", None)
    return env


@pytest.fixture
def cli_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory for the CLI (and for this test, so paths display alike)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for spec in BUILTIN_PROVIDERS.values():
        if spec.api_key_env:
            monkeypatch.delenv(spec.api_key_env, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return work


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(cli_dir: Path) -> RunCli:
    """Run the installed `model-registry` console script in a subprocess.

    `env` adds variables (a value of None removes one); `stdin` is fed as input;
    `close_stdin` starts the CLI with file descriptor 0 closed (a shell's `0<&-`);
    `file_size_limit` caps the size of every file it writes (`ulimit -f`: a full disk).
    """

    def run(
        *args: str,
        env: Mapping[str, str | None] | None = None,
        stdin: str | None = None,
        timeout: float = 120,
        probe_imports: bool = False,
        close_stdin: bool = False,
        file_size_limit: int | None = None,
    ) -> CliResult:
        full_env = _base_env()
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        if probe_imports:
            command = [sys.executable, "-c", _IMPORT_PROBE, *args]
        elif _SCRIPT.exists():
            command = [str(_SCRIPT), *args]
        else:  # pragma: no cover - a non-venv interpreter
            command = [sys.executable, "-m", "model_registry", *args]
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cli_dir,
            env=full_env,
            timeout=timeout,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            preexec_fn=_preexec(close_stdin, file_size_limit),
        )
        return cli_result(done.returncode, done.stdout, done.stderr)

    return run


def _preexec(close_stdin: bool, file_size_limit: int | None) -> Callable[[], None] | None:
    if not close_stdin and file_size_limit is None:
        return None

    def before_exec() -> None:
        if close_stdin:
            os.close(0)
        if file_size_limit is not None:  # Python ignores SIGXFSZ: a write fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return before_exec


SpawnCli = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn_cli(cli_dir: Path) -> Iterator[SpawnCli]:
    """Start the console script without waiting (for signals); killed at teardown if alive."""
    started: list[subprocess.Popen[str]] = []

    def spawn(
        *args: str, stdin: int = subprocess.DEVNULL, stderr: int = subprocess.PIPE
    ) -> subprocess.Popen[str]:
        # A child inherits an ignored SIGINT, and these tests may run with it ignored (a
        # shell's background job, nohup): then Python, and asyncio.run in the CLI, leave
        # Ctrl-C ignored, as they should. The CLI starts as from a terminal instead: a
        # handled SIGINT here becomes the default one in the child.
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        if ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                [str(_SCRIPT), *args],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=cli_dir,
                env=_base_env(),
            )
        finally:
            if ignored:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


InvokeCli = Callable[..., CliResult]


@pytest.fixture
def invoke_cli(cli_dir: Path) -> Iterator[InvokeCli]:
    """Run the typer app in-process (fast; same environment rules as `run_cli`)."""
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> CliResult:
        result = runner.invoke(app, list(args), input=stdin, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return cli_result(result.exit_code, result.stdout, result.stderr)

    yield invoke


def heavy_modules(result: CliResult) -> list[str]:
    """The heavy modules a `probe_imports=True` run reported."""
    for line in reversed(result.stderr.splitlines()):
        if line.startswith("HEAVY_MODULES="):
            loaded: list[str] = json.loads(line.removeprefix("HEAVY_MODULES="))
            return loaded
    raise AssertionError(f"the import probe did not report; stderr was:\n{result.stderr}")


@pytest.fixture
def alias_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a user alias file and point MODEL_REGISTRY_ALIASES at it (here and in subprocesses)."""

    def write(text: str, name: str = "user_aliases.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
        return path

    return write


def no_traceback(result: CliResult) -> bool:
    """True when neither stream shows a Python traceback."""
    return "Traceback" not in result.stderr and "Traceback" not in result.stdout


def lines(text: str) -> Sequence[str]:
    return [line.rstrip() for line in text.splitlines()]


LoopbackAlias = Callable[..., str]


@pytest.fixture
def loopback_alias(
    openai_server: FakeOpenAIServer, alias_file: Callable[..., Path]
) -> LoopbackAlias:
    """Write an alias 'loopback' for `model_id` on the fake server; returns the model id."""

    def write(model_id: str) -> str:
        alias_file(
            f"""
            [aliases."loopback"]
            provider = "openai"
            model_id = "{model_id}"

            [aliases."loopback".defaults]
            api_base = "{openai_server.base_url}"
            api_key = "sk-loopback-test"
            """
        )
        return model_id

    return write

"""`model-registry prompt` against a real loopback OpenAI-compatible server (hosted path)."""

from __future__ import annotations

import platform
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import InvokeCli, LoopbackAlias, RunCli, SpawnCli, no_traceback
from tests.fixtures.openai_server import FakeOpenAIServer

FOOTER = re.compile(
    r"^openai:(?P<model>\S+) \| finish: (?P<finish>\S+) \| tokens: (?P<prompt>\d+) prompt \+ "
    r"(?P<completion>\d+) completion = (?P<total>\d+) \| latency: \d+\.\d\d s$"
)


def test_prompt_prints_the_answer_then_a_footer_on_stderr(
    run_cli: RunCli, loopback_alias: LoopbackAlias
) -> None:
    loopback_alias("cli-basic")
    result = run_cli("prompt", "loopback", "hello there")
    assert result.code == 0, result.stderr
    assert result.stdout == "echo: hello there\n"
    footer = FOOTER.match(result.stderr.strip())
    assert footer is not None, result.stderr
    assert footer.group("model", "finish", "prompt", "completion", "total") == (
        "cli-basic",
        "stop",
        "2",
        "3",
        "5",
    )


def test_a_slow_first_call_says_what_it_is_loading_on_stderr(
    run_cli: RunCli, loopback_alias: LoopbackAlias
) -> None:
    loopback_alias("cli-loading")
    result = run_cli("prompt", "loopback", "hello")  # a new process: LiteLLM takes seconds
    assert result.code == 0, result.stderr
    assert result.notices == ("loading LiteLLM (the first call on a machine takes seconds)...",), (
        result.stderr
    )
    assert result.stdout == "echo: hello\n"


def test_prompt_streams_deltas_when_asked(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-stream")
    result = invoke_cli("prompt", "loopback", "one two three", "--stream")
    assert result.code == 0, result.stderr
    assert result.stdout == "echo: one two three\n"
    assert FOOTER.match(result.stderr.strip()), result.stderr
    assert openai_server.stats(model).bodies[-1]["stream"] is True


def test_prompt_does_not_stream_when_stdout_is_not_a_terminal(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-no-stream")
    result = invoke_cli("prompt", "loopback", "hi")
    assert result.code == 0, result.stderr
    assert not openai_server.stats(model).bodies[-1].get("stream")


@pytest.mark.parametrize("args", [("-",), ()])
def test_prompt_reads_stdin_for_dash_or_no_text(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    args: tuple[str, ...],
) -> None:
    model = loopback_alias(f"cli-stdin-{len(args)}")
    result = invoke_cli("prompt", "loopback", *args, stdin="from stdin\n")
    assert result.code == 0, result.stderr
    assert result.stdout == "echo: from stdin\n"
    assert openai_server.stats(model).bodies[-1]["messages"] == [
        {"role": "user", "content": "from stdin"}
    ]


def test_prompt_with_empty_stdin_is_a_usage_error(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias
) -> None:
    loopback_alias("cli-empty")
    result = invoke_cli("prompt", "loopback", "-", stdin="")
    assert result.code == 2
    assert "the prompt read from stdin is empty" in result.stderr


def test_system_message_and_set_kwargs_reach_the_request(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-system")
    result = invoke_cli(
        "prompt",
        "loopback",
        "hi",
        "--system",
        "be brief",
        "--set",
        "temperature=0.2",
        "--set",
        "max_tokens=7",
        "--set",
        "stop=['END']",
    )
    assert result.code == 0, result.stderr
    body = openai_server.stats(model).bodies[-1]
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.2, 7, ["END"])


def test_prompt_json_is_the_generation(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias
) -> None:
    loopback_alias("cli-json")
    result = invoke_cli("prompt", "loopback", "hello there", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert isinstance(data, dict)
    latency = data.pop("latency_s")
    assert isinstance(latency, float) and latency > 0
    assert data == {
        "text": "echo: hello there",
        "finish_reason": "stop",
        "usage": {
            "prompt_tokens": 2,
            "completion_tokens": 3,
            "total_tokens": 5,
            "cached_tokens": None,
            "reasoning_tokens": None,
        },
        "model": "cli-json",
        "provider": "openai",
        "cost": None,
        "name": "loopback",
        "from_store": False,
    }
    assert result.stderr == ""


def test_missing_api_key_is_one_line_naming_the_env_var(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("prompt", "openai:gpt-4.1", "hi")  # OpenAI's own API: a key is needed
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert "OPENAI_API_KEY" in result.stderr


def test_provider_error_is_one_message_and_exit_1(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-broken")
    openai_server.configure(model, status=503, message="the fleet is down for maintenance")
    result = invoke_cli("prompt", "loopback", "hi", "--set", "num_retries=0")
    assert result.code == 1
    assert result.stderr.startswith("error: openai model 'cli-broken' (HTTP 503): ")
    assert "the fleet is down for maintenance" in result.stderr
    assert no_traceback(result)


def test_unknown_model_prompt_exits_1_without_traceback(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("prompt", "no-such-model", "hi")
    assert result.code == 1
    assert result.stderr.startswith("error: unknown model 'no-such-model'")
    assert no_traceback(result)


def test_ctrl_c_cancels_the_request_and_exits_130(
    spawn_cli: SpawnCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-slow")
    openai_server.configure(model, delay=120)
    process = spawn_cli("prompt", "loopback", "wait for it")
    deadline = time.monotonic() + 90
    while openai_server.stats(model).in_flight == 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.1)
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = _communicate_or_dump_stacks(
        process, timeout=30, server=lambda: openai_server.stats(model)
    )
    assert process.returncode == 130, stderr
    assert time.monotonic() - interrupted < 10
    assert stderr.strip().endswith("cancelled")
    assert "Traceback" not in stderr
    assert stdout == ""
    deadline = time.monotonic() + 10
    while openai_server.stats(model).in_flight:  # the connection was closed, not left hanging
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _communicate_or_dump_stacks(
    process: subprocess.Popen[str], timeout: float, server: Callable[[], object] = lambda: None
) -> tuple[str, str]:
    """communicate(); if the CLI is still running at `timeout`, fail with its threads'
    stacks (and what `server()` says)."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # the CLI prints every thread's stack
        time.sleep(2)
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(
            f"the CLI was still running {timeout} s later; server: {server()}; its stderr:\n"
            f"{stderr}"
        )


def test_sigusr1_prints_every_threads_stack_and_the_prompt_goes_on(
    spawn_cli: SpawnCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-stacks")
    openai_server.configure(model, delay=3)
    process = spawn_cli("prompt", "loopback", "where are you")
    deadline = time.monotonic() + 90
    while openai_server.stats(model).in_flight == 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.1)
    process.send_signal(signal.SIGUSR1)
    stdout, stderr = _communicate_or_dump_stacks(process, timeout=60)
    assert process.returncode == 0, stderr
    assert "Current thread" in stderr  # faulthandler's dump of the main thread
    assert re.search(r'File ".*asyncio/base_events\.py", line \d+ in run_forever', stderr), stderr
    assert re.search(r'File ".*model_registry/cli\.py", line \d+ in prompt_command', stderr)
    assert stdout.strip()  # the answer still came


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_an_answer_with_a_lone_surrogate_prints_with_a_replacement_character(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, mode: str
) -> None:
    model = loopback_alias(f"cli-surrogate{mode}")
    openai_server.configure(model, reply="half \ud800 a pair")  # JSON's "\ud800" on the wire
    result = invoke_cli("prompt", "loopback", "hi", mode)
    assert result.code == 0, result.stderr
    assert result.stdout == "half \ufffd a pair\n"
    assert FOOTER.match(result.stderr.strip()), result.stderr


def test_an_answer_with_a_lone_surrogate_stays_exact_in_json(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    model = loopback_alias("cli-surrogate-json")
    openai_server.configure(model, reply="half \ud800 a pair")
    result = invoke_cli("prompt", "loopback", "hi", "--json")
    assert result.code == 0, result.stderr
    assert "\\ud800" in result.stdout  # JSON's own escape, valid JSON
    assert result.json()["text"] == "half \ud800 a pair"  # type: ignore[index]


PASS_A_PROMPT = "pass the prompt as an argument (model-registry prompt NAME 'TEXT') or pipe it in"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("",), None, "the prompt is empty"),
        (("  \n",), None, "the prompt is empty"),
        (("-",), "", "the prompt read from stdin is empty"),
        ((), " \n", "the prompt read from stdin is empty"),
    ],
    ids=["empty TEXT", "blank TEXT", "empty stdin", "blank stdin"],
)
def test_an_empty_prompt_is_a_usage_error_saying_what_to_pass(
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    args: tuple[str, ...],
    stdin: str | None,
    message: str,
) -> None:
    model = loopback_alias("cli-empty-prompt")
    result = run_cli("prompt", "loopback", *args, stdin=stdin)
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert PASS_A_PROMPT in result.stderr
    assert no_traceback(result)
    assert openai_server.stats(model).requests == 0


@pytest.mark.parametrize("args", [(), ("-",)], ids=["no TEXT", "TEXT -"])
def test_a_closed_stdin_is_a_usage_error_saying_what_to_pass(
    run_cli: RunCli, loopback_alias: LoopbackAlias, args: tuple[str, ...]
) -> None:
    loopback_alias("cli-closed-stdin")
    result = run_cli("prompt", "loopback", *args, close_stdin=True)
    assert result.code == 2, result.stderr
    assert "stdin is closed" in result.stderr
    assert PASS_A_PROMPT in result.stderr
    assert no_traceback(result)


def test_ctrl_c_while_reading_stdin_exits_130(spawn_cli: SpawnCli) -> None:
    process = spawn_cli("prompt", "my-eval-model", "-", stdin=subprocess.PIPE)
    _wait_until_reading_stdin(process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = _communicate_or_dump_stacks(process, timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.strip().endswith("cancelled")
    assert "Traceback" not in stderr
    assert stdout == ""


def _wait_until_reading_stdin(process: subprocess.Popen[str], within: float = 60) -> None:
    """Wait until `process` sits in read(0, ...) (Linux's /proc/PID/syscall: number, fd)."""
    read = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())
    if read is None:
        pytest.skip(f"read's syscall number on {platform.machine()} is not known here")
    syscall = Path(f"/proc/{process.pid}/syscall")
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the CLI never read its stdin"
        try:
            fields = syscall.read_text().split()
        except OSError:
            pytest.skip("no /proc/PID/syscall here to see the CLI wait on stdin")
        if fields[:2] == [read, "0x0"]:  # read on file descriptor 0
            return
        time.sleep(0.1)

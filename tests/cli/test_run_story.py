"""`run`'s story: after the summary, what the events saw (calls, retries by reason, waits,
fallbacks, cost by name), and `--log-json FILE` with every event as a JSON line; the story's
counts are the log's."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.cli.conftest import InvokeCli, LoopbackAlias
from tests.fixtures.openai_server import FakeOpenAIServer

RUN = ("run", "loopback", "prompts.jsonl", "--out", "results.jsonl", "--log-json", "events.jsonl")


def write_prompts(folder: Path, prompts: list[str]) -> None:
    text = "".join(json.dumps(p) + "\n" for p in prompts)
    (folder / "prompts.jsonl").write_text(text, encoding="utf-8")


def read_events(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_run_log_json_writes_every_event_and_the_story_counts_match_it(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("gpt-4o-mini")  # a model LiteLLM prices: each answer has a cost
    tag = uuid.uuid4().hex[:8]
    write_prompts(cli_dir, [f"a {tag}", f"b {tag} !once=503", f"c {tag}"])
    result = invoke_cli(*RUN)
    assert result.code == 0, result.stderr
    events = read_events(cli_dir)
    kinds = [e["event"] for e in events]
    assert (kinds[0], kinds[-1]) == ("batch_start", "batch_end")
    assert kinds.count("call_start") == kinds.count("call_end") == 3
    assert kinds.count("attempt") == 4 and kinds.count("retry") == 1
    (retry,) = [e for e in events if e["event"] == "retry"]
    assert (retry["error"], retry["status_code"]) == ("ServiceUnavailableError", 503)
    assert retry["retry_after"] is None  # a backoff: no cooldown
    ends = [e for e in events if e["event"] == "call_end"]
    assert {e["generation"]["text"] for e in ends} == {
        f"echo: a {tag}",
        f"echo: b {tag} !once=503",
        f"echo: c {tag}",
    }
    cost = sum(e["cost"] for e in ends)
    assert "calls: 3 (0 failed), 1 retries (ServiceUnavailableError 1)" in result.stderr
    assert f"cost by name that answered: loopback ${cost:.6f}" in result.stderr
    assert "sk-loopback-test" not in (cli_dir / "events.jsonl").read_text(encoding="utf-8")

    again = invoke_cli(*RUN)  # every answer from the store: no call, no story line
    assert again.code == 0, again.stderr
    stored = [e for e in read_events(cli_dir) if e["event"] == "call_end"]
    assert len(stored) == 3 and all(e["from_store"] for e in stored)
    assert not any(line.startswith("calls:") for line in again.stderr.splitlines())


def test_a_call_that_waits_out_its_own_retry_after_counts_as_cooldown_time(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    cli_dir: Path,
    openai_server: FakeOpenAIServer,
) -> None:
    model = loopback_alias(f"m-cool-{uuid.uuid4().hex[:8]}")
    openai_server.configure(model, status=429, headers={"retry-after": "1"}, times=1)
    write_prompts(cli_dir, ["a"])
    result = invoke_cli(*RUN)
    assert result.code == 0, result.stderr
    events = read_events(cli_dir)
    (retry,) = [e for e in events if e["event"] == "retry"]
    assert (retry["error"], retry["retry_after"]) == ("RateLimitError", 1.0)
    assert retry["wait_s"] >= 1.0
    (cooldown,) = [e for e in events if e["event"] == "cooldown"]
    assert cooldown["retry_after"] == 1.0
    paused = [e["seconds"] for e in events if e.get("limit") == "cooldown"]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("waited:")]
    assert line.endswith(f", {retry['wait_s'] + sum(paused):.1f} s for cooldowns"), line


def test_run_log_json_to_a_folder_fails_before_any_call(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("m-story")
    write_prompts(cli_dir, ["a"])
    (cli_dir / "events.jsonl").mkdir()
    result = invoke_cli(*RUN)
    assert result.code == 1
    assert "cannot write the events to events.jsonl" in result.stderr


def test_the_story_tells_waits_fallbacks_and_an_unknown_cost() -> None:
    from model_registry._cli.run_story import RunStory
    from model_registry.events import CallEnd, Fallback, LimiterWait, Retry

    where = {"call_id": "c1", "provider": "p", "model": "m", "route": None, "at": 0.0}
    story = RunStory(None)
    try:
        for event in (
            LimiterWait(**where, name="primary", limit="rpm", seconds=1.25),
            LimiterWait(**where, name="primary", limit="cooldown", seconds=2.0),
            LimiterWait(**where, name="primary", limit="concurrency", seconds=0.5),
            Retry(
                **where,
                name="primary",
                attempt=1,
                error="RateLimitError",
                status_code=429,
                wait_s=1.5,
                retry_after=1.25,
            ),
            Retry(
                **where,
                name="primary",
                attempt=2,
                error="APIConnectionError",
                status_code=None,
                wait_s=0.75,
            ),
            Fallback(**where, name="primary", from_name="primary", to_name="second", reason="X"),
            CallEnd(**where, name="second", latency_s=1.0, cost=None),
            CallEnd(**where, name="third", latency_s=1.0, error="RateLimitError"),
        ):
            story.seen(event)
    finally:
        story.close()
    assert story.summary() == [
        "calls: 2 (1 failed), 2 retries (RateLimitError 1, APIConnectionError 1)",
        # the Retry-After's retry waited 1.5 s: cooldown time; the backoff's 0.75 s is not
        "waited: 1.8 s for limits (concurrency 0.5 s, rpm 1.2 s), 3.5 s for cooldowns",
        "fallbacks: 1 (primary -> second 1)",
        "cost by name that answered: second unknown",
    ]

"""Two client processes side by side, pinned to one core, roles swapped every round
(benchmarks/README.md, "Method"); workers take JSON lines on stdin and answer on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    REPO,
    LagProbe,
    fresh_env,
    paired_ratios,
    percentile,
    pin_threads,
    rotated,
    spread,
)

#: The hosted benchmarks' alias (a keyless provider at the loopback server) and prompt.
HOSTED_ALIAS = "bench-hosted"
HOSTED_PROMPT = "Write three distractors for: the capital of France"
#: The embedding paths send requests of `EMBED_BATCH` texts each (`n` counts requests).
EMBED_BATCH = 16

#: Limits declared high enough never to bind: what declaring limits costs.
NEVER_BINDING = {"rpm": 1e9, "tpm": 1e12, "concurrency": 100_000}
LIMITED_ALIAS = "bench-hosted-limited"
#: The orders the latency paths take turns in: each comes first, and follows the other,
#: equally often (LiteLLM finishes each call in a thread, which slows the next call).
ORDERS = ((0, 1), (1, 0))
#: seconds between sending a command and the instant both workers start it
START_DELAY_S = 0.15


def worker_model(index: int) -> str:
    """The model name worker `index` sends (the server's counts tell the workers apart)."""
    return f"bench-w{index}"


def alias_file(path: Path, base_url: str, model: str) -> Path:
    """The workers' aliases: `HOSTED_ALIAS`, and `LIMITED_ALIAS` on a provider of its own
    (limits are shared per provider: the unlimited side must not share them)."""
    text = "".join(
        f'[providers."{provider}"]\napi_base = "{base_url}"\n\n'
        f'[aliases."{alias}"]\nprovider = "{provider}"\nmodel_id = "{model}"\n\n'
        for provider, alias in (("bench", HOSTED_ALIAS), ("bench-limited", LIMITED_ALIAS))
    )
    path.write_text(text)
    return path


class PairedWorkers:
    """Two worker processes with warm clients of every path; `compare()` drives both."""

    def __init__(self, server: Any) -> None:
        self.server, self._tmp = server, tempfile.TemporaryDirectory()
        self.processes: list[subprocess.Popen[str]] = []
        self._ready, self.pinning = False, ""
        try:
            self.processes = [self._spawn(index) for index in range(2)]
        except BaseException:
            self.close()
            raise

    def _spawn(self, index: int) -> subprocess.Popen[str]:
        model = worker_model(index)
        aliases = alias_file(Path(self._tmp.name) / f"w{index}.toml", self.server.base_url, model)
        env = fresh_env(MODEL_REGISTRY_ALIASES=str(aliases))
        command = [sys.executable, str(Path(__file__)), self.server.base_url, model, self._tmp.name]
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ready(self) -> None:
        """Wait until both workers have imported and warmed up (8-15 s here)."""
        if self._ready:
            return
        for process in self.processes:
            self._read(process)
        self._ready = True
        bodies = [b for i in range(2) for b in self.server.stats(worker_model(i)).bodies]
        if any("limits" in body for body in bodies):  # the limits client's warm-up call
            raise RuntimeError("get_client(limits=...) sent `limits` to the server")
        self.pinning = self._pin()

    def _pin(self) -> str:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cores) < 2 or self.server.pid is None:
            return "not pinned (fewer than 2 usable cores)"
        for process in self.processes:
            pin_threads(process.pid, cores[0])
        pin_threads(self.server.pid, cores[1])
        return f"both workers on core {cores[0]}, the server on core {cores[1]}"

    def _send(self, process: subprocess.Popen[str], command: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()

    def _read(self, process: subprocess.Popen[str]) -> Any:
        assert process.stdout is not None
        while line := process.stdout.readline():
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"a benchmark worker exited with code {process.wait()}")

    def batch(self, paths: tuple[str, str], n: int, concurrency: int, probe: bool) -> list[Any]:
        """Worker i runs `n` calls of paths[i] at `concurrency`, both from the same instant;
        each answers its CPU and wall seconds, and with `probe` its loop lag ("lag")."""
        self.ready()
        start_at = time.monotonic() + START_DELAY_S  # CLOCK_MONOTONIC is system-wide
        for process, path in zip(self.processes, paths, strict=True):
            command = {"path": path, "n": n, "concurrency": concurrency, "probe": probe}
            self._send(process, command | {"start_at": start_at})
        answers = [self._read(process) for process in self.processes]
        self.server.wait_idle(within=60)
        return answers

    def latency(self, n_per_path: int, concurrency: int) -> dict[str, dict[str, float]]:
        """One interleaved latency run on worker 0 (see `_Worker.latency`)."""
        self.ready()
        command = {"op": "latency", "n": n_per_path, "concurrency": concurrency}
        self._send(self.processes[0], command)
        answer: dict[str, dict[str, float]] = self._read(self.processes[0])
        return answer

    def compare(
        self, paths: tuple[str, str], n: int, concurrency: int, rounds: int, probe: bool = False
    ) -> dict[str, Any]:
        """`rounds` rounds of paths[0] against paths[1], roles swapped every round.
        `ratio`: throughput of paths[1] over paths[0] per pair of rounds (inverse CPU)."""
        # One round not counted, so that both workers have run this concurrency once: the
        # latency runs use worker 0 alone, and worker 1's first batch at it (its new
        # connections, most likely) fell on paths[1] in the first counted round, the
        # lowest round at c=256 in every run before.
        self.batch(paths, n, concurrency, probe=False)
        answers: list[dict[str, Any]] = []
        for r in range(rounds):
            order = rotated(paths, r)  # roles swap every round
            answers.append(dict(zip(order, self.batch(order, n, concurrency, probe), strict=True)))
        a, b = paths
        per_round = [x[a]["cpu_s"] / x[b]["cpu_s"] for x in answers]
        cpu_ms = {p: spread([x[p]["cpu_s"] / n * 1e3 for x in answers]) for p in paths}
        return {
            "paths": list(paths),
            "n_per_batch": n,
            "concurrency": concurrency,
            "rounds": rounds,
            "cpu_ms_per_call": cpu_ms,
            "per_round_ratio": per_round,
            "ratio": paired_ratios(per_round),
            "answers": answers if probe else [],
            "pinning": self.pinning,
        }

    def close(self) -> None:
        """Stop both workers (they close their clients) and remove their files."""
        for process in self.processes:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()  # type: ignore[union-attr]
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()  # type: ignore[union-attr]
        self._tmp.cleanup()

    def __enter__(self) -> PairedWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the worker process ------------------------------------------------------------------


async def _quiet(for_s: float = 0.02, tick_s: float = 0.002) -> None:
    """Return once the loop has run nothing but this for `for_s`: LiteLLM's success logging
    runs in tasks after each call, a tail that belongs to the batch."""
    quiet_since = give_up = time.perf_counter()
    give_up += 10.0
    while time.perf_counter() - quiet_since < for_s and time.perf_counter() < give_up:
        before = time.perf_counter()
        await asyncio.sleep(tick_s)
        if time.perf_counter() - before > 2 * tick_s:  # something else held the loop
            quiet_since = time.perf_counter()


def _no_op(event: Any) -> None:
    """The handler of the `many_events` path: what listening costs, nothing more."""


class _Worker:
    """The clients of every path in one worker process."""

    def __init__(self, base_url: str, model: str, tmp: str) -> None:
        self.base_url, self.model = base_url, model
        self.stores = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{model}-stores-"))
        self.batches = 0

    async def start(self) -> None:
        import litellm

        from model_registry import get_client

        self.litellm = litellm
        self.client = await get_client(HOSTED_ALIAS)
        self.limited = await get_client(LIMITED_ALIAS, limits=NEVER_BINDING)
        # warm-up: connection pools, LiteLLM's caches, our clients, sqlite
        raw = [self.raw() for _ in range(16)]
        await asyncio.gather(*raw, self.client.generate_many([HOSTED_PROMPT] * 16))
        await self.run("many_store", 16, 16)
        await self.limited.generate(HOSTED_PROMPT)
        await self.run("litellm_embed", 16, 16)
        await self.run("many_embed", 16, 16)

    async def raw(self) -> Any:
        # fresh messages per call, as real prompts are (LiteLLM caches work on the object)
        messages = [{"role": "user", "content": HOSTED_PROMPT}]
        return await self.litellm.acompletion(
            model=f"openai/{self.model}", messages=messages, api_base=self.base_url, api_key="-"
        )

    async def latency(self, command: dict[str, Any]) -> dict[str, dict[str, float]]:
        """One run: raw LiteLLM and our `generate` take turns call by call (`ORDERS`),
        `concurrency` calls in flight in all; p50 and p99 of each in ms."""
        calls = {"litellm": self.raw, "ours": self.call_ours}
        names = list(calls)
        turns = iter([names[i] for r in range(command["n"]) for i in ORDERS[r % len(ORDERS)]])
        latencies: dict[str, list[float]] = {name: [] for name in names}

        async def caller() -> None:
            for name in turns:
                started = time.perf_counter()
                await calls[name]()
                latencies[name].append(time.perf_counter() - started)

        await asyncio.gather(*(caller() for _ in range(command["concurrency"])))
        return {
            k: {"p50": percentile(v, 50) * 1e3, "p99": percentile(v, 99) * 1e3}
            for k, v in latencies.items()
        }

    async def call_ours(self) -> Any:
        return await self.client.generate(HOSTED_PROMPT)

    async def raw_embed(self, texts: list[str]) -> Any:
        return await self.litellm.aembedding(
            model=f"openai/{self.model}", input=texts, api_base=self.base_url, api_key="-"
        )

    async def run(self, path: str, n: int, concurrency: int) -> None:
        prompts = [HOSTED_PROMPT] * n
        texts = [f"{HOSTED_PROMPT} {i}" for i in range(n * EMBED_BATCH)]
        if path == "litellm_embed":  # n requests of EMBED_BATCH texts, as embed_many sends
            semaphore = asyncio.Semaphore(concurrency)

            async def embed(start: int) -> Any:
                async with semaphore:
                    return await self.raw_embed(texts[start : start + EMBED_BATCH])

            await asyncio.gather(*(embed(s) for s in range(0, len(texts), EMBED_BATCH)))
        elif path == "many_embed":
            await self.client.embed_many(texts, batch_size=EMBED_BATCH, concurrency=concurrency)
        elif path == "litellm":  # what a user writes without us
            semaphore = asyncio.Semaphore(concurrency)

            async def one() -> Any:
                async with semaphore:
                    return await self.raw()

            await asyncio.gather(*(one() for _ in range(n)))
        elif path == "many":
            await self.client.generate_many(prompts, concurrency=concurrency)
        elif path == "many_limits":
            await self.limited.generate_many(prompts, concurrency=concurrency)
        elif path == "many_events":  # one no-op handler on every event (events_overhead.py)
            from model_registry import events

            for name in events.EVENT_NAMES:
                events.on(name, _no_op)
            try:
                await self.client.generate_many(prompts, concurrency=concurrency)
            finally:
                for name in events.EVENT_NAMES:
                    events.off(name, _no_op)
        else:  # a fresh store per batch: nothing is resumed
            self.batches += 1
            store = self.stores / f"{self.batches}.sqlite"
            await self.client.generate_many(prompts, concurrency=concurrency, results_db=store)

    async def batch(self, command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") == "latency":
            return await self.latency(command)
        probe = LagProbe() if command["probe"] else None
        if probe is not None:  # idle wake-ups before the burst count too, as a caller's
            probe.start()
        await asyncio.sleep(max(0.0, command["start_at"] - time.monotonic()))
        cpu, wall = time.process_time(), time.perf_counter()
        await self.run(command["path"], command["n"], command["concurrency"])
        await _quiet()  # the batch's own tail (LiteLLM's logging tasks) is its cost
        answer = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
        if probe is not None:
            answer["lag"] = (await probe.stop())["cpu_lags_ms"]
        for store in self.stores.iterdir():
            store.unlink()
        return answer


async def _serve(base_url: str, model: str, tmp: str) -> None:
    worker = _Worker(base_url, model, tmp)
    await worker.start()
    # What is alive now leaves the collector's view: a full gc.collect() took 0.4 s with
    # LiteLLM alive, and the two workers collect on the one core they share.
    gc.collect()
    gc.freeze()
    print(json.dumps({"ready": True}), flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        gc.collect()
        print(json.dumps(await worker.batch(json.loads(line))), flush=True)
    await worker.client.aclose()
    await worker.limited.aclose()


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    asyncio.run(_serve(sys.argv[1], sys.argv[2], sys.argv[3]))

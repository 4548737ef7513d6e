"""Two client processes side by side: comparisons under load that survive a drifting machine.

On these shared machines the speed of a core drifts within seconds (a fixed
pure-Python loop took 0.30 s, then 0.54 s a few seconds later; `machine_drift()` measures
it), and a loaded client is CPU-bound, so two batches run one after the other differ by
10-30% whatever they run: A against A swings more than the few per cent a goal asks to
resolve. So the comparisons under load run path A and path B AT THE SAME TIME, in two
worker processes of the same shape pinned to one core (the OS shares a core fairly
between two processes; three processes on two cores settle unevenly, 2x apart A against
A), against one loopback server on the other core. Both see the same machine at the
same moment, and the roles swap between the two processes every round, so a bias of
either process (about 2% here) cancels in each pair of rounds.

- `batch()`: both workers run the same number of calls at the same concurrency from the
  same instant; each reports the CPU seconds (all threads) it spent. A loaded client is
  CPU-bound (wall time equals CPU time within 1% in a saturated batch alone), so
  throughput is the inverse of CPU seconds per call, and CPU seconds do not count the
  time the OS gave the other worker.
- `batch(..., probe=True)`: the same, with a `LagProbe` on each worker's loop; the CPU
  clock of the probe is the comparable figure (see `LagProbe`).

Each worker has its own alias file (model `bench-w0` / `bench-w1`), so the server's
counts tell them apart. Workers take JSON lines on stdin and answer on stdout.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    HOSTED_ALIAS,
    HOSTED_PROMPT,
    REPO,
    LagProbe,
    gather_limited,
    hosted_alias_file,
    pin_threads,
)

PATHS = ("litellm", "ours_generate", "ours_generate_many")
_READY = "PAIRED_WORKER_READY"
#: seconds between sending a command and the instant both workers start it
START_DELAY_S = 0.15


def worker_model(index: int) -> str:
    return f"bench-w{index}"


def machine_drift(chunks: int = 6) -> dict[str, float]:
    """Seconds a fixed pure-Python workload takes, `chunks` times in a row: the drift."""
    times = []
    for _ in range(chunks):
        started = time.perf_counter()
        table: dict[int, str] = {}
        for i in range(300_000):
            table[i % 1000] = str(i)
        times.append(time.perf_counter() - started)
    return {"min_s": min(times), "max_s": max(times), "max_over_min": max(times) / min(times)}


def paired_ratios(rounds: Sequence[float]) -> list[float]:
    """Per-round ratios (B/A, roles swapped every round) combined two by two (geometric
    mean), which cancels a constant bias of either worker process (about 2% here, A
    against A). An odd last round is left out."""
    return [math.sqrt(a * b) for a, b in zip(rounds[0::2], rounds[1::2], strict=False)]


class PairedWorkers:
    """Two worker processes with warm clients of every path; `batch()` and `lag()` drive both."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._tmp = tempfile.TemporaryDirectory()
        self.processes: list[subprocess.Popen[str]] = []
        self._ready = False
        #: how the processes were placed (set when the first comparison starts)
        self.pinning = ""
        try:
            for index in range(2):
                self.processes.append(self._spawn(index))
        except BaseException:
            self.close()
            raise

    def ready(self) -> None:
        """Wait until both workers have imported everything and warmed up (8-15 s here):
        spawn them early and call this late to overlap their start with other work."""
        if not self._ready:
            for process in self.processes:
                self._read(process, expect=_READY)
            self._ready = True

    def _spawn(self, index: int) -> subprocess.Popen[str]:
        aliases = hosted_alias_file(
            Path(self._tmp.name) / f"w{index}.toml", self.server.base_url, worker_model(index)
        )
        env = {
            **os.environ,
            "MODEL_REGISTRY_ALIASES": str(aliases),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        return subprocess.Popen(
            [sys.executable, str(Path(__file__)), self.server.base_url, worker_model(index)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _pin(self) -> str:
        if not hasattr(os, "sched_setaffinity"):
            return "not pinned (no sched_setaffinity)"
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2 or self.server.pid is None:
            return "not pinned (fewer than 2 usable cores)"
        for process in self.processes:
            pin_threads(process.pid, cores[0])
        pin_threads(self.server.pid, cores[1])
        return f"both workers on core {cores[0]}, the server on core {cores[1]}"

    def _read(self, process: subprocess.Popen[str], expect: str | None = None) -> Any:
        assert process.stdout is not None
        while True:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"a benchmark worker exited with code {process.wait()}")
            if expect is not None and line.strip() == expect:
                return None
            if expect is None and line.startswith("{"):
                return json.loads(line)

    def _run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One command to each worker, both to start at the same instant; both answers."""
        self.ready()
        if not self.pinning:
            self.pinning = self._pin()
        # both read, parse and collect (a few ms since gc.freeze()) before that instant;
        # CLOCK_MONOTONIC is the same in every process
        start_at = time.monotonic() + START_DELAY_S
        for process, command in zip(self.processes, commands, strict=True):
            assert process.stdin is not None
            process.stdin.write(json.dumps({**command, "start_at": start_at}) + "\n")
            process.stdin.flush()
        answers = [self._read(process) for process in self.processes]
        self.server.wait_idle(within=60)
        return answers

    def batch(
        self, paths: tuple[str, str], n: int, concurrency: int, probe: bool = False
    ) -> list[dict[str, Any]]:
        """Worker i runs `n` calls of paths[i] at `concurrency`; CPU and wall seconds of
        each, and with `probe` the loop lag its `LagProbe` saw (key "lag")."""
        return self._run(
            [
                {"op": "batch", "path": p, "n": n, "concurrency": concurrency, "probe": probe}
                for p in paths
            ]
        )

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None and process.stdin is not None:
                try:
                    process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                    process.stdin.close()
                except (BrokenPipeError, ValueError):
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._tmp.cleanup()

    def __enter__(self) -> PairedWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the worker process ------------------------------------------------------------------


class _GcTimer:
    """The garbage collector's passes while it runs, per generation: count, CPU seconds
    (of this thread: the other worker shares the core) and the longest. A pass runs
    inside whichever callback allocated past the threshold, so it stalls the loop too."""

    def __init__(self) -> None:
        self._started = 0.0
        self.passes: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.passes[info["generation"]].append(time.thread_time() - self._started)

    def stop(self) -> dict[str, dict[str, float]]:
        gc.callbacks.remove(self._callback)
        return {
            f"gen{g}": {"n": len(s), "s": sum(s), "max_s": max(s, default=0.0)}
            for g, s in self.passes.items()
        }


async def _serve(base_url: str, model: str) -> None:
    import asyncio

    import litellm

    from model_registry import get_client

    client = await get_client(HOSTED_ALIAS)

    async def raw() -> Any:
        # fresh messages per call, as real prompts are (LiteLLM caches work on the object)
        return await litellm.acompletion(
            model=f"openai/{model}",
            messages=[{"role": "user", "content": HOSTED_PROMPT}],
            api_base=base_url,
            api_key="no-key",
        )

    async def ours() -> Any:
        return await client.generate(HOSTED_PROMPT)

    calls = {"litellm": raw, "ours_generate": ours}

    async def sleep_until(moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - time.monotonic()))

    async def quiet(for_s: float = 0.02, tick_s: float = 0.002) -> None:
        """Return once the loop has run nothing but this for `for_s`. LiteLLM finishes
        each call's success logging in tasks after the call has returned: without this
        wait that tail of a 256-call batch ran into the next round, which started up to
        1.3 s late (its probe saw 4 wake-ups instead of about 140) and paid for it."""
        quiet_since = give_up = time.perf_counter()
        give_up += 10.0  # a loop that never quiets down: answer anyway
        while time.perf_counter() - quiet_since < for_s and time.perf_counter() < give_up:
            before = time.perf_counter()
            await asyncio.sleep(tick_s)
            if time.perf_counter() - before > 2 * tick_s:  # something else held the loop
                quiet_since = time.perf_counter()

    async def batch(command: dict[str, Any]) -> dict[str, Any]:
        path, n, concurrency = command["path"], command["n"], command["concurrency"]
        probe = LagProbe() if command.get("probe") else None
        if probe is not None:
            # started before the common instant, as a caller's loop runs before a burst:
            # its idle wake-ups count in the percentiles too
            probe.start()
        await sleep_until(command["start_at"])
        collections = _GcTimer()
        cpu, wall = time.process_time(), time.perf_counter()
        if path == "ours_generate_many":
            await client.generate_many([HOSTED_PROMPT] * n, concurrency=concurrency)
        else:
            await gather_limited(calls[path], n, concurrency)
        await quiet()  # the batch's own tail (LiteLLM's logging tasks) counts as its cost
        answer: dict[str, Any] = {
            "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall,
            "gc": collections.stop(),
        }
        if probe is not None:
            answer["lag"] = await probe.stop(samples=True)
        return answer

    handlers = {"batch": batch}
    # warm-up: connection pools, LiteLLM's caches, our client
    await asyncio.gather(*(raw() for _ in range(16)), *(ours() for _ in range(16)))
    # What is alive now (LiteLLM and the rest) leaves the collector's view: a full
    # gc.collect() took 0.4 s with it, longer than the START_DELAY_S each command leaves
    # before its start, and the two workers collect on the one core they share.
    gc.collect()
    gc.freeze()
    print(_READY, flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["op"] == "exit":
            break
        gc.collect()
        print(json.dumps(await handlers[command["op"]](command)), flush=True)
    await client.aclose()


def _worker_main() -> None:
    import asyncio

    sys.path.insert(0, str(BENCH_DIR))
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    _worker_main()

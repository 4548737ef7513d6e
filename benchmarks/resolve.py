"""What name resolution, alias loading and the typo guard cost: a warm `resolve()` per rule,
a 10,000-alias file against `tomllib.loads`, the typo guard's first check in a fresh
process, and an unknown name among 100,000 aliases refused (benchmarks/README.md).

    uv run python benchmarks/resolve.py --quick
"""

from __future__ import annotations

import os
import tempfile
import time
import timeit
import tomllib
from pathlib import Path

import msgspec
from _common import Report, base_parser, goal_of, median, python_json, rotated

TYPO_GOAL = "typo guard: first check (loads LiteLLM's model list), fresh process"
UNKNOWN_GOAL = "resolve: unknown name among 100,000 aliases refused, fresh registry"
RULES = {
    "alias": "bench-alias-0",
    "provider:model": "openai:gpt-4.1",
    "shortcut": "anthropic",
    "litellm route": "groq/llama3-70b-8192",
    "heuristic": "gpt-4o-mini",
    "local repo id": "Qwen/Qwen3-4B-Instruct-2507",
    "local path": "./models/my-finetune",
    "typo (warned)": "claude-sonet",
}

# In a fresh process: the registry loaded first, then a typo's check (loads the model list).
_FIRST_CHECK = """
import json, time
from model_registry import resolve
from model_registry import _model_list
resolve("local:org/model")
assert _model_list._load.cache_info().currsize == 0, "the model list was loaded already"
started = time.perf_counter()
first = resolve("claude-sonet")
assert first.warnings, "the typo was not warned about"
first_s = time.perf_counter() - started
started = time.perf_counter()
resolve("claude-sonet")
warm_s = time.perf_counter() - started
print(json.dumps({"first_ms": first_s * 1e3, "warm_ms": warm_s * 1e3}))
"""


def alias_text(count: int) -> str:
    """`count` aliases across providers, each with a defaults table, plus a provider."""
    lines = ['[providers."fleet"]', 'api_base = "http://127.0.0.1:8000/v1"', ""]
    providers = ("openai", "anthropic", "gemini", "deepseek", "local", "fleet")
    for i in range(count):
        provider = providers[i % len(providers)]
        model = f"org/model-{i}" if provider == "local" else f"model-{i}"
        lines += [
            f'[aliases."bench-alias-{i}"]',
            f'provider = "{provider}"',
            f'model_id = "{model}"',
            f'description = "generated alias number {i}"',
            f'[aliases."bench-alias-{i}".defaults]',
            f"temperature = {(i % 10) / 10}",
            f"max_tokens = {256 + i % 512}",
            'stop = ["</s>", "\\n\\n"]',
            "",
        ]
    return "\n".join(lines)


def load_ratios(path: Path, repeat: int) -> list[float]:
    """`load_registry` / `tomllib.loads` of the file, per pair (order swapped each pair)."""
    from model_registry import load_registry

    ratios = []
    for r in range(repeat + 1):
        pair: dict[str, float] = {}
        for side in rotated(("ours", "toml"), r):
            started = time.perf_counter()
            if side == "ours":
                load_registry(path, layered=False)
            else:
                tomllib.loads(path.read_text())
            pair[side] = time.perf_counter() - started
        if r:  # the first pair warms up
            ratios.append(pair["ours"] / pair["toml"])
    return ratios


def warm_resolve_us(number: int) -> dict[str, list[float]]:
    """µs per warm `resolve()` of each rule, over 5 repeats."""
    from model_registry import resolve

    per_call: dict[str, list[float]] = {}
    for rule, name in RULES.items():
        resolve(name)
        runs = timeit.repeat(lambda n=name: resolve(n), number=number, repeat=5)
        per_call[rule] = [t / number * 1e6 for t in runs]
    return per_call


def unknown_name_ms(repeat: int, count: int = 100_000) -> dict[str, list[float]]:
    """ms to refuse a typo'd name among `count` aliases, in a fresh registry and again."""
    import difflib
    from types import MappingProxyType

    from model_registry import UnknownModelError
    from model_registry.aliases import Alias, Registry
    from model_registry.providers import BUILTIN_PROVIDERS
    from model_registry.resolve import resolve_in

    names = sorted(f"team-model-{i}" for i in range(count))
    alias = Alias("", "openai", "gpt-4.1", "openai/gpt-4.1", MappingProxyType({}), "", "x")
    aliases = MappingProxyType({n: msgspec.structs.replace(alias, name=n) for n in names})
    runs: dict[str, list[float]] = {"first": [], "again": [], "difflib_scan": []}
    for r in range(repeat):
        registry = Registry(MappingProxyType(BUILTIN_PROVIDERS), aliases, ("x",))
        for key, name in (("first", f"team-modle-{r}7"), ("again", f"taem-model-{r}8")):
            started = time.perf_counter()
            try:
                resolve_in(registry, name, {})
            except UnknownModelError:
                runs[key].append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        difflib.get_close_matches("team-modle-7", names, n=3)
        runs["difflib_scan"].append((time.perf_counter() - started) * 1e3)
    return runs


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--aliases", type=int, default=10_000, help="aliases in the generated file")
    args = parser.parse_args()
    repeat = 4 if args.quick else 7
    report = Report("resolve", quick=args.quick, args={"aliases": args.aliases, "repeat": repeat})
    first = [python_json(_FIRST_CHECK) for _ in range(repeat)]  # the typo guard's first check
    unknown = unknown_name_ms(repeat)
    for key, values in unknown.items():
        print(f"unknown name among 100,000 aliases, {key:13s} {median(values):8.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aliases.toml"
        path.write_text(alias_text(args.aliases))
        os.environ["MODEL_REGISTRY_ALIASES"] = str(path)
        cwd = Path.cwd()
        os.chdir(tmp)  # no project alias file from the working directory
        ratios = load_ratios(path, repeat)
        per_call = warm_resolve_us(2_000 if args.quick else 20_000)
        os.chdir(cwd)
    report.figures = {"load_over_tomllib": ratios, "resolve_warm_us": per_call, "first": first}
    report.figures["unknown_ms"] = unknown
    for rule, values in per_call.items():
        print(f"resolve() warm, {rule:16s} {median(values):6.2f} µs")
    slowest = max(per_call, key=lambda rule: median(per_call[rule]))
    added = [run["first_ms"] - run["warm_ms"] for run in first]
    goals = [  # name, target (at most), values, unit, detail
        ("resolve: resolve() warm per call, slowest rule", 10.0, per_call[slowest], "us", slowest),
        (f"resolve: load {args.aliases:,}-alias file / tomllib.loads", 1.5, ratios, "x", ""),
        (TYPO_GOAL, 50.0, added, "ms", "first resolve('claude-sonet') minus a warm one"),
        (UNKNOWN_GOAL, 100.0, unknown["first"], "ms", "did-you-mean included"),
    ]
    report.save(args.out, [goal_of(n, t, "<=", v, u, detail=d) for n, t, v, u, d in goals])


if __name__ == "__main__":
    main()

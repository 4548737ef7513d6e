"""What name resolution and alias loading cost.

- `resolve()` warm, per call, for each resolution path (exact alias, `provider:model`,
  shortcut, LiteLLM route, heuristic, local repo id): goal at most 10 us.
- Loading a generated 10,000-alias file (every alias with a `defaults` table) through
  `load_registry`, against `tomllib.loads` of the same text: goal at most 1.5x
  (DESIGN.md: parsing dominates, so the ratio is the fair figure on these machines).
  Both sides alternate, repeated; the figure is the median of the per-pair ratios.

    uv run python benchmarks/resolve.py --quick
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import timeit
import tomllib
from pathlib import Path

from _common import Goal, Report, base_parser, median, progress_bar, spread

NAMES = {
    "exact alias": "bench-alias-5000",
    "provider:model": "openai:gpt-4.1",
    "provider shortcut": "anthropic",
    "litellm route": "anthropic/claude-sonnet-4-5",
    "heuristic": "gpt-4o-mini",
    "local repo id": "Qwen/Qwen3-4B-Instruct-2507",
}


def alias_text(count: int) -> str:
    """`count` aliases across providers, each with a defaults table, plus two providers."""
    lines = [
        '[providers."fleet"]',
        'api_base = "http://127.0.0.1:8000/v1"',
        'api_key_env = "FLEET_API_KEY"',
        "",
    ]
    providers = ("openai", "anthropic", "gemini", "deepseek", "local", "fleet")
    for i in range(count):
        provider = providers[i % len(providers)]
        model = f"org/model-{i}" if provider == "local" else f"model-{i}"
        lines += [
            f'[aliases."bench-alias-{i}"]',
            f'provider = "{provider}"',
            f'model_id = "{model}"',
            f'description = "generated alias number {i}"',
            "",
            f'[aliases."bench-alias-{i}".defaults]',
            f"temperature = {(i % 10) / 10}",
            f"max_tokens = {256 + i % 512}",
            'stop = ["</s>", "\\n\\n"]',
        ]
        if provider == "local":
            lines += ['dtype = "bfloat16"', "max_model_len = 4096"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--aliases", type=int, default=10_000, help="aliases in the generated file")
    parser.add_argument("--repeat", type=int, default=None, help="load/parse pairs (median)")
    args = parser.parse_args()
    repeat = args.repeat or (4 if args.quick else 7)
    report = Report("resolve", quick=args.quick, args={"aliases": args.aliases, "repeat": repeat})

    out = args.out.resolve() if args.out else None
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aliases.toml"
        text = alias_text(args.aliases)
        path.write_text(text)
        os.environ["MODEL_REGISTRY_ALIASES"] = str(path)
        os.chdir(tmp)  # no project file from the working directory

        from model_registry import load_registry, resolve
        from model_registry.aliases import clear_cache

        clear_cache()
        load_s: list[float] = []
        toml_s: list[float] = []
        ratios: list[float] = []
        with progress_bar("alias file load vs tomllib", repeat) as advance:
            for r in range(repeat + 1):
                order = ("ours", "toml") if r % 2 == 0 else ("toml", "ours")
                pair: dict[str, float] = {}
                for side in order:
                    started = time.perf_counter()
                    if side == "ours":
                        registry = load_registry(path, layered=False)
                    else:
                        tomllib.loads(path.read_text())
                    pair[side] = time.perf_counter() - started
                if r == 0:
                    continue  # warm-up pair
                load_s.append(pair["ours"])
                toml_s.append(pair["toml"])
                ratios.append(pair["ours"] / pair["toml"])
                advance(1)
        assert len(registry.aliases) == args.aliases

        # resolve(), warm: the registry is loaded once and cached.
        resolve(NAMES["exact alias"])
        number = 2_000 if args.quick else 20_000
        per_call_us: dict[str, dict[str, float]] = {}
        for label, name in NAMES.items():
            runs = timeit.repeat(lambda n=name: resolve(n), number=number, repeat=5)
            per_call_us[label] = spread([t / number * 1e6 for t in runs])
        with_kwargs = timeit.repeat(
            lambda: resolve(NAMES["exact alias"], temperature=0.2, max_tokens=64),
            number=number,
            repeat=5,
        )
        per_call_us["exact alias + 2 kwargs"] = spread([t / number * 1e6 for t in with_kwargs])
        os.environ.pop("MODEL_REGISTRY_ALIASES", None)
        os.chdir(cwd)

    report.figures.update(
        {
            "alias_file_bytes": len(text.encode()),
            "load_registry_s": spread(load_s),
            "tomllib_loads_s": spread(toml_s),
            "load_over_tomllib": spread(ratios),
            "resolve_warm_us_per_call": per_call_us,
            "note": "resolve() timed with the 10,000-alias file layered on the defaults",
        }
    )
    print(
        f"load_registry ({args.aliases} aliases): {median(load_s) * 1e3:.1f} ms; "
        f"tomllib.loads: {median(toml_s) * 1e3:.1f} ms; ratio {median(ratios):.2f}x"
    )
    for label, figures in per_call_us.items():
        print(f"resolve() warm, {label:24s} {figures['median']:7.2f} us")
    worst = max(per_call_us.items(), key=lambda item: item[1]["median"])
    report.goal(
        Goal(
            "resolve: resolve() warm per call (slowest path)",
            10.0,
            "<=",
            worst[1]["median"],
            "us",
            detail=worst[0],
        )
    )
    report.goal(
        Goal(
            f"resolve: load {args.aliases:,}-alias file / tomllib.loads",
            1.5,
            "<=",
            median(ratios),
            "x",
        )
    )
    report.save(out)


if __name__ == "__main__":
    sys.exit(main())

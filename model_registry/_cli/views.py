"""The read-only commands: `list` (aliases and providers), `resolve` (one name, and the
engine/sampling split of a local model's kwargs) and `validate` (alias files)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import typer

import model_registry
from model_registry._cli.layout import columns, fields, fmt_params, terminal_width
from model_registry._cli.output import echo_lines, fail, print_json, safe, state, warn

# --- list -------------------------------------------------------------------------------


def show_list(*, provider: str | None, full: bool, as_json: bool) -> None:
    """Print the aliases and providers (one of them with `provider`): aligned rows, every
    detail with `full`, or JSON."""
    aliases = model_registry.list_available_models()
    providers = model_registry.list_providers()
    if provider is not None:
        if provider not in {p.name for p in providers}:
            fail(
                f"unknown provider {provider!r} for --provider; known providers: "
                + ", ".join(p.name for p in providers)
            )
        aliases = [a for a in aliases if a.provider == provider]
        providers = [p for p in providers if p.name == provider]
    if as_json:
        alias_data = [
            {**a.to_dict(), "source": os.path.abspath(a.source), "limits": _alias_limits(a)}
            for a in aliases
        ]
        print_json({"aliases": alias_data, "providers": [p.to_dict() for p in providers]})
        return
    width = terminal_width()
    lines: list[str] = []
    if not aliases:
        lines.append("no aliases" + (f" for provider {safe(repr(provider))}" if provider else ""))
    elif full:
        alias_records = (
            (a.name, {**a.to_dict(), "source": a.source, "limits": _fmt_limits(_alias_limits(a))})
            for a in aliases
        )
        lines += _records(alias_records, width)
    else:
        rows = [("alias", "provider", "route")]
        rows += [(safe(a.name), safe(a.provider), safe(_target(a))) for a in aliases]
        lines += columns(rows, width)
    lines.append("")
    if full:
        lines += _records(((f"provider {p.name}", p.to_dict()) for p in providers), width)
    else:
        lines += _provider_rows(providers, width)
    echo_lines(lines)
    if full:  # the default list stays fast: this reads LiteLLM's model list (~0.2 s)
        listed = [f"alias {a.name!r}" for a in aliases]
        for warning in model_registry.alias_warnings():
            if any(name in warning for name in listed):
                warn(warning)


def _alias_limits(alias: model_registry.Alias) -> dict[str, dict[str, float]]:
    """The declared limits a call to `alias` runs under: its provider's and its own."""
    return model_registry.limits_in_force(model_registry.resolve(alias.name, strict=False))


def _fmt_limits(found: Mapping[str, Mapping[str, float]]) -> str:
    """Limits in force by the name they were declared for: `openai: rpm=600; fast: concurrency=8`
    (unescaped: the caller makes it safe)."""
    parts = (
        f"{name}: " + " ".join(f"{k}={v}" for k, v in kv.items()) for name, kv in found.items()
    )
    return "; ".join(parts) or "(none)"


def _target(alias: model_registry.Alias) -> str:
    """What an alias calls: its LiteLLM route, or for a local model the model vLLM loads."""
    return alias.route if alias.route is not None else alias.model_id


def _records(records: Iterator[tuple[str, dict[str, Any]]], width: int | None) -> Iterator[str]:
    """Each record as a block: its title, then every field but the name, one per line."""
    for n, (title, data) in enumerate(records):
        if n:
            yield ""
        yield safe(title)
        yield from fields(
            (
                (key.replace("_", " "), _record_value(value))
                for key, value in data.items()
                if key != "name"
            ),
            width,
            indent=2,
        )


def _record_value(value: object) -> str:
    """A field of --full: a mapping as `key=value` lines, a list comma-separated, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return fmt_params(value) or "(none)"
    if isinstance(value, list | tuple):
        return safe(", ".join(str(v) for v in value)) or "(none)"
    return safe(value) or "-"


def _provider_rows(
    providers: Sequence[model_registry.ProviderSpec], width: int | None
) -> Iterator[str]:
    rows = [("provider", "kind", "key", "default model")]
    for spec in providers:
        key = "-"
        if spec.api_key_env:
            key = f"{spec.api_key_env} ({'set' if spec.api_key_set else 'not set'})"
        rows.append((safe(spec.name), spec.kind, safe(key), safe(spec.default_model or "-")))
    return columns(rows, width)


# --- resolve ----------------------------------------------------------------------------

_SPLIT_LABELS = {"engine": "engine args", "sampling": "sampling params", "options": "call options"}


def show_resolution(
    name: str, kwargs: dict[str, Any], *, split: bool, strict: bool, as_json: bool
) -> None:
    """Print what `name` resolves to and why (warnings on stderr); `split` adds the local
    model's engine/sampling split of its kwargs."""
    state.call = (name, kwargs)
    resolution = model_registry.resolve(name, strict=True if strict else None, **kwargs)
    for warning in resolution.warnings:
        warn(warning)
    data = resolution.to_dict()
    data["limits"] = model_registry.limits_in_force(resolution)
    data["fallbacks"] = model_registry.fallback_chain(resolution.name)
    if split:
        data["split"] = _split(name, kwargs, resolution)
    if as_json:
        print_json(data)
        return
    rows = [
        ("name", safe(resolution.name)),
        ("rule", safe(resolution.source)),
        ("provider", f"{safe(resolution.provider)} ({resolution.kind})"),
        ("model id", safe(resolution.model_id)),
        ("route", safe(resolution.route or "- (local: vLLM, no LiteLLM route)")),
    ]
    if resolution.alias is not None:
        rows.append(("alias", safe(resolution.alias)))
    rows.append(("kwargs", fmt_params(data["params"]) or "(none)"))
    rows.append(("limits", safe(_fmt_limits(data["limits"]))))
    rows.append(("fallbacks", safe(", ".join(data["fallbacks"])) or "(none)"))
    for part, params in data.get("split", {}).items():
        rows.append((_SPLIT_LABELS.get(part, part), fmt_params(params) or "(none)"))
    echo_lines(fields(rows, terminal_width()))


def _split(
    name: str, kwargs: dict[str, Any], resolution: model_registry.Resolution
) -> dict[str, Any]:
    """The engine/sampling split of a local model's kwargs, as its client routes them
    (imports vLLM; without it, the library's BackendNotInstalledError)."""
    if resolution.kind != "local":
        fail(
            f"--split is for local models; {resolution.name!r} resolves to the hosted "
            f"provider {resolution.provider!r}, whose kwargs all go to LiteLLM"
        )
    # a local client has `split` (a ParamSplit); it starts nothing until its first call
    client = cast("Any", model_registry.get_client(name, **kwargs))
    parts = client.split
    redact = model_registry.redact
    return {
        "engine": redact(parts.engine),
        "sampling": redact(parts.sampling),
        "options": redact(parts.options),
    }


# --- validate ---------------------------------------------------------------------------


def show_validation(paths: list[Path]) -> None:
    """Print every problem of the alias files (exit 1), or a one-line ok."""
    problems = model_registry.validate_files(*paths)
    if problems:
        for problem in problems:
            typer.echo(safe(problem, newlines=True))
        noun = "problem" if len(problems) == 1 else "problems"
        typer.echo(f"\n{len(problems)} {noun} found", err=True)
        raise typer.Exit(1)
    registry = model_registry.load_registry(*paths)
    for warning in model_registry.alias_warnings(registry):
        warn(warning)
    n, k = len(registry.aliases), len(registry.files)
    typer.echo(
        f"ok: {n} alias{'' if n == 1 else 'es'} in {k} file{'' if k == 1 else 's'} "
        f"({safe(', '.join(registry.files))})"
    )

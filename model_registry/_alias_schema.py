"""The alias file schema: `Alias`, `Registry`, and strict validation of one file.

A file holds `[aliases."name"]` tables (provider, model_id, defaults, description,
fallbacks), optional `[providers."name"]` tables (`_alias_providers`) and `[limits."NAME"]`
tables (`_alias_references`). Every problem of a file is collected, each naming the file,
alias and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec

from model_registry._alias_files import display_path, parse_toml, read_alias_file
from model_registry._alias_problems import (
    Problem,
    Problems,
    check_string,
    did_you_mean,
    section,
    type_name,
)
from model_registry._alias_providers import parse_providers
from model_registry._alias_references import Declared, check_fallbacks, parse_limits, schema_file
from model_registry._limits_declared import Limits
from model_registry._options import OWN_KWARGS
from model_registry._prompts import first_non_finite
from model_registry._redaction import shown_dict, shown_repr
from model_registry.errors import AliasConfigError
from model_registry.providers import litellm_provider_spec
from model_registry.types import ProviderSpec

__all__ = ["Alias", "Registry", "parse_file"]


class Alias(msgspec.Struct, frozen=True):
    """One alias as loaded: `source` is the file it came from (the last that defined it);
    `fallbacks` the names tried, in order, when a call to it fails for want of capacity."""

    name: str
    provider: str
    model_id: str
    route: str | None
    defaults: Mapping[str, Any]
    description: str
    source: str
    fallbacks: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return shown_repr(self, _ALIAS_REPR, ("defaults",), unless_empty=("fallbacks",))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON, credentials redacted."""
        return shown_dict(self, _ALIAS_DICT, ("defaults",))


_ALIAS_REPR = ("name", "provider", "model_id", "route", "defaults", "source", "fallbacks")
_ALIAS_DICT = (*_ALIAS_REPR[:5], "description", "source", "fallbacks")


class Registry(msgspec.Struct, frozen=True):
    """The providers, aliases and declared limits (by provider or alias name) of a set of
    layered alias files."""

    providers: Mapping[str, ProviderSpec]
    aliases: Mapping[str, Alias]
    files: tuple[str, ...]
    limits: Mapping[str, Limits] = msgspec.field(default_factory=lambda: MappingProxyType({}))


_ALIAS_KEYS = ("provider", "model_id", "defaults", "description", "fallbacks")
_TOP_KEYS = ("aliases", "providers", "limits")


def _parse_aliases(
    raw: object, path: str, problems: Problems, providers: Mapping[str, ProviderSpec]
) -> dict[str, Alias]:
    out: dict[str, Alias] = {}
    for name, table in section(raw, path, "aliases", problems).items():
        alias = _parse_alias(name, table, path, problems, providers)
        if alias is not None:
            out[name] = alias
    return out


def _parse_alias(
    name: str,
    table: object,
    path: str,
    problems: Problems,
    providers: Mapping[str, ProviderSpec],
) -> Alias | None:
    """One `[aliases."name"]` table; None (its problems added) when it is not valid."""
    where = f"{path}: alias '{name}'"
    if not name.strip():
        problems.add(
            f"{path}: alias names must not be empty or blank; "
            f'give the alias a name, as in [aliases."my-model"]',
            name,
        )
        return None
    if not isinstance(table, dict):
        problems.add(
            f"{where}: must be a table with at least 'provider', got {type_name(table)}", name
        )
        return None
    unknown = [key for key in table if key not in _ALIAS_KEYS]
    for key in unknown:
        problems.add(
            f"{where}: unknown key '{key}'{did_you_mean(key, _ALIAS_KEYS)}; allowed keys: "
            f'{", ".join(_ALIAS_KEYS)} (call kwargs go under [aliases."{name}".defaults])',
            name,
            key,
        )
    provider_name = check_string(
        problems, where, name, "provider", table.get("provider"), required=True
    )
    model_id = check_string(problems, where, name, "model_id", table.get("model_id"))
    description = check_string(problems, where, name, "description", table.get("description"))
    defaults = _alias_defaults(table.get("defaults", {}), path, where, name, problems)
    fallbacks = check_fallbacks(table.get("fallbacks"), where, name, problems.add)
    target = _alias_target(provider_name, model_id, where, name, problems, providers)
    if target is None or unknown:
        return None
    spec, model_id = target
    return Alias(
        name=name,
        provider=spec.name,
        model_id=model_id,
        route=spec.route(model_id),
        defaults=MappingProxyType(spec.default_params(defaults)),
        description=description or "",
        source=path,
        fallbacks=fallbacks,
    )


def _alias_defaults(
    defaults: object, path: str, where: str, name: str, problems: Problems
) -> dict[str, Any]:
    """An alias's `defaults`, checked (a table, no nan or inf); a schema file path absolute."""
    if not isinstance(defaults, dict):
        problems.add(
            f"{where}: key 'defaults' must be a table of call kwargs, got {type_name(defaults)}; "
            f'write it as [aliases."{name}".defaults]',
            name,
            "defaults",
        )
        return {}
    for key, value in defaults.items():
        if key in OWN_KWARGS:
            problems.add(
                f"{where}: key 'defaults.{key}' is not a call kwarg: {OWN_KWARGS[key]}", name, key
            )
        found = first_non_finite(value)
        if found is not None:
            problems.add(
                f"{where}: key '{key}{found[0]}' is {found[1]!r}, not a finite number "
                "(no parameter means anything as nan or inf); use a number or remove the key",
                name,
                key,
            )
    if isinstance(schema := defaults.get("response_format"), str):
        return {**defaults, "response_format": schema_file(schema, path, where, name, problems.add)}
    return dict(defaults)


def _alias_target(
    provider_name: str | None,
    model_id: str | None,
    where: str,
    name: str,
    problems: Problems,
    providers: Mapping[str, ProviderSpec],
) -> tuple[ProviderSpec, str] | None:
    """The provider and model id an alias names; None (a problem added) when it names none."""
    if model_id is not None and not model_id.strip():
        problems.add(f"{where}: key 'model_id' must not be empty", name, "model_id")
        return None
    if provider_name is None:
        return None
    # any LiteLLM provider by its own name, as in names ("groq:llama3-70b-8192")
    spec = providers.get(provider_name) or litellm_provider_spec(provider_name)
    if spec is None:
        problems.add(
            f"{where}: unknown provider '{provider_name}'"
            f"{did_you_mean(provider_name, providers)}; known providers: "
            f"{', '.join(sorted(providers))} (or declare it in a [providers] table)",
            name,
            "provider",
        )
        return None
    model_id = model_id if model_id is not None else spec.default_model
    if model_id is None:
        problems.add(
            f"{where}: provider '{provider_name}' has no default model; "
            f'add model_id = "<Hugging Face repo id or path>"',
            name,
            "model_id",
        )
        return None
    return spec, model_id


class ParsedFile(NamedTuple):
    """What one file declares (its valid tables) and every problem found in it."""

    providers: dict[str, ProviderSpec]
    aliases: dict[str, Alias]
    limits: Declared
    problems: list[Problem]


def parse_file(path: Path, known_providers: Mapping[str, ProviderSpec]) -> ParsedFile:
    """The providers, aliases and limits one file declares, and its problems (a file that
    cannot be read or is no TOML declares nothing and has that one problem)."""
    shown = display_path(path)
    try:
        parsed = parse_toml(read_alias_file(path, shown), shown)
    except AliasConfigError as exc:
        return ParsedFile({}, {}, {}, [Problem(str(exc), shown, None, None)])
    problems = Problems(shown)
    for key in parsed:
        if key not in _TOP_KEYS:
            hint = did_you_mean(key, _TOP_KEYS)
            problems.add(
                f"{shown}: unknown top-level key '{key}'{hint}; an alias file holds only "
                f'[aliases."name"], [providers."name"] and [limits."name"] tables',
                key=key,
            )
    file_providers = parse_providers(parsed.get("providers"), shown, problems, known_providers)
    all_providers = {**known_providers, **file_providers}
    file_aliases = _parse_aliases(parsed.get("aliases"), shown, problems, all_providers)
    file_limits = parse_limits(parsed.get("limits"), shown, problems.add)
    return ParsedFile(file_providers, file_aliases, file_limits, problems.items)

"""The alias file schema: `Alias`, `Registry`, and strict validation of one file.

A file holds `[aliases."name"]` tables (provider, model_id, defaults, description) and
optional `[providers."name"]` tables for OpenAI-compatible endpoints. Every problem of a
file is collected and raised as one AliasConfigError naming the file, alias and key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec

from model_registry._alias_files import display_path, read_alias_file
from model_registry._alias_limits import Declared, check_fallbacks, parse_limits, schema_file
from model_registry.errors import AliasConfigError
from model_registry.limits import Limits
from model_registry.providers import BUILTIN_PROVIDERS, litellm_provider_spec
from model_registry.types import (
    ProviderSpec,
    first_non_finite,
    is_litellm_provider,
    litellm_prefix_problem,
    shown_dict,
    shown_repr,
)

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


# --- the schema ------------------------------------------------------------------

_ALIAS_KEYS = ("provider", "model_id", "defaults", "description", "fallbacks")
_PROVIDER_KEYS = ("litellm_prefix", "api_base", "api_key_env", "default_model", "description")
_PREFIX_KEYS = ("litellm_prefix", "api_base")
_TOP_KEYS = ("aliases", "providers", "limits")
#: Arguments of ours that alias defaults cannot hold (they never reach a backend).
_NOT_DEFAULTS = {
    "fallbacks": "write fallbacks = [...] beside provider and model_id, not under defaults",
    "limits": 'declare limits in a [limits."NAME"] table',
    "results_db": "results_db is an argument of generate_many() and iter_many()",
    "strict": "strict is an argument of get_client() and resolve() (or MODEL_REGISTRY_STRICT)",
}
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Problems:
    """Collects every problem of one file; raised together as one AliasConfigError."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[str, str | None, str | None]] = []

    def add(self, message: str, alias: str | None = None, key: str | None = None) -> None:
        self.items.append((message, alias, key))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = tuple(message for message, _, _ in self.items)
        first_message, alias, key = self.items[0]
        text = first_message
        if len(lines) > 1:
            text += f"\n(and {len(lines) - 1} more problem(s) in {self.path}:\n  "
            text += "\n  ".join(lines[1:]) + ")"
        raise AliasConfigError(text, path=self.path, alias=alias, key=key, problems=lines)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a float",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _parse_toml(data: bytes, path: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AliasConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the alias file as UTF-8", path=path
        ) from None
    try:
        parsed: dict[str, Any] = msgspec.toml.decode(text.encode("utf-8"))
    except msgspec.DecodeError as exc:
        reason = str(exc)
        if "(at end of document)" in reason:
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
            reason = reason.replace(
                "(at end of document)", f"(at line {max(line, 1)}, end of file)"
            )
        raise AliasConfigError(f"{path}: invalid TOML: {reason}", path=path) from None
    except RecursionError:
        raise AliasConfigError(
            f"{path}: invalid TOML: arrays or tables nested too deeply; flatten them", path=path
        ) from None
    return parsed


def _check_string(
    problems: _Problems,
    where: str,
    alias: str,
    key: str,
    value: object,
    *,
    required: bool = False,
) -> str | None:
    if value is None:
        if required:
            problems.add(f"{where}: missing key '{key}'", alias, key)
        return None
    if not isinstance(value, str):
        problems.add(
            f"{where}: key '{key}' must be a string, got {_type_name(value)}"
            # a table or array is not echoed: it may hold a credential (api_base = {password=...})
            + (f" ({value!r})" if isinstance(value, int | float) else ""),
            alias,
            key,
        )
        return None
    if required and not value.strip():
        problems.add(f"{where}: key '{key}' must not be empty", alias, key)
        return None
    return value


def _section(raw: object, path: str, key: str, problems: _Problems) -> dict[str, Any]:
    """The `[key."name"]` tables of a file: empty when absent, or (a problem) not a table."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(
            f"{path}: '{key}' must be a table of [{key}.\"name\"] tables, got {_type_name(raw)}",
            key=key,
        )
        return {}
    return raw


def _parse_providers(
    raw: object, path: str, problems: _Problems, known: Mapping[str, ProviderSpec]
) -> dict[str, ProviderSpec]:
    out: dict[str, ProviderSpec] = {}
    for name, table in _section(raw, path, "providers", problems).items():
        where = f"{path}: provider '{name}'"
        if not isinstance(table, dict):
            problems.add(f"{where}: must be a table, got {_type_name(table)}", name)
            continue
        if name in BUILTIN_PROVIDERS:
            problems.add(
                f"{where}: is a built-in provider and cannot be redefined; pick another name",
                name,
            )
            continue
        for key in table:
            if key not in _PROVIDER_KEYS:
                problems.add(
                    f"{where}: unknown key '{key}'{_did_you_mean(key, _PROVIDER_KEYS)}; "
                    f"allowed keys: {', '.join(_PROVIDER_KEYS)}",
                    name,
                    key,
                )
        fields = {
            key: _check_string(problems, where, name, key, table.get(key)) for key in _PROVIDER_KEYS
        }
        env = fields["api_key_env"]
        if env is not None and not _ENV_VAR.match(env):
            problems.add(
                # the value is not echoed: it is often the key itself, pasted in by mistake
                f"{where}: key 'api_key_env' must name an environment variable "
                "(like 'FLEET_API_KEY'), got something else (not shown, in case it is the key "
                "itself); put the key in that variable, never in the file",
                name,
                "api_key_env",
            )
        prefix = fields["litellm_prefix"]
        problem = litellm_prefix_problem(name, prefix, fields["api_base"])
        if problem is not None:
            # a key of the wrong type is reported already: no second problem about it
            if not any(table.get(k) is not None and fields[k] is None for k in _PREFIX_KEYS):
                problems.add(f"{where}: {problem}", name, "litellm_prefix")
            prefix = "openai"  # a stand-in, so aliases naming it are checked; the file fails
        elif prefix is None:  # the one default, as register_provider() has it
            prefix = name if is_litellm_provider(name) else "openai"
        try:
            out[name] = ProviderSpec(
                name=name,
                kind="hosted",
                litellm_prefix=prefix,
                default_model=fields["default_model"],
                api_key_env=fields["api_key_env"],
                api_base=fields["api_base"],
                description=fields["description"] or "",
            )
        except ValueError as exc:
            problems.add(f"{where}: {exc}", name)
    return out


def _parse_aliases(
    raw: object, path: str, problems: _Problems, providers: Mapping[str, ProviderSpec]
) -> dict[str, Alias]:
    out: dict[str, Alias] = {}
    for name, table in _section(raw, path, "aliases", problems).items():
        alias = _parse_alias(name, table, path, problems, providers)
        if alias is not None:
            out[name] = alias
    return out


def _parse_alias(
    name: str,
    table: object,
    path: str,
    problems: _Problems,
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
            f"{where}: must be a table with at least 'provider', got {_type_name(table)}", name
        )
        return None
    unknown = [key for key in table if key not in _ALIAS_KEYS]
    for key in unknown:
        problems.add(
            f"{where}: unknown key '{key}'{_did_you_mean(key, _ALIAS_KEYS)}; allowed keys: "
            f'{", ".join(_ALIAS_KEYS)} (call kwargs go under [aliases."{name}".defaults])',
            name,
            key,
        )
    provider_name = _check_string(
        problems, where, name, "provider", table.get("provider"), required=True
    )
    model_id = _check_string(problems, where, name, "model_id", table.get("model_id"))
    description = _check_string(problems, where, name, "description", table.get("description"))
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
    defaults: object, path: str, where: str, name: str, problems: _Problems
) -> dict[str, Any]:
    """An alias's `defaults`, checked (a table, no nan or inf); a schema file path absolute."""
    if not isinstance(defaults, dict):
        problems.add(
            f"{where}: key 'defaults' must be a table of call kwargs, got {_type_name(defaults)}; "
            f'write it as [aliases."{name}".defaults]',
            name,
            "defaults",
        )
        return {}
    for key, value in defaults.items():
        if key in _NOT_DEFAULTS:
            problems.add(f"{where}: key 'defaults.{key}': {_NOT_DEFAULTS[key]}", name, key)
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
    problems: _Problems,
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
            f"{_did_you_mean(provider_name, providers)}; known providers: "
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


def parse_file(
    path: Path, known_providers: Mapping[str, ProviderSpec]
) -> tuple[dict[str, ProviderSpec], dict[str, Alias], Declared]:
    """The providers, aliases and limits one file declares; every problem in it raised
    together as one AliasConfigError."""
    shown = display_path(path)
    data = read_alias_file(path, shown)
    parsed = _parse_toml(data, shown)
    problems = _Problems(shown)
    for key in parsed:
        if key not in _TOP_KEYS:
            hint = _did_you_mean(key, _TOP_KEYS)
            problems.add(
                f"{shown}: unknown top-level key '{key}'{hint}; an alias file holds only "
                f'[aliases."name"], [providers."name"] and [limits."name"] tables',
                key=key,
            )
    file_providers = _parse_providers(parsed.get("providers"), shown, problems, known_providers)
    all_providers = {**known_providers, **file_providers}
    file_aliases = _parse_aliases(parsed.get("aliases"), shown, problems, all_providers)
    file_limits = parse_limits(parsed.get("limits"), shown, problems.add)
    problems.raise_if_any()
    return file_providers, file_aliases, file_limits

"""The `[providers."name"]` tables of an alias file: OpenAI-compatible endpoints (and other
LiteLLM providers under a name of the user's), checked as `register_provider()` checks them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from model_registry._alias_problems import (
    Problems,
    check_string,
    did_you_mean,
    section,
    type_name,
)
from model_registry.providers import BUILTIN_PROVIDERS
from model_registry.types import ProviderSpec, is_litellm_provider, litellm_prefix_problem

__all__ = ["parse_providers"]

_PROVIDER_KEYS = ("litellm_prefix", "api_base", "api_key_env", "default_model", "description")
_PREFIX_KEYS = ("litellm_prefix", "api_base")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_providers(
    raw: object, path: str, problems: Problems, known: Mapping[str, ProviderSpec]
) -> dict[str, ProviderSpec]:
    out: dict[str, ProviderSpec] = {}
    for name, table in section(raw, path, "providers", problems).items():
        where = f"{path}: provider '{name}'"
        if not isinstance(table, dict):
            problems.add(f"{where}: must be a table, got {type_name(table)}", name)
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
                    f"{where}: unknown key '{key}'{did_you_mean(key, _PROVIDER_KEYS)}; "
                    f"allowed keys: {', '.join(_PROVIDER_KEYS)}",
                    name,
                    key,
                )
        fields = {
            key: check_string(problems, where, name, key, table.get(key)) for key in _PROVIDER_KEYS
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

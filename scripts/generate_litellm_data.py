"""Write model_registry/_litellm_providers.py from the installed LiteLLM.

Resolution needs LiteLLM's chat and embedding providers and parameter names without
importing LiteLLM (seconds), so they are committed as data. Run after upgrading LiteLLM;
`--check` exits 1 and names the drift when the committed file differs from what it would
write:

    uv run python scripts/generate_litellm_data.py [--check]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import os
import sys
import textwrap
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "model_registry" / "_litellm_providers.py"

_HEADER = '''"""LiteLLM's chat and embedding providers and parameter names, as data (no code).

Generated from the installed LiteLLM by scripts/generate_litellm_data.py: do not edit by
hand. Resolution reads them without importing LiteLLM (seconds).
"""

from __future__ import annotations

__all__ = [
    "LITELLM_CHAT_PROVIDERS",
    "LITELLM_EMBEDDING_PROVIDERS",
    "LITELLM_PARAMS",
    "LITELLM_PROVIDERS",
    "LITELLM_VERSION",
]

#: The LiteLLM release these names were generated from.
LITELLM_VERSION = "{version}"

#: `litellm.LITELLM_CHAT_PROVIDERS`.
LITELLM_CHAT_PROVIDERS: frozenset[str] = frozenset(
    """
{providers}
    """.split()  # noqa: SIM905
)

#: The providers of `litellm.provider_list` that embed: those with embedding models in
#: LiteLLM's price map (`litellm.model_cost`, mode "embedding") or an embedding config.
LITELLM_EMBEDDING_PROVIDERS: frozenset[str] = frozenset(
    """
{embedding_providers}
    """.split()  # noqa: SIM905
)

#: Every LiteLLM provider a name may start with (`voyage:voyage-3`, `groq/llama-3.3-70b`).
LITELLM_PROVIDERS: frozenset[str] = LITELLM_CHAT_PROVIDERS | LITELLM_EMBEDDING_PROVIDERS

#: Every kwarg name LiteLLM knows for a chat call: `acompletion`'s parameters, the OpenAI
#: chat parameters, LiteLLM's own (`all_litellm_params`) and the provider configs' fields.
LITELLM_PARAMS: frozenset[str] = frozenset(
    """
{params}
    """.split()  # noqa: SIM905
)
'''


def _litellm() -> object:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def installed_chat_providers() -> frozenset[str]:
    """The chat providers of the installed LiteLLM."""
    litellm = _litellm()
    providers = litellm.LITELLM_CHAT_PROVIDERS  # type: ignore[attr-defined]
    return frozenset(str(getattr(p, "value", p)) for p in providers)


def installed_embedding_providers() -> frozenset[str]:
    """The providers of the installed LiteLLM that embed (chat ones included)."""
    litellm = _litellm()
    from litellm.utils import ProviderConfigManager

    routes = {str(getattr(p, "value", p)) for p in litellm.provider_list}  # type: ignore[attr-defined]
    priced = {
        str(entry.get("litellm_provider"))
        for entry in litellm.model_cost.values()  # type: ignore[attr-defined]
        if entry.get("mode") == "embedding"
    }
    configured = set()
    for provider in litellm.provider_list:  # type: ignore[attr-defined]
        try:
            config = ProviderConfigManager.get_provider_embedding_config("x", provider)
        except Exception:  # a provider whose config lookup needs more than a name
            continue
        if config is not None:
            configured.add(str(getattr(provider, "value", provider)))
    return frozenset((priced | configured) & routes)


def installed_params() -> frozenset[str]:
    """The kwarg names the installed LiteLLM knows for a chat call."""
    litellm = _litellm()
    from litellm.types.utils import all_litellm_params

    names = set(inspect.signature(litellm.acompletion).parameters)  # type: ignore[attr-defined]
    names |= set(litellm.OPENAI_CHAT_COMPLETION_PARAMS)  # type: ignore[attr-defined]
    names |= set(all_litellm_params)
    for attribute in dir(litellm):
        value = getattr(litellm, attribute, None)
        if inspect.isclass(value) and attribute.endswith("Config"):
            try:
                names |= set(inspect.signature(value.__init__).parameters)
            except (TypeError, ValueError):
                continue
    return frozenset(
        n for n in names if n.isidentifier() and not n.startswith("_") and n not in _NOT_KWARGS
    )


_NOT_KWARGS = frozenset({"self", "args", "kwargs", "model", "messages"})


def _block(names: frozenset[str]) -> str:
    return textwrap.fill(" ".join(sorted(names)), width=92, break_on_hyphens=False)


def render() -> str:
    """The text of the data module for the installed LiteLLM."""
    indent = lambda text: textwrap.indent(text, "    ")  # noqa: E731
    return _HEADER.format(
        version=importlib.metadata.version("litellm"),
        providers=indent(_block(installed_chat_providers())),
        embedding_providers=indent(_block(installed_embedding_providers())),
        params=indent(_block(installed_params())),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    args = parser.parse_args()
    text = render()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if args.check:
        if text == current:
            return 0
        sys.path.insert(0, str(TARGET.parent.parent))
        from model_registry import _litellm_providers as committed

        providers, params = installed_chat_providers(), installed_params()
        embedders = installed_embedding_providers()
        committed_embedders = getattr(committed, "LITELLM_EMBEDDING_PROVIDERS", frozenset())
        print(
            f"{TARGET.name} is out of date with litellm {importlib.metadata.version('litellm')}"
            f" (committed from {committed.LITELLM_VERSION}): run "
            "`uv run python scripts/generate_litellm_data.py`\n"
            f"  providers added {sorted(providers - committed.LITELLM_CHAT_PROVIDERS)}, "
            f"gone {sorted(committed.LITELLM_CHAT_PROVIDERS - providers)}\n"
            f"  embedding providers added {sorted(embedders - committed_embedders)}, "
            f"gone {sorted(committed_embedders - embedders)}\n"
            f"  params added {sorted(params - committed.LITELLM_PARAMS)}, "
            f"gone {sorted(committed.LITELLM_PARAMS - params)}"
        )
        return 1
    TARGET.write_text(text, encoding="utf-8")
    print(
        f"{TARGET}: {len(installed_chat_providers())} chat providers, "
        f"{len(installed_embedding_providers())} embedding providers, "
        f"{len(installed_params())} params"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

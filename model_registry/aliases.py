"""Alias files: discovery, layering and the loaded-registry cache.

A file holds `[aliases."name"]` tables (provider, model_id, defaults, description,
fallbacks), optional `[providers."name"]` tables for OpenAI-compatible endpoints and
`[limits."NAME"]` tables (rpm, tpm, concurrency of a provider or an alias); the schema and
its validation: `_alias_schema` and the modules it names. Files layer in order (packaged defaults,
./config/model_aliases.toml, MODEL_REGISTRY_ALIASES or an explicit path); later files
win per alias and per limits NAME. Once layered, limits NAMEs must be known, fallback
names must resolve, and fallbacks must not go round in a cycle.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from model_registry import providers as _providers
from model_registry._alias_files import (
    ALIASES_ENV_VAR,
    MAX_ALIAS_FILE_BYTES,  # noqa: F401 (tests import it from here)
    display_path,
)
from model_registry._alias_problems import Problem, raise_problems
from model_registry._alias_references import Declared, link_problems
from model_registry._alias_schema import Alias, Registry, parse_file
from model_registry.types import ProviderSpec

__all__ = ["Alias", "Registry"]

PROJECT_ALIASES = Path("config") / "model_aliases.toml"


# --- discovery, layering, caching --------------------------------------------------


def packaged_aliases_path() -> Path:
    """The default alias file: inside the wheel, or the repository's config/ in a checkout."""
    repo_file = Path(__file__).resolve().parent.parent / PROJECT_ALIASES
    if repo_file.is_file():
        return repo_file
    from importlib.resources import files

    return Path(str(files("model_registry") / "_data" / "model_aliases.toml"))


def default_alias_paths() -> list[Path]:
    """The layered files, in order: packaged, ./config/model_aliases.toml, MODEL_REGISTRY_ALIASES."""
    paths = [packaged_aliases_path()]
    project = Path.cwd() / PROJECT_ALIASES
    # lexists, not is_file: a directory, FIFO or broken link there is reported, not skipped
    if os.path.lexists(project) and not _same_file(project, paths[0]):
        paths.append(project)
    explicit = os.environ.get(ALIASES_ENV_VAR)
    if explicit:
        try:
            paths.append(Path(explicit).expanduser())
        except RuntimeError:  # "~user/..." for a user without a home directory
            paths.append(Path(explicit))
    return paths


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


#: Checks a fallback name that is no alias of the registry: None, or what is wrong with it.
#: `resolve` has the rules names follow, so its loaders pass its check here.
NameCheck = Callable[[Registry, str], "str | None"]


def load_registry(
    *paths: str | os.PathLike[str], layered: bool = True, name_check: NameCheck | None = None
) -> Registry:
    """Load and validate alias files; later files win per alias and per limits NAME.

    With `layered=True` (the default) the given paths go on top of the default set
    (packaged, ./config/model_aliases.toml, MODEL_REGISTRY_ALIASES), each file once (a
    default file given again loads in its given place); otherwise only they load. A fallback name that is no alias is checked by `name_check` (taken as it is without one).
    Every problem of every file is raised together as one AliasConfigError.
    """
    given = [Path(p) for p in paths]
    base = _other_files(default_alias_paths(), given) if layered else []
    registry, problems = _layer([*base, *given], name_check)
    raise_problems(problems)
    return registry


def validate_files(
    *paths: str | os.PathLike[str], name_check: NameCheck | None = None
) -> list[str]:
    """Every problem in the given files, each naming file and alias, in one pass; without
    paths, the layered default set.

    Given files are checked on top of the files `load_registry` layers them over (packaged,
    ./config/model_aliases.toml, MODEL_REGISTRY_ALIASES unless it is one of them), in order,
    so a file may use the providers and aliases an earlier one declares.
    """
    given = [Path(p) for p in paths]
    _, problems = _layer([*_other_files(default_alias_paths(), given), *given], name_check)
    return [problem.message for problem in problems]


def _other_files(base: list[Path], given: list[Path]) -> list[Path]:
    return [b for b in base if not any(_same_file(b, g) for g in given)]


def _layer(file_paths: list[Path], name_check: NameCheck | None) -> tuple[Registry, list[Problem]]:
    """The registry of the files layered in order (their valid tables), and every problem:
    each file's own, then what needs them all (limits NAMEs, fallbacks, cycles)."""
    known = _providers.builtin_and_registered_providers()
    aliases: dict[str, Alias] = {}
    limits: Declared = {}
    problems: list[Problem] = []
    for path in file_paths:
        parsed = parse_file(path, known)
        known = {**known, **parsed.providers}
        aliases.update(parsed.aliases)
        limits.update(parsed.limits)
        problems.extend(parsed.problems)
    registry = Registry(
        providers=MappingProxyType(known),
        aliases=MappingProxyType(dict(sorted(aliases.items()))),
        files=tuple(display_path(p) for p in file_paths),
        limits=MappingProxyType({name: declared for name, (_, declared) in limits.items()}),
    )
    check = None if name_check is None else (lambda name: name_check(registry, name))
    broken = frozenset(p.alias for p in problems if p.alias is not None)
    problems.extend(link_problems(registry.aliases, registry.providers, limits, check, broken))
    return registry, problems


_cache_lock = threading.Lock()
_cache: tuple[tuple[object, ...], Registry] | None = None


def current_registry(name_check: NameCheck | None = None) -> Registry:
    """The registry of the layered default files (see `load_registry` for `name_check`),
    loaded on first use and cached.

    The cache is keyed by MODEL_REGISTRY_ALIASES, the working directory, the provider
    registry's version and `name_check`, so changing any of them reloads.
    """
    global _cache
    key = (os.environ.get(ALIASES_ENV_VAR), os.getcwd(), _providers.registry_version(), name_check)
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _cache_lock:
        registry = load_registry(name_check=name_check)
        _cache = (key, registry)
    return registry


def clear_cache() -> None:
    """Forget the loaded files; the next use reads them again."""
    global _cache
    _cache = None


def provider_of(registry: Registry, name: str) -> ProviderSpec | None:
    """A provider of the registry, else a LiteLLM provider (chat or embedding) by its own name."""
    spec = registry.providers.get(name)
    return spec if spec is not None else _providers.litellm_provider_spec(name)

"""Alias files: discovery, layering and the loaded-registry cache.

A file holds `[aliases."name"]` tables (provider, model_id, defaults, description,
fallbacks), optional `[providers."name"]` tables for OpenAI-compatible endpoints and
`[limits."NAME"]` tables (rpm, tpm, concurrency of a provider or an alias); the schema and
its validation: `_alias_schema`, `_alias_limits`. Files layer in order (packaged defaults,
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
from model_registry._alias_files import ALIASES_ENV_VAR, MAX_ALIAS_FILE_BYTES, display_path
from model_registry._alias_limits import Declared, link_problems
from model_registry._alias_schema import Alias, Registry, parse_file
from model_registry.errors import AliasConfigError

# re-exported: imported from here by other modules and tests
from model_registry.types import check_finite, first_non_finite

__all__ = [
    "ALIASES_ENV_VAR",
    "MAX_ALIAS_FILE_BYTES",
    "Alias",
    "Registry",
    "check_finite",
    "clear_cache",
    "default_alias_paths",
    "first_non_finite",
    "install_name_check",
    "load_registry",
    "packaged_aliases_path",
    "validate_files",
]

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


#: Checks a fallback name that is no alias: None, or what is wrong with it. `resolve`
#: installs its resolver here (this module cannot import it: resolve sits above).
_name_check: Callable[[Registry, str], str | None] | None = None


def install_name_check(check: Callable[[Registry, str], str | None]) -> None:
    """Set how fallback names that are no alias are checked when files load (resolve's)."""
    global _name_check
    _name_check = check


def load_registry(*paths: str | os.PathLike[str], layered: bool = True) -> Registry:
    """Load and validate alias files; later files win per alias and per limits NAME.

    With `layered=True` (the default) the given paths go on top of the default set
    (packaged, ./config/model_aliases.toml, MODEL_REGISTRY_ALIASES); otherwise only they load.
    """
    file_paths = [*(default_alias_paths() if layered else []), *(Path(p) for p in paths)]
    known = _providers.builtin_and_registered_providers()
    aliases: dict[str, Alias] = {}
    limits: Declared = {}
    for path in file_paths:
        file_providers, file_aliases, file_limits = parse_file(path, known)
        known = {**known, **file_providers}
        aliases.update(file_aliases)
        limits.update(file_limits)
    registry = Registry(
        providers=MappingProxyType(known),
        aliases=MappingProxyType(dict(sorted(aliases.items()))),
        files=tuple(display_path(p) for p in file_paths),
        limits=MappingProxyType({name: declared for name, (_, declared) in limits.items()}),
    )
    _check_links(registry, limits)
    return registry


def _check_links(registry: Registry, limits: Declared) -> None:
    """Raise one AliasConfigError for every limits NAME, fallback and cycle at fault."""
    check = _name_check
    found = link_problems(
        registry.aliases,
        registry.providers,
        limits,
        None if check is None else (lambda name: check(registry, name)),
    )
    if not found:
        return
    lines = tuple(message for message, _, _, _ in found)
    text = lines[0]
    if len(lines) > 1:
        text += f"\n(and {len(lines) - 1} more problem(s):\n  " + "\n  ".join(lines[1:]) + ")"
    _, path, alias, key = found[0]
    raise AliasConfigError(text, path=path, alias=alias, key=key, problems=lines)


def validate_files(*paths: str | os.PathLike[str]) -> list[str]:
    """Every problem in the given files (default: the layered set), each naming file and alias.

    Files are checked in order, so a later file may use providers an earlier one declares.
    """
    file_paths = [Path(p) for p in paths] if paths else default_alias_paths()
    known = _providers.builtin_and_registered_providers()
    problems: list[str] = []
    for path in file_paths:
        try:
            file_providers, _, _ = parse_file(path, known)
        except AliasConfigError as exc:
            problems.extend(exc.problems)
            continue
        known = {**known, **file_providers}
    if not problems:  # each file is sound: now what needs them all (names, fallbacks)
        try:
            load_registry(*file_paths, layered=False)
        except AliasConfigError as exc:
            problems.extend(exc.problems)
    return problems


_cache_lock = threading.Lock()
_cache: tuple[tuple[object, ...], Registry] | None = None


def current_registry() -> Registry:
    """The registry of the layered default files, loaded on first use and cached.

    The cache is keyed by MODEL_REGISTRY_ALIASES, the working directory and the
    provider registry's version, so changing any of them reloads.
    """
    global _cache
    key = (os.environ.get(ALIASES_ENV_VAR), os.getcwd(), _providers.registry_version())
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _cache_lock:
        registry = load_registry()
        _cache = (key, registry)
    return registry


def clear_cache() -> None:
    """Forget the loaded files; the next use reads them again."""
    global _cache
    _cache = None

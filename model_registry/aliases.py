"""Alias files: discovery, layering and the loaded-registry cache.

A file holds `[aliases."name"]` tables (provider, model_id, defaults, description)
and optional `[providers."name"]` tables for OpenAI-compatible endpoints (the schema
and its validation: `_alias_schema`). Files layer in order (packaged defaults,
./config/model_aliases.toml, MODEL_REGISTRY_ALIASES or an explicit path); later files
win per alias.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import MappingProxyType

from model_registry import providers as _providers
from model_registry._alias_files import ALIASES_ENV_VAR, MAX_ALIAS_FILE_BYTES, display_path
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


def load_registry(*paths: str | os.PathLike[str], layered: bool = True) -> Registry:
    """Load and validate alias files; later files win per alias.

    With `layered=True` (the default) the given paths go on top of the default set
    (packaged, ./config/model_aliases.toml, MODEL_REGISTRY_ALIASES); otherwise only they load.
    """
    file_paths = [*(default_alias_paths() if layered else []), *(Path(p) for p in paths)]
    known = _providers.builtin_and_registered_providers()
    aliases: dict[str, Alias] = {}
    for path in file_paths:
        file_providers, file_aliases = parse_file(path, known)
        known = {**known, **file_providers}
        aliases.update(file_aliases)
    return Registry(
        providers=MappingProxyType(known),
        aliases=MappingProxyType(dict(sorted(aliases.items()))),
        files=tuple(display_path(p) for p in file_paths),
    )


def validate_files(*paths: str | os.PathLike[str]) -> list[str]:
    """Every problem in the given files (default: the layered set), each naming file and alias.

    Files are checked in order, so a later file may use providers an earlier one declares.
    """
    file_paths = [Path(p) for p in paths] if paths else default_alias_paths()
    known = _providers.builtin_and_registered_providers()
    problems: list[str] = []
    for path in file_paths:
        try:
            file_providers, _ = parse_file(path, known)
        except AliasConfigError as exc:
            problems.extend(exc.problems)
            continue
        known = {**known, **file_providers}
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

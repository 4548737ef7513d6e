"""Reading an alias file safely (a regular file of bounded size) and decoding its TOML, or an
AliasConfigError naming the path and what to do."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import msgspec

from model_registry.errors import AliasConfigError

__all__ = [
    "ALIASES_ENV_VAR",
    "MAX_ALIAS_FILE_BYTES",
    "display_path",
    "parse_toml",
    "read_alias_file",
]

ALIASES_ENV_VAR = "MODEL_REGISTRY_ALIASES"


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop (Python 3.11)
        return str(path)


#: Alias files are small; a bigger file is a mistake (a log, a device), not a config.
MAX_ALIAS_FILE_BYTES = 64 * 1024 * 1024

_NOT_A_FILE = (
    (stat.S_ISDIR, "is a directory, not an alias file; name the .toml file inside it"),
    (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def read_alias_file(path: Path, shown: str) -> bytes:
    """The bytes of a regular file of at most MAX_ALIAS_FILE_BYTES; anything else is an
    AliasConfigError naming the path. Looked at with stat first, so a FIFO or a device is
    never opened (opening a FIFO blocks; /dev/zero never ends)."""
    if "\0" in str(path):
        raise AliasConfigError(
            f"{shown!r}: not a usable path (it holds a NUL byte); check the path", path=shown
        )
    try:
        info = os.stat(path)
    except OSError as exc:
        raise AliasConfigError(_os_error_message(exc, shown), path=shown) from None
    _check_regular_file(info.st_mode, info.st_size, shown)
    try:
        # O_NONBLOCK: should the path turn into a FIFO after the stat, open does not block
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            _check_regular_file(info.st_mode, info.st_size, shown)
            data = file.read(MAX_ALIAS_FILE_BYTES + 1)
    except OSError as exc:
        raise AliasConfigError(_os_error_message(exc, shown), path=shown) from None
    _check_regular_file(stat.S_IFREG, len(data), shown)  # it may have grown since the stat
    return data


def parse_toml(data: bytes, path: str) -> dict[str, Any]:
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


def _check_regular_file(mode: int, size: int, shown: str) -> None:
    for test, what in _NOT_A_FILE:
        if test(mode):
            raise AliasConfigError(
                f"{shown}: {what}; an alias file must be a regular TOML file", path=shown
            )
    if not stat.S_ISREG(mode):
        raise AliasConfigError(
            f"{shown}: not a regular file; an alias file must be a regular TOML file",
            path=shown,
        )
    if size > MAX_ALIAS_FILE_BYTES:
        raise AliasConfigError(
            f"{shown}: {size:,} bytes is over the {MAX_ALIAS_FILE_BYTES // 2**20} MiB limit "
            "for alias files; check that this is the alias file you meant",
            path=shown,
        )


def _os_error_message(exc: OSError, shown: str) -> str:
    env_hint = f" (set by {ALIASES_ENV_VAR})" if os.environ.get(ALIASES_ENV_VAR) else ""
    if exc.errno == errno.ENOENT:
        return f"{shown}: alias file not found; check the path{env_hint}"
    if exc.errno == errno.ELOOP:
        return f"{shown}: a symbolic link loop (a link that points back to itself); fix the link"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{shown}: permission denied; make the alias file readable (chmod u+r)"
    if exc.errno == errno.ENOTDIR:
        return f"{shown}: a part of the path is a file, not a directory; check the path"
    reason = exc.strerror or type(exc).__name__
    return f"{shown}: cannot read alias file: {reason}; check the path{env_hint}"

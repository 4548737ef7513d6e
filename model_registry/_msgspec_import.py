"""msgspec imported first, without typing_extensions (`import_msgspec`). Imports nothing of
ours; the package imports it before anything else."""

from __future__ import annotations

import sys

__all__ = ["import_msgspec"]


def import_msgspec() -> None:
    """Import msgspec with typing's hints instead of typing_extensions', unless either is
    imported already: typing_extensions loads `inspect`, a fifth of this package's import."""
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    # msgspec takes `get_type_hints`, `Required` and `NotRequired` from typing_extensions
    # when it imports, else from typing. On Python 3.11+ they are typing's own (its
    # `get_type_hints` returns typing's result unchanged for include_extras=True, which
    # msgspec passes), so msgspec behaves the same (tests/test_public_api.py checks both).
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # its import fails
    try:
        import msgspec
    except ImportError:  # a msgspec that needs typing_extensions: imported with it below
        for name in [n for n in sys.modules if n.partition(".")[0] == "msgspec"]:
            del sys.modules[name]
    else:
        return
    finally:
        del sys.modules["typing_extensions"]
    import msgspec  # noqa: F401


import_msgspec()

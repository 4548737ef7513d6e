"""The `model-registry` console script's entry point.

It lives outside the `model_registry` package so that a Ctrl-C while the package is being
imported (the first half second) exits 130 with one word, as it does later, instead of a
traceback. Nothing is imported before the handler is installed: `_signal` (the built-in
behind `signal`, loaded with the interpreter) and `sys` are there from the start, whereas
`import signal` would first load enum, functools and more, milliseconds in which Ctrl-C
still printed a traceback. The interpreter's own start (its `site` import) and finding
this module come before any of our code and are out of its reach.
"""

import _signal  # type: ignore[import-not-found]  # no stub; signal's own functions
import sys


def main() -> None:
    """Import the CLI and run it; Ctrl-C during the import exits 130."""
    caught: list[int] = []

    def on_sigint(signum: int, frame: object) -> None:
        caught.append(signum)
        if len(caught) == 1:  # a second Ctrl-C (held down) would interrupt the exit
            raise KeyboardInterrupt

    def unraisable(exc: "sys.UnraisableHookArgs") -> None:
        if not isinstance(exc.exc_value, KeyboardInterrupt):
            sys.__unraisablehook__(exc)

    _signal.signal(_signal.SIGINT, on_sigint)
    # Ctrl-C inside a callback of the import machinery (a module lock's weakref callback)
    # is printed as "Exception ignored" with a traceback, then lost: `caught` has it.
    sys.unraisablehook = unraisable
    try:
        from model_registry.cli import main as cli_main
    except KeyboardInterrupt:
        caught.append(_signal.SIGINT)
    except Exception:
        # Our KeyboardInterrupt raised where Python turns it into another error (inside a
        # class body's `__set_name__`: "RuntimeError: Error calling __set_name__"): the
        # import failed because of the Ctrl-C, which `caught` holds.
        if not caught:
            raise
    finally:
        sys.unraisablehook = sys.__unraisablehook__
    if caught:  # also when an import swallowed the KeyboardInterrupt (some C code clears it)
        # Ignored from now on: the interpreter's shutdown puts back the default handler,
        # and a second Ctrl-C then killed the process (-2) instead of its exit 130.
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        sys.stderr.write("\ncancelled\n")
        sys.exit(130)
    cli_main()

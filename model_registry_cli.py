"""The `model-registry` console script's entry point.

It lives outside the `model_registry` package so that a Ctrl-C while the package is being
imported (the first half second) exits 130 with one word, as it does later, instead of a
traceback.
"""

import signal
import sys


def main() -> None:
    """Import the CLI and run it; Ctrl-C during the import exits 130."""
    caught: list[int] = []

    def on_sigint(signum: int, frame: object) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        from model_registry.cli import main as cli_main
    except KeyboardInterrupt:
        caught.append(signal.SIGINT)
    if caught:  # also when an import swallowed the KeyboardInterrupt (some C code clears it)
        sys.stderr.write("\ncancelled\n")
        sys.exit(130)
    cli_main()

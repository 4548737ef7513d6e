"""The `model-registry` console script's entry point.

It lives outside the `model_registry` package so that a Ctrl-C while the package is being
imported (the first half second) exits 130 with one word, as it does later, instead of a
traceback.
"""

import sys


def main() -> None:
    """Import the CLI and run it; Ctrl-C during the import exits 130."""
    try:
        from model_registry.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("\ncancelled\n")
        sys.exit(130)
    cli_main()

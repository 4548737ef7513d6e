"""`python -m model_registry` runs the CLI."""

from model_registry.cli import main

main()

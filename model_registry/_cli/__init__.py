"""The pieces of the `model-registry` command line (`model_registry.cli` wires them).

Private: these modules import the public `model_registry` package and each other only,
and nothing in the library imports them.
"""

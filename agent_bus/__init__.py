"""agent-bus: a local, durable inbox for AI coding agents working on one task together."""

# A literal, not importlib.metadata: reading package metadata costs ~100 ms of cold
# start in every agent's server process. pyproject.toml reads the version from here.
__version__ = "0.1.0"

SPEC_VERSION = "v6.3"

__all__ = ["SPEC_VERSION", "__version__"]

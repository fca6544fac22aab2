"""agent-bus: a local, durable inbox for AI coding agents working on one task together."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agent-bus")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

SPEC_VERSION = "v6.3"

__all__ = ["SPEC_VERSION", "__version__"]

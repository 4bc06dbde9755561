"""Engine adapters: one plugin per inference engine.

An adapter knows how to launch its engine's OpenAI-compatible server for a planned
combination (argv and environment) and how to tell it is ready. Facts about versions,
formats and flags live in matrix.toml, not here. Built-in adapters register through
the ``envman.engines`` entry-point group, the same path a third-party adapter takes.
"""

from envman.engines.base import EngineAdapter, Launch, LaunchSpec, adapter_for

__all__ = ["EngineAdapter", "Launch", "LaunchSpec", "adapter_for"]

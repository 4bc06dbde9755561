"""Tiny random-weight models for the ``smoke-*`` catalog entries, made here with no download.

:func:`synthesize` writes one model in both forms from the same weights (an HF directory and a
GGUF file) into the cache, ``ENVMAN_HOME/models/<name>/<digest>/``, and returns the form asked
for. numpy and gguf are imported only when a model is made.
"""

from __future__ import annotations

from envman.synth.architectures import RECIPES
from envman.synth.cache import SYNTH_VERSION, synthesize

SUPPORTED_ARCHITECTURES = tuple(sorted(RECIPES))

__all__ = ["SUPPORTED_ARCHITECTURES", "SYNTH_VERSION", "synthesize"]

"""llama.cpp inside an engine: the GGUF ``general.architecture`` names it accepts.

Two ways to read them. A built wheel (xllamacpp) carries the names as strings in its
shared library: the reader takes the strings the library's code addresses (see
:mod:`._elf`), whole, so ``gemma3`` is not found in ``gemma3n``, nor ``glm4`` in ``chatglm4``.
A chat-template name that equals an architecture name (``phi3``, ``llama4``) also counts,
but llama.cpp added each such template with or after its architecture.
An sdist (llama-cpp-python) vendors the source, where ``LLM_ARCH_NAMES`` lists them:
``src/llama-arch.cpp`` since late 2024, ``src/llama.cpp`` or ``llama.cpp`` before.
"""

from __future__ import annotations

import re
from pathlib import Path

from envman.probe.readers import Catalog, Vocabulary, reader
from envman.probe.readers._archive import linux_wheel, members, sdist
from envman.probe.readers._elf import referenced_strings

# A GGUF architecture name: lower-case letters, digits and . _ - (``command-r``, ``qwen2moe``).
_NAME = re.compile(rb"[a-z][a-z0-9_.\-]{0,39}")
_STRING = re.compile(rb"(?<=\x00)(" + _NAME.pattern + rb")(?=\x00)")
_GGUF_MARKER = b"\x00general.architecture\x00"
_ARCH_ENTRY = re.compile(r'\{\s*LLM_ARCH_[A-Z0-9_]+\s*,\s*"([^"]+)"\s*\}')
_SOURCES = ("src/llama-arch.cpp", "src/llama.cpp", "llama.cpp")


def _is_shared_library(path: str) -> bool:
    return path.endswith(".so") or ".so." in path.rsplit("/", 1)[-1]


@reader(
    "llamacpp-strings",
    vocabulary=Vocabulary.GGUF_ARCHITECTURES,
    choose=linux_wheel,
    claim="references the string",
    revision=2,
)
def read_library_strings(artifact: Path) -> Catalog:
    found: set[str] = set()
    libraries: list[str] = []
    for name, content in members(artifact, _is_shared_library):
        if _GGUF_MARKER in content:  # a library with llama.cpp in it, not libgomp & co
            libraries.append(name)
            referenced = referenced_strings(content, _NAME)
            if referenced is None:  # not x86-64 ELF: fall back to every whole string
                referenced = {match.decode("ascii") for match in _STRING.findall(content)}
            found |= referenced
    return Catalog(frozenset(found), " and ".join(libraries) or "no llama.cpp library")


@reader(
    "llamacpp-source",
    vocabulary=Vocabulary.GGUF_ARCHITECTURES,
    choose=sdist,
    claim="LLM_ARCH_NAMES lists",
)
def read_arch_table(artifact: Path) -> Catalog:
    wanted = {f"vendor/llama.cpp/{source}" for source in _SOURCES}
    tables: dict[str, set[str]] = {}
    for name, content in members(artifact, lambda path: path in wanted):
        names = set(_ARCH_ENTRY.findall(content.decode("utf-8", "replace")))
        if names:
            tables[name] = names
    for source in _SOURCES:  # the newest layout wins when a tree has more than one
        path = f"vendor/llama.cpp/{source}"
        if path in tables:
            return Catalog(frozenset(tables[path]), path)
    return Catalog(frozenset(), "no LLM_ARCH_NAMES table")

"""LineIndex: where each key of a TOML text is written, so problems can name file:line."""

from __future__ import annotations

import pytest

from envman.matrix.lines import LineIndex, split_key

SAMPLE = """\
schema_version = 1
[models."gemma-3-27b-it"]
layers = 62
env.FOO = "1"
"dotted.name" = 2
artifacts = [
  { format = "pytorch", repo = "google/gemma-3-27b-it" },
  { format = "gguf",
    file = "gemma-3-27b-it-Q4_K_M.gguf" },
]
after_array = 3
inline = [{ a = 1 },
  { a = 2 }]
strings = [
  "a",
  "b",
]
# [commented.out]
pattern = "a # [b"
last = 4

[[signatures]]
id = "first"

[[signatures]]
id = "second"

[[engines.vllm.variants.cuda.limits]]
versions = ">=0.33.0"

[indexes."vllm.cpu"]
index_url = "https://mirror.example/simple"
"""

MODEL = ("models", "gemma-3-27b-it")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ('models."gemma-3-27b-it".layers', ("models", "gemma-3-27b-it", "layers")),
        ('indexes."vllm.cpu"', ("indexes", "vllm.cpu")),
        ("a . 'b.c' . d", ("a", "b.c", "d")),
        ("plain", ("plain",)),
    ],
)
def test_split_key_handles_quoted_and_dotted_keys(text: str, parts: tuple[str, ...]) -> None:
    assert split_key(text) == parts


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("schema_version",), 1),
        (MODEL, 2),
        ((*MODEL, "layers"), 3),
        ((*MODEL, "env", "FOO"), 4),  # dotted key
        ((*MODEL, "dotted.name"), 5),  # quoted key with a dot in it
        ((*MODEL, "artifacts"), 6),
        ((*MODEL, "artifacts", 0), 7),  # multi-line array of inline tables: one line per element
        ((*MODEL, "artifacts", 1), 8),
        ((*MODEL, "after_array"), 11),  # the array's end is found
        ((*MODEL, "inline", 0), 12),  # first element on the key's own line
        ((*MODEL, "inline", 1), 13),
        ((*MODEL, "pattern"), 19),  # '#' and '[' inside a string are not a comment or a table
        ((*MODEL, "last"), 20),
        (("signatures",), 22),
        (("signatures", 0), 22),  # [[arrays]]: each element is its header's line
        (("signatures", 0, "id"), 23),
        (("signatures", 1), 25),
        (("signatures", 1, "id"), 26),
        (("engines", "vllm", "variants", "cuda", "limits", 0, "versions"), 29),
        (("indexes", "vllm.cpu", "index_url"), 32),
    ],
)
def test_line_of_each_key(path: tuple[str | int, ...], line: int) -> None:
    assert LineIndex(SAMPLE).line(path) == line


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((*MODEL, "artifacts", 1, "file"), 8),  # a key inside an element: the element's line
        ((*MODEL, "strings", 1), 14),  # strings in an array are not indexed: the key's line
        ((*MODEL, "missing", "deeper"), 2),  # unknown keys: the nearest enclosing table
    ],
)
def test_falls_back_to_the_nearest_known_ancestor(path: tuple[str | int, ...], line: int) -> None:
    assert LineIndex(SAMPLE).line(path) == line


def test_unknown_paths_and_commented_tables_have_no_line() -> None:
    index = LineIndex(SAMPLE)
    assert index.line(("nowhere",)) is None
    assert index.line(("commented", "out")) is None


def test_escaped_quotes_in_strings_do_not_hide_later_keys() -> None:
    text = (
        '[families.gemma3]\nerror = "TemplateSyntaxError: expected token \\"[\\""\nnote = "x"\n'
        "\n[models.m]\nlayers = 2\n"
    )
    index = LineIndex(text)
    assert index.line(("families", "gemma3", "note")) == 3
    assert index.line(("models", "m", "layers")) == 6


def test_two_inline_tables_on_one_line() -> None:
    text = "[models.m]\nartifacts = [\n  { a = 1 }, { a = 2 },\n  { a = 3 },\n]\n"
    index = LineIndex(text)
    assert [index.line(("models", "m", "artifacts", i)) for i in range(3)] == [3, 3, 4]

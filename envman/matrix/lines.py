"""Where each key of a TOML file is written, so problems can name ``file:line``.

tomllib gives data but no positions; this scanner walks the text once and records the
line of every table header, key and array-of-tables element. It understands what
matrix.toml uses (dotted and quoted keys, ``[[arrays]]``, multi-line arrays of inline
tables); for anything fancier it falls back to the nearest enclosing table's line.
"""

from __future__ import annotations

Path = tuple[str | int, ...]


def split_key(text: str) -> tuple[str, ...]:
    """``models."gemma-3-27b-it".layers`` -> ("models", "gemma-3-27b-it", "layers")."""
    parts: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    for ch in text.strip():
        if quote:
            if ch == quote:
                quote = None
            else:
                buf.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf).strip())
    return tuple(parts)


def _walk(text: str, depth: int) -> tuple[int, int]:
    """Follow [ { ] } outside strings and comments, starting at ``depth``.

    Returns the depth after ``text`` and how many values opened at depth 1: the
    elements of an array whose own bracket took the depth from 0 to 1.
    """
    elements = 0
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':  # basic strings have escapes, literal strings do not
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            if depth == 1:
                elements += 1
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth, elements


def _key_of(line: str) -> str | None:
    """The key part of ``key = value`` (None if the line is no assignment)."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:i]
        elif ch in "[{#":
            return None
    return None


class LineIndex:
    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        self._scan(text)

    def _scan(self, text: str) -> None:
        table: Path = ()
        arrays: dict[Path, int] = {}
        open_key: Path | None = None  # a multi-line array value being read
        element = 0
        depth = 0
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if open_key is not None:
                depth, started = _walk(line, depth)
                for _ in range(started):
                    self._lines.setdefault(open_key + (element,), lineno)
                    element += 1
                if depth <= 0:
                    open_key = None
                continue
            if line.startswith("[["):
                name = split_key(line[2 : line.index("]]")])
                index = arrays.get(name, -1) + 1
                arrays[name] = index
                table = name + (index,)
                self._lines.setdefault(name, lineno)
                self._lines[table] = lineno
                continue
            if line.startswith("["):
                table = split_key(line[1 : line.index("]")])
                self._lines[table] = lineno
                continue
            key_text = _key_of(line)
            if key_text is None:
                continue
            key = table + split_key(key_text)
            self._lines[key] = lineno
            depth, started = _walk(line[len(key_text) + 1 :], 0)
            for element in range(started):  # elements that start on the key's own line
                self._lines.setdefault(key + (element,), lineno)
            if depth > 0:
                open_key = key
                element = started

    def line(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that is known."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

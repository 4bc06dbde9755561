"""A wheel on an index, read member by member without downloading it whole.

Wheels are zips, and PyPI serves HTTP range requests: ``remotezip`` reads the central
directory from the end of the file, then fetches one member's compressed bytes with one
ranged request, streamed. (Chosen over fsspec's HTTP file system, which fetches fixed
blocks through aiohttp and would read a 500 MB member in a hundred requests; remotezip is a
``zipfile.ZipFile`` over ``requests``, one small module.) A ``file:`` URL or a path, as a
local mirror (``ENVMAN_PYPI_URL``) or the tests give, is opened with :mod:`zipfile` itself.

A member is deflated, so it cannot be read in the middle: a shared library is streamed whole
into an anonymous temporary file (gone when closed) and read there.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

import requests
from remotezip import RemoteZip, RemoteZipError

from envman.errors import TargetError

_CHUNK = 1 << 20
_READ_ERRORS = (OSError, zipfile.BadZipFile, RemoteZipError, requests.RequestException)
_TIMEOUT_S = 120


class RemoteWheel:
    """The members of the wheel at ``url``; use as a context manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._archive: zipfile.ZipFile | None = None

    def __enter__(self) -> RemoteWheel:
        self._archive = _open(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    @property
    def archive(self) -> zipfile.ZipFile:
        if self._archive is None:
            raise RuntimeError("RemoteWheel used outside its with block")
        return self._archive

    def names(self) -> list[str]:
        return [info.filename for info in self.archive.infolist() if not info.is_dir()]

    def size(self, name: str) -> tuple[int, int]:
        """``(size, compressed size)`` of a member."""
        info = self.archive.getinfo(name)
        return info.file_size, info.compress_size

    def read(self, name: str) -> bytes:
        """A small member (METADATA, WHEEL) in memory."""
        with self._member(name) as source:
            return source.read()

    def prefix(self, name: str, size: int) -> bytes:
        """The first ``size`` bytes of a member: only they are fetched and inflated."""
        with self._member(name) as source:
            return source.read(size)

    @contextmanager
    def spooled(self, name: str, directory: Path | None = None) -> Iterator[BinaryIO]:
        """A large member, streamed into a temporary file that is removed on exit."""
        with self._member(name) as source, tempfile.TemporaryFile(dir=directory) as sink:
            shutil.copyfileobj(source, sink, _CHUNK)
            sink.seek(0)
            yield sink

    @contextmanager
    def _member(self, name: str) -> Iterator[IO[bytes]]:
        try:
            with self.archive.open(name) as source:
                yield source
        except (*_READ_ERRORS, KeyError) as error:
            raise TargetError(f"could not read {name} from {self.url}: {error}") from error


_SESSIONS = threading.local()


def _session() -> requests.Session:
    """One connection pool per thread: a wheel costs a dozen ranged requests, not a dozen handshakes."""
    session: requests.Session | None = getattr(_SESSIONS, "session", None)
    if session is None:
        session = _SESSIONS.session = requests.Session()
    return session


def _open(url: str) -> zipfile.ZipFile:
    parsed = urllib.parse.urlparse(url)
    try:
        if parsed.scheme in ("http", "https"):
            remote: zipfile.ZipFile = RemoteZip(url, session=_session(), timeout=_TIMEOUT_S)
            return remote
        path = urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else url
        return zipfile.ZipFile(path)
    except _READ_ERRORS as error:
        raise TargetError(
            f"could not open the wheel {url}: {error}",
            hint="Check the network, or set ENVMAN_PYPI_URL to a mirror that serves range requests.",
        ) from error

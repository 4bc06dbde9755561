"""PyPI as envman sees it: a package's final releases, their dates and their files.

Only the JSON API (``<base>/<package>/json``) and plain downloads are used, through the
stdlib, so probing needs nothing beyond envman's own dependencies. The base URL is
``ENVMAN_PYPI_URL`` (default ``https://pypi.org/pypi``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from envman.errors import TargetError
from envman.files import confined, ensure_dir, unusable
from envman.report import NullReporter, Reporter

DEFAULT_URL = "https://pypi.org/pypi"
_TIMEOUT_S = 120
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ReleaseFile:
    filename: str
    url: str
    sha256: str
    size: int
    packagetype: str  # "sdist" | "bdist_wheel"


@dataclass(frozen=True)
class Release:
    version: Version
    date: str  # ISO date of the release's first upload
    files: tuple[ReleaseFile, ...]


def base_url() -> str:
    return os.environ.get("ENVMAN_PYPI_URL", DEFAULT_URL).rstrip("/")


def releases(package: str) -> list[Release]:
    """Final releases of ``package``, oldest first; yanked files and empty releases left out."""
    url = f"{base_url()}/{package}/json"
    try:
        # file: URLs are allowed on purpose: a local mirror (ENVMAN_PYPI_URL) and the tests use them.
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:  # noqa: S310
            data: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise TargetError(f"{package} is not on the package index ({url}: 404)") from error
        raise TargetError(f"could not read {url}: {error}") from error
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise TargetError(
            f"could not read {url}: {error}", hint="Check the network, or set ENVMAN_PYPI_URL to a mirror."
        ) from error
    return parse_releases(data, url)


def parse_releases(data: dict[str, Any], url: str = "") -> list[Release]:
    """The releases in a PyPI JSON API document read from ``url`` (see :func:`releases`).

    File URLs are resolved against ``url``: a mirror may give them relative to it.
    """
    found: list[Release] = []
    for text, entries in data.get("releases", {}).items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version.is_prerelease or version.is_devrelease:
            continue
        files = tuple(
            ReleaseFile(
                filename=entry["filename"],
                url=urllib.parse.urljoin(url, entry["url"]),
                sha256=entry["digests"]["sha256"],
                size=int(entry.get("size", 0)),
                packagetype=entry.get("packagetype", ""),
            )
            for entry in entries
            if not entry.get("yanked", False)
        )
        if not files:
            continue
        uploads = sorted(entry["upload_time"] for entry in entries if entry.get("upload_time"))
        date = uploads[0][:10] if uploads else ""
        found.append(Release(version=version, date=date, files=files))
    found.sort(key=lambda release: release.version)
    return found


def download(file: ReleaseFile, directory: Path, reporter: Reporter | None = None) -> Path:
    """``file`` under ``directory``, downloaded once and checked against its sha256."""
    target = confined(directory, file.filename)  # a name from the index's JSON
    if target.is_file():
        return target
    reporter = reporter or NullReporter()
    ensure_dir(directory)
    digest = hashlib.sha256()
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{file.filename}.", dir=directory)
    try:
        with (
            reporter.status(f"downloading {file.filename} ({file.size / 1e6:.1f} MB)"),
            os.fdopen(descriptor, "wb") as sink,
            urllib.request.urlopen(file.url, timeout=_TIMEOUT_S) as response,  # noqa: S310 (see releases)
        ):
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                sink.write(chunk)
        if digest.hexdigest() != file.sha256:
            raise TargetError(
                f"{file.filename} from {file.url} does not match its published sha256",
                hint="Run the probe again; if it repeats, the index or a proxy is altering the file.",
            )
        os.replace(temp_name, target)
    except urllib.error.URLError as error:
        raise TargetError(f"could not download {file.url}: {error}") from error
    except OSError as error:  # the network or the disk: a local file error is this host's (exit 3)
        if error.filename is not None or error.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES):
            raise unusable(target, error) from None
        raise TargetError(f"could not download {file.url}: {error}") from error
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    return target

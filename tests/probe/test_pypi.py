from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import TargetError
from envman.pypi import ReleaseFile, download, parse_releases
from envman.report import RecordingReporter


def entry(filename: str, uploaded: str, *, yanked: bool = False, url: str | None = None) -> dict[str, object]:
    return {
        "filename": filename,
        "url": url or f"https://files.example/{filename}",
        "digests": {"sha256": "0" * 64},
        "size": 10,
        "packagetype": "sdist" if filename.endswith(".tar.gz") else "bdist_wheel",
        "upload_time": uploaded,
        "yanked": yanked,
    }


def test_releases_are_final_sorted_and_dated() -> None:
    data = {
        "releases": {
            "2026.4.8672": [entry("x-2026.4.8672.tar.gz", "2026-04-02T10:00:00")],
            "0.2.10": [entry("x-0.2.10.tar.gz", "2025-12-01T10:00:00")],
            "0.2.9": [
                entry("x-0.2.9-py3-none-any.whl", "2025-11-02T10:00:00"),
                entry("x-0.2.9.tar.gz", "2025-11-01T23:00:00"),
            ],
            "0.3.0rc1": [entry("x-0.3.0rc1.tar.gz", "2026-01-01T10:00:00")],
            "0.3.0.dev2": [entry("x-0.3.0.dev2.tar.gz", "2026-01-01T10:00:00")],
            "0.2.11": [entry("x-0.2.11.tar.gz", "2026-01-05T10:00:00", yanked=True)],
            "0.2.12": [],
            "not-a-version": [entry("x.tar.gz", "2026-01-01T10:00:00")],
        }
    }
    releases = parse_releases(data)
    assert [str(r.version) for r in releases] == ["0.2.9", "0.2.10", "2026.4.8672"]
    assert releases[0].date == "2025-11-01"  # the first upload, not the first file listed
    assert releases[2].version > Version("0.2.10")


def test_file_urls_are_resolved_against_the_index_url() -> None:
    data = {"releases": {"1.0": [entry("x-1.0.tar.gz", "2025-01-01T00:00:00", url="../../packages/ab/x-1.0.tar.gz")]}}
    (release,) = parse_releases(data, "https://mirror.example/pypi/x/json")
    assert release.files[0].url == "https://mirror.example/packages/ab/x-1.0.tar.gz"


def test_download_checks_the_sha256_and_keeps_the_file(tmp_path: Path) -> None:
    source = tmp_path / "source" / "x-1.0.tar.gz"
    source.parent.mkdir()
    source.write_bytes(b"release")
    good = ReleaseFile("x-1.0.tar.gz", source.as_uri(), hashlib.sha256(b"release").hexdigest(), 7, "sdist")
    reporter = RecordingReporter()
    path = download(good, tmp_path / "cache", reporter)
    assert path.read_bytes() == b"release"
    assert reporter.messages == [("status", "downloading x-1.0.tar.gz (0.0 MB)")]

    source.write_bytes(b"changed")  # a cached file is not fetched again
    assert download(good, tmp_path / "cache").read_bytes() == b"release"


def test_download_rejects_a_file_that_does_not_match(tmp_path: Path) -> None:
    source = tmp_path / "x-1.0.tar.gz"
    source.write_bytes(b"tampered")
    bad = ReleaseFile("x-1.0.tar.gz", source.as_uri(), "0" * 64, 8, "sdist")
    with pytest.raises(TargetError, match="does not match its published sha256"):
        download(bad, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_unreachable_index_names_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from envman.pypi import releases

    monkeypatch.setenv("ENVMAN_PYPI_URL", "http://127.0.0.1:9/pypi")
    with pytest.raises(TargetError, match=r"could not read http://127\.0\.0\.1:9/pypi/vllm/json"):
        releases("vllm")

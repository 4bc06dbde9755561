"""``envman probe``: which releases of an engine know a family, read from the releases.

See :func:`envman.probe.floor.probe`; the readers live in :mod:`envman.probe.readers`.
"""

from __future__ import annotations

from envman.probe.floor import Examined, ProbeResult, ProbeTarget, catalog, probe, reader_for

__all__ = ["Examined", "ProbeResult", "ProbeTarget", "catalog", "probe", "reader_for"]

"""What a build needs from the host, read from its released wheels without downloading them.

:mod:`.remote` reads wheel members over HTTP range requests; :mod:`.elf` and :mod:`.fatbin`
read a shared library's sonames, glibc symbol versions and GPU code; :mod:`.wheel` caches a
wheel's facts by sha256; :mod:`.stack` combines an engine release with the torch it pins.
"""

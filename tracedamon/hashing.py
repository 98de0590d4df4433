"""Deprecated: use :mod:`tracedamon.store.hashing` (this alias goes in the next release)."""

from .store.hashing import BUFFER, prehash, sha256_file  # noqa: F401

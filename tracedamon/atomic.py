"""Deprecated: use :mod:`tracedamon.store.atomic` (this alias goes in the next release)."""

from .store.atomic import *  # noqa: F401,F403

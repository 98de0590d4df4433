"""What one ``--scheme`` argument gave: :class:`SchemeFile`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...engine.damos.scheme import Scheme


@dataclass
class SchemeFile:
    """What one ``--scheme`` argument gave.

    ``monitoring``: the DAMON context the schemes came with (``ops``, ``sample_us``,
    ``aggr_us``, ``update_us``, ``min_nr_regions``, ``max_nr_regions``,
    ``addr_unit``, ``targets``: list of {"pid", "regions": [[start, end], ...]}), or
    None.  ``source``: what was read.  ``notes``: unit conversions and choices made.
    """

    schemes: list[Scheme]
    monitoring: dict | None
    source: str
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "monitoring": self.monitoring,
            "notes": self.notes,
            "schemes": [s.to_dict() for s in self.schemes],
        }

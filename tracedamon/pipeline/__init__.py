"""Orchestration with I/O: what the command line and the public API call.

Reading inputs through :mod:`tracedamon.store`, running :mod:`tracedamon.ingest`
readers and the pure :mod:`tracedamon.engine`, writing results back through the store:
ingest paths, replay a trace directory (streaming), compare sources. Empty for now:
the replay's I/O moves here from ``tracedamon.engine.replay``.
"""

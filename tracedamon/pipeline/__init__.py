"""Orchestration with I/O: what the command line and the public API call.

Reading inputs through :mod:`tracedamon.store`, running :mod:`tracedamon.ingest`
readers and the pure :mod:`tracedamon.engine`, writing results back through the store:
ingest paths, replay a trace directory (streaming, :mod:`.replay`, its steps in the
``replay_*`` modules beside it, its samples in :mod:`.samples` and its result type in
:mod:`.region_history`), compare sources.
"""

"""The test-only perf.data writer, by part; tests import it as ``perfdata_writer``."""

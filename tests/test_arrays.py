"""Arrow arrays built without pa.array() (tracedamon.ingest.arrays) equal pa.array's."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest
from hypothesis import given, strategies as st

from conftest import SAMPLES as SAMPLE_TRACES, requires
from tracedamon.ingest.arrays import py_array, table_from_pylist
from tracedamon.schema import EVENTS, LOST, MMAPS, TASKS

_INT_TYPES = [pa.int8(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]


def _ints(typ):
    info = (
        (-(1 << (typ.bit_width - 1)), (1 << (typ.bit_width - 1)) - 1)
        if pa.types.is_signed_integer(typ)
        else (0, (1 << typ.bit_width) - 1)
    )
    return st.lists(st.none() | st.integers(*info), max_size=40)


@pytest.mark.parametrize("typ", _INT_TYPES, ids=str)
@given(data=st.data())
def test_integers(typ, data):
    vals = data.draw(_ints(typ))
    assert py_array(vals, typ).equals(pa.array(vals, typ))


@given(st.lists(st.none() | st.text(max_size=8), max_size=30))
def test_strings_and_dictionaries(vals):
    assert py_array(vals, pa.string()).equals(pa.array(vals, pa.string()))
    d = py_array(vals, pa.dictionary(pa.int32(), pa.string()))
    assert d.type == pa.dictionary(pa.int32(), pa.string())
    assert d.to_pylist() == vals


@given(
    st.lists(st.none() | st.booleans(), max_size=30),
    st.lists(st.none() | st.lists(st.integers(0, (1 << 64) - 1), max_size=4), max_size=20),
)
def test_booleans_and_lists(bools, lists):
    assert py_array(bools, pa.bool_()).equals(pa.array(bools, pa.bool_()))
    typ = pa.list_(pa.uint64())
    assert py_array(lists, typ).equals(pa.array(lists, typ))


def test_out_of_range_is_refused():
    with pytest.raises(OverflowError):
        py_array([1 << 40], pa.int32())
    with pytest.raises(OverflowError):
        py_array([-1], pa.uint64())


def test_tables_of_the_sideband_schemas():
    rows = [
        {"time_ns": 5, "kind": "COMM", "pid": 1, "tid": 2, "comm": "x", "exec": True},
        {"time_ns": None, "kind": "EXIT", "pid": 1, "tid": 1, "ppid": 0, "ptid": 0},
    ]
    assert table_from_pylist(rows, TASKS).equals(pa.Table.from_pylist(rows, schema=TASKS))
    for schema in (EVENTS, MMAPS, LOST):
        assert table_from_pylist([], schema).equals(pa.Table.from_pylist([], schema=schema))


@requires((SAMPLE_TRACES / "hotcold.perf.data").exists(), "sample trace missing")
def test_perf_data_ingest_loads_neither_pandas_nor_pyarrow_compute(tmp_path):
    """Their first use costs 0.19 s and 0.05 s of a 1.4 s ingest of 10 M samples: the
    perf.data path (and the summary it prints) builds its arrays without them."""
    code = (
        "import sys\nfrom tracedamon.cli import main\n"
        f"rc = main(['ingest', {str(SAMPLE_TRACES / 'hotcold.perf.data')!r}, '-o', "
        f"{str(tmp_path / 'hc.td')!r}])\n"
        "print('LOADED', rc, sorted(m for m in ('pandas', 'pyarrow.compute') "
        "if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "LOADED 0 []"

"""The tests' big-table comparison helpers: they must fail on every difference (a helper
that passed wrongly would silence every test using it) and say where it is."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.arrays import assert_arrays_equal, assert_rows_equal


def rows(n=1000):
    return [(i, i * 3, i % 7) for i in range(n)]


def test_equal_rows_pass():
    assert_rows_equal(rows(), rows())
    assert_rows_equal([], [])
    assert_arrays_equal(np.arange(12).reshape(4, 3), np.arange(12).reshape(4, 3))


@pytest.mark.parametrize("where", [0, 1, 500, 999])
def test_one_changed_value_is_named(where):
    got, want = rows(), rows()
    want[where] = (where, where * 3, 99)
    with pytest.raises(AssertionError) as e:
        assert_rows_equal(got, want)
    msg = str(e.value)
    assert "1 of the first 1,000 differ" in msg
    assert f"[{where}] got  ({where}, {where * 3}, {where % 7})" in msg
    assert f"want ({where}, {where * 3}, 99)" in msg


@pytest.mark.parametrize("cut", [0, 1, 999])
def test_missing_and_extra_rows_fail(cut):
    with pytest.raises(AssertionError, match="got 999, want 1,000"):
        assert_rows_equal(rows()[:cut] + rows()[cut + 1 :], rows())
    with pytest.raises(AssertionError, match=r"only in got \(1\): \[1000\]"):
        assert_rows_equal(rows() + [(1, 2, 3)], rows())
    with pytest.raises(AssertionError, match="the first 0 are equal"):
        assert_rows_equal([], rows())


def test_many_differences_are_counted_and_few_shown():
    got = [(i, 0) for i in range(10_000)]
    want = [(i, 1) for i in range(10_000)]
    with pytest.raises(AssertionError) as e:
        assert_rows_equal(got, want, what="regions")
    msg = str(e.value)
    assert msg.startswith("regions differ") and "10,000 of the first 10,000 differ" in msg
    # the first five differences and the neighbour after them, nothing more
    assert msg.count("] got ") == 6 and "[6]" not in msg and len(msg) < 2000


def test_arrays_differences():
    a = np.arange(12).reshape(4, 3)
    b = a.copy()
    b[2, 1] = -1
    with pytest.raises(
        AssertionError, match=r"1 of the first 4 rows differ\n  \[2\] got  \(6, 7, 8\)"
    ):
        assert_arrays_equal(a, b)
    with pytest.raises(AssertionError, match="shape"):
        assert_arrays_equal(a, a[:3])
    with pytest.raises(AssertionError, match="shape"):
        assert_arrays_equal(a, a.reshape(3, 4))
    with pytest.raises(AssertionError, match=r"\[1\] got  5"):
        assert_arrays_equal(np.array([1, 5, 3]), np.array([1, 2, 3]))

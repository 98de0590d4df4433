"""A monitoring attribute the kernel would reject is named on the command line as the
user typed it (``--sample-us``), and in Python as the argument (``sample_us=``)."""

from __future__ import annotations

import pytest

import tracedamon
from tracedamon.cli import main
from tracedamon.engine.config import MonitorConfig
from tracedamon.errors import ConfigError
from tracedamon.ingest import ingest

from conftest import SAMPLES

CASES = [
    # (command-line options, the option the message must name, the Python argument)
    (["--sample-us", "0"], "--sample-us", "sample_us"),
    (["--min-nr-regions", "2"], "--min-nr-regions", "min_nr_regions"),
    (["--min-nr-regions", "100", "--max-nr-regions", "10"], "--max-nr-regions", "max_nr_regions"),
    (["--min-region", "1000"], "--min-region", "min_region"),
    (["--min-region", "32"], "--min-region", "min_region"),
    (["--max-region", "1000"], "--max-region", "max_region"),
    (["--min-region", "8192", "--max-region", "4096"], "--max-region", "max_region"),
    (["--seed", "-1"], "--seed", "seed"),
    (["--update-us", "-1"], "--update-us", "update_us"),
]


@pytest.fixture(scope="module")
def hot_td(tmp_path_factory):
    d = tmp_path_factory.mktemp("w") / "h.td"
    ingest(SAMPLES / "hotcold.perf.data", d)
    return d


@pytest.mark.parametrize("args,flag,arg", CASES)
def test_refused_attribute_named_as_typed(hot_td, tmp_path, capsys, args, flag, arg):
    out = tmp_path / "r.parquet"
    assert main(["replay", str(hot_td), *args, "-o", str(out), "-q"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracedamon: error: "), err
    assert flag in err[0], err[0]
    assert arg not in err[0].replace(flag, ""), err[0]  # no Python spelling beside it
    assert not out.exists()


@pytest.mark.parametrize("args,flag,arg", CASES)
def test_python_message_names_the_argument(args, flag, arg):
    kw = {}
    for k, v in zip(args[::2], args[1::2]):
        kw[k[2:].replace("-", "_")] = int(v)
    with pytest.raises(ConfigError) as e:
        tracedamon.MonitorConfig(**kw)
    assert arg in str(e.value) and flag not in str(e.value), str(e.value)


@pytest.fixture(scope="module")
def hot_history(hot_td, tmp_path_factory):
    out = tmp_path_factory.mktemp("h") / "r.parquet"
    tracedamon.replay(hot_td, start_ns="auto", output=out)
    return out


@pytest.mark.parametrize("value", ["0", "-5000"])
@pytest.mark.parametrize(
    "command",
    [
        ["damos", "{h}", "--scheme", "reclaim:wmarks=none", "-o", "{o}"],
        ["export", "damo", "{h}", "-o", "{o}"],
    ],
)
def test_interval_options_refused_by_name(hot_history, tmp_path, capsys, command, value):
    """An explicit interval of 0 or less is refused, naming the option; it is never
    silently replaced by the history's own interval."""
    out = tmp_path / "out"
    args = [a.format(h=hot_history, o=out) for a in command]
    assert main([*args, "--sample-us", value, "--aggr-us", "100000", "-q"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracedamon: error: "), err
    assert "--sample-us" in err[0] and "sample_us" not in err[0], err[0]
    assert not out.exists()


@pytest.mark.parametrize("value", [{"a": 1}, "{}", "{0}", ["{1}"]])
def test_a_refused_value_with_braces_is_named_not_a_traceback(value):
    """The refused value's repr goes into the message: braces in it are text, not fields."""
    with pytest.raises(ConfigError) as e:
        MonitorConfig(sample_us=value)
    assert str(e.value).startswith("sample_us must be an integer, not ")
    assert repr(value) in str(e.value)
    assert getattr(e.value, "cli_message", "").startswith("--sample-us must be an integer")

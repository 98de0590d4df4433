"""`tracedamon report html` in real headless browsers: Chromium and Firefox.

The page is loaded from file:// and driven through its script API (``window.tdReport``)
and through real mouse and keyboard events. What it shows is checked against
independent computations: the Parquet rows, ``grid.raster`` (tracedamon's vectorised
rasteriser) at the page's own pixel grid, ``compare``'s cells and metrics.

Every test runs in both browsers, with real mouse and keyboard events (W3C actions) where
a user would click, drag, hover or type. Skipped with the reason when a browser cannot be
started here; under CI (CI set) a missing browser is a failure: ``make test`` installs
Debian's chromium, chromium-driver and firefox-esr.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest

from tracedamon.cli import main
from tracedamon.export.grid import coverage, load_history, raster
from tracedamon.export.html import tiles as T

from browser import BROWSERS, NoBrowser, open_browser
from conftest import IN_CI, SAMPLES, need_corpus
from test_report_html import _reference_level, random_history, write_history

NODATA = (228, 228, 228)
IDLE = (20, 20, 20)
EV_COLORS = [(0x00, 0xE5, 0xFF), (0xFF, 0x4F, 0xA0)]
OWN_SCHEMES = ("file:", "chrome:", "chrome-", "about:", "data:", "blob:", "devtools:")


@pytest.fixture(scope="module", params=BROWSERS)
def browser(request):
    try:
        b = open_browser(request.param)
    except NoBrowser as e:
        if IN_CI:
            pytest.fail(f"CI needs {request.param} for the HTML report tests: {e}")
        pytest.skip(str(e))
    yield b
    b.close()


def report(tmp_path, df=None, name="h", *args, **hist_kw):
    df = random_history(**hist_kw) if df is None else df
    src = write_history(df, tmp_path / f"{name}.parquet")
    out = tmp_path / f"{name}.html"
    assert main(["report", "html", str(src), "-o", str(out), *args]) == 0
    return src, out


def opened(browser, path):
    browser.requests()  # drain the log of the previous page
    browser.console()
    browser.open(path)
    errs = browser.js("return tdReport.errors")
    assert errs == [], errs
    show_plot(browser)
    return browser


def show_plot(browser):
    """Scroll the heatmap to the top of the window (screenshots show the window only)."""
    browser.js("document.getElementById('panels').scrollIntoView({block: 'start'})")


def plot_pixels(browser):
    """The screenshot's pixels of the heatmap's plot area, and the area."""
    box = browser.js("return tdReport.plotBox()")
    top, left = round(box["top"]), round(box["left"])
    return image(browser)[top : top + box["H"], left : left + box["W"]], box


def image(browser):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(browser.png())).convert("RGB")).astype(int)


# ----------------------------------------------------------------------------------
# the expected picture: grid.raster at the page's pixel grid
# ----------------------------------------------------------------------------------
def expected_grid(src, g):
    """Mean nr_accesses per page pixel (NaN: nothing covers it), computed by grid.raster
    over the pixel's time span and the address pieces of its display span."""
    h = load_history(src)
    hk = h.for_key(h.keys[0])
    axis = T.Axis.of(coverage(hk))
    W, H = g["W"], g["H"]
    t_edges = np.round(g["t0"] + np.arange(W + 1) * (g["t1"] - g["t0"]) / W).astype(np.int64)
    # display edges, top row first (high addresses on top)
    xe = g["x1"] - np.arange(H + 1) * (g["x1"] - g["x0"]) / H
    pieces = []
    for py in range(H):
        lo, hi = xe[py + 1], xe[py]
        for k in range(len(axis.start)):
            xs = float(axis.x0[k])
            xend = xs + float(axis.end[k] - axis.start[k])
            a, b = max(lo, xs), min(hi, xend)
            if b > a:
                pieces.append(
                    (int(axis.start[k]) + round(a - xs), int(axis.start[k]) + round(b - xs), py)
                )
    pieces = sorted(p for p in pieces if p[1] > p[0])  # raster wants ascending bins
    ps = np.array([p[0] for p in pieces], np.uint64)
    pe = np.array([p[1] for p in pieces], np.uint64)
    pr = np.array([p[2] for p in pieces])
    (s,), c = raster(hk, t_edges, ps, pe, [hk.df["nr_accesses"].to_numpy()])
    S = np.zeros((W, H))
    C = np.zeros((W, H))
    np.add.at(S, (slice(None), pr), s)
    np.add.at(C, (slice(None), pr), c)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(C > 0, S / C, np.nan).T  # (H, W) like the page


def page_values(g):
    return np.array([np.nan if v is None else v for v in g["vals"]]).reshape(g["H"], g["W"])


def stable(cls):
    """Pixels whose 3 × 3 neighbourhood has one class (edges may be anti-aliased)."""
    ok = np.ones(cls.shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ok &= np.roll(np.roll(cls, dy, 0), dx, 1) == cls
    ok[[0, -1], :] = False
    ok[:, [0, -1]] = False
    return ok


# ----------------------------------------------------------------------------------
def test_page_loads_from_disk_with_no_errors_and_no_network(browser, tmp_path):
    _, out = report(tmp_path, S=10)
    opened(browser, out)
    assert browser.console_errors() == []
    reqs = browser.requests()
    assert [u for u in reqs if not u.startswith(OWN_SCHEMES)] == []
    assert [u for u in reqs if u.startswith("file:")] == [out.resolve().as_uri()]
    assert browser.js("return tdReport.ready") is True


def test_numbers_in_the_page_equal_the_parquet_rows(browser, tmp_path):
    df = random_history(S=20, seed=11)
    df["age"] = df["age"].astype(float)
    df.loc[df.index[::9], "age"] = np.nan  # age unknown on some rows
    src, out = report(tmp_path, df)
    opened(browser, out)
    rows = browser.call("tdReport.rows('a', 42)")
    got = sorted(
        zip(
            rows["snapshot"],
            rows["time_ns"],
            rows["start"],
            rows["end"],
            rows["nr_accesses"],
            [-1 if a is None else a for a in rows["age"]],
        )
    )
    want = sorted(
        zip(
            df["snapshot"].astype(int),
            df["time_ns"].astype(int),
            df["start"].astype(int),
            df["end"].astype(int),
            df["nr_accesses"].astype(int),
            df["age"].fillna(-1).astype(int),
        )
    )
    assert [tuple(int(v) for v in r) for r in got] == want
    ser = browser.call("tdReport.series('a', 42)")
    size = (df["end"] - df["start"]).astype(float)
    wss = (size * (df["nr_accesses"] > 0)).groupby(df["snapshot"]).sum()
    assert ser["wss"] == wss.tolist()
    assert ser["regions"] == df.groupby("snapshot").size().astype(float).tolist()


def test_corpus_rows_equal_the_parquet(browser, tmp_path):
    src = need_corpus("damon-paddr-run1", "paddr_run1", "ftrace_trace_pipe.txt.gz")
    td = tmp_path / "run1.td"
    assert main(["ingest", str(src), "-o", str(td)]) == 0
    out = tmp_path / "run1.html"
    assert main(["report", "html", str(td), "--damos", str(td), "-o", str(out)]) == 0
    opened(browser, out)
    rows = browser.call("tdReport.rows('a', 0)")
    df = pd.read_parquet(td / "regions.parquet")
    got = sorted(zip(rows["start"], rows["end"], rows["nr_accesses"], rows["age"], rows["time_ns"]))
    want = sorted(
        zip(
            df["start"].astype(float),
            df["end"].astype(float),
            df["nr_accesses"].astype(float),
            df["age"].astype(float),
            df["time_ns"].astype(float),
        )
    )
    assert got == want
    assert browser.js("return tdReport.damosDrawn()") > 0
    browser.call("tdReport.setFilter({schemes: []})")
    assert browser.js("return tdReport.damosDrawn()") == 0


@pytest.mark.parametrize("mode", ["exact", "tiles"])
def test_heatmap_pixels_follow_the_matrix(browser, tmp_path, mode):
    """The values the page drew at each pixel equal grid.raster's at the same pixel grid
    (exact from rows; from tiles within one quantisation step), and the screenshot's
    colours follow: no data, never accessed, and accessed pixels are told apart."""
    src, out = report(tmp_path, S=30, seed=2)
    opened(browser, out)
    if mode == "tiles":
        browser.call("tdReport.setExactLimit(0)")
    browser.call("tdReport.fullView()")
    g = browser.js("return tdReport.grid()")
    assert g["mode"] == mode
    got = page_values(g)
    want = expected_grid(src, g)
    vmax = 20.0  # aggr / sample
    if mode == "exact":
        assert (np.isnan(got) == np.isnan(want)).mean() > 0.999
        both = ~np.isnan(got) & ~np.isnan(want)
        np.testing.assert_allclose(got[both], want[both], rtol=2e-3, atol=1e-3)
    else:
        # tiles: the cell under each pixel's centre, rasterised independently at the level
        i, j = g["level"]
        sp = browser.js("return tdReport.meta.layers.a.spaces[0]")
        gr = T.Grid(
            sp["grid"]["T0"],
            sp["grid"]["tw"],
            sp["grid"]["aw"],
            sp["grid"]["K"],
            sp["grid"]["imax"],
            sp["grid"]["jmax"],
        )
        h = load_history(src)
        hk = h.for_key(h.keys[0])
        S, C = _reference_level(hk, T.Axis.of(coverage(hk)), gr, i, j)
        with np.errstate(invalid="ignore", divide="ignore"):
            cell = np.where(C > 0, S / C, np.nan)
        W, H = g["W"], g["H"]
        tc = g["t0"] + (np.arange(W) + 0.5) * (g["t1"] - g["t0"]) / W
        xc = g["x1"] - (np.arange(H) + 0.5) * (g["x1"] - g["x0"]) / H
        ci = np.floor((tc - gr.T0) / gr.tw_at(i)).astype(int)
        cj = np.floor(xc / gr.aw_at(j)).astype(int)
        w = cell[ci[None, :], cj[:, None]]
        assert (np.isnan(w) == np.isnan(got)).all()
        f = ~np.isnan(w)
        assert f.sum() > 1000
        assert np.abs(got[f] - w[f]).max() <= vmax / 254 / 2 + 1e-4
        assert ((got[f] > 0) == (w[f] > 0)).all()  # never accessed stays apart
        want = w
    # colours of the screenshot
    img, box = plot_pixels(browser)
    cls = np.where(np.isnan(want), 0, np.where(want > 0, 2, 1))
    ok = stable(cls)
    # the collapsed gap's dashed line and its label
    sp = browser.js("return tdReport.meta.layers.a.spaces[0].segments")
    for _s, _e, x in sp[1:]:
        y = (g["x1"] - x) / (g["x1"] - g["x0"]) * g["H"]
        ok[max(0, int(y) - 15) : int(y) + 3, :] = False
    px = img[ok]
    c = cls[ok]
    assert (px[c == 0] == NODATA).all()
    assert (px[c == 1] == IDLE).all()
    acc = px[c == 2]
    assert len(acc) > 1000
    assert not (acc == NODATA).all(axis=1).any() and not (acc == IDLE).all(axis=1).any()


def test_scripted_and_mouse_zoom_show_the_requested_range(browser, tmp_path):
    src, out = report(tmp_path, S=30, seed=4)
    opened(browser, out)
    df = pd.read_parquet(src)
    base = int(df["start"].min())
    t0, t1 = 1_000_000_000, 2_000_000_000
    a0, a1 = base + (1 << 20), base + (3 << 20)
    browser.call(f"tdReport.setView({{t0: {t0}, t1: {t1}, a0: {a0}, a1: {a1}}})")
    v = browser.js("return tdReport.getView()")
    assert (v["t0"], v["t1"], v["a0"], v["a1"]) == (t0, t1, a0, a1)
    assert v["x1"] - v["x0"] == a1 - a0
    assert browser.js("return document.getElementById('a-from').value") == hex(a0)
    # the axis labels lie inside the requested range
    g = browser.js("return tdReport.grid()")
    assert (g["x0"], g["x1"]) == (v["x0"], v["x1"])
    # a box drawn with the mouse (shift + drag) becomes the view
    box = browser.js("return tdReport.plotBox()")
    browser.drag(
        (box["left"] + 0.25 * box["width"], box["top"] + 0.2 * box["height"]),
        (box["left"] + 0.75 * box["width"], box["top"] + 0.6 * box["height"]),
        shift=True,
    )
    browser.call("tdReport.rendered()")
    w = browser.js("return tdReport.getView()")
    span_t, span_x = t1 - t0, v["x1"] - v["x0"]
    px_t, px_x = span_t / box["width"], span_x / box["height"]
    assert abs(w["t0"] - (t0 + 0.25 * span_t)) <= 2 * px_t
    assert abs(w["t1"] - (t0 + 0.75 * span_t)) <= 2 * px_t
    assert abs(w["x1"] - (v["x1"] - 0.2 * span_x)) <= 2 * px_x
    assert abs(w["x0"] - (v["x1"] - 0.6 * span_x)) <= 2 * px_x
    # ranges typed into the inputs
    for el, val in (("t-from", "0.5"), ("t-to", "1.5"), ("a-from", hex(a0)), ("a-to", hex(a1))):
        browser.type_into(f"#{el}", val)
    browser.click("#apply")
    browser.call("tdReport.rendered()")
    u = browser.js("return tdReport.getView()")
    T0 = browser.js("return Math.min(...tdReport.meta.layers.a.spaces.map((s) => s.t0))")
    assert (u["a0"], u["a1"]) == (a0, a1)
    assert abs(u["t0"] - (T0 + 0.5e9)) < 1 and abs(u["t1"] - (T0 + 1.5e9)) < 1


def test_hover_shows_the_numbers_of_a_known_region(browser, tmp_path):
    df = random_history(S=10, seed=7)
    src, out = report(tmp_path, df)
    opened(browser, out)
    browser.call("tdReport.fullView()")
    # the widest region of snapshot 5
    s5 = df[df["snapshot"] == 5]
    r = s5.loc[(s5["end"] - s5["start"]).idxmax()]
    t = int(r["time_ns"]) - 50_000_000  # inside the snapshot's window
    addr = int(r["start"]) + int(r["end"] - r["start"]) // 2
    p = browser.js(f"return tdReport.clientPoint({t}, {addr})")
    browser.hover(p["x"], p["y"])
    text = browser.wait_for(
        "const tip = document.getElementById('tip');"
        "return tip.getClientRects().length > 0 && tip.innerText.includes('region')"
        " ? tip.innerText : ''"
    )
    assert "snapshot 5 " in text
    assert f"{int(r['start']):#x}–{int(r['end']):#x}" in text
    assert f"nr_accesses {int(r['nr_accesses'])} of 20" in text
    assert f"age {int(r['age'])} aggregations" in text


def samples_trace(tmp_path, df):
    """A trace directory with df's regions and samples of two events: 'ev-a' in the
    first region of every snapshot, 'ev-b' in the last."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    td = tmp_path / "s.td"
    td.mkdir()
    (td / "meta.json").write_text("{}")
    write_history(df, td / "regions.parquet")
    rows = []
    for s, g in df.groupby("snapshot"):
        t = int(g["time_ns"].iloc[0]) - 50_000_000
        lo, hi = g.iloc[0], g.iloc[-1]
        for k in range(5):
            rows.append((t + k, "ev-a", int(lo["start"]) + 4096 * k))
            rows.append((t + k, "ev-b", int(hi["end"]) - 4096 * (k + 1)))
    ev = pa.DictionaryArray.from_arrays(
        pa.array([0 if r[1] == "ev-a" else 1 for r in rows], pa.int32()), pa.array(["ev-a", "ev-b"])
    )
    pq.write_table(
        pa.table(
            {
                "time_ns": pa.array([r[0] for r in rows], pa.int64()),
                "pid": pa.array([42] * len(rows), pa.int32()),
                "event": ev,
                "addr": pa.array([r[2] for r in rows], pa.uint64()),
            }
        ),
        td / "samples.parquet",
    )
    return td


def test_sample_filter_hides_what_it_should(browser, tmp_path):
    df = random_history(S=8, seed=9, hole=False)
    td = samples_trace(tmp_path, df)
    out = tmp_path / "s.html"
    assert main(["report", "html", str(td), "--samples", "-o", str(out)]) == 0
    opened(browser, out)
    browser.call("tdReport.fullView()")
    n = 8 * 5
    assert browser.js("return tdReport.samplesDrawn()") == 2 * n
    hi = df[df["snapshot"] == 3].iloc[-1]
    t, a = int(hi["time_ns"]) - 50_000_000, int(hi["end"]) - 4096 * 3
    p = browser.js(f"return tdReport.clientPoint({t}, {a})")
    near = lambda img: img[int(p["y"]) - 1 : int(p["y"]) + 2, int(p["x"]) - 1 : int(p["x"]) + 2]  # noqa: E731
    pink = np.array(EV_COLORS[1])
    assert (np.abs(near(image(browser)) - pink).sum(axis=2) == 0).any()
    # untick 'ev-b' in the page
    browser.click('input[data-group="events"][data-value=\'"ev-b"\']')
    browser.call("tdReport.rendered()")
    assert browser.js("return tdReport.samplesDrawn()") == n
    assert not (np.abs(near(image(browser)) - pink).sum(axis=2) == 0).any()


def test_diff_shows_compare_metrics_and_cells(browser, tmp_path):
    from tracedamon.export.compare import compare

    a = random_history(S=20, seed=1, hole=False)
    b = random_history(S=20, seed=2, hole=False)
    sa = write_history(a, tmp_path / "a.parquet")
    sb = write_history(b, tmp_path / "b.parquet")
    out = tmp_path / "d.html"
    assert main(["report", "html", str(sa), "--diff", str(sb), "-o", str(out)]) == 0
    opened(browser, out)
    res = compare(sa, sb)
    sp = res.metrics["heat"]["spearman"]
    shown = browser.js(
        "return document.querySelector('#metrics td[data-key=\"heat.spearman\"]').textContent"
    )
    assert abs(float(shown) - sp) <= 1e-3 * max(1, abs(sp))
    browser.call("tdReport.setLayer('diff')")
    browser.call("tdReport.fullView()")
    g = browser.js("return tdReport.grid()")
    assert g["mode"] == "diff"
    vals = page_values(g)
    c = res.cells
    edges = np.r_[np.unique(c["t0_ns"]), c["t1_ns"].max()]
    bins = c[["start", "end"]].drop_duplicates().sort_values("start").to_numpy(np.int64)
    W, H = g["W"], g["H"]
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        px, py = int(rng.integers(0, W)), int(rng.integers(0, H))
        t = g["t0"] + (px + 0.5) * (g["t1"] - g["t0"]) / W
        x = g["x1"] - (py + 0.5) * (g["x1"] - g["x0"]) / H
        addr = int(bins[0, 0] + x)  # one common range: display = address - its start
        k = np.searchsorted(edges, t, side="right") - 1
        j = np.searchsorted(bins[:, 0], addr, side="right") - 1
        cell = c[(c["t0_ns"] == edges[k]) & (c["start"] == bins[j, 0])].iloc[0]
        want = cell["diff_rate"] if cell["valid"] else np.nan
        if np.isnan(want):
            assert np.isnan(vals[py, px])
        else:
            assert abs(vals[py, px] - want) < 1e-5
            checked += 1
    assert checked > 100


def test_one_snapshot_and_a_diff_with_itself(browser, tmp_path):
    df = random_history(S=1, seed=8, hole=False)
    src = write_history(df, tmp_path / "one.parquet")
    out = tmp_path / "one.html"
    assert main(["report", "html", str(src), "--diff", str(src), "-o", str(out)]) == 0
    opened(browser, out)
    g = browser.js("return tdReport.grid()")
    assert np.isfinite(page_values(g)).mean() > 0.9
    browser.call("tdReport.setLayer('diff')")
    show_plot(browser)
    g = browser.js("return tdReport.grid()")
    v = page_values(g)
    assert np.nanmax(np.abs(v)) == 0
    img, box = plot_pixels(browser)
    ok = stable(np.where(np.isnan(v), 0, 1)) & ~np.isnan(v)
    assert ok.sum() > 1000 and (img[ok] == 255).all()  # no difference: drawn white


def test_truth_strip_marks_the_labelled_ranges(browser, tmp_path):
    df = random_history(S=5, seed=3, hole=False)
    base = int(df["start"].min())
    truth = tmp_path / "truth.csv"
    truth.write_text(
        f"start,end,label\n{base},{base + (8 << 20)},hot\n"
        f"{base + (32 << 20)},{base + (48 << 20)},cold1\n"
    )
    src, out = report(tmp_path, df, "t", "--truth", str(truth))
    opened(browser, out)
    browser.call("tdReport.fullView()")
    box = browser.js("return tdReport.plotBox()")
    img = image(browser)
    x = int(box["left"] + box["width"] + 8)
    for addr, colour in (
        (base + (4 << 20), (0xD7, 0x19, 0x1C)),
        (base + (40 << 20), (0x2C, 0x7B, 0xB6)),
        (base + (20 << 20), None),
    ):
        y = int(browser.js(f"return tdReport.clientPoint(0, {addr}).y"))
        px = tuple(img[y, x])
        if colour is None:
            assert px not in ((0xD7, 0x19, 0x1C), (0x2C, 0x7B, 0xB6))
        else:
            assert px == colour


@pytest.mark.slow
def test_demo_pipeline_report(browser, tmp_path):
    """The demo's recording end to end: ingest, perf and accessed-bit replays, a report
    with --diff and --samples. The hot pages read as hot when hovered."""
    td = tmp_path / "hc.td"
    assert main(["ingest", str(SAMPLES / "hotcold.perf.data"), "-o", str(td)]) == 0
    perf, abit = tmp_path / "perf.parquet", tmp_path / "abit.parquet"
    common = ["replay", str(td), "--ops", "vaddr", "--start", "auto", "--sample-us", "10000"]
    assert main([*common, "-o", str(perf)]) == 0
    assert main([*common, "--access", "abit", "-o", str(abit)]) == 0
    out = tmp_path / "r.html"
    assert (
        main(["report", "html", str(perf), "--diff", str(abit), "--samples", "-o", str(out)]) == 0
    )
    opened(browser, out)
    assert browser.js("return tdReport.samplesDrawn()") > 1000
    df = pd.read_parquet(perf)
    last = df[df["snapshot"] == df["snapshot"].max()]
    hot = last.loc[last["nr_accesses"].idxmax()]
    text = browser.call(f"tdReport.describeAt({int(hot['time_ns']) - 1}, {int(hot['start'])})")
    assert f"{int(hot['start']):#x}–{int(hot['end']):#x}" in text
    assert f"nr_accesses {int(hot['nr_accesses'])} of 10" in text
    for layer in ("b", "diff"):
        browser.call(f"tdReport.setLayer('{layer}')")
    browser.call("tdReport.setSideBySide(true)")
    assert browser.js("return document.querySelectorAll('.panel canvas').length") == 2
    assert browser.js("return tdReport.errors") == []
    json.dumps(browser.js("return tdReport.meta.diff.metrics"))


def test_a_page_error_would_be_seen(browser, tmp_path):
    """The no-console-error check can fail: a page that logs an error and throws is
    reported by the browser's console reader (and not drowned by the browser's own)."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><script>console.error('td-probe-error');"
        "window.tdReport = {ready: true, errors: []};"
        "setTimeout(() => { throw new Error('td-probe-throw'); }, 0);"
        "</script></body></html>"
    )
    browser.console()
    browser.open(page)
    errs = []
    for _ in range(100):  # the log may lag the page by a moment
        errs += browser.console_errors()
        if any("td-probe-throw" in e for e in errs):
            break
        time.sleep(0.05)
    assert any("td-probe-error" in e for e in errs), errs
    assert any("td-probe-throw" in e for e in errs), errs

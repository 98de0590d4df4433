// tracedamon report page: a small canvas renderer for region histories.
// Data: one JSON object (#td-meta) and deflated binary blobs, base64 (#td-blob).
// A history space is drawn from its tile pyramid (area-weighted means, one byte per
// cell) when the view holds many rows, and from the rows themselves otherwise.
(function () {
  'use strict';
  const MARKS = { start: performance.now() };
  const META = JSON.parse(document.getElementById('td-meta').textContent);
  const B64 = document.getElementById('td-blob').textContent;
  MARKS.parsed = performance.now();
  const API = window.tdReport = { ready: false, readyMs: null, errors: [], meta: META, marks: MARKS };
  window.addEventListener('error', (e) => { API.errors.push(String(e.message)); status('error: ' + e.message); });
  window.addEventListener('unhandledrejection', (e) => { API.errors.push(String(e.reason)); status('error: ' + e.reason); });

  let EXACT_MAX_ROWS = 400000;   // views with more rows are drawn from tiles
  const TILE = 256;
  const NODATA = [228, 228, 228], IDLE = [20, 20, 20];
  const DIFF_NODATA = [190, 190, 190];
  const EV_COLORS = ['#00e5ff', '#ff4fa0', '#7cff3a', '#ffe600', '#ff8c00', '#b388ff', '#ffffff', '#00ffa2'];
  const SCHEME_COLORS = ['#ff00ff', '#00ffff', '#ffff00', '#ff7f00', '#7fff00', '#ff3030'];
  const TRUTH_COLORS = { hot: '#d7191c', warm: '#fdae61', cold: '#2c7bb6' };

  // ------------------------------------------------------------------ blobs
  const blobCache = new Map();
  function rawBlob(id) {
    const [o, n] = META.blobs[id];
    const s = atob(B64.substr(o, n));
    const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return u;
  }
  function blob(id) {
    let p = blobCache.get(id);
    if (!p) {
      const ds = new DecompressionStream('deflate');
      const stream = new Blob([rawBlob(id)]).stream().pipeThrough(ds);
      p = new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
      blobCache.set(id, p);
    }
    return p;
  }
  const f64 = (id) => blob(id).then((u) => new Float64Array(u.buffer, u.byteOffset, u.byteLength / 8));
  const f32 = (id) => blob(id).then((u) => new Float32Array(u.buffer, u.byteOffset, u.byteLength / 4));
  function varints(u, pos, n, out) {
    for (let k = 0; k < n; k++) {
      let v = 0, mul = 1, b;
      do { b = u[pos++]; v += (b & 127) * mul; mul *= 128; } while (b & 128);
      out[k] = v;
    }
    return pos;
  }

  // ------------------------------------------------------------------ formatting
  function hex(a) { return '0x' + Math.round(a).toString(16); }
  function fmtBytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0; n = Number(n);
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n >= 100 ? 1 : n >= 10 ? 2 : 3)) + ' ' + u[i];
  }
  function fmtNum(v, d = 4) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(d);
  }
  function parseAddr(s) {
    s = String(s).trim().replace(/_/g, '');
    if (!s) return NaN;
    const m = /^(0x[0-9a-f]+|\d+)\s*([kmgt]i?b?)?$/i.exec(s);
    if (!m) return NaN;
    let v = Number(m[1]);
    if (m[2]) v *= { k: 1024, m: 1048576, g: 1073741824, t: 1099511627776 }[m[2][0].toLowerCase()];
    return v;
  }
  function status(s) { const el = document.getElementById('status'); if (el) el.textContent = s; }

  // ------------------------------------------------------------------ colours
  function ramp(stops, n) {
    const lut = new Uint8Array(n * 3);
    for (let k = 0; k < n; k++) {
      const f = k / (n - 1) * (stops.length - 1);
      const i = Math.min(stops.length - 2, Math.floor(f)), r = f - i;
      for (let c = 0; c < 3; c++) lut[k * 3 + c] = Math.round(stops[i][c] * (1 - r) + stops[i + 1][c] * r);
    }
    return lut;
  }
  // positive heat: from a clear blue (accessed a little) to red; 0 is near black
  const HEAT = ramp([[44, 90, 200], [0, 166, 202], [120, 220, 120], [250, 210, 80], [215, 25, 28]], 256);
  const DIV = ramp([[33, 102, 172], [146, 197, 222], [255, 255, 255], [244, 165, 130], [178, 24, 43]], 257);

  // ------------------------------------------------------------------ model
  const LAYERS = {};   // name -> {kind, name, spaces}
  for (const k of Object.keys(META.layers)) LAYERS[k] = Object.assign({ id: k }, META.layers[k]);
  if (META.diff) LAYERS.diff = Object.assign({ id: 'diff', info: { name: 'B − A (compare grid)' } }, META.diff);
  const A = LAYERS.a;
  const T_ORIGIN = Math.min(...A.spaces.map((s) => s.t0));

  for (const L of Object.values(LAYERS)) for (const sp of L.spaces) prepSpace(sp);
  function prepSpace(sp) {
    sp.segS = sp.segments.map((s) => s[0]); sp.segE = sp.segments.map((s) => s[1]); sp.segX = sp.segments.map((s) => s[2]);
  }
  function xOfAddr(sp, a, side) {
    const n = sp.segS.length;
    if (n === 0) return 0;
    if (a <= sp.segS[0]) return 0;
    if (a >= sp.segE[n - 1]) return sp.length;
    let lo = 0, hi = n - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (sp.segS[m] <= a) lo = m; else hi = m - 1; }
    if (a < sp.segE[lo]) return sp.segX[lo] + (a - sp.segS[lo]);
    return side === 'lo' ? sp.segX[lo + 1] : sp.segX[lo] + (sp.segE[lo] - sp.segS[lo]);
  }
  function addrOfX(sp, x) {
    const n = sp.segS.length;
    if (n === 0) return 0;
    if (x <= 0) return sp.segS[0];
    if (x >= sp.length) return sp.segE[n - 1];
    let lo = 0, hi = n - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (sp.segX[m] <= x) lo = m; else hi = m - 1; }
    return sp.segS[lo] + (x - sp.segX[lo]);
  }
  function spaceOf(layer, key) {
    const L = LAYERS[layer];
    if (!L || !L.spaces.length) return null;
    return L.spaces.find((s) => s.key === key) || L.spaces.find((s) => s.key_b === key) || L.spaces[0];
  }

  // snapshots and rows of a history space
  async function snaps(sp) {
    if (!sp._snaps) {
      sp._snaps = f64(sp.snaps_blob).then((a) => {
        const S = sp.snaps;
        return { t0: a.subarray(0, S), t1: a.subarray(S, 2 * S), snapshot: a.subarray(2 * S, 3 * S), run: a.subarray(3 * S, 4 * S) };
      });
    }
    return sp._snaps;
  }
  async function series(sp) {
    if (!sp._series) {
      sp._series = Promise.all([f64(sp.series_blob), f64(sp.hist.blob)]).then(([a, h]) => {
        const S = sp.snaps;
        return { wss: a.subarray(0, S), regions: a.subarray(S, 2 * S), total: a.subarray(2 * S, 3 * S), hist: h };
      });
    }
    return sp._series;
  }
  function chunkRows(sp, ci) {
    sp._chunks = sp._chunks || new Map();
    let p = sp._chunks.get(ci);
    if (!p) {
      const [s0, s1, , , n, base, bid] = sp.chunks[ci];
      p = blob(bid).then((u) => {
        const ns = s1 - s0;
        const counts = new Float64Array(ns), gap = new Float64Array(n), size = new Float64Array(n);
        const nr = new Float64Array(n), age = new Float64Array(n);
        let pos = varints(u, 0, ns, counts);
        pos = varints(u, pos, n, gap); pos = varints(u, pos, n, size);
        pos = varints(u, pos, n, nr); pos = varints(u, pos, n, age);
        const start = new Float64Array(n), end = new Float64Array(n), x0 = new Float64Array(n);
        const snap = new Int32Array(n), off = new Int32Array(ns + 1);
        let r = 0;
        for (let k = 0; k < ns; k++) {
          off[k] = r;
          let prev = base;
          for (let c = 0; c < counts[k]; c++, r++) {
            start[r] = prev + gap[r] * sp.unit;
            end[r] = start[r] + size[r] * sp.unit;
            prev = end[r];
            snap[r] = s0 + k;
            age[r] = age[r] - 1;   // -1: unknown
          }
        }
        off[ns] = r;
        // display coordinates: rows are sorted by start within a snapshot
        for (let i = 0; i < n; i++) x0[i] = xOfAddr(sp, start[i], 'lo');
        return { s0, s1, n, start, end, x0, nr, age, snap, off };
      });
      sp._chunks.set(ci, p);
    }
    return p;
  }
  function firstSnapAtOrAfter(arr, t) { // arr ascending
    let lo = 0, hi = arr.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] <= t) lo = m + 1; else hi = m; }
    return lo;
  }
  async function regionAt(sp, t, x) {
    const S = await snaps(sp);
    let s = -1;
    // windows are ordered in time; find the one holding t
    let k = firstSnapAtOrAfter(S.t1, t);
    for (const c of [k, k - 1, k + 1]) if (c >= 0 && c < sp.snaps && S.t0[c] <= t && t < S.t1[c]) { s = c; break; }
    if (s < 0) return { snap: -1 };
    for (let ci = 0; ci < sp.chunks.length; ci++) {
      const c = sp.chunks[ci];
      if (c[0] > s || c[1] <= s || c[2] > x || c[3] <= x) continue;
      const R = await chunkRows(sp, ci);
      const a = R.off[s - R.s0], b = R.off[s - R.s0 + 1];
      for (let r = a; r < b; r++) {
        const w = R.end[r] - R.start[r];
        if (R.x0[r] <= x && x < R.x0[r] + w) return { snap: s, R, r, S };
      }
    }
    return { snap: s, S };
  }

  // ------------------------------------------------------------------ tiles
  function levelFor(sp, tspan, xspan, W, H) {
    const g = sp.grid;
    const tw0 = g.tw * Math.pow(2, g.K), aw0 = g.aw * Math.pow(2, g.K);
    // level 0 bins are tw0 ns × aw0 bytes; a level is fine enough at 2 pixels a bin
    let i = Math.ceil(Math.log2(Math.max(1, tw0 * W / (2 * tspan))));
    let j = Math.ceil(Math.log2(Math.max(1, aw0 * H / (2 * xspan))));
    i = Math.max(0, Math.min(i, g.imax)); j = Math.max(0, Math.min(j, g.jmax));
    while (i + j > g.K) { if (i > j) i--; else j--; }
    while (!sp.levels[i + ',' + j]) { if (j > 0) j--; else if (i > 0) i--; else break; }
    return [i, j];
  }
  async function tileCodes(sp, i, j, p, q) {
    const t = sp.levels[i + ',' + j][p + ',' + q];
    if (t === undefined) return 0;
    if (t < 0) return -t - 1;
    return blob(t);
  }

  // ------------------------------------------------------------------ panels
  const state = { layer: 'a', sbs: false, key: A.spaces[0].key, view: null, scale: 'linear',
                  filters: { events: null, pids: null, levels: null, schemes: null } };
  const panels = [];
  const M = { l: 122, r: 16, t: 6, b: 34 };   // plot margins (CSS px)

  function makePanel(layerId) {
    const el = document.createElement('div');
    el.className = 'panel';
    const title = document.createElement('div'); title.className = 'ptitle';
    const cv = document.createElement('canvas');
    el.appendChild(title); el.appendChild(cv);
    document.getElementById('panels').appendChild(el);
    const P = { el, title, cv, layer: layerId, grid: null, gen: 0 };
    bindPanel(P);
    return P;
  }
  function setPanels() {
    const want = state.sbs && LAYERS.b ? ['a', 'b'] : [state.layer];
    if (panels.length === want.length && panels.every((p, k) => p.layer === want[k])) return;
    for (const p of panels) p.el.remove();
    panels.length = 0;
    for (const id of want) panels.push(makePanel(id));
  }
  function panelSpace(P) { return spaceOf(P.layer, state.key); }
  function panelDisplay(P) {
    const sp = panelSpace(P);
    const v = state.view;
    let x0 = xOfAddr(sp, v.a0, 'lo'), x1 = xOfAddr(sp, v.a1, 'hi');
    if (x1 <= x0) { x1 = Math.min(sp.length, x0 + 1); x0 = Math.max(0, x1 - 1); }
    return { sp, t0: v.t0, t1: v.t1, x0, x1 };
  }
  function sizeCanvas(cv) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, cv.clientWidth), h = Math.max(120, cv.clientHeight);
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
    }
    return { w, h, dpr };
  }
  function plotRect(P) {
    const { w, h, dpr } = sizeCanvas(P.cv);
    const pw = w - M.l - M.r, ph = h - M.t - M.b;
    return { w, h, dpr, pw, ph, W: Math.max(1, Math.round(pw * dpr)), H: Math.max(1, Math.round(ph * dpr)) };
  }

  async function renderPanel(P) {
    const gen = ++P.gen;
    const R = plotRect(P);
    const D = panelDisplay(P);
    const L = LAYERS[P.layer];
    P.title.textContent = (P.layer === 'diff' ? '' : P.layer.toUpperCase() + ': ') + L.info.name + ' · ' + D.sp.label;
    let out;
    if (L.kind === 'diff') out = await rasterDiff(D, R);
    else out = await rasterHistory(D, R);
    if (gen !== P.gen) return;   // a newer render started
    P.grid = Object.assign({ W: R.W, H: R.H, D }, out);
    draw(P, R, D, out);
  }

  async function rasterHistory(D, R) {
    const sp = D.sp, W = R.W, H = R.H;
    const S = await snaps(sp);
    // snapshots in view, and rows of the chunks in view
    let vs0 = firstSnapAtOrAfter(S.t1, D.t0), vs1 = vs0;
    while (vs1 < sp.snaps && S.t0[vs1] < D.t1) vs1++;
    let est = 0; const vis = [];
    sp.chunks.forEach((c, ci) => {
      if (c[1] <= vs0 || c[0] >= vs1 || c[3] <= D.x0 || c[2] >= D.x1) return;
      const f = (Math.min(c[1], vs1) - Math.max(c[0], vs0)) / (c[1] - c[0]);
      est += c[4] * f; vis.push(ci);
    });
    const vals = new Float32Array(W * H).fill(NaN);
    const dt = (D.t1 - D.t0) / W, dx = (D.x1 - D.x0) / H;
    if (est <= EXACT_MAX_ROWS) {
      const sums = new Float64Array(W * H), cov = new Float64Array(W * H);
      let drawn = 0;
      const rows = await Promise.all(vis.map((ci) => chunkRows(sp, ci)));
      for (const C of rows) {
        for (let s = Math.max(C.s0, vs0); s < Math.min(C.s1, vs1); s++) {
          const ts0 = Math.max(S.t0[s], D.t0), ts1 = Math.min(S.t1[s], D.t1);
          if (ts1 <= ts0) continue;
          const fx0 = (ts0 - D.t0) / dt, fx1 = (ts1 - D.t0) / dt;
          const px0 = Math.max(0, Math.floor(fx0)), px1 = Math.min(W - 1, Math.ceil(fx1) - 1);
          for (let r = C.off[s - C.s0]; r < C.off[s - C.s0 + 1]; r++) {
            const xa = Math.max(C.x0[r], D.x0), xb = Math.min(C.x0[r] + (C.end[r] - C.start[r]), D.x1);
            if (xb <= xa) continue;
            drawn++;
            const fy0 = (D.x1 - xb) / dx, fy1 = (D.x1 - xa) / dx;
            const py0 = Math.max(0, Math.floor(fy0)), py1 = Math.min(H - 1, Math.ceil(fy1) - 1);
            const v = C.nr[r];
            for (let px = px0; px <= px1; px++) {
              const wt = Math.min(fx1, px + 1) - Math.max(fx0, px);
              if (wt <= 0) continue;
              for (let py = py0; py <= py1; py++) {
                const wy = Math.min(fy1, py + 1) - Math.max(fy0, py);
                if (wy <= 0) continue;
                const w = wt * wy, k = py * W + px;
                cov[k] += w; sums[k] += w * v;
              }
            }
          }
        }
      }
      for (let k = 0; k < W * H; k++) if (cov[k] > 0) vals[k] = sums[k] / cov[k];
      return { vals, mode: 'exact', rows: drawn, est: Math.round(est), vmax: sp.vmax, kind: 'heat' };
    }
    // tiles
    const [i, j] = levelFor(sp, D.t1 - D.t0, D.x1 - D.x0, W, H);
    const g = sp.grid;
    const tw = g.tw * Math.pow(2, g.K - i), aw = g.aw * Math.pow(2, g.K - j);
    const nti = TILE << i, naj = TILE << j;
    const ci = new Int32Array(W), cj = new Int32Array(H);
    for (let px = 0; px < W; px++) ci[px] = Math.floor((D.t0 + (px + 0.5) * dt - g.T0) / tw);
    for (let py = 0; py < H; py++) cj[py] = Math.floor((D.x1 - (py + 0.5) * dx) / aw);
    const need = new Map();
    const tps = new Set(), tqs = new Set();
    for (let px = 0; px < W; px++) if (ci[px] >= 0 && ci[px] < nti) tps.add(ci[px] >> 8);
    for (let py = 0; py < H; py++) if (cj[py] >= 0 && cj[py] < naj) tqs.add(cj[py] >> 8);
    for (const p of tps) for (const q of tqs) need.set(p + ',' + q, tileCodes(sp, i, j, p, q));
    const got = new Map();
    for (const [k, pr] of need) got.set(k, await pr);
    const lutv = new Float32Array(256);
    lutv[0] = NaN; lutv[1] = 0;
    for (let c = 2; c < 256; c++) lutv[c] = (c - 2 + 0.5) / 254 * sp.vmax;
    for (let px = 0; px < W; px++) {
      const a = ci[px];
      if (a < 0 || a >= nti) continue;
      for (let py = 0; py < H; py++) {
        const b = cj[py];
        if (b < 0 || b >= naj) continue;
        const t = got.get((a >> 8) + ',' + (b >> 8));
        const code = typeof t === 'number' ? t : t[(a & 255) * TILE + (b & 255)];
        vals[py * W + px] = lutv[code];
      }
    }
    return { vals, mode: 'tiles', level: [i, j], est: Math.round(est), vmax: sp.vmax, kind: 'heat',
             cell: { tw, aw } };
  }

  async function rasterDiff(D, R) {
    const sp = D.sp, W = R.W, H = R.H;
    const [edges, bins, ra, rb] = await Promise.all([f64(sp.edges_blob), f64(sp.bins_blob), f32(sp.rate_a_blob), f32(sp.rate_b_blob)]);
    const nt = sp.nt, nb = sp.nb;
    const bs = bins.subarray(0, nb), be = bins.subarray(nb, 2 * nb), bx = bins.subarray(2 * nb, 3 * nb);
    if (sp._lim === undefined) {
      let m = 0;
      for (let k = 0; k < ra.length; k++) { const d = rb[k] - ra[k]; if (Math.abs(d) > m) m = Math.abs(d); }
      sp._lim = Math.max(m, 0.05);   // a floor: clock jitter does not saturate the scale
    }
    const dt = (D.t1 - D.t0) / W, dx = (D.x1 - D.x0) / H;
    const ti = new Int32Array(W).fill(-1), bj = new Int32Array(H).fill(-1);
    for (let px = 0; px < W; px++) {
      const t = D.t0 + (px + 0.5) * dt;
      const k = firstSnapAtOrAfter(edges, t) - 1;
      if (k >= 0 && k < nt) ti[px] = k;
    }
    for (let py = 0; py < H; py++) {
      const x = D.x1 - (py + 0.5) * dx;
      const k = firstSnapAtOrAfter(bx, x) - 1;
      if (k >= 0 && x < bx[k] + (be[k] - bs[k])) bj[py] = k;
    }
    const vals = new Float32Array(W * H).fill(NaN);
    for (let px = 0; px < W; px++) {
      if (ti[px] < 0) continue;
      const base = ti[px] * nb;
      for (let py = 0; py < H; py++) if (bj[py] >= 0) vals[py * W + px] = rb[base + bj[py]] - ra[base + bj[py]];
    }
    return { vals, mode: 'diff', kind: 'diff', lim: sp._lim, ti, bj, edges, bs, be, ra, rb };
  }

  function colorize(img, out) {
    const d = img.data, v = out.vals;
    for (let k = 0; k < v.length; k++) {
      const x = v[k];
      let r, g, b;
      if (out.kind === 'diff') {
        if (Number.isNaN(x)) [r, g, b] = DIFF_NODATA;
        else {
          const f = Math.max(-1, Math.min(1, x / out.lim));
          const i = Math.round((f + 1) * 128) * 3;
          r = DIV[i]; g = DIV[i + 1]; b = DIV[i + 2];
        }
      } else if (Number.isNaN(x)) [r, g, b] = NODATA;
      else if (x <= 0) [r, g, b] = IDLE;
      else {
        let f = Math.min(1, x / out.vmax);
        if (state.scale === 'sqrt') f = Math.sqrt(f);
        const i = Math.min(255, Math.floor(f * 255.999)) * 3;
        r = HEAT[i]; g = HEAT[i + 1]; b = HEAT[i + 2];
      }
      d[k * 4] = r; d[k * 4 + 1] = g; d[k * 4 + 2] = b; d[k * 4 + 3] = 255;
    }
  }

  function tickLabel(v, step) {
    const d = Math.max(0, Math.min(9, -Math.floor(Math.log10(step) + 1e-9)));
    return v.toFixed(d);
  }
  function niceStep(span, n) {
    const raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function draw(P, R, D, out) {
    const ctx = P.cv.getContext('2d');
    ctx.setTransform(R.dpr, 0, 0, R.dpr, 0, 0);
    ctx.clearRect(0, 0, R.w, R.h);
    const img = new ImageData(R.W, R.H);
    colorize(img, out);
    ctx.putImageData(img, Math.round(M.l * R.dpr), Math.round(M.t * R.dpr));
    const sp = D.sp;
    const yOf = (x) => M.t + (D.x1 - x) / (D.x1 - D.x0) * R.ph;
    const xOf = (t) => M.l + (t - D.t0) / (D.t1 - D.t0) * R.pw;
    ctx.save();
    ctx.beginPath(); ctx.rect(M.l, M.t, R.pw, R.ph); ctx.clip();
    // collapsed gaps
    ctx.setLineDash([5, 4]); ctx.lineWidth = 1; ctx.font = '10px system-ui, sans-serif';
    const seps = [];
    for (let k = 1; k < sp.segS.length; k++) {
      const x = sp.segX[k];
      if (x <= D.x0 || x >= D.x1) continue;
      const y = yOf(x);
      seps.push([y, sp.segS[k] - sp.segE[k - 1]]);
      ctx.strokeStyle = '#ffffff'; ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + R.pw, y); ctx.stroke();
      ctx.strokeStyle = '#000000'; ctx.lineDashOffset = 4; ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + R.pw, y); ctx.stroke();
      ctx.lineDashOffset = 0;
    }
    // labels after every line, so no line crosses a label; close gaps share one label
    for (let k = 0; k < seps.length;) {
      let n = 1, bytes = seps[k][1];
      while (k + n < seps.length && Math.abs(seps[k + n][0] - seps[k][0]) < 13) { bytes += seps[k + n][1]; n++; }
      const y = seps[k][0];
      const label = (n > 1 ? n + ' gaps, ' : 'gap ') + fmtBytes(bytes) + ' collapsed';
      ctx.fillStyle = 'rgba(255,255,255,.9)';
      ctx.fillRect(M.l + 4, y - 12, ctx.measureText(label).width + 6, 11);
      ctx.fillStyle = '#000'; ctx.fillText(label, M.l + 7, y - 3);
      k += n;
    }
    ctx.setLineDash([]);
    if (P.layer !== 'diff') { drawDamos(ctx, D, xOf, yOf); drawSamples(ctx, D, xOf, yOf); }
    if (API._cursorT !== undefined && API._cursorT >= D.t0 && API._cursorT <= D.t1) {
      ctx.strokeStyle = 'rgba(255,255,255,.7)'; ctx.beginPath();
      ctx.moveTo(xOf(API._cursorT), M.t); ctx.lineTo(xOf(API._cursorT), M.t + R.ph); ctx.stroke();
    }
    if (P.box) {
      ctx.strokeStyle = '#ff0'; ctx.lineWidth = 1.5;
      ctx.strokeRect(P.box.x, P.box.y, P.box.w, P.box.h);
    }
    ctx.restore();
    drawTruth(ctx, P, R, D, yOf);
    // axes
    ctx.strokeStyle = '#888'; ctx.lineWidth = 1; ctx.strokeRect(M.l - 0.5, M.t - 0.5, R.pw + 1, R.ph + 1);
    ctx.fillStyle = '#333'; ctx.font = '11px system-ui, sans-serif';
    const ts = niceStep((D.t1 - D.t0) / 1e9, Math.max(2, R.pw / 90));
    const first = Math.ceil((D.t0 - T_ORIGIN) / 1e9 / ts) * ts;
    ctx.textAlign = 'center';
    for (let s = first; (T_ORIGIN + s * 1e9) <= D.t1; s += ts) {
      const x = xOf(T_ORIGIN + s * 1e9);
      ctx.fillRect(x, M.t + R.ph, 1, 4);
      ctx.fillText(tickLabel(s, ts), x, M.t + R.ph + 15);
    }
    ctx.fillText('time (s from the start of the run)', M.l + R.pw / 2, R.h - 4);
    ctx.textAlign = 'right';
    ctx.font = '11px ui-monospace, Menlo, Consolas, monospace';
    // ticks at round addresses (multiples of a power of two) inside each shown range
    const nTick = Math.max(2, Math.floor(R.ph / 40));
    const step = Math.pow(2, Math.ceil(Math.log2(Math.max(1, (D.x1 - D.x0) / nTick))));
    let lastY = 1e9;
    for (let k = 0; k < sp.segS.length; k++) {
      const xs = sp.segX[k], xe = xs + (sp.segE[k] - sp.segS[k]);
      if (xe < D.x0 || xs > D.x1) continue;
      const lo = sp.segS[k] + Math.max(0, D.x0 - xs), hi = sp.segS[k] + Math.min(xe, D.x1) - xs;
      const marks = [lo];
      for (let a = Math.ceil(lo / step) * step; a <= hi && marks.length < 64; a += step) marks.push(a);
      for (const a of marks) {
        const y = yOf(xs + (a - sp.segS[k]));
        if (Math.abs(y - lastY) < 14) continue;
        lastY = y;
        ctx.fillRect(M.l - 4, y, 4, 1);
        ctx.fillText(hex(a), M.l - 6, y + 4);
      }
    }
    ctx.font = '11px system-ui, sans-serif';
    ctx.save(); ctx.translate(10, M.t + R.ph / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = 'center';
    ctx.fillText('address (' + (sp.segS.length > 1 ? 'gaps collapsed' : 'linear') + ')', 0, 0); ctx.restore();
  }

  function drawTruth(ctx, P, R, D, yOf) {
    if (!META.truth || P.layer === 'diff') return;
    const ts = META.truth.spaces.find((s) => s.key === D.sp.key);
    if (!ts) return;
    for (const [, , x0, x1, label] of ts.ranges) {
      if (x1 <= D.x0 || x0 >= D.x1) continue;
      const ya = yOf(Math.min(x1, D.x1)), yb = yOf(Math.max(x0, D.x0));
      const cls = (/^(hot|warm|cold)/.exec(String(label).toLowerCase()) || [])[1];
      ctx.fillStyle = TRUTH_COLORS[cls] || '#777';
      ctx.fillRect(M.l + R.pw + 3, ya, 10, Math.max(1, yb - ya));
    }
  }

  // ------------------------------------------------------------------ samples and DAMOS
  let SAMPLES = null, DAMOS = null;
  async function loadOverlays() {
    if (META.samples && META.samples.n) {
      const a = await f64(META.samples.blob), n = META.samples.n;
      SAMPLES = { n, t: a.subarray(0, n), addr: a.subarray(n, 2 * n), x: a.subarray(2 * n, 3 * n), space: a.subarray(3 * n, 4 * n),
                  ev: a.subarray(4 * n, 5 * n), pid: a.subarray(5 * n, 6 * n), lvl: a.subarray(6 * n, 7 * n) };
    }
    if (META.damos && META.damos.n) {
      const a = await f64(META.damos.blob), n = META.damos.n;
      DAMOS = { n, t: a.subarray(0, n), start: a.subarray(n, 2 * n), end: a.subarray(2 * n, 3 * n), x: a.subarray(3 * n, 4 * n),
                space: a.subarray(4 * n, 5 * n), scheme: a.subarray(5 * n, 6 * n), nr: a.subarray(6 * n, 7 * n), age: a.subarray(7 * n, 8 * n) };
    }
  }
  function sampleVisible(k) {
    const f = state.filters;
    if (f.events && !f.events.has(META.samples.events[SAMPLES.ev[k]])) return false;
    if (f.pids && !f.pids.has(META.samples.pids[SAMPLES.pid[k]])) return false;
    if (f.levels && !f.levels.has(META.samples.levels[SAMPLES.lvl[k]])) return false;
    return true;
  }
  function drawSamples(ctx, D, xOf, yOf) {
    if (!SAMPLES || !state.showSamples) return;
    API._samplesDrawn = 0;
    for (let k = 0; k < SAMPLES.n; k++) {
      if (SAMPLES.space[k] !== D.sp.key) continue;
      const t = SAMPLES.t[k], x = SAMPLES.x[k];
      if (t < D.t0 || t > D.t1 || x < D.x0 || x >= D.x1) continue;
      if (!sampleVisible(k)) continue;
      ctx.fillStyle = EV_COLORS[SAMPLES.ev[k] % EV_COLORS.length];
      ctx.fillRect(xOf(t) - 1, yOf(x) - 1, 2, 2);
      API._samplesDrawn++;
    }
  }
  function damosVisible(k) { const f = state.filters.schemes; return !f || f.has(DAMOS.scheme[k]); }
  function drawDamos(ctx, D, xOf, yOf) {
    if (!DAMOS || !state.showDamos) return;
    API._damosDrawn = 0;
    for (let k = 0; k < DAMOS.n; k++) {
      if (DAMOS.space[k] !== D.sp.key || !damosVisible(k)) continue;
      const t = DAMOS.t[k], x0 = DAMOS.x[k], x1 = x0 + (DAMOS.end[k] - DAMOS.start[k]);
      if (t < D.t0 || t > D.t1 || x1 <= D.x0 || x0 >= D.x1) continue;
      const ya = yOf(Math.min(x1, D.x1)), yb = yOf(Math.max(x0, D.x0));
      ctx.fillStyle = SCHEME_COLORS[META.damos.schemes.indexOf(DAMOS.scheme[k]) % SCHEME_COLORS.length];
      ctx.globalAlpha = 0.85;
      ctx.fillRect(xOf(t) - 1, ya, 2, Math.max(2, yb - ya));
      ctx.globalAlpha = 1;
      API._damosDrawn++;
    }
  }

  // ------------------------------------------------------------------ hover text
  async function describe(P, t, x, near) {
    const D = panelDisplay(P), sp = D.sp;
    const L = LAYERS[P.layer];
    const lines = [];
    const addr = addrOfX(sp, x);
    if (L.kind === 'diff') {
      const [edges, bins, ra, rb] = await Promise.all([f64(sp.edges_blob), f64(sp.bins_blob), f32(sp.rate_a_blob), f32(sp.rate_b_blob)]);
      const nb = sp.nb, k = firstSnapAtOrAfter(edges, t) - 1;
      const bx = bins.subarray(2 * nb, 3 * nb), bs = bins.subarray(0, nb), be = bins.subarray(nb, 2 * nb);
      const j = firstSnapAtOrAfter(bx, x) - 1;
      if (k < 0 || k >= sp.nt || j < 0 || x >= bx[j] + (be[j] - bs[j])) return 'outside the compare grid';
      const a = ra[k * nb + j], b = rb[k * nb + j];
      lines.push(`compare cell  ${sp.label}`);
      lines.push(`time  ${fmtNum((edges[k] - T_ORIGIN) / 1e9, 6)}–${fmtNum((edges[k + 1] - T_ORIGIN) / 1e9, 6)} s`);
      lines.push(`bin   ${hex(bs[j])}–${hex(be[j])}  (${fmtBytes(be[j] - bs[j])})`);
      if (Number.isNaN(a)) lines.push('not covered by both sides');
      else lines.push(`rate A ${fmtNum(a)}   rate B ${fmtNum(b)}   B − A ${fmtNum(b - a)}`);
      return lines.join('\n');
    }
    const hit = await regionAt(sp, t, x);
    lines.push(`${L.info.name} · ${sp.label}`);
    if (hit.snap < 0) lines.push(`time ${fmtNum((t - T_ORIGIN) / 1e9, 6)} s: no snapshot`);
    else {
      const S = hit.S, s = hit.snap;
      lines.push(`snapshot ${S.snapshot[s]} (run ${S.run[s]})  time ${fmtNum((S.t0[s] - T_ORIGIN) / 1e9, 6)}–${fmtNum((S.t1[s] - T_ORIGIN) / 1e9, 6)} s`);
      lines.push(`         [${S.t0[s]}, ${S.t1[s]}) ns`);
      if (hit.R) {
        const R = hit.R, r = hit.r;
        lines.push(`region  ${hex(R.start[r])}–${hex(R.end[r])}  size ${fmtBytes(R.end[r] - R.start[r])}`);
        const age = R.age[r] < 0 ? 'unknown' : `${R.age[r]} aggregations (${fmtNum(R.age[r] * sp.aggr_ns / 1e9, 4)} s)`;
        lines.push(`nr_accesses ${R.nr[r]} of ${fmtNum(sp.vmax)}   age ${age}`);
      } else lines.push(`address ${hex(addr)}: no region in this snapshot`);
    }
    const g = P.grid;
    if (g && g.vals) {
      const px = Math.floor((t - g.D.t0) / (g.D.t1 - g.D.t0) * g.W), py = Math.floor((g.D.x1 - x) / (g.D.x1 - g.D.x0) * g.H);
      if (px >= 0 && px < g.W && py >= 0 && py < g.H) {
        const v = g.vals[py * g.W + px];
        lines.push(`pixel mean nr_accesses ${Number.isNaN(v) ? 'no data' : (g.mode === 'tiles' ? '≈ ' : '') + fmtNum(v)} (${g.mode}${g.level ? ' level ' + g.level : ''})`);
      }
    }
    if (near && near.length) lines.push(...near);
    return lines.join('\n');
  }
  function nearMarks(P, t, x, D, R) {
    const out = [];
    const pxT = (D.t1 - D.t0) / R.pw, pxX = (D.x1 - D.x0) / R.ph;
    if (SAMPLES && state.showSamples) {
      let c = 0;
      for (let k = 0; k < SAMPLES.n && c < 3; k++) {
        if (SAMPLES.space[k] !== D.sp.key || !sampleVisible(k)) continue;
        if (Math.abs(SAMPLES.t[k] - t) <= 3 * pxT && Math.abs(SAMPLES.x[k] - x) <= 3 * pxX) {
          out.push(`sample  ${fmtNum((SAMPLES.t[k] - T_ORIGIN) / 1e9, 7)} s  ${hex(SAMPLES.addr[k])}  ${META.samples.events[SAMPLES.ev[k]]}  pid ${META.samples.pids[SAMPLES.pid[k]]}${META.samples.levels[SAMPLES.lvl[k]] ? '  ' + META.samples.levels[SAMPLES.lvl[k]] : ''}`);
          c++;
        }
      }
    }
    if (DAMOS && state.showDamos) {
      let c = 0;
      for (let k = 0; k < DAMOS.n && c < 3; k++) {
        if (DAMOS.space[k] !== D.sp.key || !damosVisible(k)) continue;
        const x1 = DAMOS.x[k] + DAMOS.end[k] - DAMOS.start[k];
        if (Math.abs(DAMOS.t[k] - t) <= 3 * pxT && x >= DAMOS.x[k] - 2 * pxX && x < x1 + 2 * pxX) {
          out.push(`DAMOS scheme ${DAMOS.scheme[k]} at ${fmtNum((DAMOS.t[k] - T_ORIGIN) / 1e9, 7)} s  ${hex(DAMOS.start[k])}–${hex(DAMOS.end[k])}  nr_accesses ${DAMOS.nr[k]}  age ${DAMOS.age[k] < 0 ? '?' : DAMOS.age[k]}`);
          c++;
        }
      }
    }
    if (META.truth) {
      const ts = META.truth.spaces.find((s) => s.key === D.sp.key);
      if (ts) for (const [s, e, x0, x1, label] of ts.ranges) if (x >= x0 && x < x1) { out.push(`truth ${label}: ${hex(s)}–${hex(e)}`); break; }
    }
    return out;
  }

  // ------------------------------------------------------------------ interaction
  function eventPos(P, ev) {
    const r = P.cv.getBoundingClientRect();
    return { cx: ev.clientX - r.left, cy: ev.clientY - r.top };
  }
  function toData(P, cx, cy) {
    const R = plotRect(P), D = panelDisplay(P);
    const t = D.t0 + (cx - M.l) / R.pw * (D.t1 - D.t0);
    const x = D.x1 - (cy - M.t) / R.ph * (D.x1 - D.x0);
    return { t, x, D, R, inside: cx >= M.l && cx < M.l + R.pw && cy >= M.t && cy < M.t + R.ph };
  }
  function setDisplayView(P, t0, t1, x0, x1) {
    const sp = panelSpace(P);
    const full = fullTime();
    const minT = 1000, minX = Math.min(sp.unit, sp.length);
    if (t1 - t0 < minT) { const c = (t0 + t1) / 2; t0 = c - minT / 2; t1 = c + minT / 2; }
    if (x1 - x0 < minX) { const c = (x0 + x1) / 2; x0 = c - minX / 2; x1 = c + minX / 2; }
    const ts = t1 - t0, xs = x1 - x0;
    if (ts >= full[1] - full[0]) { t0 = full[0]; t1 = full[1]; }
    else { if (t0 < full[0]) { t0 = full[0]; t1 = t0 + ts; } if (t1 > full[1]) { t1 = full[1]; t0 = t1 - ts; } }
    if (xs >= sp.length) { x0 = 0; x1 = sp.length; }
    else { if (x0 < 0) { x0 = 0; x1 = xs; } if (x1 > sp.length) { x1 = sp.length; x0 = x1 - xs; } }
    state.view = { t0, t1, a0: addrOfX(sp, x0), a1: addrOfX(sp, x1) };
    return renderAll();
  }
  function fullTime() {
    let t0 = Infinity, t1 = -Infinity;
    for (const L of Object.values(LAYERS)) { const sp = spaceOf(L.id, state.key); if (sp) { t0 = Math.min(t0, sp.t0); t1 = Math.max(t1, sp.t1); } }
    return [t0, t1];
  }
  function bindPanel(P) {
    const cv = P.cv;
    let drag = null;
    cv.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const { cx, cy } = eventPos(P, ev);
      const q = toData(P, cx, cy);
      if (!q.inside) return;
      const f = ev.deltaY > 0 ? 1.25 : 0.8;
      const D = q.D;
      const zt = !ev.altKey, zx = !ev.shiftKey;
      const t0 = zt ? q.t - (q.t - D.t0) * f : D.t0, t1 = zt ? q.t + (D.t1 - q.t) * f : D.t1;
      const x0 = zx ? q.x - (q.x - D.x0) * f : D.x0, x1 = zx ? q.x + (D.x1 - q.x) * f : D.x1;
      setDisplayView(P, t0, t1, x0, x1);
    }, { passive: false });
    cv.addEventListener('mousedown', (ev) => {
      const { cx, cy } = eventPos(P, ev);
      const q = toData(P, cx, cy);
      if (!q.inside) return;
      drag = { cx, cy, D: q.D, R: q.R, box: ev.shiftKey };
      ev.preventDefault();
    });
    window.addEventListener('mouseup', () => {
      if (!drag) return;
      const d = drag; drag = null;
      if (d.box && P.box) {
        const b = P.box; P.box = null;
        if (Math.abs(b.w) > 3 && Math.abs(b.h) > 3) {
          const a = toData(P, b.x, b.y), c = toData(P, b.x + b.w, b.y + b.h);
          setDisplayView(P, Math.min(a.t, c.t), Math.max(a.t, c.t), Math.min(a.x, c.x), Math.max(a.x, c.x));
        } else renderAll();
      }
    });
    cv.addEventListener('mousemove', (ev) => {
      const { cx, cy } = eventPos(P, ev);
      if (drag) {
        if (drag.box) {
          P.box = { x: drag.cx, y: drag.cy, w: cx - drag.cx, h: cy - drag.cy };
          draw(P, plotRect(P), P.grid.D, P.grid);
        } else {
          const D = drag.D, R = drag.R;
          const dt = -(cx - drag.cx) / R.pw * (D.t1 - D.t0), dxx = (cy - drag.cy) / R.ph * (D.x1 - D.x0);
          setDisplayView(P, D.t0 + dt, D.t1 + dt, D.x0 + dxx, D.x1 + dxx);
        }
        hideTip();
        return;
      }
      hover(P, ev.clientX, ev.clientY, cx, cy);
    });
    cv.addEventListener('mouseleave', () => { hideTip(); API._cursorT = undefined; });
    cv.addEventListener('dblclick', () => resetView());
  }
  let hoverGen = 0;
  async function hover(P, clientX, clientY, cx, cy) {
    const q = toData(P, cx, cy);
    if (!q.inside) { hideTip(); return; }
    const g = ++hoverGen;
    API._cursorT = q.t;
    drawCharts();
    const text = await describe(P, q.t, q.x, nearMarks(P, q.t, q.x, q.D, q.R));
    if (g !== hoverGen) return;
    const tip = document.getElementById('tip');
    tip.textContent = text; tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.min(window.innerWidth - w - 4, clientX + 14) + 'px';
    tip.style.top = Math.min(window.innerHeight - h - 4, clientY + 14) + 'px';
    API.lastHover = text;
  }
  function hideTip() { document.getElementById('tip').hidden = true; }

  // ------------------------------------------------------------------ charts
  const charts = { wss: document.getElementById('c-wss'), regions: document.getElementById('c-regions'), hist: document.getElementById('c-hist') };
  const CM = { l: 64, r: 8, t: 8, b: 22 };
  async function drawCharts() {
    const sps = ['a', 'b'].filter((k) => LAYERS[k]).map((k) => ({ k, sp: spaceOf(k, state.key) }));
    const data = await Promise.all(sps.map(async (o) => ({ k: o.k, sp: o.sp, S: await snaps(o.sp), Z: await series(o.sp) })));
    const v = state.view;
    lineChart(charts.wss, data, (d) => d.Z.wss, v, fmtBytes);
    lineChart(charts.regions, data, (d) => d.Z.regions, v, (x) => fmtNum(x, 4));
    histChart(charts.hist, data, v);
  }
  function chartCtx(cv) {
    const { w, h, dpr } = sizeCanvas(cv);
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = '10px system-ui, sans-serif';
    return { ctx, w, h, pw: w - CM.l - CM.r, ph: h - CM.t - CM.b };
  }
  const LINE = { a: '#1f5fbf', b: '#d95f02' };
  function lineChart(cv, data, pick, v, fmt) {
    const { ctx, w, h, pw, ph } = chartCtx(cv);
    let ymax = 0;
    for (const d of data) { const y = pick(d); for (let s = 0; s < d.sp.snaps; s++) if (d.S.t1[s] > v.t0 && d.S.t0[s] < v.t1) ymax = Math.max(ymax, y[s]); }
    ymax = ymax > 0 ? ymax * 1.08 : 1;
    const X = (t) => CM.l + (t - v.t0) / (v.t1 - v.t0) * pw, Y = (y) => CM.t + ph - y / ymax * ph;
    ctx.strokeStyle = '#bbb'; ctx.strokeRect(CM.l - 0.5, CM.t - 0.5, pw + 1, ph + 1);
    ctx.fillStyle = '#444'; ctx.textAlign = 'right';
    for (let k = 0; k <= 3; k++) { const y = ymax * k / 3; ctx.fillText(fmt(y), CM.l - 4, Y(y) + 3); }
    ctx.textAlign = 'center';
    const ts = niceStep((v.t1 - v.t0) / 1e9, Math.max(2, pw / 80));
    for (let s = Math.ceil((v.t0 - T_ORIGIN) / 1e9 / ts) * ts; T_ORIGIN + s * 1e9 <= v.t1; s += ts) ctx.fillText(tickLabel(s, ts), X(T_ORIGIN + s * 1e9), h - 8);
    ctx.save(); ctx.beginPath(); ctx.rect(CM.l, CM.t, pw, ph); ctx.clip();
    for (const d of data) {
      const y = pick(d);
      ctx.strokeStyle = LINE[d.k]; ctx.lineWidth = 1.3; ctx.beginPath();
      let prevEnd = -Infinity;
      for (let s = 0; s < d.sp.snaps; s++) {
        if (d.S.t1[s] < v.t0 || d.S.t0[s] > v.t1) continue;
        const xa = X(d.S.t0[s]), xb = X(d.S.t1[s]), yy = Y(y[s]);
        // a hole between snapshots (lost snapshots, another run) breaks the line
        if (d.S.t0[s] > prevEnd + 1) ctx.moveTo(xa, yy); else ctx.lineTo(xa, yy);
        ctx.lineTo(xb, yy);
        prevEnd = d.S.t1[s];
      }
      ctx.stroke();
    }
    if (API._cursorT !== undefined) { ctx.strokeStyle = '#888'; ctx.beginPath(); ctx.moveTo(X(API._cursorT), CM.t); ctx.lineTo(X(API._cursorT), CM.t + ph); ctx.stroke(); }
    if (cv._brush) { ctx.fillStyle = 'rgba(30,90,200,.2)'; ctx.fillRect(Math.min(cv._brush[0], cv._brush[1]), CM.t, Math.abs(cv._brush[1] - cv._brush[0]), ph); }
    ctx.restore();
    if (data.length > 1) { ctx.textAlign = 'left'; data.forEach((d, k) => { ctx.fillStyle = LINE[d.k]; ctx.fillText(d.k.toUpperCase(), CM.l + 6 + 16 * k, CM.t + 10); }); }
    cv._map = { v, pw };
  }
  function histChart(cv, data, v) {
    const { ctx, h, pw, ph } = chartCtx(cv);
    const bars = data.map((d) => {
      const nb = d.sp.hist.bins, out = new Float64Array(nb);
      let n = 0;
      for (let s = 0; s < d.sp.snaps; s++) {
        const mid = (d.S.t0[s] + d.S.t1[s]) / 2;
        if (mid < v.t0 || mid > v.t1) continue;
        n++;
        for (let b = 0; b < nb; b++) out[b] += d.Z.hist[s * nb + b];
      }
      if (n) for (let b = 0; b < nb; b++) out[b] /= n;
      return { d, out };
    });
    let ymax = 0;
    for (const b of bars) for (const y of b.out) ymax = Math.max(ymax, y);
    ymax = ymax > 0 ? ymax * 1.08 : 1;
    const nb = data[0].sp.hist.bins, width = data[0].sp.hist.width;
    const bw = pw / nb;
    ctx.strokeStyle = '#bbb'; ctx.strokeRect(CM.l - 0.5, CM.t - 0.5, pw + 1, ph + 1);
    bars.forEach((b, k) => {
      ctx.fillStyle = LINE[b.d.k]; ctx.globalAlpha = bars.length > 1 ? 0.55 : 0.9;
      for (let i = 0; i < nb; i++) {
        const y = b.out[i] / ymax * ph;
        ctx.fillRect(CM.l + i * bw + (bars.length > 1 ? k * bw / 2 : 1), CM.t + ph - y, Math.max(1, (bars.length > 1 ? bw / 2 : bw - 2)), y);
      }
      ctx.globalAlpha = 1;
    });
    ctx.fillStyle = '#444'; ctx.textAlign = 'right';
    for (let k = 0; k <= 3; k++) { const y = ymax * k / 3; ctx.fillText(fmtBytes(y), CM.l - 4, CM.t + ph - y / ymax * ph + 3); }
    ctx.textAlign = 'center';
    const step = Math.max(1, Math.ceil(nb / 10));
    for (let i = 0; i < nb; i += step) ctx.fillText(width === 1 ? String(i) : fmtNum(i * width, 3), CM.l + (i + 0.5) * bw, h - 8);
    API._hist = bars.map((b) => Array.from(b.out));
  }
  function bindChart(cv) {
    let start = null;
    cv.addEventListener('mousedown', (ev) => { const r = cv.getBoundingClientRect(); start = ev.clientX - r.left; cv._brush = [start, start]; });
    cv.addEventListener('mousemove', (ev) => {
      const r = cv.getBoundingClientRect(), x = ev.clientX - r.left;
      if (start !== null) { cv._brush[1] = x; drawCharts(); return; }
      if (!cv._map) return;
      const { v, pw } = cv._map;
      API._cursorT = v.t0 + (x - CM.l) / pw * (v.t1 - v.t0);
      drawCharts(); panels.forEach((P) => P.grid && draw(P, plotRect(P), P.grid.D, P.grid));
    });
    cv.addEventListener('mouseup', () => {
      if (start === null) return;
      const [a, b] = cv._brush; start = null; cv._brush = null;
      if (Math.abs(b - a) < 3 || !cv._map) { drawCharts(); return; }
      const { v, pw } = cv._map;
      const t0 = v.t0 + (Math.min(a, b) - CM.l) / pw * (v.t1 - v.t0), t1 = v.t0 + (Math.max(a, b) - CM.l) / pw * (v.t1 - v.t0);
      state.view = Object.assign({}, state.view, { t0: Math.max(t0, fullTime()[0]), t1: Math.min(t1, fullTime()[1]) });
      renderAll();
    });
    cv.addEventListener('dblclick', () => { const f = fullTime(); state.view = Object.assign({}, state.view, { t0: f[0], t1: f[1] }); renderAll(); });
  }

  // ------------------------------------------------------------------ controls
  function syncInputs() {
    const v = state.view;
    document.getElementById('t-from').value = fmtNum((v.t0 - T_ORIGIN) / 1e9, 7);
    document.getElementById('t-to').value = fmtNum((v.t1 - T_ORIGIN) / 1e9, 7);
    document.getElementById('a-from').value = hex(v.a0);
    document.getElementById('a-to').value = hex(v.a1);
  }
  function applyInputs() {
    const ids = ['t-from', 't-to', 'a-from', 'a-to'];
    const el = ids.map((i) => document.getElementById(i));
    const t0 = Number(el[0].value) * 1e9 + T_ORIGIN, t1 = Number(el[1].value) * 1e9 + T_ORIGIN;
    const a0 = parseAddr(el[2].value), a1 = parseAddr(el[3].value);
    const bad = [!(Number.isFinite(t0)), !(Number.isFinite(t1)) || t1 <= t0, Number.isNaN(a0), Number.isNaN(a1) || a1 <= a0];
    el.forEach((e, k) => e.classList.toggle('bad', bad[k]));
    if (bad.some((b) => b)) { status('time range and address range need from < to'); return Promise.resolve(); }
    return API.setView({ t0, t1, a0, a1 });
  }
  function resetView() {
    const sp = spaceOf('a', state.key);
    state.view = { t0: sp.t0, t1: sp.t1, a0: addrOfX(sp, sp.view[0]), a1: addrOfX(sp, sp.view[1]) };
    const f = fullTime(); state.view.t0 = f[0]; state.view.t1 = f[1];
    return renderAll();
  }
  function fullView() {
    const sp = spaceOf('a', state.key), f = fullTime();
    state.view = { t0: f[0], t1: f[1], a0: sp.segS[0], a1: sp.segE[sp.segE.length - 1] };
    return renderAll();
  }
  function buildControls() {
    const lb = document.getElementById('layer-buttons');
    const names = { a: 'A', b: 'B', diff: 'B − A' };
    for (const id of Object.keys(LAYERS)) {
      const b = document.createElement('button');
      b.textContent = names[id] + (id !== 'diff' ? ': ' + LAYERS[id].info.name : '');
      b.dataset.layer = id;
      b.addEventListener('click', () => API.setLayer(id));
      lb.appendChild(b);
    }
    if (LAYERS.b) document.getElementById('sbs-wrap').hidden = false;
    document.getElementById('sbs').addEventListener('change', (e) => API.setSideBySide(e.target.checked));
    const sel = document.getElementById('space');
    for (const sp of A.spaces) { const o = document.createElement('option'); o.value = sp.key; o.textContent = sp.label; sel.appendChild(o); }
    sel.addEventListener('change', () => API.setSpace(Number(sel.value)));
    document.getElementById('scale').addEventListener('change', (e) => { state.scale = e.target.value; renderAll(); });
    document.getElementById('apply').addEventListener('click', applyInputs);
    for (const id of ['t-from', 't-to', 'a-from', 'a-to']) document.getElementById(id).addEventListener('keydown', (e) => { if (e.key === 'Enter') applyInputs(); });
    document.getElementById('reset').addEventListener('click', resetView);
    document.getElementById('full').addEventListener('click', fullView);
    const zoom = (f) => { const P = panels[0], D = panelDisplay(P); const tc = (D.t0 + D.t1) / 2, xc = (D.x0 + D.x1) / 2; setDisplayView(P, tc - (tc - D.t0) * f, tc + (D.t1 - tc) * f, xc - (xc - D.x0) * f, xc + (D.x1 - xc) * f); };
    document.getElementById('zin').addEventListener('click', () => zoom(0.5));
    document.getElementById('zout').addEventListener('click', () => zoom(2));
    const fl = document.getElementById('filters');
    const group = (title, items, key, onChange) => {
      const fs = document.createElement('fieldset');
      const lg = document.createElement('legend'); lg.textContent = title; fs.appendChild(lg);
      items.forEach((it) => {
        const lab = document.createElement('label'), cb = document.createElement('input');
        cb.type = 'checkbox'; cb.checked = true; cb.dataset.value = JSON.stringify(it.value); cb.dataset.group = key;
        cb.addEventListener('change', onChange);
        lab.appendChild(cb); lab.append(' ' + it.label);
        if (it.color) { const sw = document.createElement('span'); sw.className = 'sw'; sw.style.background = it.color; lab.appendChild(sw); }
        fs.appendChild(lab);
      });
      fl.appendChild(fs);
    };
    const readGroup = (key) => {
      const cbs = [...fl.querySelectorAll(`input[data-group="${key}"]`)];
      if (cbs.every((c) => c.checked)) return null;
      return new Set(cbs.filter((c) => c.checked).map((c) => JSON.parse(c.dataset.value)));
    };
    const onF = () => { for (const k of ['events', 'pids', 'levels', 'schemes']) state.filters[k] = readGroup(k); renderAll(); };
    if (META.samples && META.samples.n) {
      state.showSamples = true;
      group('samples', [{ label: `show (${META.samples.n.toLocaleString()} of ${META.samples.inside.toLocaleString()})`, value: 1 }], 'show-samples', (e) => { state.showSamples = e.target.checked; renderAll(); });
      group('event', META.samples.events.map((e, k) => ({ label: e, value: e, color: EV_COLORS[k % EV_COLORS.length] })), 'events', onF);
      if (META.samples.pids.length > 1) group('pid', META.samples.pids.slice(0, 40).map((p) => ({ label: String(p), value: p })), 'pids', onF);
      if (META.samples.levels.length > 1 || META.samples.levels[0]) group('memory level', META.samples.levels.map((l) => ({ label: l || '(none)', value: l })), 'levels', onF);
    }
    if (META.damos && META.damos.n) {
      state.showDamos = true;
      group('DAMOS', [{ label: `show (${META.damos.n.toLocaleString()})`, value: 1 }], 'show-damos', (e) => { state.showDamos = e.target.checked; renderAll(); });
      group('scheme', META.damos.schemes.map((s, k) => ({ label: String(s), value: s, color: SCHEME_COLORS[k % SCHEME_COLORS.length] })), 'schemes', onF);
    }
    if (META.truth) {
      const fs = document.createElement('fieldset');
      fs.innerHTML = '<legend>truth (strip right of the heatmap)</legend>';
      for (const [k, c] of Object.entries(TRUTH_COLORS)) { const s = document.createElement('span'); s.innerHTML = `<span class="sw" style="background:${c}"></span> ${k} `; fs.appendChild(s); }
      fl.appendChild(fs);
    }
    // legend
    const lg = document.createElement('canvas'); lg.width = 160; lg.height = 10;
    const lctx = lg.getContext('2d');
    for (let x = 0; x < 160; x++) { const i = Math.floor(x / 159 * 255) * 3; lctx.fillStyle = `rgb(${HEAT[i]},${HEAT[i + 1]},${HEAT[i + 2]})`; lctx.fillRect(x, 0, 1, 10); }
    const leg = document.getElementById('legend');
    leg.append('nr_accesses above 0 ');
    leg.appendChild(lg);
    leg.append(' up to the largest possible' + (META.diff ? '; difference B − A: blue where B is lower, red where higher, grey: not covered by both' : ''));
  }
  function header() {
    const src = document.getElementById('sources');
    const parts = [];
    for (const id of ['a', 'b']) {
      const L = LAYERS[id]; if (!L) continue;
      const i = L.info;
      parts.push(`${id.toUpperCase()}: ${i.name} — ${i.rows.toLocaleString()} region rows, ${L.spaces.length} space(s)` +
        (i.sample_us ? `, sample ${i.sample_us} µs, aggr ${i.aggr_us} µs` : ''));
    }
    if (META.samples) parts.push(`samples: ${META.samples.trace}`);
    if (META.damos) parts.push(`DAMOS: ${META.damos.name}, ${META.damos.total.toLocaleString()} applications`);
    if (META.truth) parts.push(`truth: ${META.truth.name}, ${META.truth.n} ranges`);
    src.textContent = parts.join(' · ');
    const ul = document.getElementById('notes');
    for (const n of META.notes) { const li = document.createElement('li'); li.textContent = n; ul.appendChild(li); }
    document.getElementById('generator').textContent = 'tracedamon report html (format ' + META.format + ')';
    if (META.diff) metricsTable(META.diff.metrics);
  }
  function metricsTable(m) {
    document.getElementById('metrics').hidden = false;
    const body = document.getElementById('metrics-body');
    // one small table per top-level group; the accuracy figures first (heat, hot, wss,
    // age, regions), then what was compared (a, b, compared, grid, alignment, ...)
    const FIRST = ['heat', 'hot', 'wss', 'age', 'regions'];
    const rank = (g) => (FIRST.includes(g) ? FIRST.indexOf(g) : g === 'tracedamon' ? 99 : FIRST.length);
    const groups = Object.entries(m).map((e, i) => [rank(e[0]), i, e]).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    for (const [, , [group, val]] of groups) {
      const tbl = document.createElement('table');
      const cap = document.createElement('caption'); cap.textContent = group; tbl.appendChild(cap);
      const add = (k, v) => {
        const tr = document.createElement('tr');
        const a = document.createElement('td'); a.className = 'k'; a.textContent = k.slice(group.length + 1) || group;
        const b = document.createElement('td'); b.textContent = v; b.dataset.key = k;
        tr.appendChild(a); tr.appendChild(b); tbl.appendChild(tr);
      };
      const walk = (prefix, o, depth) => {
        if (o === null || typeof o !== 'object') { add(prefix, typeof o === 'number' ? fmtNum(o) : String(o)); return; }
        if (Array.isArray(o)) { if (o.length <= 8 && o.every((x) => x === null || typeof x !== 'object')) add(prefix, o.map((x) => fmtNum(x)).join(', ')); else add(prefix, `[${o.length} items]`); return; }
        if (depth > 5) return;
        for (const [k, v] of Object.entries(o)) walk(prefix + '.' + k, v, depth + 1);
      };
      walk(group, val, 0);
      body.appendChild(tbl);
    }
  }

  // ------------------------------------------------------------------ rendering all
  let renderChain = Promise.resolve();
  function renderAll() {
    setPanels();
    for (const b of document.querySelectorAll('#layer-buttons button')) b.classList.toggle('on', !state.sbs && b.dataset.layer === state.layer);
    syncInputs();
    const p = Promise.all(panels.map(renderPanel)).then(drawCharts).then(() => {
      status(panels.map((P) => P.grid ? `${P.layer.toUpperCase()}: ${P.grid.mode}${P.grid.mode === 'tiles' ? ` (level ${P.grid.level}; ${P.grid.est.toLocaleString()} rows in view: zoom in for exact regions)` : P.grid.mode === 'exact' ? ` (${P.grid.rows.toLocaleString()} regions drawn)` : ''}` : '').join(' · '));
    });
    renderChain = p;
    return p;
  }

  // ------------------------------------------------------------------ API (tests and scripts)
  Object.assign(API, {
    getView() { const P = panels[0], D = panelDisplay(P); return Object.assign({}, state.view, { x0: D.x0, x1: D.x1, layer: state.layer, key: state.key, sbs: state.sbs }); },
    setView(v) { state.view = Object.assign({}, state.view, v); return renderAll(); },
    setLayer(id) { if (!LAYERS[id]) throw new Error('no layer ' + id); state.layer = id; state.sbs = false; document.getElementById('sbs').checked = false; return renderAll(); },
    setSideBySide(on) { state.sbs = !!on && !!LAYERS.b; document.getElementById('sbs').checked = state.sbs; return renderAll(); },
    setSpace(key) { state.key = key; document.getElementById('space').value = key; return resetView(); },
    setScale(s) { state.scale = s; return renderAll(); },
    setFilter(f) {
      for (const k of ['events', 'pids', 'levels', 'schemes']) if (k in f) state.filters[k] = f[k] === null ? null : new Set(f[k]);
      return renderAll();
    },
    showSamples(on) { state.showSamples = on; return renderAll(); },
    resetView, fullView,
    async rows(layer, key) {
      const sp = spaceOf(layer, key), S = await snaps(sp);
      const out = { snapshot: [], time_ns: [], start: [], end: [], nr_accesses: [], age: [] };
      for (let ci = 0; ci < sp.chunks.length; ci++) {
        const R = await chunkRows(sp, ci);
        for (let r = 0; r < R.n; r++) {
          out.snapshot.push(S.snapshot[R.snap[r]]); out.time_ns.push(S.t1[R.snap[r]]);
          out.start.push(R.start[r]); out.end.push(R.end[r]); out.nr_accesses.push(R.nr[r]); out.age.push(R.age[r] < 0 ? null : R.age[r]);
        }
      }
      return out;
    },
    async series(layer, key) { const sp = spaceOf(layer, key), Z = await series(sp), S = await snaps(sp); return { wss: Array.from(Z.wss), regions: Array.from(Z.regions), t1: Array.from(S.t1) }; },
    describeAt(t, addr, k = 0) { const P = panels[k], sp = panelSpace(P); const x = xOfAddr(sp, addr, 'lo'); return describe(P, t, x, []); },
    clientPoint(t, addr, k = 0) {
      const P = panels[k], D = panelDisplay(P), R = plotRect(P), r = P.cv.getBoundingClientRect();
      const x = xOfAddr(D.sp, addr, 'lo');
      return { x: r.left + M.l + (t - D.t0) / (D.t1 - D.t0) * R.pw, y: r.top + M.t + (D.x1 - x) / (D.x1 - D.x0) * R.ph };
    },
    plotBox(k = 0) { const P = panels[k], R = plotRect(P), r = P.cv.getBoundingClientRect(); return { left: r.left + M.l, top: r.top + M.t, width: R.pw, height: R.ph, W: R.W, H: R.H }; },
    grid(k = 0) { const g = panels[k].grid; return { W: g.W, H: g.H, mode: g.mode, level: g.level || null, vals: Array.from(g.vals, (v) => (Number.isNaN(v) ? null : v)), t0: g.D.t0, t1: g.D.t1, x0: g.D.x0, x1: g.D.x1 }; },
    addrToX(addr, k = 0) { return xOfAddr(panelSpace(panels[k]), addr, 'lo'); },
    samplesDrawn() { return API._samplesDrawn || 0; },
    damosDrawn() { return API._damosDrawn || 0; },
    hist() { return API._hist; },
    rendered() { return renderChain; },
    setExactLimit(n) { EXACT_MAX_ROWS = n; return renderAll(); },
  });

  // ------------------------------------------------------------------ start
  async function start() {
    header();
    buildControls();
    bindChart(charts.wss); bindChart(charts.regions);
    await loadOverlays();
    MARKS.controls = performance.now();
    await resetView();
    window.addEventListener('resize', () => renderAll());
    API.ready = true;
    API.readyMs = performance.now();
    document.body.dataset.ready = '1';
  }
  start().catch((e) => { API.errors.push(String(e && e.stack || e)); status('error: ' + e); console.error(e); });
})();

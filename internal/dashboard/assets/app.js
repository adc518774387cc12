// ferry's dashboard: draws /api/flow, /api/history and /api/errors, then
// follows /api/events. No library, no build step; charts are drawn on canvas.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat('en-US');
  const MAX_POINTS = 3600;
  const PHASES = {
    plan: 'PLANNING', copy: 'COPYING', cdc: 'STREAMING', run: 'RUNNING QUERIES', wait: 'WAITING FOR THE NEXT RUN', cutover: 'CUTOVER', paused: 'PAUSED', done: 'DONE', stopped: 'STOPPED', failed: 'FAILED',
  };
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();

  let flow = null;      // the last /api/flow document
  let points = [];      // the history the charts draw
  let connected = false;

  // ---- formatting ----
  const int = (n) => nf.format(Math.round(n || 0));
  function compact(n) {
    n = n || 0;
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + 'k';
    if (a >= 10 || n === 0) return String(Math.round(n));
    return n.toFixed(1);
  }
  function bytes(n) {
    n = n || 0;
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(Math.abs(n) >= 100 ? 0 : 1)) + ' ' + units[i];
  }
  function duration(sec) {
    if (sec == null || !isFinite(sec)) return '–';
    sec = Math.max(0, Math.round(sec));
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    if (h > 0) return h + 'h ' + String(m).padStart(2, '0') + 'm';
    if (m > 0) return m + 'm ' + String(s).padStart(2, '0') + 's';
    return s + 's';
  }
  function lagText(sec) {
    if (sec == null || sec < 0) return '–';
    if (sec < 1) return Math.round(sec * 1000) + ' ms';
    if (sec < 60) return sec.toFixed(1) + ' s';
    return duration(sec);
  }
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  function setText(id, text) { const el = $(id); if (el && el.textContent !== text) el.textContent = text; }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // ---- the flow ----
  function render(f) {
    flow = f;
    const phase = f.phase || 'plan';
    const badge = $('phase');
    badge.className = 'badge phase-' + phase;
    badge.textContent = PHASES[phase] || phase.toUpperCase();
    document.title = (PHASES[phase] || phase) + ' · ' + f.flow + ' · ferry';
    setText('flow-name', f.flow);
    setText('route', f.source + '  →  ' + f.destination);

    const pct = f.percent;
    setText('overall-percent', pct == null ? '–' : (pct >= 100 ? '100%' : pct.toFixed(pct >= 10 ? 0 : 1) + '%'));
    const bar = $('overall-bar');
    bar.style.width = (pct == null ? (phase === 'cdc' || phase === 'cutover' || phase === 'done' ? 100 : 0) : pct) + '%';
    bar.className = 'fill' + (phase === 'failed' ? ' failed' : phase === 'stopped' ? ' stopped' :
      (pct >= 100 || phase === 'done') ? ' done' : '') + (f.running && phase === 'copy' ? ' running' : '');

    setText('headline', headline(f));
    const sub = $('subline');
    if (f.error) {
      sub.className = 'subline error';
      sub.textContent = f.error;
    } else {
      sub.className = 'subline';
      sub.textContent = subline(f);
    }

    setText('elapsed', duration(f.elapsed_seconds));
    setText('started', 'since ' + new Date(f.started).toLocaleString([], { hour12: false }));
    if (f.eta_seconds != null) {
      setText('eta', duration(f.eta_seconds));
      setText('eta-sub', 'at the last 15 s speed');
    } else {
      setText('eta', phase === 'copy' ? 'estimating…' : (pct >= 100 ? 'copy done' : '–'));
      setText('eta-sub', phase === 'cdc' ? 'CDC runs until stopped' : '\u00a0');
    }
    const rows = $('overall-rows');
    rows.dataset.value = f.rows_copied;
    setText('overall-rows', int(f.rows_copied));
    setText('overall-rows-sub', 'of ~' + int(f.rows_estimated) + ' estimated · ' + bytes(f.bytes_copied));
    if (f.running && phase === 'copy') {
      setText('rows-rate', compact(f.rows_per_sec) + ' rows/s');
      setText('bytes-rate', bytes(f.bytes_per_sec) + '/s');
    } else {
      // After the copy: its average speed, from the history.
      const avg = copyAverage();
      setText('rows-rate', avg ? compact(avg.rows) + ' rows/s' : '–');
      setText('bytes-rate', avg ? 'copy average · ' + bytes(avg.bytes) + '/s' : (phase === 'plan' ? 'starts after the plan' : '\u00a0'));
    }
    const ch = $('changes-received');
    ch.dataset.value = f.cdc.changes_received;
    setText('changes-received', int(f.cdc.changes_received));
    setText('changes-rate', f.running && phase === 'cdc' ? compact(f.changes_per_sec) + ' changes/s' :
      (f.mode === 'snapshot' ? 'no CDC in snapshot mode' : int(f.cdc.changes_applied) + ' applied'));
    setText('lag', lagText(f.cdc.lag_seconds));
    setText('lag-sub', f.cdc_lag_bytes != null ? bytes(f.cdc_lag_bytes) + ' behind' :
      (f.cdc.position ? 'at ' + f.cdc.position : (f.mode === 'snapshot' ? 'no CDC in snapshot mode' : 'starts after the copy')));

    renderTables(f);
    renderDetails(f);
    renderWorkers(f);
    renderQuery(f);
    setText('version', 'ferry ' + (f.version || ''));
  }

  // A query flow (f.query): its runs, each query's watermark, and the
  // rows of the last run and of the one under way, per query.
  function renderQuery(f) {
    const card = $('query-card');
    const q = f.query;
    if (!q) { card.hidden = true; return; }
    card.hidden = false;
    setText('query-summary', int(q.runs) + (q.runs === 1 ? ' run' : ' runs') +
      (q.next_run && f.phase === 'wait' ? ' · next at ' + new Date(q.next_run).toLocaleTimeString([], { hour12: false }) : ''));
    const marks = Object.keys(q.marks || {}).sort();
    kv($('query-marks'), marks.length ? marks.map((t) => ['watermark ' + t, q.marks[t], 'mono']) : [['watermark', 'none yet']]);
    const box = $('query-runs');
    box.replaceChildren();
    for (const [label, r] of [['run under way', q.current_run], ['last run', q.last_run]]) {
      if (!r) continue;
      const dl = el('dl', 'kv');
      kv(dl, [[label + ' #' + r.number, int(r.rows) + ' rows'], ...(r.tables || []).map((t) =>
        [t.table, int(t.rows) + ' rows · ' + (t.from || '–') + ' → ' + (t.to || '–') + ' · ranges ' + t.ranges_done + '/' + t.ranges +
          (t.resumed ? ' · resumed' : '') + (t.retried_ranges ? ' · ' + t.retried_ranges + ' retried' : ''), 'mono'])]);
      box.append(dl);
    }
  }

  function copyAverage() {
    const copy = points.filter((p) => p.phase === 'copy');
    if (copy.length < 2) return null;
    const a = copy[0], b = points[points.indexOf(copy[copy.length - 1]) + 1] || copy[copy.length - 1];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) return null;
    return { rows: (b.rows_copied - a.rows_copied) / dt, bytes: (b.bytes_copied - a.bytes_copied) / dt };
  }

  function headline(f) {
    const n = f.tables.length;
    const tables = n + (n === 1 ? ' table' : ' tables');
    switch (f.phase) {
      case 'plan':
        return f.running ? 'Planning: reading the source\'s tables and splitting them into partitions' : 'Ended while planning';
      case 'copy':
        return 'Copying ' + tables + ': ' + int(f.rows_copied) + ' of ~' + int(f.rows_estimated) + ' rows' +
          (f.eta_seconds != null ? ', about ' + duration(f.eta_seconds) + ' left' : '');
      case 'cdc': {
        const lag = f.cdc.lag_seconds;
        return 'Copy complete · streaming changes' + (lag != null && lag >= 0 ? ', ' + lagText(lag) + ' behind the source' : '');
      }
      case 'run':
        return 'Query run #' + ((f.query && f.query.current_run && f.query.current_run.number) || '?') + ' under way';
      case 'wait':
        return 'Waiting for the next query run' + (f.query && f.query.last_run ? ' · the last one wrote ' + int(f.query.last_run.rows) + ' rows' : '');
      case 'cutover': {
        const c = f.cutover || {};
        return 'Cutover: ' + (c.step === 'drain' ? 'applying every change up to the source\'s position at the request' :
          c.step ? 'step ' + c.step : 'finishing');
      }
      case 'done':
        if (f.cutover && f.cutover.done) return 'Cut over in ' + duration(f.elapsed_seconds) + ' at position ' + (f.cutover.position || 'none') +
          ': ' + (f.cutover.steps || []).map((s) => s.name + ' ' + s.seconds.toFixed(1) + ' s').join(', ');
        return 'Done in ' + duration(f.elapsed_seconds) + ': ' + int(f.rows_copied) + ' rows copied' +
          (f.cdc.changes_received > 0 ? ', ' + int(f.cdc.changes_received) + ' changes applied' : '');
      case 'paused':
        return 'Paused: no new partition starts, change data capture checkpointed and waits (ferry flow resume, or Resume in the fleet view)';
      case 'stopped':
        return 'Stopped after ' + duration(f.elapsed_seconds) + ': run the same command again to resume';
      case 'failed':
        return 'Failed after ' + duration(f.elapsed_seconds);
    }
    return f.phase;
  }

  function subline(f) {
    const parts = [];
    if (f.partitions > 0) parts.push(f.partitions_done + ' of ' + f.partitions + ' partitions done' +
      (f.partitions_running > 0 ? ', ' + f.partitions_running + ' running' : ''));
    parts.push('mode ' + f.mode);
    if (f.cutover) parts.push('cutover requested ' + new Date(f.cutover.requested).toLocaleTimeString() +
      ((f.cutover.steps || []).length ? ', done: ' + f.cutover.steps.map((s) => s.name).join(', ') : ''));
    if ((f.phase === 'cdc' || f.phase === 'cutover') && f.cdc.position) parts.push('position ' + f.cdc.position + (f.cdc.head ? ' of ' + f.cdc.head : ''));
    if (!f.running) parts.push('ferry has finished; this page shows the final state');
    return parts.join(' · ');
  }

  const tableRows = new Map();
  function renderTables(f) {
    const box = $('tables');
    if (f.tables.length === 0) return;
    const empty = box.querySelector('.empty');
    if (empty) empty.remove();
    let done = 0;
    for (const t of f.tables) {
      let r = tableRows.get(t.table);
      if (!r) {
        r = { row: el('div', 'trow') };
        r.name = el('div', 'tname');
        r.nameText = el('span', 'name', t.table);
        r.name.append(r.nameText);
        if (t.destination && t.destination !== t.table) r.name.append(el('span', 'dest', '→ ' + t.destination));
        r.chip = el('span', 'chip');
        r.name.append(r.chip);
        r.bar = el('div', 'tbar');
        r.fill = el('div', 'fill');
        r.pct = el('span', 'tpct');
        r.bar.append(r.fill, r.pct);
        r.nums = el('div', 'tnums');
        r.parts = el('div', 'tparts');
        r.segs = el('div', 'segs');
        r.partsText = el('span');
        r.parts.append(r.partsText, r.segs);
        r.meta = el('div', 'tmeta');
        r.meta.append(r.nums, r.parts);
        r.row.append(r.name, r.bar, r.meta);
        box.append(r.row);
        tableRows.set(t.table, r);
      }
      if (t.done) done++;
      const pct = t.done ? 100 : (t.rows_estimated > 0 ? Math.min(99.9, 100 * t.rows_copied / t.rows_estimated) : 0);
      r.fill.style.width = pct + '%';
      r.fill.className = 'fill' + (t.done ? ' done' : '') + (!t.done && t.partitions_running > 0 && f.running ? ' running' : '');
      r.pct.textContent = (pct >= 100 ? 100 : pct.toFixed(pct >= 10 ? 0 : 1)) + '%';
      const state = t.done ? 'done' : (t.partitions_running > 0 ? 'copying' : 'waiting');
      r.chip.className = 'chip ' + state;
      r.chip.textContent = state;
      r.nums.textContent = int(t.rows_copied) + ' / ~' + int(t.rows_estimated) + ' rows · ' +
        bytes(t.bytes_copied) + ' / ~' + bytes(t.bytes_estimated) +
        (t.resnapshot ? ' · incremental snapshot: ' + int(t.resnapshot.rows) + ' rows copied' + (t.resnapshot.done ? ', done' : ' so far') : '') +
        (t.verify ? ' · verified ' + int(t.verify.passes) + 'x, ' + int(t.verify.rows_checked) + ' rows checked: ' +
          (t.verify.error ? 'failed: ' + t.verify.error :
            (t.verify.different_keys > 0 ? t.verify.different_keys + ' different' : 'no difference') +
            (t.verify.pending_keys > 0 ? ', ' + t.verify.pending_keys + ' pending' : '') +
            (t.verify.rechecking_keys > 0 ? ', ' + t.verify.rechecking_keys + ' re-checking' : '')) : '');
      const pending = Math.max(0, t.partitions - t.partitions_done - t.partitions_running);
      r.partsText.textContent = t.partitions_done + '/' + t.partitions + ' partitions' + (t.partitions_running > 0 ? ' · ' + t.partitions_running + ' running' : '');
      r.parts.title = t.partitions_done + ' done, ' + t.partitions_running + ' running, ' + pending + ' waiting';
      drawSegments(r.segs, t.partitions_done, t.partitions_running, t.partitions);
    }
    setText('tables-summary', done + ' of ' + f.tables.length + ' copied');
  }

  function drawSegments(box, done, running, total) {
    const key = done + '/' + running + '/' + total;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren();
    if (total <= 30) {
      box.className = 'segs';
      for (let i = 0; i < total; i++) box.append(el('i', i < done ? 'done' : i < done + running ? 'running' : ''));
      return;
    }
    box.className = 'segs stack';
    const d = el('i', 'done'); d.style.width = (100 * done / total) + '%';
    const r = el('i', 'running'); r.style.width = (100 * running / total) + '%';
    box.append(d, r);
  }

  function kv(dl, pairs) {
    dl.replaceChildren();
    for (const [k, v, cls] of pairs) {
      dl.append(el('dt', null, k));
      dl.append(el('dd', cls || null, v));
    }
  }

  function renderDetails(f) {
    kv($('details'), [
      ['From', f.source, 'mono'],
      ['To', f.destination, 'mono'],
      ['Source can', abilities(f.abilities && f.abilities.source)],
      ['Destination can', abilities(f.abilities && f.abilities.destination)],
      ['Mode', f.mode + (f.coordinator ? ' · ' + f.coordinator + ' coordinator' : '')],
      ['Write batches', onWorkers(f) ? 'counted by each worker (its /metrics)' : int(f.write_batches) + ' · avg ' + f.write_latency_avg_ms.toFixed(1) + ' ms · max ' + f.write_latency_max_ms.toFixed(1) + ' ms'],
      ['Resumed', f.resumed_partitions + ' partitions from a cursor · ' + f.skipped_partitions + ' already done'],
      ['Source load', guestText(f)],
      ['State', f.state_path || '–', 'mono'],
    ]);
    const c = f.cdc;
    if (f.mode === 'snapshot') {
      kv($('cdc'), [['', 'Not in this flow: mode snapshot copies without change data capture.']]);
      return;
    }
    const commit = c.last_commit && !c.last_commit.startsWith('0001-') ? new Date(c.last_commit).toLocaleTimeString([], { hour12: false }) : '–';
    kv($('cdc'), [
      ['Position', (c.position || '–') + (c.head ? '  (until ' + c.head + ')' : ''), 'mono'],
      ['Changes', int(c.changes_received) + ' received · ' + int(c.changes_applied) + ' applied after folding'],
      ['Apply batches', onWorkers(f) ? 'counted by each worker (its /metrics)' : int(f.apply_batches) + ' · avg ' + f.apply_latency_avg_ms.toFixed(1) + ' ms'],
      ['Lag', lagText(c.lag_seconds) + (f.cdc_lag_bytes != null ? ' · ' + bytes(f.cdc_lag_bytes) : '') + ' · last commit ' + commit],
      ['Slot', slotText(c)],
      ['Sequences', sequencesText(f.sequences)],
      ['Schema changes', schemaText(c)],
    ]);
  }

  // guestText shows what holds the table reads back for the source's sake:
  // --max-replica-lag's backoff and --max-rate's bucket.
  function guestText(f) {
    const parts = [];
    const b = f.backoff;
    if (b) {
      parts.push((b.backing_off ? 'BACKING OFF: replicas lag ' : 'replicas lag ') + b.replica_lag_seconds.toFixed(1) + ' s (limit ' + b.max_replica_lag_seconds.toFixed(1) + ' s) · paused ' + b.seconds_total.toFixed(0) + ' s in all');
    }
    const r = f.max_rate;
    if (r) parts.push('--max-rate: ' + int(r.passed) + ' ' + r.unit + ' through · waited ' + r.waited_seconds.toFixed(1) + ' s');
    return parts.length ? parts.join(' · ') : 'no limit';
  }

  // slotText shows the log the source keeps for the flow against its limit
  // (a PostgreSQL slot's WAL and max_slot_wal_keep_size).
  function slotText(c) {
    if (c.slot_retained_bytes == null) return '–';
    let t = bytes(c.slot_retained_bytes) + ' retained';
    if (c.slot_limit_bytes != null) t += ' of ' + bytes(c.slot_limit_bytes) + ' allowed · ' + bytes(Math.max(c.slot_safe_bytes, 0)) + ' left';
    if (c.slot_near_limit) t += ' · NEAR THE LIMIT: let CDC catch up or raise max_slot_wal_keep_size';
    return t;
  }

  // schemaText lists the schema changes and truncates CDC followed, the
  // latest first.
  function schemaText(c) {
    const ev = c.schema_events || [];
    if (!c.schema_changes) return 'none followed in this run';
    const at = (e) => new Date(e.at).toLocaleTimeString([], { hour12: false });
    return int(c.schema_changes) + ' followed · ' + ev.slice().reverse().slice(0, 5).map((e) => at(e) + ' ' + e.table + ': ' + e.change).join(' · ');
  }

  // sequencesText says when the source's sequences were last copied to the
  // destination (--sync-sequences, cutover), and how that went.
  function sequencesText(s) {
    if (!s) return 'not copied yet (ferry sync --sync-sequences copies them during CDC)';
    const at = s.last_copied ? new Date(s.last_copied).toLocaleTimeString([], { hour12: false }) : '–';
    let text = 'last copied ' + at + ' · ' + int(s.set) + ' set';
    if (s.missing) text += ' · ' + int(s.missing) + ' missing at the destination';
    if (s.error) text += ' · last attempt failed: ' + s.error;
    return text;
  }

  // abilities lists what a connector can do, by the names /api/flow gives
  // them (connector.Abilities); unknown until a process opened it.
  function abilities(a) {
    if (!a) return '–';
    const names = Object.keys(a).filter((k) => a[k]).map((k) => k.replace(/_/g, ' '));
    return names.length ? names.join(' · ') : 'nothing optional';
  }

  // In scale-out mode the batches are written by the workers, which count
  // them; the runner's snapshot has none.
  function onWorkers(f) { return f.coordinator === 'temporal' && !f.write_batches && !f.apply_batches; }

  // Scale-out mode will add a list of workers to /api/flow; the page shows
  // whatever it gets.
  function renderWorkers(f) {
    const card = $('workers-card');
    if (!Array.isArray(f.workers) || f.workers.length === 0) { card.hidden = true; return; }
    card.hidden = false;
    const box = $('workers');
    box.replaceChildren();
    const dl = el('dl', 'kv');
    kv(dl, f.workers.map((w) => [w.id || w.name || '?', w.task || w.status || '', 'mono']));
    box.append(dl);
  }

  // ---- errors ----
  function renderErrors(p) {
    const ul = $('errors');
    ul.replaceChildren();
    if (!p.errors.length) {
      ul.append(el('li', 'ok', '✓ No errors or warnings.'));
      setText('errors-summary', '');
      return;
    }
    for (const e of p.errors.slice().reverse()) {
      const li = el('li');
      li.append(el('span', 'when', clock(Date.parse(e.time))), el('span', 'kind ' + e.kind, e.kind));
      const where = [e.table, e.partition].filter(Boolean).join(' · ');
      li.append(el('span', 'msg', (where ? where + ': ' : '') + e.message));
      ul.append(li);
    }
    setText('errors-summary', p.total + ' in all');
  }

  // ---- charts ----
  // niceMax is the top of an axis with 4 round steps above v.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const step = v / 4;
    const p = Math.pow(10, Math.floor(Math.log10(step)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  // chart draws series [{color, values: [[t, v|null]], fmt, side}] over time.
  function chart(canvas, series, note) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = '11px system-ui, "DejaVu Sans", sans-serif';
    const shown = series.filter((s) => s.values.some((p) => p[1] != null && p[1] > 0));
    const left = 52, right = shown.some((s) => s.side === 'right') ? 56 : 12, top = 10, bottom = 22;
    const pw = w - left - right, ph = h - top - bottom;
    if (points.length < 2 || shown.length === 0) {
      g.fillStyle = color('--muted');
      g.textAlign = 'center';
      g.fillText(note || 'Waiting for data…', w / 2, h / 2);
      canvas.dataset.drawn = '0';
      return;
    }
    // The whole history (up to an hour), at least 10 seconds wide.
    const tMax = points[points.length - 1].t;
    const tMin = Math.min(points[0].t, tMax - 10000);
    const x = (t) => left + pw * (t - tMin) / (tMax - tMin);

    // Phase bands, so a change of phase is visible on the time axis.
    let bandStart = points[0].t, bandPhase = points[0].phase;
    const bands = [];
    for (const p of points) {
      if (p.phase !== bandPhase) { bands.push([bandStart, p.t, bandPhase]); bandStart = p.t; bandPhase = p.phase; }
    }
    bands.push([bandStart, tMax, bandPhase]);
    for (const [a, b, ph2] of bands) {
      if (ph2 !== 'copy' && ph2 !== 'cdc') continue;
      g.fillStyle = ph2 === 'copy' ? 'rgba(37,99,235,.05)' : 'rgba(13,148,136,.06)';
      g.fillRect(x(a), top, Math.max(1, x(b) - x(a)), ph);
      g.fillStyle = color('--muted');
      g.textAlign = 'left';
      if (x(b) - x(a) > 40) g.fillText(ph2 === 'copy' ? 'copy' : 'cdc', x(a) + 4, top + 11);
    }

    // Grid and the left axis (first shown series), right axis (the other).
    const axes = {};
    for (const s of shown) {
      if (axes[s.side]) continue;
      let m = 0;
      for (const p of s.values) if (p[1] != null && p[0] >= tMin) m = Math.max(m, p[1]);
      axes[s.side] = { max: niceMax(m * 1.05), fmt: s.fmt, color: s.color };
    }
    g.strokeStyle = '#e2e8f0';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const yy = Math.round(top + ph * i / 4) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(left + pw, yy); g.stroke();
      for (const side of ['left', 'right']) {
        const a = axes[side];
        if (!a) continue;
        g.fillStyle = a.color;
        g.textAlign = side === 'left' ? 'right' : 'left';
        g.fillText(a.fmt(a.max * (4 - i) / 4), side === 'left' ? left - 6 : left + pw + 6, yy + 4);
      }
    }
    g.fillStyle = color('--muted');
    g.textAlign = 'center';
    for (let i = 0; i <= 3; i++) {
      const t = tMin + (tMax - tMin) * i / 3;
      g.textAlign = i === 0 ? 'left' : i === 3 ? 'right' : 'center';
      g.fillText(clock(t), left + pw * i / 3, h - 6);
    }

    let drawn = 0;
    for (const s of shown) {
      const a = axes[s.side];
      const y = (v) => top + ph - ph * Math.min(v, a.max) / a.max;
      // Area under the line, then the line; a null value breaks it.
      const runs = [];
      let run = [];
      for (const p of s.values) {
        if (p[0] < tMin) continue;
        if (p[1] == null) { if (run.length) runs.push(run); run = []; continue; }
        run.push(p);
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        g.beginPath();
        r.forEach((p, i) => (i ? g.lineTo(x(p[0]), y(p[1])) : g.moveTo(x(p[0]), y(p[1]))));
        g.strokeStyle = s.color;
        g.lineWidth = 2;
        g.stroke();
        g.lineTo(x(r[r.length - 1][0]), top + ph);
        g.lineTo(x(r[0][0]), top + ph);
        g.closePath();
        g.globalAlpha = 0.12;
        g.fillStyle = s.color;
        g.fill();
        g.globalAlpha = 1;
        drawn += r.length;
      }
    }
    canvas.dataset.drawn = String(drawn);
  }

  function drawCharts() {
    const mode = flow ? flow.mode : '';
    const rateFmt = (v) => compact(v);
    chart($('chart-throughput'), [
      { color: color('--rows'), side: 'left', fmt: rateFmt, values: points.map((p) => [p.t, p.rows_per_sec]) },
      { color: color('--changes'), side: 'right', fmt: rateFmt, values: points.map((p) => [p.t, p.changes_per_sec]) },
    ], 'Waiting for the first rows…');
    chart($('chart-lag'), [
      { color: color('--lag'), side: 'left', fmt: (v) => lagText(v).replace(' ', ''), values: points.map((p) => [p.t, p.lag_seconds]) },
      { color: color('--lagbytes'), side: 'right', fmt: (v) => bytes(v), values: points.map((p) => [p.t, p.lag_bytes]) },
    ], mode === 'snapshot' ? 'No change data capture in snapshot mode' : 'No lag yet: CDC starts after the copy');
  }

  function addPoint(p) {
    if (points.length && p.t <= points[points.length - 1].t) return;
    points.push(p);
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  }

  // ---- data ----
  async function getJSON(path) {
    const r = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
    if (r.status === 401) throw new Error('This dashboard needs its token: open it as /?token=YOUR_TOKEN');
    if (!r.ok) throw new Error(path + ': ' + r.status);
    return r.json();
  }

  async function loadHistory() {
    const since = points.length ? points[points.length - 1].t : 0;
    const h = await getJSON('api/history?since=' + since);
    for (const p of h.points) addPoint(p);
    drawCharts();
  }

  async function loadErrors() {
    renderErrors(await getJSON('api/errors'));
  }

  function setConn(state, text) {
    const c = $('conn');
    c.className = 'conn ' + state;
    setText('conn-text', text);
  }

  function connect() {
    const es = new EventSource('api/events');
    es.addEventListener('open', () => {
      connected = true;
      setConn('live', 'live');
      loadHistory().catch(() => {});
    });
    es.addEventListener('point', (e) => {
      addPoint(JSON.parse(e.data));
      drawCharts();
    });
    let lastErrors = -1;
    es.addEventListener('flow', (e) => {
      const f = JSON.parse(e.data);
      render(f);
      setConn(f.running ? 'live' : 'ended', f.running ? 'live' : 'flow ended');
      if (f.errors !== lastErrors) {
        lastErrors = f.errors;
        loadErrors().catch(() => {});
      }
    });
    es.addEventListener('error', () => {
      connected = false;
      if (flow && !flow.running) setConn('ended', 'ferry exited · final state');
      else setConn('lost', 'connection lost · retrying');
    });
  }

  async function start() {
    // Opened from the fleet view (ferry dashboard): a way back to the list.
    if (/\/flows\/[^/]+\/$/.test(location.pathname)) $('back').hidden = false;
    try {
      const [f] = await Promise.all([getJSON('api/flow'), loadHistory()]);
      render(f);
      await loadErrors();
    } catch (err) {
      setText('headline', String(err.message || err));
      setConn('lost', 'not connected');
      return;
    }
    connect();
    window.addEventListener('resize', drawCharts);
  }
  start();
})();

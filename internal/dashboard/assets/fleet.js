// ferry's fleet view: lists every flow from /api/flows every two seconds,
// links to each flow's own page, and (with the dashboard's token) pauses,
// resumes, cuts over and cancels flows through POST /api/flows/NAME/ACTION.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat('en-US');
  const PHASES = {
    plan: 'PLANNING', copy: 'COPYING', cdc: 'STREAMING', cutover: 'CUTOVER', paused: 'PAUSED',
    done: 'DONE', cancelled: 'CANCELLED', failed: 'FAILED',
  };
  const BADGE = { paused: 'stopped', cancelled: 'stopped' };
  // Cutover and cancel end the flow: they ask first.
  const CONFIRM = {
    cutover: (n) => 'Cut flow ' + n + ' over? It drains to the source\'s position now, runs the finishing steps and ends. Stop the application\'s writes first.',
    cancel: (n) => 'Cancel flow ' + n + '? Its tasks stop and its replication slot and checkpoints are released.',
  };
  let control = false;
  let pending = null; // the action waiting for its confirmation

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function lagText(sec) {
    if (sec == null || sec < 0) return '–';
    if (sec < 1) return Math.round(sec * 1000) + ' ms';
    if (sec < 60) return sec.toFixed(1) + ' s';
    return Math.round(sec / 60) + ' min';
  }
  function setConn(state, text) {
    $('conn').className = 'conn ' + state;
    $('conn-text').textContent = text;
  }

  function phaseOf(f) {
    if (f.paused && f.status === 'Running') return 'paused';
    if (f.phase) return f.phase;
    return f.status === 'Completed' ? 'done' : (f.status === 'Running' ? '' : 'failed');
  }

  function row(f) {
    const tr = el('tr');
    tr.dataset.flow = f.flow;
    const phase = phaseOf(f);
    tr.dataset.phase = phase;
    const name = el('td', 'fname');
    const a = el('a', null, f.flow);
    a.href = 'flows/' + encodeURIComponent(f.flow) + '/';
    name.append(a);
    const badge = el('span', 'badge small phase-' + (BADGE[phase] || phase || 'plan'), PHASES[phase] || (phase ? phase.toUpperCase() : f.status.toUpperCase()));
    badge.classList.add('fphase');
    const ph = el('td');
    ph.append(badge);
    const prog = el('td');
    if (f.percent != null) {
      const bar = el('div', 'tbar');
      const fill = el('div', 'fill' + (f.percent >= 100 ? ' done' : ''));
      fill.style.width = f.percent + '%';
      bar.append(fill, el('span', 'tpct', (f.percent >= 100 ? 100 : f.percent.toFixed(f.percent >= 10 ? 0 : 1)) + '%'));
      prog.append(bar);
    } else prog.textContent = f.phase === '' ? '–' : 'no copy';
    const rows = el('td', 'num', f.rows_estimated ? nf.format(f.rows_copied) + ' / ~' + nf.format(f.rows_estimated) : nf.format(f.rows_copied || 0));
    const lag = el('td', 'num', lagText(f.lag_seconds));
    const health = el('td', 'health ' + (f.health || 'unknown'));
    health.append(el('span', 'chip ' + (f.health || 'unknown'), f.health || 'unknown'));
    if (f.error) health.append(el('span', 'herr', f.error));
    const workers = el('td', 'mono', (f.workers || []).join(', ') || (f.status === 'Running' ? 'none running its tasks' : '–'));
    const started = el('td', null, f.started ? new Date(f.started).toLocaleString([], { hour12: false }) : '–');
    tr.append(name, ph, prog, rows, lag, health, workers, started);
    if (control) {
      const acts = el('td', 'acts');
      if (f.status === 'Running') {
        acts.append(f.paused ? button(f.flow, 'resume', 'Resume') : button(f.flow, 'pause', 'Pause'));
        acts.append(button(f.flow, 'cutover', 'Cut over'), button(f.flow, 'cancel', 'Cancel', 'danger'));
      }
      tr.append(acts);
    }
    return tr;
  }

  function button(flow, action, label, cls) {
    const b = el('button', 'act ' + (cls || ''), label);
    b.type = 'button';
    b.dataset.action = action;
    b.addEventListener('click', () => ask(flow, action));
    return b;
  }

  function ask(flow, action) {
    if (!CONFIRM[action]) { act(flow, action); return; }
    pending = { flow, action };
    $('confirm-text').textContent = CONFIRM[action](flow);
    $('confirm').hidden = false;
  }

  function notice(kind, text) {
    const n = $('notice');
    n.className = 'notice ' + kind;
    n.textContent = text;
    n.hidden = false;
  }

  async function act(flow, action) {
    notice('busy', action + ' ' + flow + '…');
    try {
      const r = await fetch('api/flows/' + encodeURIComponent(flow) + '/' + action, { method: 'POST', credentials: 'same-origin', cache: 'no-store' });
      let body = {};
      try { body = await r.json(); } catch (e) { body = { error: r.status + ' ' + r.statusText }; }
      if (r.ok) notice('ok', body.message || action + ' done');
      else notice('error', action + ' ' + flow + ' failed: ' + (body.error || r.status));
    } catch (err) {
      notice('error', action + ' ' + flow + ' failed: ' + err.message);
    }
    refresh();
  }

  function render(list) {
    control = list.control;
    $('actions-head').hidden = !control;
    $('namespace').textContent = 'Temporal namespace ' + list.namespace;
    $('mode').textContent = control ? 'control: the token allows the actions' : 'read-only: no token, no actions';
    $('version').textContent = 'ferry ' + (list.version || '');
    const body = $('flows');
    body.replaceChildren();
    if (!list.flows.length) {
      const tr = el('tr', 'empty');
      const td = el('td', null, 'No flows in this namespace yet: ferry run starts one.');
      td.colSpan = 9;
      tr.append(td);
      body.append(tr);
    }
    let running = 0;
    for (const f of list.flows) {
      if (f.status === 'Running') running++;
      body.append(row(f));
    }
    $('summary').textContent = list.flows.length + ' flows · ' + running + ' running';
    if (list.error) setConn('lost', 'Temporal: ' + list.error);
    else setConn('live', 'live');
  }

  async function refresh() {
    try {
      const r = await fetch('api/flows', { cache: 'no-store', credentials: 'same-origin' });
      if (r.status === 401) throw new Error('This dashboard needs its token: open it as /?token=YOUR_TOKEN');
      if (!r.ok) throw new Error('api/flows: ' + r.status);
      render(await r.json());
    } catch (err) {
      setConn('lost', String(err.message || err));
    }
  }

  $('confirm-yes').addEventListener('click', () => {
    $('confirm').hidden = true;
    if (pending) act(pending.flow, pending.action);
    pending = null;
  });
  $('confirm-no').addEventListener('click', () => {
    $('confirm').hidden = true;
    pending = null;
  });
  refresh();
  setInterval(refresh, 2000);
})();

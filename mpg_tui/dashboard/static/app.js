// MPG dashboard: keeps the server-rendered page current.
//
// Listens to /api/events (server-sent events). Events that change state trigger a
// debounced re-fetch of /api/status, which is rendered with the same markup the server
// produced (mpg_tui/dashboard/page.py). Every event is also added to the event log.
// All text goes in through textContent: names come from users.
'use strict';

(() => {
  const REFRESH_DEBOUNCE_MS = 200;
  const EVENT_LIMIT = 100;
  const KINDS = [
    'message_received', 'message_rejected', 'thread_opened', 'session_queued', 'run_started',
    'run_progress', 'run_finished', 'run_recovering', 'handoff_step', 'handoff_stopped',
    'session_killed', 'session_restarted', 'session_idled', 'reply_sent', 'connection_changed', 'log',
    'notice_sent', 'session_held', 'session_released', 'approval_requested', 'approval_decided',
    'budget_warning', 'budget_paused', 'budget_continued', 'catch_up_finished',
  ];
  const QUIET_KINDS = new Set(['message_received', 'thread_opened', 'reply_sent', 'log', 'notice_sent']);
  const CONVERSATION_KINDS = new Set([
    'message_received', 'reply_sent', 'notice_sent', 'handoff_step', 'session_held', 'session_released',
    'approval_requested', 'approval_decided',
  ]);
  const CONVERSATION_MARKS = { handoff: '⇢', error: '✖', held: '⏸', released: '▶', notice: '·' };
  const CONNECTION_LABELS = { ready: 'connected', connecting: 'connecting', resuming: 'reconnecting', disconnected: 'disconnected' };

  const byId = (id) => document.getElementById(id);
  let skew = 0; // server clock minus browser clock, seconds
  let startedAt = Number(document.body.dataset.started) || 0;
  let names = {};
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  const serverNow = () => Date.now() / 1000 + skew;
  {
    const rendered = Number(document.body.dataset.serverTime);
    if (rendered) skew = rendered - Date.now() / 1000;
  }

  // -- building DOM ---------------------------------------------------------------------------

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('data-')) el.setAttribute(key, String(value));
      else el.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function replaceChildren(el, nodes) {
    el.replaceChildren(...nodes);
  }

  // -- formatting (mirrors page.py) -----------------------------------------------------------

  function fmtCost(usd) {
    if (usd === 0) return '$0.00';
    if (usd < 0.01) return '$' + usd.toFixed(4);
    if (usd < 1) return '$' + usd.toFixed(3);
    return '$' + usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function fmtTokens(n) {
    if (n < 1000) return String(n);
    if (n < 1e6) return (n / 1000).toFixed(1) + 'k';
    return (n / 1e6).toFixed(2) + 'M';
  }
  // Durations and ages: mpg_tui/timefmt.py's three spellings.
  const pad2 = (n) => String(n).padStart(2, '0');
  function formatDuration(seconds) { // 45s, 12m, 2h 05m, 3d 04h
    const total = Math.max(0, Math.floor(seconds));
    if (total < 60) return total + 's';
    let minutes = Math.floor(total / 60);
    if (minutes < 60) return minutes + 'm';
    let hours = Math.floor(minutes / 60);
    minutes %= 60;
    if (hours < 24) return hours + 'h ' + pad2(minutes) + 'm';
    const days = Math.floor(hours / 24);
    hours %= 24;
    return days + 'd ' + pad2(hours) + 'h';
  }
  function formatAgo(seconds) { // now, 42s ago, 7m ago, 3h ago, 2d ago
    const s = Math.max(0, seconds);
    if (s < 5) return 'now';
    if (s < 60) return Math.floor(s) + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 86400) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }
  function formatRunLength(seconds) { // 850ms, 12.3s, 4m05s, 2h07m
    const s = Math.max(0, seconds);
    if (s < 1) return Math.floor(s * 1000) + 'ms';
    if (s < 60) return s.toFixed(1) + 's';
    const whole = Math.floor(s);
    if (whole < 3600) return Math.floor(whole / 60) + 'm' + pad2(whole % 60) + 's';
    return Math.floor(whole / 3600) + 'h' + pad2(Math.floor((whole % 3600) / 60)) + 'm';
  }
  function clockTime(epochS) {
    const d = new Date(epochS * 1000);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }
  const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');

  // -- regions --------------------------------------------------------------------------------

  function renderHeader(status) {
    byId('version').textContent = 'v' + status.version;
    const state = status.health.connection;
    const pill = byId('connection');
    pill.className = 'pill conn-' + state;
    pill.querySelector('.label').textContent = 'Discord ' + (CONNECTION_LABELS[state] || state);
    startedAt = status.serverTime - status.health.uptime;
  }

  function card(name, value, sub, tone) {
    return h('div', { class: 'card' + (tone ? ' tone-' + tone : ''), 'data-card': name },
      h('div', { class: 'card-label', text: name }),
      h('div', { class: 'card-value', text: value }),
      h('div', { class: 'card-sub', text: sub }));
  }

  function renderCards(status) {
    const s = status.health.sessions;
    const t = status.totals;
    const agents = status.projects.reduce((n, p) => n + p.agents.length, 0);
    replaceChildren(byId('cards'), [
      card('Sessions', String(s.active), s.running + ' running · ' + s.queued + ' queued', s.running ? 'accent' : ''),
      card('Runs', String(t.runs), t.failures + ' failed', t.failures ? 'bad' : ''),
      card('Cost', fmtCost(t.costUsd), 'reported by claude'),
      card('Tokens', fmtTokens(t.inputTokens + t.outputTokens),
        fmtTokens(t.inputTokens) + ' in · ' + fmtTokens(t.outputTokens) + ' out'),
      card('Projects', String(status.projects.length), plural(agents, 'agent')),
      messagesCard(status.messages),
    ]);
  }

  function messagesCard(c) {
    const pending = c.waiting + c.running;
    return card('Messages', String(c.answered), pending + ' waiting or running · ' + c.told + ' told', pending ? 'accent' : '');
  }

  function pausedNote(p) {
    const limit = p.limit === 'day' ? "today's project budget" : 'its thread limit';
    return 'paused at ' + limit + ': ' + fmtCost(p.spentUsd) + ' of ' + fmtCost(p.limitUsd) + ' · ' + plural(p.held, 'message') + ' kept';
  }

  function sessionRow(s, now, paused) {
    let detail = null;
    if (paused) {
      detail = h('div', { class: 'detail paused' }, pausedNote(paused) + ' ',
        h('button', { type: 'button', class: 'continue', 'data-continue': paused.threadId, text: 'Continue' }));
    } else if (s.heldBy) {
      detail = h('div', { class: 'detail held', text: 'open in a terminal (' + s.heldBy + '): messages wait' });
    } else if (s.lastError) detail = h('div', { class: 'detail error', text: s.lastError });
    else if ((s.state === 'running' || s.state === 'recovering') && s.progress.length) {
      detail = h('div', { class: 'detail', text: s.progress[s.progress.length - 1] });
    }
    const last = s.lastActivity / 1000;
    return h('tr', { 'data-key': s.key, 'data-state': s.state },
      h('td', { class: 'session-cell', title: 'session ' + (s.sessionId || '(new)') + ' · ' + s.cwd },
        h('div', { class: 'primary', text: s.projectName }),
        h('div', { class: 'secondary mono' }, h('a', {
          href: '/?thread=' + encodeURIComponent(s.threadId) + '#conversation', title: 'read the thread',
          text: s.threadName ? s.threadName + ' · ' + s.key : s.key,
        })),
        detail),
      h('td', {}, h('span', { class: 'badge state-' + s.state, text: s.state })),
      h('td', { class: 'agent', text: s.agent ? '@' + s.agent : '—' }),
      h('td', { class: 'num' + (s.queueLength ? ' hot' : ''), text: String(s.queueLength) }),
      h('td', {}, h('span', { class: 'runner', text: s.runner })),
      h('td', { class: 'num', text: fmtCost(s.costUsd) }),
      h('td', { class: 'num', text: fmtTokens(s.inputTokens) + ' / ' + fmtTokens(s.outputTokens) }),
      h('td', { class: 'num' },
        h('time', { class: 'ago', 'data-ts': last, datetime: s.lastActivityAt, text: formatAgo(now - last) })));
  }

  function renderSessions(status) {
    const now = serverNow();
    const paused = Object.fromEntries(status.budgets.paused.map((p) => [p.threadId, p]));
    const rows = status.sessions.length
      ? status.sessions.map((s) => sessionRow(s, now, paused[s.threadId]))
      : [h('tr', { class: 'empty-row' },
        h('td', { colspan: 8, class: 'empty', text: 'No sessions yet. Post in a mapped channel.' }))];
    replaceChildren(byId('sessions'), rows);
    byId('sessions-count').textContent = String(status.sessions.length);
  }

  function chainCard(c) {
    const hops = [h('span', { class: 'hop hop-user' }, h('b', { text: 'user' }))];
    for (const hop of c.hops) {
      const facts = [hop.state];
      if (hop.durationMs) facts.push(formatRunLength(hop.durationMs / 1000));
      if (hop.costUsd) facts.push(fmtCost(hop.costUsd));
      hops.push(h('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }));
      hops.push(h('span', { class: 'hop hop-' + hop.state },
        h('b', { text: '@' + hop.agent }), h('small', { text: facts.join(' · ') })));
    }
    let summary = 'turn ' + c.turns + '/' + c.maxTurns;
    if (c.durationMs) summary += ' · ' + formatRunLength(c.durationMs / 1000);
    if (c.costUsd) summary += ' · ' + fmtCost(c.costUsd);
    return h('div', { class: 'chain', 'data-thread': c.threadId },
      h('div', { class: 'chain-head' },
        h('span', { class: 'primary', text: c.projectName }),
        h('span', { class: 'secondary mono', text: 'thread ' + c.threadId }),
        h('span', { class: 'badge chain-' + c.state, text: c.state.replaceAll('_', ' ') }),
        h('span', { class: 'secondary push', text: summary })),
      h('div', { class: 'hops' }, ...hops));
  }

  function renderChains(status) {
    const nodes = status.chains.length
      ? status.chains.map(chainCard)
      : [h('div', { class: 'empty', text: 'No agent handoffs yet.' })];
    replaceChildren(byId('chains'), nodes);
    byId('chains-count').textContent = String(status.chains.length);
  }

  function spendTag(spend) {
    if (!spend || spend.budgetUsd === null) return null;
    const used = spend.budgetUsd > 0 ? spend.spentUsd / spend.budgetUsd : 1;
    const tone = used >= 1 ? ' tag-bad' : used >= 0.8 ? ' tag-warn' : '';
    return h('span', { class: 'tag' + tone, 'data-spend': '', text: 'today ' + fmtCost(spend.spentUsd) + ' of ' + fmtCost(spend.budgetUsd) });
  }

  function projectCard(p, spend) {
    const tags = [h('span', { class: 'tag', text: p.persistence }), spendTag(spend)].filter(Boolean);
    if (p.allowedRoles.length) tags.push(h('span', { class: 'tag', text: 'roles: ' + p.allowedRoles.join(', ') }));
    if (p.rateLimitPerUser) tags.push(h('span', { class: 'tag', text: p.rateLimitPerUser + '/min per user' }));
    if (p.worktrees) tags.push(h('span', { class: 'tag', text: 'worktrees' }));
    const agents = p.agentDetails.length
      ? h('ul', { class: 'agents' }, ...p.agentDetails.map((a) => h('li', {},
        h('span', { class: 'agent', text: '@' + a.name }), h('span', { class: 'role', text: a.role }))))
      : h('div', { class: 'secondary', text: 'No agents' });
    return h('div', { class: 'project', 'data-channel': p.channelId },
      h('div', { class: 'project-head' },
        h('span', { class: 'primary', text: p.name }),
        h('span', { class: 'secondary mono', text: '#' + p.channelId })),
      h('div', { class: 'dir mono', text: p.directory }),
      h('div', { class: 'tags' }, ...tags),
      agents);
  }

  function renderProjects(status) {
    names = Object.fromEntries(status.projects.map((p) => [p.channelId, p.name]));
    const spend = Object.fromEntries(status.budgets.projects.map((b) => [b.channelId, b]));
    const nodes = status.projects.length
      ? status.projects.map((p) => projectCard(p, spend[p.channelId]))
      : [h('div', { class: 'empty', text: 'No projects configured.' })];
    replaceChildren(byId('projects'), nodes);
    byId('projects-count').textContent = String(status.projects.length);
  }

  function render(status) {
    skew = status.serverTime - Date.now() / 1000;
    renderHeader(status);
    renderCards(status);
    renderSessions(status);
    renderChains(status);
    renderProjects(status);
    renderApprovals(status);
    tick();
  }

  // -- requests waiting for a person (mirrors approvals() in page.py) ------------------------

  const APPROVAL_CHOICES = {
    tool: [['allow', 'Allow once', 'allow'], ['allow_session', 'Allow for this session', ''], ['deny', 'Deny', 'deny']],
    plan: [['allow', 'Approve plan', 'allow'], ['deny', 'Keep planning', 'deny']],
  };

  const EXPIRY_VERB = { tool: 'denied', question: 'declined', plan: 'rejected' };

  function approvalChoices(a) {
    if (a.kind === 'question') {
      return [...a.options.map((label, n) => ['option:' + n, String(label), '']), ['deny', 'Decline', 'deny']];
    }
    return APPROVAL_CHOICES[a.kind] || APPROVAL_CHOICES.tool;
  }

  function approvalItem(a, now) {
    const buttons = approvalChoices(a).map(([choice, label, tone]) =>
      h('button', { type: 'button', class: 'choice' + (tone ? ' tone-' + tone : ''), 'data-choice': choice, text: label }));
    return h('li', { class: 'approval', 'data-approval': a.id, 'data-kind': a.kind },
      h('div', { class: 'approval-head' },
        h('span', { class: 'badge kind-' + a.kind, text: a.kind === 'tool' ? a.tool : a.kind }),
        h('span', { class: 'primary', text: a.projectName }),
        h('span', { class: 'secondary mono' },
          h('a', { href: '/?thread=' + encodeURIComponent(a.threadId) + '#conversation', text: a.key }),
          a.requestedBy ? ' · asked for by ' + a.requestedBy : ''),
        h('span', { class: 'secondary push' }, (EXPIRY_VERB[a.kind] || 'denied') + ' in ',
          h('time', { class: 'left', 'data-until': a.expiresAt, text: formatDuration(a.expiresAt - now) }), ' unless decided')),
      h('pre', { class: 'summary', text: a.summary }),
      h('div', { class: 'actions' }, ...buttons, h('span', { class: 'outcome', role: 'status' })));
  }

  function renderApprovals(status) {
    const now = serverNow();
    const nodes = status.approvals.length
      ? status.approvals.map((a) => approvalItem(a, now))
      : [h('li', { class: 'empty', text: 'Nothing waits for a decision.' })];
    replaceChildren(byId('approvals'), nodes);
    byId('approvals-count').textContent = String(status.approvals.length);
  }

  // Buttons post JSON as the operator (same origin, the session's sign-in cookie); the
  // page then follows the decision through the event stream like any other change.
  async function command(url, body, outcome) {
    try {
      const response = await fetch(url, {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      if (response.status === 401) { window.location.assign('/login'); return; }
      const answer = await response.json();
      if (outcome) outcome.textContent = answer.error || answer.text || '';
    } catch (err) {
      if (outcome) outcome.textContent = 'not sent: ' + err.message;
    }
    scheduleRefresh();
  }

  document.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (!button) return;
    const item = button.closest('li.approval');
    if (item && button.dataset.choice) {
      for (const b of item.querySelectorAll('button')) b.disabled = true;
      command('/api/approvals/' + encodeURIComponent(item.dataset.approval), { choice: button.dataset.choice },
        item.querySelector('.outcome'));
    } else if (button.dataset.continue) {
      button.disabled = true;
      command('/api/threads/' + encodeURIComponent(button.dataset.continue) + '/continue', {}, null);
    }
  });

  // -- event log ------------------------------------------------------------------------------

  const who = (agent) => (agent ? '@' + agent : 'user');

  function summarize(e) {
    const project = () => names[e.project_key] || e.project_key;
    switch (e.kind) {
      case 'message_received': return e.author + ' in ' + project() + ': ' + e.content;
      case 'message_rejected': return e.author + ' refused in ' + project() + ': ' + e.reason;
      case 'thread_opened': return 'thread “' + e.name + '” opened in ' + project();
      case 'session_queued': return e.key + ' queued at #' + e.position;
      case 'run_started':
        return e.key + ' started' + (e.agent ? ' as @' + e.agent : '') + ' (' + e.runner + '): ' + e.prompt_preview;
      case 'run_progress': return e.key + ' · ' + (e.tool || e.step) + ': ' + e.text;
      case 'run_finished':
        return e.ok
          ? e.key + ' finished in ' + formatRunLength(e.duration_ms / 1000) + ' · ' + fmtCost(e.cost_usd)
          : e.key + ' failed: ' + (e.error || 'unknown error');
      case 'run_recovering': return e.key + ' recovering after restart';
      case 'handoff_step':
        return who(e.from_agent) + ' → @' + e.to_agent + ' in ' + project() + ' (turn ' + e.turn + '/' + e.max_turns + ')';
      case 'handoff_stopped':
        return 'chain in ' + project() + ' stopped: ' + String(e.reason).replaceAll('_', ' ') + ' after ' + e.turns + ' turns';
      case 'session_killed': case 'session_restarted': case 'session_idled':
        return e.key + ' ' + e.kind.replace('session_', '');
      case 'reply_sent': return 'reply of ' + plural(e.chunks, 'chunk') + ' sent' + (e.agent ? ' by @' + e.agent : '');
      case 'connection_changed':
        return 'Discord ' + (CONNECTION_LABELS[e.state] || e.state) + (e.detail ? ' (' + e.detail + ')' : '');
      case 'log': return e.logger + ': ' + e.message;
      case 'notice_sent': return 'said in ' + e.channel_id + ': ' + e.text;
      case 'session_held': return e.key + ' held: open in a terminal (' + e.holder + ')';
      case 'approval_requested': return e.key + ' waits: ' + e.tool + ' · ' + e.summary;
      case 'approval_decided': return e.key + ': ' + e.tool + ' ' + String(e.outcome).replaceAll('_', ' ') + ' by ' + e.decided_by;
      case 'budget_warning': case 'budget_paused':
        return 'thread ' + e.thread_id + ' ' + (e.kind === 'budget_warning' ? 'reached 80% of' : 'paused at') + ' its ' + e.limit
          + ' limit: ' + fmtCost(e.spent_usd) + ' of ' + fmtCost(e.limit_usd);
      case 'budget_continued':
        return 'thread ' + e.thread_id + ' continued by ' + e.by + ': ' + e.limit + ' limit now ' + fmtCost(e.limit_usd);
      case 'catch_up_finished':
        return 'caught up: ' + plural(e.handled, 'message') + ' handled in ' + plural(e.places, 'place') + ', ' + e.skipped_old + ' too old';
      case 'session_released':
        return e.key + ' handed back' + (e.turns === null ? '' : ' (' + plural(e.turns, 'turn') + ' in the terminal)');
      default: return e.kind;
    }
  }

  // The log's model, newest first. Live events and catch-up snapshots are merged into it, so
  // an event that arrives while a snapshot is being fetched is never wiped by that snapshot.
  let shown = [];
  const eventId = (e) => JSON.stringify(e);

  function eventItem(e, fresh) {
    const level = e.kind === 'log' ? ' level-' + String(e.level || '').toLowerCase() : '';
    return h('li', { class: 'ev ev-' + e.kind + level + (fresh ? ' fresh' : '') },
      h('time', { 'data-ts': e.at, text: clockTime(e.at) }),
      h('span', { class: 'kind', text: e.kind.replaceAll('_', ' ') }),
      h('span', { class: 'text', text: summarize(e), title: summarize(e) }));
  }

  function mergeEvents(list) {
    const seen = new Set();
    const merged = [];
    for (const e of [...shown, ...list]) {
      const id = eventId(e);
      if (!seen.has(id)) { seen.add(id); merged.push(e); }
    }
    // Stable: among equal times, live events (listed first) stay ahead of the snapshot's.
    merged.sort((a, b) => b.at - a.at);
    shown = merged.slice(0, EVENT_LIMIT);
    const nodes = shown.length
      ? shown.map((e) => eventItem(e, false))
      : [h('li', { class: 'empty', text: 'Waiting for events…' })];
    replaceChildren(byId('events'), nodes);
  }

  function addEvent(e) {
    const id = eventId(e);
    if (shown.some((known) => eventId(known) === id)) return;
    shown.unshift(e);
    const log = byId('events');
    const empty = log.querySelector('.empty');
    if (empty) empty.remove();
    log.prepend(eventItem(e, true));
    if (shown.length > EVENT_LIMIT) shown.length = EVENT_LIMIT;
    while (log.children.length > EVENT_LIMIT) log.lastElementChild.remove();
  }

  // -- time -----------------------------------------------------------------------------------

  function tick() {
    const now = serverNow();
    byId('uptime').textContent = formatDuration(now - startedAt);
    for (const el of document.querySelectorAll('time.ago[data-ts]')) {
      el.textContent = formatAgo(now - Number(el.dataset.ts));
    }
    for (const el of document.querySelectorAll('time.left[data-until]')) {
      el.textContent = formatDuration(Number(el.dataset.until) - now);
    }
  }

  // -- fetching and streaming -----------------------------------------------------------------

  async function refresh(withEvents) {
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    try {
      const response = await fetch('/api/status', { credentials: 'same-origin', cache: 'no-store' });
      if (response.status === 401) { window.location.assign('/login'); return; }
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const status = await response.json();
      render(status);
      if (withEvents) mergeEvents(status.events);
    } catch (err) {
      console.error('dashboard update failed:', err);
      setLive('reconnecting', 'update failed');
    } finally {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; scheduleRefresh(); }
    }
  }

  function scheduleRefresh() {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; refresh(false); }, REFRESH_DEBOUNCE_MS);
  }

  function setLive(state, label) {
    const el = byId('live');
    el.className = 'live live-' + state;
    el.querySelector('.label').textContent = label;
    document.body.dataset.live = state;
  }

  function connect() {
    if (!('EventSource' in window)) {
      setLive('static', 'refresh to update');
      return;
    }
    setLive('connecting', 'connecting…');
    const source = new EventSource('/api/events');
    source.addEventListener('open', () => {
      setLive('live', 'live');
      // Catch up on whatever happened while the stream was down.
      refresh(true);
    });
    source.addEventListener('error', () => setLive('reconnecting', 'reconnecting…'));
    source.addEventListener('dropped', () => refresh(true));
    for (const kind of KINDS) {
      source.addEventListener(kind, (message) => {
        let event;
        try { event = JSON.parse(message.data); } catch { return; }
        addEvent(event);
        followConversation(event);
        if (!QUIET_KINDS.has(kind)) scheduleRefresh();
      });
    }
  }

  // -- the selected thread's conversation (mirrors conversation() in page.py) -----------------

  function conversationEntry(e) {
    const when = h('time', { class: 'mono', text: clockTime(e.at) });
    if (e.kind === 'message' || e.kind === 'reply') {
      return h('li', { class: 'say say-' + e.kind }, when, ' ', h('b', { class: 'who', text: e.who }),
        h('div', { class: 'text', text: e.text }));
    }
    const mark = CONVERSATION_MARKS[e.kind] || '·';
    return h('li', { class: 'say say-' + e.kind }, when, ' ', h('span', { class: 'note', text: mark + ' ' + e.text }));
  }

  let conversationTimer = null;
  function followConversation(e) {
    const list = byId('conversation-entries');
    if (!list || !CONVERSATION_KINDS.has(e.kind)) return;
    const thread = list.dataset.thread;
    if (![e.thread_id, e.channel_id, e.message_id].includes(thread)) return;
    if (conversationTimer !== null) return;
    conversationTimer = setTimeout(async () => {
      conversationTimer = null;
      try {
        const url = '/api/threads/' + encodeURIComponent(thread) + '/conversation';
        const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
        if (!response.ok) throw new Error('HTTP ' + response.status);
        const doc = await response.json();
        replaceChildren(list, doc.entries.map(conversationEntry));
      } catch (err) {
        console.error('conversation update failed:', err);
      }
    }, REFRESH_DEBOUNCE_MS);
  }

  setInterval(tick, 1000);
  tick();
  connect();
})();

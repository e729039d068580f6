// Duty-officer console: active alarms, acknowledgement, hazard-source and device health and
// current values, live from the gateway's own API (no external resources).
//
// Data flow: the SSE feed (/api/v1/events) pushes alarm transitions and flood changes; on
// every (re)connect the page reloads the alarm snapshot and re-applies the transitions that
// arrived meanwhile, ordered by their journal sequence number. Values and quality are polled
// from /api/v1/points. Nothing from the API is inserted as HTML: all text goes in through
// textContent.
'use strict';

(function () {
  const I18N = {
    zh: {
      title: '重大危险源监测', conn_up: '实时', conn_down: '连接中断',
      sound_enable: '启用声音', sound_on: '声音已开', silence: '消音',
      login: '登录', logout: '退出', login_title: '登录',
      login_hint: '请输入值班令牌（由管理员发放）。', token: '令牌',
      logged_in: '已登录', bad_token: '令牌无效', open_api: '免登录模式',
      flood: '报警泛滥：请按优先级处理', flood_rate: '近10分钟 {n} 条',
      active_alarms: '活动报警', counts: '未确认 {u} · 共 {n}',
      col_priority: '优先级', col_time: '报警时间', col_source: '危险源', col_subject: '对象',
      col_alarm: '报警', col_value: '值 / 限值', col_state: '状态', col_action: '操作',
      col_point: '测点', col_device: '设备', col_current: '当前值', col_quality: '质量',
      col_updated: '更新时间',
      no_alarms: '无活动报警', held: '已搁置 / 已抑制 / 停用',
      hazard_sources: '危险源', devices: '设备通信', values: '当前值',
      ack_title: '确认报警', your_name: '值班员姓名', comment: '处置说明',
      cancel: '取消', ack: '确认', need_name: '请填写值班员姓名',
      forbidden: '此令牌无确认权限（需要操作员角色）', failed: '操作失败：{m}',
      unreachable: '无法连接网关', none_source: '未归属',
      p_critical: '紧急', p_high: '高', p_medium: '中', p_low: '低',
      s_normal: '正常', s_unack_active: '报警 未确认', s_ack_active: '报警 已确认',
      s_unack_rtn: '已恢复 未确认', s_latched: '锁存 待复位',
      o_shelved: '已搁置至 {t}', o_suppressed: '已抑制', o_oos: '停用',
      c_threshold: '越限', c_rate_of_change: '变化过快', c_stale: '数据停更',
      c_sensor_fault: '传感器故障', c_communication: '通信中断', c_deviation: '偏差',
      c_vote: '表决报警',
      l_high: '高报（一级）', l_high_high: '高高报（二级）', l_low: '低报', l_low_low: '低低报',
      l_blue: '蓝色预警', l_yellow: '黄色预警', l_orange: '橙色预警', l_red: '红色预警',
      q_good: '正常', q_comm_fault: '通信故障', q_decode_error: '解码错误',
      q_out_of_range: '超量程', q_stale: '数据过期', q_uncertain: '数据存疑', q_no_data: '无数据',
      v_ok: '正常', v_alarms: '{n} 条报警', v_comm_lost: '通信中断', v_degraded: '部分异常',
      v_nodata: '无数据', d_points: '{n} 个测点', d_bad: '{b} 个异常',
    },
    en: {
      title: 'Major Hazard Monitoring', conn_up: 'LIVE', conn_down: 'DISCONNECTED',
      sound_enable: 'Enable sound', sound_on: 'Sound on', silence: 'Silence',
      login: 'Log in', logout: 'Log out', login_title: 'Log in',
      login_hint: 'Enter your duty token (issued by the administrator).', token: 'Token',
      logged_in: 'Logged in', bad_token: 'Invalid token', open_api: 'Open mode',
      flood: 'ALARM FLOOD: handle by priority', flood_rate: '{n} in the last 10 min',
      active_alarms: 'Active alarms', counts: '{u} unacknowledged · {n} total',
      col_priority: 'Priority', col_time: 'Raised', col_source: 'Hazard source', col_subject: 'Subject',
      col_alarm: 'Alarm', col_value: 'Value / limit', col_state: 'State', col_action: 'Action',
      col_point: 'Point', col_device: 'Device', col_current: 'Value', col_quality: 'Quality',
      col_updated: 'Updated',
      no_alarms: 'No active alarms', held: 'Shelved / suppressed / out of service',
      hazard_sources: 'Hazard sources', devices: 'Device communication', values: 'Current values',
      ack_title: 'Acknowledge alarm', your_name: 'Your name', comment: 'Comment',
      cancel: 'Cancel', ack: 'Acknowledge', need_name: 'Please enter your name',
      forbidden: 'This token may not acknowledge (operator role needed)', failed: 'Failed: {m}',
      unreachable: 'Cannot reach the gateway', none_source: 'Unassigned',
      p_critical: 'CRITICAL', p_high: 'HIGH', p_medium: 'MEDIUM', p_low: 'LOW',
      s_normal: 'Normal', s_unack_active: 'Active, unacked', s_ack_active: 'Active, acked',
      s_unack_rtn: 'Returned, unacked', s_latched: 'Latched, reset needed',
      o_shelved: 'Shelved until {t}', o_suppressed: 'Suppressed', o_oos: 'Out of service',
      c_threshold: 'Limit', c_rate_of_change: 'Rate of change', c_stale: 'Stale data',
      c_sensor_fault: 'Sensor fault', c_communication: 'Communication lost', c_deviation: 'Deviation',
      c_vote: 'Vote',
      l_high: 'High (level 1)', l_high_high: 'High-high (level 2)', l_low: 'Low', l_low_low: 'Low-low',
      l_blue: 'Blue warning', l_yellow: 'Yellow warning', l_orange: 'Orange warning', l_red: 'Red warning',
      q_good: 'Good', q_comm_fault: 'Comm fault', q_decode_error: 'Decode error',
      q_out_of_range: 'Out of range', q_stale: 'Stale', q_uncertain: 'Uncertain', q_no_data: 'No data',
      v_ok: 'Normal', v_alarms: '{n} alarm(s)', v_comm_lost: 'Comm lost', v_degraded: 'Degraded',
      v_nodata: 'No data', d_points: '{n} points', d_bad: '{b} bad',
    },
  };
  const PRIORITY_RANK = { low: 1, medium: 2, high: 3, critical: 4 };
  const POINTS_EVERY_MS = 2000;
  const SUMMARY_EVERY_MS = 5000;
  const HORN_EVERY_MS = 2500;
  const RETRY_MS = 3000;

  const $ = (id) => document.getElementById(id);
  let lang = localStorage.getItem('hg.lang') === 'en' ? 'en' : 'zh';
  let token = sessionStorage.getItem('hg.token') || '';
  let openApi = false;
  let alarms = new Map();     // alarm_id -> latest transition record
  let pending = null;         // transitions received while a snapshot loads
  let loadGen = 0;
  let loaded = false;
  let points = [];
  let flood = { active: false, rate: 0 };
  let feed = null;
  let feedUp = false;
  let pollOk = true;
  let audio = null;
  let alerting = false;
  let beeps = 0;
  let ackTarget = null;
  let pointsSoon = null;

  function t(key, vars) {
    let s = (I18N[lang][key] ?? I18N.zh[key] ?? key);
    for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
    return s;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---- time and numbers ----
  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(ns) {
    if (ns === null || ns === undefined) return '—';
    const d = new Date(ns / 1e6);
    const now = new Date();
    const hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    return d.toDateString() === now.toDateString() ? hms : pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  }
  function fmtValue(v, unit) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '—';
    return v.toFixed(2) + (unit ? ' ' + unit : '');
  }

  // ---- alarm state (ISA-18.2 overlays) ----
  const visible = (a) => a.state !== 'normal' || a.shelved_until != null || a.suppressed || a.out_of_service;
  const annunciated = (a) => a.state !== 'normal' && a.shelved_until == null && !a.suppressed && !a.out_of_service;
  // Unacknowledged: unack_active, unack_rtn, and a latched alarm that cleared before its ack.
  const needsAck = (a) => !a.acknowledged && a.state !== 'normal';
  const urgent = (a) => PRIORITY_RANK[a.priority] >= PRIORITY_RANK.high;

  function applyTo(map, e) {
    const cur = map.get(e.alarm_id);
    if (cur && e.seq && cur.seq > e.seq) return false; // older than what we show
    if (visible(e)) map.set(e.alarm_id, e); else map.delete(e.alarm_id);
    return true;
  }

  function onAlarm(e) {
    if (pending) pending.push(e);
    const fresh = applyTo(alarms, e);
    if (fresh && loaded && e.transition === 'raised' && urgent(e) && annunciated(e)) startAlert();
    // The value behind a transition is news too: fetch values now rather than at the next poll.
    if (!pointsSoon) pointsSoon = setTimeout(() => { pointsSoon = null; loadPoints(); }, 200);
    scheduleRender();
  }

  // ---- API ----
  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.message) || ('HTTP ' + status));
      this.status = status;
    }
  }

  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    if (token && !openApi) o.headers.Authorization = 'Bearer ' + token;
    const r = await fetch(path, o);
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (r.status === 401 && !(opts && opts.noLogin)) needLogin();
    if (!r.ok) throw new HttpError(r.status, body);
    return body;
  }

  async function loadAlarms() {
    const gen = ++loadGen;
    pending = [];
    const list = await api('/api/v1/alarms');
    if (gen !== loadGen) return;
    const prev = alarms;
    const next = new Map();
    for (const a of list) next.set(a.alarm_id, a);
    for (const e of pending) applyTo(next, e);
    pending = null;
    // An urgent alarm raised while the feed was down still sounds.
    if (loaded) {
      for (const a of next.values()) {
        if (!prev.has(a.alarm_id) && urgent(a) && annunciated(a) && needsAck(a)) { startAlert(); break; }
      }
    }
    alarms = next;
    loaded = true;
    scheduleRender();
  }

  async function loadPoints() {
    try {
      points = await api('/api/v1/points');
      pollOk = true;
    } catch (err) {
      pollOk = false;
    }
    renderConn();
    scheduleRender();
  }

  async function loadSummary() {
    try {
      const s = await api('/api/v1/alarms/summary');
      setFlood(s.flood, s.rate_10min);
    } catch (_) { /* shown by the connection state */ }
  }

  function setFlood(active, rate) {
    flood = { active: !!active, rate: rate || 0 };
    $('flood').hidden = !flood.active;
    $('flood-rate').textContent = t('flood_rate', { n: flood.rate });
  }

  // ---- live feed ----
  function connectFeed() {
    if (feed) feed.close();
    const url = '/api/v1/events' + (token && !openApi ? '?access_token=' + encodeURIComponent(token) : '');
    const es = new EventSource(url);
    feed = es;
    es.addEventListener('open', () => {
      feedUp = true;
      renderConn();
      refreshAll();
    });
    es.addEventListener('alarm', (m) => {
      try { onAlarm(JSON.parse(m.data)); } catch (err) { console.error('bad alarm event', err); }
    });
    es.addEventListener('flood', (m) => {
      try { const f = JSON.parse(m.data); setFlood(f.active, f.rate_10min); } catch (_) { /* ignore */ }
    });
    es.addEventListener('error', () => {
      feedUp = false;
      renderConn();
      // The browser retries by itself (sending Last-Event-ID) unless the server refused us.
      if (es.readyState === EventSource.CLOSED && feed === es) {
        feed = null;
        setTimeout(start, RETRY_MS);
      }
    });
  }

  async function refreshAll() {
    try {
      await Promise.all([loadAlarms(), loadPoints(), loadSummary()]);
      showError('');
    } catch (err) {
      if (err.status !== 401) showError(t('failed', { m: err.message }));
    }
  }

  // ---- auth ----
  async function start() {
    try {
      const h = await fetch('/healthz').then((r) => r.json());
      $('gateway').textContent = h.gateway_id || '';
    } catch (_) {
      showError(t('unreachable'));
      setTimeout(start, RETRY_MS);
      return;
    }
    // An open API answers without a token; then acknowledgements carry a typed name.
    const probe = await fetch('/api/v1/alarms/summary').catch(() => null);
    if (!probe) { setTimeout(start, RETRY_MS); return; }
    openApi = probe.ok;
    if (!openApi && !token) { renderWho(); needLogin(); return; }
    if (!openApi) {
      try { await api('/api/v1/alarms/summary', { noLogin: true }); } catch (err) {
        if (err.status === 401) { token = ''; sessionStorage.removeItem('hg.token'); renderWho(); needLogin(); return; }
      }
    }
    renderWho();
    showError('');
    connectFeed();
  }

  function needLogin() {
    const d = $('login-dialog');
    if (feed) { feed.close(); feed = null; }
    feedUp = false;
    renderConn();
    if (!d.open) {
      $('login-error').textContent = '';
      d.showModal();
      $('login-token').focus();
    }
  }

  async function submitLogin(ev) {
    ev.preventDefault();
    const candidate = $('login-token').value.trim();
    if (!candidate) return;
    const r = await fetch('/api/v1/alarms/summary', { headers: { Authorization: 'Bearer ' + candidate } }).catch(() => null);
    if (!r) { $('login-error').textContent = t('unreachable'); return; }
    if (!r.ok) { $('login-error').textContent = t('bad_token'); return; }
    token = candidate;
    sessionStorage.setItem('hg.token', token);
    $('login-token').value = '';
    $('login-dialog').close();
    start();
  }

  function logout() {
    token = '';
    sessionStorage.removeItem('hg.token');
    alarms = new Map();
    points = [];
    loaded = false;
    scheduleRender();
    renderWho();
    needLogin();
  }

  function renderWho() {
    $('who').textContent = openApi ? t('open_api') : (token ? t('logged_in') : '');
    $('login-btn').hidden = openApi || !!token;
    $('logout-btn').hidden = openApi || !token;
  }

  // ---- acknowledge ----
  function openAck(a) {
    ackTarget = a;
    $('ack-what').textContent = describeAlarm(a) + ' — ' + a.subject;
    $('ack-user-row').hidden = !openApi;
    $('ack-user').value = localStorage.getItem('hg.user') || '';
    $('ack-comment').value = '';
    $('ack-error').textContent = '';
    $('ack-dialog').showModal();
    (openApi && !$('ack-user').value ? $('ack-user') : $('ack-comment')).focus();
  }

  async function submitAck(ev) {
    ev.preventDefault();
    if (!ackTarget) return;
    const body = { comment: $('ack-comment').value.trim() };
    if (openApi) {
      const user = $('ack-user').value.trim();
      if (!user) { $('ack-error').textContent = t('need_name'); return; }
      localStorage.setItem('hg.user', user);
      body.user = user;
    }
    $('ack-submit').disabled = true;
    try {
      const path = '/api/v1/alarms/' + encodeURIComponent(ackTarget.alarm_id) + '/ack';
      const view = await api(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      applyTo(alarms, view);
      $('ack-dialog').close();
      ackTarget = null;
      scheduleRender();
    } catch (err) {
      if (err.status === 401) { $('ack-dialog').close(); return; }
      $('ack-error').textContent = err.status === 403 ? t('forbidden') : t('failed', { m: err.message });
    } finally {
      $('ack-submit').disabled = false;
    }
  }

  // ---- sound ----
  function enableSound() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = new Ctx();
    }
    audio.resume();
    $('sound').classList.remove('attention');
    $('sound').classList.add('on');
    $('sound').dataset.i18n = 'sound_on';
    $('sound').textContent = t('sound_on');
  }

  function beep() {
    if (!audio) { $('sound').classList.add('attention'); return; }
    const t0 = audio.currentTime;
    for (let i = 0; i < 3; i++) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'square';
      osc.frequency.value = i % 2 ? 660 : 990;
      gain.gain.setValueAtTime(0.25, t0 + i * 0.25);
      gain.gain.setValueAtTime(0, t0 + i * 0.25 + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + i * 0.25);
      osc.stop(t0 + i * 0.25 + 0.2);
    }
    beeps += 1;
    document.body.dataset.beeps = String(beeps);
  }

  function startAlert() {
    alerting = true;
    $('silence').hidden = false;
    beep();
  }

  function hornTick() {
    const still = [...alarms.values()].some((a) => urgent(a) && annunciated(a) && needsAck(a));
    if (!still) { alerting = false; }
    $('silence').hidden = !alerting;
    if (alerting) beep();
  }

  // ---- rendering ----
  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  function describeAlarm(a) {
    const parts = [t('c_' + a.condition)];
    if (a.level) parts.push(t('l_' + a.level));
    return parts.join(' · ');
  }

  function byUrgency(a, b) {
    return (PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority])
      || (Number(a.acknowledged) - Number(b.acknowledged))
      || ((b.raised_at ?? b.ts) - (a.raised_at ?? a.ts));
  }

  function alarmRow(a, withAction) {
    const tr = el('tr', a.priority);
    tr.dataset.alarmId = a.alarm_id;
    tr.classList.add(needsAck(a) ? 'unack' : 'acked');
    if (a.state === 'unack_rtn') tr.classList.add('rtn');
    const prio = el('td');
    prio.appendChild(el('span', 'prio ' + a.priority, t('p_' + a.priority)));
    tr.appendChild(prio);
    tr.appendChild(el('td', 'num', fmtTime(a.raised_at ?? a.ts)));
    tr.appendChild(el('td', 'id', a.hazard_source || '—'));
    tr.appendChild(el('td', 'id', a.subject));
    tr.appendChild(el('td', null, describeAlarm(a)));
    const lim = a.limit != null ? ' / ' + a.limit : '';
    tr.appendChild(el('td', 'num', fmtValue(a.value, '') + lim + (a.unit ? ' ' + a.unit : '')));
    const st = el('td', 'state ' + a.state, t('s_' + a.state));
    if (a.shelved_until != null) st.appendChild(el('span', 'tag', t('o_shelved', { t: fmtTime(a.shelved_until) })));
    if (a.suppressed) st.appendChild(el('span', 'tag', t('o_suppressed')));
    if (a.out_of_service) st.appendChild(el('span', 'tag', t('o_oos')));
    tr.appendChild(st);
    const act = el('td');
    if (withAction && needsAck(a)) {
      const b = el('button', 'ack', t('ack'));
      b.type = 'button';
      b.addEventListener('click', () => openAck(a));
      act.appendChild(b);
    }
    tr.appendChild(act);
    return tr;
  }

  function renderAlarms(all) {
    const shown = all.filter(annunciated).sort(byUrgency);
    const held = all.filter((a) => !annunciated(a)).sort(byUrgency);
    $('alarm-rows').replaceChildren(...shown.map((a) => alarmRow(a, true)));
    $('no-alarms').hidden = shown.length > 0 || !loaded;
    $('held').hidden = held.length === 0;
    $('held-count').textContent = '(' + held.length + ')';
    $('held-rows').replaceChildren(...held.map((a) => alarmRow(a, false)));
    const unack = shown.filter(needsAck).length;
    const c = $('alarm-counts');
    c.replaceChildren(el('span', unack ? 'unack' : '', t('counts', { u: unack, n: shown.length })));
    document.title = (unack ? '(' + unack + ') ' : '') + t('title');
  }

  function worstPriority(list) {
    let best = null;
    for (const a of list) if (!best || PRIORITY_RANK[a.priority] > PRIORITY_RANK[best]) best = a.priority;
    return best;
  }

  function card(name, cls, verdict, detail) {
    const c = el('div', 'card ' + cls);
    c.appendChild(el('span', 'name', name));
    c.appendChild(el('span', 'verdict', verdict));
    c.appendChild(el('span', 'detail', detail));
    return c;
  }

  const isBad = (p) => p.quality !== 'good' && p.quality !== 'no_data';

  function pointDetail(list) {
    const bad = list.filter(isBad).length;
    return t('d_points', { n: list.length }) + (bad ? ' · ' + t('d_bad', { b: bad }) : '');
  }

  function renderSources(all) {
    const groups = new Map();
    for (const p of points) {
      const k = p.hazard_source || '';
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(p);
    }
    const cards = [...groups.keys()].sort().map((k) => {
      const list = groups.get(k);
      const active = all.filter((a) => annunciated(a) && (a.hazard_source || '') === k);
      const worst = worstPriority(active);
      const cls = worst || (list.some(isBad) ? 'degraded' : 'ok');
      const verdict = worst ? t('v_alarms', { n: active.length }) : (list.some(isBad) ? t('v_degraded') : t('v_ok'));
      const c = card(k || t('none_source'), cls, verdict, pointDetail(list));
      c.dataset.source = k;
      return c;
    });
    $('sources').replaceChildren(...cards);
  }

  function renderDevices(all) {
    const groups = new Map();
    for (const p of points) {
      if (!groups.has(p.device)) groups.set(p.device, []);
      groups.get(p.device).push(p);
    }
    const cards = [...groups.keys()].sort().map((dev) => {
      const list = groups.get(dev);
      const commLost = all.some((a) => a.subject_kind === 'device' && a.subject === dev && a.state !== 'normal');
      let cls = 'ok';
      let verdict = t('v_ok');
      if (commLost) { cls = 'fault'; verdict = t('v_comm_lost'); }
      else if (list.every((p) => p.quality === 'no_data')) { cls = 'nodata'; verdict = t('v_nodata'); }
      else if (list.some(isBad)) { cls = 'degraded'; verdict = t('v_degraded'); }
      const c = card(dev, cls, verdict, pointDetail(list));
      c.dataset.device = dev;
      return c;
    });
    $('devices').replaceChildren(...cards);
  }

  function renderPoints(all) {
    const inAlarm = new Set(all.filter((a) => annunciated(a) && a.subject_kind === 'point').map((a) => a.subject));
    const sorted = [...points].sort((a, b) =>
      (a.hazard_source || '~').localeCompare(b.hazard_source || '~') || a.id.localeCompare(b.id));
    $('point-rows').replaceChildren(...sorted.map((p) => {
      const tr = el('tr', inAlarm.has(p.id) ? 'in-alarm' : '');
      tr.dataset.point = p.id;
      tr.appendChild(el('td', null, p.hazard_source || '—'));
      const name = el('td', null, p.id);
      if (p.description) name.title = p.description;
      tr.appendChild(name);
      tr.appendChild(el('td', null, p.device));
      tr.appendChild(el('td', 'num value', fmtValue(p.value, p.unit)));
      // An uncertain value still drives alarms but is shown apart, neither good nor bad.
      const qc = p.quality === 'good' ? 'q-good'
        : (p.quality === 'no_data' ? 'q-none' : (p.quality === 'uncertain' ? 'q-doubt' : 'q-bad'));
      tr.appendChild(el('td', qc, t('q_' + p.quality)));
      tr.appendChild(el('td', 'num', p.ts_ms != null ? fmtTime(p.ts_ms * 1e6) : '—'));
      return tr;
    }));
  }

  function renderConn() {
    const up = feedUp && pollOk;
    const c = $('conn');
    c.className = 'conn ' + (up ? 'up' : 'down');
    c.dataset.i18n = up ? 'conn_up' : 'conn_down';
    c.textContent = t(c.dataset.i18n);
  }

  function render() {
    const all = [...alarms.values()];
    renderAlarms(all);
    renderSources(all);
    renderDevices(all);
    renderPoints(all);
  }

  function showError(msg) {
    $('error').hidden = !msg;
    $('error').textContent = msg;
  }

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    $('lang').textContent = lang === 'zh' ? 'English' : '中文';
    $('lang').lang = lang === 'zh' ? 'en' : 'zh-CN';
    $('flood-rate').textContent = t('flood_rate', { n: flood.rate });
    renderWho();
    render();
  }

  function tickClock() {
    const d = new Date();
    $('clock').textContent = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' '
      + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('lang').addEventListener('click', () => {
      lang = lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('hg.lang', lang);
      applyLang();
    });
    $('sound').addEventListener('click', enableSound);
    $('silence').addEventListener('click', () => { alerting = false; $('silence').hidden = true; });
    $('login-btn').addEventListener('click', needLogin);
    $('logout-btn').addEventListener('click', logout);
    $('login-form').addEventListener('submit', submitLogin);
    $('login-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
    $('ack-form').addEventListener('submit', submitAck);
    $('ack-cancel').addEventListener('click', () => { $('ack-dialog').close(); ackTarget = null; });
    applyLang();
    tickClock();
    setInterval(tickClock, 1000);
    setInterval(() => { if (feed) loadPoints(); }, POINTS_EVERY_MS);
    setInterval(() => { if (feed) loadSummary(); }, SUMMARY_EVERY_MS);
    setInterval(hornTick, HORN_EVERY_MS);
    start();
  });
})();

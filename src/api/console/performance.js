// Alarm performance page (报警绩效) for the safety manager: a week's alarm KPIs from
// /api/v1/kpi (GB/T 41261 / EEMUA 191 targets and verdicts), daily load and priority charts
// drawn with uPlot (vendored), floods and stale alarms, and for each bad actor the tuning
// suggestion of /api/v1/tuning beside its current settings. Read-only; all text goes in
// through textContent. It uses the token the console keeps for this tab.
'use strict';

(function () {
  const I18N = {
    zh: {
      title: '报警绩效', back: '返回值班台', week: '周', position: '岗位', apply: '查询',
      all_positions: '全部岗位', report_html: '打印周报', report_csv: '导出 CSV',
      key_figures: '关键指标（GB/T 41261 / EEMUA 191）', daily: '每日报警负荷', priorities: '优先级分布',
      bad_actors: '高频报警（前 N 位）及整定建议',
      advice_note: '建议由该测点自身历史数据回放得出，只供仪表工程师参考，不会自动生效；真实报警的延迟不超过所示上限。',
      floods: '报警泛滥时段', stale: '长期报警（超过 24 小时）', none: '无',
      col_alarm: '报警', col_raises: '次数', col_share: '占比',
      col_current: '现设定（死区 / 延时报警 / 延时恢复）', col_suggested: '建议设定',
      col_effect: '回放效果（报警次数 / 振荡次数）', col_delay: '真实报警增加延迟',
      col_start: '开始', col_end: '结束', col_peak: '10分钟峰值', col_since: '起始', col_age: '持续',
      range: '{from} 至 {to}（UTC{off}）', target: '目标 {c}{t}', ongoing: '（持续中）',
      k_average: '平均报警率（条/10分钟）', k_peak: '10分钟最高', k_over10: '超过10条的10分钟占比',
      k_flood: '泛滥时间占比', k_top: '前 N 位占总量', k_chatter: '振荡报警', k_fleeting: '瞬时报警',
      k_stale: '长期报警', k_low: '低优先级占比', k_medium: '中优先级占比', k_high: '高+紧急占比',
      k_ack: '确认用时（中位 / P90）', k_unacked: '未确认',
      v_acceptable: '可接受', v_manageable: '可管理', v_over: '超标', v_none: '—',
      no_change: '保持现设定', no_advice: '（非越限报警或无历史数据）',
      active: '（报警持续时间占比 {a} → {b}）', raises_day: '报警数/天', peak_day: '当日10分钟峰值', count: '次数',
      p_critical: '紧急', p_high: '高', p_medium: '中', p_low: '低',
      need_login: '请先在值班台登录（令牌只在本标签页内保存）。', failed: '读取失败：{m}',
    },
    en: {
      title: 'Alarm performance', back: 'Back to console', week: 'Week', position: 'Position', apply: 'Show',
      all_positions: 'All positions', report_html: 'Print weekly report', report_csv: 'Export CSV',
      key_figures: 'Key figures (GB/T 41261 / EEMUA 191)', daily: 'Daily alarm load', priorities: 'Priority distribution',
      bad_actors: 'Most frequent alarms (top N) and tuning advice',
      advice_note: 'Advice replays each point\'s own history; for the instrument engineer to review, never applied by itself; true alarms are delayed by no more than the bound shown.',
      floods: 'Alarm floods', stale: 'Stale alarms (over 24 h)', none: 'None',
      col_alarm: 'Alarm', col_raises: 'Raises', col_share: 'Share',
      col_current: 'Current (deadband / on-delay / off-delay)', col_suggested: 'Suggested',
      col_effect: 'Replayed (raises / chattering)', col_delay: 'Delay added to true alarms',
      col_start: 'Start', col_end: 'End', col_peak: 'Peak per 10 min', col_since: 'Since', col_age: 'Age',
      range: '{from} to {to} (UTC{off})', target: 'target {c}{t}', ongoing: ' (ongoing)',
      k_average: 'Average rate (per 10 min)', k_peak: 'Peak per 10 min', k_over10: '10-min intervals over 10',
      k_flood: 'Time in flood', k_top: 'Top N share of load', k_chatter: 'Chattering alarms', k_fleeting: 'Fleeting alarms',
      k_stale: 'Stale alarms', k_low: 'Low priority share', k_medium: 'Medium priority share', k_high: 'High + critical share',
      k_ack: 'Time to acknowledge (median / p90)', k_unacked: 'Unacknowledged',
      v_acceptable: 'acceptable', v_manageable: 'manageable', v_over: 'over target', v_none: '—',
      no_change: 'keep current', no_advice: '(not a limit alarm, or no history)',
      active: ' (active {a} → {b} of the time)', raises_day: 'Alarms per day', peak_day: 'Peak per 10 min that day', count: 'Count',
      p_critical: 'Critical', p_high: 'High', p_medium: 'Medium', p_low: 'Low',
      need_login: 'Log in on the console first (the token is kept for this tab only).', failed: 'Could not load: {m}',
    },
  };
  const $ = (id) => document.getElementById(id);
  let lang = localStorage.getItem('hg.lang') === 'en' ? 'en' : 'zh';
  // The console opens this page with itself as opener; a browser that did not copy the tab's
  // session storage still lets the page read the console's (same origin).
  const fromOpener = () => {
    try {
      return window.opener ? window.opener.sessionStorage.getItem('hg.token') : null;
    } catch (e) {
      return null;
    }
  };
  const token = sessionStorage.getItem('hg.token') || fromOpener() || '';
  const charts = [];

  function t(key, vars) {
    let s = I18N[lang][key] ?? I18N.zh[key] ?? key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
    return s;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) tr.append(c instanceof Node ? wrapTd(c) : el('td', c));
    return tr;
  }

  function wrapTd(node) {
    const td = document.createElement('td');
    td.append(node);
    return td;
  }

  async function api(path) {
    const headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    const r = await fetch(path, { headers });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      const e = new Error(body.message || r.status + ' ' + r.statusText);
      e.status = r.status;
      throw e;
    }
    return r.json();
  }

  // The ISO week (Monday first) of a date, as `YYYY-Www`.
  function isoWeek(d) {
    const day = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
    const dow = day.getUTCDay() || 7;
    day.setUTCDate(day.getUTCDate() + 4 - dow);
    const year = day.getUTCFullYear();
    const week = Math.ceil(((day - Date.UTC(year, 0, 1)) / 86400000 + 1) / 7);
    return year + '-W' + String(week).padStart(2, '0');
  }

  const pct = (v) => (v === null || v === undefined ? '—' : (Math.round(v * 10) / 10) + ' %');
  const num = (v) => (v === null || v === undefined ? '—' : String(Math.round(v * 100) / 100));

  function duration(ms) {
    if (ms === null || ms === undefined) return '—';
    const s = Math.round(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    return (h ? h + ':' : '') + String(m).padStart(h ? 2 : 1, '0') + ':' + String(sec).padStart(2, '0');
  }

  function secs(ms) {
    return (Math.round(ms / 100) / 10) + ' s';
  }

  function showError(msg) {
    $('error').textContent = msg;
    $('error').hidden = !msg;
  }

  function applyLang() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    document.title = t('title');
    $('lang').textContent = lang === 'en' ? '中文' : 'English';
    $('lang').lang = lang === 'en' ? 'zh-CN' : 'en';
  }

  // One judged figure: its value, its target and the verdict, coloured by the verdict.
  function tile(label, m, fmt) {
    const box = el('div', null, 'tile v-' + (m.verdict || 'none'));
    box.append(el('div', label, 'tile-label'));
    box.append(el('div', fmt(m.value), 'tile-value'));
    const cmp = m.comparison === 'below' ? '< ' : m.comparison === 'about' ? '≈ ' : '≤ ';
    box.append(el('div', t('target', { c: cmp, t: fmt(m.target) }), 'tile-target'));
    box.append(el('div', t('v_' + (m.verdict || 'none')), 'tile-verdict'));
    box.dataset.figure = label;
    return box;
  }

  function plain(label, text) {
    const box = el('div', null, 'tile v-none');
    box.append(el('div', label, 'tile-label'));
    box.append(el('div', text, 'tile-value'));
    return box;
  }

  function renderTiles(f) {
    const tiles = [
      tile(t('k_average'), f.rate.average_per_10min, num),
      tile(t('k_peak'), f.rate.peak_per_10min, num),
      tile(t('k_over10'), f.rate.pct_intervals_over_10, pct),
      tile(t('k_flood'), f.flood.pct_time_in_flood, pct),
      tile(t('k_top'), f.bad_actors.top_share_pct, pct),
      tile(t('k_chatter'), f.chattering.count, num),
      tile(t('k_fleeting'), f.fleeting.count, num),
      tile(t('k_stale'), f.stale.count, num),
      tile(t('k_low'), f.priorities.low_pct, pct),
      tile(t('k_medium'), f.priorities.medium_pct, pct),
      tile(t('k_high'), f.priorities.high_pct, pct),
      plain(t('k_ack'), duration(f.acknowledgement.median_ms) + ' / ' + duration(f.acknowledgement.p90_ms)),
      plain(t('k_unacked'), String(f.acknowledgement.unacknowledged)),
    ];
    $('tiles').replaceChildren(...tiles);
  }

  function chart(box, opts, data) {
    const width = Math.max(300, box.clientWidth || 800);
    opts.width = width;
    box.replaceChildren();
    charts.push(new window.uPlot(opts, data, box));
  }

  const AXIS = { stroke: '#9aa8b8', grid: { stroke: '#2b3644' } };

  // One bar per site-local day, labelled by the day the KPI engine names (`2026-12-07`).
  function renderDaily(days) {
    const xs = days.map((d, i) => i);
    const labels = days.map((d) => d.key.slice(5));
    const raises = days.map((d) => d.figures.rate.raises);
    const peaks = days.map((d) => d.figures.rate.peak_per_10min.value);
    const bars = window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.6, 60] }) : undefined;
    chart($('daily-chart'), {
      height: 260,
      series: [
        { value: (u, v) => (v == null ? '—' : days[v].key) },
        { label: t('raises_day'), stroke: '#ff9500', fill: 'rgba(255,149,0,0.35)', paths: bars, points: { show: false } },
        { label: t('peak_day'), stroke: '#5ac8fa', width: 2, scale: 'peak' },
      ],
      scales: { x: { time: false, range: [-0.5, days.length - 0.5] }, peak: { range: (u, lo, hi) => [0, Math.max(12, hi)] } },
      axes: [
        { ...AXIS, splits: () => xs, values: (u, splits) => splits.map((s) => labels[s] ?? '') },
        { ...AXIS, label: t('raises_day') },
        { ...AXIS, scale: 'peak', side: 1, label: t('peak_day'), grid: { show: false } },
      ],
    }, [xs, raises, peaks]);
  }

  function renderPriorities(p) {
    const order = ['low', 'medium', 'high', 'critical'];
    const counts = order.map((k) => (p.counts.find((c) => c.priority === k) || { count: 0 }).count);
    const bars = window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.5, 80] }) : undefined;
    chart($('prio-chart'), {
      height: 200,
      series: [
        { value: (u, v) => (v == null ? '—' : t('p_' + order[v])) },
        { label: t('count'), stroke: '#ffd60a', fill: 'rgba(255,214,10,0.35)', paths: bars, points: { show: false } },
      ],
      scales: { x: { time: false, range: [-0.5, 3.5] } },
      axes: [
        { ...AXIS, splits: () => [0, 1, 2, 3], values: (u, splits) => splits.map((s) => t('p_' + order[s])) },
        { ...AXIS, label: t('count') },
      ],
    }, [[0, 1, 2, 3], counts]);
  }

  function settingsText(s) {
    return num(s.deadband) + ' / ' + secs(s.on_delay) + ' / ' + secs(s.off_delay);
  }

  function renderBadActors(actors, tuning) {
    const advice = new Map((tuning ? tuning.alarms : []).map((a) => [a.alarm_id, a]));
    const rows = actors.map((a) => {
      const adv = advice.get(a.alarm_id);
      const tr = row([
        a.alarm_id, a.raises, pct(a.share_pct),
        adv ? settingsText(adv.current) : '—',
        adv ? (adv.changed ? settingsText(adv.suggested) : t('no_change')) : t('no_advice'),
        adv ? adv.current_outcome.raises + ' / ' + adv.current_outcome.chattering + ' → '
          + adv.suggested_outcome.raises + ' / ' + adv.suggested_outcome.chattering
          + t('active', { a: pct(adv.current_outcome.active_pct), b: pct(adv.suggested_outcome.active_pct) }) : '—',
        adv ? secs(adv.suggested_outcome.max_added_delay_ms) + ' ≤ ' + secs(tuning.max_delay_ms) : '—',
      ]);
      tr.dataset.alarm = a.alarm_id;
      if (adv && adv.changed) tr.className = 'advice';
      return tr;
    });
    $('bad-rows').replaceChildren(...rows);
    $('bad-none').hidden = rows.length > 0;
  }

  function renderFloods(periods) {
    const rows = periods.map((p) => row([p.start_local, p.end_local + (p.ongoing ? t('ongoing') : ''), p.raises, p.peak_10min]));
    $('flood-rows').replaceChildren(...rows);
    $('flood-none').hidden = rows.length > 0;
  }

  function renderStale(alarms) {
    const rows = alarms.map((a) => row([a.alarm_id, a.since_local, duration(a.age_ms) + (a.ongoing ? t('ongoing') : '')]));
    $('stale-rows').replaceChildren(...rows);
    $('stale-none').hidden = rows.length > 0;
  }

  function query() {
    const p = new URLSearchParams({ week: $('week').value });
    if ($('position').value) p.set('position', $('position').value);
    return p;
  }

  let positionsKnown = false;

  async function load() {
    showError('');
    const q = query();
    const links = new URLSearchParams(q);
    links.set('lang', lang);
    $('report-html').href = '/api/v1/kpi/report.html?' + links;
    $('report-csv').href = '/api/v1/kpi/report.csv?' + links;
    let kpi;
    try {
      q.set('group', 'day,position');
      kpi = await api('/api/v1/kpi?' + q);
    } catch (e) {
      showError(e.status === 401 ? t('need_login') : t('failed', { m: e.message }));
      window.hgPerformance = { error: e.message, status: e.status };
      return;
    }
    if (!positionsKnown) {
      const opts = [el('option', t('all_positions'))];
      opts[0].value = '';
      for (const g of kpi.positions) {
        const o = el('option', g.key);
        o.value = g.key;
        opts.push(o);
      }
      $('position').replaceChildren(...opts);
      positionsKnown = true;
    }
    $('range').textContent = t('range', { from: kpi.from_local, to: kpi.to_local, off: kpi.utc_offset });
    const f = kpi.site;
    renderTiles(f);
    renderFloods(f.flood.periods);
    renderStale(f.stale.alarms);
    while (charts.length) charts.pop().destroy();
    renderDaily(kpi.days);
    renderPriorities(f.priorities);
    // Advice is for the whole site's bad actors: a point's settings do not depend on who
    // watches it.
    let tuning = null;
    try {
      const top = Math.max(1, Math.min(50, f.bad_actors.top.length));
      tuning = await api('/api/v1/tuning?from=' + kpi.from_ms + '&to=' + kpi.to_ms + '&top=' + top);
    } catch (e) {
      showError(t('failed', { m: e.message }));
    }
    renderBadActors(f.bad_actors.top, tuning);
    // For tests and diagnosis: what the page drew.
    window.hgPerformance = {
      week: $('week').value,
      tiles: [...document.querySelectorAll('#tiles .tile')].map((b) => ({ label: b.querySelector('.tile-label').textContent, verdict: b.className.replace('tile v-', ''), value: b.querySelector('.tile-value').textContent })),
      days: kpi.days.length,
      bad: [...document.querySelectorAll('#bad-rows tr')].map((r) => [...r.cells].map((c) => c.textContent)),
      floods: f.flood.periods.length,
      stale: f.stale.alarms.length,
      charts: charts.length,
    };
  }

  document.addEventListener('DOMContentLoaded', () => {
    applyLang();
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('week');
    $('week').value = fromHash || isoWeek(new Date());
    $('period').addEventListener('submit', (e) => {
      e.preventDefault();
      load();
    });
    $('lang').addEventListener('click', () => {
      lang = lang === 'en' ? 'zh' : 'en';
      localStorage.setItem('hg.lang', lang);
      positionsKnown = false;
      applyLang();
      load();
    });
    load();
  });
})();

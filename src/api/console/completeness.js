// Completeness page (数据完整率) for the safety manager: per hazard source and site-local day
// (default: yesterday on the gateway's clock) and per shift, the online rate (在线率) and data
// completeness (完整率) against the regulator's 99.5 % target, expected and received readings,
// every gap with its cause, the points of a hazard source, the day's CSV and JSON files, and
// the online rate of the last 7 days drawn with uPlot (vendored). Figures come as they are
// from /api/v1/completeness and its daily report (docs/completeness.md); times are site-local
// (`[kpi] utc_offset`). Read-only; all text goes in through textContent. It uses the token the
// console keeps for this tab.
'use strict';

(function () {
  const I18N = {
    zh: {
      title: '数据完整率', back: '返回值班台', day: '日期', apply: '查询',
      report_csv: '下载 CSV', report_json: '下载 JSON',
      sources: '危险源（目标 99.5 %）',
      note: '在线率：在线时间 ÷ 统计时长（通信中断、网关停运计为离线）；完整率：实收有效条数 ÷ 应收条数。公式见 docs/completeness.md。',
      points: '测点明细', gaps: '中断记录', shifts: '按班次', week: '近 7 天在线率', none: '无', no_gaps: '无中断',
      gaps_cut: '中断过多，只列出一部分；合计已计入全部中断。',
      col_source: '危险源', col_points: '测点数', col_online: '在线率', col_complete: '完整率', col_expected: '应收',
      col_good: '实收有效', col_bad: '实收无效', col_gaps: '中断次数', col_gap_time: '中断时长（通讯 / 传感器 / 网关）',
      col_point: '测点', col_start: '开始', col_end: '结束', col_length: '时长', col_cause: '原因', col_shift: '班次',
      drill: '测点', all: '全部', of: '（{s}）',
      cause_communication: '通信中断', cause_sensor_fault: '传感器故障', cause_gateway_down: '网关停运',
      range: '{day}：{from} 至 {to}（UTC{off}）', target: '目标', below: '未达标', met: '达标',
      need_login: '请先在值班台登录（令牌只在本标签页内保存）。', failed: '读取失败：{m}',
      unread: '以下测点的质量变化未能全部读取，中断可能不全：{p}',
      late: '未实时上报监管平台的时段（补传）', no_late: '无：监管平台实时收到了全部数据',
      col_uplink: '上报通道', col_late_start: '未实时上报开始', col_late_end: '平台恢复', col_backfill: '补传',
      still_down: '仍未恢复', backfilled: '已补传（{t} 完成）', not_backfilled: '未补传完',
    },
    en: {
      title: 'Data completeness', back: 'Back to console', day: 'Day', apply: 'Show',
      report_csv: 'Download CSV', report_json: 'Download JSON',
      sources: 'Hazard sources (target 99.5 %)',
      note: 'Online rate: time online ÷ time in the period (communication loss and gateway downtime count as offline); completeness: good readings received ÷ readings expected. Formulas in docs/completeness.md.',
      points: 'Points', gaps: 'Gaps', shifts: 'By shift', week: 'Online rate, last 7 days', none: 'None', no_gaps: 'No gaps',
      gaps_cut: 'Too many gaps: only some are listed; the totals count every one.',
      col_source: 'Hazard source', col_points: 'Points', col_online: 'Online rate', col_complete: 'Completeness', col_expected: 'Expected',
      col_good: 'Received good', col_bad: 'Received bad', col_gaps: 'Gaps', col_gap_time: 'Gap time (comm / sensor / gateway)',
      col_point: 'Point', col_start: 'Start', col_end: 'End', col_length: 'Length', col_cause: 'Cause', col_shift: 'Shift',
      drill: 'Points', all: 'All', of: '({s})',
      cause_communication: 'Communication lost', cause_sensor_fault: 'Sensor fault', cause_gateway_down: 'Gateway down',
      range: '{day}: {from} to {to} (UTC{off})', target: 'Target', below: 'below target', met: 'meets target',
      need_login: 'Log in on the console first (the token is kept for this tab only).', failed: 'Could not load: {m}',
      unread: 'Not every quality change of these points could be read; their gaps may be incomplete: {p}',
      late: 'Data the regulator did not get in real time (backfill)', no_late: 'None: the regulator got all data in real time',
      col_uplink: 'Uplink', col_late_start: 'Late from', col_late_end: 'Platform back', col_backfill: 'Backfill',
      still_down: 'not yet', backfilled: 'backfilled (done {t})', not_backfilled: 'not yet backfilled',
    },
  };
  // The regulator's target for both rates (docs/completeness.md).
  const TARGET = 0.995;
  const DAY_MS = 86400000;
  const SERIES_COLOURS = ['#5ac8fa', '#34c759', '#ff9f0a', '#bf5af2', '#64d2ff', '#ffd60a'];
  const $ = (id) => document.getElementById(id);
  let lang = localStorage.getItem('hg.lang') === 'en' ? 'en' : 'zh';
  const fromOpener = () => {
    try {
      return window.opener ? window.opener.sessionStorage.getItem('hg.token') : null;
    } catch (e) {
      return null;
    }
  };
  const token = sessionStorage.getItem('hg.token') || fromOpener() || '';
  let chart = null;
  let names = new Map();      // hazard source code -> name
  let sourceOf = new Map();   // point id -> hazard source code
  let shown = null;           // what was loaded: { report, shifts, week }
  let drill = '';             // the hazard source whose points are shown

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
    return r;
  }
  const json = async (path) => (await api(path)).json();

  // ---- formats ----
  const pad = (n) => String(n).padStart(2, '0');
  // `y` with `d` decimals the way the daily CSV writes it: from the number's exact decimal
  // value, a value exactly halfway going to the even digit (toFixed would round it up), so
  // the page and the file never disagree.
  function fixed(y, d) {
    const [int, frac] = Math.abs(y).toFixed(60).split('.');
    const scale = 10 ** d;
    let n = Number(int) * scale + Number(frac.slice(0, d));
    const rest = frac.slice(d);
    const half = '5'.padEnd(rest.length, '0');
    if (rest > half || (rest === half && n % 2 === 1)) n += 1;
    return (y < 0 ? '-' : '') + Math.floor(n / scale) + '.' + String(n % scale).padStart(d, '0');
  }
  // A rate as a percentage with two decimals, as the daily CSV writes it.
  const pct = (v) => fixed(v * 100, 2) + ' %';
  const mins = (ms) => fixed(ms / 60000, 1);
  let offsetMin = 480;
  function parseOffset(text) {
    const m = /^([+-])(\d\d):(\d\d)$/.exec(text || '');
    return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 480;
  }
  // Site-local wall time of `ms`: `YYYY-MM-DD HH:MM:SS` (`time` only: `HH:MM:SS`).
  function local(ms, timeOnly) {
    const d = new Date(ms + offsetMin * 60000);
    const hms = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
    return timeOnly ? hms : d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' + hms;
  }
  function length(ms) {
    const s = Math.round(ms / 1000);
    const h = Math.floor(s / 3600);
    return (h ? h + ':' + pad(Math.floor((s % 3600) / 60)) : String(Math.floor(s / 60))) + ':' + pad(s % 60);
  }

  // A rate cell coloured against the target; the verdict is in its title and class, never by
  // colour alone.
  function rate(v) {
    const ok = v >= TARGET;
    const td = el('td', pct(v), 'num rate ' + (ok ? 'met' : 'below'));
    td.title = t('target') + ' 99.50 % · ' + t(ok ? 'met' : 'below');
    td.append(el('span', ok ? '' : ' ▼', 'mark'));
    return td;
  }

  function figures(tr, r) {
    tr.append(rate(r.online_rate), rate(r.completeness),
      el('td', r.expected, 'num'), el('td', r.received_good, 'num'), el('td', r.received_bad, 'num'),
      el('td', r.gap_count, 'num'));
  }

  const gapTime = (r) => el('td', mins(r.gap_ms.communication) + ' / ' + mins(r.gap_ms.sensor_fault) + ' / ' + mins(r.gap_ms.gateway_down), 'num');
  const sourceName = (code) => (names.has(code) ? names.get(code) + ' · ' + code : code);

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

  // ---- rendering ----
  function renderSources(report) {
    const rows = report.hazard_sources.map((r) => {
      const tr = el('tr');
      tr.dataset.source = r.key;
      tr.append(el('td', sourceName(r.key)), el('td', r.points, 'num'));
      figures(tr, r);
      tr.append(gapTime(r));
      const cell = el('td');
      const b = el('button', t('drill'));
      b.type = 'button';
      b.className = 'drill';
      b.addEventListener('click', () => { drill = drill === r.key ? '' : r.key; render(); });
      cell.append(b);
      tr.append(cell);
      if (drill === r.key) tr.classList.add('picked');
      return tr;
    });
    $('source-rows').replaceChildren(...rows);
    $('source-none').hidden = rows.length > 0;
  }

  function renderPoints(report) {
    $('points-section').hidden = !drill;
    $('points-of').textContent = drill ? t('of', { s: sourceName(drill) }) : '';
    const rows = report.points.filter((r) => sourceOf.get(r.key) === drill).map((r) => {
      const tr = el('tr');
      tr.dataset.point = r.key;
      tr.append(el('td', r.key));
      figures(tr, r);
      tr.append(gapTime(r));
      return tr;
    });
    $('point-rows').replaceChildren(...rows);
  }

  // Every gap of the day's points that belong to a hazard source (or to the one drilled into).
  function dayGaps(report) {
    return report.points
      .filter((r) => sourceOf.has(r.key) && (!drill || sourceOf.get(r.key) === drill))
      .flatMap((r) => r.gaps)
      .sort((a, b) => a.start_ms - b.start_ms || (a.point < b.point ? -1 : (a.point > b.point ? 1 : 0)));
  }

  function renderGaps(report) {
    $('gaps-of').textContent = drill ? t('of', { s: sourceName(drill) }) : '';
    const rows = dayGaps(report).map((g) => {
      const tr = el('tr', null, 'gap ' + g.cause);
      tr.dataset.point = g.point;
      tr.dataset.cause = g.cause;
      tr.append(el('td', sourceName(sourceOf.get(g.point))), el('td', g.point),
        el('td', local(g.start_ms, true), 'num'), el('td', local(g.end_ms, true), 'num'),
        el('td', length(g.end_ms - g.start_ms), 'num'), el('td', t('cause_' + g.cause), 'cause'));
      return tr;
    });
    $('gap-rows').replaceChildren(...rows);
    $('gap-none').hidden = rows.length > 0;
    $('gap-cut').hidden = !report.gaps_truncated;
  }

  // The spans the regulator uplinks did not deliver live, and whether each was backfilled.
  function renderLate(report) {
    const rows = (report.regulator_spans || []).map((s) => {
      const tr = el('tr', null, s.backfilled ? 'late done' : 'late owed');
      tr.dataset.uplink = s.uplink;
      tr.append(el('td', s.uplink), el('td', local(s.start_ms), 'num'),
        el('td', s.end_ms == null ? t('still_down') : local(s.end_ms), 'num'),
        el('td', s.backfilled ? t('backfilled', { t: local(s.backfilled_at_ms) }) : t('not_backfilled'), 'backfill'));
      return tr;
    });
    $('late-rows').replaceChildren(...rows);
    $('late-none').hidden = rows.length > 0;
  }

  function renderShifts(shifts) {
    const rows = shifts.rows.filter((r) => !drill || r.key === drill).map((r) => {
      const tr = el('tr');
      tr.dataset.shift = r.bucket;
      tr.dataset.source = r.key;
      tr.append(el('td', r.bucket, 'num'), el('td', sourceName(r.key)));
      figures(tr, r);
      return tr;
    });
    $('shift-rows').replaceChildren(...rows);
  }

  const AXIS = { stroke: '#9aa8b8', grid: { stroke: '#2b3644' } };

  // The online rate per day of each hazard source, with the target as a dashed line.
  function renderWeek(week) {
    const days = [...new Set(week.rows.map((r) => r.bucket))].sort();
    const keys = [...new Set(week.rows.map((r) => r.key))].sort().filter((k) => !drill || k === drill);
    const xs = days.map((d, i) => i);
    const series = [{ label: t('day'), value: (u, v) => (v == null ? '—' : days[v]) }];
    const data = [xs];
    keys.forEach((k, i) => {
      data.push(days.map((d) => {
        const r = week.rows.find((x) => x.key === k && x.bucket === d);
        return r ? Math.round(r.online_rate * 10000) / 100 : null;
      }));
      series.push({ label: sourceName(k), stroke: SERIES_COLOURS[i % SERIES_COLOURS.length], width: 2, value: (u, v) => (v == null ? '—' : v.toFixed(2) + ' %') });
    });
    data.push(days.map(() => TARGET * 100));
    series.push({ label: t('target') + ' 99.5 %', stroke: '#ff453a', dash: [8, 6], width: 1.5, points: { show: false } });
    const box = $('week-chart');
    if (chart) chart.destroy();
    box.replaceChildren();
    chart = new window.uPlot({
      width: Math.max(300, box.clientWidth || 800),
      height: 260,
      series,
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, days.length - 0.5)] }, y: { range: (u, lo) => [Math.min(99, Math.floor(lo ?? 99)), 100] } },
      axes: [
        { ...AXIS, splits: () => xs, values: (u, splits) => splits.map((s) => (days[s] ?? '').slice(5)) },
        { ...AXIS, label: t('col_online') + ' %' },
      ],
    }, data, box);
    return { days, keys, data: data.slice(1, 1 + keys.length) };
  }

  function render() {
    if (!shown) return;
    const { report, shifts, week } = shown;
    $('range').textContent = t('range', { day: report.day, from: local(report.from_ms), to: local(report.to_ms), off: report.utc_offset });
    showError(report.unread_points.length ? t('unread', { p: report.unread_points.join(', ') }) : '');
    renderSources(report);
    renderPoints(report);
    renderGaps(report);
    renderLate(report);
    renderShifts(shifts);
    const drawn = renderWeek(week);
    // For tests and diagnosis: what the page drew, as text where the page shows text.
    const cells = (sel) => [...document.querySelectorAll(sel)].map((r) => [...r.cells].map((c) => c.textContent));
    window.hgCompleteness = {
      day: report.day,
      drill,
      sources: cells('#source-rows tr'),
      points: cells('#point-rows tr'),
      gaps: cells('#gap-rows tr'),
      shifts: cells('#shift-rows tr'),
      late: cells('#late-rows tr'),
      below: [...document.querySelectorAll('#source-rows td.rate.below')].length,
      week: drawn,
    };
  }

  // ---- loading ----
  async function load() {
    showError('');
    const day = $('day').value;
    let report;
    let shifts;
    let week;
    try {
      if (!names.size) {
        const [settings, points] = await Promise.all([json('/api/v1/console'), json('/api/v1/points')]);
        names = new Map((settings.hazard_sources || []).map((h) => [h.id, h.name]));
        sourceOf = new Map(points.filter((p) => p.hazard_source).map((p) => [p.id, p.hazard_source]));
      }
      report = await json('/api/v1/completeness/report.json' + (day ? '?day=' + encodeURIComponent(day) : ''));
      offsetMin = parseOffset(report.utc_offset);
      const end = report.from_ms + DAY_MS;
      [shifts, week] = await Promise.all([
        json('/api/v1/completeness?group=hazard_source&by=shift&from=' + report.from_ms + '&to=' + end),
        json('/api/v1/completeness?group=hazard_source&by=day&from=' + (report.from_ms - 6 * DAY_MS) + '&to=' + end),
      ]);
    } catch (e) {
      showError(e.status === 401 ? t('need_login') : t('failed', { m: e.message }));
      window.hgCompleteness = { error: e.message, status: e.status };
      return;
    }
    $('day').value = report.day;
    const q = '?day=' + encodeURIComponent(report.day);
    $('report-csv').href = '/api/v1/completeness/report.csv' + q + '&lang=' + lang;
    $('report-csv').download = 'completeness-' + report.day + '.csv';
    $('report-json').href = '/api/v1/completeness/report.json' + q;
    $('report-json').download = 'completeness-' + report.day + '.json';
    shown = { report, shifts, week };
    render();
  }

  // A link to a report: with a token the file is fetched with it and saved from memory (a
  // plain link cannot carry the Authorization header).
  async function download(ev) {
    if (!token) return;
    ev.preventDefault();
    const a = ev.currentTarget;
    try {
      const blob = await (await api(a.getAttribute('href'))).blob();
      const save = el('a');
      save.href = URL.createObjectURL(blob);
      save.download = a.download;
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(save.href), 10000);
    } catch (e) {
      showError(e.status === 401 ? t('need_login') : t('failed', { m: e.message }));
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    applyLang();
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('day');
    if (fromHash) $('day').value = fromHash;
    $('period').addEventListener('submit', (e) => {
      e.preventDefault();
      load();
    });
    $('report-csv').addEventListener('click', download);
    $('report-json').addEventListener('click', download);
    $('lang').addEventListener('click', () => {
      lang = lang === 'en' ? 'zh' : 'en';
      localStorage.setItem('hg.lang', lang);
      applyLang();
      if (shown) $('report-csv').href = $('report-csv').href.replace(/lang=\w+/, 'lang=' + lang);
      render();
    });
    fetch('/healthz').then((r) => r.json()).then((h) => { $('gateway').textContent = h.gateway_id || ''; }).catch(() => {});
    load();
  });
})();

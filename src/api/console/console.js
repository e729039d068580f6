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
      col_alarm: '报警', col_value: '当前值 / 触发值 / 限值', col_state: '状态', col_action: '操作',
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
      c_vote: '表决报警', c_stuck: '数据卡滞', c_pinned: '量程端饱和', c_implausible_jump: '数据跳变',
      c_disk_space: '数据盘空间不足', c_storage_write: '存储写入失败', c_store_backlog: '转发积压',
      c_output_fault: '输出故障', c_clock_jump: '系统时钟跳变', c_pair_degraded: '双机热备降级', gateway_self: '本网关（自诊断）',
      l_high: '高报（一级）', l_high_high: '高高报（二级）', l_low: '低报', l_low_low: '低低报',
      l_blue: '蓝色预警', l_yellow: '黄色预警', l_orange: '橙色预警', l_red: '红色预警',
      q_good: '正常', q_comm_fault: '通信故障', q_decode_error: '解码错误',
      q_out_of_range: '超量程', q_stale: '数据过期', q_uncertain: '数据存疑', q_suspect: '数据可疑', q_no_data: '无数据',
      v_ok: '正常', v_alarms: '{n} 条报警', v_comm_lost: '通信中断', v_degraded: '部分异常',
      v_nodata: '无数据', d_points: '{n} 个测点', d_bad: '{b} 个异常',
      grade: '{g}级', v_alarms_shelved: '{n} 条报警（{s} 条已搁置）', d_shelved: '{s} 条已搁置', d_oos: '{o} 条停用',
      no_alarms_held: '无待处理报警；另有 {n} 条已搁置 / 停用，见下方',
      audio_blocked: '报警声音被浏览器阻止：点击此处启用声音',
      conn_lost: '与网关的连接中断：画面数据已停止更新，请立即现场确认', conn_since: '自 {t} 起',
      live: '当前', trip: '触发', cleared: '恢复时', limit: '限值', latched_by: '锁存：需操作员复位',
      role_viewer: '只读', role_operator: '操作员', role_admin: '管理员',
      open_api_warn: '免登录模式：任何人可操作',
      read_only: '只读：网关对外监听且未配置令牌，确认、搁置等操作已禁用',
      shelve: '搁置', unshelve: '取消搁置', reset: '复位', oos: '停用', rts: '恢复使用',
      shelve_title: '搁置报警', unshelve_title: '取消搁置', reset_title: '复位锁存报警',
      oos_title: '停用报警（检修）', rts_title: '恢复使用', reason: '原因（必填）', duration: '时长',
      need_reason: '请填写原因', forbidden_action: '此令牌无权执行该操作：{m}',
      st_on: '动作 (1)', st_off: '未动作 (0)', ago: '{a} 前',
      gw_fault: '网关自身故障（报警判断照常，数据可能未送达）：',
      pair_role: '双机热备：{n}机{r}', role_active: '主用', role_standby: '备用', pair_peer_down: '（备机未同步，无法切换）',
      handover: '交接班', print: '打印',
      h_title: '交接班记录 {from} — {to}', h_raised: '本班报警', h_acked: '已确认', h_open: '仍未处理',
      h_tta: '平均确认用时', h_tta_max: '最长确认用时', h_actions: '操作记录',
      silenced: '已消音至 {t}', journal: '报警记录', f_from: '从', f_to: '到', f_user: '操作人', f_apply: '查询', f_csv: '导出 CSV',
      f_time: '时间', f_transition: '变化', f_tta: '确认用时', f_any: '全部', j_count: '共 {n} 条',
      t_raised: '报警', t_cleared: '恢复', t_acknowledged: '确认', t_reset: '复位', t_shelved: '搁置',
      t_unshelved: '取消搁置', t_suppressed: '抑制', t_unsuppressed: '取消抑制',
      t_removed_from_service: '停用', t_returned_to_service: '恢复使用',
      trend: '趋势', r_hour: '1 小时', r_shift: '本班 8 小时', r_day: '1 天', r_week: '1 周',
      overlay: '叠加测点', close: '关闭', trend_none: '（选择）',
      trend_note: '虚线：报警设定值；竖线：报警发生（红）、恢复（绿）、确认（蓝）',
      category: '报警类别', choose: '（请选择）', need_category: '请选择报警类别',
      cat_real_alarm: '真实报警', cat_false_alarm: '误报', cat_equipment_fault: '设备故障',
      cat_maintenance: '检修', cat_drill: '演练',
      select: '选择', ack_selected: '确认所选（{n}）', ack_subject: '确认该对象全部（{n}）',
      ack_many_title: '批量确认报警', ack_many_what: '共 {n} 条报警：',
      ack_partial: '{a} 条已确认，{r} 条未能确认：{m}', h_categories: '确认类别',
      b_online: '在线', b_offline: '离线', b_since: '自 {t}', b_reconnects: '重连 {n} 次', b_error: '最近错误：{m}',
      broker: 'MQTT 服务器', list_sep: '；', performance: '报警绩效',
      c_early_warning: '预警', early: '预警', ew_predict: '预计 {t} 达到 {level} {limit}',
      ew_turned: '趋势已回落，预警解除', ew_unack_active: '预警 未确认', ew_ack_active: '预警 已确认',
      ew_unack_rtn: '预警已解除 未确认', ew_latched: '预警 待复位', v_warnings: '{n} 条预警', d_warnings: '{n} 条预警',
      ew_projection: '{p} 预计趋势', trend_ew_note: '紫色：预警（未越限）；紫色虚线：预计趋势至设定值',
      completeness: '数据完整率',
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
      col_alarm: 'Alarm', col_value: 'Now / at trip / limit', col_state: 'State', col_action: 'Action',
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
      c_vote: 'Vote', c_stuck: 'Stuck value', c_pinned: 'Pinned at range end', c_implausible_jump: 'Implausible jump',
      c_disk_space: 'Data disk low', c_storage_write: 'Storage writes failing', c_store_backlog: 'Store backlog',
      c_output_fault: 'Output fault', c_clock_jump: 'Clock jump', c_pair_degraded: 'Standby pair degraded', gateway_self: 'This gateway (self-check)',
      l_high: 'High (level 1)', l_high_high: 'High-high (level 2)', l_low: 'Low', l_low_low: 'Low-low',
      l_blue: 'Blue warning', l_yellow: 'Yellow warning', l_orange: 'Orange warning', l_red: 'Red warning',
      q_good: 'Good', q_comm_fault: 'Comm fault', q_decode_error: 'Decode error',
      q_out_of_range: 'Out of range', q_stale: 'Stale', q_uncertain: 'Uncertain', q_suspect: 'Suspect', q_no_data: 'No data',
      v_ok: 'Normal', v_alarms: '{n} alarm(s)', v_comm_lost: 'Comm lost', v_degraded: 'Degraded',
      v_nodata: 'No data', d_points: '{n} points', d_bad: '{b} bad',
      grade: 'grade {g}', v_alarms_shelved: '{n} alarm(s), {s} shelved', d_shelved: '{s} shelved', d_oos: '{o} out of service',
      no_alarms_held: 'Nothing to handle; {n} shelved / out of service below',
      audio_blocked: 'The browser blocks alarm sound: click here to enable it',
      conn_lost: 'CONNECTION TO THE GATEWAY LOST: values are not updating, check on site now', conn_since: 'since {t}',
      live: 'now', trip: 'trip', cleared: 'at return', limit: 'limit', latched_by: 'Latched: an operator must reset',
      role_viewer: 'viewer', role_operator: 'operator', role_admin: 'admin',
      open_api_warn: 'Open mode: anyone can act',
      read_only: 'Read-only: the gateway listens beyond loopback without tokens; actions are disabled',
      shelve: 'Shelve', unshelve: 'Unshelve', reset: 'Reset', oos: 'Out of service', rts: 'Return',
      shelve_title: 'Shelve alarm', unshelve_title: 'Unshelve alarm', reset_title: 'Reset latched alarm',
      oos_title: 'Take out of service', rts_title: 'Return to service', reason: 'Reason (required)', duration: 'Duration',
      need_reason: 'Please give a reason', forbidden_action: 'This token may not do this: {m}',
      st_on: 'ON (1)', st_off: 'OFF (0)', ago: '{a} ago',
      gw_fault: 'Gateway fault (alarms still evaluated; data may not be delivered): ',
      pair_role: 'Standby pair: node {n} {r}', role_active: 'active', role_standby: 'standby', pair_peer_down: ' (standby not following: no switch-over possible)',
      handover: 'Shift handover', print: 'Print',
      h_title: 'Shift handover {from} — {to}', h_raised: 'Raised this shift', h_acked: 'Acknowledged', h_open: 'Still open',
      h_tta: 'Mean time to ack', h_tta_max: 'Longest time to ack', h_actions: 'Operator actions',
      silenced: 'Silenced until {t}', journal: 'Alarm journal', f_from: 'From', f_to: 'To', f_user: 'User', f_apply: 'Search', f_csv: 'Export CSV',
      f_time: 'Time', f_transition: 'Change', f_tta: 'Time to ack', f_any: 'All', j_count: '{n} entries',
      t_raised: 'Raised', t_cleared: 'Cleared', t_acknowledged: 'Acknowledged', t_reset: 'Reset', t_shelved: 'Shelved',
      t_unshelved: 'Unshelved', t_suppressed: 'Suppressed', t_unsuppressed: 'Unsuppressed',
      t_removed_from_service: 'Out of service', t_returned_to_service: 'Returned to service',
      trend: 'Trend', r_hour: '1 hour', r_shift: 'Shift (8 h)', r_day: '1 day', r_week: '1 week',
      overlay: 'Overlay point', close: 'Close', trend_none: '(choose)',
      trend_note: 'Dashed: alarm set-points; vertical lines: alarm raised (red), cleared (green), acknowledged (blue)',
      category: 'Category', choose: '(choose)', need_category: 'Please choose a category',
      cat_real_alarm: 'Real alarm', cat_false_alarm: 'False alarm', cat_equipment_fault: 'Equipment fault',
      cat_maintenance: 'Maintenance', cat_drill: 'Drill',
      select: 'Select', ack_selected: 'Acknowledge selected ({n})', ack_subject: 'Acknowledge all on this subject ({n})',
      ack_many_title: 'Acknowledge alarms', ack_many_what: '{n} alarms: ',
      ack_partial: '{a} acknowledged, {r} not: {m}', h_categories: 'Acknowledged as',
      b_online: 'Online', b_offline: 'Offline', b_since: 'since {t}', b_reconnects: '{n} reconnects', b_error: 'Last error: {m}',
      broker: 'MQTT broker', list_sep: '; ', performance: 'Alarm performance',
      c_early_warning: 'Early warning', early: 'Early warning', ew_predict: 'Predicted to reach {level} {limit} at {t}',
      ew_turned: 'Trend turned, warning over', ew_unack_active: 'Warning, unacked', ew_ack_active: 'Warning, acked',
      ew_unack_rtn: 'Warning over, unacked', ew_latched: 'Warning, reset needed', v_warnings: '{n} early warning(s)', d_warnings: '{n} early warning(s)',
      ew_projection: '{p} projected trend', trend_ew_note: 'Violet: early warning (no limit crossed yet); violet dashed: projected trend to the set-point',
      completeness: 'Data completeness',
    },
  };
  const PRIORITY_RANK = { low: 1, medium: 2, high: 3, critical: 4 };
  const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 };
  const POINTS_EVERY_MS = 2000;
  const SUMMARY_EVERY_MS = 5000;
  const HORN_EVERY_MS = 2500;
  const RETRY_MS = 3000;
  // A feed that drops and comes straight back (a proxy, a reload of the gateway) is not yet a
  // lost connection; one still down after this is.
  const CONN_GRACE_MS = 4000;
  // Silence stops the horn for this long; acknowledging is separate and still needed.
  const SILENCE_MS = 120000;
  const BAD_QUALITY = new Set(['comm_fault', 'decode_error', 'out_of_range', 'stale']);
  // What an operator may find an alarm to be, recorded with the acknowledgement (the API's
  // `category`); the console always asks for one.
  const CATEGORIES = ['real_alarm', 'false_alarm', 'equipment_fault', 'maintenance', 'drill'];
  const SHELVE_CHOICES = [[900, '15 min'], [1800, '30 min'], [3600, '1 h'], [7200, '2 h'], [14400, '4 h'], [28800, '8 h']];

  const $ = (id) => document.getElementById(id);
  let lang = localStorage.getItem('hg.lang') === 'en' ? 'en' : 'zh';
  let token = sessionStorage.getItem('hg.token') || '';
  let openApi = false;
  // Who we are and the site's policy (GET /api/v1/console); until it loads, nothing may act.
  let settings = { user: null, role: 'viewer', open_api: false, sound_from: 'high', shelving: [] };
  let alarms = new Map();     // alarm_id -> latest transition record
  let pending = null;         // transitions received while a snapshot loads
  let loadGen = 0;
  let loaded = false;
  let points = [];
  // `/api/v1/devices`: every device's health (Modbus, OPC UA, MQTT brokers) and label.
  let devices = [];
  let pointsById = new Map();
  let flood = { active: false, rate: 0 };
  let feed = null;
  let feedUp = false;
  let pollOk = true;
  let connDownSince = null;
  let connLost = false;
  let audio = null;
  let silence = null;         // { until, ids } while the horn is silenced
  let hornState = 'off';
  let beeps = 0;
  let actTarget = null;
  let pointsSoon = null;

  function t(key, vars) {
    let s = (I18N[lang][key] ?? I18N.zh[key] ?? key);
    for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
    return s;
  }

  // Fills a <select> with `items` ([value, text]) after an optional first choice `blank` (value
  // ''), keeping the current choice when it is still offered.
  function fillSelect(select, blank, items) {
    const keep = select.value;
    const opts = items.map(([value, text]) => { const o = el('option', null, text); o.value = value; return o; });
    if (blank !== null) { const o = el('option', null, blank); o.value = ''; opts.unshift(o); }
    select.replaceChildren(...opts);
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
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
  // Hours and minutes (the date too when not today), for a predicted crossing.
  function fmtHm(ns) {
    const d = new Date(ns / 1e6);
    const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
    return d.toDateString() === new Date().toDateString() ? hm : pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm;
  }
  // "预计 14:32 达到 高报（一级） 25 %LEL": when an early warning's trend reaches which set-point.
  function predictText(a) {
    if (a.predicted_at == null) return null;
    const limit = a.limit == null ? '' : a.limit + (a.unit ? ' ' + a.unit : '');
    return t('ew_predict', { t: fmtHm(a.predicted_at), level: a.level ? t('l_' + a.level) : '', limit }).trim();
  }
  // A value the source (uncertain) or the gateway's data-quality checks (suspect) doubt.
  function doubtful(q) {
    return q === 'uncertain' || q === 'suspect';
  }

  function fmtValue(v, unit) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '—';
    return v.toFixed(2) + (unit ? ' ' + unit : '');
  }
  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    const a = s < 120 ? s + ' s' : (s < 7200 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h');
    return t('ago', { a });
  }
  // What a point reads, as a duty officer should see it: a state point its state, a faulty
  // reading its fault (never a scaled raw number), otherwise the value with its unit.
  function pointText(p) {
    if (!p) return '—';
    if (p.quality === 'no_data') return '—';
    if (BAD_QUALITY.has(p.quality)) return t('q_' + p.quality);
    if (p.kind === 'state' && Number.isFinite(p.value)) return p.value >= 0.5 ? t('st_on') : t('st_off');
    return fmtValue(p.value, p.unit) + (doubtful(p.quality) ? ' ?' : '');
  }

  // ---- alarm state (ISA-18.2 overlays) ----
  const visible = (a) => a.state !== 'normal' || a.shelved_until != null || a.suppressed || a.out_of_service;
  const annunciated = (a) => a.state !== 'normal' && a.shelved_until == null && !a.suppressed && !a.out_of_service;
  // Unacknowledged: unack_active, unack_rtn, and a latched alarm that cleared before its ack.
  const needsAck = (a) => !a.acknowledged && a.state !== 'normal';
  // Sounds: annunciated, unacknowledged, at or above the site's `[console] sound_from`.
  const soundable = (a) => annunciated(a) && needsAck(a)
    && PRIORITY_RANK[a.priority] >= PRIORITY_RANK[settings.sound_from || 'high'];
  // An early warning (预警): the trend heads for a set-point not yet crossed. It counts and
  // sounds by its own priority but is drawn apart (its own colour and label, the predicted
  // crossing instead of a trip value), so it never reads as a crossed limit.
  const isWarning = (a) => a.condition === 'early_warning';
  const mayAct = () => ROLE_RANK[settings.role] >= ROLE_RANK.operator;
  const shelveRule = (prio) => settings.shelving.find((r) => r.priority === prio);

  function applyTo(map, e) {
    const cur = map.get(e.alarm_id);
    if (cur && e.seq && cur.seq > e.seq) return false; // older than what we show
    if (visible(e)) map.set(e.alarm_id, e); else map.delete(e.alarm_id);
    return true;
  }

  function onAlarm(e) {
    if (pending) pending.push(e);
    applyTo(alarms, e);
    // An alarm back from shelving or out of service is news: a silence does not cover it.
    if (silence && (e.transition === 'unshelved' || e.transition === 'returned_to_service')) silence.ids.delete(e.alarm_id);
    // The value behind a transition is news too: fetch values now rather than at the next poll.
    if (!pointsSoon) pointsSoon = setTimeout(() => { pointsSoon = null; loadPoints(); }, 200);
    scheduleRender();
  }

  // ---- API ----
  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.message) || ('HTTP ' + status));
      this.status = status;
      this.code = body && body.error;
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
    const next = new Map();
    for (const a of list) next.set(a.alarm_id, a);
    for (const e of pending) applyTo(next, e);
    pending = null;
    alarms = next;
    loaded = true;
    scheduleRender();
  }

  async function loadPoints() {
    try {
      points = await api('/api/v1/points');
      pointsById = new Map(points.map((p) => [p.id, p]));
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

  async function loadDevices() {
    try {
      devices = await api('/api/v1/devices');
      renderDevices([...alarms.values()]);
    } catch (_) { /* shown by the connection state */ }
  }

  // A point's or device's label (`[labels]` in the config): its name and where it is.
  const placeText = (label) => {
    const l = label && label.location;
    return l ? [l.area, l.unit, l.floor].filter(Boolean).join(' · ') : '';
  };
  const deviceLabel = (name) => {
    const d = devices.find((x) => x.name === name);
    return d && d.label;
  };
  // Names a subject for the duty officer: the label's name, else the id.
  function subjectCell(a) {
    const td = el('td', 'id subject');
    // The gateway's self-diagnostic alarms are on its `gateway` pseudo-device (a name no
    // configured device may take): say so in the operator's language.
    const self = a.subject_kind === 'device' && a.subject === 'gateway' && a.rule === 'self_diagnostic';
    const label = self ? { name: t('gateway_self') }
      : a.subject_kind === 'point' ? (pointsById.get(a.subject) || {}).label
        : (a.subject_kind === 'device' ? deviceLabel(a.subject) : null);
    if (label && label.name) {
      td.appendChild(el('span', 'label-name', label.name));
      td.appendChild(el('span', 'label-id', a.subject));
      const place = placeText(label);
      if (place) td.appendChild(el('span', 'label-place', place));
    } else td.textContent = a.subject;
    return td;
  }

  // The gateway's own faults (`/readyz`: a store that cannot send, a silent rules engine)
  // are shown to the duty officer, not only to the orchestrator.
  let problems = [];
  // The node's place in a hot-standby pair (GET /api/v1/pair); hidden outside a pair.
  let pair = null;
  async function loadPair() {
    try {
      pair = await fetch('/api/v1/pair').then((r) => (r.ok ? r.json() : null));
    } catch (_) { pair = null; }
    renderPair();
  }

  function renderPair() {
    const p = $('pair');
    const inPair = !!pair && pair.role !== 'single';
    p.hidden = !inPair;
    if (!inPair) return;
    const role = t(pair.role === 'active' ? 'role_active' : 'role_standby');
    p.textContent = t('pair_role', { n: String(pair.node || '').toUpperCase(), r: role })
      + (pair.role === 'active' && !pair.peer_up ? t('pair_peer_down') : '');
    p.classList.toggle('degraded', pair.role === 'active' && !pair.peer_up);
  }

  async function loadReady() {
    loadPair();
    try {
      const r = await fetch('/readyz');
      const body = await r.json();
      problems = body.ready === false ? (body.problems || []) : [];
    } catch (_) { return; /* shown by the connection state */ }
    renderProblems();
  }

  function renderProblems() {
    const b = $('gateway-problems');
    b.hidden = problems.length === 0;
    b.replaceChildren(el('strong', null, t('gw_fault')), ...problems.map((p) => el('span', 'problem', p)));
  }

  async function loadSettings() {
    settings = await api('/api/v1/console');
    // The buttons depend on the role: draw them in the same task as the header names it.
    renderWho();
    render();
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
      await Promise.all([loadSettings(), loadAlarms(), loadPoints(), loadSummary(), loadReady(), loadDevices()]);
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
      feedUp = false;
      renderConn();
      setTimeout(start, RETRY_MS);
      return;
    }
    // An open API answers without a token; then actions carry a typed name.
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
    pointsById = new Map();
    loaded = false;
    settings = { user: null, role: 'viewer', open_api: false, sound_from: 'high', shelving: [] };
    scheduleRender();
    renderWho();
    needLogin();
  }

  function renderWho() {
    const who = $('who');
    who.replaceChildren();
    who.classList.toggle('open', openApi);
    if (openApi) who.textContent = t(settings.read_only ? 'read_only' : 'open_api_warn');
    else if (token && settings.user) {
      who.appendChild(el('span', 'user', settings.user));
      who.appendChild(el('span', 'role', t('role_' + settings.role)));
    } else if (token) who.textContent = t('logged_in');
    who.dataset.role = token || openApi ? settings.role : '';
    $('login-btn').hidden = openApi || !!token;
    $('logout-btn').hidden = openApi || !token;
  }

  // ---- operator actions ----
  // Each action: its API path, dialog title, whether a reason is required, whether it takes a
  // duration. The server enforces roles and the site's shelving rules; the console only hides
  // what the caller cannot do.
  const ACTIONS = {
    ack: { path: 'ack', title: 'ack_title', reason: false },
    shelve: { path: 'shelve', title: 'shelve_title', reason: true, duration: true },
    unshelve: { path: 'unshelve', title: 'unshelve_title', reason: false },
    reset: { path: 'reset', title: 'reset_title', reason: true },
    oos: { path: 'out-of-service', title: 'oos_title', reason: true },
    rts: { path: 'return-to-service', title: 'rts_title', reason: false },
  };

  // The actions this caller can take on `a` now.
  function actionsFor(a) {
    if (!mayAct()) return [];
    const out = [];
    if (needsAck(a)) out.push('ack');
    const rule = shelveRule(a.priority);
    if (a.shelved_until != null) out.push('unshelve');
    else if (rule && rule.allowed && a.state !== 'normal' && !a.out_of_service) out.push('shelve');
    if (a.state === 'latched') out.push('reset');
    if (a.out_of_service) out.push('rts');
    else if (a.shelved_until == null) out.push('oos');
    return out;
  }

  // Opens the action dialog for one alarm, or (acknowledge only) for several: one category
  // and comment for all of them, each journaled on its own.
  function openAction(a, kind, many) {
    const spec = ACTIONS[kind];
    const list = many && many.length ? many : [a];
    actTarget = { alarm: list[0], alarms: list, kind };
    $('ack-h').textContent = t(list.length > 1 ? 'ack_many_title' : spec.title);
    $('ack-what').textContent = list.length > 1
      ? t('ack_many_what', { n: list.length }) + list.map((x) => x.subject + ' ' + describeAlarm(x)).join(t('list_sep'))
      : describeAlarm(a) + ' — ' + a.subject;
    $('ack-user-row').hidden = !openApi;
    $('ack-user').value = '';
    $('ack-comment').value = '';
    $('ack-comment-label').textContent = spec.reason ? t('reason') : t('comment');
    $('ack-category-row').hidden = kind !== 'ack';
    fillSelect($('ack-category'), t('choose'), CATEGORIES.map((c) => [c, t('cat_' + c)]));
    $('ack-category').value = '';
    $('ack-duration-row').hidden = !spec.duration;
    if (spec.duration) {
      const max = (shelveRule(a.priority) || { max_s: 0 }).max_s;
      const choices = SHELVE_CHOICES.filter(([s]) => s <= max);
      fillSelect($('ack-duration'), null, choices.map(([s, label]) => [String(s), label]));
      $('ack-duration').selectedIndex = 0;
    }
    $('ack-error').textContent = '';
    $('ack-submit').textContent = t(kind === 'ack' ? 'ack' : kind);
    $('ack-dialog').showModal();
    (openApi ? $('ack-user') : (kind === 'ack' ? $('ack-category') : $('ack-comment'))).focus();
  }

  async function submitAction(ev) {
    ev.preventDefault();
    if (!actTarget) return;
    const spec = ACTIONS[actTarget.kind];
    const body = { comment: $('ack-comment').value.trim() };
    if (openApi) {
      const user = $('ack-user').value.trim();
      if (!user) { $('ack-error').textContent = t('need_name'); return; }
      body.user = user;
    }
    if (actTarget.kind === 'ack') {
      body.category = $('ack-category').value;
      if (!body.category) { $('ack-error').textContent = t('need_category'); return; }
    }
    if (spec.reason && !body.comment) { $('ack-error').textContent = t('need_reason'); return; }
    if (spec.duration) body.duration = $('ack-duration').value + 's';
    $('ack-submit').disabled = true;
    const post = (path, data) => api(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(data),
    });
    try {
      if (actTarget.alarms.length > 1) {
        body.alarm_ids = actTarget.alarms.map((x) => x.alarm_id);
        const res = await post('/api/v1/alarms/ack', body);
        for (const view of res.acknowledged) applyTo(alarms, view);
        for (const id of body.alarm_ids) selected.delete(id);
        scheduleRender();
        if (res.refused.length) {
          $('ack-error').textContent = t('ack_partial', {
            a: res.acknowledged.length, r: res.refused.length,
            m: res.refused.map((x) => x.alarm_id + ' ' + x.message).join(t('list_sep')),
          });
          return;
        }
      } else {
        const path = '/api/v1/alarms/' + encodeURIComponent(actTarget.alarm.alarm_id) + '/' + spec.path;
        applyTo(alarms, await post(path, body));
        selected.delete(actTarget.alarm.alarm_id);
      }
      $('ack-dialog').close();
      actTarget = null;
      scheduleRender();
    } catch (err) {
      if (err.status === 401) { $('ack-dialog').close(); return; }
      $('ack-error').textContent = err.status === 403
        ? (actTarget.kind === 'ack' ? forbiddenText(err) : t('forbidden_action', { m: err.message }))
        : t('failed', { m: err.message });
    } finally {
      $('ack-submit').disabled = false;
    }
  }

  // A read-only gateway says why; otherwise the token's role is too low.
  const forbiddenText = (err) => (err.code === 'read_only' ? t('read_only') : t('forbidden'));

  // Rows picked for one acknowledgement, by alarm id; kept across re-renders, dropped once
  // an alarm no longer waits for acknowledgement.
  const selected = new Set();
  const ackable = (a) => mayAct() && needsAck(a) && annunciated(a);

  function renderSelection(shown) {
    const waiting = new Set(shown.filter(ackable).map((a) => a.alarm_id));
    for (const id of [...selected]) if (!waiting.has(id)) selected.delete(id);
    const b = $('ack-selected');
    b.hidden = !mayAct() || waiting.size === 0;
    b.disabled = selected.size === 0;
    b.textContent = t('ack_selected', { n: selected.size });
  }

  function ackSelected() {
    const list = [...alarms.values()].filter((a) => selected.has(a.alarm_id) && ackable(a)).sort(byUrgency);
    if (list.length) openAction(list[0], 'ack', list);
  }

  // ---- annunciation ----
  // The horn sounds while any unacknowledged alarm at or above `sound_from` is annunciated,
  // whenever it appeared (present at load, after a reconnect, after unshelving), and while the
  // gateway is unreachable. Silence is timed and ends early when a new alarm comes in; only
  // acknowledging ends an alarm's claim on the horn. The page's audio state is in
  // `document.body.dataset` (horn, tone, audio, beeps) for kiosks' watchdogs and for tests.
  function ensureAudio() {
    if (audio) return audio;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    audio = new Ctx();
    audio.addEventListener('statechange', () => updateHorn(false));
    return audio;
  }

  function enableSound() {
    const a = ensureAudio();
    if (a) a.resume().then(() => updateHorn(false), () => updateHorn(false));
  }

  // Distinct tones: frequencies and pulse pattern per priority, and a low slow one for a lost
  // connection, so the officer knows what kind of problem it is before looking.
  const TONES = {
    critical: { wave: 'square', pulses: [1050, 760, 1050, 760], on: 0.16, gap: 0.06 },
    high: { wave: 'square', pulses: [880, 880], on: 0.22, gap: 0.12 },
    medium: { wave: 'triangle', pulses: [660], on: 0.35, gap: 0 },
    low: { wave: 'sine', pulses: [440], on: 0.4, gap: 0 },
    comm: { wave: 'sawtooth', pulses: [330, 220], on: 0.45, gap: 0.15 },
  };

  function beep(tone) {
    if (!audio || audio.state !== 'running') return;
    const spec = TONES[tone] || TONES.high;
    let at = audio.currentTime;
    for (const f of spec.pulses) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = spec.wave;
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.25, at);
      gain.gain.setValueAtTime(0, at + spec.on);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + spec.on + 0.01);
      at += spec.on + spec.gap;
    }
    beeps += 1;
    document.body.dataset.beeps = String(beeps);
    document.body.dataset.lastTone = tone;
  }

  // What the horn should sound now: `comm` for a lost gateway, else the most urgent
  // soundable priority, else null. `ids` are what it sounds for (a new one ends a silence).
  function hornDemand() {
    const ids = [];
    let tone = null;
    for (const a of alarms.values()) {
      if (!soundable(a)) continue;
      ids.push(a.alarm_id);
      if (!tone || PRIORITY_RANK[a.priority] > PRIORITY_RANK[tone]) tone = a.priority;
    }
    if (connLost) { ids.push('#connection'); tone = 'comm'; }
    return { tone, ids };
  }

  function updateHorn(tick) {
    const { tone, ids } = hornDemand();
    // Silence ends at its time, when a new alarm sounds, or when nothing is left to sound.
    if (silence && (!tone || Date.now() >= silence.until || ids.some((id) => !silence.ids.has(id)))) silence = null;
    const running = !!audio && audio.state === 'running';
    const next = !tone ? 'off' : (silence ? 'silenced' : (running ? 'sounding' : 'blocked'));
    const b = document.body.dataset;
    b.horn = next;
    b.tone = tone || '';
    b.audio = audio ? audio.state : 'none';
    // While silenced the button says until when (pressing it again restarts the silence).
    const sil = $('silence');
    sil.hidden = next === 'off';
    sil.classList.toggle('silenced', next === 'silenced');
    sil.textContent = next === 'silenced' ? t('silenced', { t: fmtTime(silence.until * 1e6) }) : t('silence');
    $('audio-blocked').hidden = running;
    const snd = $('sound');
    snd.classList.toggle('on', running);
    snd.classList.toggle('attention', !running);
    snd.dataset.i18n = running ? 'sound_on' : 'sound_enable';
    snd.textContent = t(snd.dataset.i18n);
    // Sound at once when the horn starts, then on every tick while it should.
    if (next === 'sounding' && (tick || hornState !== 'sounding')) beep(tone);
    hornState = next;
  }

  function silenceHorn() {
    const { ids } = hornDemand();
    silence = { until: Date.now() + SILENCE_MS, ids: new Set(ids) };
    updateHorn(false);
  }

  // ---- journal ----
  // The alarm journal with filters: time, hazard source and priority are asked of the server;
  // point and user narrow what it returned. Export writes exactly the rows shown, as CSV
  // (UTF-8 with a byte-order mark so spreadsheet programs read the Chinese text).
  let journalRows = [];
  const localInput = (ms) => {
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  };
  const ackDelay = (e) => (e.transition === 'acknowledged' && e.raised_at != null
    ? Math.max(0, Math.round((e.ts - e.raised_at) / 1e9)) : null);
  const catText = (e) => (e.category ? t('cat_' + e.category) : '');
  const fmtDelay = (s) => (s == null ? '' : (s < 120 ? s + ' s' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s'));

  function openJournal() {
    const now = Date.now();
    if (!$('j-from').value) $('j-from').value = localInput(now - 8 * 3600 * 1000);
    if (!$('j-to').value) $('j-to').value = localInput(now + 60 * 1000);
    const sources = [...new Set(points.map((p) => p.hazard_source).filter(Boolean))].sort();
    // Rebuilt on every opening, so the choices follow the language and the data.
    fillSelect($('j-source'), t('f_any'), sources.map((s) => [s, s]));
    fillSelect($('j-priority'), t('f_any'), ['low', 'medium', 'high', 'critical'].map((p) => [p, t('p_' + p) + ' +']));
    fillSelect($('j-category'), t('f_any'), CATEGORIES.map((c) => [c, t('cat_' + c)]));
    $('journal-dialog').showModal();
    loadJournal();
  }

  async function loadJournal(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams({ limit: '10000' });
    const from = Date.parse($('j-from').value);
    const to = Date.parse($('j-to').value);
    if (Number.isFinite(from)) q.set('from', String(from));
    if (Number.isFinite(to)) q.set('to', String(to));
    if ($('j-source').value) q.set('hazard_source', $('j-source').value);
    if ($('j-priority').value) q.set('priority', $('j-priority').value);
    if ($('j-category').value) q.set('category', $('j-category').value);
    let list;
    try { list = await api('/api/v1/alarms/history?' + q.toString()); } catch (err) {
      $('j-count').textContent = t('failed', { m: err.message });
      return;
    }
    const point = $('j-point').value.trim();
    const user = $('j-user').value.trim();
    journalRows = list.filter((e) => (!point || e.subject.includes(point)) && (!user || (e.user || '').includes(user)));
    $('j-count').textContent = t('j_count', { n: journalRows.length });
    $('j-rows').replaceChildren(...journalRows.map((e) => {
      const tr = el('tr', isWarning(e) ? 'early' : e.priority);
      tr.dataset.transition = e.transition;
      for (const v of [fmtTime(e.ts), t('p_' + e.priority), e.hazard_source || '—', e.subject, describeAlarm(e),
        t('t_' + e.transition), catText(e), e.user || '', e.comment || '', fmtDelay(ackDelay(e))]) tr.appendChild(el('td', null, v));
      if (e.category) tr.dataset.category = e.category;
      return tr;
    }));
  }

  // The span a handover covers. With the site's shift starts (`[console] shifts`, local time):
  // the current shift so far, or, within the first half hour after a change (when handovers
  // happen), the shift that just ended. Without them: the last 8 hours.
  const HANDOVER_WINDOW_MS = 30 * 60 * 1000;
  function shiftSpan(now) {
    const starts = settings.shifts || [];
    if (!starts.length) return [now - 8 * 3600 * 1000, now + 60 * 1000];
    const bounds = [];
    for (const back of [2, 1, 0]) {
      for (const hm of starts) {
        const [h, m] = hm.split(':').map(Number);
        const d = new Date(now);
        d.setDate(d.getDate() - back);
        d.setHours(h, m, 0, 0);
        bounds.push(d.getTime());
      }
    }
    bounds.sort((a, b) => a - b);
    const past = bounds.filter((b) => b <= now);
    const cur = past[past.length - 1];
    const prev = past[past.length - 2];
    return now - cur < HANDOVER_WINDOW_MS ? [prev, cur] : [cur, now + 60 * 1000];
  }

  // The shift handover (交接班): the shift's journal with what was raised, acknowledged and is
  // still open, operator actions and the times to acknowledge; printable.
  async function handover() {
    const now = Date.now();
    const [from, to] = shiftSpan(now);
    $('j-from').value = localInput(from);
    $('j-to').value = localInput(to);
    $('j-point').value = '';
    $('j-user').value = '';
    $('j-category').value = '';
    await loadJournal();
    const raised = journalRows.filter((e) => e.transition === 'raised').length;
    const acks = journalRows.filter((e) => e.transition === 'acknowledged');
    const delays = acks.map(ackDelay).filter((d) => d != null);
    const open = [...alarms.values()].filter((a) => a.state !== 'normal').length;
    const actions = journalRows.filter((e) => e.user).length;
    const byCategory = new Map();
    for (const e of acks) if (e.category) byCategory.set(e.category, (byCategory.get(e.category) || 0) + 1);
    const categories = CATEGORIES.filter((c) => byCategory.has(c)).map((c) => t('cat_' + c) + ' ' + byCategory.get(c)).join(' · ');
    const mean = delays.length ? Math.round(delays.reduce((x, y) => x + y, 0) / delays.length) : null;
    const box = $('j-summary');
    const item = (key, value, name) => {
      const d = el('div', 'h-item');
      d.dataset.h = name;
      d.appendChild(el('span', 'h-label', t(key)));
      d.appendChild(el('span', 'h-value', value));
      return d;
    };
    box.replaceChildren(
      el('h3', null, t('h_title', { from: $('j-from').value.replace('T', ' '), to: $('j-to').value.replace('T', ' ') })),
      item('h_raised', String(raised), 'raised'),
      item('h_acked', String(acks.length), 'acknowledged'),
      item('h_open', String(open), 'open'),
      item('h_actions', String(actions), 'actions'),
      item('h_tta', fmtDelay(mean) || '—', 'tta'),
      item('h_tta_max', fmtDelay(delays.length ? Math.max(...delays) : null) || '—', 'tta_max'),
      item('h_categories', categories || '—', 'categories'),
    );
    box.hidden = false;
    box.dataset.raised = String(raised);
    box.dataset.acknowledged = String(acks.length);
    box.dataset.open = String(open);
    box.dataset.categories = CATEGORIES.filter((c) => byCategory.has(c)).map((c) => c + '=' + byCategory.get(c)).join(',');
  }

  function csvField(v) {
    const s = String(v ?? '');
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function exportJournal() {
    const head = ['time', 'seq', 'alarm_id', 'priority', 'hazard_source', 'subject', 'condition', 'level',
      'transition', 'state', 'value', 'limit', 'unit', 'user', 'comment', 'category', 'category_name', 'ack_delay_s'];
    const lines = [head.join(',')].concat(journalRows.map((e) => [
      e.time || new Date(e.ts / 1e6).toISOString(), e.seq, e.alarm_id, e.priority, e.hazard_source || '', e.subject,
      e.condition, e.level || '', e.transition, e.state, e.value ?? '', e.limit ?? '', e.unit, e.user || '',
      e.comment || '', e.category || '', catText(e), ackDelay(e) ?? '',
    ].map(csvField).join(',')));
    const blob = new Blob(['\ufeff' + lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
    const a = el('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'alarm-journal-' + $('j-from').value.replace(/[:T]/g, '') + '-' + $('j-to').value.replace(/[:T]/g, '') + '.csv';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  // ---- trends ----
  // A point's history from the gateway's own store, drawn with uPlot (vendored): set-points as
  // dashed lines, alarm transitions as vertical marks; overlaid points share an axis per unit.
  // What is drawn is summarised in `window.hgTrend` (and the chart's data attributes).
  const trend = { points: [], range: 3600, chart: null };
  const SERIES_COLOURS = ['#5ac8fa', '#34c759', '#a2845e', '#ff9f0a', '#64d2ff'];
  // Early warnings' marks and projected trend: violet, a colour no priority uses.
  const EARLY_COLOUR = '#bf5af2';
  const PRIORITY_COLOURS = { critical: '#ff3b30', high: '#ff9500', medium: '#ffd60a', low: '#5ac8fa' };
  const MARK_COLOURS = { raised: '#ff3b30', cleared: '#34c759', acknowledged: '#0a84ff' };

  async function openTrend(id) {
    trend.points = [id];
    trend.range = 3600;
    $('trend-dialog').showModal();
    await drawTrend();
  }

  async function pointHistory(id, from, to) {
    const h = await api('/api/v1/points/' + encodeURIComponent(id) + '/history?from=' + from + '&to=' + to + '&limit=20000');
    const rows = h.readings
      ? h.readings.map((r) => [r.ts_ms / 1000, r.value ?? null])
      : h.minutes.map((m) => [m.ts_ms / 1000, m.avg ?? null]);
    return { id, unit: h.unit, rows };
  }

  // uPlot wants one x array; each series gets null where it has no reading.
  function align(series, from, to) {
    const xs = [...new Set([from / 1000, to / 1000, ...series.flatMap((s) => s.rows.map((r) => r[0]))])].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map((s) => {
      const y = new Array(xs.length).fill(null);
      for (const [x, v] of s.rows) y[index.get(x)] = v;
      return y;
    });
    return [xs, ...ys];
  }

  async function drawTrend() {
    const to = Date.now();
    const from = to - trend.range * 1000;
    $('trend-title').textContent = trend.points.join(' + ');
    const add = $('trend-add');
    fillSelect(add, t('trend_none'), points
      .filter((p) => !trend.points.includes(p.id) && p.kind !== 'state')
      .map((p) => [p.id, p.id + (p.unit ? ' (' + p.unit + ')' : '')]));
    add.value = '';
    for (const b of document.querySelectorAll('#trend-dialog [data-range]')) {
      b.classList.toggle('on', Number(b.dataset.range) === trend.range);
    }
    let series;
    let journal;
    try {
      [series, journal] = await Promise.all([
        Promise.all(trend.points.map((id) => pointHistory(id, from, to))),
        api('/api/v1/alarms/history?from=' + from + '&to=' + to + '&limit=2000'),
      ]);
    } catch (err) {
      $('trend-note').textContent = t('failed', { m: err.message });
      return;
    }
    // An active early warning on a shown point: its trend projected from the last reading to
    // the set-point at the predicted crossing, the chart widened to show it (up to one range).
    const warnings = [...alarms.values()].filter((a) => isWarning(a) && trend.points.includes(a.subject)
      && (a.state === 'unack_active' || a.state === 'ack_active') && a.predicted_at != null && a.limit != null);
    const projections = [];
    for (const w of warnings) {
      const s = series.find((x) => x.id === w.subject);
      const last = s && [...s.rows].reverse().find((r) => r[1] !== null);
      const at = w.predicted_at / 1e9;
      if (last && at > last[0] && at * 1000 - to <= trend.range * 1000) projections.push({ w, s, rows: [last, [at, w.limit]] });
    }
    const end = Math.max(to, ...projections.map((p) => Math.ceil(p.rows[1][0] * 1000)));
    const data = align([...series, ...projections], from, end);
    const units = [...new Set(series.map((s) => s.unit))];
    const scales = { x: { time: true } };
    for (const u of units) scales[u || '-'] = { auto: true };
    const uSeries = [{}];
    series.forEach((s, i) => uSeries.push({
      label: s.id + (s.unit ? ' (' + s.unit + ')' : ''), scale: s.unit || '-',
      stroke: SERIES_COLOURS[i % SERIES_COLOURS.length], width: 2, spanGaps: false,
    }));
    for (const p of projections) {
      uSeries.push({
        label: t('ew_projection', { p: p.s.id }), scale: p.s.unit || '-',
        stroke: EARLY_COLOUR, dash: [4, 4], width: 2, spanGaps: true, points: { show: true, size: 6 },
      });
    }
    const drawn = [];
    for (const s of series) {
      for (const sp of (settings.setpoints || {})[s.id] || []) {
        data.push(data[0].map(() => sp.value));
        uSeries.push({
          label: s.id + ' ' + t('l_' + sp.level) + ' ' + sp.value, scale: s.unit || '-',
          stroke: PRIORITY_COLOURS[sp.priority], dash: [8, 6], width: 1.5, points: { show: false },
        });
        drawn.push({ point: s.id, level: sp.level, value: sp.value });
      }
    }
    const marks = journal
      .filter((e) => trend.points.includes(e.subject) && MARK_COLOURS[e.transition])
      .map((e) => ({
        x: e.ts / 1e9, colour: isWarning(e) ? EARLY_COLOUR : MARK_COLOURS[e.transition],
        transition: (isWarning(e) ? 'early_' : '') + e.transition,
      }));
    // 24-hour local times, the date too when the range spans days.
    const fmtX = (s) => {
      const d = new Date(s * 1000);
      const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
      return trend.range > 86400 ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm : hm;
    };
    uSeries[0] = { value: (u, v) => (v == null ? '—' : fmtTime(v * 1e9)) };
    const axes = [{ stroke: '#9aa8b8', grid: { stroke: '#2b3644' }, values: (u, splits) => splits.map(fmtX) }];
    units.forEach((u, i) => axes.push({
      scale: u || '-', label: u, stroke: '#9aa8b8', side: i === 0 ? 3 : 1,
      grid: { show: i === 0, stroke: '#2b3644' },
    }));
    const box = $('trend-chart');
    const width = Math.max(300, box.clientWidth || 800);
    const opts = {
      width, height: Math.max(220, Math.min(420, Math.round(width * 0.45))),
      scales, series: uSeries, axes,
      legend: { show: true },
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.lineWidth = 2;
          for (const m of marks) {
            const x = u.valToPos(m.x, 'x', true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.strokeStyle = m.colour;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
    if (trend.chart) trend.chart.destroy();
    box.replaceChildren();
    trend.chart = new window.uPlot(opts, data, box);
    $('trend-note').textContent = t('trend_note') + (warnings.length ? t('list_sep') + t('trend_ew_note') : '');
    const warnBox = $('trend-warnings');
    warnBox.hidden = warnings.length === 0;
    warnBox.replaceChildren(...warnings.map((w) => {
      const line = el('p', 'predict');
      line.append(el('span', 'prio early', t('early')), ' ' + w.subject + ' ' + predictText(w));
      return line;
    }));
    window.hgTrend = {
      points: series.map((s) => ({ id: s.id, unit: s.unit, readings: s.rows.filter((r) => r[1] !== null).length })),
      setpoints: drawn,
      marks: marks.map((m) => m.transition),
      axes: units,
      range: trend.range,
      warnings: warnings.map((w) => ({ point: w.subject, predicted_ms: Math.round(w.predicted_at / 1e6), limit: w.limit, text: predictText(w) })),
      projections: projections.map((p) => ({ point: p.s.id, to_ms: Math.round(p.rows[1][0] * 1000), value: p.rows[1][1] })),
    };
    box.dataset.series = String(series.length);
    box.dataset.setpoints = String(drawn.length);
    box.dataset.marks = String(marks.length);
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

  // The live value of the alarm's point, the value at trip and the set-point.
  function valueCell(a) {
    const td = el('td', 'num value');
    const p = a.subject_kind === 'point' ? pointsById.get(a.subject) : null;
    const unit = a.unit ? ' ' + a.unit : '';
    if (p) {
      const live = el('span', 'live', t('live') + ' ' + pointText(p));
      if (BAD_QUALITY.has(p.quality)) live.classList.add('fault');
      if (connLost) live.classList.add('lost');
      td.appendChild(live);
    }
    // A warning has tripped nothing: it says where the trend is heading, or that it turned.
    if (isWarning(a)) {
      const active = a.state === 'unack_active' || a.state === 'ack_active';
      const text = active ? predictText(a) : t('ew_turned');
      if (text) td.appendChild(el('span', 'predict', text));
      return td;
    }
    // The record's value is the one behind its last condition change: the trip value while
    // the condition is active, the value at return once it has cleared (latched, unack_rtn).
    if (a.condition !== 'sensor_fault' && Number.isFinite(a.value)) {
      const active = a.state === 'unack_active' || a.state === 'ack_active';
      td.appendChild(el('span', active ? 'trip' : 'trip cleared',
        t(active ? 'trip' : 'cleared') + ' ' + fmtValue(a.value, '') + (a.limit == null ? unit : '')));
    }
    if (a.limit != null) td.appendChild(el('span', 'limit', t('limit') + ' ' + a.limit + unit));
    return td;
  }

  function stateText(a) {
    const key = (isWarning(a) ? 'ew_' : 's_') + a.state;
    return I18N[lang][key] ? t(key) : t('s_' + a.state);
  }

  function alarmRow(a) {
    const tr = el('tr', isWarning(a) ? 'early' : a.priority);
    tr.dataset.alarmId = a.alarm_id;
    tr.dataset.priority = a.priority;
    tr.classList.add(needsAck(a) ? 'unack' : 'acked');
    if (a.state === 'unack_rtn') tr.classList.add('rtn');
    const prio = el('td');
    if (ackable(a)) {
      const pick = el('input', 'pick');
      pick.type = 'checkbox';
      pick.checked = selected.has(a.alarm_id);
      pick.title = t('select');
      pick.setAttribute('aria-label', t('select') + ' ' + a.subject);
      pick.addEventListener('change', () => {
        if (pick.checked) selected.add(a.alarm_id); else selected.delete(a.alarm_id);
        renderSelection([...alarms.values()].filter(annunciated));
      });
      prio.appendChild(pick);
    }
    if (isWarning(a)) {
      prio.appendChild(el('span', 'prio early', t('early')));
      prio.appendChild(el('span', 'prio-of', t('p_' + a.priority)));
    } else prio.appendChild(el('span', 'prio ' + a.priority, t('p_' + a.priority)));
    tr.appendChild(prio);
    tr.appendChild(el('td', 'num', fmtTime(a.raised_at ?? a.ts)));
    tr.appendChild(el('td', 'id', a.hazard_source || '—'));
    tr.appendChild(subjectCell(a));
    tr.appendChild(el('td', null, describeAlarm(a)));
    tr.appendChild(valueCell(a));
    const st = el('td', 'state ' + a.state, stateText(a));
    if (a.latching && a.state !== 'normal') st.appendChild(el('span', 'tag latch', t('latched_by')));
    if (a.shelved_until != null) st.appendChild(el('span', 'tag', t('o_shelved', { t: fmtTime(a.shelved_until) })));
    if (a.suppressed) st.appendChild(el('span', 'tag', t('o_suppressed')));
    if (a.out_of_service) st.appendChild(el('span', 'tag', t('o_oos')));
    tr.appendChild(st);
    const cell = el('td');
    const act = el('div', 'actions');
    cell.appendChild(act);
    for (const kind of actionsFor(a)) {
      const b = el('button', 'act ' + kind + (kind === 'ack' ? ' ack' : ''), t(kind === 'ack' ? 'ack' : kind));
      b.type = 'button';
      b.dataset.action = kind;
      b.addEventListener('click', () => openAction(a, kind));
      act.appendChild(b);
    }
    // Every alarm of this point (or device) still waiting, in one acknowledgement.
    const same = ackable(a)
      ? [...alarms.values()].filter((x) => x.subject === a.subject && ackable(x)).sort(byUrgency) : [];
    if (same.length > 1) {
      const b = el('button', 'act ack-subject', t('ack_subject', { n: same.length }));
      b.type = 'button';
      b.dataset.action = 'ack-subject';
      b.addEventListener('click', () => openAction(same[0], 'ack', same));
      act.appendChild(b);
    }
    tr.appendChild(cell);
    return tr;
  }

  function renderAlarms(all) {
    const shown = all.filter(annunciated).sort(byUrgency);
    const held = all.filter((a) => !annunciated(a)).sort(byUrgency);
    renderSelection(shown);
    $('alarm-rows').replaceChildren(...shown.map(alarmRow));
    // Never "no active alarms" while a shelved or out-of-service one is there.
    const empty = $('no-alarms');
    empty.hidden = shown.length > 0 || !loaded;
    empty.textContent = held.length ? t('no_alarms_held', { n: held.length }) : t('no_alarms');
    empty.classList.toggle('held-only', held.length > 0);
    $('held').hidden = held.length === 0;
    $('held-count').textContent = '(' + held.length + ')';
    $('held-rows').replaceChildren(...held.map(alarmRow));
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

  // A hazard source is in alarm while any of its alarms is active, shelved or not: a shelved
  // alarm hides the horn, never the hazard.
  function renderSources(all) {
    const groups = new Map();
    for (const p of points) {
      const k = p.hazard_source || '';
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(p);
    }
    const cards = [...groups.keys()].sort().map((k) => {
      const list = groups.get(k);
      const mine = all.filter((a) => (a.hazard_source || '') === k);
      const active = mine.filter((a) => a.state !== 'normal' && !isWarning(a));
      const warnings = mine.filter((a) => a.state !== 'normal' && isWarning(a)).length;
      const shelved = mine.filter((a) => a.shelved_until != null).length;
      const oos = mine.filter((a) => a.out_of_service).length;
      const worst = worstPriority(active);
      // Warnings alone colour the card as a warning, never as an alarm's priority.
      const cls = worst || (warnings ? 'early' : (list.some(isBad) ? 'degraded' : 'ok'));
      const verdict = worst
        ? (shelved ? t('v_alarms_shelved', { n: active.length, s: shelved }) : t('v_alarms', { n: active.length }))
        : (warnings ? t('v_warnings', { n: warnings }) : (list.some(isBad) ? t('v_degraded') : t('v_ok')));
      let detail = pointDetail(list);
      if (worst && warnings) detail += ' · ' + t('d_warnings', { n: warnings });
      if (shelved) detail += ' · ' + t('d_shelved', { s: shelved });
      if (oos) detail += ' · ' + t('d_oos', { o: oos });
      const site = (settings.hazard_sources || []).find((h) => h.id === k);
      const title = site ? site.name + ' · ' + k + ' · ' + t('grade', { g: site.grade }) : (k || t('none_source'));
      const c = card(title, cls, verdict, detail);
      c.dataset.source = k;
      c.dataset.shelved = String(shelved);
      return c;
    });
    $('sources').replaceChildren(...cards);
  }

  // A card per device: the points it feeds, and what `/api/v1/devices` says of its link (an
  // MQTT broker: online or offline since when, reconnects, its last error).
  function renderDevices(all) {
    const groups = new Map();
    for (const p of points) {
      if (!groups.has(p.device)) groups.set(p.device, []);
      groups.get(p.device).push(p);
    }
    for (const d of devices) if (!groups.has(d.name)) groups.set(d.name, []);
    const cards = [...groups.keys()].sort().map((dev) => {
      const list = groups.get(dev);
      const health = devices.find((d) => d.name === dev);
      const broker = health && health.mqtt;
      const commLost = all.some((a) => a.subject_kind === 'device' && a.subject === dev && a.state !== 'normal');
      let cls = 'ok';
      let verdict = t('v_ok');
      if (commLost) { cls = 'fault'; verdict = t('v_comm_lost'); }
      else if (broker && !broker.online) { cls = 'fault'; verdict = t('b_offline'); }
      else if (list.length && list.every((p) => p.quality === 'no_data')) { cls = 'nodata'; verdict = t('v_nodata'); }
      else if (list.some(isBad)) { cls = 'degraded'; verdict = t('v_degraded'); }
      else if (broker) verdict = t('b_online');
      const label = health && health.label;
      const title = label && label.name ? label.name + ' · ' + dev : dev;
      let detail = list.length ? pointDetail(list) : '';
      if (broker) {
        const parts = [t('broker') + ' ' + broker.address];
        if (broker.since_ms != null) parts.push(t('b_since', { t: fmtTime(broker.since_ms * 1e6) }));
        parts.push(t('b_reconnects', { n: broker.reconnects }));
        if (detail) parts.unshift(detail);
        detail = parts.join(' · ');
      }
      const place = placeText(label);
      if (place) detail = place + (detail ? ' · ' + detail : '');
      const c = card(title, cls, verdict, detail);
      if (broker && broker.last_error) c.appendChild(el('span', 'detail error-text', t('b_error', { m: broker.last_error })));
      c.dataset.device = dev;
      if (broker) {
        c.dataset.online = String(broker.online);
        c.dataset.reconnects = String(broker.reconnects);
      }
      return c;
    });
    $('devices').replaceChildren(...cards);
  }

  function renderPoints(all) {
    // A point keeps its alarm colour while an alarm on it is active, shelved or not.
    const worst = new Map();
    const warned = new Set();
    for (const a of all) {
      if (a.subject_kind !== 'point' || a.state === 'normal') continue;
      if (isWarning(a)) { warned.add(a.subject); continue; }
      const cur = worst.get(a.subject);
      if (!cur || PRIORITY_RANK[a.priority] > PRIORITY_RANK[cur]) worst.set(a.subject, a.priority);
    }
    const sorted = [...points].sort((a, b) =>
      (a.hazard_source || '~').localeCompare(b.hazard_source || '~') || a.id.localeCompare(b.id));
    const now = Date.now();
    const body = $('point-rows');
    const seen = new Set();
    sorted.forEach((p, i) => {
      seen.add(p.id);
      const row = pointRow(p.id);
      const prio = worst.get(p.id);
      row.tr.className = prio ? 'in-alarm ' + prio : (warned.has(p.id) ? 'in-warning' : '');
      if (connLost) row.tr.classList.add('lost');
      row.source.textContent = p.hazard_source || '—';
      const label = p.label || {};
      row.label.textContent = label.name || '';
      row.place.textContent = placeText(label);
      if (label.description) row.label.title = label.description; else row.label.removeAttribute('title');
      const devLabel = deviceLabel(p.device);
      if (p.description) row.name.title = p.description; else row.name.removeAttribute('title');
      row.device.textContent = devLabel && devLabel.name ? devLabel.name + ' · ' + p.device : p.device;
      row.value.textContent = pointText(p);
      row.value.className = 'num value' + (BAD_QUALITY.has(p.quality) ? ' fault' : '');
      // An uncertain or suspect value still drives alarms but is shown apart, neither good
      // nor bad.
      row.quality.className = p.quality === 'good' ? 'q-good'
        : (p.quality === 'no_data' ? 'q-none' : (doubtful(p.quality) ? 'q-doubt' : 'q-bad'));
      row.quality.textContent = t('q_' + p.quality);
      row.when.textContent = p.ts_ms != null ? fmtTime(p.ts_ms * 1e6) : '—';
      // Cut off from the gateway, every value says how old it is.
      if (connLost && p.ts_ms != null) row.when.appendChild(el('span', 'age', fmtAge(now - p.ts_ms)));
      // Moved only when out of place, so a row under the pointer is never taken away mid-click.
      if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
    });
    for (const [id, row] of pointRows) {
      if (!seen.has(id)) { row.tr.remove(); pointRows.delete(id); }
    }
  }

  // One row per point, kept across refreshes: rebuilding the table every poll would swallow
  // a click that lands while it is rebuilt.
  const pointRows = new Map();
  function pointRow(id) {
    let row = pointRows.get(id);
    if (row) return row;
    const tr = el('tr');
    tr.dataset.point = id;
    const name = el('td');
    const open = el('button', 'trend-open', id);
    open.type = 'button';
    open.addEventListener('click', () => openTrend(id));
    name.appendChild(open);
    const label = el('span', 'label-name');
    const place = el('span', 'label-place');
    name.append(label, place);
    row = { tr, source: el('td'), name, label, place, device: el('td'), value: el('td'), quality: el('td'), when: el('td', 'num updated') };
    tr.append(row.source, name, row.device, row.value, row.quality, row.when);
    pointRows.set(id, row);
    return row;
  }

  function renderConn() {
    const up = feedUp && pollOk;
    if (up) { connDownSince = null; setConnLost(false); }
    else if (connDownSince === null) connDownSince = Date.now();
    const c = $('conn');
    c.className = 'conn ' + (up ? 'up' : 'down');
    c.dataset.i18n = up ? 'conn_up' : 'conn_down';
    c.textContent = t(c.dataset.i18n);
  }

  function setConnLost(lost) {
    if (lost === connLost) return;
    connLost = lost;
    document.body.classList.toggle('gateway-lost', lost);
    $('conn-lost').hidden = !lost;
    if (lost) $('conn-lost-since').textContent = t('conn_since', { t: fmtTime(connDownSince * 1e6) });
    render();
    updateHorn(false);
  }

  // Lost: down past the grace time after the console had shown data (not while logging in).
  function checkConn() {
    if (connDownSince !== null && loaded && !$('login-dialog').open && Date.now() - connDownSince >= CONN_GRACE_MS) {
      setConnLost(true);
    }
  }

  function render() {
    const all = [...alarms.values()];
    renderAlarms(all);
    renderSources(all);
    renderDevices(all);
    renderPoints(all);
    updateHorn(false);
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
    renderProblems();
    renderPair();
    render();
  }

  function tickClock() {
    const d = new Date();
    $('clock').textContent = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' '
      + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    checkConn();
    if (connLost) renderPoints([...alarms.values()]);
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('lang').addEventListener('click', () => {
      lang = lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('hg.lang', lang);
      applyLang();
    });
    $('sound').addEventListener('click', enableSound);
    $('audio-blocked').addEventListener('click', enableSound);
    // Any touch of the page lets sound start where the browser asks for a gesture first.
    document.addEventListener('pointerdown', () => { if (!audio || audio.state !== 'running') enableSound(); }, true);
    document.addEventListener('keydown', () => { if (!audio || audio.state !== 'running') enableSound(); }, true);
    $('silence').addEventListener('click', silenceHorn);
    $('login-btn').addEventListener('click', needLogin);
    $('logout-btn').addEventListener('click', logout);
    $('login-form').addEventListener('submit', submitLogin);
    $('login-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
    $('ack-form').addEventListener('submit', submitAction);
    $('ack-selected').addEventListener('click', ackSelected);
    // A correction clears what the last attempt said was missing.
    $('ack-form').addEventListener('input', () => { $('ack-error').textContent = ''; });
    for (const b of document.querySelectorAll('#trend-dialog [data-range]')) {
      b.addEventListener('click', () => { trend.range = Number(b.dataset.range); drawTrend(); });
    }
    $('journal-btn').addEventListener('click', openJournal);
    $('journal-form').addEventListener('submit', loadJournal);
    $('j-csv').addEventListener('click', exportJournal);
    $('j-handover').addEventListener('click', handover);
    $('j-print').addEventListener('click', () => window.print());
    $('journal-form').addEventListener('input', () => { $('j-summary').hidden = true; });
    $('j-close').addEventListener('click', () => $('journal-dialog').close());
    $('trend-add').addEventListener('change', () => {
      const id = $('trend-add').value;
      if (id && pointsById.has(id) && !trend.points.includes(id)) { trend.points.push(id); drawTrend(); }
    });
    $('trend-close').addEventListener('click', () => {
      $('trend-dialog').close();
      if (trend.chart) { trend.chart.destroy(); trend.chart = null; }
    });
    $('ack-cancel').addEventListener('click', () => { $('ack-dialog').close(); actTarget = null; });
    // A kiosk started with `--autoplay-policy=no-user-gesture-required` sounds at once;
    // elsewhere the audio-blocked banner shows until the first click.
    enableSound();
    applyLang();
    tickClock();
    setInterval(tickClock, 1000);
    setInterval(() => { if (feed) loadPoints(); }, POINTS_EVERY_MS);
    setInterval(() => { if (feed) { loadSummary(); loadReady(); loadDevices(); } }, SUMMARY_EVERY_MS);
    setInterval(() => updateHorn(true), HORN_EVERY_MS);
    start();
  });
})();

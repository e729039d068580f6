//! The four file layouts (see the module doc for their records).

use std::time::Duration;

use super::config::ValueType;
use super::state::quality_bits;
use super::text::FileText;
use super::{CoalEncoder, Definition, FileType};
use crate::model::{Quality, Timestamp};
use crate::sinks::uplink::{Payload, RecordKind, UplinkRecord};

/// Bytes reserved per record when a file's text is started (avoids regrowing for typical rows).
const RECORD_CAPACITY: usize = 96;

fn newest(records: &[&UplinkRecord]) -> Timestamp {
    records.iter().map(|r| r.time).max().unwrap_or(Timestamp::from_nanos(0))
}

fn of_kind(records: &[UplinkRecord], kind: RecordKind) -> Vec<&UplinkRecord> {
    records.iter().filter(|r| r.kind == kind).collect()
}

impl CoalEncoder {
    /// CDDY: updates the definitions; writes the whole list when one is new or changed.
    pub(super) fn cddy(&mut self, records: &[UplinkRecord]) -> Option<Payload> {
        let records = of_kind(records, RecordKind::Basic);
        let mut changed = false;
        for r in &records {
            let meta = r.meta.as_deref().cloned().unwrap_or_default();
            let info = self.point_info(r, Some(&meta));
            let spec = self.settings.point(&r.point).cloned().unwrap_or_default();
            let mut line = FileText::bare(RECORD_CAPACITY * 2);
            line.field(&info.code);
            line.field(&self.settings.system);
            line.opt(spec.substation.as_deref());
            line.field(&info.type_name);
            line.field(info.value_type.code());
            let d = info.decimals;
            if info.value_type == ValueType::Analog {
                line.field(&r.unit);
                let (low, high) = meta.range.map_or((None, None), |(l, h)| (Some(l), Some(h)));
                let alarm = meta.high.or(meta.high_high);
                let cut = if info.power_cut { meta.high_high } else { None };
                let low_alarm = meta.low.or(meta.low_low);
                for v in [
                    high,
                    low,
                    alarm,
                    spec.high_clear.or(alarm),
                    low_alarm,
                    spec.low_clear.or(low_alarm),
                ] {
                    line.num(v, d);
                }
                line.num(cut, d);
                line.num(cut.and(spec.restore.or(alarm)), d);
            } else {
                line.field("");
                for _ in 0..8 {
                    line.num(None, d);
                }
            }
            line.num(None, d); // low power cut: no coal-mine quantity cuts power on a low value
            line.num(None, d);
            line.opt(spec.on_off.as_deref());
            line.field(&info.location);
            for v in [spec.x, spec.y, spec.z] {
                line.num(v, 2);
            }
            line.opt(spec.relation.as_deref());
            let line = line.into_fields();
            self.info.insert(r.point.clone(), info.clone());
            let new = Definition { line, time: r.time };
            match self.definitions.get(&info.code) {
                Some(old) if old.line == new.line => {}
                _ => {
                    self.definitions.insert(info.code.clone(), new);
                    changed = true;
                }
            }
        }
        if !changed {
            return None;
        }
        let count = self.definitions.len();
        let (name, mut text) = self.start(FileType::Cddy, newest(&records), RECORD_CAPACITY * 3 * count);
        for def in self.definitions.values() {
            text.raw_fields(&def.line);
            text.field(self.times.record(def.time));
            text.end_record();
        }
        Some(self.payload(name, text, records.len(), false))
    }

    /// CDSS: one record per reading; a reading that is not good has an empty value.
    pub(super) fn cdss(&mut self, records: &[UplinkRecord]) -> Option<Payload> {
        let records = of_kind(records, RecordKind::Realtime);
        if records.is_empty() {
            return None;
        }
        let (name, mut text) = self.start(FileType::Cdss, newest(&records), RECORD_CAPACITY * (records.len() + 1));
        for r in &records {
            let info = self.info_for(r).clone();
            let state = quality_bits(r.quality) | self.tracker.bits(&r.point);
            let value = r
                .value
                .filter(|_| matches!(r.quality, Quality::Good | Quality::Uncertain | Quality::Suspect));
            text.field(&info.code);
            text.field(&info.type_name);
            text.field(&info.location);
            match info.value_type {
                ValueType::Analog => text.num(value, info.decimals),
                ValueType::Switch => text.num(value.map(|v| if v != 0.0 { 1.0 } else { 0.0 }), 0),
            }
            text.field(&r.unit);
            text.int(u64::from(state));
            text.field(self.times.record(r.time));
            text.end_record();
        }
        Some(self.payload(name, text, records.len(), false))
    }

    /// YCBJ: a record per condition that began or ended.
    pub(super) fn ycbj(&mut self, records: &[UplinkRecord]) -> Option<Payload> {
        let records = of_kind(records, RecordKind::Alarm);
        let mut rows = Vec::new();
        for r in &records {
            let Some(event) = r.alarm.as_deref() else { continue };
            let info = self.info_for(r).clone();
            if let Some(change) = self.tracker.apply(&r.point, event, info.power_cut) {
                rows.push((info, change, event.value, event.limit, r.unit.clone(), event.ts));
            }
        }
        if rows.is_empty() {
            return None;
        }
        let newest = rows.iter().map(|row| row.5).max().unwrap_or(Timestamp::from_nanos(0));
        let (name, mut text) = self.start(FileType::Ycbj, newest, RECORD_CAPACITY * (rows.len() + 1));
        for (info, change, value, limit, unit, _) in &rows {
            text.field(&info.code);
            text.field(&info.type_name);
            text.field(&info.location);
            text.field(change.kind.code());
            let begin = change.begin.map(|t| self.times.record(t).to_string());
            text.opt(begin.as_deref());
            let end = change.end.map(|t| self.times.record(t).to_string());
            text.opt(end.as_deref());
            text.num(Some(*value), info.decimals);
            text.num(*limit, info.decimals);
            text.field(unit);
            text.end_record();
        }
        Some(self.payload(name, text, records.len(), true))
    }

    /// TJSJ: max, min, avg and count of good readings per interval.
    pub(super) fn tjsj(&mut self, records: &[UplinkRecord], interval: Duration) -> Option<Payload> {
        let kind = records.first()?.kind;
        let records = of_kind(records, kind);
        let newest_end = newest(&records).plus(interval);
        let (name, mut text) = self.start(FileType::Tjsj, newest_end, RECORD_CAPACITY * (records.len() + 1));
        for r in &records {
            let info = self.info_for(r).clone();
            let stats = r.stats.filter(|s| s.count > 0);
            text.field(&info.code);
            text.field(&info.type_name);
            text.field(&info.location);
            text.field(&r.unit);
            text.num(stats.map(|s| s.max), info.decimals);
            text.num(stats.map(|s| s.min), info.decimals);
            text.num(stats.map(|s| s.avg), info.decimals);
            text.int(stats.map_or(0, |s| s.count));
            text.int(u64::from(quality_bits(r.quality) | self.tracker.bits(&r.point)));
            text.field(self.times.record(r.time));
            text.field(self.times.record(r.time.plus(interval)));
            text.end_record();
        }
        Some(self.payload(name, text, records.len(), false))
    }
}

//! Driving the engine: readings, ticks, commands and restoration.

use super::*;
use crate::rules::Delays;

impl RulesEngine {
    /// Number of alarms the configuration defines.
    pub fn alarm_count(&self) -> usize {
        self.slots.len()
    }

    /// The points the engine knows.
    pub fn points(&self) -> &PointTable {
        &self.points
    }

    /// Points that carry an early warning, whose cycles [`RulesEngine::seed_cycles`] can
    /// start from history.
    pub fn early_warning_points(&self) -> Vec<PointId> {
        self.points
            .iter()
            .filter(|(p, _)| !self.earlies[p.index()].is_empty())
            .map(|(p, _)| p)
            .collect()
    }

    /// Starts point `p`'s early warnings from its stored minute means (minute since the epoch,
    /// mean), oldest first: a point run in cycles is recognised from its first reading.
    pub fn seed_cycles(&mut self, p: PointId, minutes: &[(i64, f64)]) {
        if let Some(evals) = self.earlies.get_mut(p.index()) {
            for e in evals {
                e.season.seed(minutes);
            }
        }
    }

    /// Every threshold alarm with the settings that shape when it raises and clears, for
    /// tuning suggestions.
    pub fn threshold_settings(&self) -> Vec<ThresholdSetting> {
        let mut out = Vec::new();
        for (point, _) in self.points.iter() {
            for t in &self.thresholds[point.index()] {
                let slot = self.slots.view(t.slot);
                out.push(ThresholdSetting {
                    alarm_id: slot.meta.id(),
                    rule: slot.meta.rule.to_string(),
                    point,
                    level: t.limit.level,
                    set_point: t.limit.value,
                    falling: t.limit.falling,
                    priority: t.limit.priority,
                    deadband: t.deadband,
                    on_delay: slot.delays().on,
                    off_delay: slot.delays().off,
                });
            }
        }
        out
    }

    /// The slot of the alarm `id`.
    ///
    /// Ids are not kept (a plant has an alarm or more per point): an id is its subject, a `:`
    /// and what follows, so each prefix up to a `:` that names a point, device, group or the
    /// gateway is a candidate subject, and its alarms are compared whole.
    pub(super) fn slot_of(&self, id: &str) -> Option<usize> {
        id.match_indices(':').find_map(|(i, _)| {
            let subject = &id[..i];
            let points = self.points.id_of(subject).into_iter();
            let points = points.flat_map(|p| self.point_slots[p.index()].iter().map(|&s| s as usize));
            let others = self.subjects.get(subject).into_iter().flat_map(|s| s.iter().copied());
            points.chain(others).find(|&s| self.slots.id(s) == id)
        })
    }

    /// Evaluates one reading.
    ///
    /// Returns the reading's quality as it should be stored and sent on: a trusted reading
    /// that a suspect-data check doubts comes back `Suspect` (it still drives the process
    /// alarms below).
    pub fn evaluate(&mut self, r: &Reading, out: &mut Output) -> Quality {
        let p = r.point.index();
        if p >= self.last_seen.len() {
            return r.quality;
        }
        let quality = self.screen(p, r, out);
        self.update_device(r, out);
        // A lost link says nothing of the sensor: its stale alarm holds as it is (the
        // communication alarm speaks for the outage) until the sensor is heard again.
        if r.quality != Quality::CommFault {
            self.last_seen[p] = r.ts;
            for i in 0..self.stales[p].len() {
                let slot = self.stales[p][i].slot;
                self.drive(slot, r.quality == Quality::Stale, f64::NAN, r.ts, out);
            }
        }
        // A sensor-fault alarm returns to normal only on a trusted value (ISA-18.2: an alarm
        // clears on evidence that its condition is gone, never on the absence of data). A
        // silent (stale) sensor is itself a fault; a lost link holds the alarm as it is, since
        // the device's communication alarm speaks for the outage.
        let sensor_fault = match r.quality {
            Quality::OutOfRange | Quality::DecodeError | Quality::Stale => Some(true),
            Quality::Good | Quality::Uncertain | Quality::Suspect => Some(false),
            Quality::CommFault => None,
        };
        if let Some(fault) = sensor_fault {
            for i in 0..self.faults[p].len() {
                let slot = self.faults[p][i] as usize;
                self.drive(slot, fault, r.value, r.ts, out);
            }
        }
        if !r.quality.drives_process_alarms() {
            // Process alarms hold while the value cannot be trusted, and a running delay does
            // not complete on data nobody saw; the fault alarms speak instead.
            self.latest.set(p, None);
            self.cancel_process_delays(p, out);
            // A trend is only as good as every sample in it: start again on trusted data.
            for e in &mut self.earlies[p] {
                e.samples.clear();
                e.trend = None;
                e.seasonal = None;
            }
            return quality;
        }
        self.latest.set(p, Some(r.value));
        let mut level_changed = false;
        for i in 0..self.thresholds[p].len() {
            let t = self.thresholds[p][i];
            let active = self.slots.view(t.slot).deb.is_active();
            level_changed |= self.drive(
                t.slot,
                tripped(&t.limit, t.deadband, active, r.value),
                r.value,
                r.ts,
                out,
            );
        }
        for i in 0..self.rates[p].len() {
            let e = &mut self.rates[p][i];
            let Some(rate) = e.samples.push(r.ts, r.value, e.window, e.per) else {
                continue;
            };
            let trip = e.rise.is_some_and(|x| rate >= x) || e.fall.is_some_and(|x| rate <= -x);
            let slot = e.slot;
            self.drive(slot, trip, rate, r.ts, out);
        }
        for i in 0..self.earlies[p].len() {
            self.eval_early(p, i, r, out);
        }
        for i in 0..self.point_deviations[p].len() {
            let d = self.point_deviations[p][i];
            self.eval_deviation(d, r.ts, out);
        }
        if level_changed {
            self.eval_votes_of_point(r.point, r.ts, out);
        }
        quality
    }

    /// The suspect-data checks of point `p` on a trusted reading: drives their alarms and
    /// gives the quality the reading goes on with. An untrusted reading leaves them as they
    /// are (a fault does not restart a flat run: a flatline after it is still caught).
    fn screen(&mut self, p: usize, r: &Reading, out: &mut Output) -> Quality {
        if !r.quality.drives_process_alarms() {
            return r.quality;
        }
        let range = self.points.meta(r.point).range();
        let Some(e) = self.suspects[p].as_mut() else {
            return r.quality;
        };
        let verdict = e.state.judge(&e.checks, range, r.ts, r.value);
        let slots = e.slots;
        for (check, slot) in Check::ALL.into_iter().zip(slots) {
            if let Some(slot) = slot {
                self.drive(slot, verdict.get(check), r.value, r.ts, out);
            }
        }
        if verdict.suspect() { Quality::Suspect } else { r.quality }
    }

    /// Lets time pass: stale detection, delays that expire without a new reading, shelving
    /// expiry and the sliding alarm-rate window.
    pub fn tick(&mut self, now: Timestamp, out: &mut Output) {
        for p in 0..self.stales.len() {
            if self.point_commfault[p] {
                continue;
            }
            let last = self.last_seen[p];
            // Silence raises; only a reading (in `evaluate`) clears. A stale alarm restored
            // at start is not cleared by the new run's short silence so far.
            for i in 0..self.stales[p].len() {
                let s = self.stales[p][i];
                if now.since(last) >= s.after {
                    self.drive(s.slot, true, f64::NAN, now, out);
                }
            }
        }
        // A jump's hold ends by time alone: the point may not be read again for a while.
        for p in 0..self.suspects.len() {
            let Some(e) = self.suspects[p].as_ref() else { continue };
            let Some(slot) = e.slot(Check::Jump) else { continue };
            if !e.state.jump_holds(&e.checks, now) && self.slots.view(slot).deb.is_active() {
                self.drive(slot, false, f64::NAN, now, out);
            }
        }
        // A lazy alarm has no delay running and is not shelved.
        for slot in 0..self.slots.len() {
            let Some(s) = self.slots.full_mut(slot) else { continue };
            if s.deb.pending_since().is_some() {
                let Delays { on, off } = s.delays();
                if let Some(active) = s.deb.expire(now, on, off) {
                    out.timers.push((s.meta.id(), None));
                    self.flip(slot, active, now, out);
                }
            }
            if self.slots.view(slot).life.shelved_until().is_some_and(|t| t <= now) {
                let _ = self.act(slot, Action::Unshelve, now, None, Some("shelving expired"), out);
            }
        }
        if let Some(f) = self.flood.tick(now, self.settings.flood_threshold) {
            out.flood = Some(f);
        }
        let chatter = self.settings.chatter_threshold;
        self.chattering
            .retain(|&s| self.slots.get_mut(s).raise_count(now, CHATTER_WINDOW) >= chatter);
    }

    /// Feeds one self-diagnostic finding to its `gateway:<check>` alarm.
    pub fn diagnose(&mut self, d: Diagnosis, now: Timestamp, out: &mut Output) {
        let Some(&(_, slot)) = self.gateway.iter().find(|(k, _)| *k == d.kind) else {
            return;
        };
        self.drive(slot, d.active, d.value, now, out);
    }

    /// Applies an operator command; the user and comment are journaled with the transition.
    pub fn command(
        &mut self,
        alarm_id: &str,
        command: Command,
        user: &str,
        comment: &str,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<AlarmEvent, CommandError> {
        let slot = self
            .slot_of(alarm_id)
            .ok_or_else(|| CommandError::UnknownAlarm(alarm_id.to_string()))?;
        let action = match command {
            Command::Acknowledge => Action::Acknowledge,
            Command::Reset => Action::Reset,
            Command::Shelve(d) if d > self.settings.max_shelve => {
                return Err(CommandError::ShelveTooLong {
                    max: self.settings.max_shelve,
                });
            }
            Command::Shelve(d) => Action::Shelve(now.plus(d)),
            Command::Unshelve => Action::Unshelve,
            Command::RemoveFromService => Action::OutOfService(true),
            Command::ReturnToService => Action::OutOfService(false),
        };
        self.act(slot, action, now, Some(user), Some(comment), out)?;
        Ok(out
            .events
            .last()
            .cloned()
            .unwrap_or_else(|| self.slots.view(slot).event(Transition::Acknowledged, now, None, None)))
    }

    /// The current record of every alarm that has something to show.
    pub fn visible(&self, now: Timestamp) -> Vec<AlarmEvent> {
        // A lazy alarm is normal, so not visible.
        self.slots
            .iter_full()
            .filter(|(_, s)| s.life.visible())
            .map(|(_, s)| {
                let mut e = s.event(Transition::Raised, s.life.raised_at().unwrap_or(now), None, None);
                e.ts = s.life.raised_at().unwrap_or(now);
                e
            })
            .collect()
    }

    /// Flood and chattering figures.
    pub fn stats(&self) -> AlarmStats {
        AlarmStats {
            flood: self.flood.in_flood(),
            rate_10min: self.flood.rate(),
            chattering: self.chattering.iter().map(|&s| self.slots.id(s)).collect(),
            chattering_total: self.chattering_total,
        }
    }

    /// Restores an alarm from its last journaled transition; `false` if the configuration no
    /// longer defines it. Emits nothing.
    pub fn restore(&mut self, e: &AlarmEvent) -> bool {
        let Some(slot) = self.slot_of(&e.alarm_id) else {
            return false;
        };
        let s = self.slots.get_mut(slot);
        s.life = Lifecycle::restored(
            e.state,
            s.life.latching(),
            e.acknowledged,
            e.shelved_until,
            e.suppressed,
            e.out_of_service,
            e.raised_at,
        );
        s.deb.restore(e.condition_active(), None);
        s.value = e.value;
        s.set_predicted(e.predicted_at);
        true
    }

    /// Replays a journaled raise (of the last flood window) into the alarm's chattering count
    /// and the flood count, so a restart neither hides a flood nor restarts its window. Emits
    /// nothing; call [`RulesEngine::finish_restore_windows`] after the last one.
    pub fn restore_raise(&mut self, e: &AlarmEvent) {
        if e.transition != Transition::Raised {
            return;
        }
        if let Some(slot) = self.slot_of(&e.alarm_id) {
            self.slots.get_mut(slot).record_raise(e.ts, CHATTER_WINDOW);
        }
        if e.annunciated() {
            let _ = self.flood.record(e.ts, self.settings.flood_threshold);
        }
    }

    /// After the raises: the flood state and the chattering alarms as of `now`, silently (a
    /// flood or chattering that began before the stop was announced then).
    pub fn finish_restore_windows(&mut self, now: Timestamp) {
        let _ = self.flood.tick(now, self.settings.flood_threshold);
        let chatter = self.settings.chatter_threshold;
        for slot in 0..self.slots.len() {
            // A lazy alarm has no raises.
            let Some(s) = self.slots.full_mut(slot) else { continue };
            if s.raise_count(now, CHATTER_WINDOW) >= chatter {
                self.chattering.insert(slot);
            }
        }
    }

    /// Restores a delay timer that was running at the last stop; `false` if unknown.
    pub fn restore_timer(&mut self, alarm_id: &str, since: Timestamp) -> bool {
        let Some(slot) = self.slot_of(alarm_id) else {
            return false;
        };
        let s = self.slots.get_mut(slot);
        let active = s.deb.is_active();
        s.deb.restore(active, Some(since));
        true
    }

    /// After [`RulesEngine::restore`]: recomputes group levels and device suppression silently.
    ///
    /// A device (or station) whose communication alarm was active at the last stop is taken
    /// as still silent on every point until a reading says otherwise. Otherwise the first
    /// poll, reporting its points one by one, would see one faulted point of several, clear
    /// the alarm and raise it again a moment later, losing its acknowledgement.
    pub fn finish_restore(&mut self) {
        for d in 0..self.devices.len() {
            if !self.slots.view(self.devices[d].slot).deb.is_active() {
                continue;
            }
            for i in 0..self.devices[d].points.len() {
                let p = self.devices[d].points[i].index();
                if self.point_commfault[p] {
                    continue;
                }
                self.point_commfault[p] = true;
                let dev = self.point_device[p] as usize;
                let station = self.devices[dev].station;
                for e in std::iter::once(dev).chain(station) {
                    self.devices[e].faulted += 1;
                }
            }
        }
        for v in 0..self.votes.len() {
            let levels = self.member_levels(v);
            self.votes[v].level = group_level(&self.votes[v].mode, &levels);
        }
        for d in 0..self.devices.len() {
            if self.slots.view(self.devices[d].slot).deb.is_active() {
                let dev = &self.devices[d];
                let points = dev
                    .points
                    .iter()
                    .flat_map(|p| self.point_slots[p.index()].iter().map(|&s| s as usize));
                let members = dev
                    .members
                    .iter()
                    .map(|&m| self.devices[m].slot)
                    .filter(|&s| self.slots.view(s).life.state() != crate::model::AlarmState::Normal);
                let slots: Vec<usize> = points.chain(members).collect();
                for slot in slots {
                    let _ = self
                        .slots
                        .get_mut(slot)
                        .life
                        .apply(Action::Suppress(true), self.started);
                }
            }
        }
    }

    /// Feeds a raw condition to a slot's debounce; on a flip, runs the lifecycle and fan-out.
    /// Returns whether the debounced condition flipped.
    fn drive(&mut self, slot: usize, trip: bool, value: f64, ts: Timestamp, out: &mut Output) -> bool {
        // A lazy alarm whose condition stays off keeps only the value (its debounce is off
        // with no delay running, so nothing else would change).
        if !trip && let Some(v) = self.slots.lazy_value(slot) {
            if !value.is_nan() {
                *v = value;
            }
            return false;
        }
        let s = self.slots.get_mut(slot);
        let before = s.deb.pending_since();
        let Delays { on, off } = s.delays();
        let flipped = s.deb.update(trip, ts, on, off);
        if s.deb.pending_since() != before {
            out.timers.push((s.meta.id(), s.deb.pending_since()));
        }
        if !value.is_nan() || flipped.is_some() {
            s.value = value;
        }
        match flipped {
            Some(active) => {
                self.flip(slot, active, ts, out);
                true
            }
            None => false,
        }
    }

    fn flip(&mut self, slot: usize, active: bool, ts: Timestamp, out: &mut Output) {
        let _ = self.act(slot, Action::Condition(active), ts, None, None, out);
        match self.slots.view(slot).meta.role {
            Role::Device(d) => self.suppress_device(d as usize, active, ts, out),
            Role::Threshold(p) => self.eval_votes_of_point(p, ts, out),
            Role::Point(_) | Role::Group | Role::Gateway => {}
        }
    }

    fn act(
        &mut self,
        slot: usize,
        action: Action,
        ts: Timestamp,
        user: Option<&str>,
        comment: Option<&str>,
        out: &mut Output,
    ) -> Result<(), LifecycleError> {
        let s = self.slots.get_mut(slot);
        let Some(t) = s.life.apply(action, ts)? else {
            return Ok(());
        };
        let event = s.event(t, ts, user, comment);
        if t == Transition::Raised {
            let n = s.record_raise(ts, CHATTER_WINDOW);
            if n >= self.settings.chatter_threshold && self.chattering.insert(slot) {
                self.chattering_total += 1;
            }
            if event.annunciated()
                && let Some(f) = self.flood.record(ts, self.settings.flood_threshold)
            {
                out.flood = Some(f);
            }
        }
        // Suppression flips on alarms with nothing to show stay out of the journal.
        let silent = matches!(t, Transition::Suppressed | Transition::Unsuppressed)
            && !event.condition_active()
            && event.state == crate::model::AlarmState::Normal;
        if !silent {
            out.events.push(event);
        }
        Ok(())
    }

    fn cancel_process_delays(&mut self, p: usize, out: &mut Output) {
        let slots = self.thresholds[p]
            .iter()
            .map(|t| t.slot)
            .chain(self.rates[p].iter().map(|r| r.slot))
            .chain(self.earlies[p].iter().flat_map(|e| e.slots.iter().map(|(_, s)| *s)));
        for slot in slots {
            let s = self.slots.get_mut(slot);
            if s.deb.pending_since().is_some() {
                let active = s.deb.is_active();
                s.deb.restore(active, None);
                out.timers.push((s.meta.id(), None));
            }
        }
    }

    fn update_device(&mut self, r: &Reading, out: &mut Output) {
        let p = r.point.index();
        let d = self.point_device[p] as usize;
        let station = self.devices[d].station;
        let faulted = r.quality == Quality::CommFault;
        let mut station_flipped = false;
        if faulted != self.point_commfault[p] {
            self.point_commfault[p] = faulted;
            for e in std::iter::once(d).chain(station) {
                let was = self.devices[e].offline();
                let dev = &mut self.devices[e];
                dev.faulted = if faulted {
                    dev.faulted + 1
                } else {
                    dev.faulted.saturating_sub(1)
                };
                station_flipped |= Some(e) == station && was != self.devices[e].offline();
            }
        }
        match station {
            None => {
                let dev = &self.devices[d];
                self.drive(dev.slot, dev.offline(), f64::NAN, r.ts, out);
            }
            Some(st) => {
                self.drive(self.devices[st].slot, self.devices[st].offline(), f64::NAN, r.ts, out);
                if station_flipped {
                    for i in 0..self.devices[st].members.len() {
                        self.drive_member(self.devices[st].members[i], r.ts, out);
                    }
                } else {
                    self.drive_member(d, r.ts, out);
                }
            }
        }
    }

    /// A device behind a station alarms on its own only while the station is alive: once every
    /// device is silent the link is lost and the station's alarm speaks for them all (a device
    /// already in alarm stays so, under the station's suppression).
    fn drive_member(&mut self, d: usize, ts: Timestamp, out: &mut Output) {
        let dev = &self.devices[d];
        let station_down = dev.station.is_some_and(|s| self.devices[s].offline());
        let active = self.slots.view(dev.slot).deb.is_active();
        let trip = dev.offline() && (!station_down || active);
        self.drive(dev.slot, trip, f64::NAN, ts, out);
    }

    fn suppress_device(&mut self, d: usize, on: bool, ts: Timestamp, out: &mut Output) {
        for i in 0..self.devices[d].points.len() {
            let p = self.devices[d].points[i].index();
            for j in 0..self.point_slots[p].len() {
                let slot = self.point_slots[p][j] as usize;
                let _ = self.act(slot, Action::Suppress(on), ts, None, None, out);
            }
        }
        // Member devices' alarms are held back while the station is lost (they cannot raise
        // then); only one already showing needs suppressing, so the list shows the station alone.
        for i in 0..self.devices[d].members.len() {
            let slot = self.devices[self.devices[d].members[i]].slot;
            let life = self.slots.view(slot).life;
            if on == life.suppressed() || (on && life.state() == crate::model::AlarmState::Normal) {
                continue;
            }
            let _ = self.act(slot, Action::Suppress(on), ts, None, None, out);
        }
    }

    /// One early-warning rule of point `p`: the set-point ahead of the trend warns while its
    /// predicted crossing is near; every other set-point's warning is off (a value already
    /// past a set-point has its threshold alarm instead).
    fn eval_early(&mut self, p: usize, i: usize, r: &Reading, out: &mut Output) {
        let e = &mut self.earlies[p][i];
        let limits: Vec<Limit> = e.slots.iter().map(|(l, _)| *l).collect();
        e.season.push(r.ts, r.value);
        if e.samples.push(r.ts, r.value, e.window) {
            e.trend = e.samples.trend(e.window, e.min_samples);
            let samples: Vec<(Timestamp, f64)> = e.samples.samples().copied().collect();
            let within = e.horizon.mul_f64(CLEAR_FACTOR);
            e.seasonal = predict_seasonal(&e.season, &samples, r.value, &limits, within, e.min_samples);
        }
        let target = match e.seasonal {
            // A set-point the value has passed meanwhile has its threshold alarm instead.
            Some(s) => s.filter(|(l, _)| {
                if l.falling {
                    l.value < r.value
                } else {
                    l.value > r.value
                }
            }),
            None => e.trend.as_ref().and_then(|t| predict(t, r.value, &limits)),
        };
        let horizon = e.horizon;
        for j in 0..self.earlies[p][i].slots.len() {
            let (limit, slot) = self.earlies[p][i].slots[j];
            let active = self.slots.view(slot).deb.is_active();
            let at = target
                .filter(|(l, at)| l.level == limit.level && warns(active, r.ts, *at, horizon))
                .map(|(_, at)| at);
            // No crossing predicted any more: the record says so (also during an off-delay).
            self.slots.get_mut(slot).set_predicted(at);
            self.drive(slot, at.is_some(), r.value, r.ts, out);
        }
    }

    fn eval_deviation(&mut self, d: usize, ts: Timestamp, out: &mut Output) {
        let dev = &self.deviations[d];
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in &dev.points {
            let Some(v) = self.latest.get(p.index()) else { return };
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let spread = hi - lo;
        let active = self.slots.view(dev.slot).deb.is_active();
        let limit = if active { dev.max - dev.deadband } else { dev.max };
        let trip = if active { spread >= limit } else { spread > limit };
        let slot = dev.slot;
        self.drive(slot, trip, spread, ts, out);
    }

    /// The most severe active threshold level of a point (within `family`).
    fn point_level(&self, p: PointId, family: Level) -> Option<Level> {
        self.thresholds[p.index()]
            .iter()
            .filter(|t| t.limit.level.same_family(family) && self.slots.view(t.slot).deb.is_active())
            .map(|t| t.limit.level)
            .max_by_key(|l| l.rank())
    }

    fn member_levels(&self, v: usize) -> Vec<Option<Level>> {
        let vote = &self.votes[v];
        let family = vote.slots.first().map_or(Level::High, |(l, _)| *l);
        vote.inputs
            .iter()
            .map(|m| match m {
                VoteInput::Point(p) => self.point_level(*p, family),
                VoteInput::Group(g) => self.votes[*g].level,
            })
            .collect()
    }

    fn eval_votes_of_point(&mut self, p: PointId, ts: Timestamp, out: &mut Output) {
        for i in 0..self.point_votes[p.index()].len() {
            let v = self.point_votes[p.index()][i];
            self.eval_vote(v, ts, out);
        }
    }

    fn eval_vote(&mut self, v: usize, ts: Timestamp, out: &mut Output) {
        let levels = self.member_levels(v);
        let level = group_level(&self.votes[v].mode, &levels);
        if level == self.votes[v].level {
            return;
        }
        self.votes[v].level = level;
        let in_alarm = levels.iter().flatten().count() as f64;
        for i in 0..self.votes[v].slots.len() {
            let (slot_level, slot) = self.votes[v].slots[i];
            let trip = level.is_some_and(|l| l.rank() >= slot_level.rank());
            self.drive(slot, trip, in_alarm, ts, out);
        }
        for i in 0..self.votes[v].parents.len() {
            let parent = self.votes[v].parents[i];
            self.eval_vote(parent, ts, out);
        }
    }
}

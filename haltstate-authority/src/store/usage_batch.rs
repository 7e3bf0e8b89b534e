//! The usage buckets one transaction reads and charges, held in memory from its first read to its commit, and
//! by a writer that owns its database (SQLite's) from one transaction to the next.
//!
//! A batch often carries many guards of one agent's action (an agent in a loop). Each used to read every bucket
//! of the agent's windows, then read and write the three its charge touched: three statements per guard, on
//! PostgreSQL three round trips. Here the first operation that needs an (agent, action)'s usage reads its buckets
//! once; later ones decide from and charge this copy, and the buckets it changed are written once, before the
//! `COMMIT` (a failed write fails the transaction, as any failed statement does).
//!
//! The copy holds every stored bucket inside the windows at the transaction's clock reading (one reading per
//! transaction, so the windows do not move under it) and nothing else writes these rows during the transaction
//! (the writer owns the tenant), so a decision sees what the database would answer had each charge been written
//! at once. An operation undone (its savepoint rolled back) takes its charges out of the copy too.
//!
//! After a day of steady use a window holds up to 141 buckets (59 seconds, 59 minutes, 23 hours before the
//! current ones), and reading and decoding them was over a third of a usage-reading guard. A writer that is the
//! only one writing its file keeps the copies after the commit: the next transaction trims each to its windows
//! (what the read would have left out) instead of reading it again. It must [`UsageBatch::clear`] them whenever
//! the database may hold something else: another process wrote, a transaction rolled back.
use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::usage::{Buckets, SPANS, Span};
use crate::error::{AuthorityError, Result};
use crate::policy::{Usage, UsageWindow};
use crate::state_rows::Charge;

/// The largest count or token figure a bucket's columns store (`usage::columns` saturates there).
const STORED_MAX: u64 = i64::MAX as u64;

/// Tenant, agent, action.
type Scope = (String, String, String);

/// A bucket: the index of its span in [`SPANS`], and its start (µs).
type Slot = (usize, i64);

/// One scope's buckets inside the windows, as this transaction sees them.
#[derive(Debug)]
struct Copy {
    buckets: BTreeMap<Slot, UsageWindow>,
    /// Buckets changed since they were read: written before the commit.
    changed: BTreeSet<Slot>,
    /// Spans in which a bucket began: their buckets that left the window are deleted before the commit (once per
    /// new bucket, not per charge).
    began: [bool; 3],
    /// The clock reading whose windows `buckets` holds.
    at: OffsetDateTime,
}

impl Copy {
    fn new(at: OffsetDateTime) -> Self {
        Self {
            buckets: BTreeMap::new(),
            changed: BTreeSet::new(),
            began: [false; 3],
            at,
        }
    }

    /// Leaves out the buckets that are not inside the windows at `now`, as reading them from the database would.
    fn trim(&mut self, now: OffsetDateTime) {
        let firsts = SPANS.map(|span| span.first(now));
        self.buckets
            .retain(|(span, start), _| *start >= firsts[*span]);
        self.at = now;
    }

    /// The windows' figures: each window the sum of its span's buckets, in the order of their starts.
    fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        for ((span, _), figures) in &self.buckets {
            if let Some(window) = usage.window_mut(SPANS[*span].window) {
                window.add(figures, 1);
            }
        }
        usage
    }
}

/// What a charge changed, to be put back if its operation is undone.
#[derive(Debug)]
struct Undo {
    scope: Scope,
    slot: Slot,
    before: Option<UsageWindow>,
    changed: bool,
    began: [bool; 3],
}

/// A transaction's copies of the usage buckets it touched. Made with the transaction, drained by its commit.
#[derive(Debug, Default)]
pub(crate) struct UsageBatch {
    /// By scope: ordered, so that the writes before the commit go out in one order.
    copies: BTreeMap<Scope, Copy>,
    /// Since the outermost open savepoint: what each charge changed.
    journal: Vec<Undo>,
    /// Per open savepoint, the journal's length when it opened.
    marks: Vec<usize>,
    /// The clock reading of the transaction the copies were last used in.
    now: Option<OffsetDateTime>,
}

/// How many buckets the copies kept between transactions may hold (each about 100 to 500 bytes with its sums):
/// beyond it, those the last transaction did not use are dropped, and all of them if that is not enough.
const KEPT_BUCKETS: usize = 16_384;

/// One scope's changed buckets and the spans to prune, as [`UsageBatch::drain`] hands them out.
pub(crate) struct Changes {
    pub(crate) tenant: String,
    pub(crate) agent: String,
    pub(crate) action: String,
    writes: Vec<(&'static Span, i64, UsageWindow)>,
    prunes: Vec<(&'static Span, i64)>,
}

impl Changes {
    /// Writes the changed buckets (one statement), then deletes those that left the window.
    pub(crate) fn store(&self, buckets: &mut impl Buckets) -> Result<()> {
        if !self.writes.is_empty() {
            buckets.write(&self.writes)?;
        }
        for (span, first) in &self.prunes {
            buckets.prune(span, *first)?;
        }
        Ok(())
    }
}

impl UsageBatch {
    /// Starts a transaction whose one clock reading is `now`, with the copies kept from the last. A clock that
    /// went back could put buckets the copies left out inside the windows again: only the database still has
    /// them, so the copies go.
    pub(crate) fn begin(&mut self, now: OffsetDateTime) {
        if self.now.is_some_and(|last| now < last) {
            self.clear();
        }
        self.now = Some(now);
    }

    /// Forgets every copy: the database may hold something else (another process wrote, a transaction rolled
    /// back).
    pub(crate) fn clear(&mut self) {
        self.copies.clear();
        self.journal.clear();
        self.marks.clear();
        self.now = None;
    }

    /// The agent's usage of the action over each window, as of `now` (the transaction's clock reading).
    pub(crate) fn usage(
        &mut self,
        buckets: &mut impl Buckets,
        scope: (&str, &str, &str),
        now: OffsetDateTime,
    ) -> Result<Usage> {
        Ok(self.copy(buckets, scope, now)?.usage())
    }

    /// Adds (`sign` 1) or takes back (`sign` -1) one charge in the buckets holding its time. A bucket already out
    /// of its window is left alone.
    pub(crate) fn charge(
        &mut self,
        buckets: &mut impl Buckets,
        scope: (&str, &str, &str),
        charge: &Charge,
        sign: i64,
        now: OffsetDateTime,
    ) -> Result<()> {
        let journaling = !self.marks.is_empty();
        let copy = self.copy(buckets, scope, now)?;
        let mut undo = Vec::new();
        for (index, span) in SPANS.iter().enumerate() {
            let start = span.bucket(charge.at);
            if start < span.first(now) {
                continue;
            }
            let slot = (index, start);
            if journaling {
                undo.push(Undo {
                    scope: owned(scope),
                    slot,
                    before: copy.buckets.get(&slot).cloned(),
                    changed: copy.changed.contains(&slot),
                    began: copy.began,
                });
            }
            let figures = copy.buckets.entry(slot).or_insert_with(|| {
                copy.began[index] = true;
                UsageWindow::default()
            });
            figures.add(&charge.figures, sign);
            copy.changed.insert(slot);
        }
        self.journal.extend(undo);
        Ok(())
    }

    /// Opens a savepoint: charges from here on can be undone.
    pub(crate) fn savepoint(&mut self) {
        self.marks.push(self.journal.len());
    }

    /// Undoes the charges made since the last savepoint opened, and closes it.
    pub(crate) fn rollback_to_savepoint(&mut self) {
        let Some(mark) = self.marks.pop() else {
            return;
        };
        for undo in self.journal.drain(mark..).rev() {
            let Some(copy) = self.copies.get_mut(&undo.scope) else {
                continue;
            };
            match undo.before {
                Some(figures) => copy.buckets.insert(undo.slot, figures),
                None => copy.buckets.remove(&undo.slot),
            };
            if !undo.changed {
                copy.changed.remove(&undo.slot);
            }
            copy.began = undo.began;
        }
    }

    /// Closes the last savepoint, keeping its charges.
    pub(crate) fn release_savepoint(&mut self) {
        self.marks.pop();
        if self.marks.is_empty() {
            self.journal.clear();
        }
    }

    /// What the transaction must store before its commit, per scope. The copies stay, as the database will hold
    /// them once that is stored: counts as their columns keep them.
    pub(crate) fn drain(&mut self, now: OffsetDateTime) -> Vec<Changes> {
        self.journal.clear();
        self.marks.clear();
        let mut changes = Vec::new();
        let mut kept = 0;
        for ((tenant, agent, action), copy) in &mut self.copies {
            kept += copy.buckets.len();
            if copy.changed.is_empty() {
                continue;
            }
            let mut writes = Vec::with_capacity(copy.changed.len());
            for slot in std::mem::take(&mut copy.changed) {
                if let Some(figures) = copy.buckets.get_mut(&slot) {
                    figures.count = figures.count.min(STORED_MAX);
                    figures.tokens = figures.tokens.min(STORED_MAX);
                    writes.push((&SPANS[slot.0], slot.1, figures.clone()));
                }
            }
            let prunes = SPANS
                .iter()
                .zip(std::mem::take(&mut copy.began))
                .filter(|(_, began)| *began)
                .map(|(span, _)| (span, span.first(now)))
                .collect();
            changes.push(Changes {
                tenant: tenant.clone(),
                agent: agent.clone(),
                action: action.clone(),
                writes,
                prunes,
            });
        }
        if kept > KEPT_BUCKETS {
            self.copies.retain(|_, copy| copy.at == now);
            if self.copies.values().map(|c| c.buckets.len()).sum::<usize>() > KEPT_BUCKETS {
                self.copies.clear();
            }
        }
        changes
    }

    /// The scope's copy, read from `buckets` the first time.
    fn copy(
        &mut self,
        buckets: &mut impl Buckets,
        scope: (&str, &str, &str),
        now: OffsetDateTime,
    ) -> Result<&mut Copy> {
        let key = owned(scope);
        match self.copies.get_mut(&key) {
            Some(copy) if copy.at != now => copy.trim(now),
            Some(_) => {}
            None => {
                let copy = read(buckets, now)?;
                self.copies.insert(key.clone(), copy);
            }
        }
        self.copies
            .get_mut(&key)
            .ok_or_else(|| AuthorityError::Corrupt("a usage copy went missing".into()))
    }
}

fn owned((tenant, agent, action): (&str, &str, &str)) -> Scope {
    (tenant.to_owned(), agent.to_owned(), action.to_owned())
}

/// The stored buckets inside the windows at `now`.
fn read(buckets: &mut impl Buckets, now: OffsetDateTime) -> Result<Copy> {
    let firsts = SPANS.map(|span| span.first(now));
    let mut copy = Copy::new(now);
    for (name, start, figures) in buckets.read(firsts)? {
        let index = SPANS
            .iter()
            .position(|span| span.name == name)
            .ok_or_else(|| {
                AuthorityError::Corrupt(format!("unknown usage bucket span {name:?}"))
            })?;
        if copy.buckets.insert((index, start), figures).is_some() {
            return Err(AuthorityError::Corrupt(format!(
                "usage bucket {name:?} at {start} is stored twice"
            )));
        }
    }
    Ok(copy)
}

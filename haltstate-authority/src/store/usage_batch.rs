//! The usage buckets one transaction reads and charges, held in memory from its first read to its commit.
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

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::usage::{Buckets, SPANS, Span};
use crate::error::{AuthorityError, Result};
use crate::policy::{Usage, UsageWindow};
use crate::state_rows::Charge;

/// Tenant, agent, action.
type Scope = (String, String, String);

/// A bucket: the index of its span in [`SPANS`], and its start (µs).
type Slot = (usize, i64);

/// One scope's buckets inside the windows, as this transaction sees them.
#[derive(Debug, Default)]
struct Copy {
    buckets: BTreeMap<Slot, UsageWindow>,
    /// Buckets changed since they were read: written before the commit.
    changed: BTreeSet<Slot>,
    /// Spans in which a bucket began: their buckets that left the window are deleted before the commit (once per
    /// new bucket, not per charge).
    began: [bool; 3],
}

impl Copy {
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
}

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

    /// What the transaction must store before its commit, per scope; the copies are gone after.
    pub(crate) fn drain(&mut self, now: OffsetDateTime) -> Vec<Changes> {
        self.journal.clear();
        self.marks.clear();
        std::mem::take(&mut self.copies)
            .into_iter()
            .filter(|(_, copy)| !copy.changed.is_empty())
            .map(|((tenant, agent, action), copy)| Changes {
                tenant,
                agent,
                action,
                writes: copy
                    .changed
                    .iter()
                    .filter_map(|slot| {
                        let figures = copy.buckets.get(slot)?.clone();
                        Some((&SPANS[slot.0], slot.1, figures))
                    })
                    .collect(),
                prunes: SPANS
                    .iter()
                    .zip(copy.began)
                    .filter(|(_, began)| *began)
                    .map(|(span, _)| (span, span.first(now)))
                    .collect(),
            })
            .collect()
    }

    /// The scope's copy, read from `buckets` the first time.
    fn copy(
        &mut self,
        buckets: &mut impl Buckets,
        scope: (&str, &str, &str),
        now: OffsetDateTime,
    ) -> Result<&mut Copy> {
        let key = owned(scope);
        if !self.copies.contains_key(&key) {
            let copy = read(buckets, now)?;
            self.copies.insert(key.clone(), copy);
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
    let mut copy = Copy::default();
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

//! Which b-trees a commit writes: guard + report from N callers (threads), then each commit's WAL frames counted
//! by the table or index their page belongs to.
//!
//! `cargo run --release -p haltstate-authority --example wal_pages [callers] [actions per caller] [usage]`
//! (`usage`: a policy that reads and charges a daily budget, `common::DAILY_BUDGET`, instead of one that permits
//! all)
//!
//! A frame is a page SQLite copies into the WAL at a commit: two `pwrite`s, a checksum, and a page to copy back at
//! the next checkpoint. On SQLite's writer they are the largest cost of a guarded action (BENCHMARKS.md), so
//! fewer distinct pages per commit is what makes it cheaper. The figures are for the last 400 commits (the
//! first ones also fill the schema's first pages); `internal` is a b-tree's interior page, moved by a split.
mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use haltstate_authority::{Authority, Durability};

/// The WAL's header, then each frame's header before its page (https://sqlite.org/fileformat.html#walformat).
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
const COMMITS: usize = 400;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let callers: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    let per_caller: u64 = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let policy = match args.next().as_deref() {
        None => common::PERMIT_ALL,
        Some("usage") => common::DAILY_BUDGET,
        Some(other) => {
            return Err(format!("unknown policy {other:?}: the choice is `usage`").into());
        }
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("p.db");
    // No checkpoint during the run: the WAL keeps every commit's frames.
    let authority = Arc::new(
        Authority::builder(&path)
            .policy_source("p.cedar", policy)
            .durability(Durability::Normal)
            .checkpoint_pages(1_000_000)
            .open()?,
    );
    common::run_callers(&authority, callers, per_caller)?;
    // Read while the authority is open: closing it would checkpoint the WAL away.
    let wal = std::fs::read(dir.path().join("p.db-wal"))?;
    let commits = commits(&wal)?;
    let names = page_names(&path)?;
    let last = &commits[commits.len().saturating_sub(COMMITS)..];
    let frames: usize = last.iter().map(Vec::len).sum();
    let per_commit = |n: usize| n as f64 / last.len().max(1) as f64;
    println!(
        "{callers} callers: {} commits, {:.2} operations per transaction; last {}: {:.2} frames per commit",
        commits.len(),
        common::operations_per_transaction(&authority),
        last.len(),
        per_commit(frames),
    );
    let mut by_tree: BTreeMap<&str, usize> = BTreeMap::new();
    for page in last.iter().flatten() {
        *by_tree
            .entry(
                names
                    .get(page)
                    .map_or("(page not in the file)", String::as_str),
            )
            .or_default() += 1;
    }
    let mut by_tree: Vec<_> = by_tree.into_iter().collect();
    by_tree.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (tree, n) in by_tree {
        println!("{:6.2}  {tree}", per_commit(n));
    }
    Ok(())
}

/// The page numbers of each commit's frames, in the order they were written.
fn commits(wal: &[u8]) -> Result<Vec<Vec<u32>>, String> {
    let word = |at: usize| -> Result<u32, String> {
        wal.get(at..at + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| format!("the WAL ends inside a header at byte {at}"))
    };
    let page_size = word(8)? as usize;
    let (mut commits, mut open) = (Vec::new(), Vec::new());
    let mut at = WAL_HEADER;
    while at + FRAME_HEADER + page_size <= wal.len() {
        open.push(word(at)?);
        // A commit's last frame holds the database's size in pages; every other frame holds 0.
        if word(at + 4)? != 0 {
            commits.push(std::mem::take(&mut open));
        }
        at += FRAME_HEADER + page_size;
    }
    Ok(commits)
}

/// The b-tree each page of the database belongs to (a page SQLite has read through the WAL included).
fn page_names(path: &std::path::Path) -> rusqlite::Result<HashMap<u32, String>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = conn.prepare("SELECT name, pageno, pagetype FROM dbstat")?;
    let rows = statement.query_map([], |row| {
        let (name, page, kind): (String, u32, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        Ok((
            page,
            if kind == "internal" {
                format!("{name} (internal)")
            } else {
                name
            },
        ))
    })?;
    rows.collect()
}

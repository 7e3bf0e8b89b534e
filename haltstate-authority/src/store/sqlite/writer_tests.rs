//! The writer connection's settings, observed from what SQLite does with them.
#![cfg(target_os = "linux")]

use super::open_writer;
use crate::store::Durability;

/// The files this process holds open that SQLite created as temporary files (unlinked at once, named
/// `etilqs_*`): a savepoint's journal that spilled to disk is one.
fn open_sqlite_temp_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.unwrap().path()).ok())
        .filter(|target| target.to_string_lossy().contains("etilqs_"))
        .count()
}

/// An operation under a savepoint (every one of a batch run again after an operational error, and of the batch
/// after it) has each page it changes copied to the savepoint's journal first.
/// On disk that is a write system call per page (and a temporary file per transaction), for a journal that only
/// ever lives as long as one operation; the writer keeps it in memory. Without `temp_store = MEMORY` SQLite
/// spills it to a file after 64 KiB.
#[test]
fn an_operations_savepoint_journal_stays_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_writer(&dir.path().join("hs.db"), Durability::Normal, 1_000).unwrap();
    conn.execute_batch(
        "CREATE TABLE filler (n INTEGER PRIMARY KEY, body BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
         INSERT INTO filler SELECT i, randomblob(2000) FROM n;",
    )
    .unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; SAVEPOINT op; UPDATE filler SET body = randomblob(2000);")
        .unwrap();
    let spilled = open_sqlite_temp_files();
    conn.execute_batch("RELEASE op; COMMIT;").unwrap();
    assert_eq!(spilled, 0, "the savepoint's journal went to a file");
}

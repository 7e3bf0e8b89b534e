//! The evidence commands' shapes: `ledger`, `keys signing`, `proof`.

use std::path::PathBuf;

use clap::Subcommand;

use haltstate_authority::Database;

use super::database;

/// `haltstate ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every tenant's hash chain, then check the state rows (keys, approvals, kill switches) against
    /// it, and with --checkpoints the chains and Merkle trees against signed checkpoints (each signed tree head
    /// must be the database's tree at that size, and each must extend the one before); changes nothing. Exit 0
    /// with the record count and each chain's head, 2 naming the tenant and the first broken record (on a forged
    /// record, the first whose leaf is not in the signed tree) or contradicted row, 1 when the database is not a
    /// HaltState database.
    ///
    /// Example: haltstate ledger verify --db haltstate.db
    Verify {
        /// The authority's database: a SQLite file or a PostgreSQL URL (never migrated or changed).
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// Also check the chains against these signed checkpoints (the file `serve --checkpoint-file` or
        /// `ledger checkpoint` writes): catches a rewrite of every hash after an edit, and a truncation.
        #[arg(long, requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The public key the checkpoints must be signed with (`ed25519:...`, from `keys signing public`).
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Sign every tenant's chain head now, store the checkpoints and append them to the checkpoint file.
    ///
    /// Example: haltstate ledger checkpoint --db haltstate.db --signing-key signing.key --checkpoint-file checkpoints.jsonl
    Checkpoint {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The authority's signing key (`keys signing create`).
        #[arg(long, env = "HALTSTATE_SIGNING_KEY", hide_env_values = true)]
        signing_key: PathBuf,
        /// Where checkpoints are appended outside the database (JSON lines).
        #[arg(long, env = "HALTSTATE_CHECKPOINT_FILE", hide_env_values = true)]
        checkpoint_file: PathBuf,
        /// Each tenant's log is named `<prefix>/<tenant>` in its signed tree heads.
        #[arg(long, env = "HALTSTATE_LOG_ORIGIN_PREFIX", default_value = haltstate_authority::DEFAULT_LOG_PREFIX)]
        log_origin_prefix: String,
    },
    /// Print a tenant's Merkle tree head as a C2SP checkpoint (origin, size, base64 root), signed as a C2SP note
    /// when a signing key is given; and the verifier key a witness or monitor is configured with.
    ///
    /// Example: haltstate ledger tree-head --db haltstate.db --tenant acme --origin haltstate.example/acme --signing-key signing.key
    TreeHead {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant whose tree.
        #[arg(long)]
        tenant: String,
        /// The log's name (the checkpoint's origin line and the signing key's name); default `<prefix>/<tenant>`.
        #[arg(long, conflicts_with = "log_origin_prefix")]
        origin: Option<String>,
        /// Each tenant's log is named `<prefix>/<tenant>`.
        #[arg(long, env = "HALTSTATE_LOG_ORIGIN_PREFIX", default_value = haltstate_authority::DEFAULT_LOG_PREFIX)]
        log_origin_prefix: String,
        /// Sign it with this key (`keys signing create`).
        #[arg(long, env = "HALTSTATE_SIGNING_KEY", hide_env_values = true)]
        signing_key: Option<PathBuf>,
    },
    /// Prove that a later signed tree head extends an earlier one of the same log: both signatures are checked,
    /// the consistency proof is read from the database and checked against both roots, then printed (base64
    /// hashes, one per line, as the C2SP witness protocol carries them). Exit 0 when consistent, 2 when not.
    ///
    /// Example: haltstate ledger consistency --db haltstate.db --public-key ed25519:3b6a... --from old.checkpoint --to new.checkpoint
    Consistency {
        /// The database: a SQLite file or a PostgreSQL URL (only read).
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The earlier signed tree head (a C2SP signed note, as `ledger tree-head` prints or a witness keeps).
        #[arg(long)]
        from: PathBuf,
        /// The later signed tree head.
        #[arg(long)]
        to: PathBuf,
        /// The public key both must be signed with (`ed25519:...`, from `keys signing public`).
        #[arg(long)]
        public_key: String,
    },
}

/// `haltstate keys signing ...`.
#[derive(Debug, Subcommand)]
pub enum SigningCommand {
    /// Create the authority's Ed25519 signing key in a new file (mode 0600) and print its public key.
    ///
    /// Example: haltstate keys signing create --out /etc/haltstate/signing.key
    Create {
        /// The file to create (an existing file is never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a signing key's public key (`ed25519:...`), to publish for auditors.
    ///
    /// Example: haltstate keys signing public --key /etc/haltstate/signing.key
    Public {
        /// The signing key file.
        #[arg(long)]
        key: PathBuf,
    },
}

/// `haltstate proof ...`.
#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Write a proof pack: a tenant's records (one key's, or a time range's), each with its canonical bytes and
    /// its inclusion proof against the newest signed tree head, and that head, as one JSON document; nothing of
    /// any other record.
    ///
    /// Example: haltstate proof export --db haltstate.db --tenant acme --key refund:1042 --out refund-1042.json
    Export {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Only this idempotency key's records.
        #[arg(long, conflicts_with_all = ["since", "until"], required_unless_present_any = ["since", "until"])]
        key: Option<String>,
        /// With --key: only the records of its Nth operation (a key the guard macros derive from the arguments is
        /// one operation until it ends, then the next; the console's timeline shows each record's operation).
        #[arg(long, requires = "key", value_parser = clap::value_parser!(u64).range(1..))]
        generation: Option<u64>,
        /// Records at or after this time (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        since: Option<time::OffsetDateTime>,
        /// Records before this time (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        until: Option<time::OffsetDateTime>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Write the first pack format instead (`haltstate.proof-pack/1`: the whole chain from the first record
        /// to a checkpoint, other keys' records included), for verifiers that only read that one.
        #[arg(long)]
        chain: bool,
    },
    /// Verify a proof pack with the authority's public key alone: no database, no network.
    ///
    /// Example: haltstate proof verify refund-1042.json --public-key ed25519:3b6a...
    Verify {
        /// The pack.
        pack: PathBuf,
        /// The authority's public key (`ed25519:...`).
        #[arg(long)]
        public_key: String,
        /// Also require a cosignature of the pack's tree head by this witness (its verifier key,
        /// `name+keyid+base64key`); repeat for several.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
    },
}

fn rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

//! The client side of the kill switch: a state every guard consults before any round trip.
//!
//! The heartbeat task (see [`ClientBuilder::kill_switch_interval`](crate::ClientBuilder::kill_switch_interval))
//! polls the authority; KILL or PAUSE makes every later guard and check fail fast with
//! [`GuardError::KillSwitchTriggered`](crate::GuardError::KillSwitchTriggered). The app can watch the state
//! to stop its own work. The authority enforces the switch too, so a client that misses a heartbeat is still
//! denied at the action boundary.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;

/// RUN, PAUSE or KILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum KillState {
    /// Normal operation.
    #[default]
    Run,
    /// No new actions until resumed.
    Pause,
    /// Stopped.
    Kill,
}

impl KillState {
    /// `RUN`, `PAUSE` or `KILL`.
    pub fn as_str(self) -> &'static str {
        match self {
            KillState::Run => "RUN",
            KillState::Pause => "PAUSE",
            KillState::Kill => "KILL",
        }
    }

    /// The heartbeat's wire form: `KILL`, `PAUSE`, anything else (`OK`) is RUN.
    pub(crate) fn from_heartbeat(text: &str) -> Self {
        match text {
            "KILL" => KillState::Kill,
            "PAUSE" => KillState::Pause,
            _ => KillState::Run,
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => KillState::Run,
            1 => KillState::Pause,
            _ => KillState::Kill,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            KillState::Run => 0,
            KillState::Pause => 1,
            KillState::Kill => 2,
        }
    }
}

impl fmt::Display for KillState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state shared by the heartbeat, every guard, and the app's watchers.
#[derive(Debug)]
pub(crate) struct KillSwitch {
    state: AtomicU8,
    sender: watch::Sender<KillState>,
}

impl KillSwitch {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(0),
            sender: watch::Sender::new(KillState::Run),
        }
    }

    pub(crate) fn state(&self) -> KillState {
        KillState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, state: KillState) {
        let previous = self.state.swap(state.to_u8(), Ordering::AcqRel);
        if previous != state.to_u8() {
            tracing::warn!(state = %state, "kill switch changed");
            self.sender.send_replace(state);
        }
    }

    pub(crate) fn watch(&self) -> watch::Receiver<KillState> {
        self.sender.subscribe()
    }
}

//! The client side of the kill switch: a state every guard consults before any round trip (the heartbeat that
//! keeps it current is `heartbeat.rs`).
//!
//! The heartbeat task (see [`ClientBuilder::kill_switch_interval`](crate::ClientBuilder::kill_switch_interval))
//! polls the authority; KILL or PAUSE makes every later guard and check fail fast with
//! [`GuardError::KillSwitchTriggered`](crate::GuardError::KillSwitchTriggered). The app can watch the state
//! to stop its own work. The authority enforces the switch too, so a client that misses a heartbeat is still
//! denied at the action boundary.

use std::sync::atomic::{AtomicU8, Ordering};

use haltstate_types::KillState;
use tokio::sync::watch;

fn to_u8(state: KillState) -> u8 {
    match state {
        KillState::Run => 0,
        KillState::Pause => 1,
        KillState::Kill => 2,
    }
}

fn from_u8(value: u8) -> KillState {
    match value {
        0 => KillState::Run,
        1 => KillState::Pause,
        _ => KillState::Kill,
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
        from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, state: KillState) {
        let previous = self.state.swap(to_u8(state), Ordering::AcqRel);
        if previous != to_u8(state) {
            tracing::warn!(state = %state, "kill switch changed");
            self.sender.send_replace(state);
        }
    }

    pub(crate) fn watch(&self) -> watch::Receiver<KillState> {
        self.sender.subscribe()
    }
}

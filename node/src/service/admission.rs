//! Admission control: a global in-flight request limit and a per-primary limit. When either is
//! full the request is refused at once as `overloaded` — never queued without bound, never
//! dropped silently. The map is behind a `parking_lot` mutex: no poisoning to recover from,
//! and no code under the lock can panic.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::PrimaryId;
use crate::metrics::ShedScope;

/// Which limit refused a request (also the `scope` label of the shed-requests metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The node-wide limit.
    Global,
    /// This primary's limit.
    Primary,
}

impl Shed {
    /// The `scope` label of `mpic_node_shed_requests_total`.
    pub fn scope(self) -> ShedScope {
        match self {
            Shed::Global => ShedScope::Global,
            Shed::Primary => ShedScope::Primary,
        }
    }
}

/// Holds both permits; dropping it releases them.
#[derive(Debug)]
pub struct Admitted {
    _global: OwnedSemaphorePermit,
    _primary: OwnedSemaphorePermit,
}

/// The limits and the per-primary semaphores (one per primary that has a connection open).
#[derive(Debug)]
pub struct Admission {
    global: Arc<Semaphore>,
    per_primary: usize,
    primaries: Mutex<HashMap<PrimaryId, PrimaryEntry>>,
}

#[derive(Debug)]
struct PrimaryEntry {
    semaphore: Arc<Semaphore>,
    connections: usize,
}

impl Admission {
    /// Limits from config.
    pub fn new(global: usize, per_primary: usize) -> Self {
        Self {
            global: Arc::new(Semaphore::new(global)),
            per_primary,
            primaries: Mutex::new(HashMap::new()),
        }
    }

    /// Registers a connection of `primary`; pair with [`Admission::disconnect`].
    pub fn connect(&self, primary: &PrimaryId) -> Arc<Semaphore> {
        let mut primaries = self.primaries.lock();
        let entry = primaries
            .entry(primary.clone())
            .or_insert_with(|| PrimaryEntry {
                semaphore: Arc::new(Semaphore::new(self.per_primary)),
                connections: 0,
            });
        entry.connections += 1;
        Arc::clone(&entry.semaphore)
    }

    /// Forgets a connection; the primary's entry goes when its last connection does, so the map
    /// is bounded by open connections.
    pub fn disconnect(&self, primary: &PrimaryId) {
        let mut primaries = self.primaries.lock();
        if let Some(entry) = primaries.get_mut(primary) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                primaries.remove(primary);
            }
        }
    }

    /// Admits one request or says which limit is full. Never waits.
    pub fn try_admit(&self, primary: &Arc<Semaphore>) -> Result<Admitted, Shed> {
        let primary = Arc::clone(primary)
            .try_acquire_owned()
            .map_err(|_| Shed::Primary)?;
        let global = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Shed::Global)?;
        Ok(Admitted {
            _global: global,
            _primary: primary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_primary_then_global_limits_shed_and_release() {
        let admission = Admission::new(3, 2);
        let a = admission.connect(&PrimaryId::for_tests(1));
        let b = admission.connect(&PrimaryId::for_tests(2));
        let a1 = admission.try_admit(&a).unwrap();
        let _a2 = admission.try_admit(&a).unwrap();
        assert_eq!(admission.try_admit(&a).unwrap_err(), Shed::Primary);
        let _b1 = admission.try_admit(&b).unwrap();
        assert_eq!(admission.try_admit(&b).unwrap_err(), Shed::Global);
        drop(a1);
        assert!(admission.try_admit(&b).is_ok());
    }

    #[test]
    fn entries_are_forgotten_with_the_last_connection() {
        let admission = Admission::new(10, 1);
        let id = PrimaryId::for_tests(7);
        let first = admission.connect(&id);
        let second = admission.connect(&id);
        assert!(
            Arc::ptr_eq(&first, &second),
            "connections of one primary share its limit"
        );
        admission.disconnect(&id);
        admission.disconnect(&id);
        assert!(admission.primaries.lock().is_empty());
    }
}

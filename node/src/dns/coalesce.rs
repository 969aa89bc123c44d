//! Coalescing of identical questions in flight (as Unbound's mesh and Knot Resolver do): the
//! first lookup to miss the cache for a (name, type, class, DO) question leads it, resolving it
//! in its own task; every lookup asking the same question meanwhile waits for the leader's
//! answer instead of sending its own queries. A waiter that gives up (its deadline passed, its
//! check was cancelled) only stops waiting. A leader that goes away (its check was cancelled)
//! cancels no one either: its waiters wake, join the question again, and one of them leads.
//! The table is bounded; past the bound a lookup resolves on its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Budget, DnsClient, DnsError, Mode, Step, forward, iterate};

/// Questions in flight at most: each entry is a question and, once someone waits on it, a
/// slot of a couple of hundred bytes; a node resolving thousands of names a second has a few
/// thousand questions out at a time.
pub(crate) const MAX_IN_FLIGHT_QUESTIONS: usize = 16_384;

/// Times a lookup joins a question before resolving it alone: each further join follows a
/// leader that went away unpublished.
const MAX_JOINS: usize = 4;

/// One question, as the cache keys it: the owner lowercased (names compare case-insensitively,
/// RFC 4343), class IN always (the node asks nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Question {
    name: Name,
    record_type: RecordType,
    class: DNSClass,
    dnssec_ok: bool,
}

impl Question {
    /// The question for `name`/`record_type` with the DO bit as given.
    pub(crate) fn new(name: &Name, record_type: RecordType, dnssec_ok: bool) -> Self {
        Self {
            name: name.to_lowercase(),
            record_type,
            class: DNSClass::IN,
            dnssec_ok,
        }
    }
}

/// What the leader hands its waiters: the step's result and the queries it sent.
pub(crate) type Shared = (Result<Step, DnsError>, usize);

/// Where the waiters of one question wait. Made when the first waiter joins: most questions
/// have none, and then nothing but the table entry is allocated (a `watch` channel per
/// question cost ~470 bytes per lookup in flight).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// How the leader ended, set once: its answer, or `None` when it went away without one.
    outcome: OnceLock<Option<Shared>>,
    /// Wakes the waiters when `outcome` is set.
    notify: Notify,
}

impl Slot {
    /// Sets how the leader ended and wakes every waiter.
    fn end(&self, outcome: Option<Shared>) {
        let _ = self.outcome.set(outcome);
        self.notify.notify_waiters();
    }
}

/// A question in the table: who leads it, and where its waiters wait (if any do).
#[derive(Debug)]
struct Entry {
    leader: u64,
    slot: Option<Arc<Slot>>,
}

/// The table of questions in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    table: Mutex<HashMap<Question, Entry>>,
    /// Numbers the leaders, so a leader only ever removes its own entry.
    leaders: AtomicU64,
    max: usize,
}

/// A lookup's part in a question.
pub(crate) enum Role {
    /// First to ask: run the question and publish the answer through this.
    Leader(Publisher),
    /// Someone else is asking: wait on this.
    Waiter(Arc<Slot>),
    /// The table is full: resolve on your own.
    Alone,
}

/// Publishes the answer of one question and removes it from the table, also when the lookup
/// ends without an answer (cancelled, or a panic), so no question stays in flight forever.
pub(crate) struct Publisher {
    table: Arc<InFlight>,
    question: Question,
    leader: u64,
}

impl InFlight {
    /// An empty table holding at most `max` questions.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            leaders: AtomicU64::new(0),
            max,
        }
    }

    /// Questions in flight now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Question, Entry>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins `question`: as its leader when nobody asks it yet, else as a waiter.
    pub(crate) fn join(self: &Arc<Self>, question: Question) -> Role {
        let mut table = self.lock();
        if let Some(entry) = table.get_mut(&question) {
            return Role::Waiter(Arc::clone(entry.slot.get_or_insert_with(Arc::default)));
        }
        if table.len() >= self.max {
            return Role::Alone;
        }
        let leader = self.leaders.fetch_add(1, Ordering::Relaxed);
        table.insert(question.clone(), Entry { leader, slot: None });
        Role::Leader(Publisher {
            table: Arc::clone(self),
            question,
            leader,
        })
    }
}

impl Publisher {
    /// Removes this leader's entry from the table (not a later leader's of the same question)
    /// and gives back its waiters' slot, if anyone waits.
    fn take_slot(&self) -> Option<Arc<Slot>> {
        let mut table = self.table.lock();
        match table.get(&self.question) {
            Some(entry) if entry.leader == self.leader => {
                table.remove(&self.question).and_then(|entry| entry.slot)
            }
            _ => None,
        }
    }

    /// Removes the question from the table, then hands the answer to every waiter.
    pub(crate) fn publish(self, shared: Shared) {
        if let Some(slot) = self.take_slot() {
            slot.end(Some(shared));
        }
        // Drop runs next and finds nothing of this leader's left.
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // After `publish` the entry is gone already; else the leader went away unpublished:
        // wake the waiters, who join again.
        if let Some(slot) = self.take_slot() {
            slot.end(None);
        }
    }
}

/// How waiting on a shared question ended.
pub(crate) enum Waited {
    /// The answer (or failure) of the leader, and the queries it sent.
    Done(Shared),
    /// The caller's deadline passed first.
    DeadlinePassed,
    /// The leader went away without an answer: join again.
    Abandoned,
}

/// Waits for the shared answer until `deadline`. Dropping this future (a cancelled check)
/// affects nobody else.
pub(crate) async fn wait(slot: Arc<Slot>, deadline: Instant) -> Waited {
    let outcome = async {
        loop {
            // Registered before the check, so a wake-up between check and wait is not lost.
            let notified = slot.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match slot.outcome.get() {
                Some(Some(shared)) => return Waited::Done(shared.clone()),
                Some(None) => return Waited::Abandoned,
                None => notified.await,
            }
        }
    };
    tokio::time::timeout_at(deadline, outcome)
        .await
        .unwrap_or(Waited::DeadlinePassed)
}

impl DnsClient {
    /// Resolves a cache miss once for every lookup asking the same question meanwhile (see
    /// the module doc). The leader spends its own budget; each waiter's budget is charged what
    /// the leader sent.
    pub(super) async fn shared_step(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
        budget: &mut Budget,
    ) -> Result<Step, DnsError> {
        let question = Question::new(name, record_type, self.inner.dnssec);
        // A waiter whose leader went away (its check was cancelled) joins again, and one of the
        // waiters leads then. Bounded, so leaders cancelled again and again cannot spin a lookup.
        for _ in 0..MAX_JOINS {
            let slot = match self.inner.in_flight.join(question.clone()) {
                Role::Alone => break,
                Role::Leader(publisher) => {
                    return self
                        .lead(publisher, name, record_type, deadline, budget)
                        .await;
                }
                Role::Waiter(slot) => {
                    self.inner.metrics.coalesced.inc();
                    slot
                }
            };
            match wait(slot, deadline).await {
                Waited::Done((result, queries)) => {
                    budget.queries = budget.queries.saturating_add(queries);
                    return match result {
                        // The leader's deadline was earlier than ours: the rest is ours to use.
                        Err(DnsError::DeadlineExceeded { .. }) if Instant::now() < deadline => {
                            Box::pin(self.resolve_step(name, record_type, deadline, budget)).await
                        }
                        other => other,
                    };
                }
                Waited::DeadlinePassed => {
                    return Err(DnsError::DeadlineExceeded {
                        name: name.clone(),
                        record_type,
                    });
                }
                Waited::Abandoned => {}
            }
        }
        // The inline resolutions are boxed: they are the rare paths, and unboxed they would
        // make every waiting lookup as large as a whole resolution.
        Box::pin(self.resolve_step(name, record_type, deadline, budget)).await
    }

    /// Resolves the question in the asking lookup's own task and publishes the answer. No task
    /// is spawned (a spawn per cache miss cost more CPU than the lookup's own logic): if this
    /// lookup is dropped first, dropping `publisher` wakes the waiters, which join again.
    async fn lead(
        &self,
        publisher: Publisher,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
        budget: &mut Budget,
    ) -> Result<Step, DnsError> {
        let before = budget.queries;
        let result = Box::pin(self.resolve_step(name, record_type, deadline, budget)).await;
        publisher.publish((result.clone(), budget.queries.saturating_sub(before)));
        result
    }

    /// Resolves one step over the network, by mode.
    async fn resolve_step(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
        budget: &mut Budget,
    ) -> Result<Step, DnsError> {
        match &self.inner.mode {
            Mode::Forward { upstreams } => {
                forward::resolve(self, upstreams, name, record_type, deadline, budget).await
            }
            Mode::Iterative { .. } => {
                iterate::resolve(self, name, record_type, deadline, budget, 0).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(name: &str) -> Question {
        Question::new(&Name::from_ascii(name).unwrap(), RecordType::CAA, false)
    }

    #[test]
    fn the_second_asker_waits_and_the_table_forgets_a_published_question() {
        let table = Arc::new(InFlight::new(2));
        let Role::Leader(publisher) = table.join(question("a.test.")) else {
            panic!("first asker leads");
        };
        assert!(matches!(table.join(question("A.TEST.")), Role::Waiter(_)));
        // Another DO bit is another question.
        assert!(matches!(
            table.join(Question::new(
                &Name::from_ascii("a.test.").unwrap(),
                RecordType::CAA,
                true
            )),
            Role::Leader(_)
        ));
        assert_eq!(table.len(), 1, "the DO=1 leader was dropped unpublished");
        publisher.publish((Err(DnsError::NoServers { zone: Name::root() }), 0));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_full_table_lets_lookups_resolve_alone() {
        let table = Arc::new(InFlight::new(1));
        let _leader = table.join(question("a.test."));
        assert!(matches!(table.join(question("b.test.")), Role::Alone));
    }

    #[tokio::test]
    async fn a_waiter_gets_the_published_answer_and_a_late_one_times_out() {
        let table = Arc::new(InFlight::new(4));
        let Role::Leader(publisher) = table.join(question("a.test.")) else {
            panic!("first asker leads");
        };
        let Role::Waiter(slot) = table.join(question("a.test.")) else {
            panic!("second asker waits");
        };
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        assert!(matches!(
            wait(Arc::clone(&slot), soon).await,
            Waited::DeadlinePassed
        ));
        publisher.publish((Err(DnsError::NoServers { zone: Name::root() }), 3));
        let later = Instant::now() + std::time::Duration::from_secs(1);
        assert!(matches!(
            wait(slot, later).await,
            Waited::Done((Err(DnsError::NoServers { .. }), 3))
        ));
    }

    #[tokio::test]
    async fn when_the_leader_goes_away_its_waiter_wakes_and_leads_the_question_next() {
        let table = Arc::new(InFlight::new(4));
        let Role::Leader(publisher) = table.join(question("a.test.")) else {
            panic!("first asker leads");
        };
        let Role::Waiter(slot) = table.join(question("a.test.")) else {
            panic!("second asker waits");
        };
        // The leader's check is cancelled mid-resolution: its publisher is dropped unpublished.
        drop(publisher);
        let later = Instant::now() + std::time::Duration::from_secs(1);
        assert!(matches!(wait(slot, later).await, Waited::Abandoned));
        assert_eq!(table.len(), 0, "the abandoned question left the table");
        assert!(matches!(table.join(question("a.test.")), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_waiter_already_waiting_wakes_when_the_answer_is_published() {
        let table = Arc::new(InFlight::new(4));
        let Role::Leader(publisher) = table.join(question("a.test.")) else {
            panic!("first asker leads");
        };
        let Role::Waiter(slot) = table.join(question("a.test.")) else {
            panic!("second asker waits");
        };
        let later = Instant::now() + std::time::Duration::from_secs(5);
        let waiting = tokio::spawn(wait(slot, later));
        tokio::task::yield_now().await;
        publisher.publish((Err(DnsError::NoServers { zone: Name::root() }), 2));
        let waited = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
            .await
            .expect("woken, not left to its deadline")
            .expect("the waiter's task ran");
        assert!(matches!(waited, Waited::Done((Err(_), 2))));
    }

    #[test]
    fn a_question_nobody_waits_on_has_no_slot_and_a_leader_removes_only_its_own_entry() {
        let table = Arc::new(InFlight::new(4));
        let Role::Leader(first) = table.join(question("a.test.")) else {
            panic!("first asker leads");
        };
        assert!(table.lock()[&question("a.test.")].slot.is_none());
        let Role::Waiter(_) = table.join(question("a.test.")) else {
            panic!("second asker waits");
        };
        assert!(table.lock()[&question("a.test.")].slot.is_some());
        // The first leader's entry goes (as in `publish`); a new asker leads the question anew.
        assert!(first.take_slot().is_some());
        let Role::Leader(second) = table.join(question("a.test.")) else {
            panic!("the next asker leads");
        };
        // The first leader finishing now must not remove the second's entry.
        drop(first);
        assert_eq!(table.len(), 1);
        drop(second);
        assert_eq!(table.len(), 0);
    }
}

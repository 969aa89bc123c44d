//! Coalescing of identical questions in flight (as Unbound's mesh and Knot Resolver do): the
//! first lookup to miss the cache for a (name, type, class, DO) question leads it, resolving it
//! in its own task; every lookup asking the same question meanwhile waits for the leader's
//! answer instead of sending its own queries. A waiter that gives up (its deadline passed, its
//! check was cancelled) only stops waiting. A leader that goes away (its check was cancelled)
//! cancels no one either: its waiters wake, join the question again, and one of them leads.
//! The table is bounded; past the bound a lookup resolves on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Budget, DnsClient, DnsError, Mode, Step, forward, iterate};

/// Questions in flight at most: each entry is a task and a channel, a few hundred bytes; a
/// node resolving thousands of names a second has a few thousand questions out at a time.
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

/// What the shared task hands its waiters: the step's result and the queries it sent.
pub(crate) type Shared = (Result<Step, DnsError>, usize);

/// The table of questions in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    table: Mutex<HashMap<Question, watch::Receiver<Option<Shared>>>>,
    max: usize,
}

/// A lookup's part in a question.
pub(crate) enum Role {
    /// First to ask: run the question and publish the answer through this.
    Leader(Publisher),
    /// Someone else is asking: wait on this.
    Waiter(watch::Receiver<Option<Shared>>),
    /// The table is full: resolve on your own.
    Alone,
}

/// Publishes the answer of one question and removes it from the table, also when the task
/// ends without an answer (a panic), so no question stays in flight forever.
pub(crate) struct Publisher {
    table: Arc<InFlight>,
    question: Question,
    sender: watch::Sender<Option<Shared>>,
}

impl InFlight {
    /// An empty table holding at most `max` questions.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// Questions in flight now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Question, watch::Receiver<Option<Shared>>>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins `question`: as its leader when nobody asks it yet, else as a waiter.
    pub(crate) fn join(self: &Arc<Self>, question: Question) -> Role {
        let mut table = self.lock();
        if let Some(receiver) = table.get(&question) {
            return Role::Waiter(receiver.clone());
        }
        if table.len() >= self.max {
            return Role::Alone;
        }
        let (sender, receiver) = watch::channel(None);
        table.insert(question.clone(), receiver);
        Role::Leader(Publisher {
            table: Arc::clone(self),
            question,
            sender,
        })
    }
}

impl Publisher {
    /// Removes the question from the table, then hands the answer to every waiter.
    pub(crate) fn publish(self, shared: Shared) {
        self.table.lock().remove(&self.question);
        // No receiver left is fine: every waiter gave up.
        let _ = self.sender.send(Some(shared));
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // After `publish` the entry is gone already; after a panic this is the cleanup.
        let mut table = self.table.lock();
        if table
            .get(&self.question)
            .is_some_and(|receiver| receiver.same_channel(&self.sender.subscribe()))
        {
            table.remove(&self.question);
        }
    }
}

/// How waiting on a shared question ended.
pub(crate) enum Waited {
    /// The answer (or failure) of the shared task, and the queries it sent.
    Done(Shared),
    /// The caller's deadline passed first.
    DeadlinePassed,
    /// The task ended without an answer (it panicked): resolve on your own.
    Abandoned,
}

/// Waits for the shared answer until `deadline`. Dropping this future (a cancelled check)
/// affects nobody else.
pub(crate) async fn wait(
    mut receiver: watch::Receiver<Option<Shared>>,
    deadline: Instant,
) -> Waited {
    match tokio::time::timeout_at(deadline, receiver.wait_for(Option::is_some)).await {
        Err(_) => Waited::DeadlinePassed,
        Ok(Err(_)) => Waited::Abandoned,
        Ok(Ok(value)) => match value.as_ref() {
            Some(shared) => Waited::Done(shared.clone()),
            None => Waited::Abandoned,
        },
    }
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
            let receiver = match self.inner.in_flight.join(question.clone()) {
                Role::Alone => break,
                Role::Leader(publisher) => {
                    return self
                        .lead(publisher, name, record_type, deadline, budget)
                        .await;
                }
                Role::Waiter(receiver) => {
                    self.inner.metrics.coalesced.inc();
                    receiver
                }
            };
            match wait(receiver, deadline).await {
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
        let Role::Waiter(receiver) = table.join(question("a.test.")) else {
            panic!("second asker waits");
        };
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        assert!(matches!(
            wait(receiver.clone(), soon).await,
            Waited::DeadlinePassed
        ));
        publisher.publish((Err(DnsError::NoServers { zone: Name::root() }), 3));
        let later = Instant::now() + std::time::Duration::from_secs(1);
        assert!(matches!(
            wait(receiver, later).await,
            Waited::Done((Err(DnsError::NoServers { .. }), 3))
        ));
    }

    #[tokio::test]
    async fn when_the_leader_goes_away_its_waiter_wakes_and_leads_the_question_next() {
        let table = Arc::new(InFlight::new(4));
        let Role::Leader(publisher) = table.join(question("a.test.")) else {
            panic!("first asker leads");
        };
        let Role::Waiter(receiver) = table.join(question("a.test.")) else {
            panic!("second asker waits");
        };
        // The leader's check is cancelled mid-resolution: its publisher is dropped unpublished.
        drop(publisher);
        let later = Instant::now() + std::time::Duration::from_secs(1);
        assert!(matches!(wait(receiver, later).await, Waited::Abandoned));
        assert_eq!(table.len(), 0, "the abandoned question left the table");
        assert!(matches!(table.join(question("a.test.")), Role::Leader(_)));
    }
}

//! The calls in flight on one provider process: which caller waits for which request
//! id, and what an answer for no caller in flight is (late, stray, or a second one),
//! with the rate limit for warning of the strays.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::protocol::Reply;

/// Calls whose callers gave up, remembered so that their late answers are expected
/// rather than warned of. Beyond this many the oldest are forgotten: a process that
/// answers that late gets a warning it has earned.
const MAX_ABANDONED_CALLS: usize = 1024;
/// Warnings about stray answers logged per process and window; a process that floods
/// them gets a count instead of one line each.
const STRAY_WARNINGS_PER_WINDOW: u32 = 10;
const STRAY_WARNING_WINDOW: Duration = Duration::from_secs(60);

/// The calls a process has been sent and has not answered.
#[derive(Default)]
pub(super) struct Calls {
    /// The callers waiting, by request id.
    pub waiting: HashMap<u64, mpsc::Sender<Reply>>,
    /// Calls whose callers timed out, the oldest first (ids only grow).
    abandoned: BTreeSet<u64>,
    /// The lowest and highest id sent, to tell an answer to a call never made from a
    /// second answer to one made.
    asked: Option<(u64, u64)>,
}

/// Where an answer goes.
pub(super) enum Routed {
    To(mpsc::Sender<Reply>),
    /// Its caller gave up.
    Abandoned,
    NeverAsked,
    AnsweredAlready,
}

impl Calls {
    pub fn send(&mut self, id: u64, caller: mpsc::Sender<Reply>) {
        self.waiting.insert(id, caller);
        self.asked = Some(match self.asked {
            None => (id, id),
            Some((low, high)) => (low.min(id), high.max(id)),
        });
    }

    /// The call never reached the process's queue, so no answer will come.
    pub fn unsent(&mut self, id: u64) {
        self.waiting.remove(&id);
    }

    /// The caller stops waiting; false if it was no longer waiting (answered just now).
    pub fn give_up(&mut self, id: u64) -> bool {
        if self.waiting.remove(&id).is_none() {
            return false;
        }
        self.abandoned.insert(id);
        if self.abandoned.len() > MAX_ABANDONED_CALLS {
            self.abandoned.pop_first();
        }
        true
    }

    pub fn answer(&mut self, id: u64) -> Routed {
        if let Some(caller) = self.waiting.remove(&id) {
            Routed::To(caller)
        } else if self.abandoned.remove(&id) {
            Routed::Abandoned
        } else if self
            .asked
            .is_some_and(|(low, high)| (low..=high).contains(&id))
        {
            Routed::AnsweredAlready
        } else {
            Routed::NeverAsked
        }
    }
}

/// A rate limit for warnings about one process: a few per window, then a count.
pub(super) struct WarningBudget {
    window_started: Instant,
    logged: u32,
    /// Warnings not logged since the last one that was.
    unreported: u64,
}

impl WarningBudget {
    pub fn new(now: Instant) -> WarningBudget {
        WarningBudget {
            window_started: now,
            logged: 0,
            unreported: 0,
        }
    }

    /// Whether to log a warning now; if so, how many were not logged before it.
    pub fn spend(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_started) >= STRAY_WARNING_WINDOW {
            self.window_started = now;
            self.logged = 0;
        }
        if self.logged == STRAY_WARNINGS_PER_WINDOW {
            self.unreported += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.unreported))
    }

    /// Warnings not logged since the last one that was.
    pub fn unreported(&self) -> u64 {
        self.unreported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        let mut calls = Calls::default();
        let (tx, _rx) = mpsc::channel();
        calls.send(5, tx.clone());
        calls.send(6, tx.clone());
        calls.send(8, tx);
        assert!(matches!(calls.answer(5), Routed::To(_)));
        assert!(matches!(calls.answer(5), Routed::AnsweredAlready));
        assert!(calls.give_up(6));
        assert!(!calls.give_up(6));
        assert!(matches!(calls.answer(6), Routed::Abandoned));
        assert!(matches!(calls.answer(6), Routed::AnsweredAlready));
        assert!(matches!(calls.answer(4), Routed::NeverAsked));
        assert!(matches!(calls.answer(9), Routed::NeverAsked));
        assert!(matches!(calls.answer(8), Routed::To(_)));
    }

    #[test]
    fn only_so_many_abandoned_calls_are_remembered() {
        let mut calls = Calls::default();
        let (tx, _rx) = mpsc::channel();
        let count = MAX_ABANDONED_CALLS as u64 + 10;
        for id in 0..count {
            calls.send(id, tx.clone());
            calls.give_up(id);
        }
        assert_eq!(calls.abandoned.len(), MAX_ABANDONED_CALLS);
        assert!(matches!(calls.answer(0), Routed::AnsweredAlready));
        assert!(matches!(calls.answer(count - 1), Routed::Abandoned));
    }

    #[test]
    fn warnings_are_limited_per_window_and_the_rest_counted() {
        let start = Instant::now();
        let mut budget = WarningBudget::new(start);
        for _ in 0..STRAY_WARNINGS_PER_WINDOW {
            assert_eq!(budget.spend(start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(budget.spend(start + Duration::from_secs(1)), None);
        }
        assert_eq!(budget.unreported(), 5);
        assert_eq!(budget.spend(start + STRAY_WARNING_WINDOW), Some(5));
        assert_eq!(budget.unreported(), 0);
    }
}

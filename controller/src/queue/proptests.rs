//! Property test of the queue against a model: random adds (both priorities), delayed adds, gets,
//! dones and time steps, with paused tokio time.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Add(u8, bool),
    AddAfter(u8, u16),
    Get,
    Done(u8),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, any::<bool>()).prop_map(|(k, high)| Op::Add(k, high)),
        2 => (0u8..6, 1u16..500).prop_map(|(k, ms)| Op::AddAfter(k, ms)),
        4 => Just(Op::Get),
        3 => (0u8..6).prop_map(Op::Done),
        2 => (1u16..300).prop_map(Op::Advance),
    ]
}

/// What the queue owes: keys added and not yet handed out since, with their best priority, and
/// delayed keys with their earliest deadline.
#[derive(Default)]
struct Model {
    owed: HashMap<u8, Priority>,
    waiting: HashMap<u8, Instant>,
    in_flight: HashSet<u8>,
}

impl Model {
    fn promote(&mut self, now: Instant) {
        let due: Vec<u8> = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            self.waiting.remove(&k);
            self.owed.insert(k, Priority::High);
        }
    }
}

async fn ready_now(q: &WorkQueue<u8>) -> Option<Item<u8>> {
    tokio::select! {
        biased;
        item = q.get() => item,
        () = tokio::task::yield_now() => None,
    }
}

fn check_handout(model: &mut Model, item: &Item<u8>) -> Result<(), TestCaseError> {
    prop_assert!(
        !model.in_flight.contains(&item.key),
        "key {} handed out while in flight",
        item.key
    );
    let owed = model.owed.remove(&item.key);
    prop_assert!(
        owed.is_some(),
        "key {} handed out without being owed",
        item.key
    );
    prop_assert_eq!(
        owed,
        Some(item.priority),
        "key {} handed out at the wrong priority",
        item.key
    );
    if item.priority == Priority::Low {
        let high_ready = model
            .owed
            .iter()
            .any(|(k, p)| *p == Priority::High && !model.in_flight.contains(k));
        prop_assert!(
            !high_ready,
            "a low key was handed out while a high key was ready"
        );
    }
    model.in_flight.insert(item.key);
    Ok(())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let q: WorkQueue<u8> = WorkQueue::default();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Add(k, high) => {
                let p = if high { Priority::High } else { Priority::Low };
                q.add_with_priority(k, Reason::Resync, p);
                let e = model.owed.entry(k).or_insert(p);
                *e = (*e).max(p);
            }
            Op::AddAfter(k, ms) => {
                let at = Instant::now() + Duration::from_millis(u64::from(ms));
                q.add_after(
                    k,
                    Reason::RequeueAfter,
                    Duration::from_millis(u64::from(ms)),
                );
                let e = model.waiting.entry(k).or_insert(at);
                *e = (*e).min(at);
            }
            Op::Get => {
                model.promote(Instant::now());
                if let Some(item) = ready_now(&q).await {
                    check_handout(&mut model, &item)?;
                } else {
                    let ready = model.owed.keys().any(|k| !model.in_flight.contains(k));
                    prop_assert!(!ready, "get found nothing although a key was ready");
                }
            }
            Op::Done(k) => {
                if model.in_flight.remove(&k) {
                    q.done(&k);
                }
            }
            Op::Advance(ms) => tokio::time::advance(Duration::from_millis(u64::from(ms))).await,
        }
    }
    // Finish everything: every owed key must come out exactly once more.
    for k in std::mem::take(&mut model.in_flight) {
        q.done(&k);
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    model.promote(Instant::now());
    while let Some(item) = ready_now(&q).await {
        check_handout(&mut model, &item)?;
        model.in_flight.remove(&item.key);
        q.done(&item.key);
    }
    prop_assert!(model.owed.is_empty(), "keys lost: {:?}", model.owed);
    let s = q.stats();
    prop_assert_eq!((s.depth, s.delayed, s.in_flight), (0, 0, 0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_its_model_dedup_no_concurrent_key_priority_and_no_lost_keys(ops in prop::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(run(ops))?;
    }
}

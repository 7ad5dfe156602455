//! Property: random sequences of inventory operations keep every invariant.
//!
//! Layout: the generated operations (`Op`, `scenario`) and the runner, here; the model,
//! which predicts the outcome of every operation, failures with their exact code and
//! details (`model`); the shop under test and one operation against it (`world`); the
//! invariants checked against the database after every operation (`checks`).
//!
//! Every case gets a fresh database with 2-3 SKUs, 2 locations and 4 customers, and runs
//! 20-60 operations. A failure names the broken invariant and lists the operations up to
//! it, resolved (which reservation, which caller) and with their outcomes.

mod checks;
mod model;
mod world;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::helpers::TestApp;
use world::World;

const SKUS: [&str; 3] = ["SKU-A", "SKU-B", "SKU-C"];
const LOCATIONS: [&str; 2] = ["main", "north"];
const USERS: usize = 4;

mod random_inventory_operations_keep_every_invariant {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn sqlite(scenario in scenario()) {
            run(TestApp::sqlite(), &scenario)?;
        }
    }

    #[cfg(pg_tests)]
    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn postgres(scenario in scenario()) {
            run(TestApp::postgres(), &scenario)?;
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Receive {
        sku: usize,
        loc: usize,
        qty: i64,
    },
    /// A non-zero correction.
    Adjust {
        sku: usize,
        loc: usize,
        delta: i64,
    },
    /// Lines of distinct SKUs, in request order.
    Reserve {
        user: usize,
        lines: Vec<(usize, i64)>,
        ttl: i64,
    },
    Extend {
        pick: Pick,
        ttl: i64,
    },
    Release {
        pick: Pick,
    },
    Commit {
        pick: Pick,
    },
    /// The clock moves on, then the reaper expires what is overdue.
    Advance {
        secs: i64,
    },
}

/// Which reservation an operation picks: an active one, or (`ended_too`, or when none is
/// active) any made so far; and who calls: its owner, or another customer (`stranger`).
#[derive(Debug, Clone)]
struct Pick {
    index: Index,
    ended_too: bool,
    stranger: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    skus: usize,
    ops: Vec<Op>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2..=SKUS.len()).prop_flat_map(|skus| {
        prop::collection::vec(op(skus), 20..=60).prop_map(move |ops| Scenario { skus, ops })
    })
}

fn op(skus: usize) -> impl Strategy<Value = Op> {
    let delta = (1i64..=10, any::<bool>()).prop_map(|(n, down)| if down { -n } else { n });
    let second_line = prop::option::weighted(0.4, (1..skus, 1i64..=5));
    let pick = || {
        let flags = (prop::bool::weighted(0.3), prop::bool::weighted(0.1));
        (any::<Index>(), flags).prop_map(|(index, (ended_too, stranger))| Pick {
            index,
            ended_too,
            stranger,
        })
    };
    prop_oneof![
        3 => (0..skus, 0..LOCATIONS.len(), 1i64..=20)
            .prop_map(|(sku, loc, qty)| Op::Receive { sku, loc, qty }),
        2 => (0..skus, 0..LOCATIONS.len(), delta)
            .prop_map(|(sku, loc, delta)| Op::Adjust { sku, loc, delta }),
        4 => (0..USERS, 0..skus, 1i64..=5, second_line, 10i64..=300).prop_map(
            move |(user, sku, qty, second, ttl)| {
                let mut lines = vec![(sku, qty)];
                if let Some((offset, qty)) = second {
                    lines.push(((sku + offset) % skus, qty));
                }
                Op::Reserve { user, lines, ttl }
            }
        ),
        1 => (pick(), 10i64..=300).prop_map(|(pick, ttl)| Op::Extend { pick, ttl }),
        1 => pick().prop_map(|pick| Op::Release { pick }),
        2 => pick().prop_map(|pick| Op::Commit { pick }),
        1 => (1i64..=400).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// Runs one case on its own runtime and database. A failed check or a panic fails the case
/// with the operations that led to it.
fn run(app: impl Future<Output = TestApp>, scenario: &Scenario) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut trace = Vec::new();
    let played = runtime.block_on(AssertUnwindSafe(play(app, scenario, &mut trace)).catch_unwind());
    let failure = match played {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(failure)) => failure,
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned()),
    };
    Err(TestCaseError::fail(format!(
        "{failure}\noperations:\n  {}",
        trace.join("\n  ")
    )))
}

async fn play(
    app: impl Future<Output = TestApp>,
    scenario: &Scenario,
    trace: &mut Vec<String>,
) -> Result<(), String> {
    let mut world = World::new(app.await, scenario.skus).await;
    for op in &scenario.ops {
        // The raw operation until it has run, so a panic inside it still names it.
        trace.push(format!("{op:?}"));
        let done = world.apply(op).await?;
        *trace.last_mut().unwrap() = done;
        world.check().await?;
    }
    Ok(())
}

//! The conformance suite: the same cases run against the SQLite and the Redis backend (a real
//! `redis-server` per test), so both honour one contract.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::{cpu, holder, node, res, Env};
use ledger::{
    Dimension, Ledger, LedgerError, ReservationState, Resources, DEFAULT_LEASE, MAX_AMOUNT,
};

fn reserve_within_capacity(env: &Env) {
    let l = env.open();
    let n = node("edge-berlin-1");
    let cap = res(4000, 8192, 100, 1, 1000);
    let usage = l.set_capacity(&n, &cap).unwrap();
    assert_eq!(usage.free, cap);
    assert_eq!(l.free(&n).unwrap(), cap);

    let before = std::time::SystemTime::now();
    let want = res(1500, 2048, 10, 1, 100);
    let r = l.reserve(&n, &want, &holder("wl-a"), None).unwrap();
    assert_eq!(r.node, n);
    assert_eq!(r.holder, holder("wl-a"));
    assert_eq!(r.amounts, want);
    assert_eq!(r.state, ReservationState::Pending);
    let exp = r.expires_at.expect("pending has an expiry");
    let lease = exp.duration_since(r.created_at).unwrap();
    assert_eq!(lease, DEFAULT_LEASE);
    assert!(exp > before + DEFAULT_LEASE - Duration::from_secs(60));
    assert!(r.id.as_str().starts_with("rsv-"));

    assert_eq!(l.free(&n).unwrap(), res(2500, 6144, 90, 0, 900));
    let listed = l.list(Some(&n)).unwrap();
    assert_eq!(listed, vec![r.clone()]);
    assert_eq!(l.list(None).unwrap(), vec![r.clone()]);
    let u = l.usage(&n).unwrap();
    assert_eq!(u.reserved, want);
    assert_eq!(u.holders.len(), 1);
    assert_eq!(u.holders[0].holder, holder("wl-a"));

    // Exactly filling the rest is allowed.
    l.reserve(&n, &res(2500, 6144, 90, 0, 900), &holder("wl-b"), None)
        .unwrap();
    assert_eq!(l.free(&n).unwrap(), Resources::ZERO);
    // Zero amounts always fit.
    l.reserve(&n, &Resources::ZERO, &holder("wl-zero"), None)
        .unwrap();
    assert_eq!(l.list(Some(&n)).unwrap().len(), 3);
}

fn over_capacity_refused_with_message(env: &Env) {
    let l = env.open();
    let n = node("edge-berlin-1");
    l.set_capacity(&n, &res(3500, 4096, 0, 1, 0)).unwrap();
    let a = l.reserve(&n, &cpu(1000), &holder("wl-ab12"), None).unwrap();
    l.commit(&a.id).unwrap();
    l.reserve(&n, &cpu(1500), &holder("wl-cd34"), None).unwrap();

    let err = l
        .reserve(&n, &cpu(2000), &holder("wl-ef56"), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node edge-berlin-1 has 1 cpu free, 2 cpu requested; held by wl-cd34 (1.5 cpu, pending), \
         wl-ab12 (1 cpu, committed)"
    );
    match err {
        LedgerError::InsufficientCapacity(s) => {
            assert_eq!(s.node, n);
            assert_eq!(s.requested, cpu(2000));
            assert_eq!(s.free, res(1000, 4096, 0, 1, 0));
            assert_eq!(s.capacity, res(3500, 4096, 0, 1, 0));
            assert_eq!(s.short, vec![Dimension::Cpu]);
            assert_eq!(s.holders.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Nothing was reserved by the refused call.
    assert_eq!(l.free(&n).unwrap(), res(1000, 4096, 0, 1, 0));
    assert_eq!(l.list(Some(&n)).unwrap().len(), 2);

    // Two dimensions short: both are named.
    let err = l
        .reserve(&n, &res(500, 0, 0, 2, 0), &holder("wl-gpu"), None)
        .unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientCapacity(_)));
    assert_eq!(
        err.to_string(),
        "node edge-berlin-1 has 1 gpu free, 2 gpu requested; held by nobody (its capacity is 1 gpu)"
    );
    // What still fits is granted.
    l.reserve(&n, &cpu(1000), &holder("wl-ef56"), None).unwrap();
    assert_eq!(l.free(&n).unwrap().cpu_millis, 0);
}

fn idempotent_re_reserve(env: &Env) {
    let l = env.open();
    let n = node("edge-1");
    let m = node("edge-2");
    l.set_capacity(&n, &cpu(4000)).unwrap();
    l.set_capacity(&m, &cpu(4000)).unwrap();
    let h = holder("wl-0123");
    let first = l.reserve(&n, &cpu(1000), &h, None).unwrap();
    let again = l.reserve(&n, &cpu(1000), &h, None).unwrap();
    assert_eq!(first, again);
    assert_eq!(l.free(&n).unwrap(), cpu(3000));
    assert_eq!(l.list(Some(&n)).unwrap().len(), 1);

    let err = l.reserve(&n, &cpu(2000), &h, None).unwrap_err();
    match &err {
        LedgerError::HolderConflict(c) => {
            assert_eq!(c.node, n);
            assert_eq!(c.holder, h);
            assert_eq!(c.existing_id, first.id);
            assert_eq!(c.existing, cpu(1000));
            assert_eq!(c.requested, cpu(2000));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("wl-0123") && msg.contains("edge-1"), "{msg}");
    assert!(msg.contains("1 cpu") && msg.contains("2 cpu"), "{msg}");
    assert_eq!(l.free(&n).unwrap(), cpu(3000));

    // Committed: re-reserve returns the committed reservation.
    let committed = l.commit(&first.id).unwrap();
    let again = l.reserve(&n, &cpu(1000), &h, None).unwrap();
    assert_eq!(again, committed);
    assert_eq!(again.state, ReservationState::Committed);

    // The same holder on another node is a separate reservation.
    let other = l.reserve(&m, &cpu(1000), &h, None).unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(l.list(None).unwrap().len(), 2);
}

fn release(env: &Env) {
    let l = env.open();
    let n = node("edge-1");
    l.set_capacity(&n, &cpu(2000)).unwrap();
    let r = l.reserve(&n, &cpu(2000), &holder("wl-a"), None).unwrap();
    l.commit(&r.id).unwrap();
    assert!(l.reserve(&n, &cpu(1), &holder("wl-b"), None).is_err());
    assert!(l.release(&r.id).unwrap());
    assert_eq!(l.free(&n).unwrap(), cpu(2000));
    assert!(l.list(Some(&n)).unwrap().is_empty());
    // Idempotent.
    assert!(!l.release(&r.id).unwrap());
    assert!(matches!(
        l.commit(&r.id),
        Err(LedgerError::ReservationNotFound { .. })
    ));
    // Someone else can now take it; the released holder can come back.
    l.reserve(&n, &cpu(1000), &holder("wl-b"), None).unwrap();
    l.reserve(&n, &cpu(1000), &holder("wl-a"), None).unwrap();
    assert_eq!(l.free(&n).unwrap(), Resources::ZERO);
    // Pending ones can be released too.
    let pending = l.list(Some(&n)).unwrap();
    for p in pending {
        assert!(l.release(&p.id).unwrap());
    }
    assert_eq!(l.free(&n).unwrap(), cpu(2000));
}

fn release_holder(env: &Env) {
    let l = env.open();
    let a = node("edge-a");
    let b = node("edge-b");
    l.set_capacity(&a, &cpu(2000)).unwrap();
    l.set_capacity(&b, &cpu(2000)).unwrap();
    let h = holder("wl-killed");
    let r1 = l.reserve(&a, &cpu(1500), &h, None).unwrap();
    l.commit(&r1.id).unwrap();
    l.reserve(&b, &cpu(500), &h, None).unwrap();
    let keep = l.reserve(&a, &cpu(500), &holder("wl-other"), None).unwrap();

    assert_eq!(l.release_holder(&h).unwrap(), 2);
    assert_eq!(l.free(&a).unwrap(), cpu(1500));
    assert_eq!(l.free(&b).unwrap(), cpu(2000));
    assert_eq!(l.list(None).unwrap(), vec![keep]);
    // Idempotent, and unknown holders are fine.
    assert_eq!(l.release_holder(&h).unwrap(), 0);
    assert_eq!(l.release_holder(&holder("wl-never")).unwrap(), 0);
}

fn lease_expiry(env: &Env) {
    let l = env.open();
    let n = node("edge-1");
    l.set_capacity(&n, &cpu(1000)).unwrap();
    let lease = Duration::from_millis(400);
    let r = l
        .reserve(&n, &cpu(1000), &holder("wl-slow"), Some(lease))
        .unwrap();
    assert_eq!(
        r.expires_at.unwrap().duration_since(r.created_at).unwrap(),
        lease
    );
    assert_eq!(l.free(&n).unwrap(), Resources::ZERO);
    assert!(matches!(
        l.reserve(&n, &cpu(1), &holder("wl-fast"), None),
        Err(LedgerError::InsufficientCapacity(_))
    ));
    sleep(lease + Duration::from_millis(300));
    assert_eq!(l.free(&n).unwrap(), cpu(1000));
    assert!(l.list(Some(&n)).unwrap().is_empty());

    let err = l.commit(&r.id).unwrap_err();
    match &err {
        LedgerError::LeaseExpired {
            id,
            node: en,
            holder: eh,
            ..
        } => {
            assert_eq!(id, &r.id);
            assert_eq!(en, &n);
            assert_eq!(eh, &holder("wl-slow"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("expired"), "{err}");

    // The capacity went to someone else; the slow holder now fails loudly.
    let fast = l.reserve(&n, &cpu(1000), &holder("wl-fast"), None).unwrap();
    assert!(matches!(
        l.reserve(&n, &cpu(1000), &holder("wl-slow"), None),
        Err(LedgerError::InsufficientCapacity(_))
    ));
    // Releasing the expired one is harmless.
    l.release(&r.id).unwrap();
    assert_eq!(l.list(Some(&n)).unwrap(), vec![fast]);
}

fn commit(env: &Env) {
    let l = env.open();
    let n = node("edge-1");
    l.set_capacity(&n, &cpu(1000)).unwrap();
    let lease = Duration::from_millis(300);
    let r = l
        .reserve(&n, &cpu(600), &holder("wl-a"), Some(lease))
        .unwrap();
    let c = l.commit(&r.id).unwrap();
    assert_eq!(c.state, ReservationState::Committed);
    assert_eq!(c.expires_at, None);
    assert_eq!(c.id, r.id);
    assert_eq!(c.amounts, r.amounts);
    sleep(lease + Duration::from_millis(300));
    // Committed reservations outlive the lease.
    assert_eq!(l.free(&n).unwrap(), cpu(400));
    assert_eq!(l.commit(&r.id).unwrap(), c);
    let listed = l.list(Some(&n)).unwrap();
    assert_eq!(listed, vec![c]);
    assert!(matches!(
        l.commit(&ledger::ReservationId::new("rsv-nope").unwrap()),
        Err(LedgerError::ReservationNotFound { .. })
    ));
}

fn capacity_lowered(env: &Env) {
    let l = env.open();
    let n = node("edge-1");
    l.set_capacity(&n, &res(4000, 4096, 0, 0, 0)).unwrap();
    let r = l
        .reserve(&n, &res(2000, 1024, 0, 0, 0), &holder("wl-big"), None)
        .unwrap();
    l.commit(&r.id).unwrap();
    l.reserve(&n, &res(500, 0, 0, 0, 0), &holder("wl-small"), None)
        .unwrap();

    let err = l.set_capacity(&n, &res(2000, 4096, 0, 0, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot lower capacity of node edge-1 to 2 cpu: 2.5 cpu is reserved; held by wl-big \
         (2 cpu, committed), wl-small (0.5 cpu, pending)"
    );
    assert!(matches!(err, LedgerError::CapacityBelowReserved(_)));
    // Unchanged.
    assert_eq!(l.usage(&n).unwrap().capacity, res(4000, 4096, 0, 0, 0));

    // Exactly what is reserved is fine; raising is fine.
    let u = l.set_capacity(&n, &res(2500, 1024, 0, 0, 0)).unwrap();
    assert_eq!(u.free, Resources::ZERO);
    assert!(u.overcommitted().is_empty());
    l.set_capacity(&n, &res(3000, 2048, 0, 0, 0)).unwrap();
    assert_eq!(l.free(&n).unwrap(), res(500, 1024, 0, 0, 0));

    // Forced below: reported, never negative, and nothing new fits until released.
    let u = l.force_capacity(&n, &res(1000, 2048, 0, 0, 0)).unwrap();
    assert_eq!(u.overcommitted(), vec![Dimension::Cpu]);
    assert_eq!(u.free, res(0, 1024, 0, 0, 0));
    assert_eq!(u.reserved, res(2500, 1024, 0, 0, 0));
    let err = l
        .reserve(&n, &res(0, 10, 0, 0, 0), &holder("wl-mem"), None)
        .unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientCapacity(_)), "{err}");
    l.release_holder(&holder("wl-big")).unwrap();
    assert_eq!(l.free(&n).unwrap(), res(500, 2048, 0, 0, 0));
    l.reserve(&n, &res(500, 10, 0, 0, 0), &holder("wl-mem"), None)
        .unwrap();
}

fn nodes_and_errors(env: &Env) {
    let l = env.open();
    let n = node("edge-1");
    let ghost = node("edge-ghost");
    assert!(matches!(
        l.reserve(&ghost, &cpu(1), &holder("wl-a"), None),
        Err(LedgerError::UnknownNode { .. })
    ));
    assert!(matches!(
        l.free(&ghost),
        Err(LedgerError::UnknownNode { .. })
    ));
    assert!(l.nodes().unwrap().is_empty());
    l.set_capacity(&node("edge-2"), &cpu(1)).unwrap();
    l.set_capacity(&n, &cpu(1000)).unwrap();
    assert_eq!(l.nodes().unwrap(), vec![n.clone(), node("edge-2")]);

    let r = l.reserve(&n, &cpu(100), &holder("wl-a"), None).unwrap();
    let err = l.remove_node(&n).unwrap_err();
    assert!(matches!(err, LedgerError::NodeInUse { .. }));
    assert!(err.to_string().contains("wl-a"), "{err}");
    l.release(&r.id).unwrap();
    assert!(l.remove_node(&n).unwrap());
    assert!(!l.remove_node(&n).unwrap());
    assert_eq!(l.nodes().unwrap(), vec![node("edge-2")]);
    assert!(matches!(l.free(&n), Err(LedgerError::UnknownNode { .. })));

    let e2 = node("edge-2");
    assert!(matches!(
        l.reserve(&e2, &cpu(1), &holder("wl-a"), Some(Duration::ZERO)),
        Err(LedgerError::InvalidLease { .. })
    ));
    assert!(matches!(
        l.reserve(&e2, &cpu(MAX_AMOUNT + 1), &holder("wl-a"), None),
        Err(LedgerError::InvalidAmount { .. })
    ));
    assert!(matches!(
        l.set_capacity(&e2, &res(0, MAX_AMOUNT + 1, 0, 0, 0)),
        Err(LedgerError::InvalidAmount { .. })
    ));
    // Large but valid amounts round-trip exactly.
    l.set_capacity(
        &e2,
        &res(MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, u32::MAX, MAX_AMOUNT),
    )
    .unwrap();
    let big = res(MAX_AMOUNT - 1, MAX_AMOUNT, 1, u32::MAX, 3);
    let r = l.reserve(&e2, &big, &holder("wl-big"), None).unwrap();
    assert_eq!(l.list(Some(&e2)).unwrap()[0].amounts, big);
    assert_eq!(r.amounts, big);
    assert_eq!(
        l.free(&e2).unwrap(),
        res(1, 0, MAX_AMOUNT - 1, 0, MAX_AMOUNT - 3)
    );
}

fn survives_reopen(env: &Env) {
    let n = node("edge-1");
    let id = {
        let l = env.open();
        l.set_capacity(&n, &cpu(1000)).unwrap();
        let r = l.reserve(&n, &cpu(700), &holder("wl-a"), None).unwrap();
        l.commit(&r.id).unwrap();
        r.id
    };
    let l = env.open();
    let listed = l.list(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].state, ReservationState::Committed);
    assert_eq!(l.free(&n).unwrap(), cpu(300));
    // Two handles on one store see each other.
    let other = env.open();
    other.reserve(&n, &cpu(300), &holder("wl-b"), None).unwrap();
    assert_eq!(l.free(&n).unwrap(), Resources::ZERO);
}

fn plan_notes(env: &Env) {
    let l = env.open();
    assert_eq!(l.plan_note("wl-a").unwrap(), None);
    l.put_plan_note("wl-a", b"first", Duration::from_secs(60))
        .unwrap();
    l.put_plan_note("wl-a", b"second", Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        l.plan_note("wl-a").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    // Another handle on the same store (another process, another machine) sees it once this
    // handle has flushed (a backend may hold notes back until then).
    l.flush_plan_notes().unwrap();
    assert_eq!(
        env.open().plan_note("wl-a").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    // A note never holds capacity.
    let n = node("edge-1");
    l.set_capacity(&n, &cpu(1000)).unwrap();
    assert_eq!(l.free(&n).unwrap(), cpu(1000));
    l.forget_plan_note("wl-a").unwrap();
    l.forget_plan_note("wl-a").unwrap();
    assert_eq!(l.plan_note("wl-a").unwrap(), None);
    // Expired notes are gone.
    l.put_plan_note("wl-b", b"soon gone", Duration::from_millis(150))
        .unwrap();
    sleep(Duration::from_millis(400));
    assert_eq!(l.plan_note("wl-b").unwrap(), None);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let env = super::Env::sqlite();
                    super::$case(&env);
                }
            )*
        }
        mod redis {
            $(
                #[test]
                fn $case() {
                    let env = super::Env::redis();
                    super::$case(&env);
                }
            )*
        }
    };
}

conformance!(
    reserve_within_capacity,
    over_capacity_refused_with_message,
    idempotent_re_reserve,
    release,
    release_holder,
    lease_expiry,
    commit,
    capacity_lowered,
    nodes_and_errors,
    survives_reopen,
    plan_notes,
);

// Keep the trait in scope for method calls on Box<dyn Ledger>.
#[allow(dead_code)]
fn _assert_object_safe(_: &dyn Ledger) {}

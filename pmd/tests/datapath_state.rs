//! Translator state changes (NORMAL's MAC table, modelled here by a map of
//! destination → port): the revalidator re-translates only the megaflows
//! the translator says are affected, and the PMD follows the new actions.

#[path = "mem_common/mod.rs"]
mod mem_common;
use flowcache::actions::DpAction;
use flowcache::key::FlowKey;
use flowcache::upcall::{Translation, Translator};
use mem_common::{start_with_ports, wait_for};
use parking_lot::Mutex;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a megaflow was translated from: its destination and the state
/// version it saw.
struct Dep {
    dst: u8,
    version: u64,
}

/// Frames go to the port their destination's last byte maps to (all
/// ports but the input one when unknown), like NORMAL's MAC table.
#[derive(Default)]
struct Macs {
    /// dst → (port, version it changed at).
    table: Mutex<HashMap<u8, (u32, u64)>>,
    version: AtomicU64,
    /// Destinations of the revalidator's translations, in order.
    revalidated: Mutex<Vec<u8>>,
}

impl Macs {
    fn set(&self, dst: u8, port: u32) {
        let mut t = self.table.lock();
        let v = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        t.insert(dst, (port, v));
    }
}

impl Translator for Macs {
    fn translate(&self, key: &FlowKey) -> Translation {
        let dst = key.dl_dst[5];
        let t = self.table.lock();
        let version = self.version.load(Ordering::SeqCst);
        let actions = match t.get(&dst) {
            Some((p, _)) => vec![DpAction::Output(*p)],
            None => (1..=3)
                .filter(|p| *p != key.in_port)
                .map(DpAction::Output)
                .collect(),
        };
        let mask = FlowKey {
            in_port: u32::MAX,
            dl_dst: [0xff; 6],
            ..FlowKey::default()
        };
        Translation {
            actions: actions.into(),
            mask,
            install: true,
            state_changed: false,
            drop_reason: None,
            rules: Some(Arc::new(Dep { dst, version })),
        }
    }

    fn revalidate(&self, key: &FlowKey) -> Translation {
        self.revalidated.lock().push(key.dl_dst[5]);
        self.translate(key)
    }

    fn generation(&self) -> u64 {
        0
    }

    fn state_version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    fn affected(&self, rules: &(dyn Any + Send + Sync)) -> bool {
        let d = rules.downcast_ref::<Dep>().expect("a Dep");
        let t = self.table.lock();
        match t.get(&d.dst) {
            Some((_, changed)) => *changed > d.version,
            None => false,
        }
    }
}

fn frame(dst: u8) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, dst, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.resize(60, 0);
    f
}

#[test]
fn a_state_change_retranslates_only_affected_megaflows() {
    let macs = Arc::new(Macs::default());
    macs.set(0xa, 2);
    macs.set(0xb, 2);
    let (dp, ports) = start_with_ports(macs.clone(), 3);
    let sent = |p: usize, dst: u8| ports[p].take_sent().iter().filter(|f| f[5] == dst).count();
    // Megaflows to A and B (port 2) and to unknown C (flooded to 2, 3).
    for dst in [0xa, 0xb, 0xc] {
        ports[0].inject(&frame(dst));
    }
    wait_for("three megaflows", || {
        dp.pmds[0].stats.snapshot().tx_packets == 4
    });
    assert_eq!(ports[1].take_sent().len(), 3);
    assert_eq!(sent(2, 0xc), 1);

    // A moves to port 3: its megaflow follows, without the others being
    // translated again.
    macs.set(0xa, 3);
    wait_for("frames to A on port 3", || {
        ports[0].inject(&frame(0xa));
        std::thread::sleep(std::time::Duration::from_millis(20));
        sent(2, 0xa) > 0
    });
    // C is learned on port 2: the flood megaflow becomes unicast.
    macs.set(0xc, 2);
    wait_for("frames to C only on port 2", || {
        ports[0].inject(&frame(0xc));
        std::thread::sleep(std::time::Duration::from_millis(20));
        let on2 = sent(1, 0xc);
        let on3 = sent(2, 0xc);
        on2 > 0 && on3 == 0
    });
    ports[0].inject(&frame(0xb));
    wait_for("B still on port 2", || sent(1, 0xb) == 1);
    let r = macs.revalidated.lock().clone();
    assert!(r.contains(&0xa) && r.contains(&0xc), "{r:?}");
    assert!(
        !r.contains(&0xb),
        "B's megaflow was translated again: {r:?}"
    );
    drop(ports);
    dp.shutdown();
}

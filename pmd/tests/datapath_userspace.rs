//! `userspace` actions over in-memory ports: the PMD hands a copy of the
//! packet to the handler pool (never blocking) and the handler counts it
//! by cookie kind; the rest of the action list still runs.

#[path = "mem_common/mod.rs"]
mod mem_common;
use flowcache::actions::{DpAction, DropReason, UserCookie, UserCookieKind};
use flowcache::key::FlowKey;
use flowcache::upcall::{Translation, Translator};
use mem_common::wait_for;
use std::sync::Arc;

/// Port 1: packet-in then output:2. Port 3: a sample cookie only.
struct ToSlowPath;

impl Translator for ToSlowPath {
    fn translate(&self, key: &FlowKey) -> Translation {
        let mask = FlowKey {
            in_port: u32::MAX,
            recirc_id: u32::MAX,
            ..FlowKey::default()
        };
        let actions = if key.in_port == 1 {
            vec![
                DpAction::Userspace {
                    cookie: UserCookie::Controller {
                        reason: 1,
                        recirc_id: 1,
                        rule_cookie: 0,
                        controller_id: 0,
                        max_len: 65535,
                    },
                },
                DpAction::Output(2),
            ]
        } else {
            vec![DpAction::Userspace {
                cookie: UserCookie::Sample(7),
            }]
        };
        Translation {
            actions: actions.into(),
            mask,
            install: true,
            state_changed: false,
            drop_reason: None,
            rules: None,
        }
    }
    fn generation(&self) -> u64 {
        0
    }
}

#[test]
fn userspace_packets_reach_the_handler_pool_and_are_counted_by_kind() {
    let (dp, ports) = mem_common::start_with_ports(Arc::new(ToSlowPath), 3);
    let (p1, p2, p3) = (&ports[0], &ports[1], &ports[2]);
    let frame = vec![0x02u8; 60];
    for _ in 0..5 {
        p1.inject(&frame);
    }
    for _ in 0..3 {
        p3.inject(&frame);
    }
    wait_for("outputs", || p2.state.lock().tx.len() == 5);
    let us = dp.userspace_stats.clone();
    wait_for("packet-ins", || us.get(UserCookieKind::Controller) == 5);
    wait_for("samples", || us.get(UserCookieKind::Sample) == 3);
    assert_eq!(us.get(UserCookieKind::Other), 0);
    assert_eq!(p2.take_sent(), vec![frame.clone(); 5], "output unchanged");
    let st = dp.pmds[0].stats.snapshot();
    assert_eq!(st.drops[DropReason::UserspaceQueueFull as usize], 0);
    assert_eq!(st.drops[DropReason::Action as usize], 0);
    dp.shutdown();
}

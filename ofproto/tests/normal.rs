//! NORMAL through the bridge as the upcall handlers use it: learning,
//! flooding, moves, VLAN isolation and the megaflow generation.

use flowcache::actions::{format_actions, DpAction};
use flowcache::key::{FlowKey, VlanTag, ETH_TYPE_IPV4, ETH_TYPE_VLAN, VLAN_CFI};
use flowcache::upcall::Translator;
use ofproto::xlate::{PortVlan, VlanMode};
use ofproto::{parse_flows, Bridge};
use std::any::Any;
use std::sync::Arc;

fn bridge(n: u32) -> Bridge {
    let b = Bridge::new();
    for p in 1..=n {
        b.add_port(p, &format!("p{p}"));
    }
    b.replace_rules(parse_flows("priority=0,actions=NORMAL", "t").unwrap())
        .unwrap();
    b
}

fn key(in_port: u32, src: u8, dst: [u8; 6], vid: Option<u16>) -> FlowKey {
    let mut k = FlowKey {
        in_port,
        dl_src: [0, 0, 0, 0, 0, src],
        dl_dst: dst,
        dl_type: ETH_TYPE_IPV4,
        ..Default::default()
    };
    if let Some(v) = vid {
        k.vlans[0] = VlanTag {
            tpid: ETH_TYPE_VLAN,
            tci: v | VLAN_CFI,
        };
    }
    k
}

fn mac(d: u8) -> [u8; 6] {
    [0, 0, 0, 0, 0, d]
}

fn acts(b: &Bridge, k: &FlowKey) -> String {
    format_actions(&b.translate(k).actions)
}

#[test]
fn floods_learns_and_follows_moves() {
    let b = bridge(4);
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xb), None)), "2,3,4");
    assert_eq!(acts(&b, &key(2, 0xb, mac(0xa), None)), "1");
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xb), None)), "2");
    // To a MAC learned on the ingress port: dropped.
    assert_eq!(acts(&b, &key(1, 0xc, mac(0xa), None)), "drop");
    // B moves to port 4; the move changes the MAC state (megaflows that
    // sent to port 2 are re-checked), not the rule generation.
    let (g, v) = (b.generation(), b.state_version());
    assert_eq!(acts(&b, &key(4, 0xb, [0xff; 6], None)), "1,2,3");
    assert_ne!(b.state_version(), v);
    assert_eq!(b.generation(), g);
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xb), None)), "4");
    // Nothing new learned: the state stays.
    let v = b.state_version();
    acts(&b, &key(1, 0xa, mac(0xb), None));
    assert_eq!(b.state_version(), v);
    // Reserved multicast is never forwarded.
    assert_eq!(
        acts(&b, &key(1, 0xa, [0x01, 0x80, 0xc2, 0, 0, 0x0e], None)),
        "drop"
    );
    // Revalidation learns nothing.
    b.revalidate(&key(3, 0xd, mac(0xa), None));
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xd), None)), "2,3,4");
}

/// The megaflow of `k` as a handler makes it: its actions and what the
/// revalidator later asks `affected` about.
fn megaflow(b: &Bridge, k: &FlowKey) -> (String, Arc<dyn Any + Send + Sync>) {
    let t = b.translate(k);
    (format_actions(&t.actions), t.rules.expect("rules"))
}

#[test]
fn mac_changes_recheck_only_dependent_megaflows() {
    let b = bridge(4);
    for (port, m) in [(1, 0xa), (2, 0xb), (3, 0xc)] {
        acts(&b, &key(port, m, [0xff; 6], None));
    }
    let (a_b, ab) = megaflow(&b, &key(1, 0xa, mac(0xb), None));
    let (a_c, ac) = megaflow(&b, &key(1, 0xa, mac(0xc), None));
    let (b_a, ba) = megaflow(&b, &key(2, 0xb, mac(0xa), None));
    // D is unknown: flooded.
    let (a_d, ad) = megaflow(&b, &key(1, 0xa, mac(0xd), None));
    assert_eq!([&*a_b, &*a_c, &*b_a, &*a_d], ["2", "3", "1", "2,3,4"]);
    for r in [&ab, &ac, &ba, &ad] {
        assert!(!b.affected(&**r), "nothing changed yet");
    }

    // B moves to port 4: the megaflows that forwarded to B or came from
    // it on port 2 are affected, no other.
    acts(&b, &key(4, 0xb, [0xff; 6], None));
    assert!(b.affected(&*ab));
    assert!(b.affected(&*ba));
    assert!(!b.affected(&*ac));
    assert!(!b.affected(&*ad));
    assert_eq!(
        format_actions(&b.revalidate(&key(1, 0xa, mac(0xb), None)).actions),
        "4"
    );

    // D is learned: the flood megaflow is affected and becomes unicast.
    acts(&b, &key(3, 0xd, [0xff; 6], None));
    assert!(b.affected(&*ad));
    assert!(!b.affected(&*ac));
    assert_eq!(
        format_actions(&b.revalidate(&key(1, 0xa, mac(0xd), None)).actions),
        "3"
    );

    // A megaflow checked again depends on the state of that check.
    let (_, ab2) = megaflow(&b, &key(1, 0xa, mac(0xb), None));
    assert!(!b.affected(&*ab2));
    // Port 3's MACs are flushed: the megaflows to C are affected, the one
    // to B (still on port 4) is not.
    b.mac_table().lock().flush(Some(3));
    assert!(b.affected(&*ac));
    assert!(!b.affected(&*ab2));
    assert_eq!(
        format_actions(&b.revalidate(&key(1, 0xa, mac(0xc), None)).actions),
        "2,3,4"
    );
}

#[test]
fn megaflow_traffic_keeps_its_source_learned() {
    // A source the slow path saw once stays learned while its megaflow
    // has packets (OVS pushes XC_NORMAL stats into the MAC table).
    let b = bridge(3);
    let (_, r) = megaflow(&b, &key(1, 0xa, [0xff; 6], None));
    b.mac_table().lock().flush(None);
    b.credit(&*r, 0, 0, 0);
    assert_eq!(
        format_actions(&b.revalidate(&key(3, 0xc, mac(0xa), None)).actions),
        "1,2"
    );
    b.credit(&*r, 1, 60, 0);
    assert_eq!(
        format_actions(&b.revalidate(&key(3, 0xc, mac(0xa), None)).actions),
        "1"
    );
}

#[test]
fn a_moved_source_takes_its_old_megaflows_to_the_slow_path() {
    let b = bridge(3);
    let k1 = key(1, 0xa, [0xff; 6], None);
    let (_, old) = megaflow(&b, &k1);
    assert!(b.revalidate(&k1).install);
    // A moves to port 2: the megaflow from port 1 depends on A's entry,
    // and is not kept (a frame from A on port 1 must be learned again).
    acts(&b, &key(2, 0xa, [0xff; 6], None));
    assert!(b.affected(&*old));
    assert!(!b.revalidate(&k1).install);
    // Late statistics of the old megaflow do not move A back.
    b.credit(&*old, 1, 60, 0);
    assert_eq!(acts(&b, &key(3, 0xc, mac(0xa), None)), "2");
    // A frame from A on port 1 does (through the slow path).
    acts(&b, &k1);
    assert_eq!(acts(&b, &key(3, 0xc, mac(0xa), None)), "1");
}

#[test]
fn learning_is_per_vlan_on_trunks() {
    let b = bridge(3);
    assert_eq!(acts(&b, &key(2, 0xb, mac(0xa), Some(10))), "1,3");
    // B is known in VLAN 10, not in VLAN 20.
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xb), Some(10))), "2");
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xb), Some(20))), "2,3");
}

#[test]
fn access_ports_isolate_and_tag() {
    let b = bridge(4);
    let access = |tag| PortVlan {
        mode: VlanMode::Access,
        tag,
        ..Default::default()
    };
    b.set_port_vlan(1, access(10));
    b.set_port_vlan(2, access(10));
    b.set_port_vlan(3, access(20));
    // Port 4: trunk of all VLANs.
    let t = b.translate(&key(1, 0xa, [0xff; 6], None));
    let outs: Vec<_> = t
        .actions
        .iter()
        .filter_map(|a| match a {
            DpAction::Output(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(outs, vec![2, 4], "{}", format_actions(&t.actions));
    // The trunk copy leaves tagged with VLAN 10, the access copy untagged.
    let s = format_actions(&t.actions);
    let (before4, _) = s.split_once(",4").unwrap();
    assert!(before4.contains("push_vlan"), "{s}");
    // A tagged frame on an access port is dropped.
    assert_eq!(acts(&b, &key(1, 0xa, [0xff; 6], Some(10))), "drop");
    // VLAN 20 does not reach VLAN 10's hosts.
    assert_eq!(
        acts(&b, &key(3, 0xc, mac(0xa), None)),
        "push_vlan(tpid=0x8100,vid=20,pcp=0),4"
    );
}

#[test]
fn flood_skips_no_flood_ports_but_all_does_not() {
    let b = bridge(3);
    b.set_port_vlan(
        3,
        PortVlan {
            no_flood: true,
            ..Default::default()
        },
    );
    assert_eq!(acts(&b, &key(1, 0xa, [0xff; 6], None)), "2");
    b.replace_rules(parse_flows("actions=FLOOD", "t").unwrap())
        .unwrap();
    assert_eq!(acts(&b, &key(1, 0xa, [0xff; 6], None)), "2");
    b.replace_rules(parse_flows("actions=ALL", "t").unwrap())
        .unwrap();
    assert_eq!(acts(&b, &key(1, 0xa, [0xff; 6], None)), "2,3");
}

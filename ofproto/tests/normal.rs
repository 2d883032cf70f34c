//! NORMAL through the bridge as the upcall handlers use it: learning,
//! flooding, moves, VLAN isolation and the megaflow generation.

use flowcache::actions::{format_actions, DpAction};
use flowcache::key::{FlowKey, VlanTag, ETH_TYPE_IPV4, ETH_TYPE_VLAN, VLAN_CFI};
use flowcache::upcall::Translator;
use ofproto::xlate::{PortVlan, VlanMode};
use ofproto::{parse_flows, Bridge};

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
    // B moves to port 4; the move changes the generation (megaflows that
    // sent to port 2 are re-checked).
    let g = b.generation();
    assert_eq!(acts(&b, &key(4, 0xb, [0xff; 6], None)), "1,2,3");
    assert_ne!(b.generation(), g);
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xb), None)), "4");
    // Nothing new learned: the generation stays.
    let g = b.generation();
    acts(&b, &key(1, 0xa, mac(0xb), None));
    assert_eq!(b.generation(), g);
    // Reserved multicast is never forwarded.
    assert_eq!(
        acts(&b, &key(1, 0xa, [0x01, 0x80, 0xc2, 0, 0, 0x0e], None)),
        "drop"
    );
    // Revalidation learns nothing.
    b.revalidate(&key(3, 0xd, mac(0xa), None));
    assert_eq!(acts(&b, &key(1, 0xa, mac(0xd), None)), "2,3,4");
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

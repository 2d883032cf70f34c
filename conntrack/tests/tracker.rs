//! The tracker end to end on built packets: states per protocol, zones,
//! marks and labels, related ICMP errors, NAT, limits, expiry.

mod util;

use conntrack::Conntrack;
use flowcache::actions::{CtAction, CtNat, NatKind};
use flowcache::extract::CtMeta;
use flowcache::key::*;
use util::*;

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const R: [u8; 4] = [10, 0, 0, 254];

fn dl(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[12], f[13]])
}

fn ct(t: &Conntrack, f: &mut [u8], act: &CtAction, now: u64) -> CtMeta {
    let mut m = CtMeta::default();
    let d = dl(f);
    t.execute(0, f, L3, d, act, &mut m, now);
    m
}

fn commit(zone: u16) -> CtAction {
    CtAction {
        zone,
        commit: true,
        ..CtAction::default()
    }
}

fn lookup(zone: u16) -> CtAction {
    CtAction {
        zone,
        ..CtAction::default()
    }
}

const NEW: u8 = CS_TRACKED | CS_NEW;
const EST: u8 = CS_TRACKED | CS_ESTABLISHED;
const RPL: u8 = CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR;

#[test]
fn udp_new_until_reply_then_established() {
    let t = Conntrack::new();
    let mut req = udp4(A, B, 1000, 53);
    let mut rep = udp4(B, A, 53, 1000);
    assert_eq!(ct(&t, &mut req.clone(), &lookup(0), 0).state, NEW);
    // Without commit nothing is remembered.
    assert_eq!(ct(&t, &mut rep.clone(), &lookup(0), 0).state, NEW);
    assert_eq!(ct(&t, &mut req, &commit(0), 0).state, NEW);
    assert_eq!(t.len(), 1);
    assert_eq!(
        ct(&t, &mut req.clone(), &lookup(0), 1).state,
        NEW,
        "no reply seen yet"
    );
    let m = ct(&t, &mut rep, &lookup(0), 2);
    assert_eq!(m.state, RPL);
    // The original tuple is reported in both directions.
    assert_eq!(
        (m.nw_src, m.nw_dst, m.tp_src, m.tp_dst, m.nw_proto),
        (0x0a000001, 0x0a000002, 1000, 53, 17)
    );
    assert_eq!(ct(&t, &mut req, &lookup(0), 3).state, EST);
}

#[test]
fn zones_are_separate_tables() {
    let t = Conntrack::new();
    ct(&t, &mut udp4(A, B, 1, 2), &commit(10), 0);
    assert_eq!(ct(&t, &mut udp4(B, A, 2, 1), &lookup(20), 0).state, NEW);
    let m = ct(&t, &mut udp4(B, A, 2, 1), &lookup(10), 0);
    assert_eq!((m.state, m.zone), (RPL, 10));
}

#[test]
fn mark_and_label_masked_updates() {
    let t = Conntrack::new();
    let mut c = commit(0);
    c.mark = Some((0x35, u32::MAX));
    c.label = Some((1 << 127, 1 << 127));
    ct(&t, &mut udp4(A, B, 5, 6), &c, 0);
    let mut c2 = commit(0);
    c2.mark = Some((0x100, 0x100));
    let m = ct(&t, &mut udp4(B, A, 6, 5), &c2, 0);
    assert_eq!(m.mark, 0x135);
    assert_eq!(m.label, 1 << 127);
    assert_eq!(ct(&t, &mut udp4(A, B, 5, 6), &lookup(0), 0).mark, 0x135);
}

#[test]
fn tcp_handshake_window_and_restart() {
    let t = Conntrack::new();
    let mut syn = tcp4(A, B, 4000, 80, 100, 0, SYN, b"");
    assert_eq!(ct(&t, &mut syn, &commit(0), 0).state, NEW);
    let mut synack = tcp4(B, A, 80, 4000, 700, 101, SYN | ACK, b"");
    assert_eq!(ct(&t, &mut synack, &lookup(0), 0).state, RPL);
    let mut ack = tcp4(A, B, 4000, 80, 101, 701, ACK, b"");
    assert_eq!(ct(&t, &mut ack, &lookup(0), 0).state, EST);
    let mut data = tcp4(A, B, 4000, 80, 101, 701, ACK | PSH, b"GET /");
    assert_eq!(ct(&t, &mut data, &lookup(0), 0).state, EST);
    // Data far outside the window is invalid; an empty segment is not checked.
    let mut bad = tcp4(A, B, 4000, 80, 101 + 3_000_000, 701, ACK | PSH, b"xx");
    assert_eq!(
        ct(&t, &mut bad, &lookup(0), 0).state,
        CS_TRACKED | CS_INVALID
    );
    let mut empty = tcp4(A, B, 4000, 80, 101 + 3_000_000, 701, ACK, b"");
    assert_eq!(ct(&t, &mut empty, &lookup(0), 0).state, EST);
    // RST, then a new SYN starts a new connection.
    let mut rst = tcp4(B, A, 80, 4000, 701, 0, RST, b"");
    assert_eq!(ct(&t, &mut rst, &lookup(0), 0).state, RPL);
    let mut syn2 = tcp4(A, B, 4000, 80, 9000, 0, SYN, b"");
    assert_eq!(ct(&t, &mut syn2, &commit(0), 0).state, NEW);
    assert_eq!(
        t.dump(None, 0)[0].tcp.unwrap().0,
        conntrack::TcpState::SynSent
    );
}

#[test]
fn tcp_syn_ack_without_connection_is_invalid_bare_ack_is_new() {
    let t = Conntrack::new();
    let mut synack = tcp4(B, A, 80, 4000, 700, 101, SYN | ACK, b"");
    assert_eq!(
        ct(&t, &mut synack, &commit(0), 0).state,
        CS_TRACKED | CS_INVALID
    );
    let mut ack = tcp4(A, B, 4000, 80, 101, 701, ACK, b"");
    assert_eq!(ct(&t, &mut ack, &commit(0), 0).state, NEW);
    assert_eq!(t.len(), 1);
}

#[test]
fn icmp_echo_and_related_errors() {
    let t = Conntrack::new();
    let mut req = icmp4(A, B, 8, 77, b"ping");
    assert_eq!(ct(&t, &mut req, &commit(0), 0).state, NEW);
    let mut rep = icmp4(B, A, 0, 77, b"ping");
    assert_eq!(ct(&t, &mut rep, &lookup(0), 0).state, RPL);
    // A request the other way is a new connection, a reply alone invalid.
    assert_eq!(
        ct(&t, &mut icmp4(B, A, 8, 77, b"x"), &lookup(0), 0).state,
        NEW
    );
    assert_eq!(
        ct(&t, &mut icmp4(B, A, 0, 99, b"x"), &lookup(0), 0).state,
        CS_TRACKED | CS_INVALID
    );

    let udp = udp4(A, B, 1000, 53);
    ct(&t, &mut udp.clone(), &commit(0), 0);
    // Port unreachable from B (reply direction) and from a router.
    let m = ct(&t, &mut icmp4_error(B, A, 3, &udp), &lookup(0), 0);
    assert_eq!(m.state, CS_TRACKED | CS_RELATED | CS_REPLY_DIR);
    let m = ct(&t, &mut icmp4_error(R, A, 11, &udp), &lookup(0), 0);
    assert_eq!(m.state, CS_TRACKED | CS_RELATED | CS_REPLY_DIR);
    // Quoting a packet of the reply direction, travelling the original way.
    let back = udp4(B, A, 53, 1000);
    let m = ct(&t, &mut icmp4_error(A, B, 3, &back), &lookup(0), 0);
    assert_eq!(m.state, CS_TRACKED | CS_RELATED);
    // Quoting an unknown flow.
    let other = udp4(A, B, 1001, 53);
    let m = ct(&t, &mut icmp4_error(B, A, 3, &other), &lookup(0), 0);
    assert_eq!(m.state, CS_TRACKED | CS_INVALID);
}

#[test]
fn ipv6_udp() {
    let t = Conntrack::new();
    let a = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let b = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    assert_eq!(ct(&t, &mut udp6(a, b, 7, 8), &commit(0), 0).state, NEW);
    let m = ct(&t, &mut udp6(b, a, 8, 7), &lookup(0), 0);
    assert_eq!(m.state, RPL);
    assert_eq!(m.ipv6_src, a);
}

#[test]
fn bad_checksum_and_fragments_are_invalid() {
    let t = Conntrack::new();
    let mut f = udp4(A, B, 1, 2);
    let n = f.len();
    f[n - 1] ^= 0xff;
    assert_eq!(ct(&t, &mut f, &commit(0), 0).state, CS_TRACKED | CS_INVALID);
    let mut frag = udp4(A, B, 1, 2);
    frag[L3 + 6] = 0x20; // MF
    assert_eq!(
        ct(&t, &mut frag, &commit(0), 0).state,
        CS_TRACKED | CS_INVALID
    );
    assert!(t.is_empty());
    // Not IP at all.
    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    let mut m = CtMeta::default();
    t.execute(0, &mut arp, L3, 0x0806, &commit(0), &mut m, 0);
    assert_eq!(m.state, CS_TRACKED | CS_INVALID);
}

#[test]
fn snat_keeps_port_when_free_and_unnats_replies() {
    let t = Conntrack::new();
    let mut nat = CtNat {
        kind: NatKind::Src,
        ..CtNat::default()
    };
    nat.addr_min[12..].copy_from_slice(&[192, 168, 0, 100]);
    nat.addr_max = nat.addr_min;
    let act = CtAction {
        commit: true,
        nat: Some(nat),
        ..CtAction::default()
    };
    let mut p = udp4(A, B, 1000, 53);
    let m = ct(&t, &mut p, &act, 0);
    assert_eq!(m.state, NEW | CS_SRC_NAT);
    assert_eq!(
        p,
        udp4([192, 168, 0, 100], B, 1000, 53),
        "source rewritten, checksums valid"
    );
    // A second host with the same source port gets another port.
    let mut p2 = udp4([10, 0, 0, 3], B, 1000, 53);
    ct(&t, &mut p2, &act, 0);
    let sport2 = u16::from_be_bytes([p2[L3 + 20], p2[L3 + 21]]);
    assert_ne!(sport2, 1000);
    assert_eq!(p2, udp4([192, 168, 0, 100], B, sport2, 53));
    // Replies are un-NATted with `nat`.
    let only_nat = CtAction {
        nat: Some(CtNat::default()),
        ..CtAction::default()
    };
    let mut r = udp4(B, [192, 168, 0, 100], 53, 1000);
    let m = ct(&t, &mut r, &only_nat, 1);
    assert_eq!(m.state, RPL | CS_DST_NAT);
    assert_eq!(r, udp4(B, A, 53, 1000));
    let mut r2 = udp4(B, [192, 168, 0, 100], 53, sport2);
    ct(&t, &mut r2, &only_nat, 1);
    assert_eq!(r2, udp4(B, [10, 0, 0, 3], 53, 1000));
}

#[test]
fn icmp_errors_quoting_a_snatted_packet_are_translated_back() {
    let t = Conntrack::new();
    let n = [192, 168, 0, 100];
    let mut nat = CtNat {
        kind: NatKind::Src,
        ..CtNat::default()
    };
    nat.addr_min[12..].copy_from_slice(&n);
    nat.addr_max = nat.addr_min;
    let act = CtAction {
        commit: true,
        nat: Some(nat),
        ..CtAction::default()
    };
    ct(&t, &mut udp4(A, B, 1000, 53), &act, 0);
    let only_nat = CtAction {
        nat: Some(CtNat::default()),
        ..CtAction::default()
    };
    // From the server and from a router, both to the NAT address.
    for from in [B, R] {
        let mut e = icmp4_error(from, n, 3, &udp4(n, B, 1000, 53));
        let m = ct(&t, &mut e, &only_nat, 0);
        assert_eq!(m.state, CS_TRACKED | CS_RELATED | CS_REPLY_DIR);
        assert_eq!(e, icmp4_error(from, A, 3, &udp4(A, B, 1000, 53)));
    }
}

#[test]
fn dnat_with_port_range() {
    let t = Conntrack::new();
    let mut nat = CtNat {
        kind: NatKind::Dst,
        port_min: 8080,
        port_max: 8081,
        ..CtNat::default()
    };
    nat.addr_min[12..].copy_from_slice(&[10, 1, 0, 5]);
    nat.addr_max = nat.addr_min;
    let act = CtAction {
        commit: true,
        nat: Some(nat),
        ..CtAction::default()
    };
    let mut p = tcp4(A, B, 4000, 80, 1, 0, SYN, b"");
    let m = ct(&t, &mut p, &act, 0);
    assert_eq!(m.state, NEW | CS_DST_NAT);
    let dport = u16::from_be_bytes([p[L3 + 22], p[L3 + 23]]);
    assert!((8080..=8081).contains(&dport));
    assert_eq!(p, tcp4(A, [10, 1, 0, 5], 4000, dport, 1, 0, SYN, b""));
    let only_nat = CtAction {
        nat: Some(CtNat::default()),
        ..CtAction::default()
    };
    let mut r = tcp4([10, 1, 0, 5], A, dport, 4000, 50, 2, SYN | ACK, b"");
    let m = ct(&t, &mut r, &only_nat, 0);
    assert_eq!(m.state, RPL | CS_SRC_NAT);
    assert_eq!(r, tcp4(B, A, 80, 4000, 50, 2, SYN | ACK, b""));
}

#[test]
fn limits_refuse_new_connections_and_established_keep_flowing() {
    let t = Conntrack::new();
    t.set_max_conns(10);
    for i in 0..10u16 {
        ct(&t, &mut udp4(A, B, 1000 + i, 53), &commit(0), 0);
        ct(&t, &mut udp4(B, A, 53, 1000 + i), &lookup(0), 0);
    }
    assert_eq!(t.len(), 10);
    // The 11th is +new but not committed, and counted.
    assert_eq!(ct(&t, &mut udp4(A, B, 2000, 53), &commit(0), 0).state, NEW);
    assert_eq!(t.len(), 10);
    assert_eq!(ct(&t, &mut udp4(B, A, 53, 2000), &lookup(0), 0).state, NEW);
    assert_eq!(t.counters().limit_hits, 1);
    for i in 0..10u16 {
        assert_eq!(
            ct(&t, &mut udp4(A, B, 1000 + i, 53), &commit(0), 1).state,
            EST
        );
    }
    // Zone limits.
    t.set_max_conns(1000);
    t.set_zone_limit(Some(5), 2).unwrap();
    for i in 0..3u16 {
        ct(&t, &mut udp4(A, B, 3000 + i, 53), &commit(5), 0);
    }
    assert_eq!(t.zone_count(5), 2);
    assert_eq!(t.counters().zone_limit_hits, 1);
    t.set_zone_limit(None, 1).unwrap();
    ct(&t, &mut udp4(A, B, 1, 1), &commit(6), 0);
    ct(&t, &mut udp4(A, B, 1, 2), &commit(6), 0);
    assert_eq!(t.zone_count(6), 1);
}

#[test]
fn expiry_and_sweep() {
    let t = Conntrack::new();
    ct(&t, &mut udp4(A, B, 1, 2), &commit(0), 0);
    assert_eq!(t.dump(None, 59_000).len(), 1);
    // UDP first-packet timeout: 60 s; expired connections are not found.
    assert_eq!(ct(&t, &mut udp4(B, A, 2, 1), &lookup(0), 60_001).state, NEW);
    assert_eq!(t.sweep(60_001, conntrack::N_SHARDS), 1);
    assert!(t.is_empty());
    // Flush by zone.
    ct(&t, &mut udp4(A, B, 1, 2), &commit(1), 0);
    ct(&t, &mut udp4(A, B, 1, 2), &commit(2), 0);
    assert_eq!(t.flush(Some(1), None), 1);
    assert_eq!(t.len(), 1);
    assert_eq!(t.flush(None, None), 1);
    assert!(t.is_empty());
}

#[test]
fn force_commit_replaces_a_reply_direction_connection() {
    let t = Conntrack::new();
    ct(&t, &mut udp4(A, B, 1, 2), &commit(0), 0);
    let force = CtAction {
        commit: true,
        force: true,
        ..CtAction::default()
    };
    assert_eq!(ct(&t, &mut udp4(B, A, 2, 1), &force, 0).state, NEW);
    assert_eq!(t.len(), 1);
    assert_eq!(t.dump(None, 0)[0].orig.src[12..], B);
}

#[test]
fn dump_format_is_ovs() {
    let t = Conntrack::new();
    let mut c = commit(10);
    c.mark = Some((309, u32::MAX));
    ct(&t, &mut udp4(A, B, 1000, 53), &c, 0);
    ct(&t, &mut tcp4(A, B, 4000, 80, 1, 0, SYN, b""), &commit(0), 0);
    let lines: Vec<String> = t.dump(None, 0).iter().map(conntrack::format_conn).collect();
    assert!(lines.contains(&"udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=1000,dport=53),reply=(src=10.0.0.2,dst=10.0.0.1,sport=53,dport=1000),zone=10,mark=309".to_string()), "{lines:?}");
    assert!(lines.contains(&"tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=4000,dport=80),reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=4000),protoinfo=(state=SYN_SENT)".to_string()), "{lines:?}");
}

//! Megaflow soundness on random pipelines: for random tables and random
//! packets drawn from small value domains, any packet inside another
//! packet's megaflow (key & wc equal) must get exactly the same datapath
//! actions. Also checks that masks never have OpenFlow-only bits.

use flowcache::actions::format_actions;
use flowcache::key::*;
use ofproto::parse_flows;
use ofproto::table::Tables;
use ofproto::xlate::{xlate, PortRange, XlateOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

const ADDRS: [&str; 6] = [
    "10.0.0.1",
    "10.0.1.7",
    "10.1.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "10.0.0.200",
];
const ADDR_U32: [u32; 6] = [
    0x0a00_0001,
    0x0a00_0107,
    0x0a01_0001,
    0xac10_0001,
    0xc0a8_0101,
    0x0a00_00c8,
];

fn gen_match(r: &mut Rng) -> String {
    let mut m = vec![];
    let proto = *r.pick(&["ip", "udp", "tcp", "ip", "icmp"]);
    m.push(proto.to_string());
    if r.chance(30) {
        m.push(format!("in_port={}", 1 + r.below(3)));
    }
    if r.chance(40) {
        m.push(format!(
            "nw_dst={}/{}",
            r.pick(&ADDRS),
            r.pick(&[8, 16, 24, 31, 32])
        ));
    }
    if r.chance(30) {
        m.push(format!(
            "nw_src={}/{}",
            r.pick(&ADDRS),
            r.pick(&[1, 8, 23, 32])
        ));
    }
    if (proto == "udp" || proto == "tcp") && r.chance(50) {
        let p = r.pick(&[53u32, 80, 443, 0]);
        if r.chance(50) {
            m.push(format!("tp_dst={p}"));
        } else {
            m.push(format!("tp_dst={:#x}/0xff00", p & 0xff00));
        }
    }
    if proto == "tcp" && r.chance(20) {
        m.push("tcp_flags=+syn".into());
    }
    if r.chance(20) {
        m.push(format!("nw_ttl={}", r.pick(&[1, 2, 64])));
    }
    if r.chance(20) {
        m.push(format!("reg0={}", r.below(3)));
    }
    if r.chance(15) {
        m.push(format!("dl_vlan={}", r.pick(&[10, 20])));
    }
    if r.chance(10) {
        m.push("vlan_tci=0x0000/0x1fff".into());
    }
    if r.chance(15) {
        m.push(format!("nw_frag={}", r.pick(&["no", "first", "yes"])));
    }
    m.join(",")
}

fn gen_actions(r: &mut Rng, table: u32, n_tables: u32, proto_l4: bool) -> String {
    let mut a = vec![];
    for _ in 0..1 + r.below(4) {
        let x = r.below(15);
        let s = match x {
            0..=3 => format!("output:{}", r.pick(&["1", "2", "3", "4", "9", "IN_PORT"])),
            4 => "dec_ttl".into(),
            5 => format!("mod_nw_dst:{}", r.pick(&ADDRS)),
            6 => format!("mod_nw_src:{}", r.pick(&ADDRS)),
            7 if proto_l4 => format!("mod_tp_dst:{}", r.pick(&[53, 80, 8080])),
            8 => format!("load:{}->NXM_NX_REG0[]", r.below(3)),
            9 => "push_vlan:0x8100,set_field:4106->vlan_vid".into(),
            10 => format!("resubmit(,{})", r.below(n_tables as u64)),
            11 => format!("mod_dl_src:00:00:00:00:00:{:02x}", r.below(3)),
            12 => "move:NXM_OF_IP_DST[0..7]->NXM_NX_REG0[0..7]".into(),
            13 => format!("mod_nw_tos:{}", r.pick(&[0, 32, 184])),
            _ => format!("output:{}", 1 + r.below(4)),
        };
        a.push(s);
    }
    if r.chance(20) {
        a.push(format!("write_actions(output:{})", 1 + r.below(4)));
    }
    if table + 1 < n_tables && r.chance(40) {
        a.push(format!(
            "goto_table:{}",
            table + 1 + r.below((n_tables - table - 1) as u64) as u32
        ));
    }
    a.join(",")
}

fn gen_key(r: &mut Rng) -> FlowKey {
    let mut k = FlowKey {
        in_port: 1 + r.below(3) as u32,
        dl_src: [0, 0, 0, 0, 0, r.below(3) as u8],
        dl_dst: [0, 0, 0, 0, 0, 2],
        dl_type: ETH_TYPE_IPV4,
        nw_src: *r.pick(&ADDR_U32),
        nw_dst: *r.pick(&ADDR_U32),
        nw_ttl: *r.pick(&[0u8, 1, 2, 64]),
        nw_tos: *r.pick(&[0u8, 32, 184, 3]),
        ..Default::default()
    };
    if r.chance(30) {
        k.vlans[0] = VlanTag {
            tpid: ETH_TYPE_VLAN,
            tci: VLAN_CFI | *r.pick(&[10u16, 20, 30]),
        };
    }
    let proto = *r.pick(&[IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP, 0, 47]);
    k.nw_proto = proto;
    if r.chance(15) {
        k.nw_frag = *r.pick(&[FRAG_ANY, FRAG_ANY | FRAG_LATER]);
    }
    let later = k.nw_frag & FRAG_LATER != 0;
    match proto {
        IPPROTO_UDP | IPPROTO_TCP if !later => {
            k.tp_src = *r.pick(&[1234u16, 53, 80]);
            k.tp_dst = *r.pick(&[53u16, 80, 443, 0, 0x50ff, 8080]);
            if proto == IPPROTO_TCP {
                k.tcp_flags = *r.pick(&[0u16, 2, 0x12, 0x10]);
            }
        }
        IPPROTO_ICMP if !later => {
            k.tp_src = *r.pick(&[0u16, 8, 3]);
            k.tp_dst = *r.pick(&[0u16, 1]);
        }
        _ => {}
    }
    k
}

#[test]
fn random_pipelines_have_sound_megaflows() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0u64;
    let mut built = 0;
    for case in 0..300 {
        let n_tables = 1 + r.below(3) as u32;
        let mut text = String::new();
        for t in 0..n_tables {
            for _ in 0..1 + r.below(7) {
                let m = gen_match(&mut r);
                let l4 = m.starts_with("udp") || m.starts_with("tcp");
                let a = gen_actions(&mut r, t, n_tables, l4);
                text.push_str(&format!(
                    "table={t},priority={},{m},actions={a}\n",
                    r.below(100)
                ));
            }
        }
        // Random tables may violate ovs-ofctl's consistency checks; keep
        // only the lines it accepts.
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| parse_flows(l, "gen").is_ok())
            .collect();
        let Ok(rules) = parse_flows(&lines.join("\n"), "gen") else {
            continue;
        };
        if rules.is_empty() {
            continue;
        }
        built += 1;
        let tables = Tables::from_rules(rules);
        let ports = PortRange(4);
        let keys: Vec<FlowKey> = (0..60).map(|_| gen_key(&mut r)).collect();
        let outs: Vec<_> = keys
            .iter()
            .map(|k| xlate(&tables, k, &ports, &XlateOptions::default()))
            .collect();
        for (i, (k1, o1)) in keys.iter().zip(&outs).enumerate() {
            assert!(o1.wc.words()[DP_WORDS..].iter().all(|w| *w == 0));
            for (k2, o2) in keys.iter().zip(&outs) {
                if k2.matches(k1, &o1.wc) {
                    checked += 1;
                    assert_eq!(
                        o1.actions,
                        o2.actions,
                        "case {case} packet {i}: unsound megaflow\nflows:\n{}\n{} vs {}\n{:?}\n{:?}",
                        lines.join("\n"),
                        format_actions(&o1.actions),
                        format_actions(&o2.actions),
                        k1,
                        k2
                    );
                }
            }
        }
    }
    assert!(built > 200, "only {built} pipelines parsed");
    assert!(checked > 20_000, "only {checked} pairs checked");
}

//! Criterion kernels of the action executor: the masked header rewrites
//! (with their incremental checksum updates) and the VLAN/MPLS pushes and
//! pops, on one frame that goes round and round (a `VecPacket` with
//! headroom, moved, never copied or allocated in the loop). Each iteration runs two plans that write different values, so
//! every rewrite really changes the frame.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use etherparse::PacketBuilder;
use flowcache::actions::{
    DpAction, DropReason, Ipv4Fields, Ipv6Fields, Masked, PortFields, SetField, UserCookie,
};
use flowcache::extract::{extract, Offsets, PacketMeta};
use flowcache::key::FlowKey;
use pmd::execute::{ActionPlan, ExecContext};
use pmd::VecPacket;

/// Keeps the output packet for the next iteration.
#[derive(Default)]
struct Sink(Option<VecPacket>);

impl ExecContext<VecPacket> for Sink {
    fn output(&mut self, _port: u32, pkt: VecPacket) {
        self.0 = Some(pkt);
    }
    fn recirculate(&mut self, pkt: VecPacket, _meta: PacketMeta) {
        self.0 = Some(pkt);
    }
    fn userspace(&mut self, _cookie: UserCookie, pkt: VecPacket, _meta: &PacketMeta) {
        self.0 = Some(pkt);
    }
    fn count_drop(&mut self, _reason: DropReason) {}
    fn random_u32(&mut self) -> u32 {
        0
    }
}

const MAC_SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Ethernet/IPv4/TCP, 1234 -> 80, 10 payload bytes.
fn tcp4() -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1234, 80, 1, 65535);
    let mut f = Vec::with_capacity(b.size(10));
    b.write(&mut f, &[0; 10]).expect("build frame");
    f
}

/// Ethernet/IPv6/UDP, fd00::1 -> fd00::2, 1234 -> 53, 8 payload bytes.
fn udp6() -> Vec<u8> {
    let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
    (src[0], src[15], dst[0], dst[15]) = (0xfd, 1, 0xfd, 2);
    let b = PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(src, dst, 64)
        .udp(1234, 53);
    let mut f = Vec::with_capacity(b.size(8));
    b.write(&mut f, &[0; 8]).expect("build frame");
    f
}

fn set_v4(src: u32, ttl: u8) -> DpAction {
    DpAction::Set(SetField::Ipv4(Masked {
        value: Ipv4Fields {
            src,
            dst: 0,
            tos: 0,
            ttl,
        },
        mask: Ipv4Fields {
            src: !0,
            dst: 0,
            tos: 0,
            ttl: 0xff,
        },
    }))
}

fn set_tcp(dst: u16) -> DpAction {
    DpAction::Set(SetField::Tcp(Masked {
        value: PortFields { src: 0, dst },
        mask: PortFields { src: 0, dst: !0 },
    }))
}

fn set_v6(last: u8) -> DpAction {
    let mut src = [0u8; 16];
    src[0] = 0xfd;
    src[15] = last;
    DpAction::Set(SetField::Ipv6(Masked {
        value: Ipv6Fields {
            src,
            ..Default::default()
        },
        mask: Ipv6Fields {
            src: [0xff; 16],
            ..Default::default()
        },
    }))
}

fn set_udp(dst: u16) -> DpAction {
    DpAction::Set(SetField::Udp(Masked {
        value: PortFields { src: 0, dst },
        mask: PortFields { src: 0, dst: !0 },
    }))
}

/// Runs plans `a` and `b` in turn on `frame`.
fn bench_pair(c: &mut Criterion, name: &str, frame: &[u8], a: &[DpAction], b: &[DpAction]) {
    let mut key = FlowKey::default();
    let meta = PacketMeta {
        in_port: 1,
        ..Default::default()
    };
    let ofs: Offsets = extract(frame, &meta, &mut key).expect("frame parses");
    let (pa, pb) = (ActionPlan::new(a), ActionPlan::new(b));
    let mut sink = Sink(Some(VecPacket::new(frame)));
    c.bench_function(name, |bench| {
        bench.iter(|| {
            for plan in [&pa, &pb] {
                let pkt = sink.0.take().expect("the frame came back");
                let mut m = meta;
                plan.execute_with_offsets(&mut sink, pkt, &mut m, black_box(ofs));
            }
        })
    });
}

fn kernels(c: &mut Criterion) {
    let out = DpAction::Output(2);
    let tcp = tcp4();
    bench_pair(
        c,
        "execute/set_ipv4_src_ttl",
        &tcp,
        &[set_v4(0x0a00_0063, 63), out.clone()],
        &[set_v4(0x0a00_0001, 64), out.clone()],
    );
    bench_pair(
        c,
        "execute/set_tcp_dst",
        &tcp,
        &[set_tcp(8080), out.clone()],
        &[set_tcp(80), out.clone()],
    );
    let udp = udp6();
    bench_pair(
        c,
        "execute/set_ipv6_src",
        &udp,
        &[set_v6(9), out.clone()],
        &[set_v6(1), out.clone()],
    );
    bench_pair(
        c,
        "execute/set_udp_dst",
        &udp,
        &[set_udp(5353), out.clone()],
        &[set_udp(53), out.clone()],
    );
    bench_pair(
        c,
        "execute/push_pop_vlan",
        &tcp,
        &[
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 0x1064,
            },
            DpAction::PopVlan,
            out.clone(),
        ],
        std::slice::from_ref(&out),
    );
    bench_pair(
        c,
        "execute/push_pop_mpls",
        &tcp,
        &[
            DpAction::PushMpls {
                lse: (100 << 12) | 0x100 | 64,
                ethertype: 0x8847,
            },
            DpAction::PopMpls { ethertype: 0x0800 },
            out.clone(),
        ],
        &[out],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = kernels
}
criterion_main!(benches);

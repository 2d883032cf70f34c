//! Criterion kernels of the action executor: the masked header rewrites
//! (with their incremental checksum updates) and the VLAN/MPLS pushes and
//! pops, on one frame that goes round and round (no allocation in the
//! loop). Each iteration runs two plans that write different values, so
//! every rewrite really changes the frame.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use flowcache::actions::{DpAction, Ipv4Fields, Ipv6Fields, Masked, PortFields, SetField};
use flowcache::extract::{extract, Offsets, PacketMeta};
use flowcache::key::FlowKey;
use pmd::execute::{ActionPlan, ExecContext};
use pmd::Packet;

const BUF: usize = 256;
const HEADROOM: usize = 64;

/// A frame in a fixed buffer with headroom.
struct BenchPacket {
    buf: [u8; BUF],
    start: usize,
    end: usize,
}

impl BenchPacket {
    fn new(frame: &[u8]) -> Self {
        let mut buf = [0u8; BUF];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        BenchPacket {
            buf,
            start: HEADROOM,
            end: HEADROOM + frame.len(),
        }
    }
}

impl Packet for BenchPacket {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn pull_front(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }
    fn try_clone(&self) -> Option<Self> {
        Some(BenchPacket { ..*self })
    }
}

/// Keeps the output packet for the next iteration.
#[derive(Default)]
struct Sink(Option<BenchPacket>);

impl ExecContext<BenchPacket> for Sink {
    fn output(&mut self, _port: u32, pkt: BenchPacket) {
        self.0 = Some(pkt);
    }
    fn recirculate(&mut self, pkt: BenchPacket, _meta: PacketMeta) {
        self.0 = Some(pkt);
    }
    fn userspace(
        &mut self,
        _cookie: flowcache::actions::UserCookie,
        pkt: BenchPacket,
        _meta: &PacketMeta,
    ) {
        self.0 = Some(pkt);
    }
    fn count_drop(&mut self, _reason: flowcache::actions::DropReason) {}
    fn random_u32(&mut self) -> u32 {
        0
    }
}

fn tcp4() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&1234u16.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[46] = 0x50;
    f
}

fn udp6() -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8 + 8];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    f[14] = 0x60;
    f[18..20].copy_from_slice(&16u16.to_be_bytes());
    f[20] = 17;
    f[21] = 64;
    f[22] = 0xfd;
    f[37] = 1;
    f[38] = 0xfd;
    f[53] = 2;
    f[54..56].copy_from_slice(&1234u16.to_be_bytes());
    f[56..58].copy_from_slice(&53u16.to_be_bytes());
    f[58..60].copy_from_slice(&16u16.to_be_bytes());
    f[60..62].copy_from_slice(&0x1234u16.to_be_bytes());
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
    let mut sink = Sink(Some(BenchPacket::new(frame)));
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
        &[out.clone()],
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

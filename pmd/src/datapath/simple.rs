//! Simple match (OVS `dp_netdev_simple_match`, widened): when every
//! megaflow that can match packets of an in_port only looks at {recirc_id,
//! in_port, dl_type, VLAN tags (only the outer one is ever parsed),
//! nw_proto, nw_frag}, the PMD skips the full extract / hash / EMC / dpcls
//! for bursts from that port: a mini-parse computes exactly those fields
//! (the values [`flowcache::extract::extract`] would give) and a tiny
//! per-port table gives the megaflow.
//!
//! OVS 3.1 leaves nw_proto out, so a rule like `in_port=1,udp` sends its
//! traffic through the EMC there; here it is a simple match too (the
//! protocol byte is one more load in the mini-parse).
//!
//! The mini-parse declines (the caller then takes the full path) for
//! anything it cannot decide as cheaply and exactly as the full path:
//! frames shorter than 14 bytes, 802.3 length fields (LLC/SNAP), IPv6, and
//! valid IPv4 TCP (whose flags the megaflow statistics need).

use flowcache::extract::ipv4_lengths;
use flowcache::key::{
    FlowKey, ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6, ETH_TYPE_MIN, ETH_TYPE_NONE,
    ETH_TYPE_RARP, ETH_TYPE_VLAN, ETH_TYPE_VLAN_8021AD, FRAG_ANY, FRAG_LATER, IPPROTO_TCP,
    VLAN_CFI,
};
use flowcache::megaflow::Megaflow;
use std::sync::Arc;

/// The simple-match fields packed in one word:
/// `dl_type << 48 | vlan tpid << 32 | vlan tci << 16 | nw_proto << 8 | nw_frag`.
#[inline(always)]
fn pack(dl_type: u16, tpid: u16, tci: u16, nw_proto: u8, nw_frag: u8) -> u64 {
    (u64::from(dl_type) << 48)
        | (u64::from(tpid) << 32)
        | (u64::from(tci) << 16)
        | (u64::from(nw_proto) << 8)
        | u64::from(nw_frag)
}

/// The simple-match fields of a key (or mask), packed.
#[inline(always)]
fn pack_key(k: &FlowKey) -> u64 {
    pack(
        k.dl_type,
        k.vlans[0].tpid,
        k.vlans[0].tci,
        k.nw_proto,
        k.nw_frag,
    )
}

/// Bytes of an Ethernet header: `extract` rejects shorter frames.
pub(crate) const ETH_HEADER_LEN: usize = 14;

/// The packed simple-match fields of `frame` exactly as `extract` (VLAN
/// limit 1) computes them, or `None` when the frame needs the full path.
///
/// Runs once per packet on the simple path, so the common frames come
/// first and each costs a handful of loads: untagged IPv4, then 802.3
/// length fields (what a zero-filled `net_null` frame is).
#[inline(always)]
pub(crate) fn mini_parse(frame: &[u8]) -> Option<u64> {
    let eth = frame.first_chunk::<ETH_HEADER_LEN>()?;
    let t0 = u16::from_be_bytes([eth[12], eth[13]]);
    if t0 == ETH_TYPE_IPV4 {
        return ipv4(&frame[14..], 0, 0);
    }
    if t0 < ETH_TYPE_MIN {
        return ieee802_3(&frame[14..], 0, 0);
    }
    let (tpid, tci, dl_type, rest) = match frame.get(12..18) {
        Some(&[_, _, c, d, e, f]) if t0 == ETH_TYPE_VLAN || t0 == ETH_TYPE_VLAN_8021AD => (
            t0,
            u16::from_be_bytes([c, d]) | VLAN_CFI,
            u16::from_be_bytes([e, f]),
            &frame[18..],
        ),
        _ => (0, 0, t0, &frame[14..]),
    };
    match dl_type {
        ETH_TYPE_IPV4 => ipv4(rest, tpid, tci),
        ETH_TYPE_IPV6 => None,
        ETH_TYPE_ARP | ETH_TYPE_RARP => {
            // extract's parse_arp: Ethernet/IPv4 ARP only, opcode <= 0xff.
            let mut op = 0;
            if let Some(a) = rest.first_chunk::<28>() {
                let code = u16::from_be_bytes([a[6], a[7]]);
                if a[..6] == [0, 1, 0x08, 0x00, 6, 4] && code <= 0xff {
                    op = code as u8;
                }
            }
            Some(pack(dl_type, tpid, tci, op, 0))
        }
        t if t < ETH_TYPE_MIN => ieee802_3(rest, tpid, tci),
        t => Some(pack(t, tpid, tci, 0, 0)),
    }
}

/// IPv4 after the L2 header(s): protocol and fragment bits when the header
/// is valid, zero when not (as extract leaves them); TCP goes to the full
/// path (its flags feed the megaflow statistics).
#[inline(always)]
fn ipv4(l3: &[u8], tpid: u16, tci: u16) -> Option<u64> {
    let (mut nw_proto, mut nw_frag) = (0, 0);
    if ipv4_lengths(l3).is_some() {
        nw_proto = l3[9];
        if nw_proto == IPPROTO_TCP {
            return None;
        }
        let ff = u16::from_be_bytes([l3[6], l3[7]]);
        if ff & 0x3fff != 0 {
            nw_frag = FRAG_ANY;
            if ff & 0x1fff != 0 {
                nw_frag |= FRAG_LATER;
            }
        }
    }
    Some(pack(ETH_TYPE_IPV4, tpid, tci, nw_proto, nw_frag))
}

/// An 802.3 length field: LLC/SNAP with the Ethernet OUI goes to the full
/// path; anything else is `ETH_TYPE_NONE` with nothing after it.
#[inline(always)]
fn ieee802_3(rest: &[u8], tpid: u16, tci: u16) -> Option<u64> {
    if let Some(h) = rest.first_chunk::<8>() {
        if h[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0] {
            return None;
        }
    }
    Some(pack(ETH_TYPE_NONE, tpid, tci, 0, 0))
}

/// How a megaflow bears on the simple-match eligibility of in_ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Matches only {recirc_id = 0, in_port = port, simple fields}.
    Simple(u32),
    /// Simple fields only but a recirc_id other than 0: never matches a
    /// freshly received packet.
    Irrelevant,
    /// Looks at other fields; only packets of this in_port can match.
    NonSimple(u32),
    /// Does not match in_port exactly: may match packets of any port.
    Global,
}

fn classify(mf: &Megaflow) -> Class {
    let mask = mf.mask();
    let key = mf.key();
    if mask.in_port != u32::MAX {
        return Class::Global;
    }
    let mut rest: FlowKey = *mask;
    rest.in_port = 0;
    rest.recirc_id = 0;
    rest.dl_type = 0;
    rest.vlans = Default::default();
    rest.nw_frag = 0;
    rest.nw_proto = 0;
    // Only the datapath words count: the OpenFlow words (metadata,
    // registers) of a mask never reach the dpcls.
    if mask.recirc_id != u32::MAX || rest.dp_words().iter().any(|w| *w != 0) {
        return Class::NonSimple(key.in_port);
    }
    // With VLAN limit 1, extract never fills the second tag: a megaflow
    // wanting a non-zero one never matches (xlate unwildcards its CFI).
    let inner = (key.vlans[1].tpid & mask.vlans[1].tpid) | (key.vlans[1].tci & mask.vlans[1].tci);
    if key.recirc_id != 0 || inner != 0 {
        return Class::Irrelevant;
    }
    Class::Simple(key.in_port)
}

/// One simple megaflow of a port, with its packed key and mask.
pub(crate) struct SimpleFlow {
    key: u64,
    mask: u64,
    pub(crate) mf: Arc<Megaflow>,
}

#[derive(Default)]
struct SimplePort {
    /// Installed megaflows of this in_port that are not simple.
    nonsimple: usize,
    flows: Vec<SimpleFlow>,
}

/// Per-in_port simple-match state, kept in step with the dpcls.
#[derive(Default)]
pub(crate) struct SimpleTable {
    /// Installed megaflows that do not match in_port exactly.
    global: usize,
    ports: Vec<SimplePort>,
}

impl SimpleTable {
    fn port_mut(&mut self, port: u32) -> &mut SimplePort {
        let i = port as usize;
        if self.ports.len() <= i {
            self.ports.resize_with(i + 1, SimplePort::default);
        }
        &mut self.ports[i]
    }

    /// Accounts a megaflow just inserted into the dpcls.
    pub(crate) fn insert(&mut self, mf: &Arc<Megaflow>) {
        match classify(mf) {
            Class::Simple(port) => {
                let (k, m) = (mf.key(), mf.mask());
                let mask = pack_key(m);
                let key = pack_key(k) & mask;
                self.port_mut(port).flows.push(SimpleFlow {
                    key,
                    mask,
                    mf: mf.clone(),
                });
            }
            Class::Irrelevant => {}
            Class::NonSimple(port) => self.port_mut(port).nonsimple += 1,
            Class::Global => self.global += 1,
        }
    }

    /// Accounts a megaflow just removed from the dpcls.
    pub(crate) fn remove(&mut self, mf: &Arc<Megaflow>) {
        match classify(mf) {
            Class::Simple(port) => {
                self.port_mut(port)
                    .flows
                    .retain(|f| !Arc::ptr_eq(&f.mf, mf));
            }
            Class::Irrelevant => {}
            Class::NonSimple(port) => {
                let p = self.port_mut(port);
                p.nonsimple = p.nonsimple.saturating_sub(1);
            }
            Class::Global => self.global = self.global.saturating_sub(1),
        }
    }

    /// Forgets everything (the dpcls was flushed).
    pub(crate) fn clear(&mut self) {
        self.global = 0;
        self.ports.clear();
    }

    /// The simple megaflows of `port` when every megaflow that can match
    /// its packets is one of them (and there is at least one).
    #[inline]
    pub(crate) fn port_flows(&self, port: u32) -> Option<&[SimpleFlow]> {
        if self.global != 0 {
            return None;
        }
        let p = self.ports.get(port as usize)?;
        if p.nonsimple != 0 || p.flows.is_empty() {
            return None;
        }
        Some(&p.flows)
    }
}

/// The megaflow of a port whose only megaflow matches every frame (its
/// mask holds none of the simple-match fields: `in_port=1
/// actions=output:2`), when it is live. Its bursts need no parsing.
#[inline(always)]
pub(crate) fn port_wide(flows: &[SimpleFlow]) -> Option<&Arc<Megaflow>> {
    match flows {
        [f] if f.mask == 0 && !f.mf.is_dead() => Some(&f.mf),
        _ => None,
    }
}

/// The one live megaflow among `flows` that matches `v` (from
/// [`mini_parse`]), or `None` when there is none or more than one (the
/// full path then decides, as the dpcls would).
#[inline(always)]
pub(crate) fn lookup(flows: &[SimpleFlow], v: u64) -> Option<&Arc<Megaflow>> {
    if let [f] = flows {
        return (v & f.mask == f.key && !f.mf.is_dead()).then_some(&f.mf);
    }
    let mut found = None;
    for f in flows {
        if v & f.mask == f.key && !f.mf.is_dead() {
            if found.is_some() {
                return None;
            }
            found = Some(&f.mf);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcache::extract::{extract, PacketMeta};

    fn full(frame: &[u8]) -> Option<u64> {
        let mut k = FlowKey::default();
        extract(frame, &PacketMeta::default(), &mut k).ok()?;
        Some(pack_key(&k))
    }

    fn eth(ty: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        f.extend_from_slice(ty);
        f.extend_from_slice(rest);
        f
    }

    fn ipv4(proto: u8, frag: u16, ihl: u8, tot: u16, extra: usize) -> Vec<u8> {
        let mut h = vec![0u8; 20 + extra];
        h[0] = 0x40 | ihl;
        h[2..4].copy_from_slice(&tot.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[9] = proto;
        h
    }

    #[test]
    fn mini_parse_agrees_with_extract() {
        let mut frames = vec![
            vec![0u8; 14],
            vec![0u8; 64],
            eth(&[0x08, 0x06], &[0; 28]),
            eth(&[0x88, 0x47], &[0; 8]),
            eth(&[0x81, 0x00], &[0x20, 0x05]),
            eth(&[0x81, 0x00], &[0x20, 0x05, 0x08, 0x06]),
            eth(
                &[0x88, 0xa8],
                &[0x30, 0x07, 0x81, 0x00, 0x00, 0x01, 0x08, 0x00],
            ),
            eth(&[0x81, 0x00], &[0xf0, 0x07, 0x08, 0x00]),
        ];
        for &(frag, ihl, tot, extra) in &[
            (0u16, 5u8, 28u16, 8usize),
            (0, 5, 28, 40),      // Ethernet padding after the datagram
            (0x2000, 5, 20, 30), // header-only first fragment, padded
            (0x2000, 5, 28, 8),
            (0x0010, 5, 28, 8),
            (0x4000, 5, 28, 8),
            (0x2000, 4, 28, 8),
            (0x2000, 6, 28, 8),
            (0x2000, 5, 200, 8),
            (0x2000, 5, 10, 8),
            (0x2000, 5, 20, 0),
        ] {
            let ip = ipv4(17, frag, ihl, tot, extra);
            frames.push(eth(&[0x08, 0x00], &ip));
            let mut v = vec![0x81, 0x00, 0x00, 0x0a, 0x08, 0x00];
            v.extend_from_slice(&ip);
            frames.push(eth(&v[..2], &v[2..]));
        }
        frames.push(eth(&[0x08, 0x00], &[0x45; 10]));
        // ARP/RARP: the opcode is nw_proto only for Ethernet/IPv4 ARP and
        // opcodes up to 0xff.
        for (ty, hdr, op) in [
            (0x0806u16, [0u8, 1, 8, 0, 6, 4], 1u16),
            (0x8035, [0, 1, 8, 0, 6, 4], 4),
            (0x0806, [0, 1, 8, 0, 6, 4], 0x0102),
            (0x0806, [0, 6, 8, 0, 6, 4], 2),
        ] {
            let mut a = vec![0u8; 28];
            a[..6].copy_from_slice(&hdr);
            a[6..8].copy_from_slice(&op.to_be_bytes());
            frames.push(eth(&ty.to_be_bytes(), &a));
            frames.push(eth(&ty.to_be_bytes(), &a[..27]));
        }
        // ICMP and an unknown protocol.
        frames.push(eth(&[0x08, 0x00], &ipv4(1, 0, 5, 28, 8)));
        frames.push(eth(&[0x08, 0x00], &ipv4(200, 0, 5, 28, 8)));
        // A fragment behind a wrong version nibble: not IPv4 for extract.
        let mut v6nibble = ipv4(17, 0x2000, 5, 28, 8);
        v6nibble[0] = 0x65;
        frames.push(eth(&[0x08, 0x00], &v6nibble));
        frames.push(eth(&[0x00, 0x40], &[0xaa, 0xaa, 0x03, 0, 0, 1, 8, 0]));
        frames.push(eth(&[0x00, 0x40], &[0xaa, 0xaa, 0x03, 0, 0, 0, 8]));
        frames.push(eth(&[0x81, 0x00], &[0, 1, 0x00, 0x40, 0xaa, 0xaa, 0x03]));
        frames.push(eth(&[0x05, 0xff], &[0; 40]));
        let n = frames.iter().filter(|f| mini_parse(f).is_some()).count();
        assert!(n >= 20, "only {n} frames took the simple path");
        for f in &frames {
            if let Some(v) = mini_parse(f) {
                assert_eq!(Some(v), full(f), "frame {f:02x?}");
            }
        }
        // Declined: too short, LLC/SNAP, IPv6, valid IPv4 TCP.
        assert_eq!(mini_parse(&[0u8; 13]), None);
        let snap = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        assert_eq!(mini_parse(&eth(&[0x00, 0x40], &snap)), None);
        assert_eq!(mini_parse(&eth(&[0x86, 0xdd], &[0; 50])), None);
        assert_eq!(
            mini_parse(&eth(&[0x08, 0x00], &ipv4(6, 0, 5, 40, 20))),
            None
        );
        // But accepted for the common cases.
        assert!(mini_parse(&[0u8; 64]).is_some());
        assert!(mini_parse(&eth(&[0x08, 0x00], &ipv4(17, 0, 5, 28, 8))).is_some());
    }

    proptest::proptest! {
        /// On any frame the mini-parse accepts, it agrees with the full
        /// extractor. The frames start with one of the Ethernet types the
        /// mini-parse branches on (behind an optional tag) so that every
        /// branch sees mutated headers, not just random bytes.
        #[test]
        fn mini_parse_agrees_with_extract_on_any_frame(
            tag in proptest::sample::select(vec![None, Some(0x8100u16), Some(0x88a8)]),
            tci in proptest::num::u16::ANY,
            ty in proptest::sample::select(vec![
                0x0800u16, 0x0806, 0x8035, 0x86dd, 0x8847, 0x0040, 0x05ff, 0x0600, 0x1234,
            ]),
            vihl in proptest::sample::select(vec![0x45u8, 0x44, 0x46, 0x4f, 0x65, 0x00]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            padding in proptest::option::of(0usize..12),
        ) {
            let mut f = vec![0u8; 12];
            if let Some(tpid) = tag {
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&tci.to_be_bytes());
            }
            f.extend_from_slice(&ty.to_be_bytes());
            f.extend_from_slice(&body);
            if ty == 0x0800 && !body.is_empty() {
                let l3 = f.len() - body.len();
                f[l3] = vihl;
                // A consistent total length now and then, so that valid
                // headers (and their fragment bits) are exercised too.
                if let (Some(pad), true) = (padding, body.len() >= 4) {
                    let total = body.len().saturating_sub(pad) as u16;
                    f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
                }
            }
            for len in [f.len(), f.len().min(14), f.len().min(18), f.len().min(34)] {
                let frame = &f[..len];
                if let Some(v) = mini_parse(frame) {
                    proptest::prop_assert_eq!(Some(v), full(frame), "frame {:02x?}", frame);
                }
            }
        }
    }
}

//! Packet builders for the tracker tests (Ethernet + IPv4/IPv6 + L4 with
//! correct checksums).

#![allow(dead_code)]

pub const L3: usize = 14;

fn csum(mut acc: u32, d: &[u8]) -> u32 {
    for c in d.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        acc += u32::from(w);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// IPv4 packet with `proto` and L4 bytes `l4` (checksum field zero; it is
/// computed here at `csum_at` within L4 unless `None`).
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    mut l4: Vec<u8>,
    csum_at: Option<usize>,
) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12] = 0x08;
    let total = 20 + l4.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = fold(csum(0, &ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    if let Some(at) = csum_at {
        let mut acc = 0;
        if proto != 1 {
            acc = csum(acc, &src);
            acc = csum(acc, &dst);
            acc += u32::from(proto) + l4.len() as u32;
        }
        let c = fold(csum(acc, &l4));
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], proto: u8, mut l4: Vec<u8>, csum_at: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12] = 0x86;
    f[13] = 0xdd;
    let len = l4.len();
    let mut ip = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, proto, 64];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let mut acc = csum(0, &src);
    acc = csum(acc, &dst);
    acc += len as u32 + u32::from(proto);
    let c = fold(csum(acc, &l4));
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

pub fn udp_l4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut l4 = vec![0u8; 8];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    l4.extend_from_slice(payload);
    l4
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    ipv4(src, dst, 17, udp_l4(sport, dport, b"hello"), Some(6))
}

pub fn tcp_l4(sport: u16, dport: u16, seq: u32, ack: u32, flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; 20];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..8].copy_from_slice(&seq.to_be_bytes());
    l4[8..12].copy_from_slice(&ack.to_be_bytes());
    l4[12] = 5 << 4;
    l4[13] = flags as u8;
    l4[14..16].copy_from_slice(&64240u16.to_be_bytes());
    l4.extend_from_slice(payload);
    l4
}

#[allow(clippy::too_many_arguments)]
pub fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    payload: &[u8],
) -> Vec<u8> {
    ipv4(
        src,
        dst,
        6,
        tcp_l4(sport, dport, seq, ack, flags, payload),
        Some(16),
    )
}

pub fn icmp4(src: [u8; 4], dst: [u8; 4], ty: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let mut l4 = vec![ty, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 1];
    l4.extend_from_slice(body);
    ipv4(src, dst, 1, l4, Some(2))
}

/// An ICMP error of `ty` from `src` to `dst` quoting `quoted` (a whole
/// frame: its IP header and the first 8 bytes after it).
pub fn icmp4_error(src: [u8; 4], dst: [u8; 4], ty: u8, quoted: &[u8]) -> Vec<u8> {
    let ihl = usize::from(quoted[L3] & 0x0f) * 4;
    let body = &quoted[L3..L3 + ihl + 8];
    let mut l4 = vec![ty, 0, 0, 0, 0, 0, 0, 0];
    l4.extend_from_slice(body);
    ipv4(src, dst, 1, l4, Some(2))
}

pub fn udp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    ipv6(src, dst, 17, udp_l4(sport, dport, b"hi"), 6)
}

pub const FIN: u16 = 0x01;
pub const SYN: u16 = 0x02;
pub const RST: u16 = 0x04;
pub const PSH: u16 = 0x08;
pub const ACK: u16 = 0x10;

//! Zero-copy typed views of protocol headers (smoltcp style).
//!
//! Every view wraps a buffer `T: AsRef<[u8]>` that starts at the header.
//! [`new_checked`](ethernet::Frame::new_checked) verifies once that the
//! buffer holds the fixed part of the header, after which the accessors
//! index constant offsets (the compiler drops the per-access bounds checks
//! once the length check is inlined).  `new_unchecked` skips the check; its
//! accessors panic on a short buffer, as in smoltcp.  Setters exist for
//! `T: AsRef<[u8]> + AsMut<[u8]>`.
//!
//! Integers are read and written in network byte order and returned in host
//! order; addresses are returned as byte arrays in network order (the
//! [`FlowKey`](crate::key::FlowKey) representation).
//!
//! A field may also name its offset as a module constant
//! (`checksum, set_checksum, CHECKSUM: u16 @ 10;` gives `ipv4::CHECKSUM`):
//! for code that updates a field in place from the frame's raw bytes (the
//! executor's incremental checksums), so that the layout is still written
//! only here.
//!
//! One module per protocol: [`ethernet`], [`vlan`], [`llc`], [`mpls`],
//! [`arp`], [`ipv4`], [`ipv6`], [`tcp`], [`udp`], [`sctp`], [`icmp`],
//! [`icmpv6`].

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod llc;
pub mod mpls;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vlan;

/// The buffer is shorter than the fixed part of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("buffer too short for the header")]
pub struct Truncated;

/// Defines a header view type with `new_unchecked`, `new_checked`,
/// `check_len`, `into_inner`, `as_bytes`, and one getter/setter pair per
/// fixed-offset field (and its offset as a constant when one is named).
macro_rules! header_view {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident, HEADER_LEN = $len:expr;
        $(
            $(#[$fmeta:meta])*
            $get:ident, $set:ident $(, $konst:ident)?: $kind:ident @ $off:expr;
        )*
    ) => {
        $($(
            #[doc = concat!("Offset of [`", stringify!($name), "::", stringify!($get), "`] in the header.")]
            pub const $konst: usize = $off;
        )?)*

        $(#[$smeta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Length of the fixed part of the header.
            pub const HEADER_LEN: usize = $len;

            /// Wraps `buffer` without checking its length (accessors panic
            /// on a short buffer).
            #[inline(always)]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps `buffer` after checking that it holds the fixed part
            /// of the header.
            #[inline(always)]
            pub fn new_checked(buffer: T) -> Result<Self, $crate::wire::Truncated> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// Checks that the buffer holds the fixed part of the header.
            #[inline(always)]
            pub fn check_len(&self) -> Result<(), $crate::wire::Truncated> {
                if self.buffer.as_ref().len() < Self::HEADER_LEN {
                    Err($crate::wire::Truncated)
                } else {
                    Ok(())
                }
            }

            /// The wrapped buffer.
            #[inline(always)]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The whole buffer (header and whatever follows).
            #[inline(always)]
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            $(
                $(#[$fmeta])*
                #[inline(always)]
                pub fn $get(&self) -> header_view!(@ty $kind) {
                    header_view!(@get $kind, self.buffer.as_ref(), $off)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $(
                #[doc = concat!("Sets the field read by [`", stringify!($get), "`](Self::", stringify!($get), ").")]
                #[inline(always)]
                pub fn $set(&mut self, value: header_view!(@ty $kind)) {
                    header_view!(@set $kind, self.buffer.as_mut(), $off, value)
                }
            )*

            /// The whole buffer, mutably.
            #[inline(always)]
            pub fn as_bytes_mut(&mut self) -> &mut [u8] {
                self.buffer.as_mut()
            }
        }
    };

    (@ty u8) => { u8 };
    (@ty u16) => { u16 };
    (@ty u32) => { u32 };
    (@ty mac) => { [u8; 6] };
    (@ty ip4) => { [u8; 4] };
    (@ty ip6) => { [u8; 16] };

    (@get u8, $b:expr, $off:expr) => { $b[$off] };
    (@get u16, $b:expr, $off:expr) => {{
        let b = $b;
        u16::from_be_bytes([b[$off], b[$off + 1]])
    }};
    (@get u32, $b:expr, $off:expr) => {{
        let b = $b;
        u32::from_be_bytes([b[$off], b[$off + 1], b[$off + 2], b[$off + 3]])
    }};
    (@get mac, $b:expr, $off:expr) => {{
        let b: [u8; 6] = $b[$off..$off + 6].try_into().unwrap();
        b
    }};
    (@get ip4, $b:expr, $off:expr) => {{
        let b: [u8; 4] = $b[$off..$off + 4].try_into().unwrap();
        b
    }};
    (@get ip6, $b:expr, $off:expr) => {{
        let b: [u8; 16] = $b[$off..$off + 16].try_into().unwrap();
        b
    }};

    (@set u8, $b:expr, $off:expr, $v:expr) => { $b[$off] = $v };
    (@set u16, $b:expr, $off:expr, $v:expr) => { $b[$off..$off + 2].copy_from_slice(&$v.to_be_bytes()) };
    (@set u32, $b:expr, $off:expr, $v:expr) => { $b[$off..$off + 4].copy_from_slice(&$v.to_be_bytes()) };
    (@set mac, $b:expr, $off:expr, $v:expr) => { $b[$off..$off + 6].copy_from_slice(&$v) };
    (@set ip4, $b:expr, $off:expr, $v:expr) => { $b[$off..$off + 4].copy_from_slice(&$v) };
    (@set ip6, $b:expr, $off:expr, $v:expr) => { $b[$off..$off + 16].copy_from_slice(&$v) };
}

pub(crate) use header_view;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_views_and_setters() {
        assert_eq!(ipv4::Packet::new_checked(&[0u8; 19][..]), Err(Truncated));
        let mut buf = [0u8; 20];
        let mut ip = ipv4::Packet::new_checked(&mut buf[..]).unwrap();
        ip.set_version_ihl(0x45);
        ip.set_total_len(0x1234);
        ip.set_src_addr([10, 0, 0, 1]);
        ip.set_flags_frag_off(0x2000);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.version(), 4);
        assert!(ip.is_fragment() && !ip.is_later_fragment());
        assert_eq!(&buf[2..4], &[0x12, 0x34]);
        assert_eq!(&buf[12..16], &[10, 0, 0, 1]);

        let mut t = [0u8; 20];
        let mut tcp = tcp::Packet::new_unchecked(&mut t[..]);
        tcp.set_offset_flags(0x5fff);
        assert_eq!((tcp.header_len(), tcp.flags()), (20, 0xfff));

        let v6 = [0x6b, 0x9f, 0xed, 0xcb];
        let mut b = [0u8; 40];
        b[..4].copy_from_slice(&v6);
        let p = ipv6::Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0xb9, 0xfedcb)
        );

        let f = ipv6::Fragment::new_unchecked([17u8, 0, 0x01, 0x29, 0, 0, 0, 1]);
        assert_eq!((f.offset(), f.more_fragments()), (37, true));

        let l = mpls::Lse::new_unchecked(((100u32 << 12) | (5 << 9) | 0x100 | 64).to_be_bytes());
        assert_eq!((l.label(), l.tc(), l.bos(), l.ttl()), (100, 5, true, 64));

        let tag = vlan::Tag::new_unchecked([0x81, 0x00, 0xb0, 0x64]);
        assert_eq!(
            (tag.tpid(), tag.pcp(), tag.dei(), tag.vid()),
            (0x8100, 5, true, 100)
        );

        let snap = llc::LlcSnap::new_unchecked([0xaa, 0xaa, 3, 0, 0, 0, 8, 0]);
        assert!(snap.is_ethernet_snap());
        assert_eq!(snap.ethertype(), 0x0800);
    }
}

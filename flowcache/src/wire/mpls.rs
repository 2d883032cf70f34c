//! MPLS label stack entry (RFC 3032).

use super::header_view;
use crate::key::{MPLS_BOS_MASK, MPLS_LABEL_SHIFT, MPLS_TC_MASK, MPLS_TC_SHIFT, MPLS_TTL_MASK};

header_view! {
    /// One label stack entry.
    pub struct Lse, HEADER_LEN = 4;
    /// The whole entry as a host-order u32 (label, TC, S, TTL).
    value, set_value: u32 @ 0;
}

impl<T: AsRef<[u8]>> Lse<T> {
    /// 20-bit label.
    #[inline(always)]
    pub fn label(&self) -> u32 {
        self.value() >> MPLS_LABEL_SHIFT
    }

    /// Traffic class.
    #[inline(always)]
    pub fn tc(&self) -> u8 {
        ((self.value() & MPLS_TC_MASK) >> MPLS_TC_SHIFT) as u8
    }

    /// Bottom-of-stack bit.
    #[inline(always)]
    pub fn bos(&self) -> bool {
        self.value() & MPLS_BOS_MASK != 0
    }

    /// TTL.
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        (self.value() & MPLS_TTL_MASK) as u8
    }
}

//! The TCP state machine with sequence and window tracking, modelled on
//! OVS `lib/conntrack-tcp.c` (itself from OpenBSD pf): each peer's highest
//! sequence sent (`seqlo`), the highest the other end may send (`seqhi`),
//! its largest window and window scale; a segment must fall inside the
//! window (segments without payload are not sequence-checked).

use crate::packet::{
    TcpInfo, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, WSCALE_FLAG, WSCALE_MASK,
    WSCALE_UNKNOWN,
};
use crate::timeout::Timeout;

/// Per-peer TCP states (OVS `CT_DPIF_TCPS_*`, in this order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TcpState {
    #[default]
    Closed = 0,
    Listen,
    SynSent,
    SynRecv,
    Established,
    CloseWait,
    FinWait1,
    Closing,
    LastAck,
    FinWait2,
    TimeWait,
}

impl TcpState {
    /// The name `dump-conntrack` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }
}

/// One end of a TCP connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpPeer {
    pub seqlo: u32,
    pub seqhi: u32,
    pub max_win: u32,
    pub wscale: u8,
    pub state: TcpState,
}

/// Both ends: `[original direction sender, reply direction sender]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpConn {
    pub peer: [TcpPeer; 2],
}

/// What a segment does to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// In window: the connection goes on (the timeout to use).
    Valid(Timeout),
    /// Out of window or bad flags.
    Invalid,
    /// A SYN after both ends closed: the old connection is over and this
    /// segment starts a new one.
    New,
}

const MAX_ACK_WINDOW: i64 = 0xffff + 1500;

fn seq_geq(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Flag combinations no TCP sends (pf's normalisation check).
pub fn invalid_flags(f: u16) -> bool {
    if f & TCP_SYN != 0 {
        if f & (TCP_RST | TCP_FIN) != 0 {
            return true;
        }
    } else if f & (TCP_ACK | TCP_RST) == 0 {
        return true;
    }
    f & TCP_ACK == 0 && f & (TCP_FIN | TCP_PSH | TCP_URG) != 0
}

/// May this segment start a connection? (Not a SYN-ACK, sane flags.)
pub fn valid_new(t: &TcpInfo) -> bool {
    let syn_ack = t.flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK;
    !invalid_flags(t.flags) && !syn_ack
}

impl TcpConn {
    /// The state after the segment that creates the connection.
    pub fn new(t: &TcpInfo) -> TcpConn {
        let mut src = TcpPeer {
            seqlo: t.seq,
            seqhi: t.seq.wrapping_add(t.payload).wrapping_add(1),
            ..TcpPeer::default()
        };
        let mut dst = TcpPeer::default();
        if t.flags & TCP_SYN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
            src.wscale = t.wscale;
        } else {
            src.wscale = WSCALE_UNKNOWN;
            dst.wscale = WSCALE_UNKNOWN;
        }
        src.max_win = u32::from(t.win).max(1);
        let sws = src.wscale & WSCALE_MASK;
        if sws != 0 {
            src.max_win = src.max_win.div_ceil(1 << sws);
        }
        if t.flags & TCP_FIN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
        }
        dst.seqhi = 1;
        dst.max_win = 1;
        src.state = TcpState::SynSent;
        dst.state = TcpState::Closed;
        TcpConn { peer: [src, dst] }
    }

    /// Runs a segment from the original (`reply == false`) or reply side.
    pub fn update(&mut self, t: &TcpInfo, reply: bool) -> Update {
        let flags = t.flags;
        if invalid_flags(flags) {
            return Update::Invalid;
        }
        let (si, di) = if reply { (1, 0) } else { (0, 1) };
        let [p0, p1] = &mut self.peer;
        let (src, dst) = if si == 0 { (p0, p1) } else { (p1, p0) };

        if flags & (TCP_SYN | TCP_ACK) == TCP_SYN
            && dst.state >= TcpState::FinWait2
            && src.state >= TcpState::FinWait2
        {
            src.state = TcpState::Closed;
            dst.state = TcpState::Closed;
            return Update::New;
        }
        let _ = di;

        let syn = flags & TCP_SYN != 0;
        let (mut sws, mut dws) = (0u8, 0u8);
        if src.wscale & WSCALE_FLAG != 0 && dst.wscale & WSCALE_FLAG != 0 && !syn {
            sws = src.wscale & WSCALE_MASK;
            dws = dst.wscale & WSCALE_MASK;
        } else if src.wscale & WSCALE_UNKNOWN != 0 && dst.wscale & WSCALE_UNKNOWN != 0 && !syn {
            sws = 14;
            dws = 14;
        }

        let mut win = u32::from(t.win);
        let orig_seq = t.seq;
        let mut seq = t.seq;
        let mut ack = t.ack;
        let mut end;
        let mut check_ackskew = true;
        if src.state < TcpState::SynSent {
            // The first segment from this end.
            end = seq.wrapping_add(t.payload);
            if syn {
                end = end.wrapping_add(1);
                if dst.wscale & WSCALE_FLAG != 0 {
                    src.wscale = t.wscale;
                    if src.wscale & WSCALE_FLAG != 0 {
                        sws = src.wscale & WSCALE_MASK;
                        win = win.div_ceil(1 << sws);
                        dws = dst.wscale & WSCALE_MASK;
                    } else {
                        dst.max_win <<= dst.wscale & WSCALE_MASK;
                        dst.wscale = 0;
                    }
                }
            }
            if flags & TCP_FIN != 0 {
                end = end.wrapping_add(1);
            }
            src.seqlo = seq;
            src.state = TcpState::SynSent;
            let reach = end.wrapping_add((dst.max_win << dws).max(1));
            if src.seqhi == 1 || seq_geq(reach, src.seqhi) {
                src.seqhi = reach;
                check_ackskew = false;
            }
            if win > src.max_win {
                src.max_win = win;
            }
        } else {
            end = seq.wrapping_add(t.payload);
            if syn {
                end = end.wrapping_add(1);
            }
            if flags & TCP_FIN != 0 {
                end = end.wrapping_add(1);
            }
        }

        if flags & TCP_ACK == 0 || (ack == 0 && flags & (TCP_ACK | TCP_RST) == TCP_ACK | TCP_RST) {
            ack = dst.seqlo;
        }
        if seq == end {
            // No data: no sequence check.
            seq = src.seqlo;
            end = seq;
        }

        let ackskew: i64 = if check_ackskew {
            i64::from(dst.seqlo.wrapping_sub(ack) as i32)
        } else {
            0
        };
        let back = src.seqlo.wrapping_sub(dst.max_win << dws);
        let in_window = seq_geq(src.seqhi, end)
            && seq_geq(seq, back)
            && ackskew >= -MAX_ACK_WINDOW
            && ackskew <= (MAX_ACK_WINDOW << sws)
            && (flags & TCP_RST == 0
                || orig_seq == src.seqlo
                || orig_seq == src.seqlo.wrapping_add(1)
                || orig_seq.wrapping_add(1) == src.seqlo);
        let wsend = win << sws;
        if in_window {
            if src.max_win < win {
                src.max_win = win;
            }
            if seq_gt(end, src.seqlo) {
                src.seqlo = end;
            }
            if seq_geq(ack.wrapping_add(wsend), dst.seqhi) {
                dst.seqhi = ack.wrapping_add(wsend.max(1));
            }
            if syn && src.state < TcpState::SynSent {
                src.state = TcpState::SynSent;
            }
            if flags & TCP_FIN != 0 && src.state < TcpState::Closing {
                src.state = TcpState::Closing;
            }
            if flags & TCP_ACK != 0 {
                if dst.state == TcpState::SynSent {
                    dst.state = TcpState::Established;
                } else if dst.state == TcpState::Closing {
                    dst.state = TcpState::FinWait2;
                }
            }
            if flags & TCP_RST != 0 {
                src.state = TcpState::TimeWait;
                dst.state = TcpState::TimeWait;
            }
            let tm = if src.state >= TcpState::FinWait2 && dst.state >= TcpState::FinWait2 {
                Timeout::TcpClosed
            } else if src.state >= TcpState::Closing && dst.state >= TcpState::Closing {
                Timeout::TcpFinWait
            } else if src.state < TcpState::Established || dst.state < TcpState::Established {
                Timeout::TcpOpening
            } else if src.state >= TcpState::Closing || dst.state >= TcpState::Closing {
                Timeout::TcpClosing
            } else {
                Timeout::TcpEstablished
            };
            Update::Valid(tm)
        } else if (dst.state < TcpState::SynSent
            || dst.state >= TcpState::FinWait2
            || src.state >= TcpState::FinWait2)
            && seq_geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW as u32), end)
            && seq_geq(seq, src.seqlo.wrapping_sub(MAX_ACK_WINDOW as u32))
        {
            // Loose tracking: shotgunned SYNs, a connection picked up after
            // a flush, stray segments after the close. The timeout is not
            // refreshed.
            if src.max_win < win {
                src.max_win = win;
            }
            if seq_gt(end, src.seqlo) {
                src.seqlo = end;
            }
            if seq_geq(ack.wrapping_add(wsend), dst.seqhi) {
                dst.seqhi = ack.wrapping_add(wsend.max(1));
            }
            if flags & TCP_FIN != 0 && src.state < TcpState::Closing {
                src.state = TcpState::Closing;
            }
            if flags & TCP_RST != 0 {
                src.state = TcpState::TimeWait;
                dst.state = TcpState::TimeWait;
            }
            Update::Valid(Timeout::Keep)
        } else {
            Update::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, ack: u32, flags: u16, payload: u32) -> TcpInfo {
        TcpInfo {
            seq,
            ack,
            flags,
            win: 1000,
            wscale: 0,
            payload,
        }
    }

    #[test]
    fn handshake_data_and_close() {
        let syn = seg(100, 0, TCP_SYN, 0);
        assert!(valid_new(&syn));
        let mut c = TcpConn::new(&syn);
        assert!(matches!(
            c.update(&seg(500, 101, TCP_SYN | TCP_ACK, 0), true),
            Update::Valid(_)
        ));
        assert!(matches!(
            c.update(&seg(101, 501, TCP_ACK, 0), false),
            Update::Valid(Timeout::TcpEstablished)
        ));
        assert_eq!(c.peer[0].state, TcpState::Established);
        assert_eq!(c.peer[1].state, TcpState::Established);
        assert!(matches!(
            c.update(&seg(101, 501, TCP_ACK | TCP_PSH, 10), false),
            Update::Valid(_)
        ));
        // Data far outside the window is invalid; an empty segment is not checked.
        assert_eq!(
            c.update(&seg(101 + 1_000_000, 501, TCP_ACK, 10), false),
            Update::Invalid
        );
        assert!(matches!(
            c.update(&seg(101 + 1_000_000, 501, TCP_ACK, 0), false),
            Update::Valid(_)
        ));
        assert!(matches!(
            c.update(&seg(111, 501, TCP_ACK | TCP_FIN, 0), false),
            Update::Valid(_)
        ));
        assert!(matches!(
            c.update(&seg(501, 112, TCP_ACK | TCP_FIN, 0), true),
            Update::Valid(_)
        ));
        assert!(matches!(
            c.update(&seg(112, 502, TCP_ACK, 0), false),
            Update::Valid(Timeout::TcpClosed)
        ));
        // A new SYN after both ends closed starts over.
        assert_eq!(c.update(&seg(9000, 0, TCP_SYN, 0), false), Update::New);
    }

    #[test]
    fn bad_flags() {
        assert!(invalid_flags(TCP_SYN | TCP_FIN));
        assert!(invalid_flags(0));
        assert!(invalid_flags(TCP_FIN));
        assert!(!invalid_flags(TCP_ACK));
        assert!(!valid_new(&seg(1, 1, TCP_SYN | TCP_ACK, 0)));
        assert!(valid_new(&seg(1, 1, TCP_ACK, 0)));
    }
}

//! Timeouts per protocol and state, with OVS's userspace defaults
//! (`lib/conntrack-tp.c`).

/// Which timeout a connection is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timeout {
    /// Leave the expiry as it is.
    Keep,
    TcpFirst,
    TcpOpening,
    TcpEstablished,
    TcpClosing,
    TcpFinWait,
    TcpClosed,
    OtherFirst,
    OtherMultiple,
    OtherBidir,
    IcmpFirst,
    IcmpReply,
}

impl Timeout {
    /// The default in milliseconds.
    pub fn default_ms(self) -> u64 {
        let s = match self {
            Timeout::Keep => 0,
            Timeout::TcpFirst => 30,
            Timeout::TcpOpening => 30,
            Timeout::TcpEstablished => 24 * 60 * 60,
            Timeout::TcpClosing => 15 * 60,
            Timeout::TcpFinWait => 45,
            Timeout::TcpClosed => 30,
            Timeout::OtherFirst => 60,
            Timeout::OtherMultiple => 60,
            Timeout::OtherBidir => 30,
            Timeout::IcmpFirst => 60,
            Timeout::IcmpReply => 30,
        };
        s * 1000
    }
}

//! OpenFlow port numbering: the OpenFlow 1.0 (16-bit) numbers of the
//! reserved ports, their names as `ovs-ofctl` writes them, and their
//! [`OutputPort`] destinations. The flow parser, the formatter, the
//! translator (`output:NXM_NX_REG0[]`, `bundle`) and `learn` all map
//! through here; OpenFlow 1.3's 32-bit numbers are these with the upper
//! 16 bits set (see `openflow::actions`).

use crate::rule::OutputPort;

/// The first reserved port number: real ports are below it.
pub const OFPP_MAX: u32 = 0xff00;
pub const OFPP_IN_PORT: u32 = 0xfff8;
pub const OFPP_TABLE: u32 = 0xfff9;
pub const OFPP_NORMAL: u32 = 0xfffa;
pub const OFPP_FLOOD: u32 = 0xfffb;
pub const OFPP_ALL: u32 = 0xfffc;
pub const OFPP_CONTROLLER: u32 = 0xfffd;
pub const OFPP_LOCAL: u32 = 0xfffe;
pub const OFPP_NONE: u32 = 0xffff;

/// The reserved ports' names (`ofputil_port_from_string`), each number's
/// first name the one OVS prints.
pub(crate) const PORT_NAMES: [(&str, u32); 9] = [
    ("IN_PORT", OFPP_IN_PORT),
    ("TABLE", OFPP_TABLE),
    ("NORMAL", OFPP_NORMAL),
    ("FLOOD", OFPP_FLOOD),
    ("ALL", OFPP_ALL),
    ("CONTROLLER", OFPP_CONTROLLER),
    ("LOCAL", OFPP_LOCAL),
    ("ANY", OFPP_NONE),
    ("NONE", OFPP_NONE),
];

/// The reserved ports that are output destinations, with their numbers.
const RESERVED: [(OutputPort, u32); 7] = [
    (OutputPort::InPort, OFPP_IN_PORT),
    (OutputPort::Table, OFPP_TABLE),
    (OutputPort::Normal, OFPP_NORMAL),
    (OutputPort::Flood, OFPP_FLOOD),
    (OutputPort::All, OFPP_ALL),
    (OutputPort::Controller, OFPP_CONTROLLER),
    (OutputPort::Local, OFPP_LOCAL),
];

impl OutputPort {
    /// The destination a reserved port number names (`None` for real
    /// port numbers, `OFPP_NONE` and unassigned reserved numbers).
    pub fn reserved(p: u32) -> Option<OutputPort> {
        RESERVED.iter().find(|(_, n)| *n == p).map(|(o, _)| *o)
    }

    /// The OpenFlow 1.0 number of the port.
    pub fn ofp10_number(&self) -> u32 {
        match self {
            OutputPort::Port(n) => *n,
            reserved => RESERVED
                .iter()
                .find(|(o, _)| o == reserved)
                .map_or(OFPP_NONE, |(_, n)| *n),
        }
    }

    /// The name `ovs-ofctl` prints for a reserved port (`None` for a
    /// numbered one).
    pub fn reserved_name(&self) -> Option<&'static str> {
        if let OutputPort::Port(_) = self {
            return None;
        }
        let n = self.ofp10_number();
        PORT_NAMES.iter().find(|(_, v)| *v == n).map(|(s, _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_round_trip() {
        for (o, n) in RESERVED {
            assert_eq!(OutputPort::reserved(n), Some(o));
            assert_eq!(o.ofp10_number(), n);
            assert!(o.reserved_name().is_some());
        }
        assert_eq!(OutputPort::reserved(OFPP_NONE), None);
        assert_eq!(OutputPort::reserved(7), None);
        assert_eq!(OutputPort::Port(7).reserved_name(), None);
        assert_eq!(OutputPort::Controller.reserved_name(), Some("CONTROLLER"));
    }
}

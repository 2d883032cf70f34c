//! The NORMAL action: the L2 learning switch (OVS `xlate_normal` in
//! `ofproto/ofproto-dpif-xlate.c`), and the VLAN configuration of ports
//! it obeys.
//!
//! Order, as OVS 3.1: dl_src, dl_dst and the VLAN VID go into the megaflow;
//! a frame with a partial VLAN tag, a VID its input port does not carry, or
//! a reserved-multicast destination (01:80:c2:00:00:0x, ...) is dropped;
//! the source is learned on the (possibly rewritten) `in_port` in the
//! frame's VLAN; then a destination learned on another port gets one copy,
//! one learned on the input port is dropped, and anything else floods to
//! every port of the VLAN but the input one (skipping `no-flood` ports).
//! Each copy leaves tagged or untagged as its output port's mode says.

use super::Ctx;
use crate::mac_learning::{is_multicast, is_reserved, MacTable};
use flowcache::key::{VlanTag, ETH_TYPE_VLAN, VLAN_CFI, VLAN_VID_MASK};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// OVS port `vlan_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged in and out, inside the switch in VLAN `tag`.
    Access,
    /// Tagged frames of the trunked VLANs (all by default).
    #[default]
    Trunk,
    /// Trunk; untagged frames are in VLAN `tag`, which leaves untagged.
    NativeUntagged,
    /// Trunk; untagged frames are in VLAN `tag`, which leaves tagged.
    NativeTagged,
}

/// The VLAN settings of one port (`--port NAME=DEV,tag=N,trunks=...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortVlan {
    pub mode: VlanMode,
    pub tag: u16,
    /// Trunked VLANs; `None` is all of them.
    pub trunks: Option<BTreeSet<u16>>,
    /// FLOOD and NORMAL's flooding skip the port (ALL does not).
    pub no_flood: bool,
}

impl PortVlan {
    /// OVS `xbundle_trunks_vlan`.
    fn trunks_vlan(&self, vlan: u16) -> bool {
        self.mode != VlanMode::Access && self.trunks.as_ref().is_none_or(|t| t.contains(&vlan))
    }

    /// OVS `xbundle_includes_vlan`.
    pub fn includes_vlan(&self, vlan: u16) -> bool {
        match self.mode {
            VlanMode::Access => vlan == self.tag,
            VlanMode::Trunk => self.trunks_vlan(vlan),
            VlanMode::NativeTagged | VlanMode::NativeUntagged => {
                vlan == self.tag || self.trunks_vlan(vlan)
            }
        }
    }

    /// OVS `input_vid_is_valid` + `input_vid_to_vlan`: the VLAN a frame
    /// with VID `vid` (0: untagged) received here belongs to.
    pub fn input_vlan(&self, vid: u16) -> Result<u16, String> {
        match self.mode {
            VlanMode::Access if vid != 0 => Err(format!(
                "dropping VLAN {vid} tagged packet received on port configured as VLAN {} access port",
                self.tag
            )),
            VlanMode::Access => Ok(self.tag),
            VlanMode::NativeTagged | VlanMode::NativeUntagged if vid == 0 => Ok(self.tag),
            _ if self.trunks_vlan(vid) => Ok(vid),
            _ => Err(format!(
                "dropping VLAN {vid} packet received on port not configured for trunking VLAN {vid}"
            )),
        }
    }

    /// OVS `output_vlan_to_vid`: the VID a frame of `vlan` leaves with (0:
    /// untagged).
    pub fn output_vid(&self, vlan: u16) -> u16 {
        match self.mode {
            VlanMode::Access => 0,
            VlanMode::NativeUntagged if vlan == self.tag => 0,
            _ => vlan,
        }
    }
}

/// What the NORMAL actions of one translation read from and taught the
/// MAC table (OVS keeps the same in a megaflow's xlate cache, `XC_NORMAL`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacDeps {
    /// The table version the lookups saw (the oldest, when NORMAL ran more
    /// than once); `None` when NORMAL never consulted the table.
    pub version: Option<u64>,
    /// The (VLAN, MAC) entries looked up (sources and destinations): the
    /// translation is right while none of them changes after `version`.
    pub entries: Vec<(u16, [u8; 6])>,
    /// (VLAN, source MAC, port) learned: packets of the megaflow keep
    /// these entries fresh (the slow path never sees them again).
    pub learns: Vec<(u16, [u8; 6], u32)>,
    /// A translation that learned nothing found a source the table does
    /// not have on the input port (it moved away, aged out or was
    /// flushed): a megaflow would keep its frames from being learned, so
    /// the revalidator must not keep one.
    pub unlearned: bool,
}

impl MacDeps {
    pub fn is_empty(&self) -> bool {
        self.version.is_none()
    }

    /// True when an entry this translation read changed in `macs` since.
    pub fn stale(&self, macs: &MacTable) -> bool {
        let Some(v) = self.version else {
            return false;
        };
        self.entries
            .iter()
            .any(|(vlan, mac)| macs.changed_since(*vlan, mac, v))
    }
}

/// What NORMAL consults: the bridge's MAC table and port VLAN settings.
pub struct L2Switch<'a> {
    pub macs: &'a Mutex<MacTable>,
    pub vlans: &'a BTreeMap<u32, PortVlan>,
    /// Learn source addresses (false for revalidation and traces of flows
    /// that must have no side effects).
    pub may_learn: bool,
    pub now: Instant,
}

impl L2Switch<'_> {
    fn port(&self, p: u32) -> PortVlan {
        self.vlans.get(&p).cloned().unwrap_or_default()
    }
}

impl Ctx<'_> {
    /// True when `port` floods (FLOOD and NORMAL skip `no-flood` ports).
    pub(super) fn floods_to(&self, port: u32) -> bool {
        self.l2
            .is_none_or(|l2| !l2.vlans.get(&port).is_some_and(|v| v.no_flood))
    }

    /// OVS `xlate_normal`.
    pub(super) fn normal(&mut self) {
        self.typed_action = true;
        self.wc.dl_src = [0xff; 6];
        self.wc.dl_dst = [0xff; 6];
        self.wc.vlans[0].tci |= VLAN_VID_MASK | VLAN_CFI;
        let Some(l2) = self.l2 else {
            self.note(" >> NORMAL without a MAC table: dropped");
            return;
        };
        let in_port = self.flow.in_port;
        if !self.ports.contains(in_port) {
            self.notef(|| format!(" >> no input bundle for port {in_port}, dropping"));
            return;
        }
        let tag = self.flow.vlans[0];
        if tag.tpid != 0 && tag.tci & VLAN_CFI == 0 {
            self.note(" >> partial VLAN tag, dropping");
            return;
        }
        let vid = if tag.tci & VLAN_CFI != 0 {
            tag.tci & VLAN_VID_MASK
        } else {
            0
        };
        let in_cfg = l2.port(in_port);
        let vlan = match in_cfg.input_vlan(vid) {
            Ok(v) => v,
            Err(e) => {
                self.notef(|| format!(" >> {e}"));
                return;
            }
        };
        let dst = self.flow.dl_dst;
        let src = self.flow.dl_src;
        if is_reserved(&dst) {
            self.note(" >> packet has reserved destination MAC, dropping");
            return;
        }
        let out_port = {
            let mut macs = l2.macs.lock();
            if l2.may_learn {
                let mut evicted = Vec::new();
                let r = macs.learn(vlan, &src, in_port, l2.now, &mut evicted);
                self.notef(|| format!(" >> learned {src:02x?} on port {in_port}: {r:?}"));
            }
            let out = macs.lookup(vlan, &dst, l2.now);
            // Without learning (a revalidation), a source the table does
            // not have on this port must reach the slow path to be learned.
            let unlearned = !l2.may_learn
                && !is_multicast(&src)
                && macs.lookup(vlan, &src, l2.now) != Some(in_port);
            // All reads happened at this version (learning included).
            let v = macs.version();
            let d = &mut self.mac_deps;
            d.version = Some(d.version.map_or(v, |old| old.min(v)));
            d.unlearned |= unlearned;
            out
        };
        let d = &mut self.mac_deps;
        // The source's entry decides whether the megaflow may skip the
        // slow path (learning), the destination's where frames go.
        d.entries.push((vlan, src));
        d.entries.push((vlan, dst));
        if !is_multicast(&src) {
            d.learns.push((vlan, src, in_port));
        }
        if self.mac_deps.unlearned {
            self.note(" >> source MAC not learned on the input port");
        }
        match out_port {
            Some(p) if p == in_port => {
                self.note(" >> learned port is input port, dropping");
            }
            Some(p) if !self.ports.contains(p) => {
                self.note(" >> learned port is unknown, dropping");
            }
            Some(p) => {
                self.note(" >> forwarding to learned port");
                self.output_normal(p, &l2.port(p), vlan, vid);
            }
            None => {
                self.note(" >> no learned MAC for destination, flooding");
                for p in self.ports.ports() {
                    let cfg = l2.port(p);
                    if p != in_port && !cfg.no_flood && cfg.includes_vlan(vlan) {
                        self.output_normal(p, &cfg, vlan, vid);
                    }
                }
            }
        }
    }

    /// OVS `output_normal`: one copy out of `port` with the VLAN tag its
    /// mode gives frames of `vlan` (`in_vid`: the tag the frame came with).
    fn output_normal(&mut self, port: u32, cfg: &PortVlan, vlan: u16, in_vid: u16) {
        let out_vid = cfg.output_vid(vlan);
        if out_vid == in_vid {
            self.compose_output(port);
            return;
        }
        let saved = self.flow.vlans;
        if out_vid == 0 {
            self.flow.vlans[0] = saved[1];
            self.flow.vlans[1] = VlanTag::default();
        } else if in_vid == 0 {
            self.flow.vlans[1] = saved[0];
            self.flow.vlans[0] = VlanTag {
                tpid: ETH_TYPE_VLAN,
                tci: out_vid | VLAN_CFI,
            };
        } else {
            self.flow.vlans[0].tci = (saved[0].tci & !VLAN_VID_MASK) | out_vid;
        }
        self.compose_output(port);
        self.flow.vlans = saved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_port() {
        let p = PortVlan {
            mode: VlanMode::Access,
            tag: 10,
            ..Default::default()
        };
        assert_eq!(p.input_vlan(0), Ok(10));
        assert!(p.input_vlan(10).is_err());
        assert!(p.includes_vlan(10));
        assert!(!p.includes_vlan(20));
        assert_eq!(p.output_vid(10), 0);
    }

    #[test]
    fn trunks_and_native_modes() {
        let all = PortVlan::default();
        assert_eq!(all.input_vlan(0), Ok(0));
        assert_eq!(all.input_vlan(42), Ok(42));
        let some = PortVlan {
            trunks: Some([10, 20].into_iter().collect()),
            ..Default::default()
        };
        assert!(some.input_vlan(30).is_err());
        assert!(some.input_vlan(0).is_err());
        assert_eq!(some.output_vid(20), 20);
        let nu = PortVlan {
            mode: VlanMode::NativeUntagged,
            tag: 5,
            ..Default::default()
        };
        assert_eq!(nu.input_vlan(0), Ok(5));
        assert_eq!(nu.output_vid(5), 0);
        assert_eq!(nu.output_vid(6), 6);
        let nt = PortVlan {
            mode: VlanMode::NativeTagged,
            tag: 5,
            ..Default::default()
        };
        assert_eq!(nt.input_vlan(0), Ok(5));
        assert_eq!(nt.output_vid(5), 5);
    }
}

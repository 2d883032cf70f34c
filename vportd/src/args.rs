//! The daemon's command line.

use clap::Parser;
use ofproto::xlate::{PortVlan, VlanMode};
use std::path::PathBuf;
use thiserror::Error;

/// vportd: a userspace virtual switch on DPDK.
#[derive(Parser, Debug, Clone)]
#[command(name = "vportd", version, about, long_about = None)]
pub struct Args {
    /// EAL arguments, passed to DPDK verbatim, e.g.
    /// "-l 0-1 --no-huge -m 1024 --no-pci --file-prefix=x --vdev=net_null0".
    /// Required unless --db gives them (Open_vSwitch other_config
    /// dpdk-extra, dpdk-socket-mem, dpdk-lcore-mask, as OVS reads them).
    #[arg(
        long,
        value_name = "EAL ARGUMENTS",
        allow_hyphen_values = true,
        default_value = ""
    )]
    pub eal: String,

    /// A port: NAME=DEVICE[,ofport=N][,rxq=N]. Repeatable. A tunnel port
    /// is NAME=vxlan|geneve|gre,remote_ip=IP|flow[,local_ip=IP]
    /// [,key=N|flow][,dst_port=N][,ttl=N][,tos=N|inherit][,csum=true]
    /// (see --local-ip). DEVICE is a DPDK
    /// device name (net_pcap0, 0000:03:00.0), or a VM's vhost-user socket:
    /// `vhost-user-client:PATH[,queues=N]` (vportd connects and
    /// reconnects) or `vhost-user:PATH[,queues=N]` (vportd listens). Ports
    /// get OpenFlow numbers 1, 2, ... in the order given unless ofport=
    /// says otherwise.
    #[arg(
        long = "port",
        value_name = "NAME=DEVICE[,ofport=N][,rxq=N][,tag=N][,trunks=N,...][,vlan_mode=M][,no-flood]"
    )]
    pub ports: Vec<String>,

    /// An underlay address for native tunnelling: PORT=IP/PREFIX (the
    /// port answers ARP for IP, and IP/PREFIX is on its link). Repeatable.
    #[arg(long = "local-ip", value_name = "PORT=IP/PREFIX")]
    pub local_ips: Vec<String>,

    /// A route for tunnel traffic: PREFIX,via=GW,port=PORT. Repeatable.
    #[arg(long = "route", value_name = "PREFIX[,via=GW],port=PORT")]
    pub routes: Vec<String>,

    /// OpenFlow rules in ovs-ofctl add-flows syntax.
    #[arg(long, value_name = "FILE")]
    pub flows: Option<PathBuf>,

    /// OpenFlow groups in ovs-ofctl add-groups syntax (loaded before --flows).
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,

    /// Built-in forwarding rule "in_port=1 actions=output:2" (for
    /// measuring forwarding without a flow file).
    #[arg(long)]
    pub fwd: bool,

    /// Cores for the PMD threads, e.g. "1" or "1-3,5" (default: the last
    /// core of the EAL core list, or core 0 on a one-core machine).
    #[arg(long, value_name = "LIST")]
    pub pmd_cores: Option<String>,

    /// Upcall handler threads (default: one per core not used by PMDs, at
    /// least 1).
    #[arg(long, value_name = "N")]
    pub handler_threads: Option<usize>,

    /// Take the ports and settings from OVS's database: a unix:PATH or
    /// tcp:IP:PORT of an ovsdb-server holding vswitch.ovsschema
    /// (configured with ovs-vsctl).
    #[arg(long, value_name = "unix:PATH|tcp:IP:PORT")]
    pub db: Option<String>,
    /// Control socket path (default: /run/vportd/vportd.ctl, or
    /// $XDG_RUNTIME_DIR/vportd/vportd.ctl when not root).
    #[arg(long, value_name = "PATH")]
    pub ctl: Option<PathBuf>,

    /// Once every rx queue has been empty and nothing was sent for MS
    /// milliseconds: stop, close every port, exit 0.
    #[arg(long, value_name = "MS")]
    pub exit_when_idle: Option<u64>,

    /// Print per-port rx/tx rates every SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<u64>,

    /// Serve Prometheus metrics over HTTP on this address (e.g.
    /// 127.0.0.1:9477).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,

    /// OVS emc-insert-inv-prob: insert into the EMC with probability 1/N
    /// (0 disables the EMC).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub emc_insert_inv_prob: u32,

    /// mbufs in the packet pool.
    #[arg(long, value_name = "N", default_value_t = 65535)]
    pub mbufs: u32,

    /// Where the packet pool lives: `eal` (the EAL's memory: hugepages, or
    /// 4 KiB pages with --no-huge), `thp` (transparent huge pages; only for
    /// virtual devices), or `auto`: `thp` when the EAL has no hugepages,
    /// every device is virtual and the kernel offers THP, `eal` otherwise.
    #[arg(long, value_name = "WHERE", value_enum, default_value_t = MbufMemoryArg::Auto)]
    pub mbuf_memory: MbufMemoryArg,

    /// Mode (octal) of the sockets vportd creates for `vhost-user:` ports.
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = crate::vhost::parse_sock_mode)]
    pub vhost_sock_mode: u32,
    /// The OpenFlow channel (`--controller`, `--datapath-id`, ...).
    #[command(flatten)]
    pub openflow: crate::ofchan::OfArgs,
}

/// `--mbuf-memory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MbufMemoryArg {
    Auto,
    Eal,
    Thp,
}

/// One `--port` argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub name: String,
    pub device: String,
    pub ofport: Option<u32>,
    pub rxq: Option<u16>,
    /// OVS `mtu_request`: the device MTU, and the size of the mbufs the
    /// port receives into (`None`: 1500).
    pub mtu: Option<u16>,
    /// VLAN settings for NORMAL (`tag=`, `trunks=`, `vlan_mode=`,
    /// `no-flood`), as OVS ports have them.
    pub vlan: PortVlan,
    /// A tunnel port (`NAME=vxlan|geneve|gre,remote_ip=...`): no device.
    pub tunnel: Option<ofproto::tunnel::TunnelPort>,
}

/// A bad argument, naming it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgError {
    #[error("--port {arg:?}: {reason}")]
    Port { arg: String, reason: String },
    #[error("--pmd-cores {arg:?}: {reason}")]
    Cores { arg: String, reason: String },
}

/// The smallest MTU a port takes (IPv4's minimum, as OVS).
pub const MIN_MTU: u16 = 68;
/// The largest (OVS-DPDK's: a 9728-byte frame).
pub const MAX_MTU: u16 = 9710;

/// Parses `NAME=DEVICE[,ofport=N][,rxq=N][,mtu=N]`.
pub fn parse_port(arg: &str) -> Result<PortSpec, ArgError> {
    let err = |reason: String| ArgError::Port {
        arg: arg.to_string(),
        reason,
    };
    let (name, rest) = arg
        .split_once('=')
        .ok_or_else(|| err("expected NAME=DEVICE[,ofport=N][,rxq=N]".into()))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(err(format!(
            "bad port name {name:?} (letters, digits, '_', '-', '.')"
        )));
    }
    let mut parts = rest.split(',');
    let device = parts.next().unwrap_or("");
    if device.is_empty() {
        return Err(err("missing DEVICE after '='".into()));
    }
    let mut spec = PortSpec {
        name: name.to_string(),
        device: device.to_string(),
        ofport: None,
        rxq: None,
        mtu: None,
        vlan: PortVlan::default(),
        tunnel: None,
    };
    if let Some(kind) = flowcache::tunnel::TunnelKind::from_name(device) {
        let (t, ofport) = crate::tunnel::parse_options(name, kind, parts).map_err(err)?;
        spec.ofport = ofport.map(parse_ofport).transpose().map_err(err)?;
        // Unique among the devices (`assign_ofports`).
        spec.device = format!("{device}:{name}");
        spec.tunnel = Some(t);
        return Ok(spec);
    }
    let mut mode = None;
    let mut tag = None;
    let mut in_trunks = false;
    for opt in parts {
        if opt == "no-flood" {
            spec.vlan.no_flood = true;
            in_trunks = false;
            continue;
        }
        // `trunks=10,20`: the VLANs after the first are options of their own.
        if in_trunks && !opt.is_empty() && opt.bytes().all(|b| b.is_ascii_digit()) {
            let n = match opt.parse::<u16>() {
                Ok(n) if n <= 4095 => n,
                _ => return Err(err(format!("VLAN {opt:?} is not a number in 0..4095"))),
            };
            spec.vlan
                .trunks
                .get_or_insert_with(Default::default)
                .insert(n);
            continue;
        }
        in_trunks = false;
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| err(format!("option {opt:?} is not KEY=VALUE")))?;
        let vid = |v: &str| -> Result<u16, ArgError> {
            match v.parse::<u16>() {
                Ok(n) if n <= 4095 => Ok(n),
                _ => Err(err(format!("VLAN {v:?} is not a number in 0..4095"))),
            }
        };
        match k {
            "tag" => tag = Some(vid(v)?),
            "trunks" => {
                in_trunks = true;
                let set = v.split([':', ' ']).map(vid);
                spec.vlan.trunks = Some(set.collect::<Result<_, _>>()?);
            }
            "vlan_mode" => {
                mode = Some(match v {
                    "access" => VlanMode::Access,
                    "trunk" => VlanMode::Trunk,
                    "native-untagged" => VlanMode::NativeUntagged,
                    "native-tagged" => VlanMode::NativeTagged,
                    _ => {
                        return Err(err(format!(
                            "vlan_mode {v:?} (access, trunk, native-untagged, native-tagged)"
                        )))
                    }
                })
            }
            "ofport" => spec.ofport = Some(parse_ofport(v).map_err(err)?),
            "rxq" => {
                let n: u16 = v
                    .parse()
                    .map_err(|_| err(format!("rxq {v:?} is not a number")))?;
                if n == 0 {
                    return Err(err("rxq must be at least 1".into()));
                }
                spec.rxq = Some(n);
            }
            "mtu" => {
                let n: u16 = v
                    .parse()
                    .map_err(|_| err(format!("mtu {v:?} is not a number")))?;
                if !(MIN_MTU..=MAX_MTU).contains(&n) {
                    return Err(err(format!("mtu {n} out of range {MIN_MTU}..{MAX_MTU}")));
                }
                spec.mtu = Some(n);
            }
            // A vhost-user port's queue pairs: part of its DEVICE (checked
            // with it below).
            "queues" if spec.device.starts_with("vhost-user") => {
                spec.device.push_str(&format!(",queues={v}"));
            }
            _ => {
                return Err(err(format!(
                    "unknown option {k:?} (ofport, rxq, mtu, tag, trunks, vlan_mode, no-flood; queues for vhost-user)"
                )))
            }
        }
    }
    if let Some(Err(reason)) = crate::vhost::VhostSpec::parse(&spec.device) {
        return Err(err(reason));
    }
    // OVS: a port with a tag and no vlan_mode is an access port; the
    // native modes need the tag.
    spec.vlan.mode = mode.unwrap_or(if tag.is_some() {
        VlanMode::Access
    } else {
        VlanMode::Trunk
    });
    spec.vlan.tag = tag.unwrap_or(0);
    match spec.vlan.mode {
        VlanMode::NativeTagged | VlanMode::NativeUntagged if tag.is_none() => {
            return Err(err("vlan_mode native-* needs tag=".into()))
        }
        VlanMode::Access if spec.vlan.trunks.is_some() => {
            return Err(err(
                "an access port (tag= or vlan_mode=access) has no trunks=".into(),
            ))
        }
        VlanMode::Trunk if tag.is_some() => {
            return Err(err("vlan_mode=trunk takes no tag=".into()))
        }
        _ => {}
    }
    Ok(spec)
}

/// An `ofport=` value: 1..65279.
fn parse_ofport(v: &str) -> Result<u32, String> {
    let n: u32 = v
        .parse()
        .map_err(|_| format!("ofport {v:?} is not a number"))?;
    if n == 0 || n >= 0xff00 {
        return Err(format!("ofport {n} out of range 1..65279"));
    }
    Ok(n)
}

/// Assigns OpenFlow port numbers: explicit `ofport=` first, then 1, 2, …
/// in order for the rest (skipping numbers taken). Rejects duplicate
/// names, devices and numbers.
pub fn assign_ofports(specs: &mut [PortSpec]) -> Result<(), ArgError> {
    let mut names = std::collections::HashSet::new();
    let mut devices = std::collections::HashSet::new();
    let mut taken = std::collections::HashSet::new();
    for s in specs.iter() {
        let dup = |what: &str| ArgError::Port {
            arg: format!("{}={}", s.name, s.device),
            reason: what.to_string(),
        };
        if !names.insert(s.name.clone()) {
            return Err(dup("duplicate port name"));
        }
        if !devices.insert(s.device.clone()) {
            return Err(dup("device already used by another port"));
        }
        if let Some(n) = s.ofport {
            if !taken.insert(n) {
                return Err(dup("duplicate ofport"));
            }
        }
    }
    let mut next = 1;
    for s in specs.iter_mut() {
        if s.ofport.is_none() {
            while taken.contains(&next) {
                next += 1;
            }
            s.ofport = Some(next);
            taken.insert(next);
        }
    }
    Ok(())
}

/// Parses a core list: "1", "0-3", "1,3-5".
/// Cores are CPU numbers a `cpu_set_t` can hold (glibc `CPU_SETSIZE`): a
/// list naming a larger one is refused before anything is allocated.
pub const MAX_CORE_ID: usize = 1023;

pub fn parse_core_list(arg: &str) -> Result<Vec<usize>, ArgError> {
    let err = |reason: &str| ArgError::Cores {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let core = |s: &str| -> Result<usize, ArgError> {
        let c: usize = s.trim().parse().map_err(|_| err("not a number"))?;
        if c > MAX_CORE_ID {
            return Err(err(&format!("core {c} is above {MAX_CORE_ID}")));
        }
        Ok(c)
    };
    let mut out = Vec::new();
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (core(a)?, core(b)?);
            if b < a {
                return Err(err("range end before its start"));
            }
            out.extend(a..=b);
        } else {
            out.push(core(part)?);
        }
    }
    if out.is_empty() {
        return Err(err("empty core list"));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The cores named by EAL's `-l LIST` / `--lcores LIST`, if any.
pub fn eal_core_list(eal: &str) -> Option<Vec<usize>> {
    let words: Vec<&str> = eal.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if *w == "-l" || *w == "--lcores" {
            return words.get(i + 1).and_then(|l| parse_core_list(l).ok());
        }
        if let Some(l) = w.strip_prefix("-l") {
            if !l.is_empty() {
                return parse_core_list(l).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port("p1=net_pcap0").unwrap(),
            PortSpec {
                name: "p1".into(),
                device: "net_pcap0".into(),
                ofport: None,
                rxq: None,
                mtu: None,
                vlan: PortVlan::default(),
                tunnel: None,
            }
        );
        assert_eq!(parse_port("j=x,mtu=9000").unwrap().mtu, Some(9000));
        assert!(parse_port("j=x,mtu=67")
            .unwrap_err()
            .to_string()
            .contains("68..9710"));
        assert!(parse_port("j=x,mtu=9711").is_err());
        assert!(parse_port("j=x,mtu=big").is_err());
        let a = parse_port("a=x,tag=10").unwrap().vlan;
        assert_eq!((a.mode, a.tag), (VlanMode::Access, 10));
        let t = parse_port("t=x,trunks=10,20,no-flood").unwrap().vlan;
        assert_eq!(t.mode, VlanMode::Trunk);
        assert_eq!(t.trunks, Some([10, 20].into_iter().collect()));
        assert!(t.no_flood);
        let n = parse_port("n=x,tag=5,vlan_mode=native-untagged,trunks=7")
            .unwrap()
            .vlan;
        assert_eq!((n.mode, n.tag), (VlanMode::NativeUntagged, 5));
        assert!(parse_port("n=x,vlan_mode=native-tagged").is_err());
        assert!(parse_port("n=x,tag=5000").is_err());
        assert!(parse_port("n=x,tag=5,trunks=6").is_err());
        assert!(parse_port("n=x,vlan_mode=bogus").is_err());
        let p = parse_port("up=0000:03:00.0,ofport=7,rxq=2").unwrap();
        assert_eq!(p.device, "0000:03:00.0");
        assert_eq!(p.ofport, Some(7));
        assert_eq!(p.rxq, Some(2));
        assert!(parse_port("p1").is_err());
        assert!(parse_port("p1=").is_err());
        assert!(parse_port("p1=x,ofport=zero").is_err());
        let v = parse_port("vm1=vhost-user-client:/tmp/vm1.sock,queues=2,ofport=3").unwrap();
        assert_eq!(v.device, "vhost-user-client:/tmp/vm1.sock,queues=2");
        assert_eq!(v.ofport, Some(3));
        assert!(parse_port("vm1=vhost-user:/tmp/vm1.sock,queues=0")
            .unwrap_err()
            .to_string()
            .contains("queues"));
        assert!(parse_port("vm1=vhost-user:").is_err());
        assert!(parse_port("n0=net_null0,queues=2")
            .unwrap_err()
            .to_string()
            .contains("unknown option"));
        assert!(parse_port("p1=x,speed=10")
            .unwrap_err()
            .to_string()
            .contains("unknown option"));
    }

    #[test]
    fn ofport_assignment() {
        let mut specs = vec![
            parse_port("a=d0").unwrap(),
            parse_port("b=d1,ofport=1").unwrap(),
            parse_port("c=d2").unwrap(),
        ];
        assign_ofports(&mut specs).unwrap();
        assert_eq!(specs[0].ofport, Some(2));
        assert_eq!(specs[1].ofport, Some(1));
        assert_eq!(specs[2].ofport, Some(3));
        let mut dup = vec![parse_port("a=d0").unwrap(), parse_port("a=d1").unwrap()];
        assert!(assign_ofports(&mut dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate port name"));
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("1").unwrap(), vec![1]);
        assert_eq!(parse_core_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_core_list("3-1").is_err());
        // Huge ranges are refused before any allocation (issue 20 item 8).
        let e = parse_core_list("0-1000000000000").unwrap_err().to_string();
        assert!(e.contains("core 1000000000000 is above 1023"), "{e}");
        assert!(parse_core_list("0-18446744073709551615").is_err());
        assert!(parse_core_list("0-1023").is_ok());
        assert_eq!(eal_core_list("-l 0-1 --no-huge"), Some(vec![0, 1]));
        assert_eq!(eal_core_list("--no-huge -l2"), Some(vec![2]));
        assert_eq!(eal_core_list("--no-huge"), None);
    }
}

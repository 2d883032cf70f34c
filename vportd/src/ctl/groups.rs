//! The group commands, as `ovs-ofctl` spells them: `add-group`,
//! `add-groups`, `mod-group`, `del-groups`, `dump-groups`,
//! `dump-group-stats`; and `mod-port NAME up|down` (the admin state that
//! fast_failover liveness honours).
//!
//! Every change is published with the rules (one atomic swap), which
//! revalidates the megaflows: none keeps the actions of a changed group.

use super::commands::{flow_text, out, with_names, CmdResult};
use super::Server;
use ofproto::group::{
    format_group, format_group_stats, parse_group, parse_groups, ref_count, Group, GroupEntry,
    SelectionMethod, WATCH_GROUP_NONE, WATCH_PORT_NONE,
};
use serde::Serialize;
use std::time::Instant;

/// What `add-group`, `mod-group`, `del-groups` answer.
#[derive(Debug, Serialize)]
struct GroupChange {
    /// "add", "modify" or "delete".
    op: &'static str,
    /// The group ids added, modified or deleted.
    groups: Vec<u32>,
    /// Rules deleted because they used a deleted group.
    rules_deleted: usize,
    /// Groups in the table afterwards.
    groups_total: usize,
}

fn change_text(d: &GroupChange) -> String {
    let verb = match d.op {
        "add" => "added",
        "modify" => "modified",
        _ => "deleted",
    };
    let ids: Vec<String> = d.groups.iter().map(u32::to_string).collect();
    let what = if ids.is_empty() {
        format!("no group {verb}")
    } else {
        format!("group(s) {} {verb}", ids.join(", "))
    };
    let rules = if d.op == "delete" {
        format!(" with {} rule(s) that used them", d.rules_deleted)
    } else {
        String::new()
    };
    format!("{what}{rules}; {} group(s) in the table\n", d.groups_total)
}

fn changed(s: &Server, op: &'static str, groups: Vec<u32>, rules_deleted: usize) -> CmdResult {
    let d = GroupChange {
        op,
        groups,
        rules_deleted,
        groups_total: s.switch.bridge.tables().groups().len(),
    };
    out(change_text(&d), &d)
}

/// One group as an argument: the words joined (a group written without
/// quotes arrives in pieces).
fn one_group(s: &Server, cmd: &str, args: &[String]) -> Result<Group, String> {
    if args.is_empty() {
        return Err(format!(
            "{cmd}: usage: {cmd} GROUP (e.g. group_id=1,type=all,bucket=output:2)"
        ));
    }
    let line = args.join(" ");
    with_names(s, || parse_group(&line)).map_err(|e| format!("{cmd}: {e}"))
}

/// `add-group GROUP`.
pub fn add_group(s: &Server, args: &[String]) -> CmdResult {
    let g = one_group(s, "add-group", args)?;
    let id = g.group_id;
    let _edit = s.edit.lock();
    s.switch
        .bridge
        .add_groups(vec![g])
        .map_err(|e| format!("add-group: {e}"))?;
    changed(s, "add", vec![id], 0)
}

/// `add-groups FILE|-`: every group of the file, or none.
pub fn add_groups(s: &Server, args: &[String]) -> CmdResult {
    let (text, name) = flow_text("add-groups", args)?;
    let groups =
        with_names(s, || parse_groups(&text, &name)).map_err(|e| format!("add-groups: {e}"))?;
    let ids = groups.iter().map(|g| g.group_id).collect();
    let _edit = s.edit.lock();
    s.switch
        .bridge
        .add_groups(groups)
        .map_err(|e| format!("add-groups: {name}: {e} (no group added)"))?;
    changed(s, "add", ids, 0)
}

/// `mod-group [--may-create] GROUP`.
pub fn mod_group(s: &Server, args: &[String]) -> CmdResult {
    let may_create = args.iter().any(|a| a == "--may-create");
    let rest: Vec<String> = args
        .iter()
        .filter(|a| *a != "--may-create")
        .cloned()
        .collect();
    let g = one_group(s, "mod-group", &rest)?;
    let id = g.group_id;
    let _edit = s.edit.lock();
    let bridge = &s.switch.bridge;
    let exists = bridge.tables().groups().get(id).is_some();
    let (op, res) = if !exists && may_create {
        ("add", bridge.add_groups(vec![g]))
    } else {
        ("modify", bridge.modify_groups(vec![g]))
    };
    res.map_err(|e| format!("mod-group: {e}"))?;
    changed(s, op, vec![id], 0)
}

/// `[group_id=]N` or `[group_id=]all` (None: every group).
fn group_arg(cmd: &str, args: &[String]) -> Result<Option<u32>, String> {
    let usage = format!("usage: {cmd} [group_id=N]");
    match args {
        [] => Ok(None),
        [a] => {
            let v = a.strip_prefix("group_id=").unwrap_or(a);
            if v == "all" {
                return Ok(None);
            }
            let n = match v.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            };
            match n {
                Some(n) if n <= 0xffff_ff00 => Ok(Some(n)),
                _ => Err(format!(
                    "{cmd}: col {}: {v:?} is not a group id (0 to 4294967040, or all; {usage})",
                    a.len() - v.len() + 1
                )),
            }
        }
        _ => Err(format!("{cmd}: {usage}")),
    }
}

/// `del-groups [group_id=N]`: the group, the groups that name it and the
/// rules that use any of them (every group without an argument).
pub fn del_groups(s: &Server, args: &[String]) -> CmdResult {
    let id = group_arg("del-groups", args)?;
    let _edit = s.edit.lock();
    let (ids, rules) = s.switch.bridge.delete_groups(id);
    changed(s, "delete", ids, rules)
}

/// One bucket of `dump-groups --json`.
#[derive(Debug, Serialize)]
struct BucketInfo {
    bucket_id: u32,
    weight: u16,
    watch_port: Option<u32>,
    watch_group: Option<u32>,
    actions: String,
}

/// One group of `dump-groups --json`.
#[derive(Debug, Serialize)]
struct GroupInfo {
    group_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    /// "default" or "hash".
    selection_method: &'static str,
    fields: Vec<String>,
    buckets: Vec<BucketInfo>,
    /// The line `dump-groups` prints (ovs-ofctl -O OpenFlow13).
    line: String,
}

#[derive(Debug, Serialize)]
struct DumpGroups {
    groups: Vec<GroupInfo>,
}

fn selected(s: &Server, id: Option<u32>) -> Vec<std::sync::Arc<GroupEntry>> {
    s.switch
        .bridge
        .tables()
        .groups()
        .iter()
        .filter(|e| id.is_none_or(|i| e.group.group_id == i))
        .cloned()
        .collect()
}

/// `dump-groups [N]`: the lines `ovs-ofctl -O OpenFlow13 dump-groups`
/// prints (without the reply header, as `dump-flows`).
pub fn dump_groups(s: &Server, args: &[String]) -> CmdResult {
    let id = group_arg("dump-groups", args)?;
    let groups: Vec<GroupInfo> = selected(s, id)
        .iter()
        .map(|e| {
            let g = &e.group;
            let method = match &g.selection {
                SelectionMethod::Default => "default",
                SelectionMethod::Hash(_) => "hash",
            };
            let fields = g.selection.field_names();
            GroupInfo {
                group_id: g.group_id,
                kind: g.kind.name(),
                selection_method: method,
                fields,
                buckets: g
                    .buckets
                    .iter()
                    .map(|b| BucketInfo {
                        bucket_id: b.bucket_id,
                        weight: b.weight,
                        watch_port: (b.watch_port != WATCH_PORT_NONE).then_some(b.watch_port),
                        watch_group: (b.watch_group != WATCH_GROUP_NONE).then_some(b.watch_group),
                        actions: b.actions_text(),
                    })
                    .collect(),
                line: format_group(g),
            }
        })
        .collect();
    let text: String = groups.iter().map(|g| format!(" {}\n", g.line)).collect();
    out(text, &DumpGroups { groups })
}

#[derive(Debug, Serialize)]
struct BucketStats {
    bucket: usize,
    packet_count: u64,
    byte_count: u64,
}

#[derive(Debug, Serialize)]
struct GroupStatsInfo {
    group_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    duration_s: f64,
    ref_count: usize,
    packet_count: u64,
    byte_count: u64,
    buckets: Vec<BucketStats>,
    /// The line `dump-group-stats` prints (ovs-ofctl -O OpenFlow13).
    line: String,
}

#[derive(Debug, Serialize)]
struct DumpGroupStats {
    groups: Vec<GroupStatsInfo>,
}

/// `dump-group-stats [N]`: packets and bytes per group and per bucket,
/// credited from the megaflows that went through them (as rule counters).
pub fn dump_group_stats(s: &Server, args: &[String]) -> CmdResult {
    let id = group_arg("dump-group-stats", args)?;
    let tables = s.switch.bridge.tables();
    let now = Instant::now();
    let groups: Vec<GroupStatsInfo> = selected(s, id)
        .iter()
        .map(|e| {
            let refs = ref_count(tables.iter().map(|r| &r.rule), e.group.group_id);
            GroupStatsInfo {
                group_id: e.group.group_id,
                kind: e.group.kind.name(),
                duration_s: now.saturating_duration_since(e.created).as_secs_f64(),
                ref_count: refs,
                packet_count: e.stats.n_packets(),
                byte_count: e.stats.n_bytes(),
                buckets: e
                    .bucket_stats
                    .iter()
                    .enumerate()
                    .map(|(i, b)| BucketStats {
                        bucket: i,
                        packet_count: b.n_packets(),
                        byte_count: b.n_bytes(),
                    })
                    .collect(),
                line: format_group_stats(e, refs, now),
            }
        })
        .collect();
    let text: String = groups.iter().map(|g| format!(" {}\n", g.line)).collect();
    out(text, &DumpGroupStats { groups })
}

#[derive(Debug, Serialize)]
struct PortMod {
    name: String,
    ofport: u32,
    admin_up: bool,
    /// The driver set the device's link accordingly (false: the driver
    /// cannot, only liveness changes).
    link_set: bool,
    live: bool,
}

/// `mod-port NAME up|down` (`ovs-ofctl mod-port br0 p1 down`): an admin
/// down port is not live for fast_failover, and its device's link is set
/// down where the driver can (as OVS-DPDK does).
pub fn mod_port(s: &Server, args: &[String]) -> CmdResult {
    let usage = "usage: mod-port NAME up|down";
    let [name, action] = args else {
        return Err(format!("mod-port: {usage}"));
    };
    let up = match action.as_str() {
        "up" => true,
        "down" => false,
        other => {
            return Err(format!(
                "mod-port: {other:?}: unknown action (up or down; {usage})"
            ))
        }
    };
    let _edit = s.edit.lock();
    let mut ports = s.switch.ports.lock();
    let ofport = ports
        .by_name(name)
        .or_else(|| {
            name.parse::<u32>()
                .ok()
                .and_then(|n| ports.by_ofport.get(&n))
        })
        .map(|p| p.ofport)
        .ok_or_else(|| format!("mod-port: no port named {name:?}"))?;
    let link_set = ports
        .set_admin(ofport, up, &s.switch.bridge)
        .map_err(|e| format!("mod-port: {e:#}"))?;
    let p = &ports.by_ofport[&ofport];
    let d = PortMod {
        name: p.name.clone(),
        ofport,
        admin_up: up,
        link_set,
        live: p.live,
    };
    out(
        format!(
            "port {} (OpenFlow port {ofport}) admin {}; {}\n",
            d.name,
            if up { "up" } else { "down" },
            if d.live { "live" } else { "not live" }
        ),
        &d,
    )
}

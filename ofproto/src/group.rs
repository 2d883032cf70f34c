//! OpenFlow groups (OVS `lib/ofp-group.c`, `ofproto/ofproto-dpif.c`): the
//! group table of a bridge, the `ovs-ofctl add-groups` syntax and the
//! `dump-groups` format.
//!
//! A [`GroupTable`] is immutable once built and travels inside
//! [`crate::table::Tables`], so a group change is published by the same
//! RCU-style swap as a rule change (and revalidates the megaflows).

use crate::parse::actions::parse_bucket_actions;
use crate::parse::error::Perr;
use crate::parse::format::format_action_list;
use crate::parse::ParseError;
use crate::rule::{OfAction, Rule};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// OpenFlow `OFPP_ANY`: no watch port.
pub const WATCH_PORT_NONE: u32 = 0xffff_ffff;
/// OpenFlow `OFPG_ANY`: no watch group.
pub const WATCH_GROUP_NONE: u32 = 0xffff_ffff;
/// OVS `MAX_LIVENESS_RECURSION`.
pub const MAX_LIVENESS_DEPTH: u32 = 32;

/// The group types of OpenFlow 1.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupType {
    /// Every bucket, each on its own copy of the packet.
    All,
    /// One bucket chosen per flow by hash and weight.
    Select,
    /// Exactly one bucket.
    Indirect,
    /// The first live bucket.
    FastFailover,
}

impl GroupType {
    fn parse(s: &str) -> Option<GroupType> {
        Some(match s {
            "all" => GroupType::All,
            "select" => GroupType::Select,
            "indirect" => GroupType::Indirect,
            "ff" | "fast_failover" => GroupType::FastFailover,
            _ => return None,
        })
    }

    /// The name `dump-groups` prints.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::All => "all",
            GroupType::Select => "select",
            GroupType::Indirect => "indirect",
            GroupType::FastFailover => "ff",
        }
    }
}

/// One bucket of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub bucket_id: u32,
    /// Select groups: share of flows (0: never chosen).
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    /// The bucket's actions, executed as an action set.
    pub actions: Vec<OfAction>,
    /// `bucket_id:` was given (dump-groups then prints it).
    pub explicit_id: bool,
}

impl Bucket {
    /// The bucket's actions as `dump-groups` writes them.
    pub fn actions_text(&self) -> String {
        format_action_list(&self.actions)
    }

    /// True when liveness matters for this bucket (OVS
    /// `ofputil_bucket_has_liveness`).
    pub fn has_liveness(&self) -> bool {
        self.watch_port != WATCH_PORT_NONE || self.watch_group != WATCH_GROUP_NONE
    }
}

/// How a select group picks its bucket.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum SelectionMethod {
    /// OVS's default (dp_hash): a hash of the flow's L4 five-tuple.
    #[default]
    Default,
    /// `selection_method=hash,fields(...)`: a hash of the named fields.
    Hash(Vec<crate::fields::FieldId>),
}

impl SelectionMethod {
    /// The `fields(...)` of a hash selection, by name.
    pub fn field_names(&self) -> Vec<String> {
        match self {
            SelectionMethod::Default => Vec::new(),
            SelectionMethod::Hash(f) => f
                .iter()
                .map(|f| crate::parse::fields::canon_name(*f, None))
                .collect(),
        }
    }
}

/// One group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub group_id: u32,
    pub kind: GroupType,
    pub buckets: Vec<Bucket>,
    pub selection: SelectionMethod,
}

/// Packet and byte counts of a group and of each bucket (credited from
/// megaflow statistics by the revalidator, never by the PMDs).
#[derive(Debug, Default)]
pub struct GroupStats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

impl GroupStats {
    fn add(&self, packets: u64, bytes: u64) {
        self.packets.fetch_add(packets, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
    pub fn n_packets(&self) -> u64 {
        self.packets.load(Relaxed)
    }
    pub fn n_bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }
}

/// A group with its counters.
#[derive(Debug)]
pub struct GroupEntry {
    pub group: Group,
    pub stats: GroupStats,
    pub bucket_stats: Vec<GroupStats>,
    /// When the group was added (`mod-group` keeps it, as OVS does).
    pub created: Instant,
}

impl GroupEntry {
    pub fn new(group: Group) -> GroupEntry {
        Self::created_at(group, Instant::now())
    }

    fn created_at(group: Group, created: Instant) -> GroupEntry {
        let n = group.buckets.len();
        GroupEntry {
            group,
            stats: GroupStats::default(),
            bucket_stats: (0..n).map(|_| GroupStats::default()).collect(),
            created,
        }
    }

    /// Credits packets to the group and to bucket `bucket`, or to every
    /// bucket with `None` (OVS `group_dpif_credit_stats`).
    pub fn credit(&self, bucket: Option<usize>, packets: u64, bytes: u64) {
        if packets == 0 && bytes == 0 {
            return;
        }
        self.stats.add(packets, bytes);
        match bucket {
            Some(i) => {
                if let Some(b) = self.bucket_stats.get(i) {
                    b.add(packets, bytes);
                }
            }
            None => self.bucket_stats.iter().for_each(|b| b.add(packets, bytes)),
        }
    }
}

/// The group table of a bridge (immutable; changes build a new one).
#[derive(Clone, Debug, Default)]
pub struct GroupTable {
    groups: BTreeMap<u32, Arc<GroupEntry>>,
}

/// A group table change OpenFlow refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("group {0} already exists (OFPGMFC_GROUP_EXISTS)")]
    Exists(u32),
    #[error("group {0} does not exist (OFPGMFC_UNKNOWN_GROUP)")]
    Unknown(u32),
}

impl GroupTable {
    pub fn get(&self, id: u32) -> Option<&Arc<GroupEntry>> {
        self.groups.get(&id)
    }
    pub fn len(&self) -> usize {
        self.groups.len()
    }
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
    /// Every group, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<GroupEntry>> {
        self.groups.values()
    }

    /// A table with `g` added (`add-group`): its id must be new. As in OVS
    /// 3.1, its buckets may name groups that do not exist (translation
    /// then drops that bucket's output: "output to nonexistent group") and
    /// may chain back to it (translation stops at the depth limit).
    pub fn add(&self, g: Group) -> Result<GroupTable, GroupError> {
        if self.groups.contains_key(&g.group_id) {
            return Err(GroupError::Exists(g.group_id));
        }
        let mut t = self.clone();
        t.groups.insert(g.group_id, Arc::new(GroupEntry::new(g)));
        Ok(t)
    }

    /// A table with `g` replacing the group of its id (`mod-group`; the
    /// counters restart, the creation time stays, as in OVS).
    pub fn modify(&self, g: Group) -> Result<GroupTable, GroupError> {
        let Some(old) = self.groups.get(&g.group_id) else {
            return Err(GroupError::Unknown(g.group_id));
        };
        let mut t = self.clone();
        t.groups
            .insert(g.group_id, Arc::new(GroupEntry::created_at(g, old.created)));
        Ok(t)
    }

    /// A table without group `id` (all groups with `None`), and the ids
    /// removed. Groups whose buckets name a removed group stay (OVS keeps
    /// them; their `group:N` then names nothing).
    pub fn delete(&self, id: Option<u32>) -> (GroupTable, Vec<u32>) {
        let Some(id) = id else {
            return (GroupTable::default(), self.groups.keys().copied().collect());
        };
        let mut t = self.clone();
        let removed = t.groups.remove(&id).map(|_| id).into_iter().collect();
        (t, removed)
    }
}

/// The groups an action list names (`group:N`, nested clones included).
pub fn group_refs(acts: &[OfAction]) -> impl Iterator<Item = u32> + '_ {
    let mut out = Vec::new();
    collect_refs(acts, &mut out);
    out.into_iter()
}

fn collect_refs(acts: &[OfAction], out: &mut Vec<u32>) {
    for a in acts {
        match a {
            OfAction::Group(g) => out.push(*g),
            OfAction::Clone(inner) => collect_refs(inner, out),
            _ => {}
        }
    }
}

/// True when `rule` names a group in `ids` (deleting a group deletes it).
pub fn rule_uses_groups(rule: &Rule, ids: &[u32]) -> bool {
    let ins = &rule.instructions;
    group_refs(&ins.apply)
        .chain(ins.write_actions.iter().flat_map(|w| group_refs(w)))
        .any(|g| ids.contains(&g))
}

/// The groups `rule` names that `groups` lacks (OVS refuses the rule).
pub fn missing_groups(rule: &Rule, groups: &GroupTable) -> Option<u32> {
    let ins = &rule.instructions;
    group_refs(&ins.apply)
        .chain(ins.write_actions.iter().flat_map(|w| group_refs(w)))
        .find(|g| groups.get(*g).is_none())
}

/// Splits `s` at top-level commas (not inside parentheses), with offsets.
fn split_top(s: &str, base: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push((&s[start..i], base + start));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((&s[start..], base + start));
    out
}

fn parse_num<T: TryFrom<u64>>(s: &str, pos: usize, what: &str) -> Result<T, Perr> {
    let v = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse::<u64>().ok()
    };
    v.and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| Perr::new(pos, format!("{s}: invalid {what}")))
}

fn parse_watch_port(s: &str, pos: usize) -> Result<u32, Perr> {
    match s.to_ascii_lowercase().as_str() {
        "any" | "none" => Ok(WATCH_PORT_NONE),
        "in_port" => Ok(0xffff_fff8),
        "local" => Ok(0xffff_fffe),
        "controller" => Ok(0xffff_fffd),
        _ => parse_num::<u32>(s, pos, "watch_port"),
    }
}

/// One bucket: `bucket=[bucket_id:N,][weight:W,][watch_port:P,]
/// [watch_group:G,][actions=]ACTIONS` (the text after `bucket=`).
fn parse_bucket(s: &str, base: usize, index: u32) -> Result<Bucket, Perr> {
    let mut b = Bucket {
        bucket_id: index,
        weight: 1,
        watch_port: WATCH_PORT_NONE,
        watch_group: WATCH_GROUP_NONE,
        actions: Vec::new(),
        explicit_id: false,
    };
    let mut rest = s;
    let mut pos = base;
    loop {
        let (head, tail) = match rest.find(',') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (k, v) = match head.find([':', '=']) {
            Some(i) => (&head[..i], &head[i + 1..]),
            None => (head, ""),
        };
        let vpos = pos + k.len() + 1;
        match k {
            "bucket_id" => {
                b.bucket_id = parse_num(v, vpos, "bucket_id")?;
                b.explicit_id = true;
            }
            "weight" => b.weight = parse_num(v, vpos, "weight")?,
            "watch_port" => b.watch_port = parse_watch_port(v, vpos)?,
            "watch_group" => {
                b.watch_group = if v == "any" {
                    WATCH_GROUP_NONE
                } else {
                    parse_num(v, vpos, "watch_group")?
                }
            }
            "actions" => {
                let at = pos + k.len() + 1;
                b.actions = parse_bucket_actions(&rest[k.len() + 1..], at)?;
                return Ok(b);
            }
            _ => {
                b.actions = parse_bucket_actions(rest, pos)?;
                return Ok(b);
            }
        }
        match tail {
            Some(t) => {
                pos += head.len() + 1;
                rest = t;
            }
            None => return Ok(b),
        }
    }
}

fn parse_fields(s: &str, pos: usize) -> Result<Vec<crate::fields::FieldId>, Perr> {
    let mut out = Vec::new();
    let mut p = pos;
    for name in s.split(',') {
        let n = name.trim();
        if !n.is_empty() {
            let f = crate::parse::fields::lookup(n)
                .map(|d| d.id)
                .ok_or_else(|| Perr::new(p, format!("{n}: unknown field in fields()")))?;
            out.push(f);
        }
        p += name.len() + 1;
    }
    Ok(out)
}

fn parse_group_line(line: &str) -> Result<Group, Perr> {
    // Buckets take the rest of their segment up to the next `bucket=`.
    let (head, buckets_s) = match line.find("bucket=") {
        Some(i) => (&line[..i], Some(i)),
        None => (line, None),
    };
    let mut id = None;
    let mut kind = None;
    let mut method = None::<String>;
    let mut fields = Vec::new();
    for (item, pos) in split_top(head, 0) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = match item.find(['=', ':']) {
            Some(i) => (&item[..i], &item[i + 1..]),
            None => (item, ""),
        };
        let vpos = pos + k.len() + 1;
        match k {
            "group_id" => id = Some(parse_num::<u32>(v, vpos, "group_id")?),
            "type" => {
                kind = Some(GroupType::parse(v).ok_or_else(|| {
                    Perr::new(
                        vpos,
                        format!("{v}: unknown group type (all, select, indirect, ff)"),
                    )
                })?)
            }
            "selection_method" => {
                if v != "hash" && v != "dp_hash" {
                    return Err(Perr::new(vpos, format!("{v}: unknown selection_method")));
                }
                method = Some(v.to_string());
            }
            "selection_method_param" => {}
            _ if item.starts_with("fields(") && item.ends_with(')') => {
                fields = parse_fields(&item[7..item.len() - 1], pos + 7)?;
            }
            "fields" => fields = parse_fields(v, vpos)?,
            _ => return Err(Perr::new(pos, format!("{k}: unknown keyword in a group"))),
        }
    }
    let group_id = id.ok_or_else(|| Perr::new(0, "must specify a group_id"))?;
    if group_id > 0xffff_ff00 {
        return Err(Perr::new(0, format!("{group_id}: group_id out of range")));
    }
    let kind = kind.ok_or_else(|| Perr::new(0, "must specify a type"))?;
    let mut buckets = Vec::new();
    if let Some(start) = buckets_s {
        let text = &line[start..];
        let mut offs: Vec<usize> = text.match_indices("bucket=").map(|(i, _)| i).collect();
        offs.push(text.len() + 1);
        for (n, w) in offs.windows(2).enumerate() {
            let from = w[0] + "bucket=".len();
            let to = (w[1] - 1).min(text.len());
            let body =
                text[from..to.max(from)].trim_end_matches(|c: char| c == ',' || c.is_whitespace());
            buckets.push(parse_bucket(body, start + from, n as u32)?);
        }
    }
    if kind == GroupType::Indirect && buckets.len() != 1 {
        return Err(Perr::new(
            0,
            "an indirect group must have exactly one bucket",
        ));
    }
    let selection = match method.as_deref() {
        Some("hash") => SelectionMethod::Hash(fields),
        _ => SelectionMethod::Default,
    };
    Ok(Group {
        group_id,
        kind,
        buckets,
        selection,
    })
}

/// Parses one group (`group_id=1,type=all,bucket=output:2`).
pub fn parse_group(line: &str) -> Result<Group, ParseError> {
    parse_group_line(line.trim()).map_err(|e| e.locate("", 1, line.trim()))
}

/// Parses an `add-groups` file: one group per line, `#` comments.
pub fn parse_groups(text: &str, file_name: &str) -> Result<Vec<Group>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_group_line(line).map_err(|e| e.locate(file_name, n + 1, line))?);
    }
    Ok(out)
}

/// One group as `ovs-ofctl -O OpenFlow13 dump-groups` prints it (without
/// the leading space).
pub fn format_group(g: &Group) -> String {
    let mut s = format!("group_id={},type={}", g.group_id, g.kind.name());
    if let SelectionMethod::Hash(fields) = &g.selection {
        s.push_str(",selection_method=hash");
        if !fields.is_empty() {
            let names: Vec<String> = fields
                .iter()
                .map(|f| crate::parse::fields::canon_name(*f, None))
                .collect();
            s.push_str(&format!(",fields({})", names.join(",")));
        }
    }
    for b in &g.buckets {
        s.push_str(",bucket=");
        if b.explicit_id {
            s.push_str(&format!("bucket_id:{},", b.bucket_id));
        }
        if g.kind == GroupType::Select && b.weight != 1 {
            s.push_str(&format!("weight:{},", b.weight));
        }
        if b.watch_port != WATCH_PORT_NONE {
            s.push_str(&format!("watch_port:{},", b.watch_port));
        }
        if b.watch_group != WATCH_GROUP_NONE {
            s.push_str(&format!("watch_group:{},", b.watch_group));
        }
        s.push_str("actions=");
        s.push_str(&format_action_list(&b.actions));
    }
    s
}

/// `dump-group-stats`'s duration (OVS `ofp_print_duration` of a
/// millisecond clock): `5s`, `5.012s`.
pub fn format_duration(d: Duration) -> String {
    match d.subsec_millis() {
        0 => format!("{}s", d.as_secs()),
        ms => format!("{}.{ms:03}s", d.as_secs()),
    }
}

/// One group's counters as `ovs-ofctl -O OpenFlow13 dump-group-stats`
/// prints them (without the leading space). `ref_count` is the number of
/// rules that name the group.
pub fn format_group_stats(e: &GroupEntry, ref_count: usize, now: Instant) -> String {
    let mut s = format!(
        "group_id={},duration={},ref_count={ref_count},packet_count={},byte_count={}",
        e.group.group_id,
        format_duration(now.saturating_duration_since(e.created)),
        e.stats.n_packets(),
        e.stats.n_bytes()
    );
    for (i, b) in e.bucket_stats.iter().enumerate() {
        s.push_str(&format!(
            ",bucket{i}:packet_count={},byte_count={}",
            b.n_packets(),
            b.n_bytes()
        ));
    }
    s
}

/// The number of rules of `rules` that name group `id` (OVS's group
/// `ref_count`).
pub fn ref_count<'r>(rules: impl Iterator<Item = &'r Rule>, id: u32) -> usize {
    rules.filter(|r| rule_uses_groups(r, &[id])).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_format_is_what_ovs_ofctl_prints() {
        let cases = [
            (
                "group_id=1,type=all,bucket=set_field:00:00:00:00:00:aa->eth_dst,output:2,bucket=mod_nw_dst:10.0.0.99,output:3,bucket=output:4",
                "group_id=1,type=all,bucket=actions=set_field:00:00:00:00:00:aa->eth_dst,output:2,bucket=actions=set_field:10.0.0.99->ip_dst,output:3,bucket=actions=output:4",
            ),
            (
                "group_id=21,type=fast_failover,bucket=watch_port:9,output:2,bucket=watch_port:3,mod_nw_dst:10.9.9.9,output:3",
                "group_id=21,type=ff,bucket=watch_port:9,actions=output:2,bucket=watch_port:3,actions=set_field:10.9.9.9->ip_dst,output:3",
            ),
            (
                "group_id=41,type=select,bucket=weight:10,output:3,bucket=weight:20,output:3",
                "group_id=41,type=select,bucket=weight:10,actions=output:3,bucket=weight:20,actions=output:3",
            ),
            (
                "group_id=1,type=all,bucket=output:2,bucket=mod_nw_ttl:9,group:2",
                "group_id=1,type=all,bucket=actions=output:2,bucket=actions=mod_nw_ttl:9,group:2",
            ),
        ];
        for (input, want) in cases {
            let g = parse_group(input).unwrap();
            assert_eq!(format_group(&g), want, "{input}");
        }
    }

    #[test]
    fn bucket_fields_parse() {
        let g = parse_group(
            "group_id=5,type=ff,bucket=bucket_id:7,watch_port:2,watch_group:3,actions=output:2",
        )
        .unwrap();
        let b = &g.buckets[0];
        assert_eq!((b.bucket_id, b.watch_port, b.watch_group), (7, 2, 3));
        assert_eq!(
            b.actions,
            vec![OfAction::Output(crate::rule::OutputPort::Port(2))]
        );
    }

    #[test]
    fn errors_say_where() {
        let e = parse_group("group_id=1,type=bogus,bucket=output:2").unwrap_err();
        assert_eq!(e.col, 17, "{e}");
        let e = parse_group("group_id=1,type=all,bucket=output:2,bucket=frob:3").unwrap_err();
        assert!(e.col > 37, "{e}");
        assert!(parse_group("type=all,bucket=output:2").is_err());
        assert!(parse_group("group_id=1,type=indirect,bucket=output:2,bucket=output:3").is_err());
    }

    #[test]
    fn table_takes_what_ovs_takes_and_deletes_only_the_group() {
        // OVS 3.1 accepts a bucket naming a missing group and a chain back
        // to the group itself; deleting a group leaves the groups naming it.
        let t = GroupTable::default()
            .add(parse_group("group_id=2,type=all,bucket=group:3").unwrap())
            .unwrap()
            .add(parse_group("group_id=3,type=indirect,bucket=group:2").unwrap())
            .unwrap();
        assert_eq!(
            t.add(parse_group("group_id=3,type=all").unwrap())
                .unwrap_err(),
            GroupError::Exists(3)
        );
        assert_eq!(
            t.modify(parse_group("group_id=4,type=all").unwrap())
                .unwrap_err(),
            GroupError::Unknown(4)
        );
        let (t, removed) = t.delete(Some(3));
        assert_eq!(removed, vec![3]);
        assert_eq!(t.len(), 1);
        assert!(t.get(2).is_some());
        let (t, removed) = t.delete(Some(3));
        assert!(removed.is_empty());
        assert_eq!(t.delete(None).1, vec![2]);
    }
}

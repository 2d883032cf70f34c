//! Translation of `group:N` (OVS `xlate_group_action`): all and indirect
//! groups run every bucket, fast_failover the first live bucket, select one
//! bucket per flow. Each bucket works on its own copy of the flow (its
//! rewrites reach neither its siblings nor the actions after the group) and
//! its actions run as an action set, as OVS `xlate_group_bucket` does.

use super::{action_set_order, Ctx, MAX_DEPTH, MAX_RESUBMITS};
use crate::group::{Bucket, Group, GroupEntry, GroupTable, GroupType, SelectionMethod};
use crate::group::{MAX_LIVENESS_DEPTH, WATCH_GROUP_NONE, WATCH_PORT_NONE};
use crate::xlate::PortSet;
use flowcache::actions::DropReason;
use flowcache::key::*;
use std::sync::Arc;

/// True when `b` may be used (OVS `bucket_is_alive`): no liveness to
/// watch, or a live watch port, or a live watch group.
pub(crate) fn bucket_is_alive(
    groups: &GroupTable,
    ports: &dyn PortSet,
    b: &Bucket,
    depth: u32,
) -> bool {
    if depth >= MAX_LIVENESS_DEPTH {
        return false;
    }
    !b.has_liveness()
        || (b.watch_port != WATCH_PORT_NONE
            && b.watch_port < 0xffff_ff00
            && ports.is_live(b.watch_port))
        || (b.watch_group != WATCH_GROUP_NONE
            && groups.get(b.watch_group).is_some_and(|g| {
                g.group
                    .buckets
                    .iter()
                    .any(|x| bucket_is_alive(groups, ports, x, depth + 1))
            }))
}

/// OVS `hash_int`-style mixing (murmur3 finaliser) of `x` with `basis`.
fn mix(x: u32, basis: u32) -> u32 {
    let mut h = x ^ basis;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The bucket with the best weighted score for `hash` (OVS
/// `group_best_live_bucket`, highest random weight): buckets of weight 0
/// are never chosen.
pub(crate) fn best_bucket<'g>(
    buckets: impl Iterator<Item = (usize, &'g Bucket)>,
    hash: u32,
) -> Option<usize> {
    let mut best = None;
    let mut best_score = 0u64;
    for (i, b) in buckets {
        if b.weight == 0 {
            continue;
        }
        let score = u64::from(mix(b.bucket_id, hash) & 0xffff) * u64::from(b.weight);
        if best.is_none() || score > best_score {
            best = Some(i);
            best_score = score;
        }
    }
    best
}

/// The fields the default selection hashes (OVS
/// `flow_hash_symmetric_l4`): MACs, Ethernet type, VLAN, IP addresses,
/// protocol and L4 ports, symmetric in source and destination.
fn default_hash(flow: &FlowKey, wc: &mut FlowKey) -> u32 {
    wc.dl_src = [0xff; 6];
    wc.dl_dst = [0xff; 6];
    wc.dl_type = 0xffff;
    wc.vlans[0].tci |= 0x1fff;
    let mut h: u32 = 0;
    let mac = |m: [u8; 6]| u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
    let (a, b) = (mac(flow.dl_src), mac(flow.dl_dst));
    h = mix(((a ^ b) as u32) ^ ((a ^ b) >> 32) as u32, h);
    h = mix(u32::from(flow.dl_type), h);
    h = mix(u32::from(flow.vlans[0].tci & 0x1fff), h);
    if flow.is_ipv4() {
        wc.nw_src = u32::MAX;
        wc.nw_dst = u32::MAX;
        h = mix(flow.nw_src ^ flow.nw_dst, h);
    } else if flow.is_ipv6() {
        wc.ipv6_src = [0xff; 16];
        wc.ipv6_dst = [0xff; 16];
        for i in 0..4 {
            let w = |a: &[u8; 16]| {
                u32::from_be_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]])
            };
            h = mix(w(&flow.ipv6_src) ^ w(&flow.ipv6_dst), h);
        }
    }
    if flow.is_ip() {
        wc.nw_proto = 0xff;
        h = mix(u32::from(flow.nw_proto), h);
        if matches!(flow.nw_proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
            && flow.nw_frag & FRAG_LATER == 0
        {
            wc.tp_src = 0xffff;
            wc.tp_dst = 0xffff;
            h = mix(u32::from(flow.tp_src ^ flow.tp_dst), h);
        }
    }
    h
}

/// The hash of `fields` (`selection_method=hash`), each field unwildcarded.
fn fields_hash(fields: &[crate::fields::FieldId], flow: &FlowKey, wc: &mut FlowKey) -> u32 {
    let mut h = 0u32;
    for f in fields {
        if !f.prereq().satisfied(flow, &FlowKey::all_ones()) {
            continue;
        }
        let v = f.get(flow);
        f.or_mask(wc, f.max_value());
        h = mix(v as u32, h);
        h = mix((v >> 32) as u32, h);
        h = mix((v >> 64) as u32, h);
        h = mix((v >> 96) as u32, h);
    }
    h
}

impl Ctx<'_> {
    /// `group:N`.
    pub(super) fn group_action(&mut self, id: u32) {
        if self.depth >= MAX_DEPTH || self.resubmits >= MAX_RESUBMITS {
            self.notef(|| format!(">>>> over max translation depth {MAX_DEPTH} <<<<"));
            self.error = Some(DropReason::RecursionLimit);
            return;
        }
        let groups = self.tables.groups().clone();
        let Some(entry) = groups.get(id) else {
            self.notef(|| format!(" >> output to nonexistent group {id}"));
            return;
        };
        let g: &Group = &entry.group;
        match g.kind {
            GroupType::All | GroupType::Indirect => {
                self.groups.push(super::GroupUse {
                    group: entry.clone(),
                    bucket: None,
                });
                for (i, b) in g.buckets.iter().enumerate() {
                    self.notef(|| format!(" -> bucket {i}"));
                    self.group_bucket(b);
                }
            }
            GroupType::FastFailover => {
                let mut chosen = None;
                for (i, b) in g.buckets.iter().enumerate() {
                    if bucket_is_alive(&groups, self.ports, b, 0) {
                        chosen = Some(i);
                        break;
                    }
                    self.notef(|| format!(" -> bucket {i}: not live due to port {}", b.watch_port));
                }
                self.use_bucket(entry, chosen);
            }
            GroupType::Select => {
                let hash = match &g.selection {
                    SelectionMethod::Default => default_hash(&self.flow, &mut self.wc),
                    SelectionMethod::Hash(f) => fields_hash(f, &self.flow, &mut self.wc),
                };
                let live = g
                    .buckets
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| bucket_is_alive(&groups, self.ports, b, 0));
                let chosen = best_bucket(live, hash);
                self.use_bucket(entry, chosen);
            }
        }
    }

    fn use_bucket(&mut self, entry: &Arc<GroupEntry>, chosen: Option<usize>) {
        match chosen {
            Some(i) => {
                self.notef(|| format!(" -> using bucket {i}"));
                self.groups.push(super::GroupUse {
                    group: entry.clone(),
                    bucket: Some(i),
                });
                self.group_bucket(&entry.group.buckets[i]);
            }
            None => self.note(" -> no live bucket"),
        }
    }

    /// OVS `xlate_group_bucket`: the bucket's actions as an action set, on
    /// a copy of the flow.
    fn group_bucket(&mut self, b: &Bucket) {
        let list = action_set_order(&b.actions);
        let old_flow = self.flow;
        let old_was_mpls = self.was_mpls;
        let old_tail = self.rule_tail.take();
        self.indent += 1;
        self.depth += 1;
        self.do_actions(&list);
        self.depth -= 1;
        self.indent -= 1;
        if self.freezing && self.error.is_none() {
            self.finish_freezing();
            self.freezing = false;
        }
        self.rule_tail = old_tail;
        self.flow = old_flow;
        self.was_mpls = old_was_mpls;
        // A bucket's `exit` or TTL exception ends only the bucket.
        self.exit = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(id: u32, weight: u16) -> Bucket {
        Bucket {
            bucket_id: id,
            weight,
            watch_port: WATCH_PORT_NONE,
            watch_group: WATCH_GROUP_NONE,
            actions: Vec::new(),
            explicit_id: false,
        }
    }

    #[test]
    fn weights_split_flows_in_proportion_and_zero_is_never_chosen() {
        let bs = [bucket(0, 10), bucket(1, 30), bucket(2, 0)];
        let mut counts = [0u32; 3];
        for flow in 0..40_000u32 {
            let h = mix(flow, 0x1234);
            let i = best_bucket(bs.iter().enumerate(), h).unwrap();
            counts[i] += 1;
        }
        assert_eq!(counts[2], 0);
        // HRW with scores hash*weight: bucket 1 takes well over half.
        assert!(counts[1] > counts[0] * 2, "{counts:?}");
        assert!(counts[0] > 0, "{counts:?}");
    }

    #[test]
    fn one_flow_always_takes_the_same_bucket() {
        let bs = [bucket(0, 1), bucket(1, 1), bucket(2, 1)];
        let k = FlowKey {
            dl_type: ETH_TYPE_IPV4,
            nw_proto: IPPROTO_UDP,
            nw_src: 0x0a000001,
            nw_dst: 0x0a000002,
            tp_src: 1234,
            tp_dst: 80,
            ..Default::default()
        };
        let mut wc = FlowKey::default();
        let first = best_bucket(bs.iter().enumerate(), default_hash(&k, &mut wc));
        for _ in 0..100 {
            let mut wc2 = FlowKey::default();
            assert_eq!(
                best_bucket(bs.iter().enumerate(), default_hash(&k, &mut wc2)),
                first
            );
        }
        assert_eq!(wc.tp_dst, 0xffff);
        assert_eq!(wc.nw_src, u32::MAX);
    }

    #[test]
    fn all_weights_zero_chooses_nothing() {
        let bs = [bucket(0, 0), bucket(1, 0)];
        assert_eq!(best_bucket(bs.iter().enumerate(), 7), None);
    }
}

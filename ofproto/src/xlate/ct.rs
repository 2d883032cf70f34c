//! Translation of `ct(...)` and `ct_clear` (OVS `compose_conntrack_action`,
//! `compose_ct_clear_action`).
//!
//! The zone (an immediate or a field read here), the `exec` writes to
//! `ct_mark`/`ct_label` (as value/mask pairs) and the NAT request are
//! resolved at translation time into one datapath `ct(...)`. Header
//! changes made so far are committed first (the tracker must see the
//! packet as it is). With `table=T` the translation forks: a frozen state
//! that resumes at table T is registered and `recirc(ID)` follows the
//! `ct`, so the packet comes back through T with its ct fields set, while
//! the actions after the `ct` go on here with the ct fields as they were
//! (OVS: "ct(commit) without table= leaves ct_state unchanged").

use super::Ctx;
use crate::fields::FieldId;
use crate::recirc::{FrozenState, FrozenStep};
use crate::rule::{CtSpec, CtZone, OfAction};
use flowcache::actions::{CtAction, DpAction};
use flowcache::key::{CS_TRACKED, DP_WORDS};

impl Ctx<'_> {
    pub(super) fn ct_action(&mut self, c: &CtSpec) {
        let zone = match c.zone {
            CtZone::Imm(z) => z,
            CtZone::Field(sf) => {
                sf.field.or_mask(&mut self.wc, sf.mask());
                sf.read(&self.flow) as u16
            }
        };
        // `exec`: run the writes on a scratch copy of the flow and keep
        // which bits of ct_mark and ct_label they set.
        let mut scratch = self.flow;
        let (mut mark_bits, mut label_bits) = (0u128, 0u128);
        for a in &c.exec {
            let (field, bits) = match a {
                OfAction::SetField { field, value, mask } => {
                    field.set_masked(&mut scratch, *value, *mask);
                    (*field, *mask)
                }
                OfAction::Load { dst, value } => {
                    dst.write(&mut scratch, *value);
                    (dst.field, dst.mask())
                }
                OfAction::Move { src, dst } => {
                    let v = src.read(&self.flow);
                    src.field.or_mask(&mut self.wc, src.mask());
                    dst.write(&mut scratch, v);
                    (dst.field, dst.mask())
                }
                _ => continue,
            };
            match field {
                FieldId::CtMark => mark_bits |= bits,
                FieldId::CtLabel => label_bits |= bits,
                _ => {}
            }
        }
        let mark = (mark_bits != 0).then(|| {
            let m = mark_bits as u32;
            (scratch.ct_mark & m, m)
        });
        let label = (label_bits != 0).then(|| {
            let v = u128::from_be_bytes(scratch.ct_label);
            (v & label_bits, label_bits)
        });
        self.commit_pending();
        self.actions.push(DpAction::Ct(Box::new(CtAction {
            zone,
            commit: c.commit,
            force: c.force,
            mark,
            label,
            nat: c.nat,
        })));
        if let Some(t) = c.table {
            // Fork: the packet recirculates into table T; this translation
            // goes on with the actions after the ct.
            let mut metadata = [0u64; crate::recirc::META_WORDS];
            metadata.copy_from_slice(&self.flow.words()[DP_WORDS..]);
            let node = self.recirc.freeze(FrozenState {
                table_id: t,
                steps: vec![FrozenStep::GotoTable(t)],
                action_set: self.action_set.clone(),
                metadata,
            });
            self.notef(|| format!(" -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table {t}."));
            self.actions.push(DpAction::Recirc(node.id()));
            self.recircs.push(node);
        }
    }

    pub(super) fn ct_clear(&mut self) {
        let tracked = self.flow.ct_state & CS_TRACKED != 0
            || self.actions.iter().any(|a| matches!(a, DpAction::Ct(_)));
        for f in [&mut self.flow, &mut self.base] {
            f.ct_state = 0;
            f.ct_zone = 0;
            f.ct_mark = 0;
            f.ct_label = [0; 16];
            f.ct_nw_proto = 0;
            f.ct_nw_src = 0;
            f.ct_nw_dst = 0;
            f.ct_ipv6_src = [0; 16];
            f.ct_ipv6_dst = [0; 16];
            f.ct_tp_src = 0;
            f.ct_tp_dst = 0;
        }
        if tracked {
            self.actions.push(DpAction::CtClear);
        }
    }
}

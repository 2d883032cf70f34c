//! Translation of the actions that run part of the pipeline on a copy of
//! the packet or of the translation state (OVS `ofproto-dpif-xlate.c`):
//! `clone(...)` (`compose_clone`), `check_pkt_larger` (`xlate_check_pkt_larger`)
//! and `output(port=P,max_len=N)` (`xlate_output_trunc_action`).

use super::{Ctx, Flow, Step};
use crate::recirc::FrozenStep;
use crate::rule::{OfAction, OutputPort};
use flowcache::actions::DpAction;
use std::sync::Arc;

/// OVS `reversible_actions`: a clone made only of these is translated
/// inline (its header changes undone by the commits that follow it);
/// anything else needs a datapath `clone()`.
fn reversible(acts: &[OfAction]) -> bool {
    !acts
        .iter()
        .any(|a| matches!(a, OfAction::OutputTrunc { .. }))
}

/// True when the datapath actions send the packet anywhere (nested lists
/// included).
pub(super) fn emits_output(actions: &[DpAction]) -> bool {
    actions.iter().any(|a| match a {
        DpAction::Clone(l) => emits_output(l),
        DpAction::CheckPktLen { gt, le, .. } => emits_output(gt) || emits_output(le),
        DpAction::Sample { actions, .. } => emits_output(actions),
        a => a.is_output() || matches!(a, DpAction::Recirc(_)),
    })
}

impl Ctx<'_> {
    /// `clone(ACTIONS)`: the flow, the action set and the MPLS state are
    /// restored afterwards; outputs inside see the clone's changes.
    pub(super) fn clone_actions(&mut self, acts: &[OfAction]) {
        let old_flow = self.flow;
        let old_set = self.action_set.clone();
        let old_was_mpls = self.was_mpls;
        let old_tail = self.rule_tail.take();
        self.indent += 1;
        if reversible(acts) {
            self.do_actions(acts);
        } else {
            // Datapath clone: the packet after it is the one before it, so
            // the commit base is restored too.
            let old_base = self.base;
            let outer = std::mem::take(&mut self.actions);
            self.do_actions(acts);
            let inner = std::mem::replace(&mut self.actions, outer);
            if !inner.is_empty() {
                self.actions.push(DpAction::Clone(Arc::from(inner)));
            }
            self.base = old_base;
        }
        self.indent -= 1;
        self.rule_tail = old_tail;
        self.flow = old_flow;
        self.action_set = old_set;
        self.was_mpls = old_was_mpls;
        // `exit` inside a clone ends only the clone (OVS resets it there).
        self.exit = false;
    }

    /// `check_pkt_larger(N)->dst`, followed by `rest` (the remaining
    /// actions and instructions of this list): the rest is translated twice,
    /// once with dst=1 (`gt`) and once with dst=0 (`le`), each with the
    /// action set, and the datapath decides per packet. Translation ends
    /// here (OVS sets `ctx->exit`).
    pub(super) fn check_pkt_larger(
        &mut self,
        pkt_len: u16,
        dst: &crate::fields::SubField,
        rest: Vec<FrozenStep>,
    ) -> Flow {
        self.commit_pending();
        let old_flow = self.flow;
        let old_base = self.base;
        let old_set = self.action_set.clone();
        let old_was_mpls = self.was_mpls;
        let old_tail = self.rule_tail.take();
        let outer = std::mem::take(&mut self.actions);
        let steps: Vec<Step> = rest.iter().map(Step::from_frozen).collect();
        let branch = |ctx: &mut Self, larger: bool| -> Vec<DpAction> {
            ctx.notef(|| {
                format!(
                    "check_pkt_larger: {} than {pkt_len}",
                    if larger { "larger" } else { "not larger" }
                )
            });
            dst.write(&mut ctx.flow, u128::from(larger));
            ctx.indent += 1;
            ctx.do_steps(&steps);
            if ctx.error.is_none() && !ctx.freezing && !ctx.exit {
                ctx.exec_action_set();
            }
            if ctx.freezing && ctx.error.is_none() {
                ctx.finish_freezing();
                ctx.freezing = false;
            }
            ctx.indent -= 1;
            ctx.exit = false;
            ctx.flow = old_flow;
            ctx.base = old_base;
            ctx.action_set = old_set.clone();
            ctx.was_mpls = old_was_mpls;
            std::mem::take(&mut ctx.actions)
        };
        let gt = branch(self, true);
        let le = branch(self, false);
        self.actions = outer;
        self.actions.push(DpAction::CheckPktLen {
            size: pkt_len,
            gt: Arc::from(gt),
            le: Arc::from(le),
        });
        self.action_set = old_set;
        self.rule_tail = old_tail;
        self.exit = true;
        Flow::Stop
    }

    /// `output(port=P,max_len=N)`: `trunc(N)` then the output, for ports
    /// OVS allows it on (not the reserved ports, not IN_PORT, not the input
    /// port, not a missing port: OVS warns and sends nothing).
    pub(super) fn output_trunc(&mut self, port: OutputPort, max_len: u32) {
        match port {
            OutputPort::Port(p) if p == self.flow.in_port => {
                self.note(" >> skipping output to input port")
            }
            OutputPort::Port(p) if self.ports.contains(p) => {
                self.actions.push(DpAction::Truncate(max_len));
                self.compose_output(p);
            }
            OutputPort::Port(p) => {
                self.notef(|| format!(" >> output_trunc does not support patch port {p}"))
            }
            OutputPort::InPort => self.note(" >> output_trunc does not support patch port IN_PORT"),
            OutputPort::Local => self.note(" >> no local port"),
            other => self.notef(|| format!(" >> output_trunc does not support port: {other:?}")),
        }
    }
}

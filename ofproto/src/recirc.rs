//! Recirculation ids and frozen translations (OVS `ofproto-dpif-rid.c`).
//!
//! When translation must see headers the datapath has not parsed yet (a
//! table lookup after `pop_mpls` exposed an IP header), it *freezes*: the
//! rest of the work — the table it was in, the actions still to run, the
//! action set, metadata and registers — becomes a [`FrozenState`], the
//! datapath actions end with `recirc(ID)`, and the datapath looks the
//! re-parsed packet up again with `recirc_id=ID`. The upcall for that key
//! *thaws* the state and carries on where translation stopped.
//!
//! A [`RecircRegistry`] gives every distinct frozen state one id (the same
//! state gets the same id, so megaflows can share it) and keeps it only as
//! long as something holds the [`RecircNode`]: the translations (and so the
//! megaflows) that emit `recirc(ID)` or match `recirc_id=ID` hold a
//! reference; when the last one goes the id is freed (OVS's
//! `recirc_id_node` reference counting).

use crate::rule::{OfAction, TableId};
use flowcache::key::{DP_WORDS, KEY_WORDS};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// One step of translation still to run after a thaw: an apply-action or
/// one of the instructions that follow the apply-actions in a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FrozenStep {
    /// An action of an apply-actions list (or of the action set being
    /// executed).
    Action(OfAction),
    /// `clear_actions`.
    ClearActions,
    /// `write_actions(...)`.
    WriteActions(Vec<OfAction>),
    /// `write_metadata:V/M`.
    WriteMetadata(u64, u64),
    /// `goto_table:N`.
    GotoTable(TableId),
}

/// Words of OpenFlow metadata (metadata and registers) in a key.
pub const META_WORDS: usize = KEY_WORDS - DP_WORDS;

/// Everything translation needs to resume after a recirculation (OVS
/// `struct frozen_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrozenState {
    /// The table translation was in (where `resubmit` without a table
    /// looks).
    pub table_id: TableId,
    /// What is left to run, innermost resubmit level first.
    pub steps: Vec<FrozenStep>,
    /// The action set as it was.
    pub action_set: Vec<OfAction>,
    /// `metadata` and the registers (the key words from `DP_WORDS`).
    pub metadata: [u64; META_WORDS],
}

/// A recirculation id and its frozen state; the id lives as long as this
/// does.
#[derive(Debug)]
pub struct RecircNode {
    id: u32,
    state: Arc<FrozenState>,
    registry: Weak<Mutex<Inner>>,
}

impl RecircNode {
    /// The recirculation id (never 0).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The frozen state.
    pub fn state(&self) -> &FrozenState {
        &self.state
    }
}

impl Drop for RecircNode {
    fn drop(&mut self) {
        let Some(reg) = self.registry.upgrade() else {
            return;
        };
        let mut g = reg.lock();
        // Another thread may have re-registered the state (under a new id)
        // after this node's count reached zero: remove only dead entries.
        if g.by_id.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
            g.by_id.remove(&self.id);
        }
        if g.by_state
            .get(&self.state)
            .is_some_and(|w| w.strong_count() == 0)
        {
            g.by_state.remove(&self.state);
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_state: HashMap<Arc<FrozenState>, Weak<RecircNode>>,
    by_id: HashMap<u32, Weak<RecircNode>>,
    last_id: u32,
}

/// The recirculation ids of one bridge.
#[derive(Debug, Default)]
pub struct RecircRegistry {
    inner: Arc<Mutex<Inner>>,
}

impl RecircRegistry {
    /// An empty registry.
    pub fn new() -> RecircRegistry {
        RecircRegistry::default()
    }

    /// The node for `state`: the existing one when an identical state is
    /// registered, else a new id.
    pub fn freeze(&self, state: FrozenState) -> Arc<RecircNode> {
        let mut g = self.inner.lock();
        if let Some(n) = g.by_state.get(&state).and_then(Weak::upgrade) {
            return n;
        }
        let mut id = g.last_id;
        loop {
            id = id.wrapping_add(1);
            if id != 0 && g.by_id.get(&id).is_none_or(|w| w.strong_count() == 0) {
                break;
            }
        }
        g.last_id = id;
        let state = Arc::new(state);
        let node = Arc::new(RecircNode {
            id,
            state: state.clone(),
            registry: Arc::downgrade(&self.inner),
        });
        g.by_id.insert(id, Arc::downgrade(&node));
        g.by_state.insert(state, Arc::downgrade(&node));
        node
    }

    /// The node of `id` (a new reference), if the id is in use.
    pub fn thaw(&self, id: u32) -> Option<Arc<RecircNode>> {
        self.inner.lock().by_id.get(&id).and_then(Weak::upgrade)
    }

    /// Number of ids in use.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .by_id
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// True when no id is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: TableId) -> FrozenState {
        FrozenState {
            table_id: t,
            steps: vec![FrozenStep::GotoTable(t)],
            action_set: Vec::new(),
            metadata: [0; META_WORDS],
        }
    }

    #[test]
    fn same_state_same_id_and_freed_with_last_reference() {
        let r = RecircRegistry::new();
        let a = r.freeze(state(1));
        let b = r.freeze(state(1));
        let c = r.freeze(state(2));
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_ne!(a.id(), 0);
        assert_eq!(r.len(), 2);
        assert_eq!(r.thaw(a.id()).unwrap().state(), &state(1));
        drop(a);
        assert!(r.thaw(b.id()).is_some());
        let id = b.id();
        drop(b);
        assert!(r.thaw(id).is_none());
        assert_eq!(r.len(), 1);
        // A freed state gets a fresh id (ids are not reused at once).
        let d = r.freeze(state(1));
        assert_ne!(d.id(), id);
        drop(c);
        drop(d);
        assert!(r.is_empty());
    }
}

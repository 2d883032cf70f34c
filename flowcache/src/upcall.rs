//! The upcall protocol between PMD threads and the handler pool.
//!
//! A PMD that misses in both the EMC and the dpcls parks the packet (it
//! never leaves the PMD, so tx queues stay per-PMD and lock-free) and sends
//! an [`UpcallRequest`] with the packet's key over a bounded queue. A
//! handler thread translates the key through the OpenFlow pipeline (a
//! [`Translator`]) and answers with an [`UpcallReply`]; the PMD installs
//! the megaflow at a burst boundary and executes the parked packets.

use crate::actions::{ActionList, DropReason};
use crate::key::FlowKey;
use crate::megaflow::Megaflow;
use std::any::Any;
use std::sync::Arc;

/// A miss, sent from a PMD to the handler pool.
#[derive(Clone, Debug)]
pub struct UpcallRequest {
    /// Index of the PMD that asked (where the reply goes).
    pub pmd: usize,
    /// The packet's datapath key.
    pub key: FlowKey,
    /// TSC when the PMD sent it (for µs/upcall).
    pub sent_tsc: u64,
}

/// A packet a `userspace` action sends to the handler pool (OVS
/// `DPIF_UC_ACTION` upcall): a copy of its bytes, its metadata and the
/// action's cookie.
#[derive(Clone, Debug)]
pub struct UserspacePacket {
    /// Index of the PMD that sent it.
    pub pmd: usize,
    pub cookie: crate::actions::UserCookie,
    pub meta: crate::extract::PacketMeta,
    pub data: Vec<u8>,
}

/// What the OpenFlow pipeline makes of a key.
#[derive(Clone)]
pub struct Translation {
    /// Datapath actions for every packet the megaflow covers.
    pub actions: ActionList,
    /// The megaflow mask: the bits translation consulted. Words at and after
    /// `DP_WORDS` are zero.
    pub mask: FlowKey,
    /// False when the megaflow must not be installed (flow limit reached):
    /// the packet is executed, the next one upcalls again.
    pub install: bool,
    /// The translation changed the slow path's state (a `learn` added or
    /// replaced a rule): its actions are right for the packet that made
    /// it, maybe not for the next one. The megaflow is not installed, and
    /// the packets parked behind the upcall are translated again, one
    /// after the other, as if each had come alone.
    pub state_changed: bool,
    /// Why the packet is dropped, when the action list is empty.
    pub drop_reason: Option<DropReason>,
    /// The rules that produced it, opaque to the datapath: the revalidator
    /// hands them back to the [`Translator`] to credit megaflow statistics.
    pub rules: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Translation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translation")
            .field("actions", &self.actions)
            .field("install", &self.install)
            .field("drop_reason", &self.drop_reason)
            .finish_non_exhaustive()
    }
}

/// A handler's answer to one [`UpcallRequest`].
#[derive(Clone, Debug)]
pub struct UpcallReply {
    /// The key of the request.
    pub key: FlowKey,
    /// Echo of the request's `sent_tsc`.
    pub sent_tsc: u64,
    /// [`Translator::generation`] read before translating: the PMD
    /// installs the megaflow only if the rules are still that generation
    /// (else a rule change made while translating would live on in it).
    pub generation: u64,
    /// The translation.
    pub translation: Translation,
    /// The megaflow of `key` and the translation, built by the handler
    /// (when `translation.install`) so that its allocation and the first
    /// touch of its memory happen off the PMD. Not yet owned: its id and
    /// PMD are set with [`Megaflow::set_owner`] by the PMD that installs
    /// it, which holds the only reference until then.
    pub megaflow: Option<Arc<Megaflow>>,
}

/// See [`Translator::on_rules_changed`]; must not block.
pub type ChangeHook = Arc<dyn Fn() + Send + Sync>;

/// The slow path as the datapath sees it: turns keys into actions and
/// masks. Implemented by `ofproto`.
pub trait Translator: Send + Sync {
    /// Translates one datapath key.
    fn translate(&self, key: &FlowKey) -> Translation;

    /// Translates an installed megaflow's key to check it is still right:
    /// like [`Translator::translate`] but without side effects (NORMAL
    /// learns nothing from a key no packet just brought).
    fn revalidate(&self, key: &FlowKey) -> Translation {
        self.translate(key)
    }

    /// The packet of a datapath `userspace` action, on a handler thread
    /// (after it was counted): the OpenFlow channel's packet-in. Must not
    /// block. Default: nothing (the packet is dropped).
    fn userspace(&self, up: &UserspacePacket) {
        let _ = up;
    }

    /// A number that changes whenever the rule tables change, so the
    /// revalidator knows when installed megaflows must be checked again.
    fn generation(&self) -> u64;

    /// Registers `hook`, to be called (on a control thread, never a PMD)
    /// after every change of [`Translator::generation`], so that the
    /// revalidator checks the megaflows at once rather than at its next
    /// periodic round. Default: never called.
    fn on_rules_changed(&self, hook: ChangeHook) {
        let _ = hook;
    }

    /// A number that changes whenever translator state other than the
    /// rule tables changes (NORMAL's MAC table). The revalidator then asks
    /// [`Translator::affected`] of each megaflow, rather than translating
    /// them all again as after a [`Translator::generation`] change.
    fn state_version(&self) -> u64 {
        0
    }

    /// True when the megaflow whose translation returned `rules` (its
    /// [`Translation::rules`]) may be wrong after state changes made since
    /// that translation; the revalidator translates it again. Asked both
    /// after [`Translator::state_version`] changes and of each megaflow
    /// when it is installed (a translation can race with a change).
    fn affected(&self, rules: &(dyn Any + Send + Sync)) -> bool {
        let _ = rules;
        false
    }

    /// Credits `packets`/`bytes` seen by a megaflow (since the last call)
    /// to the rules in `rules` (the value of [`Translation::rules`]).
    fn credit(&self, rules: &(dyn Any + Send + Sync), packets: u64, bytes: u64, used_ms: u64) {
        let _ = (rules, packets, bytes, used_ms);
    }
}

//! The revalidator: keeps the registry of installed megaflows, credits their
//! statistics to the OpenFlow rules, expires idle ones, and re-translates
//! them when the rule tables change so that no packet follows a deleted or
//! overridden rule for longer than one revalidation round.

use super::pmd_thread::{DatapathLimits, InstalledMegaflow, PmdCommand, PmdEvent};
use crate::packet::Packet;
use crossbeam_channel::{Receiver, Sender};
use flowcache::megaflow::Megaflow;
use flowcache::upcall::Translator;
use parking_lot::Mutex;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the revalidator wakes up when nothing asks it to.
pub const REVALIDATE_INTERVAL: Duration = Duration::from_millis(100);

/// One installed megaflow as the control plane knows it.
pub struct MegaflowEntry {
    pub megaflow: Arc<Megaflow>,
    /// Index of the PMD that owns it.
    pub pmd: usize,
    /// Rules behind it (opaque, for [`Translator::credit`]).
    pub rules: Option<Arc<dyn Any + Send + Sync>>,
    /// Packets/bytes already credited to the rules.
    credited_packets: u64,
    credited_bytes: u64,
}

/// The registry of installed megaflows, by id.
#[derive(Default)]
pub struct Registry {
    pub flows: HashMap<u64, MegaflowEntry>,
    /// Megaflows removed because they went idle.
    pub expired: u64,
    /// Megaflows removed because their translation changed.
    pub revalidated_away: u64,
    /// Revalidation rounds run after a rule change.
    pub revalidations: u64,
    /// Megaflows translated again (after a rule change: all of them; after
    /// a state change: the affected ones).
    pub retranslated: u64,
}

/// Requests to the revalidator.
pub enum RevalidatorCommand {
    /// Run a full round now (re-translate everything) and acknowledge.
    RevalidateNow(Sender<()>),
    /// Remove every megaflow and acknowledge.
    FlushAll(Sender<()>),
    /// The rules changed: wake up and check (nothing to acknowledge).
    RulesChanged,
}

/// Runs the revalidator loop until `stop` is set.
///
/// Installed-megaflow events are registered as soon as they arrive (so the
/// control plane sees new megaflows at once), but a round — a pass over
/// the whole registry — runs only every [`REVALIDATE_INTERVAL`], when the
/// rule tables changed, or when asked. Running one per wake-up made the
/// cost of an upcall storm quadratic: every batch of installs walked every
/// megaflow installed before it.
#[allow(clippy::too_many_arguments)]
pub fn run<P: Packet>(
    events: Receiver<PmdEvent>,
    commands: Receiver<RevalidatorCommand>,
    pmds: Vec<Sender<PmdCommand<P>>>,
    registry: Arc<Mutex<Registry>>,
    translator: Arc<dyn Translator>,
    limits: Arc<DatapathLimits>,
    stop: Arc<AtomicBool>,
) {
    let mut generation = translator.generation();
    let mut state = translator.state_version();
    let mut next_round = Instant::now() + REVALIDATE_INTERVAL;
    let mut trim = MemoryTrim::default();
    // A state change (or a megaflow installed after one it depends on)
    // not checked yet, and when the next such check may run: a check
    // walks every megaflow, so after one that took T the next waits 3 T.
    // In an upcall storm where every upcall learns a MAC that keeps the
    // revalidator to a quarter of its time rather than one walk per
    // install batch; with few megaflows it checks at once.
    let mut pending = false;
    // Megaflows registered that were translated under older rules.
    let mut stale_rules = false;
    let mut affected_after = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut acks: Vec<Sender<()>> = Vec::new();
        let mut force = false;
        let mut flush = false;
        // Wake up at the next round at the latest; `stop` is checked at
        // least every interval.
        let mut until = next_round;
        if pending {
            until = until.min(affected_after);
        }
        let wait = until
            .saturating_duration_since(Instant::now())
            .min(REVALIDATE_INTERVAL);
        crossbeam_channel::select! {
            recv(events) -> ev => {
                if let Ok(ev) = ev {
                    let s = register(&registry, &*translator, ev);
                    pending |= s.state;
                    stale_rules |= s.rules;
                }
            }
            recv(commands) -> cmd => match cmd {
                Ok(RevalidatorCommand::RevalidateNow(ack)) => { force = true; acks.push(ack); }
                Ok(RevalidatorCommand::FlushAll(ack)) => { flush = true; acks.push(ack); }
                Ok(RevalidatorCommand::RulesChanged) => {}
                Err(_) => {}
            },
            default(wait) => {}
        }
        // Everything installed so far is registered before any round, so
        // a round never misses a megaflow a PMD already uses.
        while let Ok(ev) = events.try_recv() {
            let s = register(&registry, &*translator, ev);
            pending |= s.state;
            stale_rules |= s.rules;
        }
        let now_gen = translator.generation();
        let changed = now_gen != generation;
        generation = now_gen;
        let now_state = translator.state_version();
        pending |= now_state != state;
        state = now_state;
        let now = Instant::now();
        let check = if force || changed || std::mem::take(&mut stale_rules) {
            Check::All
        } else if pending && now >= affected_after {
            Check::Affected
        } else {
            Check::None
        };
        if flush || check != Check::None || now >= next_round {
            round(&registry, &*translator, &limits, &pmds, check, flush);
            if check != Check::None {
                pending = false;
            }
            if check == Check::Affected {
                affected_after = Instant::now() + 3 * now.elapsed();
            }
            next_round = now + REVALIDATE_INTERVAL;
            trim.after_round(&registry);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Gives memory back to the system after a flow storm: freed megaflows
/// return to malloc's arenas, which keep them (238 MB grew to 528 MB and
/// stayed after a 1M-flow storm). Once the registry has shrunk to half its
/// high-water mark, by at least [`MemoryTrim::MIN_DROP`] flows, the
/// registry's own table is shrunk and `malloc_trim` returns the free pages
/// of every arena. It runs here, in the revalidator, never on a PMD.
#[derive(Default)]
struct MemoryTrim {
    high_water: usize,
}

impl MemoryTrim {
    const MIN_DROP: usize = 10_000;

    fn after_round(&mut self, registry: &Mutex<Registry>) {
        let n = {
            let mut reg = registry.lock();
            let n = reg.flows.len();
            self.high_water = self.high_water.max(n);
            if n > self.high_water / 2 || self.high_water - n < Self::MIN_DROP {
                return;
            }
            reg.flows.shrink_to_fit();
            n
        };
        // SAFETY: malloc_trim only releases free memory of malloc's arenas;
        // it has no preconditions and touches no live allocation.
        let released = unsafe { libc::malloc_trim(0) };
        log::debug!(
            "megaflows down from {} to {n}: memory trimmed (released: {})",
            self.high_water,
            released != 0
        );
        self.high_water = n;
    }
}

/// Registers installed megaflows; true when one of them is already
/// [affected](Translator::affected) by a state change.
fn register(registry: &Mutex<Registry>, translator: &dyn Translator, ev: PmdEvent) -> Staleness {
    let mut stale = Staleness::default();
    match ev {
        PmdEvent::Installed { pmd, flows } => {
            let mut reg = registry.lock();
            let generation = translator.generation();
            for InstalledMegaflow {
                megaflow,
                rules,
                generation: translated,
            } in flows
            {
                stale.state |= rules.as_ref().is_some_and(|r| translator.affected(&**r));
                // Translated before a rule change that a round may
                // already have checked without it.
                stale.rules |= translated != generation;
                reg.flows.insert(
                    megaflow.id,
                    MegaflowEntry {
                        megaflow,
                        pmd,
                        rules,
                        credited_packets: 0,
                        credited_bytes: 0,
                    },
                );
            }
        }
    }
    stale
}

/// What newly registered megaflows may disagree with.
#[derive(Clone, Copy, Debug, Default)]
struct Staleness {
    /// Translator state (the MAC table) changed since their translation.
    state: bool,
    /// The rules changed since their translation.
    rules: bool,
}

/// Which megaflows a round translates again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    None,
    /// The rule tables changed: every one.
    All,
    /// Translator state changed: those [`Translator::affected`] says.
    Affected,
}

/// True when every bit of `inner` is also set in `outer`.
fn mask_within(inner: &flowcache::FlowKey, outer: &flowcache::FlowKey) -> bool {
    inner
        .words()
        .iter()
        .zip(outer.words())
        .all(|(i, o)| i & !o == 0)
}

/// One pass over the registry: credit stats, expire idle flows, and check
/// the megaflows `check` selects against the current rules and state.
fn round<P: Packet>(
    registry: &Mutex<Registry>,
    translator: &dyn Translator,
    limits: &DatapathLimits,
    pmds: &[Sender<PmdCommand<P>>],
    check: Check,
    flush: bool,
) {
    let now = super::clock::now_ms();
    let n_flows = limits.n_megaflows.load(Ordering::Relaxed);
    let limit = limits.flow_limit.load(Ordering::Relaxed);
    // Like OVS: at or above the flow limit, idle flows go after 100 ms.
    let max_idle = if n_flows >= limit {
        100
    } else {
        limits.max_idle_ms.load(Ordering::Relaxed)
    };
    let mut removed: Vec<Vec<Arc<Megaflow>>> = vec![Vec::new(); pmds.len()];
    let mut reg = registry.lock();
    let reg = &mut *reg;
    if check == Check::All {
        reg.revalidations += 1;
    }
    let mut expired = 0;
    let mut revalidated_away = 0;
    let mut retranslated = 0;
    reg.flows.retain(|_, e| {
        let s = e.megaflow.stats.snapshot();
        if let Some(rules) = &e.rules {
            let dp = s.packets - e.credited_packets;
            let db = s.bytes - e.credited_bytes;
            if dp > 0 {
                translator.credit(&**rules, dp, db, s.used);
                e.credited_packets = s.packets;
                e.credited_bytes = s.bytes;
            }
        }
        let keep = if flush || e.megaflow.is_dead() {
            false
        } else if now.saturating_sub(s.used) > max_idle {
            expired += 1;
            false
        } else if check == Check::All
            || (check == Check::Affected
                && e.rules.as_ref().is_some_and(|r| translator.affected(&**r)))
        {
            retranslated += 1;
            let t = translator.revalidate(e.megaflow.key());
            let same = t.install
                && *t.actions == *e.megaflow.actions
                && mask_within(&t.mask, e.megaflow.mask());
            if !same {
                revalidated_away += 1;
            } else if t.rules.is_some() {
                // What the megaflow now depends on, as of this translation.
                e.rules = t.rules;
            }
            same
        } else {
            true
        };
        if !keep {
            e.megaflow.mark_dead();
            limits.n_megaflows.fetch_sub(1, Ordering::Relaxed);
            if let Some(v) = removed.get_mut(e.pmd) {
                v.push(e.megaflow.clone());
            }
        }
        keep
    });
    reg.expired += expired;
    reg.revalidated_away += revalidated_away;
    reg.retranslated += retranslated;
    for (pmd, flows) in removed.into_iter().enumerate() {
        if !flows.is_empty() {
            let _ = pmds[pmd].send(PmdCommand::RemoveMegaflows(flows));
        }
    }
}

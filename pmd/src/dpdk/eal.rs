//! EAL initialisation and teardown.
//!
//! DPDK allows one `rte_eal_init` per process, and nothing may touch DPDK
//! after `rte_eal_cleanup`. [`Eal`] enforces both: every [`Mempool`] and
//! [`EthPort`] holds a reference on the initialised EAL, and the cleanup
//! runs when the [`Eal`] handle and all of them are gone.
//!
//! [`Mempool`]: super::Mempool
//! [`EthPort`]: super::EthPort

use super::error::{DpdkError, RteError};
use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Program name given to DPDK as `argv[0]`.
const PROGRAM_NAME: &str = "vportd";

/// Set once `rte_eal_init` has been called. Never cleared: DPDK 22.11 keeps
/// state from a failed attempt (e.g. "-l is set"), so a retry would fail
/// for the wrong reason or half-work.
static INIT_ATTEMPTED: AtomicBool = AtomicBool::new(false);

/// The live EAL, while anything still uses it.
static LIVE_EAL: Mutex<Weak<EalLive>> = Mutex::new(Weak::new());

/// Proof that the EAL is initialised; the last one dropped runs
/// `rte_eal_cleanup`.
#[derive(Debug)]
pub(crate) struct EalLive {
    _private: (),
}

impl EalLive {
    /// Calls `rte_eal_cleanup`, consuming the last reference.
    fn cleanup_now(self) -> Result<(), DpdkError> {
        std::mem::forget(self);
        // SAFETY: `self` was the last reference on the EAL: every mempool and
        // port (the only users of DPDK memory and devices) is gone, so no
        // DPDK object outlives the cleanup. It runs once, as `self` is
        // forgotten instead of dropped.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret < 0 {
            return Err(DpdkError::EalCleanup {
                error: RteError::from_ret(ret),
            });
        }
        Ok(())
    }
}

impl Drop for EalLive {
    fn drop(&mut self) {
        // SAFETY: as in `cleanup_now`: this is the last reference, dropped
        // exactly once.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret < 0 {
            log::warn!("rte_eal_cleanup failed: {}", RteError::from_ret(ret));
        }
    }
}

/// A reference that keeps the EAL initialised.
pub(crate) type EalRef = Arc<EalLive>;

/// A reference on the live EAL, or `EalNotInitialized`.
pub(crate) fn eal_ref() -> Result<EalRef, DpdkError> {
    LIVE_EAL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .upgrade()
        .ok_or(DpdkError::EalNotInitialized)
}

/// True while the EAL is initialised and not cleaned up.
pub fn is_initialized() -> bool {
    eal_ref().is_ok()
}

/// Whether the EAL runs on hugepages (false with `--no-huge`, or before
/// the EAL is initialised).
pub fn has_hugepages() -> bool {
    // SAFETY: reads a flag of the EAL configuration, set by rte_eal_init.
    is_initialized() && unsafe { dpdk_sys::rte_eal_has_hugepages() } != 0
}

/// The initialised DPDK Environment Abstraction Layer.
///
/// Dropping it (or calling [`Eal::cleanup`]) runs `rte_eal_cleanup` once
/// every mempool and port is gone too.
#[derive(Debug)]
pub struct Eal {
    live: EalRef,
}

impl Eal {
    /// Initialises the EAL with `args`, split like a shell command line
    /// (`-l 0-1 --no-huge --vdev 'net_pcap0,rx_pcap=/tmp/a b.pcap'`);
    /// `argv[0]` is `"vportd"`.
    ///
    /// `rte_eal_init` runs at most once per process: a later call, even
    /// after a failure or a cleanup, gives
    /// [`DpdkError::EalAlreadyInitialized`] (argument strings that cannot be
    /// split are refused before that and do not count). Note that
    /// `rte_eal_init` pins the calling thread to the main lcore's CPUs.
    pub fn init(args: &str) -> Result<Eal, DpdkError> {
        let words = shlex::split(args).ok_or_else(|| DpdkError::EalArgs {
            args: args.to_string(),
            reason: "unbalanced quotes or a trailing backslash",
        })?;
        let argv_strings = std::iter::once(PROGRAM_NAME.to_string())
            .chain(words)
            .map(CString::new)
            .collect::<Result<Vec<CString>, _>>()
            .map_err(|_| DpdkError::EalArgs {
                args: args.to_string(),
                reason: "an argument contains a NUL byte",
            })?;
        let argc = c_int::try_from(argv_strings.len()).map_err(|_| DpdkError::EalArgs {
            args: args.to_string(),
            reason: "too many arguments",
        })?;
        if INIT_ATTEMPTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialized);
        }

        // DPDK may keep pointers into argv (and permutes the array), so the
        // strings and the array are leaked: this happens once per process.
        let argv: &'static mut [*mut c_char] = Vec::leak(
            argv_strings
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        // SAFETY: argv holds argc NUL-terminated strings followed by a NULL,
        // all leaked so they stay valid forever; INIT_ATTEMPTED guarantees no
        // concurrent or repeated call from this wrapper.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let error = RteError::last();
            return Err(DpdkError::EalInit {
                args: args.to_string(),
                error,
            });
        }

        let live = Arc::new(EalLive { _private: () });
        *LIVE_EAL.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&live);
        Ok(Eal { live })
    }

    /// Runs `rte_eal_cleanup` now, or gives [`DpdkError::EalInUse`] when
    /// mempools or ports still exist (the cleanup then runs when the last
    /// of them is dropped).
    pub fn cleanup(self) -> Result<(), DpdkError> {
        match Arc::try_unwrap(self.live) {
            Ok(live) => live.cleanup_now(),
            Err(shared) => Err(DpdkError::EalInUse {
                users: Arc::strong_count(&shared) - 1,
            }),
        }
    }

    /// How many mempools and ports keep the EAL alive besides this handle.
    pub fn users(&self) -> usize {
        Arc::strong_count(&self.live) - 1
    }
}

//! PMD threads as EAL lcores, and the TSC clock.

use super::eal::is_initialized;
use super::error::{DpdkError, RteError};
use std::cell::Cell;

/// `LCORE_ID_ANY`: the lcore id of a thread unknown to the EAL.
const LCORE_ID_ANY: u32 = dpdk_sys::LCORE_ID_ANY;

thread_local! {
    /// Set when `register_thread` registered this thread (so that
    /// `unregister_thread` leaves EAL-created lcores alone).
    static REGISTERED_HERE: Cell<bool> = const { Cell::new(false) };
}

/// The calling thread's lcore id, `None` for a thread unknown to the EAL.
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads the calling thread's per-lcore variable.
    let id = unsafe { dpdk_sys::vportd_lcore_id() };
    (id != LCORE_ID_ANY).then_some(id)
}

/// Gives the calling thread an lcore id (`rte_thread_register`), so that
/// mempool per-lcore caches and lcore-aware APIs work on it; returns the
/// id. A thread that already has one (an EAL lcore, or registered before)
/// keeps it. Pair with [`unregister_thread`] before the thread exits.
pub fn register_thread() -> Result<u32, DpdkError> {
    if !is_initialized() {
        return Err(DpdkError::EalNotInitialized);
    }
    if let Some(id) = lcore_id() {
        return Ok(id);
    }
    // SAFETY: the EAL is initialised; registers the calling thread only.
    let ret = unsafe { dpdk_sys::rte_thread_register() };
    if ret < 0 {
        return Err(DpdkError::ThreadRegister {
            error: RteError::last(),
        });
    }
    REGISTERED_HERE.with(|flag| flag.set(true));
    lcore_id().ok_or_else(|| DpdkError::ThreadRegister {
        error: RteError::from_errno(libc::ENOMEM),
    })
}

/// Releases the lcore id [`register_thread`] gave the calling thread
/// (`rte_thread_unregister`); a no-op for other threads.
pub fn unregister_thread() {
    if REGISTERED_HERE.with(|flag| flag.replace(false)) {
        // SAFETY: this thread was registered by `register_thread`;
        // unregistering flushes its mempool caches and frees its lcore id.
        unsafe { dpdk_sys::rte_thread_unregister() };
    }
}

/// The CPU's time-stamp counter.
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no
        // memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the CPU cycle counter; no preconditions.
        unsafe { dpdk_sys::vportd_rdtsc() }
    }
}

/// TSC ticks per second as measured by the EAL (`rte_get_tsc_hz`); 0
/// before the EAL is initialised.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL set at init (0 before).
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

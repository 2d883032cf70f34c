//! Packet buffer pools.

use super::eal::{eal_ref, EalRef};
use super::error::{DpdkError, RteError};
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

/// Headroom DPDK reserves at the front of every mbuf (`RTE_PKTMBUF_HEADROOM`).
pub const MBUF_HEADROOM: u16 = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;

/// DPDK's default mbuf buffer size: 2048 bytes of data plus the headroom
/// (`RTE_MBUF_DEFAULT_BUF_SIZE`).
pub const MBUF_DEFAULT_BUF_SIZE: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// Longest mempool name DPDK accepts (`RTE_MEMPOOL_NAMESIZE` minus the NUL).
pub const MEMPOOL_NAME_MAX: usize = dpdk_sys::RTE_MEMPOOL_NAMESIZE as usize - 1;

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// Cheap to clone (a shared handle). Ports configured with it keep it
/// alive. When the last handle goes, the pool is freed if none of its
/// mbufs is in use; otherwise it is leaked (with a warning) so that the
/// outstanding [`Mbuf`](super::Mbuf)s stay valid.
#[derive(Clone, Debug)]
pub struct Mempool {
    shared: Arc<MempoolShared>,
}

#[derive(Debug)]
struct MempoolShared {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    capacity: u32,
    data_room: u16,
    eal: EalRef,
}

// SAFETY: the pool is only used through DPDK's thread-safe mempool API (the
// default ring_mp_mc ops, counts that read atomics or per-lcore caches), and
// Rust never writes to the rte_mempool struct.
unsafe impl Send for MempoolShared {}
// SAFETY: see Send: every operation through `&MempoolShared` is thread-safe.
unsafe impl Sync for MempoolShared {}

impl Mempool {
    /// Creates a pool of `n_mbufs` mbufs with a per-lcore cache of
    /// `cache_size` and `data_room` bytes of buffer per mbuf (headroom
    /// included, as in `rte_pktmbuf_pool_create`; [`MBUF_DEFAULT_BUF_SIZE`]
    /// is the usual value), on any NUMA socket.
    pub fn new(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
    ) -> Result<Mempool, DpdkError> {
        Self::new_on_socket(
            name,
            n_mbufs,
            cache_size,
            data_room,
            dpdk_sys::SOCKET_ID_ANY,
        )
    }

    /// [`Mempool::new`] with memory from NUMA socket `socket_id`
    /// (`-1` for any).
    pub fn new_on_socket(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
        socket_id: i32,
    ) -> Result<Mempool, DpdkError> {
        let invalid_name = |reason| DpdkError::InvalidName {
            what: "mempool",
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid_name("empty"));
        }
        if name.len() > MEMPOOL_NAME_MAX {
            return Err(invalid_name("longer than RTE_MEMPOOL_NAMESIZE - 1 bytes"));
        }
        let c_name = CString::new(name).map_err(|_| invalid_name("contains a NUL byte"))?;
        if n_mbufs == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name:?}: n_mbufs must be at least 1"
            )));
        }
        if data_room < MBUF_HEADROOM {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name:?}: data_room {data_room} is smaller than the {MBUF_HEADROOM}-byte headroom"
            )));
        }
        let eal = eal_ref()?;
        // SAFETY: the EAL is initialised (`eal` proves it); c_name is a valid
        // NUL-terminated string that DPDK copies.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                n_mbufs,
                cache_size,
                0,
                data_room,
                socket_id,
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::MempoolCreate {
            name: name.to_string(),
            error: RteError::last(),
        })?;
        Ok(Mempool {
            shared: Arc::new(MempoolShared {
                raw,
                name: name.to_string(),
                capacity: n_mbufs,
                data_room,
                eal,
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Bytes of buffer per mbuf, headroom included.
    pub fn data_room(&self) -> u16 {
        self.shared.data_room
    }

    /// Number of mbufs in the pool.
    pub fn capacity(&self) -> u32 {
        self.shared.capacity
    }

    /// Mbufs currently allocated (`rte_mempool_in_use_count`).
    pub fn in_use(&self) -> u32 {
        self.shared.in_use()
    }

    /// Mbufs free in the pool, per-lcore caches included
    /// (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: `raw` is a live pool; the count only reads it.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.shared.raw.as_ptr()) }
    }

    /// The raw pool, valid while `self` (or any clone) is alive.
    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.shared.raw.as_ptr()
    }
}

impl MempoolShared {
    fn in_use(&self) -> u32 {
        // SAFETY: `raw` is a live pool; the count only reads it.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for MempoolShared {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use != 0 {
            log::warn!(
                "mempool {:?} dropped with {in_use} mbuf(s) in use: leaking it (and keeping the EAL up)",
                self.name
            );
            // The mbufs still point into the pool and the EAL's memory.
            std::mem::forget(self.eal.clone());
            return;
        }
        // SAFETY: last handle, no mbuf in use (none can be allocated any
        // more: allocating needs a handle), the EAL is alive (`self.eal`).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
    }
}

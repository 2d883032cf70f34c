//! Packet buffer pools.

use super::eal::{eal_ref, EalRef};
use super::error::{DpdkError, RteError};
use super::thp::{HugeRegion, HUGE_PAGE};
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

/// Where a pool's mbufs live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MbufMemory {
    /// The EAL's memory (hugepages, or 4 KiB pages with `--no-huge`), as
    /// `rte_pktmbuf_pool_create` does. Usable by every device.
    Eal,
    /// Anonymous memory on transparent huge pages (see [`super::thp`]),
    /// for EALs without hugepages. Only virtual devices can use it: DPDK
    /// cannot map it for DMA.
    TransparentHugePages,
}

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
    /// The pool's memory when it is not the EAL's; unmapped after the
    /// pool is freed (field order: `raw` is freed in `drop` first).
    region: Option<HugeRegion>,
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
        let c_name = check_args(name, n_mbufs, data_room)?;
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
                region: None,
                eal,
            }),
        })
    }

    /// [`Mempool::new`] with its mbufs in `memory`.
    pub fn with_memory(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
        memory: MbufMemory,
    ) -> Result<Mempool, DpdkError> {
        match memory {
            MbufMemory::Eal => Self::new(name, n_mbufs, cache_size, data_room),
            MbufMemory::TransparentHugePages => {
                Self::new_on_huge_region(name, n_mbufs, cache_size, data_room)
            }
        }
    }

    /// What `rte_pktmbuf_pool_create` does, with the objects placed in a
    /// [`HugeRegion`] instead of the EAL's memory: create an empty pool,
    /// give it the platform's mbuf ops and pktmbuf private data, populate
    /// it from the region, initialise every mbuf.
    fn new_on_huge_region(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
    ) -> Result<Mempool, DpdkError> {
        let c_name = check_args(name, n_mbufs, data_room)?;
        let eal = eal_ref()?;
        let failed = |what: &str, error: RteError| DpdkError::MempoolCreate {
            name: format!("{name} ({what})"),
            error,
        };
        // Without NO_IOVA_CONTIG, DPDK keeps every object within one page
        // of the EAL's page size (4 KiB without hugepages): one 2 KiB mbuf
        // per page, as the EAL's own no-huge pools have it.
        const POOL_FLAGS: u32 = dpdk_sys::RTE_MEMPOOL_F_NO_IOVA_CONTIG;
        let elt_size = std::mem::size_of::<dpdk_sys::rte_mbuf>() as u32 + u32::from(data_room);
        // Objects are packed back to back (NO_IOVA_CONTIG: they may
        // straddle pages, which only matters for DMA), plus room for the
        // alignment of the first one.
        let mut objsz = dpdk_sys::rte_mempool_objsz::default();
        // SAFETY: `objsz` is a live struct to fill.
        let obj_size =
            unsafe { dpdk_sys::rte_mempool_calc_obj_size(elt_size, POOL_FLAGS, &mut objsz) };
        let size = n_mbufs as usize * obj_size as usize + HUGE_PAGE;
        // Declared before the pool, so dropped after it on the error paths
        // (freeing a pool walks its objects, which live in the region).
        let region = HugeRegion::map(size).map_err(|e| {
            failed(
                "anonymous memory",
                RteError::from_errno(e.raw_os_error().unwrap_or(libc::ENOMEM)),
            )
        })?;
        // SAFETY: the EAL is initialised; c_name is NUL-terminated and
        // copied; the private area is the pktmbuf one, filled just below.
        let raw = unsafe {
            dpdk_sys::rte_mempool_create_empty(
                c_name.as_ptr(),
                n_mbufs,
                elt_size,
                cache_size,
                std::mem::size_of::<dpdk_sys::rte_pktmbuf_pool_private>() as u32,
                dpdk_sys::SOCKET_ID_ANY,
                POOL_FLAGS,
            )
        };
        let building = NonNull::new(raw)
            .map(PoolUnderConstruction)
            .ok_or_else(|| failed("create", RteError::last()))?;
        let mp = raw;
        // SAFETY: `mp` is an empty pool just created; the ops name is a
        // static NUL-terminated string from librte_mbuf.
        let ret = unsafe {
            dpdk_sys::rte_mempool_set_ops_byname(
                mp,
                dpdk_sys::rte_mbuf_best_mempool_ops(),
                std::ptr::null_mut(),
            )
        };
        if ret != 0 {
            return Err(failed("mempool ops", RteError::from_ret(ret)));
        }
        let mut private = dpdk_sys::rte_pktmbuf_pool_private {
            mbuf_data_room_size: data_room,
            mbuf_priv_size: 0,
            flags: 0,
        };
        // SAFETY: `mp` was created with room for exactly this private
        // struct; DPDK copies it.
        unsafe {
            dpdk_sys::rte_pktmbuf_pool_init(
                mp,
                (&mut private as *mut dpdk_sys::rte_pktmbuf_pool_private).cast(),
            )
        };
        // SAFETY: the region is `region.len()` writable bytes, aligned to
        // HUGE_PAGE, and outlives the pool (it is dropped after the pool
        // is freed, here or in MempoolShared's drop); no free callback:
        // the region is ours.
        let populated = unsafe {
            dpdk_sys::rte_mempool_populate_virt(
                mp,
                region.start().cast(),
                region.len(),
                HUGE_PAGE,
                None,
                std::ptr::null_mut(),
            )
        };
        if populated < 0 {
            return Err(failed("populate", RteError::from_ret(populated)));
        }
        if populated as u32 != n_mbufs {
            return Err(failed("populate", RteError::from_errno(libc::ENOMEM)));
        }
        // SAFETY: every object of `mp` is an mbuf-sized element of a
        // pktmbuf pool; rte_pktmbuf_init takes no argument.
        unsafe {
            dpdk_sys::rte_mempool_obj_iter(
                mp,
                Some(dpdk_sys::rte_pktmbuf_init),
                std::ptr::null_mut(),
            )
        };
        Ok(Mempool {
            shared: Arc::new(MempoolShared {
                raw: building.finish(),
                name: name.to_string(),
                capacity: n_mbufs,
                data_room,
                region: Some(region),
                eal,
            }),
        })
    }

    /// Where the pool's mbufs live.
    pub fn memory(&self) -> MbufMemory {
        match self.shared.region {
            Some(_) => MbufMemory::TransparentHugePages,
            None => MbufMemory::Eal,
        }
    }

    /// For a pool on transparent huge pages: bytes of its memory and how
    /// many of them the kernel backs with huge pages now.
    pub fn huge_page_backing(&self) -> Option<(u64, Option<u64>)> {
        let region = self.shared.region.as_ref()?;
        Some((region.len() as u64, region.huge_bytes()))
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

/// A pool being built: freed on drop unless [`finish`](Self::finish)ed.
struct PoolUnderConstruction(NonNull<dpdk_sys::rte_mempool>);

impl PoolUnderConstruction {
    fn finish(self) -> NonNull<dpdk_sys::rte_mempool> {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }
}

impl Drop for PoolUnderConstruction {
    fn drop(&mut self) {
        // SAFETY: a pool created here that nothing else refers to; none of
        // its mbufs was handed out.
        unsafe { dpdk_sys::rte_mempool_free(self.0.as_ptr()) };
    }
}

/// Checks a pool's name, size and buffer size; returns the name for C.
fn check_args(name: &str, n_mbufs: u32, data_room: u16) -> Result<CString, DpdkError> {
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
    Ok(c_name)
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
                "mempool {:?} dropped with {in_use} mbuf(s) still held (by a driver whose queue set-up failed, or packets not yet freed): leaking it until exit, and keeping the EAL up",
                self.name
            );
            // The mbufs still point into the pool and its memory.
            std::mem::forget(self.eal.clone());
            std::mem::forget(self.region.take());
            return;
        }
        // SAFETY: last handle, no mbuf in use (none can be allocated any
        // more: allocating needs a handle), the EAL is alive (`self.eal`).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
    }
}

//! Anonymous memory on transparent huge pages, for mbuf pools when the EAL
//! runs without hugepages (`--no-huge`).
//!
//! With `--no-huge` the EAL's memory is 4 KiB pages. A 2 KiB mbuf then
//! lives on its own page more often than not, and a burst of 32 mbufs
//! touches some 18 pages: every pass over their headers pays for TLB
//! misses (on the project's VM, about 9 cycles per mbuf and pass). A pool
//! on 2 MiB pages does not. The kernel gives anonymous memory huge pages
//! when asked with `madvise(MADV_HUGEPAGE)` (THP mode `madvise` or
//! `always`); the EAL's own no-huge memory is a memfd, which would need
//! the system-wide shmem setting instead.
//!
//! DPDK does not know this memory: a device that DMAs (a PCI NIC) cannot
//! use it, so [`EthPort::configure`](super::EthPort::configure) refuses
//! pools on it for devices outside the virtual-device bus.

use std::fs;

/// Size of a transparent huge page on x86_64 and aarch64 (4 KiB base).
pub const HUGE_PAGE: usize = 2 << 20;

/// Whether the kernel hands out transparent huge pages to memory that asks
/// (`/sys/kernel/mm/transparent_hugepage/enabled` is `always` or
/// `madvise`).
pub fn available() -> bool {
    match fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(mode) => mode.contains("[always]") || mode.contains("[madvise]"),
        Err(_) => false,
    }
}

/// A private anonymous mapping, aligned to [`HUGE_PAGE`], advised to use
/// huge pages; unmapped on drop.
#[derive(Debug)]
pub(crate) struct HugeRegion {
    /// The whole mapping (alignment slack included).
    map: *mut libc::c_void,
    map_len: usize,
    /// The aligned part handed out.
    start: *mut u8,
    len: usize,
}

// SAFETY: the region is plain memory; whoever writes to it (DPDK's mempool)
// synchronises its own accesses. HugeRegion itself only unmaps on drop.
unsafe impl Send for HugeRegion {}
// SAFETY: see Send; `&HugeRegion` only reads the addresses.
unsafe impl Sync for HugeRegion {}

impl HugeRegion {
    /// Maps `len` bytes (rounded up to whole huge pages). The memory is not
    /// touched: each huge page is faulted in by its first write.
    pub(crate) fn map(len: usize) -> std::io::Result<HugeRegion> {
        let len = len.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        let map_len = len + HUGE_PAGE;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let offset = (map as usize).next_multiple_of(HUGE_PAGE) - map as usize;
        // SAFETY: offset < HUGE_PAGE, so start..start+len is inside the map.
        let start = unsafe { map.cast::<u8>().add(offset) };
        let region = HugeRegion {
            map,
            map_len,
            start,
            len,
        };
        // SAFETY: start..start+len is our mapping. MADV_HUGEPAGE only
        // changes how future faults are served.
        if unsafe { libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(region)
    }

    pub(crate) fn start(&self) -> *mut u8 {
        self.start
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the region the kernel currently backs with huge pages
    /// (`AnonHugePages` of its mapping in `/proc/self/smaps`); `None` when
    /// that cannot be read.
    pub(crate) fn huge_bytes(&self) -> Option<u64> {
        let smaps = fs::read_to_string("/proc/self/smaps").ok()?;
        huge_bytes_of(&smaps, self.start as usize)
    }
}

impl Drop for HugeRegion {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` is the mapping made in `map`; nothing
        // refers to it any more (the owner drops it after freeing the pool).
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// `AnonHugePages` of the mapping that starts at `start` in an smaps text.
fn huge_bytes_of(smaps: &str, start: usize) -> Option<u64> {
    let header = format!("{start:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&header));
    lines.next()?;
    for line in lines {
        if let Some(rest) = line.strip_prefix("AnonHugePages:") {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            return Some(kib * 1024);
        }
        // The next mapping's header: hex range, no colon-terminated key.
        if line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('-') && !w.ends_with(':'))
        {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0
Size:               4096 kB
AnonHugePages:         0 kB
7f0000600000-7f0000e00000 rw-p 00000000 00:00 0
Size:               8192 kB
Rss:                4096 kB
AnonHugePages:      4096 kB
VmFlags: rd wr mr mw me ac hg
";

    #[test]
    fn reads_the_huge_pages_of_the_right_mapping() {
        assert_eq!(huge_bytes_of(SMAPS, 0x7f00_0060_0000), Some(4 << 20));
        assert_eq!(huge_bytes_of(SMAPS, 0x7f00_0000_0000), Some(0));
        assert_eq!(huge_bytes_of(SMAPS, 0x7f00_0100_0000), None);
    }

    #[test]
    fn region_is_aligned_and_writable() {
        let region = HugeRegion::map(3 * HUGE_PAGE + 1).expect("mmap");
        assert_eq!(region.start() as usize % HUGE_PAGE, 0);
        assert_eq!(region.len(), 4 * HUGE_PAGE);
        // SAFETY: the region is ours and `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts_mut(region.start(), region.len()) };
        bytes[0] = 1;
        bytes[region.len() - 1] = 2;
        assert_eq!(bytes[0] + bytes[region.len() - 1], 3);
        assert!(region.huge_bytes().is_some());
    }
}

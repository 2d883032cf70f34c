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
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// Program name given to DPDK as `argv[0]`.
const PROGRAM_NAME: &str = "vportd";

/// Set once `rte_eal_init` has been called. Never cleared: DPDK 22.11 keeps
/// state from a failed attempt (e.g. "-l is set"), so a retry would fail
/// for the wrong reason or half-work.
static INIT_ATTEMPTED: AtomicBool = AtomicBool::new(false);

/// The live EAL, while anything still uses it.
static LIVE_EAL: Mutex<Weak<EalLive>> = Mutex::new(Weak::new());

/// The runtime directory (`/var/run/dpdk/<file-prefix>`) this process owns
/// as the primary: removed after `rte_eal_cleanup`.
static OWNED_RUNTIME_DIR: OnceLock<PathBuf> = OnceLock::new();

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
        remove_owned_runtime_dir();
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
        } else {
            remove_owned_runtime_dir();
        }
    }
}

/// Removes the runtime directory the primary process owned (config,
/// memseg fbarrays, the mp socket): nothing uses it once the EAL is gone,
/// and left behind it only confuses the next process with that prefix.
///
/// The EAL cleanup does this; a process about to exit with the EAL still
/// up (a pool leaked because a driver kept mbufs) calls it itself.
pub fn remove_owned_runtime_dir() {
    if let Some(dir) = OWNED_RUNTIME_DIR.get() {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("removing the DPDK runtime directory {}: {e}", dir.display());
            }
        }
    }
}

/// EAL options that decide what happens to hugepage backing files.
const HUGEFILE_OPTIONS: [&str; 4] = ["--huge-unlink", "--in-memory", "--no-huge", "--proc-type"];

/// `words` plus the defaults vportd adds: `--huge-unlink` unless the
/// arguments already say how hugepage files are handled. Without it DPDK
/// leaves one `<prefix>map_N` file per hugepage in the hugetlbfs mount
/// after the process exits (clean exit or kill -9), holding the pages
/// until something deletes them; unlinked files are freed by the kernel
/// with the process. The cost is DPDK secondary processes (dpdk-pdump,
/// dpdk-proc-info), which need the files: pass `--huge-unlink=existing`
/// to keep them.
fn with_defaults(mut words: Vec<String>) -> Vec<String> {
    let decided = words.iter().any(|w| {
        HUGEFILE_OPTIONS
            .iter()
            .any(|o| w == o || w.starts_with(&format!("{o}=")))
    });
    if !decided {
        words.push("--huge-unlink".to_string());
    }
    words
}

/// The runtime directory DPDK 22.11 uses for `words` (`eal_create_runtime_dir`):
/// `/var/run` for root, else `$XDG_RUNTIME_DIR` or `/tmp`, then
/// `dpdk/<file-prefix>` (default `rte`).
fn runtime_dir_for(words: &[String]) -> PathBuf {
    let mut prefix = "rte".to_string();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if let Some(p) = w.strip_prefix("--file-prefix=") {
            prefix = p.to_string();
        } else if w == "--file-prefix" {
            if let Some(p) = it.next() {
                prefix = p.clone();
            }
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let base = if unsafe { libc::getuid() } == 0 {
        PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    };
    base.join("dpdk").join(prefix)
}

/// The runtime directory of the initialised EAL, when this process is its
/// primary.
fn primary_runtime_dir() -> Option<PathBuf> {
    // SAFETY: both only read the EAL configuration set by a successful
    // rte_eal_init; the directory string is NUL-terminated and static.
    unsafe {
        if dpdk_sys::rte_eal_process_type() != dpdk_sys::RTE_PROC_PRIMARY {
            return None;
        }
        let dir = dpdk_sys::rte_eal_get_runtime_dir();
        if dir.is_null() {
            return None;
        }
        let s = CStr::from_ptr(dir).to_str().ok()?;
        Some(PathBuf::from(s))
    }
}

/// A directory DPDK made for a process: `.../dpdk/<prefix>`.
fn is_dpdk_runtime_dir(dir: &Path) -> bool {
    dir.parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "dpdk")
        && dir.file_name().is_some()
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
        let words = with_defaults(words);
        let argv_strings = std::iter::once(PROGRAM_NAME.to_string())
            .chain(words.iter().cloned())
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
        let expected_dir = runtime_dir_for(&words);
        let dir_existed = expected_dir.exists();

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
            // A failed init that made the runtime directory leaves it
            // behind; one that existed before belongs to someone else (a
            // running primary with this prefix) and stays.
            if !dir_existed && is_dpdk_runtime_dir(&expected_dir) {
                let _ = std::fs::remove_dir_all(&expected_dir);
            }
            return Err(DpdkError::EalInit {
                args: args.to_string(),
                error,
            });
        }
        if let Some(dir) = primary_runtime_dir().filter(|d| is_dpdk_runtime_dir(d)) {
            let _ = OWNED_RUNTIME_DIR.set(dir);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shlex::split(s).unwrap()
    }

    #[test]
    fn hugepage_files_are_unlinked_unless_the_arguments_decide() {
        let w = with_defaults(words("-l 0-1 --file-prefix=a"));
        assert_eq!(w.last().map(String::as_str), Some("--huge-unlink"));
        for decided in [
            "--no-huge",
            "--in-memory",
            "--huge-unlink=existing",
            "--huge-unlink",
            "--proc-type=secondary",
        ] {
            let w = with_defaults(words(&format!("-l 0 {decided}")));
            assert_eq!(
                w.iter().filter(|x| x.starts_with("--huge-unlink")).count(),
                usize::from(decided.starts_with("--huge-unlink")),
                "{decided}"
            );
        }
    }

    #[test]
    fn runtime_dir_follows_the_file_prefix() {
        let base = runtime_dir_for(&words("-l 0"));
        assert!(base.ends_with("dpdk/rte"), "{}", base.display());
        assert!(runtime_dir_for(&words("--file-prefix=sw1")).ends_with("dpdk/sw1"));
        assert!(runtime_dir_for(&words("--file-prefix sw2 -l 0")).ends_with("dpdk/sw2"));
        assert!(is_dpdk_runtime_dir(Path::new("/var/run/dpdk/x")));
        assert!(!is_dpdk_runtime_dir(Path::new("/var/run/x")));
        assert!(!is_dpdk_runtime_dir(Path::new("/")));
    }
}

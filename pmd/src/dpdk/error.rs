//! Errors of the DPDK layer.

use std::ffi::CStr;
use std::fmt;

/// An error number reported by DPDK (a return code or `rte_errno`), with
/// its `rte_strerror` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RteError {
    /// The positive errno value (`EINVAL`, `ENODEV`, ...).
    pub errno: i32,
    /// `rte_strerror(errno)`.
    pub message: String,
}

impl RteError {
    /// The error for a positive errno value.
    pub fn from_errno(errno: i32) -> Self {
        // SAFETY: rte_strerror accepts any value and returns a pointer to a
        // NUL-terminated string (static, or a thread-local buffer that stays
        // valid until the next call on this thread); it is copied at once.
        let text = unsafe { dpdk_sys::rte_strerror(errno) };
        let message = if text.is_null() {
            format!("unknown error {errno}")
        } else {
            // SAFETY: non-null, NUL-terminated, see above.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        };
        RteError { errno, message }
    }

    /// The error for a negative DPDK return code (`-errno`).
    pub fn from_ret(ret: i32) -> Self {
        Self::from_errno(ret.saturating_neg())
    }

    /// The calling thread's `rte_errno`.
    pub fn last() -> Self {
        // SAFETY: reads the calling thread's rte_errno; no preconditions.
        let errno = unsafe { dpdk_sys::vportd_errno() };
        Self::from_errno(errno)
    }
}

impl fmt::Display for RteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for RteError {}

/// Direction of a port queue, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDir {
    /// A receive queue.
    Rx,
    /// A transmit queue.
    Tx,
}

impl fmt::Display for QueueDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueDir::Rx => "rx",
            QueueDir::Tx => "tx",
        })
    }
}

/// Everything that can go wrong in [`crate::dpdk`].
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` was already called in this process (DPDK allows one
    /// attempt per process: not after a failure, nor after cleanup).
    #[error("rte_eal_init was already called in this process (one attempt per process, successful or not)")]
    EalAlreadyInitialized,
    /// A DPDK object was requested before `Eal::init` or after the EAL was
    /// cleaned up.
    #[error("the DPDK EAL is not initialised (call Eal::init first) or was cleaned up")]
    EalNotInitialized,
    /// The EAL argument string could not be split into words.
    #[error("cannot parse EAL arguments {args:?}: {reason}")]
    EalArgs {
        /// The argument string as given.
        args: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `rte_eal_init` failed.
    #[error("rte_eal_init failed with arguments {args:?}: {error}")]
    EalInit {
        /// The argument string as given.
        args: String,
        /// `rte_errno` after the failure.
        error: RteError,
    },
    /// `rte_eal_cleanup` failed.
    #[error("rte_eal_cleanup failed: {error}")]
    EalCleanup {
        /// Its return code.
        error: RteError,
    },
    /// `Eal::cleanup` found mempools or ports still alive; the cleanup runs
    /// when the last of them is dropped.
    #[error("EAL cleanup deferred: {users} mempool/port handle(s) still use the EAL")]
    EalInUse {
        /// How many handles keep the EAL alive.
        users: usize,
    },
    /// A name given to DPDK is empty, too long or contains a NUL byte.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// What the name is for ("mempool", "device", ...).
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `rte_pktmbuf_pool_create` failed.
    #[error("cannot create mempool {name:?}: {error}")]
    MempoolCreate {
        /// The pool name.
        name: String,
        /// `rte_errno` after the failure.
        error: RteError,
    },
    /// No free mbuf in the pool.
    #[error("mempool {pool:?} has no free mbuf")]
    MempoolExhausted {
        /// The pool name.
        pool: String,
    },
    /// A frame is larger than an mbuf of the pool can hold.
    #[error("a {len}-byte frame does not fit in an mbuf of pool {pool:?} ({room} bytes of room)")]
    FrameTooLarge {
        /// The pool name.
        pool: String,
        /// The frame length.
        len: usize,
        /// Room in one mbuf after the headroom.
        room: usize,
    },
    /// No ethdev has this name.
    #[error("no DPDK ethdev named {name:?} (add it with --vdev/-a at EAL init, or attach it with devargs)")]
    NoSuchDevice {
        /// The name looked up.
        name: String,
    },
    /// `rte_dev_probe` failed.
    #[error("cannot attach device {devargs:?}: {error}")]
    DeviceProbe {
        /// The devargs string.
        devargs: String,
        /// Its return code.
        error: RteError,
    },
    /// Another [`EthPort`](super::EthPort) already owns this port.
    #[error("DPDK port {name:?} (id {port_id}) is already open")]
    PortAlreadyOpen {
        /// The device name.
        name: String,
        /// Its ethdev port id.
        port_id: u16,
    },
    /// An ethdev call failed.
    #[error("port {port:?}: {op} failed: {error}")]
    PortOp {
        /// The device name.
        port: String,
        /// The operation ("configure", "start", "rx queue 1 setup", ...).
        op: &'static str,
        /// Its return code.
        error: RteError,
    },
    /// The operation is not allowed in the port's current state.
    #[error("port {port:?}: cannot {op} while the port is {state}")]
    PortState {
        /// The device name.
        port: String,
        /// The refused operation.
        op: &'static str,
        /// The port's state.
        state: super::PortState,
    },
    /// The operation needs every queue handle of the port dropped first.
    #[error("port {port:?}: cannot {op} while {handles} queue handle(s) are alive")]
    PortBusy {
        /// The device name.
        port: String,
        /// The refused operation.
        op: &'static str,
        /// Live rx/tx queue handles.
        handles: usize,
    },
    /// The queue id is not below the configured queue count.
    #[error("port {port:?}: no {dir} queue {queue} ({configured} configured)")]
    NoSuchQueue {
        /// The device name.
        port: String,
        /// Rx or tx.
        dir: QueueDir,
        /// The requested queue id.
        queue: u16,
        /// The configured number of queues.
        configured: u16,
    },
    /// A handle for this queue already exists (a queue is used by one
    /// thread at a time).
    #[error("port {port:?}: {dir} queue {queue} already has a handle")]
    QueueTaken {
        /// The device name.
        port: String,
        /// Rx or tx.
        dir: QueueDir,
        /// The queue id.
        queue: u16,
    },
    /// `rte_thread_register` failed.
    #[error("cannot register the thread with the EAL: {error}")]
    ThreadRegister {
        /// `rte_errno` after the failure.
        error: RteError,
    },
}

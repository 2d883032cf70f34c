//! A failed EAL initialisation: DPDK's reason is reported, and the EAL
//! cannot be initialised again in the process.

mod dpdk_common;

use dpdk_common::{eal_args, runtime_dir};
use pmd::dpdk::{self, DpdkError, Eal};

#[test]
fn dpdk_eal_init_failure() {
    let (args, prefix) = eal_args("eal-errors", "--no-such-eal-option");
    let err = Eal::init(&args).unwrap_err();
    let _ = std::fs::remove_dir_all(runtime_dir(&prefix));
    eprintln!("bad EAL option: {err}");
    assert!(matches!(err, DpdkError::EalInit { ref error, .. } if error.errno == libc::EINVAL));
    assert!(err.to_string().contains("--no-such-eal-option"));
    assert!(!dpdk::is_initialized());

    // DPDK keeps state from the failed attempt: no second try.
    let (args, prefix) = eal_args("eal-errors-retry", "");
    assert!(matches!(
        Eal::init(&args),
        Err(DpdkError::EalAlreadyInitialized)
    ));
    let _ = std::fs::remove_dir_all(runtime_dir(&prefix));
    assert!(matches!(
        dpdk::Mempool::new("pool", 64, 0, dpdk::MBUF_DEFAULT_BUF_SIZE),
        Err(DpdkError::EalNotInitialized)
    ));
}

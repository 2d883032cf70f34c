//! vportd: a userspace virtual switch on DPDK.
//!
//! The binary parses the command line, builds the daemon ([`daemon`]) and
//! turns every error into one line on stderr and a non-zero exit status.

mod args;
mod ctl;
mod daemon;
mod ofchan;
mod ovsdb;
mod ports;
mod switch;
mod tunnel;
mod vhost;

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let args = args::Args::parse();
    let result = daemon::run(args);
    // Normally gone with the EAL cleanup; also when something kept the EAL
    // up (see `remove_owned_runtime_dir`).
    pmd::dpdk::remove_owned_runtime_dir();
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("vportd: {e:#}");
            std::process::exit(1);
        }
    }
}

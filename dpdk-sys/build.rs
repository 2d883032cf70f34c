//! Finds the system DPDK with pkg-config, compiles the C shims of
//! `src/wrappers.c` and generates the Rust bindings into `OUT_DIR`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Oldest DPDK release the bindings and shims are written against.
const MIN_DPDK_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=src/wrappers.h");
    println!("cargo:rerun-if-changed=src/wrappers.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");

    // Link flags (`-lrte_*`) come from the pkg-config crate, which prints the
    // `cargo:rustc-link-*` lines; it links against the shared libraries.
    let dpdk = pkg_config::Config::new()
        .atleast_version(MIN_DPDK_VERSION)
        .probe("libdpdk")
        .unwrap_or_else(|e| panic!("libdpdk >= {MIN_DPDK_VERSION} not found by pkg-config: {e}"));
    // Visible to dependents' build scripts as DEP_RTE_EAL_VERSION.
    println!("cargo:version={}", dpdk.version);

    // The compile flags must be taken verbatim: the pkg-config crate keeps only
    // `-I`/`-D`, but DPDK also needs `-include rte_config.h -march=...`, without
    // which the headers' SSE intrinsics do not compile.
    let cflags = dpdk_cflags();

    let mut cc_build = cc::Build::new();
    cc_build.file("src/wrappers.c").include("src");
    for flag in &cflags {
        cc_build.flag(flag);
    }
    cc_build
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(3)
        .compile("vportd_dpdk_wrappers");

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let bindings = bindgen::Builder::default()
        .header("src/wrappers.h")
        .clang_args(&cflags)
        .clang_arg("-Isrc")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // Keep macro scratch files out of the source tree.
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(&out_dir)
        .allowlist_function("rte_.*")
        .allowlist_function("vportd_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("rte_.*")
        .allowlist_var("RTE_.*")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("LCORE_ID_ANY")
        // Thread-local per-lcore variables are not plain statics in Rust;
        // reach them through the `vportd_*` shims instead.
        .blocklist_item("per_lcore_.*")
        // Its Debug derive would take references to packed fields.
        .no_debug("rte_flow_item_gtp_psc")
        // A packed struct holding an aligned union: not expressible in Rust.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .derive_default(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("cannot write bindings.rs");
}

/// The complete `pkg-config --cflags libdpdk` output, split on whitespace.
fn dpdk_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {pkg_config}: {e}"));
    assert!(
        output.status.success(),
        "{pkg_config} --cflags libdpdk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

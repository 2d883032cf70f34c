//! Conformance cases on disk: each case is a directory (flows, pcaps, the
//! oracle's `expected/` output).

use std::path::{Path, PathBuf};

/// The directories right below `root`, sorted (none if `root` cannot be
/// read).
pub fn subdirs(root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Every directory at or below `root` that holds the file `marker`
/// (a case), depth first in name order; a case's own subdirectories are
/// not searched.
pub fn find(root: &Path, marker: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root, marker, &mut out);
    out
}

fn walk(dir: &Path, marker: &str, out: &mut Vec<PathBuf>) {
    if dir.join(marker).is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    for d in subdirs(dir) {
        walk(&d, marker, out);
    }
}

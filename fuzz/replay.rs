//! Finding and replaying fuzz inputs under plain `cargo test`: shared by the replay tests of
//! `wire` and `codec` (each includes this file with `#[path]`), so a fixed crash stays fixed
//! without cargo-fuzz or nightly.

use std::path::{Path, PathBuf};

/// `fuzz/`, from a crate one level below the repository root.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Subdirectories of `fuzz/<kind>/`, by name.
pub fn target_dirs(kind: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return vec![];
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The input files of one target (READMEs and dotfiles are not inputs).
pub fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    files.sort();
    files
}

/// A fuzz target: its name and its check.
pub type Target<'a> = (&'a str, fn(&[u8]));

/// Runs every seed and saved crash of `targets` through its check; returns the inputs that
/// failed and how many were replayed.
pub fn replay(targets: &[Target]) -> (Vec<PathBuf>, usize) {
    let mut failures = vec![];
    let mut replayed = 0;
    for (target, check) in targets {
        for kind in ["corpus", "regressions"] {
            for path in inputs(kind, target) {
                let data = std::fs::read(&path).unwrap();
                replayed += 1;
                if std::panic::catch_unwind(|| check(&data)).is_err() {
                    failures.push(path);
                }
            }
        }
    }
    (failures, replayed)
}

//! Replays the committed seed corpus through the fuzz targets' checks, on
//! stable Rust, without libFuzzer:
//!
//!     cargo test --manifest-path audit/fuzz/Cargo.toml --no-default-features
//!
//! `audit/run fuzz` falls back to this (loudly) when nightly or cargo-fuzz
//! is missing.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).expect("seed");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "{target}: seed {} breaks an invariant",
            path.display()
        );
        seen += 1;
    }
    assert!(seen > 0, "no seeds in {}", dir.display());
    println!("{target}: {seen} seeds replayed");
}

#[test]
fn argv_seeds() {
    replay("argv", hermes_s6_helper_fuzz::check_argv);
}

#[test]
fn profile_seeds() {
    replay("profile", hermes_s6_helper_fuzz::check_profile);
}

#[test]
fn payload_seeds() {
    replay("payload", hermes_s6_helper_fuzz::check_payload);
}

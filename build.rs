//! Builds the guest init (`src/realize/guest/init.rs`) as a static x86_64
//! Linux binary with `rustc` alone and leaves it in OUT_DIR, where
//! `realize::guest::init_binary` embeds it: every `bottle` binary carries the
//! init its guests boot, so users and CI never build it by hand.
//!
//! The init uses `std` only (no crates), which is what lets a bare `rustc`
//! call build it in seconds instead of a second `cargo` build of the whole
//! dependency tree for a static target.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/realize/guest/init.rs";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=src/realize/guest/spec.rs");
    println!("cargo:rerun-if-changed=src/realize/guest/status.rs");
    println!("cargo:rerun-if-changed=src/realize/guest/layout.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = out.join("bottle-init");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target_os != "linux" || target_arch != "x86_64" {
        // Guests are x86_64 Linux; other hosts get an empty init and a clear
        // error from `bottle run`.
        std::fs::write(&binary, b"").expect("OUT_DIR is writable");
        return;
    }
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "bottle_init",
            "--crate-type",
            "bin",
        ])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .args(["-C", "target-feature=+crt-static", "-C", "opt-level=2"])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
            "-C",
            "codegen-units=1",
        ])
        // The same source gives the same bytes wherever the checkout lives.
        .arg(format!("--remap-path-prefix={manifest}=bottle"))
        .arg("-o")
        .arg(&binary)
        .arg(source)
        .env_remove("RUSTFLAGS")
        .status()
        .expect("running rustc for the guest init");
    assert!(status.success(), "building the guest init {source} failed");
}

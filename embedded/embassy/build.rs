//! Gives cortex-m-rt the memory layout of the one board this firmware runs on, QEMU's
//! `lm3s6965evb` (the same file as `foreman-firmware`'s), as `$OUT_DIR/memory.x`.
//!
//! Any other target can only type-check the firmware (`cargo clippy` on the host, which is how
//! `cargo xtask qemu` lints it): no linker script then.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").expect("cargo sets TARGET");
    if target != "thumbv7m-none-eabi" {
        println!(
            "cargo:warning=foreman-firmware-embassy runs on thumbv7m-none-eabi (lm3s6965evb); \
             {target} can only type-check it"
        );
        return;
    }
    let layout = PathBuf::from("../memory/lm3s6965evb.x");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(&layout, out.join("memory.x"))
        .unwrap_or_else(|err| panic!("cannot copy {}: {err}", layout.display()));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rerun-if-changed={}", layout.display());
}

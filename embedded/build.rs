//! Picks the board from the target and gives cortex-m-rt its memory layout.
//!
//! | target | board (QEMU `-machine`) | memory |
//! |---|---|---|
//! | `thumbv7m-none-eabi` | `lm3s6965evb` (Cortex-M3) | `memory/lm3s6965evb.x` |
//! | `thumbv6m-none-eabi` | `microbit` (Cortex-M0) | `memory/microbit.x` |
//!
//! The chosen layout is written to `$OUT_DIR/memory.x`, where cortex-m-rt's `link.x` looks for
//! it. (A `memory.x` at the package root would shadow it: there is none on purpose.)
//!
//! Any other target can only type-check the firmware (`cargo clippy` on the host, which is how
//! `cargo xtask qemu` lints it): no board, no linker script.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let target = env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=FIRMWARE_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
    let board = match target.as_str() {
        "thumbv7m-none-eabi" => "lm3s6965evb",
        "thumbv6m-none-eabi" => "microbit",
        _ => {
            println!("cargo:rustc-env=FIRMWARE_BOARD=none");
            println!(
                "cargo:warning=foreman-firmware runs on thumbv7m-none-eabi (lm3s6965evb) or \
                 thumbv6m-none-eabi (microbit); {target} can only type-check it"
            );
            return;
        }
    };
    let layout = PathBuf::from("memory").join(format!("{board}.x"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(&layout, out.join("memory.x"))
        .unwrap_or_else(|err| panic!("cannot copy {}: {err}", layout.display()));

    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-env=FIRMWARE_BOARD={board}");
    println!("cargo:rerun-if-changed={}", layout.display());
}

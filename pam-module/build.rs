//! Link arguments that make `pam_deadbolt.so` cheaper to load. Every login
//! loads it afresh (sshd forks per connection; libpam loads the modules at
//! pam_start and unloads them at pam_end), so what the dynamic loader does
//! with it is paid at every login. docs/performance.md has the figures.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    // Full RELRO stays: a module loaded into sshd keeps its GOT read-only.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,now");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,relro");
    // DT_RELR (glibc 2.36, binutils 2.38): the relative relocations packed
    // into a bitmap, a few hundred bytes instead of 24 bytes each.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    static_unwinder();
}

/// std unwinds with libgcc_s, which sshd, login and pamtester do not have
/// loaded: as a NEEDED library it was mapped, relocated and unmapped again
/// at every login. Linked from libgcc_eh.a instead, the unwinder (about
/// 40 KB) lives inside the module; panics still unwind to the boundary in
/// ffi.rs. std asks for `-lgcc_s` by name, so a `libgcc_s.a` that is
/// libgcc_eh.a is put first on the search path, and the compiler driver is
/// told not to add its own.
fn static_unwinder() {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let found = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let Some(archive) = found.filter(|path| path.is_absolute() && path.exists()) else {
        println!("cargo:warning=libgcc_eh.a not found: pam_deadbolt.so will need libgcc_s.so.1");
        return;
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let alias = out.join("libgcc_s.a");
    let _ = std::fs::remove_file(&alias);
    if let Err(err) = std::fs::copy(&archive, &alias) {
        println!("cargo:warning=copying {}: {err}", archive.display());
        return;
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-cdylib-link-arg=-static-libgcc");
}

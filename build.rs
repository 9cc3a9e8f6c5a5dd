//! Embeds every `.sql` file under `queries/` in the binary, so built-in saved queries and
//! audits need no files at run time. Generates `$OUT_DIR/builtin_queries.rs`.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, found);
        } else if path.extension().is_some_and(|e| e == "sql") {
            found.push(path);
        }
    }
}

/// Two link options for a faster start, on x86_64 Linux with Rust's own LLD (the
/// default linker there since Rust 1.90); NETSQL_PLAIN_LINK=1 turns both off, for
/// another linker.
///
/// - The functions a one-shot query runs (`link/startup.order`, written by
///   `link/startup-order.sh`) laid out together: they are ~3,500 of the executable's
///   functions, 3.5 MB scattered over 100 MB of code, and each first touch of a 64 KB
///   window of code costs a page fault.
/// - The unwinder linked in (libgcc_eh) instead of loaded (libgcc_s): loading libgcc_s
///   runs its CPU-feature probe, a dozen CPUID instructions, each a trap to the
///   hypervisor on a virtual machine, in every process.
fn link_for_start_up() {
    println!("cargo:rerun-if-env-changed=NETSQL_PLAIN_LINK");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("NETSQL_PLAIN_LINK") == "1"
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ARCH") != "x86_64"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return;
    }
    let order = PathBuf::from(var("CARGO_MANIFEST_DIR")).join("link/startup.order");
    println!("cargo:rerun-if-changed={}", order.display());
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // A list from an older build names some functions no longer there.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}

fn main() {
    // A position-dependent executable: as a PIE, every start made the dynamic loader
    // apply 239k relocations to 4 MB of DataFusion's and Arrow's tables (vtables, static
    // arrays), half of `SELECT 1`'s 6 ms and 1000 of its 1900 page faults. Shared
    // libraries, stack, heap and mmap stay randomized; packagers who want the executable
    // randomized too build with NETSQL_PIE=1.
    println!("cargo:rerun-if-env-changed=NETSQL_PIE");
    if std::env::var("NETSQL_PIE").map_or(true, |v| v != "1")
        && std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux")
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    link_for_start_up();
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("queries");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut code = String::from("/// (path under queries/, text) of every built-in query.\npub static BUILTIN: &[(&str, &str)] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({relative:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_queries.rs");
    std::fs::write(out, code).unwrap();
}

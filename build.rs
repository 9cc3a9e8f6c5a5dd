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

/// The unwinder linked in (libgcc_eh) instead of loaded (libgcc_s), on x86_64 Linux:
/// loading libgcc_s runs its CPU-feature probe, a dozen CPUID instructions, each a trap
/// to the hypervisor on a virtual machine, in every process. NETSQL_PLAIN_LINK=1 turns
/// it off, for a toolchain without a static libgcc_eh.
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
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}

/// The commit being built, for `netsql --version` (`unknown` outside a git checkout).
fn commit() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // Asked of git, not assumed under .git/: in a worktree .git is a file, and a path
    // that does not exist would make cargo rebuild the crate on every run.
    for what in ["HEAD", "refs"] {
        let path = std::process::Command::new("git")
            .args(["rev-parse", "--path-format=absolute", "--git-path", what])
            .current_dir(&dir)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| PathBuf::from(text.trim()));
        if let Some(path) = path.filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&dir)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NETSQL_COMMIT={commit}");
}

/// Compiles the BPF program that lists every process's socket descriptors
/// (src/collect/task_files.bpf.c) with clang (`NETSQL_CLANG`, default `clang`), into
/// `$OUT_DIR/task_files.bpf.o`, and sets `cfg(netsql_bpf)`. Without clang (or with
/// `NETSQL_NO_BPF=1`) netsql is built without it and finds socket owners by walking
/// /proc alone; `netsql doctor` says which.
fn bpf() {
    println!("cargo:rustc-check-cfg=cfg(netsql_bpf)");
    println!("cargo:rerun-if-env-changed=NETSQL_NO_BPF");
    println!("cargo:rerun-if-env-changed=NETSQL_CLANG");
    let source = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("src/collect/task_files.bpf.c");
    println!("cargo:rerun-if-changed={}", source.display());
    if std::env::var("NETSQL_NO_BPF").is_ok_and(|v| v == "1")
        || std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default() != "linux"
    {
        return;
    }
    let object = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("task_files.bpf.o");
    let clang = std::env::var("NETSQL_CLANG").unwrap_or_else(|_| "clang".into());
    // -g: the BTF that lets the loader fit the program's field offsets to the running
    // kernel (CO-RE). The byte order is the target's, not the build machine's. Some
    // distributions' clang protects stacks by default, which BPF cannot call.
    let target = match std::env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };
    let built = std::process::Command::new(&clang)
        .args(["-target", target, "-O2", "-g", "-fno-stack-protector"])
        .args(["-Wall", "-Werror", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .status();
    match built {
        Ok(status) if status.success() => println!("cargo:rustc-cfg=netsql_bpf"),
        Ok(status) => println!(
            "cargo:warning={clang} failed ({status}) on {}: netsql will find socket owners by walking /proc only",
            source.display()
        ),
        Err(e) => println!(
            "cargo:warning=no {clang} ({e}): netsql will find socket owners by walking /proc only (with clang installed, `cargo clean -p netsql` and build again)"
        ),
    }
}

fn main() {
    link_for_start_up();
    commit();
    bpf();
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

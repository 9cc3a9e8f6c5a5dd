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

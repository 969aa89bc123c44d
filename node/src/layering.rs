//! Holds the node's layering: each top-level module may import only modules of a lower layer
//! (ARCHITECTURE.md, "Layers"). The test reads every `crate::<module>` path in the non-test code
//! of `node/src` and fails naming the file and the import that points sideways or upwards.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of its own entry only when the entry
/// is itself (a module may use its own submodules), and any module of a lower entry.
const LAYERS: &[&[&str]] = &[
    &["config", "credentials"],
    &["metrics", "shutdown", "notify", "manifest"],
    &["dns"],
    &["egress"],
    &["http"],
    &["checks"],
    &["dispatch"],
    &["signing", "audit"],
    &["service"],
    &["quic", "openmpic", "check", "doctor"],
    &["reload"],
    &["daemon"],
];

/// The layer of a top-level module, if it is in the table.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`dns/iterate.rs` → `dns`).
fn module_of(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Every `.rs` file under `directory`.
fn source_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Whether a file holds only tests (`tests.rs`, `*_tests.rs`, or a file under a `tests/` folder).
fn is_test_file(root: &Path, file: &Path) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || file
            .strip_prefix(root)
            .is_ok_and(|r| r.components().any(|c| c.as_os_str() == "tests"))
}

/// The top-level modules named by `crate::<module>` in `code`, including grouped
/// `use crate::{a::x, b::y}` imports.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    modules.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                modules.insert(name);
            }
        }
    }
    modules
}

/// The part of a file before its first `#[cfg(test)]`: the code the layering is about.
fn non_test_code(source: &str) -> &str {
    source
        .find("#[cfg(test)]")
        .map_or(source, |at| &source[..at])
}

#[test]
fn modules_import_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&root, file) else {
            continue;
        };
        if matches!(module.as_str(), "lib" | "main" | "layering") || is_test_file(&root, file) {
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap_or_default();
        let Some(own) = layer_of(&module) else {
            violations.push(format!(
                "{}: module `{module}` is not in LAYERS",
                file.display()
            ));
            continue;
        };
        for imported in imported_modules(non_test_code(&source)) {
            if imported == module {
                continue;
            }
            match layer_of(&imported) {
                Some(layer) if layer < own => {}
                Some(_) => violations.push(format!(
                    "{}: `{module}` imports `crate::{imported}`, which is not below it",
                    file.display()
                )),
                None => violations.push(format!(
                    "{}: `{module}` imports `crate::{imported}`, which is not in LAYERS",
                    file.display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_import_reader_sees_grouped_and_inline_paths() {
    let code = "use crate::{dns::Lookup, config::Config};\nlet x = crate::http::fetch::run();\n";
    let found: Vec<String> = imported_modules(code).into_iter().collect();
    assert_eq!(found, ["config", "dns", "http"]);
}

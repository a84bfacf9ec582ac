//! The module-cycle lint: inside each crate, no module may use a module that uses it back.
//!
//! A module "uses" another when its code (comments and `#[cfg(test)]` parts left out) names
//! `crate::other`, or, for modules of one folder, `super::other`. A top-level module counts the
//! files of its folder too. This is a text scan, not name resolution: it errs on the side of
//! seeing a dependency (a path in a string counts), never on missing one written as a path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The crates whose modules are checked (each `<dir>/src`).
pub(crate) const CRATES: &[&str] = &[
    "apiserver",
    "bench",
    "controller",
    "controlplane",
    "core",
    "host",
    "sdk",
    "xtask",
];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every cycle in the crates under `root`, as `folder: a -> b -> a`.
pub(crate) fn find(root: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    for krate in CRATES {
        let src = root.join(krate).join("src");
        for dir in module_dirs(&src)? {
            let graph = sibling_graph(&src, &dir)?;
            let shown = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
            found.extend(cycles(&graph).into_iter().map(|c| format!("{shown}: {c}")));
        }
    }
    Ok(found)
}

/// `src` and every folder below it.
fn module_dirs(src: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = vec![src.to_owned()];
    let mut i = 0;
    while i < dirs.len() {
        for entry in fs::read_dir(&dirs[i])? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        i += 1;
    }
    Ok(dirs)
}

/// The modules of folder `dir` and which of them each one uses.
fn sibling_graph(src: &Path, dir: &Path) -> std::io::Result<Graph> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        if path.is_dir() {
            modules.entry(name).or_default().extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !matches!(name.as_str(), "lib" | "main" | "mod" | "tests")
        {
            modules.entry(name).or_default().push(path);
        }
    }
    let top = dir == src;
    let mut graph = Graph::new();
    for (name, files) in &modules {
        let mut uses = BTreeSet::new();
        for file in files {
            if file.file_name().is_some_and(|f| f == "tests.rs") {
                continue;
            }
            let code = code_of(&fs::read_to_string(file)?);
            // How this file names its folder's siblings: `crate::x` at the top, else `super::x`
            // once per folder between the file and `dir`.
            let prefix = if top {
                "crate::".to_owned()
            } else {
                let depth = file
                    .parent()
                    .and_then(|p| p.strip_prefix(dir).ok())
                    .map_or(0, |p| p.components().count());
                let own_mod = file.file_name().is_some_and(|f| f == "mod.rs");
                "super::".repeat(depth + usize::from(!own_mod))
            };
            uses.extend(names_after(&code, &prefix));
        }
        uses.remove(name);
        uses.retain(|u| modules.contains_key(u));
        graph.insert(name.clone(), uses);
    }
    Ok(graph)
}

fn rust_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for d in module_dirs(dir)? {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// The text of `source` without comments and without what follows its first `#[cfg(test)]`.
fn code_of(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `prefix` in `code`, including those in `prefix{a, b::c}`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices(prefix) {
        // `super::super::x` must not count as `super::x` one level up.
        if prefix.starts_with("super::") && code[..at].ends_with("super::") {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if prefix.starts_with("super::") && rest.starts_with("super::") {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names
}

/// Each cycle of `graph` once, as `a -> b -> a`.
fn cycles(graph: &Graph) -> Vec<String> {
    fn visit<'a>(
        graph: &'a Graph,
        node: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<String>,
    ) {
        path.push(node);
        for next in &graph[node] {
            if let Some(i) = path.iter().position(|p| p == next) {
                let mut cycle = path[i..].to_vec();
                cycle.push(next);
                found.push(cycle.join(" -> "));
            } else if !done.contains(next.as_str()) {
                visit(graph, next, path, done, found);
            }
        }
        path.pop();
        done.insert(node);
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if !done.contains(node.as_str()) {
            visit(graph, node, &mut Vec::new(), &mut done, &mut found);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        edges
            .iter()
            .map(|(a, bs)| {
                (
                    (*a).to_owned(),
                    bs.iter().map(|b| (*b).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_cycle_is_found_and_a_chain_is_not() {
        let cyclic = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        assert_eq!(cycles(&cyclic), ["a -> b -> c -> a"]);
        let chain = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]);
        assert!(cycles(&chain).is_empty());
    }

    #[test]
    fn uses_are_read_from_paths_and_groups_but_not_comments_or_tests() {
        let source = "use crate::{store, error::ApiError};\n\
                      // crate::commented\n\
                      fn f() { crate::router::handle(); super::super::far(); }\n\
                      #[cfg(test)]\nmod tests { use crate::only_in_tests; }";
        let code = code_of(source);
        let names: Vec<_> = names_after(&code, "crate::").into_iter().collect();
        assert_eq!(names, ["error", "router", "store"]);
        assert!(names_after(&code, "super::").is_empty());
    }

    #[test]
    fn this_repository_has_no_module_cycles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(find(&root).unwrap(), Vec::<String>::new());
    }
}

//! The rules of the house that the compiler does not check: which crate may
//! depend on which, which service owns which table, and that the files of a
//! crate do not import each other in a circle. Read from the sources and
//! from `cargo metadata`, so a forbidden dependency, table or import fails
//! here the moment it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The crate that assembles the services into one binary: the one crate
/// under `services/` that may depend on the others.
const ASSEMBLY: &str = "verkosto";

#[derive(Debug)]
struct Package {
    name: String,
    /// `services` or `shared` (or `tests`).
    kind: String,
    dir: PathBuf,
    dependencies: Vec<String>,
}

/// The workspace's packages, as `cargo metadata` sees them.
fn packages() -> Vec<Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let root = root();
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest path"));
            let dir = manifest
                .parent()
                .expect("a manifest's folder")
                .to_path_buf();
            let kind = dir
                .strip_prefix(&root)
                .ok()
                .and_then(|rel| rel.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            Package {
                name: p["name"].as_str().expect("name").to_string(),
                kind,
                dir,
                dependencies: p["dependencies"]
                    .as_array()
                    .expect("dependencies")
                    .iter()
                    .map(|d| d["name"].as_str().expect("dependency name").to_string())
                    .collect(),
            }
        })
        .collect()
}

/// Which workspace crates a crate of `kind` may not depend on, and why.
fn forbidden_dependencies(packages: &[Package]) -> Vec<String> {
    let services: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.kind == "services" && p.name != ASSEMBLY)
        .map(|p| p.name.as_str())
        .collect();
    let mut found = Vec::new();
    for p in packages {
        for d in &p.dependencies {
            if !services.contains(d.as_str()) {
                continue;
            }
            match p.kind.as_str() {
                "services" if p.name != ASSEMBLY => found.push(format!(
                    "{} depends on {d}: services meet only through events and HTTP",
                    p.name
                )),
                "shared" => found.push(format!(
                    "{} depends on {d}: shared code serves the services, never one of them",
                    p.name
                )),
                _ => {}
            }
        }
    }
    found
}

#[test]
fn no_service_depends_on_another_and_no_shared_crate_on_a_service() {
    let packages = packages();
    assert!(
        packages.iter().filter(|p| p.kind == "services").count() >= 6,
        "the services were found: {packages:?}"
    );
    let found = forbidden_dependencies(&packages);
    assert!(
        found.is_empty(),
        "forbidden dependencies:\n{}",
        found.join("\n")
    );
}

/// The files under `dir` (all levels) whose names end in `.{ext}`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Each table, by the crate whose migrations create it.
fn table_owners(packages: &[Package]) -> BTreeMap<String, String> {
    let create = Regex::new(r"(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)").unwrap();
    let mut owners = BTreeMap::new();
    for p in packages {
        for file in files(&p.dir.join("migrations"), "sql") {
            let sql = std::fs::read_to_string(&file).expect("a migration reads");
            for c in create.captures_iter(&sql) {
                owners.insert(c[1].to_lowercase(), p.name.clone());
            }
        }
    }
    owners
}

/// `(service, file, table, owner)` for every mention of another service's
/// table in a service's code.
fn foreign_tables(packages: &[Package]) -> Vec<String> {
    let owners = table_owners(packages);
    let services: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.kind == "services")
        .map(|p| p.name.as_str())
        .collect();
    let word = Regex::new(r"\b[a-z][a-z0-9_]*\b").unwrap();
    let mut found = Vec::new();
    for p in packages.iter().filter(|p| p.kind == "services") {
        for file in files(&p.dir.join("src"), "rs") {
            let code = std::fs::read_to_string(&file).expect("source reads");
            let mut seen = BTreeSet::new();
            for w in word.find_iter(&code) {
                let Some(owner) = owners.get(w.as_str()) else {
                    continue;
                };
                if owner != &p.name && services.contains(owner.as_str()) && seen.insert(w.as_str())
                {
                    found.push(format!(
                        "{} ({}) names {}, a table of {owner}",
                        p.name,
                        file.display(),
                        w.as_str()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn no_service_names_another_services_table() {
    let packages = packages();
    let owners = table_owners(&packages);
    for (table, owner) in [
        ("dir_agencies", "verkosto-directory"),
        ("cases_agencies", "verkosto-cases"),
        ("web_sessions", "verkosto-web"),
    ] {
        assert_eq!(
            owners.get(table).map(String::as_str),
            Some(owner),
            "{owners:?}"
        );
    }
    let found = foreign_tables(&packages);
    assert!(
        found.is_empty(),
        "tables of other services:\n{}",
        found.join("\n")
    );
}

/// The paths a `use` tree or path names, spelled out: `a::{b, c::{d}}`
/// gives `a::b` and `a::c::d`. Reads from the start of `text` to the end of
/// the tree (a path ends at the first character that is not part of one).
fn use_paths(text: &str) -> Vec<String> {
    fn tree(chars: &[char], at: &mut usize, prefix: &str, out: &mut Vec<String>) {
        let mut path = prefix.to_string();
        loop {
            while *at < chars.len() && chars[*at].is_whitespace() {
                *at += 1;
            }
            if chars.get(*at) == Some(&'{') {
                *at += 1;
                loop {
                    tree(chars, at, &path, out);
                    while *at < chars.len() && chars[*at].is_whitespace() {
                        *at += 1;
                    }
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some('}') => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                    while *at < chars.len() && chars[*at].is_whitespace() {
                        *at += 1;
                    }
                    if chars.get(*at) == Some(&'}') {
                        *at += 1;
                        return;
                    }
                }
            }
            let begin = *at;
            while *at < chars.len() && (chars[*at].is_alphanumeric() || chars[*at] == '_') {
                *at += 1;
            }
            let word: String = chars[begin..*at].iter().collect();
            if !word.is_empty() {
                path = if path.is_empty() {
                    word
                } else {
                    format!("{path}::{word}")
                };
            }
            if chars.get(*at) == Some(&':') && chars.get(*at + 1) == Some(&':') {
                *at += 2;
                continue;
            }
            if !path.is_empty() {
                out.push(path);
            }
            return;
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, "", &mut out);
    out
}

/// The modules of a crate, one per file under `src/` (`domain/events.rs` is
/// `domain::events`, `domain.rs` or `domain/mod.rs` is `domain`), each with
/// the modules it refers to through `crate::` or `super::` in its code
/// (comments, doc links included, and `#[cfg(test)]` parts do not count).
fn module_references(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let reference = Regex::new(r"\b(crate|super)::").unwrap();
    let reexport =
        Regex::new(r"(?m)^\s*pub(?:\(crate\))?\s+use\s+(\w+)::(?:\{([^}]*)\}|(\w+))").unwrap();
    let comment = Regex::new(r"(?m)//.*$").unwrap();
    let module_of = |file: &Path| -> String {
        let rel = file.strip_prefix(src).expect("under src");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        if parts.len() > 1 && parts.last().map(String::as_str) == Some("mod") {
            parts.pop();
        }
        parts.join("::")
    };
    let sources = files(src, "rs");
    let modules: BTreeSet<String> = sources.iter().map(|f| module_of(f)).collect();
    // Names the crate root re-exports, by the module they come from: a
    // `crate::Name` reaches that module.
    let mut reexported: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(lib) = std::fs::read_to_string(src.join("lib.rs")) {
        for c in reexport.captures_iter(&lib) {
            let from = c[1].to_string();
            let names = c.get(2).or(c.get(3)).map(|m| m.as_str()).unwrap_or("");
            for name in names.split(',') {
                let name = name.split(" as ").last().unwrap_or("").trim();
                if !name.is_empty() {
                    reexported.insert(name.to_string(), from.clone());
                }
            }
        }
    }
    // The module a path from the crate root lands in: its longest prefix
    // that is a module, or the module a re-exported name comes from.
    let target_of = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|m| modules.contains(m))
            .or_else(|| reexported.get(segments[0]).cloned())
    };
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &sources {
        let here = module_of(file);
        if here == "lib" || here == "main" {
            continue;
        }
        let code = std::fs::read_to_string(file).expect("source reads");
        // Tests inside a file may reach anywhere; only the code counts.
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        let code = comment.replace_all(code, "");
        // `super::` of `domain::events` is `domain`; of a top-level module, the root.
        let parent = here.rsplit_once("::").map(|(p, _)| p.to_string());
        let entry = refs.entry(here.clone()).or_default();
        for c in reference.captures_iter(&code) {
            let base = match (&c[1], &parent) {
                ("super", Some(parent)) => format!("{parent}::"),
                _ => String::new(),
            };
            for path in use_paths(&code[c.get(0).expect("a match").end()..]) {
                if let Some(target) = target_of(&format!("{base}{path}")) {
                    // A module may use its own children; only other files count.
                    if target != here && !target.starts_with(&format!("{here}::")) {
                        entry.insert(target);
                    }
                }
            }
        }
    }
    refs
}

/// One cycle among `refs`, if there is one.
fn a_cycle(refs: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        refs: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in refs.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, refs, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    refs.keys()
        .find_map(|start| visit(start, refs, &mut Vec::new(), &mut done))
}

#[test]
fn the_files_of_a_crate_do_not_import_each_other_in_a_circle() {
    let mut cycles = Vec::new();
    for p in packages() {
        let refs = module_references(&p.dir.join("src"));
        if let Some(cycle) = a_cycle(&refs) {
            cycles.push(format!("{}: {}", p.name, cycle.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checks_find_what_they_look_for() {
    // A cycle is found, and a chain is not one.
    let refs = |pairs: &[(&str, &str)]| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            m.entry(a.to_string()).or_default().insert(b.to_string());
        }
        m
    };
    assert!(a_cycle(&refs(&[("a", "b"), ("b", "c")])).is_none());
    assert_eq!(
        a_cycle(&refs(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // Use trees are spelled out, nested ones too.
    assert_eq!(
        use_paths("{a::{b, c::{d}}, e} rest"),
        vec!["a::b", "a::c::d", "e"]
    );
    assert_eq!(use_paths("x::y::Z;"), vec!["x::y::Z"]);
    // Folder modules are one node each; `super::` and re-exports resolve; a
    // doc link or a comment is no reference.
    let dir = std::env::temp_dir().join(format!("house-{}", std::process::id()));
    let write = |rel: &str, text: &str| {
        let file = dir.join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write("lib.rs", "mod domain;\nmod routes;\npub use routes::Api;\n");
    write("domain/mod.rs", "mod events; mod rules;");
    write("domain/events.rs", "use super::rules::Rule;");
    write("domain/rules.rs", "use crate::{domain::{events::E}, Api};");
    write(
        "routes.rs",
        "/// See [`crate::domain::rules`].\n// crate::domain\nstruct Api;",
    );
    let found = module_references(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(found["domain::events"], set(&["domain::rules"]));
    assert_eq!(found["domain::rules"], set(&["domain::events", "routes"]));
    assert_eq!(found["routes"], set(&[]));
    assert!(a_cycle(&found).is_some());
    // A service depending on a service is found.
    let fake = vec![
        Package {
            name: "verkosto-cases".into(),
            kind: "services".into(),
            dir: PathBuf::new(),
            dependencies: vec!["verkosto-directory".into()],
        },
        Package {
            name: "verkosto-directory".into(),
            kind: "services".into(),
            dir: PathBuf::new(),
            dependencies: vec![],
        },
        Package {
            name: "verkosto-guard".into(),
            kind: "shared".into(),
            dir: PathBuf::new(),
            dependencies: vec!["verkosto-cases".into()],
        },
    ];
    assert_eq!(forbidden_dependencies(&fake).len(), 2);
}

/// Every `**Architecture invariant:**` of ARCHITECTURE.md names a test (a
/// backticked `area::test`, `test`, or a test file `….rs`), and every test
/// it names exists: a function, or a `both_modes!`/`conformance!` case.
#[test]
fn every_architecture_invariant_names_a_test_that_exists() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut sources = String::new();
    for dir in ["services", "shared", "tests"] {
        for file in files(&root().join(dir), "rs") {
            sources.push_str(&std::fs::read_to_string(file).expect("source reads"));
        }
    }
    let ticked = Regex::new(r"`([^`]+)`").unwrap();
    let test_name = Regex::new(r"^(?:[a-z_]+::)*([a-z][a-z0-9]*(?:_[a-z0-9]+){2,})$").unwrap();
    let mut missing = Vec::new();
    let mut invariants = 0;
    for paragraph in doc.split("\n\n") {
        let Some(at) = paragraph.find("**Architecture invariant:**") else {
            continue;
        };
        invariants += 1;
        let text = &paragraph[at..];
        let mut named = 0;
        for c in ticked.captures_iter(text) {
            let name = &c[1];
            if name.ends_with(".rs") {
                named += 1;
                continue;
            }
            let Some(t) = test_name.captures(name) else {
                continue;
            };
            named += 1;
            let f = &t[1];
            let defined = sources.contains(&format!("fn {f}("))
                || sources.contains(&format!("fn {f}<"))
                || sources.contains(&format!("\n    {f},"))
                || sources.contains(&format!("!({f},"))
                || sources.contains(&format!("!(\n    {f},"));
            if !defined {
                missing.push(format!("{name} (no such test)"));
            }
        }
        if named == 0 {
            missing.push(format!(
                "an invariant names no test: {}",
                text.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(invariants >= 15, "only {invariants} invariants found");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md:\n{}",
        missing.join("\n")
    );
}

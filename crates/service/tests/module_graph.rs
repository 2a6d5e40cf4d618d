//! The use-case crate's modules depend on each other one way: this test reads the sources, finds
//! every `crate::…` path each module names (in `use` lines and inline, comments left out), and
//! fails on any cycle, naming it. `Vault` is the one hub every use case is an `impl` block of,
//! so paths to the `vault` module are not counted; everything else is. Items re-exported at the
//! crate root (`crate::RefreshOutcome`) count as the module that defines them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`crate::usage::proxy`) of a source file relative to `src/`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let file = parts.pop().expect("a file name");
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    std::iter::once("crate".to_owned()).chain(parts).collect::<Vec<_>>().join("::")
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The source without comments (line, doc and block comments), strings and char literals.
fn code_of(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{..}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every path that starts at `crate::`, with `use crate::{a::b, c::{d, e}}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    fn expand(prefix: &str, group: &str, out: &mut Vec<String>) {
        // Split the group at top-level commas.
        let mut depth = 0;
        let mut start = 0;
        let bytes: Vec<char> = group.chars().collect();
        let mut items = Vec::new();
        for (i, c) in bytes.iter().enumerate() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(bytes[start..i].iter().collect::<String>());
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(bytes[start..].iter().collect::<String>());
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if let Some(open) = item.find('{') {
                let inner = &item[open + 1..item.rfind('}').unwrap_or(item.len())];
                expand(&format!("{prefix}{}", &item[..open]), inner, out);
            } else {
                out.push(format!("{prefix}{}", item.split_whitespace().next().unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            rest = &rest["crate::".len()..];
            continue;
        }
        let path_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let path = &rest[..path_len];
        if rest[path_len..].starts_with('{') {
            let mut depth = 0;
            let mut end = path_len;
            for (i, c) in rest[path_len..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = path_len + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            expand(path, &rest[path_len + 1..end], &mut out);
            rest = &rest[end..];
        } else {
            out.push(path.trim_end_matches(':').to_owned());
            rest = &rest[path_len..];
        }
    }
    out
}

/// `pub use a::b::{C, D};` lines of the crate root: item name -> defining module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let code = code_of(lib);
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(path) = statement.strip_prefix("pub use ") else { continue };
        if path.starts_with("tokenvault_") {
            continue;
        }
        for p in crate_paths(&format!("crate::{path}")) {
            let p = p.trim_start_matches("crate::").to_owned();
            if let Some((module, item)) = p.rsplit_once("::") {
                let name = statement.rsplit(" as ").next().filter(|_| statement.contains(" as ")).unwrap_or(item);
                map.insert(name.trim().to_owned(), module.to_owned());
            }
        }
    }
    map
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> =
        files.iter().map(|f| (module_of(f.strip_prefix(&src).expect("under src")), f.clone())).collect();
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        if module == "crate" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).expect("readable"));
        let targets = edges.entry(module.clone()).or_default();
        for path in crate_paths(&code) {
            let segments: Vec<&str> = path.split("::").collect();
            // The longest prefix that is a module; a bare root item resolves through the re-exports.
            let target = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|prefix| prefix != "crate" && modules.contains_key(prefix))
                .or_else(|| segments.get(1).and_then(|item| reexports.get(*item)).map(|m| format!("crate::{m}")));
            let Some(target) = target else { continue };
            // A module reaching into itself, or into one of its own children, is not a dependency.
            if target == *module || target.starts_with(&format!("{module}::")) || target == "crate::vault" {
                continue;
            }
            targets.insert(target);
        }
    }
    edges
}

fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|n| n == node).expect("on the stack");
                let mut cycle = stack[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn modules_depend_on_each_other_one_way() {
    let edges = graph();
    if std::env::var_os("SHOW_MODULE_GRAPH").is_some() {
        for (module, targets) in &edges {
            eprintln!("{module} -> {}", targets.iter().cloned().collect::<Vec<_>>().join(", "));
        }
    }
    assert!(edges.len() > 30, "the sources were found and read ({} modules)", edges.len());
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle between modules: {}", cycle.join(" -> "));
    }
}

/// The checker itself finds a cycle when there is one, through a group import and a root re-export.
#[test]
fn the_checker_sees_cycles() {
    let code = code_of(
        "use crate::{a::B, c::{d::E}};\n// crate::ignored::X\nlet s = \"crate::in_string\"; let q = '\"'; crate::f::g();",
    );
    assert_eq!(crate_paths(&code), vec!["crate::a::B", "crate::c::d::E", "crate::f::g"]);
    let reexports = root_reexports("pub use lifecycle::refresh::{RefreshOutcome, RefreshTrigger};\npub use x::y as z;");
    assert_eq!(reexports.get("RefreshOutcome").map(String::as_str), Some("lifecycle::refresh"));
    assert_eq!(reexports.get("z").map(String::as_str), Some("x"));
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    edges.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(find_cycle(&edges), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    edges.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&edges), None);
}

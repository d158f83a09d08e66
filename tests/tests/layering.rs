//! The layout keeps the architecture (docs/ARCHITECTURE.md, issue 16): no two top-level
//! modules of a crate depend on each other, directly or through others. A cycle means a type
//! lives in the wrong module; the failure names the references that close it.
//!
//! A reference is a `crate::NAME` path outside comments and tests, including the names of a
//! `use crate::{...}` group. Crates are read from the workspace's members.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → module it refers to → where (file and line), for one crate's `src`.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn members() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module names `crate::` paths on `line` start with.
fn referenced(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        // `some_crate::` is another path, not ours.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        match rest.strip_prefix('{') {
            Some(group) => names.extend(group_heads(group)),
            None => names.push(ident(rest)),
        }
    }
    names.retain(|n| {
        !matches!(n.as_str(), "" | "self" | "super")
            && n.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    });
    names
}

/// The first name of each item of a `use` group (`a::B, c::{D, E}, f}` → a, c, f).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut at_item) = (0usize, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item = true,
            c if depth == 0 && at_item && !c.is_whitespace() => {
                at_item = false;
                heads.push(ident(&group[i..]));
            }
            _ => {}
        }
    }
    heads
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g = Graph::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if matches!(module.as_str(), "lib" | "main" | "bin") || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may reach anywhere; they sit at the end of a file.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        // A `use crate::{...}` group may span lines: join them.
        let joined = code
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .map(|(n, l)| (n, l.to_owned()));
        let mut pending: Option<(usize, String)> = None;
        for (n, l) in joined {
            let (n, l) = match pending.take() {
                Some((n0, acc)) => (n0, acc + &l),
                None => (n, l),
            };
            if l.contains("crate::{") && l.matches('{').count() > l.matches('}').count() {
                pending = Some((n, l));
                continue;
            }
            for to in referenced(&l) {
                if to != module {
                    g.entry(module.clone())
                        .or_default()
                        .entry(to)
                        .or_default()
                        .push(format!("{}:{}", rel.display(), n + 1));
                }
            }
        }
    }
    g
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in self.g.get(v).into_iter().flat_map(|m| m.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(&w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let at = self.stack.iter().rposition(|x| *x == v).unwrap();
                let comp: Vec<String> = self.stack.drain(at..).map(str::to_owned).collect();
                if comp.len() > 1 {
                    self.found.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

#[test]
fn no_module_depends_on_itself_through_another() {
    let mut report = String::new();
    let mut crates = 0;
    for m in members() {
        let src = workspace().join(&m).join("src");
        if !src.is_dir() {
            continue;
        }
        crates += 1;
        let g = graph(&src);
        for comp in cycles(&g) {
            let set: BTreeSet<&String> = comp.iter().collect();
            report += &format!("{m}: {comp:?}\n");
            for a in &comp {
                for (b, at) in &g[a] {
                    if set.contains(b) {
                        report += &format!("  {a} -> {b} at {}\n", at.join(", "));
                    }
                }
            }
        }
    }
    assert!(crates >= 8, "read only {crates} crates");
    assert!(report.is_empty(), "module cycles:\n{report}");
}

/// The check sees a cycle when there is one (it cannot pass by reading nothing).
#[test]
fn a_cycle_is_seen() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), vec![format!("{a}.rs:1")]);
    }
    assert_eq!(cycles(&g).len(), 1);
    assert_eq!(cycles(&g)[0].len(), 3);
    assert_eq!(
        referenced("use crate::{flow::FlowKey, pool::{DestId, Pool}};"),
        ["flow", "pool"]
    );
    assert_eq!(
        referenced("let x = lbcore::crate_x; crate::sysctl::set()"),
        ["sysctl"]
    );
}

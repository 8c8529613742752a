//! `docs/writing-a-connector.md` quotes the SCIM connector; this keeps the quotes true.
//!
//! Every fenced block whose first line names a file of the workspace (`// path` or
//! `# path`) must appear in that file verbatim, piece by piece, where `// …` or `# …`
//! lines mark what the guide left out. A refactor that changes quoted code fails here
//! until the guide follows.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The guide's fenced blocks, each as its lines (fences excluded).
fn blocks(markdown: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some(Vec::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push(line);
        }
    }
    out
}

/// Splits a quote at its elision markers into pieces that must each appear verbatim.
fn pieces(lines: &[&str]) -> Vec<String> {
    lines
        .split(|l| matches!(l.trim(), "// …" | "# …"))
        .map(|piece| piece.join("\n").trim_matches('\n').to_string())
        .filter(|piece| !piece.trim().is_empty())
        .collect()
}

#[test]
fn every_quoted_block_matches_its_source() {
    let root = workspace_root();
    let guide = std::fs::read_to_string(root.join("docs/writing-a-connector.md")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for block in blocks(&guide) {
        let Some(first) = block.first() else { continue };
        let Some(path) = first.strip_prefix("// ").or_else(|| first.strip_prefix("# ")) else { continue };
        let file = root.join(path.trim());
        if !file.is_file() {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for piece in pieces(&block[1..]) {
            checked += 1;
            if !source.contains(&piece) {
                let head = piece.lines().next().unwrap_or_default();
                failures.push(format!("{path}: the quote starting `{}` is not in the file", head.trim()));
            }
        }
    }
    assert!(failures.is_empty(), "the guide drifted from the code:\n{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} quotes checked: did the guide lose its file-name lines?");
}

#[test]
fn elision_markers_split_quotes() {
    let lines = ["fn a() {}", "    // …", "fn b() {}", "", "fn c() {}"];
    assert_eq!(pieces(&lines), vec!["fn a() {}".to_string(), "fn b() {}\n\nfn c() {}".to_string()]);
}

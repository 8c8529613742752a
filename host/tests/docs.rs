//! The generated reference pages in `docs/connectors/` must equal what
//! `connector-host docs <id>` prints today, for every connector the binary links.
//! Regenerate with `cargo run -p host -- docs <id> > docs/connectors/<id>.md`.
//!
//! The two guides quote the code they teach: `docs/writing-a-connector.md` quotes SCIM's
//! connector, `docs/writing-a-destination.md` the host's destinations. Every fenced block
//! whose first line names a file of the workspace (`// path` or `# path`) must appear in
//! that file verbatim, piece by piece, where `// …` or `# …` lines mark what the guide left
//! out. A refactor that changes quoted code fails here until the guide follows.

mod common;

use std::path::{Path, PathBuf};

use qlik_connector as _;
use scim_connector as _;

fn page(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/connectors").join(format!("{id}.md"))
}

#[tokio::test]
async fn committed_pages_match_the_generated_reference() {
    for connector in connector_api::registry::all().unwrap() {
        let id = connector.metadata().id;
        if id == "test-source" {
            continue; // registered by this test binary only, not shipped
        }
        let out = common::cli(&["docs", id]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let committed = std::fs::read_to_string(page(id)).unwrap_or_default();
        assert!(
            committed == out.stdout,
            "docs/connectors/{id}.md is out of date; regenerate it with\n  cargo run -p host -- docs {id} > docs/connectors/{id}.md"
        );
    }
}

#[tokio::test]
async fn reference_documents_config_and_every_column() {
    let out = common::cli(&["docs", "test-source"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let md = out.stdout;
    assert!(md.starts_with("# Test source (`test-source`)"), "{md}");
    assert!(md.contains("| `api_key` | string | yes |  | yes | Key the source checks. |"), "{md}");
    assert!(md.contains("| `page_size` | integer (uint64) | no | `25` | no | Records per page. |"), "{md}");
    assert!(md.contains("api_key = { env = \"TEST_SOURCE_API_KEY\" }"), "{md}");
    assert!(md.contains("| [`events`](#events) | `seq` | incremental, full_refresh | `seq` |"), "{md}");
    assert!(md.contains("| `created_at` | timestamp | Creation time. |"), "{md}");
    assert!(md.contains("| `tags` | json | Labels \\| with a pipe. |"), "{md}");
    assert!(md.contains("| `kind` | text | What happened. On two lines. |"), "{md}");
}

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

/// The drift between `guide` (a path from the workspace root) and the code it quotes, and
/// how many quotes were checked. A block naming a file that does not exist is drift too,
/// as is any `host/…` path the prose names (placeholders such as `<name>.rs` aside).
fn drift(guide: &str) -> (Vec<String>, usize) {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(guide)).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for block in blocks(&text) {
        let Some(first) = block.first() else { continue };
        let Some(path) = first.strip_prefix("// ").or_else(|| first.strip_prefix("# ")) else { continue };
        let path = path.trim();
        if !path.contains('/') && !root.join(path).is_file() {
            continue; // an example file of the reader's (`# scim.toml`), not one of ours
        }
        let Ok(source) = std::fs::read_to_string(root.join(path)) else {
            failures.push(format!("{path}: no such file"));
            continue;
        };
        for piece in pieces(&block[1..]) {
            checked += 1;
            if !source.contains(&piece) {
                let head = piece.lines().next().unwrap_or_default();
                failures.push(format!("{path}: the quote starting `{}` is not in the file", head.trim()));
            }
        }
    }
    for path in text.split('`').filter(|s| s.starts_with("host/") && !s.contains('<')) {
        if !root.join(path).exists() {
            failures.push(format!("{path}: named by the guide, but not in the workspace"));
        }
    }
    (failures, checked)
}

#[test]
fn connector_guide_quotes_the_code_as_it_is() {
    let (failures, checked) = drift("docs/writing-a-connector.md");
    assert!(failures.is_empty(), "the connector guide drifted from the code:\n{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} quotes checked: did the guide lose its file-name lines?");
}

#[test]
fn destination_guide_quotes_the_code_as_it_is() {
    let (failures, checked) = drift("docs/writing-a-destination.md");
    assert!(failures.is_empty(), "the destination guide drifted from the code:\n{}", failures.join("\n"));
    assert!(checked >= 8, "only {checked} quotes checked: did the guide lose its file-name lines?");
}

#[test]
fn elision_markers_split_quotes() {
    let lines = ["fn a() {}", "    // …", "fn b() {}", "", "fn c() {}"];
    assert_eq!(pieces(&lines), vec!["fn a() {}".to_string(), "fn b() {}\n\nfn c() {}".to_string()]);
}

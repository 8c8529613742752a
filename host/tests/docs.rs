//! The generated reference pages in `docs/connectors/` must equal what
//! `connector-host docs <id>` prints today, for every connector the binary links.
//! Regenerate with `cargo run -p host -- docs <id> > docs/connectors/<id>.md`.
//!
//! `docs/writing-a-destination.md` quotes the host's code the way
//! `docs/writing-a-connector.md` quotes SCIM's (checked in `tests/tests/scim_guide.rs`):
//! every fenced block whose first line names a file (`// path`) must appear in it
//! verbatim, piece by piece between `// …` lines, and every file it names must exist.

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

/// Splits a quote at its `// …` lines into pieces that must each appear verbatim.
fn pieces(lines: &[&str]) -> Vec<String> {
    lines
        .split(|l| l.trim() == "// …")
        .map(|piece| piece.join("\n").trim_matches('\n').to_string())
        .filter(|piece| !piece.trim().is_empty())
        .collect()
}

#[test]
fn destination_guide_quotes_the_code_as_it_is() {
    let root = workspace_root();
    let guide = std::fs::read_to_string(root.join("docs/writing-a-destination.md")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for block in blocks(&guide) {
        let Some(path) = block.first().and_then(|l| l.strip_prefix("// ")) else { continue };
        let Ok(source) = std::fs::read_to_string(root.join(path.trim())) else {
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
    // Every `host/…` path the prose names, but for placeholders such as `<name>.rs`.
    for path in guide.split('`').filter(|s| s.starts_with("host/") && !s.contains('<')) {
        if !root.join(path).exists() {
            failures.push(format!("{path}: named by the guide, but not in the workspace"));
        }
    }
    assert!(failures.is_empty(), "the destination guide drifted from the code:\n{}", failures.join("\n"));
    assert!(checked >= 8, "only {checked} quotes checked: did the guide lose its file-name lines?");
}

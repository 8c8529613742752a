//! The generated reference pages in `docs/connectors/` must equal what
//! `connector-host docs <id>` prints today, for every connector the binary links.
//! Regenerate with `cargo run -p host -- docs <id> > docs/connectors/<id>.md`.

mod common;

use std::path::PathBuf;

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

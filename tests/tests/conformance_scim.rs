//! The SCIM connector passes the conformance suite against the SCIM test server.

use std::sync::Arc;

use connector_api::testkit::{Verdict, run_conformance};
use scim_connector::ScimConnector;
use serde_json::json;
use tests::scim_server::{ScimServer, ScimServerConfig};

#[tokio::test]
async fn scim_connector_conforms() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let good = json!({"base_url": server.base_url(), "token": server.token(), "page_size": 40});
    let bad = json!({"base_url": server.base_url(), "token": "revoked-token-0b7d"});

    let report = run_conformance(Arc::new(ScimConnector::default()), good, bad, &["token"]).await;
    println!("{report}");
    report.assert_passed();

    // The suite read what the server holds, and ran the incremental re-read.
    for stream in ["users", "groups", "group_members"] {
        assert_eq!(report.records[stream], server.truth(stream).unwrap().count, "{stream}");
    }
    assert_eq!(report.outcome("read.incremental_rerun").unwrap().verdict, Verdict::Passed);
    assert_eq!(report.outcome("check.bad_config").unwrap().verdict, Verdict::Passed);
    assert!(report.log_lines > 0, "the connector's trace logs were captured and scanned");
}

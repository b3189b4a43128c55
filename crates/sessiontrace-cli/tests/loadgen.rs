//! The load generator can be trusted: on a small run over each protocol, every span it counts as
//! accepted is stored (counted through the server's `/api/stats`), and the counts match what it sent.

mod support;

use std::process::Command;

use support::RunningServer;

#[test]
fn every_accepted_span_lands_for_each_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    for (protocol, endpoint) in
        [("http-protobuf", &server.otlp_http), ("http-json", &server.otlp_http), ("grpc", &server.otlp_grpc)]
    {
        let output = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
            .args(["loadgen", "--protocol", protocol, "--endpoint", endpoint, "--api", &server.api])
            .args(["--spans", "4000", "--connections", "2", "--create-sessions", "3", "--verify", "--json", "--quiet"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{protocol}: {stdout} {}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(report["spans_sent"], 4000, "{protocol}: {report}");
        assert_eq!(report["spans_accepted"], 4000, "{protocol}: {report}");
        assert_eq!(report["spans_stored"], 4000, "{protocol}: {report}");
        assert_eq!(report["verified"], true);
        assert_eq!(report["errors"], 0);
    }
    let sessions: serde_json::Value =
        reqwest::blocking::get(format!("{}/api/sessions?limit=10", server.api)).unwrap().json().unwrap();
    let linked: u64 =
        sessions["sessions"].as_array().unwrap().iter().map(|s| s["counts"]["spans"].as_u64().unwrap()).sum();
    assert!(linked > 0, "session traces of the load were linked to the sessions it created");
}

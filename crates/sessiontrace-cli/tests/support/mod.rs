//! Starts the real `sessiontrace` binary on free loopback ports for end-to-end tests, and stops it with
//! SIGKILL when the test is done (or when a test wants a crash).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process.
pub struct RunningServer {
    child: Child,
    pub api: String,
    pub otlp_http: String,
    pub otlp_grpc: String,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RunningServer {
    /// Starts `sessiontrace serve` on the data folder and waits until it answers `/healthz`.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Like [`start`](Self::start), with extra `serve` flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let (http, otlp_http, otlp_grpc) = (free_port(), free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--otlp-http", &format!("127.0.0.1:{otlp_http}")])
            .args(["--otlp-grpc", &format!("127.0.0.1:{otlp_grpc}")])
            .args(extra)
            .env("SESSIONTRACE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sessiontrace serve");
        let server = RunningServer {
            child,
            api: format!("http://127.0.0.1:{http}"),
            otlp_http: format!("http://127.0.0.1:{otlp_http}"),
            otlp_grpc: format!("http://127.0.0.1:{otlp_grpc}"),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            let api = client.get(format!("{}/healthz", self.api)).send().is_ok_and(|r| r.status().is_success());
            let otlp = client.get(format!("{}/healthz", self.otlp_http)).send().is_ok_and(|r| r.status().is_success());
            let grpc_port = self.otlp_grpc.rsplit(':').next().unwrap();
            let grpc = std::net::TcpStream::connect(format!("127.0.0.1:{grpc_port}")).is_ok();
            if api && otlp && grpc {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sessiontrace serve did not become ready within 30 s");
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The server's config file (`--config FILE.toml`) through `ServerConfig::from_toml`: never a panic,
//! whatever the text. A config it accepts validates again, and everything the server derives from it at
//! start (listeners outside loopback, timeouts, the database path, login session lengths, the pipeline's
//! settings and routing policy) is computed without a panic and within the checked ranges.
//!
//! Texts naming a file setting (`ca_file`, `cert_file`, `key_file` of `[[forward]]`: any `_file`) are
//! skipped, and with them `\u` escapes (which could spell such a key in quotes): validating those reads the
//! named file, and a fuzzer must not read `/dev/stdin` or `/dev/zero`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiontrace_config::ServerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains("_file") || text.contains("\\u") || text.contains("\\U") {
        return;
    }
    let Ok(config) = ServerConfig::from_toml(text) else { return };
    config.validate().expect("an accepted config validates again");
    for (_, address) in config.non_loopback_listeners() {
        assert!(!address.ip().is_loopback());
    }
    assert!(!config.body_read_timeout().is_zero());
    assert!(config.database_path().starts_with(&config.data_dir));
    let (login_idle, login_max) = (config.login_idle(), config.login_max());
    assert!(login_idle.as_secs() >= 60 && login_max.as_secs() >= 3600);
    // sessiontrace-auth compares them with i64 milliseconds.
    assert!(i64::try_from(login_idle.as_millis()).is_ok() && i64::try_from(login_max.as_millis()).is_ok());
    let settings = config.pipeline_settings();
    let routing = &settings.ingest.routing;
    assert!((0.0..=1.0).contains(&routing.sampling_ratio));
    assert!(!settings.continuous.window.is_zero());
    assert_eq!(settings.tail.is_some(), config.sampling_ratio < 1.0 && config.decision_wait_ms > 0);
    for forward in &settings.forward {
        assert!(!forward.name.is_empty() && !forward.endpoint.ends_with('/'), "{forward:?}");
        assert!(forward.endpoint.parse::<http::Uri>().is_ok(), "{forward:?}");
    }
});

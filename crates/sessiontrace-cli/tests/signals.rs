//! Issue 21 end to end, through the real binary: a recorded session with a rage click, a dead click and
//! an error click whose slow request fails (its network event arriving in the next replay chunk) and
//! whose backend trace has a failing span, beside a calm session. Checks the signal counts as chunks
//! arrive, the signal list with each cause's trace and span, the timeline's `signal` items, every new
//! sessions-list filter and the 400s for bad filter values, on either store
//! (`SESSIONTRACE_TEST_STORE=clickhouse`).

mod support;

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::RunningServer;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn post(client: &Client, url: String, body: &Value) -> Value {
    let response = client.post(&url).json(body).send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn get(client: &Client, url: String) -> (u16, Value) {
    let response = client.get(&url).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// One span in OTLP JSON: (trace, span, parent, name, start, duration ms, error message).
fn span(trace: &str, id: &str, parent: Option<&str>, name: &str, start_ms: u64, ms: u64, error: Option<&str>) -> Value {
    let mut span = json!({"traceId": trace, "spanId": id, "name": name, "kind": 2,
        "startTimeUnixNano": (start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": ((start_ms + ms) * 1_000_000).to_string()});
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(parent);
    }
    if let Some(message) = error {
        span["status"] = json!({"code": 2, "message": message});
    }
    span
}

fn send_spans(client: &Client, server: &RunningServer, service: &str, spans: Vec<Value>) {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": spans}]}]});
    post(client, format!("{}/v1/traces", server.otlp_http), &body);
}

fn click(at: u64, node: u64) -> Value {
    json!({"type": 3, "timestamp": at, "data": {"source": 2, "type": 2, "id": node, "x": 1, "y": 1}})
}

fn network(start: u64, duration: u64, method: &str, url: &str, status: u64, trace: &str, span: &str) -> Value {
    json!({"type": 5, "timestamp": start + duration, "data": {"tag": "sessiontrace/network", "payload": {
        "method": method, "url": url, "status": status, "start_ms": start, "duration_ms": duration,
        "trace_id": trace, "span_id": span}}})
}

struct Recorded {
    angry: String,
    calm: String,
    pay_trace: String,
    menu_trace: String,
}

fn record(client: &Client, server: &RunningServer) -> Recorded {
    let api = &server.api;
    let angry = post(client, format!("{api}/api/sessions"), &json!({"name": "angry shopper"}));
    let id = angry["id"].as_str().unwrap().to_string();
    let session_trace = &angry["traceparent"].as_str().unwrap()[3..35];
    // Two traces of the session: the same prefix and short id, other random digits.
    let pay_trace = format!("{}aa", &session_trace[..30]);
    let menu_trace = format!("{}bb", &session_trace[..30]);
    let t0 = now_ms();

    send_spans(
        client,
        server,
        "gateway",
        vec![
            span(&pay_trace, "1111111111111111", None, "POST /api/pay", t0 + 9_012, 4_000, Some("upstream failed")),
            span(&menu_trace, "3333333333333333", None, "GET /api/menu", t0 + 1_012, 30, None),
        ],
    );
    send_spans(
        client,
        server,
        "payment",
        vec![span(
            &pay_trace,
            "2222222222222222",
            Some("1111111111111111"),
            "charge card",
            t0 + 9_100,
            3_900,
            Some("card processor timeout"),
        )],
    );

    let chunk0 = json!({"seq": 0, "events": [
        {"type": 4, "timestamp": t0, "data": {"href": "http://shop.test/checkout?step=2", "width": 800, "height": 600}},
        {"type": 2, "timestamp": t0 + 1, "data": {"node": {"type": 0, "id": 1, "childNodes": [
            {"type": 2, "id": 5, "tagName": "button", "attributes": {"id": "menu", "class": "btn"},
             "childNodes": [{"type": 3, "id": 6, "textContent": "Menu"}]},
            {"type": 2, "id": 7, "tagName": "button", "attributes": {"id": "noop"},
             "childNodes": [{"type": 3, "id": 8, "textContent": "Does nothing"}]},
            {"type": 2, "id": 9, "tagName": "button", "attributes": {"id": "pay"},
             "childNodes": [{"type": 3, "id": 10, "textContent": "Pay now"}]}]}}},
        // Rage: four clicks on #menu within 600 ms; its request succeeds and the menu opens.
        click(t0 + 1_000, 5), click(t0 + 1_200, 5), click(t0 + 1_400, 5), click(t0 + 1_600, 5),
        network(t0 + 1_010, 30, "GET", "http://shop.test/api/menu", 200, &menu_trace, "3333333333333333"),
        {"type": 3, "timestamp": t0 + 1_050, "data": {"source": 0, "texts": [], "attributes": [], "removes": [],
            "adds": [{"parentId": 1, "nextId": null, "node": {"type": 2, "id": 20, "tagName": "ul", "attributes": {}, "childNodes": []}}]}},
        // Dead: nothing follows #noop.
        click(t0 + 5_000, 7),
        // Error: #pay starts a request that fails after 4 s; its event comes in the next chunk.
        click(t0 + 9_000, 9)
    ]});
    post(client, format!("{api}/api/sessions/{id}/events"), &chunk0);
    let (_, shown) = get(client, format!("{api}/api/sessions/{id}"));
    // Until the request's event arrives, the #pay click looks dead.
    assert_eq!(shown["signals"], json!({"rage": 1, "dead": 2, "error": 0}), "{shown:#}");
    let chunk1 = json!({"seq": 1, "events": [
        network(t0 + 9_010, 4_000, "POST", "http://shop.test/api/pay", 502, &pay_trace, "1111111111111111"),
        {"type": 5, "timestamp": t0 + 13_020, "data": {"tag": "sessiontrace/console", "payload": {"level": "error", "message": "payment failed"}}}
    ]});
    post(client, format!("{api}/api/sessions/{id}/events"), &chunk1);

    let calm = post(client, format!("{api}/api/sessions"), &json!({"name": "calm shopper"}));
    let calm_id = calm["id"].as_str().unwrap().to_string();
    let calm_events = json!({"seq": 0, "events": [
        {"type": 4, "timestamp": t0, "data": {"href": "http://shop.test/home", "width": 800, "height": 600}},
        {"type": 2, "timestamp": t0 + 1, "data": {"node": {"type": 0, "id": 1, "childNodes": [
            {"type": 2, "id": 5, "tagName": "a", "attributes": {"id": "more"}, "childNodes": [{"type": 3, "id": 6, "textContent": "Read more"}]}]}}},
        click(t0 + 500, 5),
        {"type": 4, "timestamp": t0 + 700, "data": {"href": "http://shop.test/about", "width": 800, "height": 600}}
    ]});
    post(client, format!("{api}/api/sessions/{calm_id}/events"), &calm_events);

    // Spans are acknowledged once durable; wait until the index shows both traces.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(client, format!("{api}/api/traces/{pay_trace}")).1["spans"].as_array().is_none_or(|s| s.len() < 2) {
        assert!(Instant::now() < deadline, "the pay trace did not arrive");
        std::thread::sleep(Duration::from_millis(100));
    }
    Recorded { angry: id, calm: calm_id, pay_trace, menu_trace }
}

#[test]
fn rage_dead_and_error_clicks_are_found_filtered_and_linked_to_their_backend_span() {
    let data = tempfile::tempdir().unwrap();
    let server = RunningServer::start(data.path());
    let client = Client::new();
    let recorded = record(&client, &server);
    let api = &server.api;
    let list = |query: &str| -> (u16, Value) { get(&client, format!("{api}/api/sessions?{query}")) };

    let (_, shown) = get(&client, format!("{api}/api/sessions/{}", recorded.angry));
    assert_eq!(shown["signals"], json!({"rage": 1, "dead": 1, "error": 1}), "{shown:#}");
    let signals = shown["signal_list"].as_array().unwrap();
    let kinds: Vec<&str> = signals.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["rage", "dead", "error"]);
    let (rage, dead, error) = (&signals[0], &signals[1], &signals[2]);
    assert_eq!((rage["clicks"].as_u64(), rage["selector"].as_str()), (Some(4), Some("button#menu.btn")));
    assert_eq!(rage["cause"]["trace_id"], recorded.menu_trace.as_str());
    assert_eq!(rage["span"]["reason"], "slowest");
    assert_eq!(rage["span"]["name"], "GET /api/menu");
    assert_eq!((dead["selector"].as_str(), dead["text"].as_str()), (Some("button#noop"), Some("Does nothing")));
    assert!(dead["cause"].is_null() && dead["span"].is_null());
    assert_eq!(error["selector"], "button#pay");
    assert_eq!(error["cause"]["label"], "POST /api/pay → 502");
    assert_eq!(error["cause"]["trace_id"], recorded.pay_trace.as_str());
    // The trace's error span: the first failing one by start time.
    assert_eq!(error["span"]["reason"], "error");
    assert_eq!(error["span"]["span_id"], "1111111111111111");
    assert_eq!(error["span"]["status_message"], "upstream failed");

    let (_, timeline) = get(&client, format!("{api}/api/sessions/{}/timeline", recorded.angry));
    let items: Vec<&Value> = timeline["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "signal").collect();
    assert_eq!(items.len(), 3, "{timeline:#}");
    let error_item = items.iter().find(|i| i["label"].as_str().unwrap().starts_with("error click")).unwrap();
    assert_eq!(error_item["trace_id"], recorded.pay_trace.as_str());
    assert_eq!(error_item["span_id"], "1111111111111111");
    assert_eq!(error_item["status"], "error");

    let (_, listed) = list("");
    let calm = listed["sessions"].as_array().unwrap().iter().find(|s| s["id"] == recorded.calm.as_str()).unwrap();
    assert_eq!(calm["signals"], json!({"rage": 0, "dead": 0, "error": 0}));

    let ids = |query: &str| -> Vec<String> {
        let (status, body) = list(query);
        assert_eq!(status, 200, "{query}: {body}");
        let mut ids: Vec<String> =
            body["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    let angry = vec![recorded.angry.clone()];
    let calm = vec![recorded.calm.clone()];
    let none: Vec<String> = vec![];
    for (query, expected) in [
        ("signal=rage", &angry),
        ("signal=dead", &angry),
        ("signal=error", &angry),
        ("url=/checkout", &angry),
        ("url=*shop.test/check*", &angry),
        ("url=/about", &calm),
        ("url=/nowhere*", &none),
        ("clicked=%23pay", &angry),
        ("clicked=does%20nothing", &angry),
        ("clicked=read%20more", &calm),
        ("console_errors=true", &angry),
        ("console_errors=false", &calm),
        ("failed_requests=true", &angry),
        ("failed_requests=false", &calm),
        ("failed_path=/api/pay&failed_status=502", &angry),
        ("failed_path=/api/pay&failed_status=500", &none),
        ("failed_path=/api/pay", &angry),
        ("signal=dead&url=/about", &none),
    ] {
        assert_eq!(&ids(query), expected, "{query}");
    }

    for (query, message) in [
        ("signal=furious", "signal must be one of rage, dead, error"),
        ("console_errors=yes", "console_errors must be true or false"),
        ("failed_requests=1", "failed_requests must be true or false"),
        ("failed_status=abc", "failed_status must be an HTTP status"),
        ("failed_status=999", "failed_status must be an HTTP status"),
        ("url=", "url must not be empty"),
    ] {
        let (status, body) = list(query);
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(message), "{query}: {body}");
    }
}

//! The JSON-RPC endpoint: its own port, the bearer token, and an HTTP answer to everything.
use serde_json::json;

use crate::support::kamailio::Kamailio;

#[test]
fn rpc_without_the_right_token_is_refused() {
    let kamailio = Kamailio::start();
    let body =
        json!({"jsonrpc": "2.0", "method": "htable.sets", "params": ["users", "eve@x", "en=1"], "id": 1})
            .to_string();
    for bearer in [None, Some("wrong-token"), Some("")] {
        let response = kamailio
            .try_http(kamailio.rpc_port(), "POST", "/RPC", bearer, &body)
            .expect("an HTTP answer");
        assert_eq!(response.status, 401, "token {bearer:?}: {response:?}");
    }
    // A token that merely starts with the right one is wrong too.
    let longer = format!("{}x", kamailio.token());
    let response = kamailio
        .try_http(kamailio.rpc_port(), "POST", "/RPC", Some(&longer), &body)
        .expect("an HTTP answer");
    assert_eq!(response.status, 401, "{response:?}");
    // Nothing was written.
    let get = kamailio.rpc("htable.get", json!(["users", "eve@x"]));
    assert!(get.get("error").is_some(), "the refused write took effect: {get}");

    let ok = kamailio.rpc_response("core.uptime", json!([]));
    assert_eq!(ok.status, 200, "{ok:?}");
}

#[test]
fn token_can_come_from_the_environment() {
    let kamailio = Kamailio::builder().token_in_env().start();
    assert!(!kamailio.log().contains(kamailio.token()));
    assert_eq!(kamailio.rpc_response("core.uptime", json!([])).status, 200);
    let response = kamailio
        .try_http(kamailio.rpc_port(), "POST", "/RPC", Some("wrong"), "{}")
        .expect("an HTTP answer");
    assert_eq!(response.status, 401, "{response:?}");
}

#[test]
fn every_request_gets_an_http_answer() {
    let kamailio = Kamailio::start();
    let token = Some(kamailio.token());
    let port = kamailio.rpc_port();
    // try_http fails when no answer comes within its timeout: each of these is answered.
    let cases = [
        ("POST", "/RPC", "this is not JSON", 400),
        ("POST", "/RPC", "", 400),
        ("POST", "/RPC", "{\"jsonrpc\":\"2.0\",\"method\":", 400),
        ("POST", "/other", "{}", 404),
        ("GET", "/RPC", "", 405),
    ];
    for (method, path, body, status) in cases {
        let response = kamailio
            .try_http(port, method, path, token, body)
            .unwrap_or_else(|e| panic!("{method} {path} {body:?}: {e}"));
        assert_eq!(response.status, status, "{method} {path} {body:?}: {response:?}");
    }
    let parse_error = kamailio
        .try_http(port, "POST", "/RPC", token, "nope")
        .expect("an HTTP answer")
        .json();
    assert_eq!(parse_error["error"]["code"], -32700);
    // Kamailio still serves after all that.
    assert_eq!(kamailio.rpc_response("core.uptime", json!([])).status, 200);
}

#[test]
fn rpc_is_refused_on_the_sip_port() {
    let kamailio = Kamailio::start();
    let body =
        json!({"jsonrpc": "2.0", "method": "htable.sets", "params": ["users", "eve@x", "en=1"], "id": 1})
            .to_string();
    let response = kamailio
        .try_http(kamailio.sip_port(), "POST", "/RPC", Some(kamailio.token()), &body)
        .expect("an HTTP answer on the SIP TCP port");
    assert_eq!(response.status, 403, "{response:?}");
    let get = kamailio.rpc("htable.get", json!(["users", "eve@x"]));
    assert!(
        get.get("error").is_some(),
        "the write through the SIP port took effect: {get}"
    );
}

/// The shapes the operator's JSON-RPC client has to handle, as Kamailio 5.6 sends them.
#[test]
fn rpc_results_and_errors_have_kamailios_shapes() {
    let kamailio = Kamailio::start();

    let set = kamailio.rpc_response(
        "htable.sets",
        json!(["users", "carol@acme.sip.example.com", "ha1=00;en=1"]),
    );
    assert_eq!(set.status, 200);
    assert_eq!(set.header("Content-Type"), Some("application/json"));
    assert_eq!(set.json()["result"], "Ok. Key set to new value.");
    let get = kamailio.rpc_ok("htable.get", json!(["users", "carol@acme.sip.example.com"]));
    assert_eq!(get["item"]["value"], "ha1=00;en=1", "{get}");

    // Deleting twice: the second is a 404 error (the operator treats it as done).
    let first = kamailio.rpc_response("htable.delete", json!(["users", "carol@acme.sip.example.com"]));
    assert_eq!(first.status, 200, "{first:?}");
    let again = kamailio.rpc_response("htable.delete", json!(["users", "carol@acme.sip.example.com"]));
    assert_eq!(again.status, 404, "{again:?}");
    assert_eq!(again.json()["error"]["code"], 404);

    // ul.rm of an AOR with no contacts succeeds.
    let rm = kamailio.rpc_response("ul.rm", json!(["location", "carol@acme.sip.example.com"]));
    assert_eq!(rm.status, 200, "{rm:?}");

    // A missing key and an unknown method are HTTP 500 with the same code in the document.
    let missing = kamailio.rpc_response("htable.get", json!(["users", "nobody@acme.sip.example.com"]));
    assert_eq!(
        (missing.status, missing.json()["error"]["code"].clone()),
        (500, json!(500))
    );
    let unknown = kamailio.rpc_response("no.such.method", json!([]));
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].clone()),
        (500, json!(500))
    );

    // Batch arrays are not supported by Kamailio 5.6: an empty result, nothing applied.
    let batch =
        json!([{"jsonrpc": "2.0", "method": "htable.sets", "params": ["users", "dave@x", "en=1"], "id": 1}]);
    let response = kamailio
        .try_http(
            kamailio.rpc_port(),
            "POST",
            "/RPC",
            Some(kamailio.token()),
            &batch.to_string(),
        )
        .expect("an HTTP answer");
    assert_eq!(response.json(), json!({"jsonrpc": "2.0", "result": {}}));
    assert!(
        kamailio
            .rpc("htable.get", json!(["users", "dave@x"]))
            .get("error")
            .is_some()
    );

    // An empty location table dumps as no AoRs.
    let dump = kamailio.rpc_ok("ul.dump", json!([]));
    assert_eq!(dump["Domains"][0]["Domain"]["AoRs"], json!([]), "{dump}");
}

//! `/metrics` on a running node's API: the counts match the calls and HTTP requests
//! made.

use std::time::Duration;

use crate::support::{RunningNode, Spore};

/// The value of the sample `name{labels}` in the exposition `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn metrics_count_the_calls_and_requests_made() {
    let spore = Spore::new();
    spore.configure(
        "[[routes]]\nmethod = \"GET\"\npath = \"/hello/{name}\"\nfunction = \"web.hello\"\n",
    );
    let node = RunningNode::launch(
        spore,
        &[],
        &["--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0"],
    );
    let arith = node.spore.publish("arith", Some("arith"));
    let web = node.spore.publish("webfront", Some("web"));
    assert_eq!(node.spore.invoke("arith.add", &["2", "3"]), 5);
    assert_eq!(
        node.spore.invoke("arith.add", &["2", "3"]),
        5,
        "from the memo"
    );
    node.spore.run(&["invoke", "arith.div", "1", "0"]);
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    );
    let http = node.http.clone().unwrap();
    for _ in 0..3 {
        let status = agent
            .get(format!("http://{http}/hello/ada"))
            .call()
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let status = agent
        .get(format!("http://{http}/nowhere"))
        .call()
        .unwrap()
        .status();
    assert_eq!(status, 404);

    let mut scraped = agent
        .get(format!("http://{}/metrics", node.api))
        .header("authorization", node.spore.api_authorization())
        .call()
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.body_mut().read_to_string().unwrap();
    let calls = |function: &str, outcome: &str, kind: &str| {
        sample(
            &text,
            &format!(
                "spore_calls_total{{function=\"{function}\",outcome=\"{outcome}\",kind=\"{kind}\"}}"
            ),
        )
    };
    assert_eq!(
        calls(&format!("{arith}:add"), "ok", ""),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        calls(&format!("{arith}:div"), "error", "guest_error"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        calls(&format!("{web}:hello"), "ok", ""),
        Some(3.0),
        "{text}"
    );
    // The second add, and two of the three hellos (a pure function of the same request).
    assert_eq!(sample(&text, "spore_memo_hits_total"), Some(3.0), "{text}");
    let responses = |route: &str, status: u16| {
        sample(
            &text,
            &format!("spore_http_responses_total{{route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(responses("GET /hello/{name}", 200), Some(3.0), "{text}");
    assert_eq!(responses("none", 404), Some(1.0), "{text}");
    assert!(
        text.contains(&format!(
            "spore_call_seconds_count{{function=\"{arith}:add\"}} 2"
        )),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "a whole exposition");

    // Behind the token, like the rest of the API.
    let refused = agent
        .get(format!("http://{}/metrics", node.api))
        .call()
        .unwrap();
    assert_eq!(refused.status(), 401);
}

//! `/metrics` on a running node's API: the counts match the calls and HTTP requests
//! made.

use std::time::Duration;

use crate::support::{RunningNode, Spore};

/// The value of the sample `name{labels}` in the exposition `text`.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
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
    // What ran to a result: the first add and the first hello, on whichever tier their
    // code was when they ran.
    let runs =
        |tier: &str| sample(&text, &format!("spore_runs_total{{tier=\"{tier}\"}}")).unwrap_or(0.0);
    assert_eq!(runs("baseline") + runs("optimized"), 2.0, "{text}");
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

#[test]
fn metrics_count_the_restarts_of_a_provider_process() {
    let spore = Spore::new();
    let (_dir, script) =
        crate::support::temp_file("flaky.py", crate::abilities::FLAKY_PROVIDER.as_bytes());
    spore.configure(&format!(
        "[abilities.sensor]\nprovider = \"process\"\noperations = [\"read\"]\ncommand = [\"python3\", \"{}\"]\ntimeout = \"2s\"\n",
        script.display()
    ));
    let node = RunningNode::launch(spore, &[], &["--listen", "/ip4/127.0.0.1/tcp/0"]);
    node.spore.publish("sensors", Some("sensors"));
    let scrape = || {
        let mut scraped = ureq::get(format!("http://{}/metrics", node.api))
            .header("authorization", node.spore.api_authorization())
            .call()
            .unwrap();
        scraped.body_mut().read_to_string().unwrap()
    };
    assert_eq!(
        node.spore.invoke("sensors.read", &[r#""ok""#])["value"],
        1.0
    );
    let series = "spore_provider_restarts_total{ability=\"sensor\"}";
    assert_eq!(sample(&scrape(), series), None, "no restart yet");

    // The provider exits on `crash`; the supervisor starts it again.
    node.spore.run(&["invoke", "sensors.read", r#""crash""#]);
    let started = std::time::Instant::now();
    while node.spore.run(&["invoke", "sensors.read", r#""ok""#]).code != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never restarted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = scrape();
    assert_eq!(sample(&text, series), Some(1.0), "{text}");
}

#[test]
fn metrics_on_their_own_address_need_no_token_and_nothing_else_is_served_there() {
    let spore = Spore::new();
    let node = RunningNode::launch(
        spore,
        &[],
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(node.spore.home().join("node.json")).unwrap(),
    )
    .unwrap();
    let addr = file["metrics"]
        .as_str()
        .expect("node.json names the metrics address");
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut scraped = agent.get(format!("http://{addr}/metrics")).call().unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.body_mut().read_to_string().unwrap();
    assert!(text.contains("spore_calls_in_flight 0"), "{text}");
    let other = agent.get(format!("http://{addr}/v1/info")).call().unwrap();
    assert_eq!(other.status(), 404, "only /metrics");
}

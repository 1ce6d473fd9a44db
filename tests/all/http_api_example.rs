//! examples/http-api as its README runs it: the configuration it ships, the functions
//! of codebase/links, a real node serving the routes.

use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore, repo_root};

#[test]
fn the_http_api_example_shortens_follows_counts_and_remembers_links() {
    let spore = Spore::new();
    let config =
        std::fs::read_to_string(repo_root().join("examples/http-api/config.toml")).unwrap();
    spore.configure(&config);
    let node = RunningNode::launch(
        spore,
        &[],
        &["--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0"],
    );
    node.spore.publish("links", Some("links"));
    let http = node.http.clone().unwrap();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    );
    let url = |path: &str| format!("http://{http}{path}");

    let mut created = agent
        .post(url("/links"))
        .header("content-type", "application/json")
        .send(r#"{"url": "https://example.org/a?b=c"}"#)
        .unwrap();
    assert_eq!(created.status(), 200);
    let link: serde_json::Value =
        serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap();
    let id = link["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 8, "{link}");
    assert_eq!(link["visits"], 0);

    let followed = agent.get(url(&format!("/l/{id}"))).call().unwrap();
    assert_eq!(followed.status(), 302);
    assert_eq!(
        followed.headers().get("location").unwrap(),
        "https://example.org/a?b=c"
    );
    let mut stats = agent.get(url(&format!("/links/{id}"))).call().unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&stats.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(stats["visits"], 1, "{stats}");

    // The subscriber of links.created keeps it among the recent links.
    let started = Instant::now();
    loop {
        let mut recent = agent.get(url("/recent")).call().unwrap();
        let recent: serde_json::Value =
            serde_json::from_str(&recent.body_mut().read_to_string().unwrap()).unwrap();
        if recent[0]["id"] == id.as_str() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{recent}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let refused = agent
        .post(url("/links"))
        .header("content-type", "application/json")
        .send(r#"{"url": "ftp://example.org"}"#)
        .unwrap();
    assert_eq!(refused.status(), 400, "the function chose it");
    let missing = agent.get(url("/l/nosuchid")).call().unwrap();
    assert_eq!(missing.status(), 404);
    let no_url = agent.post(url("/links")).send_empty().unwrap();
    assert_eq!(no_url.status(), 400, "no argument for `url`");
}

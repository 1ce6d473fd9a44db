//! Placement that remembers (issue 13), with real `spore node run` processes on
//! loopback: a node reuses the peers it found serving a call's abilities, forgets a peer
//! whose call cannot reach it and looks again, looks again after the TTL, prefers a
//! peer that already ran the module, and passes over a peer that refuses the call.

use std::time::{Duration, Instant};

use crate::mesh::{cloud_and_edge, edge_without_kv, kv_server, steps};
use crate::metrics::sample;
use crate::support::{RunningNode, Spore};

/// How many placed calls of `node` found their peers in the DHT and in the cache.
fn lookups(node: &RunningNode) -> (f64, f64) {
    let text = node.metrics();
    let count = |source: &str| {
        sample(
            &text,
            &format!("spore_placement_lookups_total{{source=\"{source}\"}}"),
        )
        .unwrap_or(0.0)
    };
    (count("dht"), count("cache"))
}

/// The step where placement found the call's peers.
fn lookup_step(report: &serde_json::Value) -> String {
    steps(report)
        .into_iter()
        .find(|s| s.starts_with("needs kv"))
        .unwrap_or_else(|| panic!("no lookup step: {report}"))
}

/// The peer the call was forwarded to (the last one, after any that failed).
fn forwarded_to(report: &serde_json::Value, function: &str) -> String {
    let prefix = format!("forwarded {function} to ");
    steps(report)
        .iter()
        .rev()
        .find_map(|s| s.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("not forwarded: {report}"))
}

#[test]
fn a_warm_placed_call_makes_no_dht_lookup() {
    let (cloud, edge) = cloud_and_edge();
    let visits = edge.spore.publish("visits", None);
    let hit = format!("{visits}:hit");

    let cold = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert_eq!(cold["result"], 1, "{cold}");
    let step = lookup_step(&cold);
    assert!(!step.contains("cached"), "{step}");
    let warm = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert_eq!(warm["result"], 2, "{warm}");
    let step = lookup_step(&warm);
    assert!(
        step.contains("found 1 peer(s) advertising them (cached, "),
        "{step}"
    );
    assert_eq!(forwarded_to(&warm, &hit), cloud.peer_id);
    assert_eq!(lookups(&edge), (1.0, 1.0), "one DHT lookup, one cache hit");
}

#[test]
fn when_the_remembered_peer_dies_the_next_call_looks_again_and_runs_on_another() {
    let first = kv_server(&[]);
    let second = kv_server(&[&first]);
    let edge = RunningNode::start_with(edge_without_kv(), &[&first, &second]);
    let visits = edge.spore.publish("visits", None);
    let hit = format!("{visits}:hit");

    let report = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert_eq!(report["result"], 1, "{report}");
    let chosen = forwarded_to(&report, &hit);
    let (dead, other) = if chosen == first.peer_id {
        (first, second)
    } else {
        (second, first)
    };
    let dead_id = dead.peer_id.clone();
    drop(dead.kill());
    // Only a call that cannot have reached the peer may go elsewhere; wait until the
    // edge has seen the connection go, as it would before the next call of a real user.
    let started = Instant::now();
    while edge.connected_to(&dead_id) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let report = edge.spore.invoke_report(&hit, &[r#""home""#]);
    // The other peer's kv counts from zero: the call ran there, once.
    assert_eq!(report["result"], 1, "{report}");
    assert_eq!(forwarded_to(&report, &hit), other.peer_id);
    let path = steps(&report);
    let failed = path
        .iter()
        .position(|s| s.starts_with(&format!("not forwarding to {dead_id}")))
        .unwrap_or_else(|| panic!("the dead peer is tried first: {path:?}"));
    assert!(
        path[failed + 1].starts_with("needs kv") && !path[failed + 1].contains("cached"),
        "then a fresh lookup: {path:?}"
    );
    assert_eq!(lookups(&edge), (2.0, 1.0), "{path:?}");
}

#[test]
fn a_remembered_peer_is_looked_up_again_after_the_ttl() {
    let cloud = kv_server(&[]);
    let home = edge_without_kv();
    let config = std::fs::read_to_string(home.home().join("config.toml")).unwrap();
    let ttl = Duration::from_secs(3);
    home.write_config(&set_line(&config, "cache_ttl = ", "cache_ttl = \"3s\""));
    let edge = RunningNode::start_with(home, &[&cloud]);
    let visits = edge.spore.publish("visits", None);
    let hit = format!("{visits}:hit");
    // Pinned: no lookup, and the cloud fetches and compiles the module now, so that the
    // two calls below follow each other well within the TTL.
    edge.spore
        .invoke_report(&hit, &[r#""home""#, "--on", &cloud.peer_id]);

    let started = Instant::now();
    edge.spore.invoke_report(&hit, &[r#""home""#]);
    let warm = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert!(
        started.elapsed() < ttl,
        "too slow to see the cache: {:?}",
        started.elapsed()
    );
    assert!(lookup_step(&warm).contains("cached"), "{warm}");
    std::thread::sleep(ttl.saturating_sub(started.elapsed()) + Duration::from_millis(200));
    let expired = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert_eq!(expired["result"], 4, "{expired}");
    assert!(!lookup_step(&expired).contains("cached"), "{expired}");
    assert_eq!(lookups(&edge), (2.0, 1.0));
}

#[test]
fn a_peer_that_already_ran_the_module_is_preferred() {
    let first = kv_server(&[]);
    let second = kv_server(&[&first]);
    let edge = RunningNode::start_with(edge_without_kv(), &[&first, &second]);
    let visits = edge.spore.publish("visits", None);
    let links = edge.spore.publish("links", None);
    let (hit, recent) = (format!("{visits}:hit"), format!("{links}:recent"));

    // Both peers are remembered, in the order the lookup gave; the first gets the call.
    let report = edge.spore.invoke_report(&hit, &[r#""home""#]);
    let step = lookup_step(&report);
    assert!(step.contains("found 2 peer(s)"), "{step}");
    let chosen = forwarded_to(&report, &hit);
    let other = if chosen == first.peer_id {
        &second.peer_id
    } else {
        &first.peer_id
    };
    // The other peer runs `links` (pinned), so it holds it compiled.
    edge.spore.invoke_report(&recent, &["--on", other]);

    let report = edge.spore.invoke_report(&recent, &[]);
    assert_eq!(report["result"], serde_json::json!([]), "{report}");
    assert_eq!(&forwarded_to(&report, &recent), other, "{report}");
    let step = lookup_step(&report);
    assert!(
        step.contains("(cached, ") && step.contains(&format!("{other} already ran")),
        "{step}"
    );
    // `visits` still goes where it ran.
    let report = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert_eq!(forwarded_to(&report, &hit), chosen, "{report}");
}

#[test]
fn a_peer_that_refuses_a_placed_call_is_passed_over_for_the_next() {
    // `strict` serves its kv to peers only for code signed by a publisher of its own;
    // the edge publishes `visits` unsigned.
    let home = Spore::new();
    let publisher = home.run(&["key", "new", "publisher"]).ok().to_owned();
    home.write_config(&spore_node::config::default_config().replacen(
        "[abilities.kv]\n",
        &format!("[abilities.kv]\ncallers = [\"role:test\"]\npublishers = [\"{publisher}\"]\n"),
        1,
    ));
    let strict = RunningNode::start_with(home, &[]);
    let open = kv_server(&[&strict]);
    let edge = RunningNode::start_with(edge_without_kv(), &[&strict, &open]);
    let visits = edge.spore.publish("visits", None);
    // `key` reaches no ability, so `strict` runs it for anyone: pinned there, it makes
    // `strict` the peer that holds the module compiled, the one placement tries first.
    let key = edge.spore.invoke_report(
        &format!("{visits}:key"),
        &[r#""home""#, "--on", &strict.peer_id],
    );
    assert_eq!(key["result"], "visits/home", "{key}");

    let hit = format!("{visits}:hit");
    let report = edge.spore.invoke_report(&hit, &[r#""home""#]);
    assert_eq!(report["result"], 1, "{report}");
    assert_eq!(forwarded_to(&report, &hit), open.peer_id);
    let path = steps(&report);
    let refused = format!("{} refused {hit}: not_allowed", strict.peer_id);
    assert!(
        path.iter().any(|step| step.starts_with(&refused)),
        "{path:?}"
    );
}

/// `text` with its line starting `prefix` replaced by `line`.
fn set_line(text: &str, prefix: &str, line: &str) -> String {
    let start = text.find(prefix).expect("the line is there");
    let end = start + text[start..].find('\n').unwrap();
    format!("{}{line}{}", &text[..start], &text[end..])
}

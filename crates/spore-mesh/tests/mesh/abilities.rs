//! Ability adverts: who serves which ability, found through the DHT.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_peers_advertising_every_asked_ability() {
    bounded(async {
        let a = start(
            NodeSpec {
                abilities: vec!["kv".into()],
                ..NodeSpec::default()
            },
            MemHost::new(),
        )
        .await;
        let b = start(
            NodeSpec {
                abilities: vec!["sensor".into()],
                bootstrap: tcp_addrs(&a).await,
                ..NodeSpec::default()
            },
            MemHost::new(),
        )
        .await;
        let c = start_joining(&a, MemHost::new()).await;

        let find = |abilities: &[&str]| {
            let c = c.clone();
            let abilities: Vec<String> = abilities.iter().map(|a| a.to_string()).collect();
            async move {
                c.find_ability_peers(&abilities, Instant::now() + Duration::from_secs(5))
                    .await
                    .expect("lookup runs")
            }
        };
        // Adverts made at start reach the DHT once each node has bootstrapped.
        assert!(
            eventually(Duration::from_secs(15), || async {
                find(&["kv"]).await == vec![a.peer_id()]
                    && find(&["sensor"]).await == vec![b.peer_id()]
            })
            .await,
            "kv: {:?}, sensor: {:?}",
            find(&["kv"]).await,
            find(&["sensor"]).await
        );
        assert_eq!(find(&["kv", "sensor"]).await, vec![]);
        assert_eq!(find(&["nothing"]).await, vec![]);

        shutdown_all(&[&a, &b, &c]).await;
    })
    .await
}

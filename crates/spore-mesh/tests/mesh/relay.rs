//! A TCP relay the test controls, standing in for the network between two nodes.
//!
//! It forwards bytes both ways until it is partitioned. Then it holds them, sockets
//! open, as a network that drops packets does: nothing arrives and nothing is closed.
//! When it heals, each direction of each connection resumes when Linux TCP would next
//! retransmit the oldest byte held: 200 ms after it was sent (`TCP_RTO_MIN`), then 600 ms,
//! 1.4 s, 3 s... each wait twice the last, up to 120 s (`TCP_RTO_MAX`). A connection
//! opened during the partition is forwarded from when its SYN would be retransmitted: 1 s
//! after it was opened (`TCP_TIMEOUT_INIT`), then 3 s, 7 s, 15 s. This backoff is why an
//! old connection stays silent for tens of seconds after a long partition heals.

use std::net::SocketAddr;
use std::time::Duration;

use spore_mesh::Multiaddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};

const DATA_RTO: Duration = Duration::from_millis(200);
const SYN_RTO: Duration = Duration::from_secs(1);
const MAX_RTO: Duration = Duration::from_secs(120);
/// Bytes held per direction before the relay stops reading (and the sender's socket
/// buffer fills, as it would).
const HOLD_LIMIT: usize = 4 << 20;

#[derive(Clone, Copy, Debug)]
enum Link {
    Up { healed_at: Instant },
    Partitioned,
}

impl Link {
    /// When bytes first sent at `sent` get through, if the link is up.
    fn delivers_at(self, sent: Instant, rto: Duration) -> Option<Instant> {
        match self {
            Link::Partitioned => None,
            Link::Up { healed_at } => Some(retransmission_after(sent, healed_at, rto)),
        }
    }
}

/// The first time at or after `healed_at` that a sender that first sent at `sent`, with
/// no answer, sends again: `sent`, `sent + rto`, `sent + 3 rto`, `sent + 7 rto`...
fn retransmission_after(sent: Instant, healed_at: Instant, rto: Duration) -> Instant {
    let mut at = sent;
    let mut wait = rto;
    while at < healed_at {
        at += wait;
        wait = (wait * 2).min(MAX_RTO);
    }
    at
}

pub struct Relay {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    link: watch::Sender<Link>,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    /// Binds the relay's address; [`Relay::forward_to`] starts it.
    pub async fn bind() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (link, _) = watch::channel(Link::Up {
            healed_at: Instant::now(),
        });
        Relay {
            addr: listener.local_addr().unwrap(),
            listener: Some(listener),
            link,
            task: None,
        }
    }

    pub fn multiaddr(&self) -> Multiaddr {
        format!("/ip4/{}/tcp/{}", self.addr.ip(), self.addr.port())
            .parse()
            .unwrap()
    }

    /// Forwards every connection made to the relay to `upstream`.
    pub fn forward_to(&mut self, upstream: SocketAddr) {
        let listener = self.listener.take().expect("forward_to is called once");
        let link = self.link.subscribe();
        self.task = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { break };
                        connections.spawn(relay(client, upstream, link.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }

    /// Stops forwarding, keeping every socket open.
    pub fn partition(&self) {
        self.link.send_replace(Link::Partitioned);
    }

    pub fn heal(&self) {
        self.link.send_replace(Link::Up {
            healed_at: Instant::now(),
        });
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut link: watch::Receiver<Link>) {
    let opened = Instant::now();
    loop {
        let delivers_at = link.borrow().delivers_at(opened, SYN_RTO);
        if delivers_at.is_some_and(|at| at <= Instant::now()) {
            break;
        }
        tokio::select! {
            changed = link.changed() => if changed.is_err() { return },
            () = sleep_until(delivers_at.unwrap_or_else(Instant::now)), if delivers_at.is_some() => {}
        }
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, link.clone()),
        pump(server_read, client_write, link),
    );
}

/// Copies `from` to `to` as the link allows, the end of the stream included.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut link: watch::Receiver<Link>) {
    let mut buf = vec![0; 64 << 10];
    let mut held = Vec::new();
    // When the oldest byte held (or the end of the stream) was sent.
    let mut held_since: Option<Instant> = None;
    let mut ended = false;
    loop {
        let delivers_at = held_since.and_then(|sent| link.borrow().delivers_at(sent, DATA_RTO));
        if delivers_at.is_some_and(|at| at <= Instant::now()) {
            if to.write_all(&held).await.is_err() {
                return;
            }
            held.clear();
            held_since = None;
            if ended {
                let _ = to.shutdown().await;
                return;
            }
            continue;
        }
        tokio::select! {
            read = from.read(&mut buf), if !ended && held.len() < HOLD_LIMIT => {
                match read {
                    Ok(0) | Err(_) => ended = true,
                    Ok(n) => held.extend_from_slice(&buf[..n]),
                }
                held_since.get_or_insert_with(Instant::now);
            }
            changed = link.changed() => if changed.is_err() { return },
            () = sleep_until(delivers_at.unwrap_or_else(Instant::now)), if delivers_at.is_some() => {}
        }
    }
}

#[test]
fn retransmissions_back_off_exponentially_from_the_first_send() {
    let sent = Instant::now();
    let after = |secs: f64| {
        retransmission_after(sent, sent + Duration::from_secs_f64(secs), DATA_RTO) - sent
    };
    assert_eq!(after(0.0), Duration::ZERO);
    assert_eq!(after(0.1), Duration::from_millis(200));
    assert_eq!(after(1.0), Duration::from_millis(1400));
    // Held for 15 s: the next retransmission is at 25.4 s, 10.4 s after the heal.
    assert_eq!(after(15.0), Duration::from_millis(25_400));
    // Held for a minute: at 102.2 s.
    assert_eq!(after(60.0), Duration::from_millis(102_200));
}

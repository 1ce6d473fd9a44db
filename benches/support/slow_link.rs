//! A TCP relay on loopback that delays every byte by a fixed time each way, as a link
//! with a round trip of twice that would; there is no netem on the machines this runs
//! on. Used by the mesh benchmarks.

use std::time::Duration;

use spore_mesh::Multiaddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy on loopback to `to` that holds every byte for `one_way` in each direction,
/// as a link with a round trip of twice that would (its own TCP handshake excepted: the
/// proxy accepts at once). Runs until the runtime stops.
pub async fn slow_link(to: std::net::SocketAddr, one_way: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((near, _)) = listener.accept().await {
            let Ok(far) = TcpStream::connect(to).await else {
                continue;
            };
            for socket in [&near, &far] {
                socket.set_nodelay(true).unwrap();
            }
            let ((near_read, near_write), (far_read, far_write)) =
                (near.into_split(), far.into_split());
            tokio::spawn(held_copy(near_read, far_write, one_way));
            tokio::spawn(held_copy(far_read, near_write, one_way));
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk `delay` after it was read, in order; then closes.
async fn held_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (chunks, mut due) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            let chunk: Vec<u8> = chunk;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0; 64 << 10];
    while let Ok(read @ 1..) = from.read(&mut buffer).await {
        let at = tokio::time::Instant::now() + delay;
        if chunks.send((at, buffer[..read].to_vec())).is_err() {
            break;
        }
    }
    drop(chunks);
    let _ = writer.await;
}

/// `server`'s TCP address in `addrs`, for the proxy to connect to.
pub fn tcp_socket_addr(addrs: &[Multiaddr]) -> std::net::SocketAddr {
    use spore_mesh::Protocol;
    addrs
        .iter()
        .find_map(|addr| {
            let mut parts = addr.iter();
            match (parts.next(), parts.next()) {
                (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port))) => Some((ip, port).into()),
                _ => None,
            }
        })
        .expect("the server listens on TCP")
}

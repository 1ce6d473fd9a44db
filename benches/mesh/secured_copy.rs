//! The transport's share of a fetch: the same 64 MiB as `fetch_64mib`'s plain TCP copy,
//! over TCP secured with noise as the mesh's connections are (`noise_copy`), over one
//! yamux stream on top of that (`noise_yamux_copy`), and over one stream of libp2p's
//! QUIC (`quic_copy`, TLS 1.3 inside), without libp2p's swarm or anything of spore's. A fetch cannot be faster than `noise_yamux_copy`: what lies
//! between the two is spore's (requests, framing, verification, the swarm's wakes).

use std::sync::Arc;

use futures::future::poll_fn;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::core::Endpoint;
use libp2p::core::muxing::StreamMuxerExt;
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, Transport, TransportEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::identity::Keypair;
use libp2p::tcp::tokio::TcpStream;
use libp2p::{noise, yamux};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The layers a [`SecuredCopy`] goes through above TCP.
#[derive(Clone, Copy)]
pub enum Layers {
    Noise,
    NoiseYamux,
    Tls,
    /// Not above TCP: libp2p's QUIC over UDP, one stream.
    Quic,
}

/// A secured connection or a stream on one.
trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}
type Io = Box<dyn Duplex>;

/// The asking side of a connection whose other side answers every 1-byte request with
/// the whole of its data.
pub struct SecuredCopy {
    io: Io,
}

impl SecuredCopy {
    /// Starts the answering side on `serving` and connects to it from the current runtime.
    pub async fn connect(serving: &Runtime, layers: Layers, data: Arc<Vec<u8>>) -> SecuredCopy {
        if let Layers::Quic = layers {
            return Self::connect_quic(serving, data).await;
        }
        let listener = serving
            .spawn(TcpListener::bind("127.0.0.1:0"))
            .await
            .unwrap()
            .unwrap();
        let addr = listener.local_addr().unwrap();
        serving.spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            // The asking side goes away without asking when its case is filtered out.
            let Some(mut io) = secure(socket, layers, Side::Answering).await else {
                return;
            };
            let mut request = [0u8; 1];
            while io.read_exact(&mut request).await.is_ok() {
                if io.write_all(&data).await.is_err() || io.flush().await.is_err() {
                    break;
                }
            }
        });
        let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.set_nodelay(true).unwrap();
        let io = secure(socket, layers, Side::Asking).await;
        SecuredCopy {
            io: io.expect("a secured connection"),
        }
    }

    async fn connect_quic(serving: &Runtime, data: Arc<Vec<u8>>) -> SecuredCopy {
        let (listening, addr) = tokio::sync::oneshot::channel();
        serving.spawn(async move {
            let mut transport = Box::pin(quic_transport());
            let any_port = "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap();
            transport.listen_on(ListenerId::next(), any_port).unwrap();
            let mut listening = Some(listening);
            let upgrade = loop {
                match poll_fn(|cx| transport.as_mut().poll(cx)).await {
                    TransportEvent::NewAddress { listen_addr, .. } => {
                        let _ = listening.take().map(|l| l.send(listen_addr));
                    }
                    TransportEvent::Incoming { upgrade, .. } => break upgrade,
                    _ => {}
                }
            };
            let Ok((_, mut connection)) = upgrade.await else {
                return;
            };
            let Ok(mut io) = poll_fn(|cx| connection.poll_inbound_unpin(cx)).await else {
                return;
            };
            let mut request = [0u8; 1];
            while io.read_exact(&mut request).await.is_ok() {
                if io.write_all(&data).await.is_err() || io.flush().await.is_err() {
                    break;
                }
            }
            drop((connection, transport));
        });
        let addr = addr.await.unwrap();
        let mut transport = quic_transport();
        let dial = DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        };
        let (_, mut connection) = transport.dial(addr, dial).unwrap().await.unwrap();
        let stream = poll_fn(|cx| connection.poll_outbound_unpin(cx))
            .await
            .unwrap();
        // The connection and its endpoint live as long as the stream is used.
        std::mem::forget((connection, transport));
        SecuredCopy {
            io: Box::new(stream),
        }
    }

    /// Asks for the data and reads all of it into `into` (sized by the caller).
    pub async fn copy(&mut self, into: &mut [u8]) {
        self.io.write_all(&[1]).await.unwrap();
        self.io.flush().await.unwrap();
        self.io.read_exact(into).await.unwrap();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Asking,
    Answering,
}

fn quic_transport() -> libp2p::quic::tokio::Transport {
    libp2p::quic::tokio::Transport::new(libp2p::quic::Config::new(&Keypair::generate_ed25519()))
}

async fn secure(socket: tokio::net::TcpStream, layers: Layers, side: Side) -> Option<Io> {
    if let Layers::Tls = layers {
        let tls = libp2p::tls::Config::new(&Keypair::generate_ed25519()).unwrap();
        let socket = TcpStream(socket);
        let (_, secured) = match side {
            Side::Asking => tls.upgrade_outbound(socket, "/tls/1.0.0").await,
            Side::Answering => tls.upgrade_inbound(socket, "/tls/1.0.0").await,
        }
        .ok()?;
        return Some(Box::new(secured));
    }
    let noise = noise::Config::new(&Keypair::generate_ed25519()).unwrap();
    let socket = TcpStream(socket);
    let (_, secured) = match side {
        Side::Asking => noise.upgrade_outbound(socket, "/noise").await,
        Side::Answering => noise.upgrade_inbound(socket, "/noise").await,
    }
    .ok()?;
    if let Layers::Noise = layers {
        return Some(Box::new(secured));
    }
    let yamux = yamux::Config::default();
    let mut muxer = match side {
        Side::Asking => yamux.upgrade_outbound(secured, "/yamux/1.0.0").await,
        Side::Answering => yamux.upgrade_inbound(secured, "/yamux/1.0.0").await,
    }
    .ok()?;
    // The stream opens lazily: the answering side sees it with the first byte asked.
    let stream = match side {
        Side::Asking => poll_fn(|cx| muxer.poll_outbound_unpin(cx)).await,
        Side::Answering => poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await,
    }
    .ok()?;
    // The connection moves only while its muxer is polled, as the swarm does.
    tokio::spawn(async move { while poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await.is_ok() {} });
    Some(Box::new(stream))
}

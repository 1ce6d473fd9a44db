//! The HTTP server under the local API: hyper's HTTP/1.1 connections, with the bounds a
//! long-lived process needs against clients that stall, flood or die (docs/api.md,
//! "Connections and limits"). `axum::serve` has none of them: it kept every connection
//! that never finished its request until the process ran out of file descriptors.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a connection may take to deliver a request head, counted from when the
/// server starts waiting for one: when it accepts the connection, and when it has
/// answered the previous request on a kept-alive one. So it is both the header-read
/// timeout and the idle timeout (hyper times both with this one timer). The CLI writes
/// a request head in one go and sends its next request at once; 5 s is ample for that
/// on a loaded machine, and frees a slot that a stalled or vanished client holds.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The most connections served at once; further clients wait in the kernel's accept
/// queue until one closes. A CLI command holds one connection: 256 is far more than
/// people or scripts run against one node at once, and it keeps the API's share of a
/// default limit of 1024 file descriptors (two per connection, see [`hung_up`]) well
/// below what the store, the mesh and provider processes need. It also bounds the
/// blocking threads API requests occupy (tokio's pool has 512).
const MAX_CONNECTIONS: usize = 256;

/// How long a stopping node lets the requests in flight finish: the default call
/// deadline, so that a call with default limits completes. Requests still running then
/// are dropped, which cancels their calls.
const SHUTDOWN_GRACE: Duration = spore_node::config::defaults::TIMEOUT;

/// The address a connection was accepted on: the one its client dialed, which the API's
/// guard checks the `Host` header against (`super::api::guard`). Each of the
/// connection's requests carries it as an extension.
#[derive(Debug, Clone, Copy)]
pub struct AcceptedOn(pub SocketAddr);

/// Serves `router` on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(REQUEST_HEAD_TIMEOUT)
        // A client that closes its side of the connection has hung up (HTTP clients do
        // not half-close): its request is dropped, which cancels its call.
        .half_close(false);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: pause instead of spinning on the error.
                    tracing::warn!(%error, "the API could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (watcher, accepted_on) = match second_handle(&stream).and_then(|watcher| {
            let local = stream.local_addr()?;
            Ok((watcher, AcceptedOn(local)))
        }) {
            Ok(handles) => handles,
            Err(error) => {
                tracing::warn!(%error, "the API could not set up a connection; closing it");
                continue;
            }
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(accepted_on);
                request
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            tokio::select! {
                served = connection => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "an API connection ended with an error");
                    }
                }
                () = hung_up(watcher) => tracing::debug!("an API client hung up"),
            }
            drop(slot);
        });
    }
    // New clients are refused from here on.
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API requests still running after {SHUTDOWN_GRACE:?} were stopped");
    }
}

/// A second handle on a connection's socket, registered on its own, for [`hung_up`].
fn second_handle(stream: &TcpStream) -> io::Result<TcpStream> {
    let socket = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
    TcpStream::from_std(socket)
}

/// Resolves when the client has closed its side of the connection or reset it.
///
/// hyper notices a client that goes while a handler runs only when it has nothing left
/// to read: with a request the client queued behind the running one, it stops reading,
/// and a call would run to its deadline for nobody. This watches the socket itself; the
/// caller then drops the connection, and with it the handler, which cancels the call.
async fn hung_up(socket: TcpStream) {
    loop {
        match socket.ready(Interest::READABLE).await {
            Ok(ready) if !ready.is_read_closed() => {
                // Bytes to read, which are hyper's: forget this readiness and wait for
                // the next change on the socket.
                let _ = socket.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md states the bounds; the rows must say what the code does.
    #[test]
    fn docs_api_states_the_bounds_the_server_uses() {
        let doc = include_str!("../../docs/api.md");
        for expected in [
            format!("| request head | {} s |", REQUEST_HEAD_TIMEOUT.as_secs()),
            format!("| connections | {MAX_CONNECTIONS} at once |"),
            format!(
                "up to {} s (the default call deadline)",
                SHUTDOWN_GRACE.as_secs()
            ),
        ] {
            assert!(doc.contains(&expected), "docs/api.md has no `{expected}`");
        }
    }
}

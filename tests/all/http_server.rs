//! A small HTTP/1.1 server on loopback for the `http` ability's tests, answering canned
//! paths. It records how many connections it accepted, so tests can prove that a refused
//! request never connected.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TestServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    // Skip the headers.
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_owned();
                    let (status, body) = match path.as_str() {
                        "/page" => ("200 OK", "<html><head><TITLE> Spore &amp; Friends </TITLE></head><body>hi</body></html>".to_owned()),
                        "/untitled" => ("200 OK", "<html><body>no title here</body></html>".to_owned()),
                        _ => ("404 Not Found", "<title>not found</title>".to_owned()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        TestServer { addr, connections }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

//! A real `nats-server` for the benches that measure against NATS (`mesh`, `jetstream`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` on a free loopback port (with JetStream, its store in a temporary
/// directory, when asked), killed when dropped.
pub struct NatsServer {
    child: Child,
    port: u16,
    _store: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Starts the server and waits until it accepts connections; `None`, saying so on
    /// stderr, when `nats-server` is not installed (Debian puts it in /usr/sbin).
    pub fn start(jetstream: bool) -> Option<NatsServer> {
        let Some(binary) = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|binary| Command::new(binary).arg("--version").output().is_ok())
        else {
            eprintln!(
                "`nats-server` is not installed (apt-get install nats-server); skipping NATS"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(binary);
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        let store = jetstream.then(|| tempfile::tempdir().unwrap());
        if let Some(store) = &store {
            command.arg("-js").arg("-sd").arg(store.path());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        let mut server = NatsServer {
            child,
            port,
            _store: store,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("nats-server exited before accepting connections: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not accept connections on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    /// The server's process id, for reading its CPU time.
    #[allow(dead_code)] // The mesh bench does not read it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

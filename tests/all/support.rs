//! Running `spore` as a person would, on a home of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Exit codes, as documented in docs/cli.md.
pub mod exit {
    pub const USAGE: i32 = 2;
    pub const NOT_FOUND: i32 = 3;
    pub const GUEST_ERROR: i32 = 4;
    pub const TRAP: i32 = 5;
    pub const INVALID_MODULE: i32 = 6;
    pub const CORRUPT: i32 = 7;
    pub const UNAVAILABLE: i32 = 8;
    pub const NOT_ALLOWED: i32 = 9;
}

/// A temporary spore home and a way to run the CLI on it.
pub struct Spore {
    home: tempfile::TempDir,
}

/// What one run of the CLI did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout without its final newline.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "spore failed: {self:#?}");
        self.stdout.trim_end()
    }

    /// Asserts the exit code and returns stderr.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        &self.stderr
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}

impl Spore {
    pub fn new() -> Spore {
        Spore {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The `Authorization` header value that a client of the node running on this home
    /// sends (docs/api.md, "Authentication"): the token the node keeps in the home.
    pub fn api_authorization(&self) -> String {
        let path = self.home().join("api.token");
        let token = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("no API token at {}: {e}", path.display()));
        format!("Bearer {}", token.trim())
    }

    /// Replaces the home's `config.toml` with the default bindings plus `extra` (which
    /// must not repeat a table the defaults have).
    pub fn configure(&self, extra: &str) {
        self.write_config(&format!(
            "{}\n{extra}",
            spore_node::config::default_config()
        ));
    }

    /// Replaces the default `[limits]` memory line with `line`.
    pub fn configure_limits(&self, line: &str) {
        let defaults = spore_node::config::default_config();
        let start = defaults
            .find("memory = ")
            .expect("the defaults set limits.memory");
        let end = start + defaults[start..].find('\n').unwrap();
        self.write_config(&format!("{}{line}{}", &defaults[..start], &defaults[end..]));
    }

    /// Replaces the home's `config.toml` entirely.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.home().join("config.toml"), text).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    /// The command that runs `spore` on this home, for a test that manages the process
    /// itself (kills it, lets it run on).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spore"));
        command
            .arg("--home")
            .arg(self.home())
            .env_remove("SPORE_HOME")
            .env_remove("SPORE_LOG")
            .env("CARGO_TARGET_DIR", guest_target_dir());
        command
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run spore");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let output = child.wait_with_output().unwrap();
        Run {
            code: output.status.code().expect("spore was killed by a signal"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Publishes a codebase module (`"arith"`), optionally named; returns its hash.
    pub fn publish(&self, module: &str, name: Option<&str>) -> String {
        let path = module_path(module);
        let mut args = vec!["publish", path.to_str().unwrap()];
        if let Some(name) = name {
            args.extend(["--name", name]);
        }
        self.run(&args).ok().to_owned()
    }

    /// Invokes with `--json` and returns the whole report (result, memo, stats).
    #[track_caller]
    pub fn invoke_report(&self, reference: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json", "invoke", reference];
        all.extend(args);
        self.run(&all).json()
    }

    /// Invokes and returns the JSON result.
    #[track_caller]
    pub fn invoke(&self, reference: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["invoke", reference];
        all.extend(args);
        let run = self.run(&all);
        serde_json::from_str(run.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
    }

    /// Runs `faults:echo` to show that the process and the home still work after a failure.
    #[track_caller]
    pub fn still_serves(&self, faults_hash: &str) {
        let echoed = self.invoke(&format!("{faults_hash}:echo"), &[r#"{"still":"fine"}"#]);
        assert_eq!(echoed, serde_json::json!({"still": "fine"}));
    }
}

/// The target directory of the guest crates the tests build with `spore build`, `spore
/// dev` and `cargo test`: one for all of them, so that their dependencies are compiled
/// once, and not the tests' own, which the cargo running them may hold locked.
pub fn guest_target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_spore"));
    binary
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in <target>/<profile>/")
        .join("spore-guests")
}

/// The repository root (tests run in the package directory, which is the root).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn module_path(module: &str) -> PathBuf {
    PathBuf::from(spore_test_programs::path(module).unwrap_or_else(|| panic!("no module {module}")))
}

/// Writes `bytes` to a file in a fresh temporary directory.
pub fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Copies the directory `from` (files and subdirectories) to `to`, which is created.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A small seeded generator (splitmix64) for tests that choose at random: they print
/// the seed, and the variable that sets it, so that a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the environment variable `var`, else from the clock.
    pub fn from_env(var: &str) -> Rng {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Self::from_env_or(var, clock)
    }

    /// Seeded from the environment variable `var`, else with `seed`.
    pub fn from_env_or(var: &str, seed: u64) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .map(|text| {
                text.parse()
                    .unwrap_or_else(|_| panic!("{var} is not a u64"))
            })
            .unwrap_or(seed);
        eprintln!("seed {seed} (set {var}={seed} to repeat the choices)");
        Rng(seed)
    }

    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }
}

/// A `spore node run` process on a home of its own; stopped (SIGTERM) when dropped.
pub struct RunningNode {
    pub spore: Spore,
    pub child: Child,
    pub peer_id: String,
    /// Its TCP address on 127.0.0.1, with `/p2p/`.
    pub listen: String,
    /// Its local API's `host:port`.
    pub api: String,
    /// Where it serves its HTTP routes (`--http`), `host:port`.
    pub http: Option<String>,
}

impl RunningNode {
    pub fn start(bootstrap: &[&RunningNode]) -> RunningNode {
        Self::start_with(Spore::new(), bootstrap)
    }

    pub fn start_with(spore: Spore, bootstrap: &[&RunningNode]) -> RunningNode {
        let addrs: Vec<&str> = bootstrap.iter().map(|peer| peer.listen.as_str()).collect();
        Self::start_at(spore, &addrs)
    }

    pub fn start_at(spore: Spore, bootstrap: &[&str]) -> RunningNode {
        Self::launch(spore, bootstrap, &["--listen", "/ip4/127.0.0.1/tcp/0"])
    }

    /// Starts a node with `listen_args` (empty: where the home's node listened last).
    pub fn launch(spore: Spore, bootstrap: &[&str], listen_args: &[&str]) -> RunningNode {
        crate::test_mesh::join(spore.home());
        Self::launch_serving(spore, bootstrap, listen_args, "127.0.0.1:0", Stdio::null())
    }

    /// [`RunningNode::launch`], its log (stderr) written to [`RunningNode::log`]'s file.
    pub fn launch_logged(spore: Spore, bootstrap: &[&str], listen_args: &[&str]) -> RunningNode {
        crate::test_mesh::join(spore.home());
        let log = std::fs::File::create(spore.home().join("stderr.log")).unwrap();
        Self::launch_serving(
            spore,
            bootstrap,
            listen_args,
            "127.0.0.1:0",
            Stdio::from(log),
        )
    }

    /// What a node started with [`RunningNode::launch_logged`] has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.spore.home().join("stderr.log")).unwrap_or_default()
    }

    /// Starts a node on `spore`'s home as it is: a member of no mesh unless the home
    /// holds a certificate.
    pub fn launch_as_is(spore: Spore, bootstrap: &[&str], listen_args: &[&str]) -> RunningNode {
        Self::launch_serving(spore, bootstrap, listen_args, "127.0.0.1:0", Stdio::null())
    }

    /// Starts a node on loopback for peers whose API listens on `api`, its stderr piped
    /// (`child.stderr`).
    pub fn start_with_api(spore: Spore, api: &str) -> RunningNode {
        let listen = ["--listen", "/ip4/127.0.0.1/tcp/0"];
        crate::test_mesh::join(spore.home());
        Self::launch_serving(spore, &[], &listen, api, Stdio::piped())
    }

    fn launch_serving(
        spore: Spore,
        bootstrap: &[&str],
        listen_args: &[&str],
        api: &str,
        stderr: Stdio,
    ) -> RunningNode {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spore"));
        node_run_args(&mut command, &spore, bootstrap, listen_args, api, stderr);
        Self::started(spore, command, "/ip4/127.0.0.1/tcp/")
    }

    /// Starts a node of the test mesh inside the network namespace `namespace`,
    /// listening on `listen` (an IPv4 address there: the namespace's own, or 127.0.0.1
    /// for a node no one can dial), with `extra` arguments. Its API is on the
    /// namespace's loopback: reach it with `ip netns exec` too.
    pub fn launch_in_namespace(
        spore: Spore,
        namespace: &str,
        listen: &str,
        bootstrap: &[&str],
        extra: &[&str],
    ) -> RunningNode {
        crate::test_mesh::join(spore.home());
        // `ip netns exec` execs the node: the child is the node itself.
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace, env!("CARGO_BIN_EXE_spore")]);
        let listen_addr = format!("/ip4/{listen}/tcp/0");
        let log = std::fs::File::create(spore.home().join("stderr.log")).unwrap();
        // What the mesh did across the network (a relay reservation, a hole punch) is
        // logged at info, for the tests to read.
        command.env("SPORE_LOG", "info");
        let mut args = vec!["--listen", listen_addr.as_str()];
        args.extend(extra);
        node_run_args(
            &mut command,
            &spore,
            bootstrap,
            &args,
            "127.0.0.1:0",
            Stdio::from(log),
        );
        Self::started(spore, command, &format!("/ip4/{listen}/tcp/"))
    }

    /// Spawns `command` (a `spore node run`) and waits for its node.json; `listen` is
    /// the start of the listen address to keep.
    fn started(spore: Spore, mut command: Command, listen: &str) -> RunningNode {
        let child = command.spawn().expect("start spore node run");
        let node_file = spore.home().join("node.json");
        let started = Instant::now();
        // A node killed on this home leaves its node.json behind: wait for this one's.
        let file: serde_json::Value = loop {
            if let Some(file) = std::fs::read_to_string(&node_file)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .filter(|file| file["pid"] == child.id())
            {
                break file;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let listen = file["listen"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .find(|a| a.starts_with(listen))
            .unwrap_or_else(|| panic!("no TCP listen address {listen}...: {file}"));
        RunningNode {
            peer_id: file["peer_id"].as_str().unwrap().to_owned(),
            api: file["api"].as_str().unwrap().to_owned(),
            http: file["http"].as_str().map(str::to_owned),
            listen,
            spore,
            child,
        }
    }

    /// The headers every request to the node's API must carry, each ending with CRLF:
    /// the API's own address as `Host`, and the token.
    pub fn api_headers(&self) -> String {
        format!(
            "host: {}\r\nauthorization: {}\r\n",
            self.api,
            self.spore.api_authorization()
        )
    }

    /// What the node's `/metrics` says now.
    pub fn metrics(&self) -> String {
        ureq::get(format!("http://{}/metrics", self.api))
            .header("authorization", self.spore.api_authorization())
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// Whether `spore node status` lists an open connection to `peer`.
    pub fn connected_to(&self, peer: &str) -> bool {
        let status = self.spore.run(&["--json", "node", "status"]).json();
        status["peers"].as_array().unwrap().iter().any(|p| {
            p["peer_id"] == peer && p["connections"].as_array().is_some_and(|c| !c.is_empty())
        })
    }

    /// The port of [`RunningNode::listen`].
    pub fn tcp_port(&self) -> u16 {
        self.listen.split('/').nth(4).unwrap().parse().unwrap()
    }

    pub fn stop(mut self) -> Spore {
        self.terminate();
        let spore = std::mem::replace(&mut self.spore, Spore::new());
        std::mem::forget(self);
        spore
    }

    /// Kills the node with SIGKILL: no chance to finish or clean up anything.
    pub fn kill(mut self) -> Spore {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let spore = std::mem::replace(&mut self.spore, Spore::new());
        std::mem::forget(self);
        spore
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--home HOME node run` with a loopback API and no mDNS, as every test node runs.
fn node_run_args(
    command: &mut Command,
    spore: &Spore,
    bootstrap: &[&str],
    listen_args: &[&str],
    api: &str,
    stderr: Stdio,
) {
    command
        .arg("--home")
        .arg(spore.home())
        .args(["node", "run", "--no-mdns", "--api", api])
        .args(listen_args)
        .env_remove("SPORE_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for addr in bootstrap {
        command.arg("--bootstrap").arg(addr);
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.terminate();
    }
}

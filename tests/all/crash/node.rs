//! Mode `node`: a `spore node run` serving concurrent HTTP writes, SIGKILLed, then
//! restarted on the same home and checked through its API. A request answered 200 was
//! acknowledged.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ledger::{Ledger, Reader};
use super::{Budget, Figures, Modules};
use crate::support::{Rng, Spore};

/// Kills on one home before the harness starts a fresh one (each restart reads every
/// `kv` key written so far, so a home is kept to a few hundred).
const KILLS_PER_HOME: u64 = 8;
/// Clients writing `kv` keys at once, besides one incrementing a counter and one
/// publishing and naming.
const KV_WRITERS: u64 = 3;
/// The counter the counting client increments.
const PAGE: &str = "p";
const NAMES: u64 = 4;
/// A kill comes after up to this many acknowledgements (most kills) ...
const MAX_ACKS_BEFORE_KILL: u64 = 40;
/// ... or at a random moment up to this long after the writes began ...
const MAX_WRITE_TIME: Duration = Duration::from_millis(500);
/// ... or, for one kill in this many, while the node starts.
const STARTUP_KILL_ONE_IN: u64 = 5;
/// How long a node may take to start before the harness calls its home bricked.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Kills nodes; see the module's doc.
pub fn run(modules: &Modules, budget: &Budget, rng: &mut Rng) -> Figures {
    let mut figures = Figures::new("node");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("node.log");
    let mut usual_start = Duration::from_secs(1);
    'homes: while !budget.spent(&figures) {
        let spore = Spore::new();
        let mut ledger = Ledger::new(&modules.telemetry.hash, &modules.visits.hash);
        for module in [&modules.telemetry, &modules.visits, &modules.arith] {
            spore.run(&["publish", module.path.to_str().unwrap()]).ok();
            ledger.publish(&module.hash, &[], true);
        }
        let mut round = 0;
        loop {
            round += 1;
            let mut child = spawn(&spore, &log);
            let started = Instant::now();
            let done = round > KILLS_PER_HOME || budget.spent(&figures);
            if !done && rng.below(STARTUP_KILL_ONE_IN) == 0 {
                std::thread::sleep(usual_start.mul_f64(rng.unit()));
                if kill(&mut child) {
                    figures.kills += 1;
                    if let Err(error) = opens(&spore) {
                        figures.brick(spore.home(), &error);
                        continue 'homes;
                    }
                }
                continue;
            }
            let address = match ready(&mut child, &spore, &log) {
                Ok(address) => address,
                Err(error) => {
                    figures.brick(spore.home(), &error);
                    continue 'homes;
                }
            };
            usual_start = started.elapsed();
            let api = Api::new(&address, &spore);
            let mut reader = Through {
                api: &api,
                spore: &spore,
            };
            match ledger.check(&mut reader) {
                Ok(findings) => figures.record(findings),
                Err(error) => {
                    let _ = kill(&mut child);
                    figures.brick(spore.home(), &error);
                    continue 'homes;
                }
            }
            if done {
                stop(&mut child);
                if budget.spent(&figures) {
                    break 'homes;
                }
                continue 'homes;
            }
            let writers = Writers::start(&address, &spore, modules, &ledger, round, rng);
            let events = writers.until_killed(&mut child, &mut figures, rng);
            for event in events {
                event.record(&mut ledger, &mut figures);
            }
            if let Err(error) = opens(&spore) {
                figures.brick(spore.home(), &error);
                continue 'homes;
            }
        }
    }
    figures
}

/// A node's process, SIGKILLed if the harness lets go of it while it runs (a panic in
/// the harness must not leave nodes behind).
struct Node(Child);

impl std::ops::Deref for Node {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `spore node run` on the home, its stderr to `log`.
fn spawn(spore: &Spore, log: &Path) -> Node {
    // A killed node leaves its file behind; the next one is known by its own.
    let _ = std::fs::remove_file(spore.home().join("node.json"));
    let child = spore
        .command()
        .args(["node", "run", "--no-mdns", "--api", "127.0.0.1:0"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .expect("start spore node run");
    Node(child)
}

/// SIGKILLs the node; whether it was still running.
fn kill(child: &mut Child) -> bool {
    let _ = child.kill();
    let status = child.wait().unwrap();
    status.signal() == Some(9)
}

/// Stops the node as a person would (SIGTERM), killing it if it lingers.
fn stop(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(child);
}

/// The node's API address once it serves; else why it does not.
fn ready(child: &mut Child, spore: &Spore, log: &Path) -> Result<String, String> {
    let started = Instant::now();
    let node_file = spore.home().join("node.json");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "the restarted node exited ({status}): {}",
                log.trim()
            ));
        }
        let file: Option<Value> = std::fs::read_to_string(&node_file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        if let Some(file) = file
            && file["pid"] == child.id()
        {
            return Ok(file["api"].as_str().unwrap().to_owned());
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = kill(child);
            return Err(format!(
                "the restarted node did not serve in {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the home opens with the CLI (`spore ls` exits 0).
fn opens(spore: &Spore) -> Result<(), String> {
    let run = spore.run(&["ls"]);
    match run.code {
        0 => Ok(()),
        code => Err(format!("`spore ls` exited {code}: {}", run.stderr.trim())),
    }
}

/// Why a request was not acknowledged.
#[derive(Debug)]
enum Failure {
    /// No answer came: the node died under it (or before it).
    Unanswered(String),
    /// The node answered with an error: a failure of its own.
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unanswered(why) => write!(f, "no answer: {why}"),
            Failure::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// A client of the node's API.
struct Api {
    base: String,
    agent: ureq::Agent,
    authorization: String,
}

impl Api {
    /// A client of the API at `api`, of the node running on `spore`'s home.
    fn new(api: &str, spore: &Spore) -> Api {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Api {
            base: format!("http://{api}"),
            agent: ureq::Agent::new_with_config(config),
            authorization: spore.api_authorization(),
        }
    }

    fn answer(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Failure> {
        let mut response = response.map_err(|e| Failure::Unanswered(e.to_string()))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| Failure::Unanswered(format!("the answer was cut off: {e}")))?;
        if status != 200 {
            return Err(Failure::Refused(format!("{status}: {text}")));
        }
        serde_json::from_str(&text)
            .map_err(|e| Failure::Refused(format!("200 without JSON ({e}): {text}")))
    }

    fn get(&self, path: &str) -> Result<Value, Failure> {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.base))
                .header("authorization", &self.authorization)
                .call(),
        )
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let body = body.to_string();
        Self::answer(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("authorization", &self.authorization)
                .content_type("application/json")
                .send(body.as_bytes()),
        )
    }

    fn publish(&self, bytes: &[u8], name: &str) -> Result<Value, Failure> {
        Self::answer(
            self.agent
                .post(format!("{}/v1/publish", self.base))
                .header("authorization", &self.authorization)
                .query("name", name)
                .content_type("application/wasm")
                .send(bytes),
        )
    }
}

/// Reads a home through its running node: listings and calls through the API, `verify`
/// with the CLI (which asks the node, and decides from its report whether to fail).
struct Through<'a> {
    api: &'a Api,
    spore: &'a Spore,
}

impl Reader for Through<'_> {
    fn modules(&mut self) -> Result<Value, String> {
        self.api.get("/v1/modules").map_err(|e| e.to_string())
    }

    fn verify(&mut self) -> Result<(), String> {
        let run = self.spore.run(&["verify"]);
        match run.code {
            0 => Ok(()),
            code => Err(format!(
                "exit {code}: {} {}",
                run.stdout.trim(),
                run.stderr.trim()
            )),
        }
    }

    fn invoke(&mut self, reference: &str, args: &[Value]) -> Result<Value, String> {
        let answer = self
            .api
            .post(
                "/v1/invoke",
                &json!({ "reference": reference, "args": args }),
            )
            .map_err(|e| e.to_string())?;
        Ok(answer["result"].clone())
    }
}

/// What a writing client asked for.
enum Write {
    Put {
        key: String,
        value: Value,
    },
    Hit,
    Publish {
        hash: String,
        names: Vec<(String, String)>,
    },
    Name {
        name: String,
        target: String,
    },
}

/// One request of a writing client and its answer.
struct Event {
    write: Write,
    answer: Result<Value, Failure>,
}

impl Event {
    fn acked(&self) -> bool {
        self.answer.is_ok()
    }

    fn record(self, ledger: &mut Ledger, figures: &mut Figures) {
        let acked = self.acked();
        figures.acked += u64::from(acked);
        if let Err(Failure::Refused(why)) = &self.answer {
            figures.failure(why.clone());
        }
        match self.write {
            Write::Put { key, value } => ledger.put(&key, value, acked),
            Write::Hit => match self.answer.ok().and_then(|a| a["result"].as_u64()) {
                Some(count) => ledger.hit(PAGE, count),
                None => ledger.hit_attempted(PAGE),
            },
            Write::Publish { hash, names } => ledger.publish(&hash, &names, acked),
            Write::Name { name, target } => ledger.set_name(&name, &target, acked),
        }
    }
}

/// The writing clients of one round, each a thread with its own connection.
struct Writers {
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    fn start(
        address: &str,
        spore: &Spore,
        modules: &Modules,
        ledger: &Ledger,
        round: u64,
        rng: &mut Rng,
    ) -> Writers {
        let (sender, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut spawn = |work: Box<dyn FnMut(&Api) -> Event + Send>| {
            let (api, sender, stop) = (Api::new(address, spore), sender.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                writer(&api, &sender, &stop, work)
            }));
        };
        for client in 0..KV_WRITERS {
            let store = format!("{}:store", modules.telemetry.hash);
            let mut serial = 0u64;
            spawn(Box::new(move |api: &Api| {
                serial += 1;
                let key = format!("r{round}-c{client}-{serial}");
                let value = json!(serial);
                let call = json!({ "reference": store, "args": [key, value] });
                Event {
                    answer: api.post("/v1/invoke", &call),
                    write: Write::Put { key, value },
                }
            }));
        }
        let hit = json!({ "reference": format!("{}:hit", modules.visits.hash), "args": [PAGE] });
        spawn(Box::new(move |api: &Api| Event {
            answer: api.post("/v1/invoke", &hit),
            write: Write::Hit,
        }));
        spawn(admin(modules.clone(), ledger, Rng::new(rng.next_u64())));
        Writers {
            events,
            stop,
            threads,
        }
    }

    /// Lets the clients write until a random moment, kills the node then, and returns
    /// every request's outcome in the order they came.
    fn until_killed(self, child: &mut Child, figures: &mut Figures, rng: &mut Rng) -> Vec<Event> {
        let started = Instant::now();
        let mut seen = Vec::new();
        let (acks, deadline) = if rng.chance(0.7) {
            (1 + rng.below(MAX_ACKS_BEFORE_KILL), MAX_WRITE_TIME * 20)
        } else {
            (u64::MAX, MAX_WRITE_TIME.mul_f64(rng.unit()))
        };
        let mut acked = 0;
        while acked < acks {
            let left = deadline.saturating_sub(started.elapsed());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    acked += u64::from(event.acked());
                    seen.push(event);
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the clients stop when told"),
            }
        }
        if kill(child) {
            figures.kills += 1;
        }
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().unwrap();
        }
        seen.extend(self.events.try_iter());
        seen
    }
}

/// A client: sends requests until told to stop or the node stops answering.
fn writer(
    api: &Api,
    events: &Sender<Event>,
    stop: &AtomicBool,
    mut work: Box<dyn FnMut(&Api) -> Event + Send>,
) {
    while !stop.load(Ordering::SeqCst) {
        let event = work(api);
        let acked = event.acked();
        let _ = events.send(event);
        if !acked {
            // The node is being killed (or refused the request: reported, and the
            // client goes on after a pause).
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The client that publishes copies of `arith` (named) and points names at them.
fn admin(modules: Modules, ledger: &Ledger, mut rng: Rng) -> Box<dyn FnMut(&Api) -> Event + Send> {
    let mut targets: Vec<String> = ledger
        .modules()
        .into_iter()
        .filter(|hash| *hash != modules.telemetry.hash && *hash != modules.visits.hash)
        .collect();
    let mut publish = true;
    Box::new(move |api: &Api| {
        publish = !publish || targets.is_empty();
        if publish {
            let (bytes, hash) = modules.variant(rng.next_u64());
            let name = format!("m{}", rng.below(NAMES));
            let answer = api.publish(&bytes, &name);
            if answer.is_ok() {
                targets.push(hash.clone());
            }
            let names = modules.arith_names(&name, &hash);
            return Event {
                answer,
                write: Write::Publish { hash, names },
            };
        }
        let hash = &targets[rng.below(targets.len() as u64) as usize];
        let function =
            &modules.arith_functions[rng.below(modules.arith_functions.len() as u64) as usize];
        let name = format!("n{}", rng.below(NAMES));
        let target = format!("{hash}:{function}");
        let answer = api.post(
            "/v1/names/set",
            &json!({ "name": name, "reference": target }),
        );
        Event {
            answer,
            write: Write::Name { name, target },
        }
    })
}

//! The node's log: where `spore node run` writes it besides stderr (`node.log` in the
//! home, rotated by size), how the CLI's tracing is set up, and `spore logs [-f]`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use spore_node::Home;

use super::output::outln;

/// The log file of a running node, in its home.
pub const LOG_FILE: &str = "node.log";

/// A log file past this size is moved to `node.log.1` (replacing the one before) and
/// begun again: a node's log takes at most twice this on disk.
const ROTATE_AT: u64 = 32 << 20;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing lines as the node writes them, until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    /// How many of the last lines to print first.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub lines: usize,
}

/// Where a running node's spans and log lines go besides stderr.
#[derive(Default)]
pub struct NodeOutputs<'a> {
    /// Its log file in the home.
    pub log_file: Option<&'a Path>,
    /// An OTLP/HTTP collector for its spans, and its peer id to name it there.
    pub otlp: Option<(&'a str, String)>,
}

/// Sets up the CLI's tracing: `SPORE_LOG` when set, else `-v` levels over a default of
/// warnings and guests' `log` lines (at `info`, with the function and the call). Colour
/// only on a terminal, never with `NO_COLOR`. A running node also writes every line to
/// its log file, without colour, and exports its spans when given a collector; keep the
/// exporter returned until the end, when it sends what it still holds.
pub fn init_tracing(
    verbose: u8,
    outputs: NodeOutputs<'_>,
) -> anyhow::Result<Option<crate::telemetry::Exporter>> {
    let file = outputs.log_file;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // Kademlia warns when its periodic bootstrap finds no peer, which is the normal state
    // of a mesh's first node; the node reports unreachable bootstrap peers itself.
    let default = format!("{default},spore::guest=info,libp2p_kad::behaviour=error");
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("SPORE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&default))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(super::output::colour_on_stderr())
        .with_filter(filter());
    let file = file.and_then(|path| match RotatingFile::open(path) {
        Ok(writer) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter()),
        ),
        Err(error) => {
            eprintln!(
                "warning: cannot write the node's log to {}: {error}",
                path.display()
            );
            None
        }
    });
    let (otlp, exporter) = match outputs.otlp {
        Some((endpoint, instance)) => {
            let (layer, exporter) = crate::telemetry::layer(endpoint, &instance)?;
            let exported = tracing_subscriber::EnvFilter::new(crate::telemetry::EXPORTED);
            (Some(layer.with_filter(exported)), Some(exporter))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(otlp)
        .init();
    Ok(exporter)
}

use tracing_subscriber::Layer as _;

/// A log file that moves itself to `.1` past [`ROTATE_AT`].
#[derive(Clone)]
struct RotatingFile(Arc<Mutex<Rotating>>);

struct Rotating {
    path: PathBuf,
    file: File,
    written: u64,
}

impl RotatingFile {
    fn open(path: &Path) -> std::io::Result<RotatingFile> {
        if let Some(home) = path.parent() {
            std::fs::create_dir_all(home)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile(Arc::new(Mutex::new(Rotating {
            path: path.to_owned(),
            file,
            written,
        }))))
    }
}

impl Rotating {
    fn rotate(&mut self) -> std::io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, old)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut log = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.written + bytes.len() as u64 > ROTATE_AT {
            // A log that cannot rotate keeps growing rather than losing lines.
            let _ = log.rotate();
        }
        log.file.write_all(bytes)?;
        log.written += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingFile {
    type Writer = RotatingFile;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `spore logs`: the last lines of the node's log, then, with `--follow`, the lines it
/// writes next (across a rotation).
pub fn logs(args: &LogsArgs, home: &Home) -> anyhow::Result<()> {
    let path = home.root().join(LOG_FILE);
    let file = File::open(&path).map_err(|e| {
        anyhow::Error::from(super::exit::UsageError(format!(
            "no log at {} ({e}): `spore node run` writes it",
            path.display()
        )))
    })?;
    let mut reader = BufReader::new(file);
    let mut tail = std::collections::VecDeque::with_capacity(args.lines.min(10_000));
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if tail.len() == args.lines {
            tail.pop_front();
        }
        if args.lines > 0 {
            tail.push_back(std::mem::take(&mut line));
        }
        line.clear();
    }
    for line in tail {
        outln!("{}", line.trim_end_matches('\n'));
    }
    if !args.follow {
        return Ok(());
    }
    let mut at = reader.stream_position()?;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < at {
            // Rotated: the new file is read from its start.
            reader = BufReader::new(File::open(&path)?);
            at = 0;
        }
        reader.seek(SeekFrom::Start(at))?;
        let mut more = String::new();
        reader.read_to_string(&mut more)?;
        // Only whole lines: the rest is read again when it is finished.
        let whole = more.rfind('\n').map_or(0, |end| end + 1);
        for line in more[..whole].lines() {
            outln!("{line}");
        }
        at += whole as u64;
        // Whoever read the lines is gone (a closed pipe): so is the reason to follow.
        if super::output::stdout_gone() {
            return Ok(());
        }
    }
}

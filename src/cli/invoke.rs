//! `spore invoke`.

use std::io::Read;

use clap::Args;

use super::backend::Backend;
use super::exit::UsageError;
use super::limits::LimitArgs;
use super::output::Output;
use crate::report::InvokeCall;

#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// A name (`math.add`), a hash or unique prefix, optionally with `:function`.
    pub reference: String,
    /// Arguments, each a JSON value: `2`, `'"text"'`, `'{"a":1}'`; `-` reads one from stdin.
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Run the function even if its result is memoized (and do not memoize it).
    #[arg(long)]
    pub no_memo: bool,
    /// Never forward the call to another node; fail if abilities are missing here.
    #[arg(long, conflicts_with = "on")]
    pub local: bool,
    /// Run the call on this peer (a peer id).
    #[arg(long, value_name = "PEER")]
    pub on: Option<String>,
    /// Print the path the call took: which node ran what, what was fetched from whom.
    #[arg(long)]
    pub explain: bool,
}

pub fn invoke(args: &InvokeArgs, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let call = InvokeCall {
        reference: args.reference.clone(),
        args: parse_args(&args.args)?,
        timeout_ms: args.limits.timeout.map(|t| t.as_millis() as u64),
        memory_bytes: args.limits.memory,
        no_memo: args.no_memo,
        local: args.local,
        on: args.on.clone(),
    };
    let report = backend.invoke(&call)?;
    if !out.json(&report)? {
        println!("{}", report["result"]);
        if args.explain {
            for step in report["path"].as_array().into_iter().flatten() {
                let node = step["node"].as_str().unwrap_or("?");
                let short = &node[node.len().saturating_sub(8)..];
                eprintln!(
                    "  [{short}] {} ({} us)",
                    step["step"].as_str().unwrap_or(""),
                    step["micros"]
                );
            }
        }
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<Vec<serde_json::Value>, UsageError> {
    let mut stdin_used = false;
    args.iter()
        .enumerate()
        .map(|(i, text)| {
            let text = if text == "-" {
                if std::mem::replace(&mut stdin_used, true) {
                    return Err(UsageError("only one argument can be read from stdin (`-`)".into()));
                }
                let mut input = String::new();
                std::io::stdin()
                    .read_to_string(&mut input)
                    .map_err(|e| UsageError(format!("cannot read argument {} from stdin: {e}", i + 1)))?;
                input
            } else {
                text.clone()
            };
            serde_json::from_str(&text).map_err(|e| {
                UsageError(format!(
                    "argument {} is not JSON ({e}): `{text}`; strings need JSON quotes, e.g. '\"text\"'",
                    i + 1
                ))
            })
        })
        .collect()
}

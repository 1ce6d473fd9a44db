//! `spore invoke`.

use std::io::Read;

use clap::Args;
use serde_json::json;
use spore_core::value;
use spore_node::{InvokeOptions, LoadSource, Node};

use super::exit::UsageError;
use super::limits::LimitArgs;
use super::output::Output;

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
}

pub fn invoke(args: &InvokeArgs, node: &Node, out: &Output) -> anyhow::Result<()> {
    let values = parse_args(&args.args)?;
    let function = node.resolve(&args.reference)?;
    let options = InvokeOptions {
        limits: args.limits.apply(node.default_limits()),
        memo: !args.no_memo,
    };
    let outcome = node.invoke(&function, &values, &options)?;
    let result = value::to_json(&outcome.value);
    let stats = outcome.stats.map(|stats| {
        json!({
            "load": match stats.load_source {
                LoadSource::Memory => "memory",
                LoadSource::Artifact => "cached",
                LoadSource::Compiled => "compiled",
            },
            "load_us": stats.load_time.as_micros() as u64,
            "instantiate_us": stats.instantiate_time.as_micros() as u64,
            "run_us": stats.run_time.as_micros() as u64,
            "memory_bytes": stats.memory_bytes,
        })
    });
    let printed = out.json(&json!({
        "function": outcome.function,
        "result": result,
        "memo": outcome.memo,
        "effectful": outcome.effectful,
        "stats": stats,
    }))?;
    if !printed {
        println!("{result}");
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<Vec<ciborium::Value>, UsageError> {
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
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                UsageError(format!(
                    "argument {} is not JSON ({e}): `{text}`; strings need JSON quotes, e.g. '\"text\"'",
                    i + 1
                ))
            })?;
            Ok(value::from_json(&json))
        })
        .collect()
}

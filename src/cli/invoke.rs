//! `spore invoke`.

use std::io::Read;

use clap::Args;
use spore_core::text::printable;
use spore_node::Path;

use super::backend::Backend;
use super::exit::UsageError;
use super::limits::LimitArgs;
use super::output::{Output, errln, outln};
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
    let report = super::progress::while_fetching(backend, out, || backend.invoke(&call))?;
    if !out.json(&report)? {
        outln!("{}", report["result"]);
        if args.explain {
            for step in report["path"].as_array().into_iter().flatten() {
                // Peers name themselves and word their steps: print them escaped.
                let node = printable(step["node"].as_str().unwrap_or("?"), Path::MAX_STEP_BYTES);
                let what = printable(step["step"].as_str().unwrap_or(""), Path::MAX_STEP_BYTES);
                errln!(
                    "  [{}] {what} ({} us)",
                    last_chars(&node, 8),
                    step["micros"]
                );
            }
        }
    }
    Ok(())
}

/// The last `n` characters of `text`: a peer id is told apart by its end.
pub(super) fn last_chars(text: &str, n: usize) -> &str {
    let start = text
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(at, _)| at);
    &text[start..]
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

#[cfg(test)]
mod tests {
    use super::last_chars;

    #[test]
    fn last_chars_counts_characters_not_bytes() {
        assert_eq!(last_chars("12D3KooWAbCdEfGh", 8), "AbCdEfGh");
        assert_eq!(last_chars("short", 8), "short");
        assert_eq!(last_chars("", 8), "");
        // Byte offsets would cut these characters in half.
        assert_eq!(last_chars("nœud-été-ünïcødé", 8), "-ünïcødé");
        assert_eq!(last_chars("пир-узел-номер-один", 8), "мер-один");
        assert_eq!(last_chars("🦀🦀🦀🦀🦀🦀🦀🦀🦀", 8), "🦀🦀🦀🦀🦀🦀🦀🦀");
        assert_eq!(last_chars("a🦀", 8), "a🦀");
    }
}

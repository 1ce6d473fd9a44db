//! `spore routes ...`: the HTTP routes of `config.toml` (`[[routes]]`, spec/http.md),
//! listed, added and removed. The file is edited in place, keeping its comments, and
//! checked whole before it is written; a running node serves the new routes at once.

use clap::Subcommand;
use serde_json::json;
use spore_node::routes::Route;
use spore_node::{Home, NodeConfig};

use super::backend::Remote;
use super::exit::UsageError;
use super::output::{Output, errln, outln};

#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// List the routes: method, path, function, deadline and body limit.
    Ls,
    /// Add a route: METHOD ("GET", "POST", ..., or "*") PATH (`/orders/{id}`) to
    /// FUNCTION (a name or HASH:function).
    Add {
        method: String,
        path: String,
        function: String,
        /// The deadline of each request's call (default: `limits.timeout`).
        #[arg(long)]
        timeout: Option<String>,
        /// The largest request body (default 1MiB).
        #[arg(long)]
        max_body: Option<String>,
    },
    /// Remove the route of METHOD and PATH.
    Rm { method: String, path: String },
}

pub fn run(command: &RoutesCommand, home: &Home, out: &Output) -> anyhow::Result<()> {
    match command {
        RoutesCommand::Ls => {
            let config = NodeConfig::load_or_create(home.root())?;
            let rows: Vec<_> = config.routes.iter().map(row).collect();
            if !out.json(&rows)? {
                for route in config.routes.iter() {
                    outln!(
                        "{:<6} {:<32} -> {}  (timeout {}, max body {})",
                        route.method_text(),
                        route.path.to_string(),
                        route.function,
                        humantime::format_duration(route.timeout),
                        spore_node::format_size(route.max_body_bytes)
                    );
                }
            }
            Ok(())
        }
        RoutesCommand::Add {
            method,
            path,
            function,
            timeout,
            max_body,
        } => {
            let mut document = read(home)?;
            let mut table = toml_edit::Table::new();
            table.insert("method", toml_edit::value(method.as_str()));
            table.insert("path", toml_edit::value(path.as_str()));
            table.insert("function", toml_edit::value(function.as_str()));
            if let Some(timeout) = timeout {
                table.insert("timeout", toml_edit::value(timeout.as_str()));
            }
            if let Some(max_body) = max_body {
                table.insert("max_body", toml_edit::value(max_body.as_str()));
            }
            let routes = document
                .entry("routes")
                .or_insert_with(|| toml_edit::Item::ArrayOfTables(Default::default()));
            let Some(routes) = routes.as_array_of_tables_mut() else {
                return Err(UsageError(
                    "`routes` in config.toml is not a list of [[routes]] tables".into(),
                )
                .into());
            };
            routes.push(table);
            let config = write(home, &document)?;
            let added = config
                .routes
                .iter()
                .find(|r| r.method_text() == method && r.path.to_string() == normalized(path))
                .expect("the route just added");
            tell(
                home,
                out,
                &format!("added {} {} -> {}", method, added.path, function),
                row(added),
            )
        }
        RoutesCommand::Rm { method, path } => {
            let mut document = read(home)?;
            let wanted = normalized(path);
            let removed = document
                .get_mut("routes")
                .and_then(toml_edit::Item::as_array_of_tables_mut)
                .and_then(|routes| {
                    let index = routes.iter().position(|t| {
                        t.get("method").and_then(|v| v.as_str()) == Some(method.as_str())
                            && t.get("path").and_then(|v| v.as_str()).map(normalized)
                                == Some(wanted.clone())
                    })?;
                    routes.remove(index);
                    Some(())
                });
            if removed.is_none() {
                return Err(UsageError(format!(
                    "no route takes {method} {path} (see `spore routes ls`)"
                ))
                .into());
            }
            write(home, &document)?;
            tell(
                home,
                out,
                &format!("removed {method} {wanted}"),
                json!({ "method": method, "path": wanted }),
            )
        }
    }
}

fn row(route: &Route) -> serde_json::Value {
    json!({
        "method": route.method_text(),
        "path": route.path.to_string(),
        "function": route.function,
        "timeout_ms": route.timeout.as_millis() as u64,
        "max_body_bytes": route.max_body_bytes,
    })
}

/// A path pattern as `spore routes ls` prints it, or the text when it is none.
fn normalized(path: &str) -> String {
    path.parse::<spore_node::routes::PathPattern>()
        .map_or_else(|_| path.to_owned(), |p| p.to_string())
}

fn read(home: &Home) -> anyhow::Result<toml_edit::DocumentMut> {
    // Made with the defaults first, as any command that reads it would.
    NodeConfig::load_or_create(home.root())?;
    let file = home.root().join("config.toml");
    let text = std::fs::read_to_string(&file)?;
    Ok(text.parse()?)
}

/// Checks the edited configuration whole, then writes it; refused (nothing written)
/// when it does not hold, saying where.
fn write(home: &Home, document: &toml_edit::DocumentMut) -> anyhow::Result<NodeConfig> {
    let file = home.root().join("config.toml");
    let text = document.to_string();
    let config = NodeConfig::parse(&file, &text)?;
    spore_node::home::replace_private_file(&file, text.as_bytes())?;
    Ok(config)
}

/// Says what changed, and has a running node serve the routes now.
fn tell(home: &Home, out: &Output, said: &str, shown: serde_json::Value) -> anyhow::Result<()> {
    let reloaded: Option<serde_json::Value> = match Remote::find(home.root())? {
        Some(remote) => Some(remote.post("/v1/routes/reload", &json!({}))?),
        None => None,
    };
    if out.json(&shown)? {
        return Ok(());
    }
    outln!("{said}");
    match reloaded {
        Some(answer) if answer["serving"] == true => errln!("  the running node serves it now"),
        Some(_) => errln!("  the running node serves no routes: start it with --http ADDR"),
        None => errln!("  served from the next `spore node run --http ADDR`"),
    }
    Ok(())
}

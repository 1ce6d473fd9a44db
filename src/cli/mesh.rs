//! `spore mesh ...` and `spore node id`: making a mesh, admitting nodes to it with
//! membership certificates, joining one, revoking (`spec/trust.md`). The mesh key is one
//! of the home's keys (`spore key`); this node's certificate and its mesh's revocations
//! are kept by `spore_node::TrustStore`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use spore_core::trust::{Body, Membership, PublicKey, Revocation, Signed, TrustError, check_label};
use spore_node::trust::{OtherMesh, random_key};
use spore_node::{Home, Identity, PeerId, TrustStore, TrustStoreError, mesh};

use super::exit::UsageError;
use super::limits::parse_duration;
use super::output::{Output, outln, timestamp};

#[derive(Subcommand, Debug)]
pub enum MeshCommand {
    /// Make a mesh: its key (reused if this home holds it) and a certificate for this
    /// node; prints the mesh's public key.
    Init(InitArgs),
    /// Sign a certificate admitting PEER to the mesh; prints its text (or writes FILE).
    Admit(AdmitArgs),
    /// Take a certificate for this node (or a revocation of its mesh): its text, a file,
    /// or `-` for stdin.
    Join(JoinArgs),
    /// Revoke PEER's certificates issued until now; keeps the revocation, prints it.
    Revoke(RevokeArgs),
    /// Show this node's mesh, roles, abilities it may serve, expiry, revocations kept.
    Show,
}

/// What a certificate grants.
#[derive(Args, Debug)]
pub struct Grant {
    /// A role of the node in the mesh, a label (repeatable).
    #[arg(long = "role", value_name = "ROLE", value_parser = label)]
    roles: Vec<String>,
    /// An ability the node may serve to the mesh, a label (repeatable).
    #[arg(long = "serves", value_name = "ABILITY", value_parser = label)]
    serves: Vec<String>,
    /// How long the certificate admits the node: `30d`, `12h`, `90m`, `45s`. Default:
    /// until revoked.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    expires: Option<Duration>,
}

#[derive(Args, Debug)]
pub struct MeshKey {
    /// The name of the mesh key in this home (`spore key ls`).
    #[arg(long = "key", value_name = "NAME", default_value = "mesh")]
    name: String,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    grant: Grant,
    #[command(flatten)]
    key: MeshKey,
    /// Leave the mesh this home belongs to, if another.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
pub struct AdmitArgs {
    /// The node to admit: its peer id (`12D3KooW...`) or identity key (`ed25519:HEX`).
    #[arg(value_parser = peer_key)]
    peer: PublicKey,
    #[command(flatten)]
    grant: Grant,
    #[command(flatten)]
    key: MeshKey,
    /// Write the certificate to FILE instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// A certificate or revocation: its text, a file holding it, or `-` for stdin.
    record: String,
    /// Leave the mesh this home belongs to, if another.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The node to revoke: its peer id (`12D3KooW...`) or identity key (`ed25519:HEX`).
    #[arg(value_parser = peer_key)]
    peer: PublicKey,
    /// Why, for people (at most 256 bytes).
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    key: MeshKey,
}

pub fn run(command: &MeshCommand, home: &Home, out: &Output) -> anyhow::Result<()> {
    let store = TrustStore::new(home);
    match command {
        MeshCommand::Init(args) => init(args, home, &store, out),
        MeshCommand::Admit(args) => admit(args, &store, out),
        MeshCommand::Join(args) => join(args, home, &store, out),
        MeshCommand::Revoke(args) => revoke(args, &store, out),
        MeshCommand::Show => show(home, &store, out),
    }
}

/// `spore node id`: this node's peer id and identity key, one a line.
pub fn node_id(home: &Home, out: &Output) -> anyhow::Result<()> {
    let identity = Identity::load_or_create(home)?;
    let json =
        json!({ "peer_id": identity.peer_id().to_string(), "key": identity.key().to_string() });
    if !out.json(&json)? {
        outln!("{}", identity.peer_id());
        outln!("{}", identity.key());
    }
    Ok(())
}

fn init(args: &InitArgs, home: &Home, store: &TrustStore, out: &Output) -> anyhow::Result<()> {
    let other = other_mesh(args.force);
    let existing = match store.key(&args.key.name) {
        Ok(key) => Some(key),
        Err(TrustStoreError::NoKey { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let made = existing.is_none();
    let key = match existing {
        Some(key) => key,
        None => random_key()?,
    };
    // Refused before a new key is kept, so that a refusal leaves the home as it was.
    store.check_mesh(&key.public(), other)?;
    if made {
        store.add_key(&args.key.name, &key)?;
    }
    let identity = Identity::load_or_create(home)?;
    let now = now_ms();
    let certificate = Signed::sign(
        args.grant.membership(key.public(), identity.key(), now),
        &key,
    )?;
    store.install_certificate(&certificate, &identity.key(), now, other)?;

    let body = certificate.body();
    let mut json = membership_json(body);
    json["key"] = json!(args.key.name);
    json["made_key"] = json!(made);
    if !out.json(&json)? {
        outln!("{}", body.mesh);
        let key = &args.key.name;
        let made = if made {
            "made now"
        } else {
            "already in this home"
        };
        outln!(
            "  the mesh's key is `{key}` ({made}); this node is its member: {}",
            describe(body)
        );
        outln!(
            "  next: `spore mesh admit PEER` (a node's `spore node id`) here, then `spore mesh join CERT` on that node"
        );
    }
    Ok(())
}

fn admit(args: &AdmitArgs, store: &TrustStore, out: &Output) -> anyhow::Result<()> {
    let key = store.key(&args.key.name)?;
    let body = args.grant.membership(key.public(), args.peer, now_ms());
    let certificate = Signed::sign(body, &key)?;
    let text = certificate.to_text();
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let body = certificate.body();
    let mut json = membership_json(body);
    json["certificate"] = json!(text);
    json["out"] = json!(args.out);
    if !out.json(&json)? {
        match &args.out {
            Some(path) => outln!(
                "certificate for {} written to {}: {}",
                mesh::peer_id_of(&body.node),
                path.display(),
                describe(body)
            ),
            None => outln!("{text}"),
        }
    }
    Ok(())
}

fn join(args: &JoinArgs, home: &Home, store: &TrustStore, out: &Output) -> anyhow::Result<()> {
    let text = read_record(&args.record)?;
    if text.starts_with(Revocation::TEXT_PREFIX) {
        let revocation = Signed::<Revocation>::from_text(&text)?;
        let kept = store.add_revocation(&revocation)?;
        if !out.json(&revocation_json(&revocation, kept))? {
            let peer = mesh::peer_id_of(&revocation.body().node);
            let kept = if kept { "kept" } else { "kept already" };
            outln!("revocation of {peer} {kept}");
        }
        return Ok(());
    }
    let certificate = Signed::<Membership>::from_text(&text)?;
    let identity = Identity::load_or_create(home)?;
    let now = now_ms();
    store.install_certificate(&certificate, &identity.key(), now, other_mesh(args.force))?;
    let body = certificate.body();
    if !out.json(&membership_json(body))? {
        outln!("joined mesh {}", body.mesh);
        print_grant(body, now);
    }
    Ok(())
}

fn revoke(args: &RevokeArgs, store: &TrustStore, out: &Output) -> anyhow::Result<()> {
    let key = store.key(&args.key.name)?;
    let body = Revocation {
        mesh: key.public(),
        node: args.peer,
        revoked_ms: now_ms(),
        reason: args.reason.clone(),
    };
    let revocation = Signed::sign(body, &key)?;
    let kept = store.add_revocation(&revocation)?;
    if !out.json(&revocation_json(&revocation, kept))? {
        outln!("{}", revocation.to_text());
    }
    Ok(())
}

fn show(home: &Home, store: &TrustStore, out: &Output) -> anyhow::Result<()> {
    let Some(certificate) = store.certificate()? else {
        let json = json!({ "mesh": null, "status": "none", "revocations": 0 });
        if !out.json(&json)? {
            outln!(
                "this node belongs to no mesh; `spore mesh init` makes one, `spore mesh join` joins one"
            );
        }
        return Ok(());
    };
    let body = certificate.body();
    let identity = Identity::load_or_create(home)?;
    let revocations = store.revocations()?;
    let now = now_ms();
    let verdict = certificate.admits(&body.mesh, &identity.key(), now, &revocations);
    let status = match &verdict {
        Ok(()) => "member",
        Err(refusal) => refusal.code(),
    };
    // Whether this home can admit nodes: it holds the mesh's secret key.
    let key = store
        .keys()?
        .into_iter()
        .find(|(_, key)| *key == body.mesh)
        .map(|(name, _)| name);

    let mut json = membership_json(body);
    json["status"] = json!(status);
    json["revocations"] = json!(revocations.len());
    json["key"] = json!(key);
    if !out.json(&json)? {
        match &key {
            Some(name) => outln!(
                "mesh         {} (its key `{name}` is in this home)",
                body.mesh
            ),
            None => outln!("mesh         {}", body.mesh),
        }
        outln!(
            "node         {} ({})",
            mesh::peer_id_of(&body.node),
            body.node
        );
        outln!("issued       {}", timestamp(body.issued_ms));
        print_grant(body, now);
        match verdict {
            Ok(()) => outln!("status       member"),
            // Said as `join` says it; `admits` speaks of a peer presenting it.
            Err(TrustError::WrongNode { expected, found }) => {
                let why = TrustStoreError::WrongNode {
                    this: expected,
                    found,
                };
                outln!("status       {status}: {why}")
            }
            Err(why) => outln!("status       {status}: {why}"),
        }
        outln!("revocations  {} kept", revocations.len());
    }
    Ok(())
}

impl Grant {
    /// The certificate's body: labels sorted without repeats, as records hold them.
    fn membership(&self, mesh: PublicKey, node: PublicKey, now_ms: u64) -> Membership {
        let sorted = |labels: &[String]| -> Vec<String> {
            labels
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        Membership {
            mesh,
            node,
            roles: sorted(&self.roles),
            serves: sorted(&self.serves),
            issued_ms: now_ms,
            expires_ms: self
                .expires
                .map(|d| now_ms.saturating_add(d.as_millis().try_into().unwrap_or(u64::MAX))),
        }
    }
}

fn other_mesh(force: bool) -> OtherMesh {
    if force {
        OtherMesh::Replace
    } else {
        OtherMesh::Refuse
    }
}

/// A certificate's body as every `--json` output of these commands gives it.
fn membership_json(body: &Membership) -> Value {
    json!({
        "mesh": body.mesh.to_string(),
        "node": body.node.to_string(),
        "peer_id": mesh::peer_id_of(&body.node).to_string(),
        "roles": body.roles,
        "serves": body.serves,
        "issued_ms": body.issued_ms,
        "expires_ms": body.expires_ms,
    })
}

/// What a certificate grants, in a few words.
fn describe(body: &Membership) -> String {
    format!(
        "roles {}, serves {}, {}",
        list(&body.roles),
        list(&body.serves),
        match body.expires_ms {
            Some(ms) => format!("expires {}", timestamp(ms)),
            None => "no expiry".to_owned(),
        }
    )
}

/// The lines of what a certificate grants, as `join` and `show` print them.
fn print_grant(body: &Membership, now: u64) {
    outln!("roles        {}", list(&body.roles));
    outln!("serves       {}", list(&body.serves));
    match body.expires_ms {
        Some(ms) if ms <= now => outln!("expires      {} (expired)", timestamp(ms)),
        Some(ms) => outln!("expires      {}", timestamp(ms)),
        None => outln!("expires      never"),
    }
}

/// A revocation as every `--json` output of these commands gives it.
fn revocation_json(revocation: &Signed<Revocation>, kept: bool) -> Value {
    let body = revocation.body();
    json!({
        "revocation": revocation.to_text(),
        "mesh": body.mesh.to_string(),
        "node": body.node.to_string(),
        "peer_id": mesh::peer_id_of(&body.node).to_string(),
        "revoked_ms": body.revoked_ms,
        "reason": body.reason,
        "kept": kept,
    })
}

fn list(labels: &[String]) -> String {
    if labels.is_empty() {
        "-".to_owned()
    } else {
        labels.join(", ")
    }
}

/// A record given on the command line: its text (`spore-...`), `-` for stdin, or a file.
fn read_record(arg: &str) -> anyhow::Result<String> {
    if arg.starts_with("spore-") {
        return Ok(arg.to_owned());
    }
    let mut text = String::new();
    if arg == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        text = std::fs::read_to_string(arg).map_err(|e| {
            UsageError(format!(
                "cannot read `{arg}` ({e}); give a certificate's text, a file holding it, or `-` for stdin"
            ))
        })?;
    }
    Ok(text.trim().to_owned())
}

/// A node named on the command line by its peer id or its identity key.
fn peer_key(text: &str) -> Result<PublicKey, UsageError> {
    let key = if text.starts_with("ed25519:") {
        text.parse().ok()
    } else {
        text.parse::<PeerId>()
            .ok()
            .and_then(|peer| mesh::node_key(&peer))
    };
    key.ok_or_else(|| {
        UsageError(format!(
            "`{text}` is neither a peer id (`12D3KooW...`) nor an identity key (`ed25519:` and 64 hex digits)"
        ))
    })
}

fn label(text: &str) -> Result<String, UsageError> {
    check_label(text).map_err(UsageError)?;
    Ok(text.to_owned())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

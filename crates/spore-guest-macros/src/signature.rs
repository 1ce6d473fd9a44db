//! The `spore.signatures` record of one function (`spec/abi.md`, "Signatures"): its
//! parameters' names, types and kinds, and its result type, as canonical CBOR bytes that
//! the export's expansion places in the custom section. The one place this crate writes
//! CBOR: a map of text and arrays, which needs only the heads below.

use quote::ToTokens;
use syn::{ReturnType, Type};

/// The record's bytes: `{"name", "params": [{"name", "type", "kind"}], "returns"}`, with
/// the keys in canonical order (shorter first, then bytewise).
pub fn record(name: &str, params: &[(String, &Type)], output: &ReturnType) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, 5, 3);
    text(&mut out, "name");
    text(&mut out, name);
    text(&mut out, "params");
    head(&mut out, 4, params.len() as u64);
    for (param, ty) in params {
        head(&mut out, 5, 3);
        text(&mut out, "kind");
        text(&mut out, kind(ty));
        text(&mut out, "name");
        text(&mut out, param);
        text(&mut out, "type");
        text(&mut out, &shown(ty));
    }
    text(&mut out, "returns");
    match output {
        ReturnType::Default => text(&mut out, ""),
        ReturnType::Type(_, ty) => text(&mut out, &shown(ty)),
    }
    out
}

/// A type as people write it: `Result<i64, String>`, not `Result < i64 , String >`.
fn shown(ty: &Type) -> String {
    let text = ty.to_token_stream().to_string();
    let mut shown = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' if matches!(chars.peek(), Some('<' | '>' | ',' | ':' | ')' | ']')) => {}
            ' ' if matches!(shown.chars().last(), Some('<' | '(' | '[' | '&' | ':')) => {}
            _ => shown.push(c),
        }
    }
    shown
}

/// What values a parameter of type `ty` takes, from its last path segment.
fn kind(ty: &Type) -> &'static str {
    let mut ty = ty;
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            Type::Reference(reference) => ty = &reference.elem,
            _ => break,
        }
    }
    let Type::Path(path) = ty else {
        return "any";
    };
    let Some(last) = path.path.segments.last() else {
        return "any";
    };
    match last.ident.to_string().as_str() {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => "int",
        "f32" | "f64" => "float",
        "bool" => "bool",
        "String" | "str" => "text",
        "HttpRequest" => "request",
        _ => "any",
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend([major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, text: &str) {
    head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

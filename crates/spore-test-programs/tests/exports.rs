//! Every module of `codebase/` follows the ABI of spec/abi.md: it exports its memory,
//! `spore_alloc`, and exactly the expected spore functions, and imports exactly the
//! expected ability operations (nothing, for the pure modules), each with the type
//! `(i32, i32) -> i64`.

use std::collections::{BTreeMap, BTreeSet};

use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType, Validator,
};

/// A module: its name, its spore functions, and the `(ability, operation)` pairs it
/// imports.
type Expected = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const EXPECTED: &[Expected] = &[
    ("arith", &["add", "sub", "mul", "div", "sum"], &[]),
    ("words", &["frequencies", "top"], &[]),
    ("markdown", &["render"], &[]),
    ("reshape", &["summarize_orders", "flatten"], &[]),
    ("cpu", &["sha256", "mandelbrot"], &[]),
    (
        "faults",
        &["spin", "hog", "recurse", "boom", "fail", "echo"],
        &[],
    ),
    (
        "visits",
        &["hit", "count", "key", "stamp"],
        &[
            ("kv", "get"),
            ("kv", "put"),
            ("kv", "cas"),
            ("clock", "now"),
        ],
    ),
    ("title", &["fetch_title"], &[("http", "request")]),
    (
        "caller",
        &["call_twice", "depth", "pure_square"],
        &[("call", "invoke")],
    ),
    (
        "sensors",
        &["read", "log_reading"],
        &[("sensor", "read"), ("log", "info")],
    ),
    (
        "telemetry",
        &["store", "load", "collect"],
        &[("kv", "put"), ("kv", "get"), ("call", "invoke")],
    ),
    (
        "webfront",
        &["echo", "hello", "teapot", "broken", "stall", "hits"],
        &[("kv", "get"), ("kv", "put"), ("log", "info")],
    ),
    (
        "links",
        &[
            "shorten",
            "follow",
            "stats",
            "on_created",
            "recent",
            "expire",
        ],
        &[
            ("clock", "now"),
            ("kv", "cas"),
            ("kv", "delete"),
            ("kv", "get"),
            ("kv", "list"),
            ("kv", "put"),
            ("log", "info"),
            ("random", "bytes"),
            ("topic", "publish"),
        ],
    ),
    (
        "topics",
        &[
            "announce",
            "remember",
            "accept",
            "flaky",
            "refuse",
            "stall_first",
            "seen",
        ],
        &[
            ("kv", "get"),
            ("kv", "list"),
            ("kv", "put"),
            ("topic", "publish"),
        ],
    ),
    (
        "kvprefix",
        &["get", "put", "delete", "list", "cas"],
        &[
            ("kv", "get"),
            ("kv", "put"),
            ("kv", "delete"),
            ("kv", "list"),
            ("kv", "cas"),
        ],
    ),
];

/// A function type: parameters and results.
type Signature = (Vec<ValType>, Vec<ValType>);

struct Interface {
    /// `(module, name)` and the type of every import; `None` for non-functions.
    imports: Vec<((String, String), Option<Signature>)>,
    memories: Vec<String>,
    functions: BTreeMap<String, Signature>,
}

fn interface(wasm: &[u8]) -> Interface {
    let mut types: Vec<FuncType> = Vec::new();
    let mut function_types: Vec<u32> = Vec::new();
    let mut interface = Interface {
        imports: Vec::new(),
        memories: Vec::new(),
        functions: BTreeMap::new(),
    };
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("the module parses") {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub_type in group.expect("valid type").into_types() {
                        match sub_type.composite_type.inner {
                            CompositeInnerType::Func(func) => types.push(func),
                            other => panic!("unexpected non-function type {other:?}"),
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.expect("valid import");
                    // The type section precedes the import section.
                    let ty = match import.ty {
                        TypeRef::Func(index) => {
                            function_types.push(index);
                            Some(signature(&types[index as usize]))
                        }
                        _ => None,
                    };
                    let name = (import.module.to_owned(), import.name.to_owned());
                    interface.imports.push((name, ty));
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    function_types.push(index.expect("valid function"));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.expect("valid export");
                    exports.push((export.name.to_owned(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    for (name, kind, index) in exports {
        match kind {
            ExternalKind::Memory => interface.memories.push(name),
            ExternalKind::Func => {
                let ty = &types[function_types[index as usize] as usize];
                interface.functions.insert(name, signature(ty));
            }
            _ => {}
        }
    }
    interface
}

fn signature(ty: &FuncType) -> Signature {
    (ty.params().to_vec(), ty.results().to_vec())
}

#[test]
fn every_codebase_crate_is_built() {
    let built: BTreeSet<_> = spore_test_programs::ALL
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let expected: BTreeSet<_> = EXPECTED.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(built, expected);
    assert_eq!(
        spore_test_programs::path("arith"),
        Some(spore_test_programs::ARITH)
    );
    assert_eq!(spore_test_programs::path("nope"), None);
}

#[test]
fn modules_follow_the_abi() {
    let spore_function = (vec![ValType::I32, ValType::I32], vec![ValType::I64]);
    for (name, functions, imports) in EXPECTED {
        let wasm = spore_test_programs::bytes(name);
        Validator::new()
            .validate_all(&wasm)
            .unwrap_or_else(|error| panic!("{name} is not valid wasm: {error}"));
        let interface = interface(&wasm);

        // Ability operations only (spec/abi.md, "Ability imports"), and exactly the
        // ones the module's code calls: the node must bind every one of them.
        for ((module, field), ty) in &interface.imports {
            assert_eq!(
                ty.as_ref(),
                Some(&spore_function),
                "{name}: import {module}::{field} is not an ability operation"
            );
        }
        let imported: BTreeSet<_> = interface
            .imports
            .iter()
            .map(|((module, field), _)| (module.as_str(), field.as_str()))
            .collect();
        let expected_imports: BTreeSet<_> = imports.iter().copied().collect();
        assert_eq!(imported, expected_imports, "{name}: imports");
        assert_eq!(
            imported.len(),
            interface.imports.len(),
            "{name}: an operation is imported twice"
        );
        assert_eq!(interface.memories, ["memory"], "{name}");
        assert_eq!(
            interface.functions.get("spore_alloc"),
            Some(&(vec![ValType::I32], vec![ValType::I32])),
            "{name}: spore_alloc"
        );
        assert_eq!(
            interface.functions.get("spore_panic_message"),
            Some(&(vec![], vec![ValType::I64])),
            "{name}: spore_panic_message"
        );

        // The spec's definition: (i32, i32) -> i64 and not starting with `spore_`.
        let spore_functions: BTreeSet<_> = interface
            .functions
            .iter()
            .filter(|(export, ty)| !export.starts_with("spore_") && **ty == spore_function)
            .map(|(export, _)| export.as_str())
            .collect();
        let expected: BTreeSet<_> = functions.iter().copied().collect();
        assert_eq!(spore_functions, expected, "{name}");

        // spore-guest describes every function in the signatures section (spec/abi.md).
        let described: BTreeSet<String> = spore_core::signature::signatures(&wasm)
            .into_iter()
            .map(|signature| signature.name)
            .collect();
        let expected: BTreeSet<String> = functions.iter().map(|f| f.to_string()).collect();
        assert_eq!(described, expected, "{name}: signatures");
    }
}

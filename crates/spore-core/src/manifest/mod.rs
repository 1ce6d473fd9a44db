//! Manifests (`spec/manifest.md`): what a module is, derived by inspecting its bytes.
//!
//! A manifest is never declared by the module's author. Everything in it is read off
//! the module, so two nodes that hold the same bytes derive the same manifest, byte
//! for byte, and the manifest's own hash can be compared across the mesh.

mod limits;
mod reach;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmparser::types::EntityType;
use wasmparser::{FuncType, ValType, Validator, WasmFeatures};

use crate::abi;
use crate::hash::Hash;
use crate::reference::ExportName;
use crate::value::{self, ValueError};

pub use limits::{MAX_BR_TABLE_TARGETS, ModuleLimit, ModuleLimits, OverLimit};

/// The manifest format this code writes. Format 1 had no per-function reach; a store
/// that finds one derives the manifest again from the module.
pub const FORMAT: u32 = 2;

/// The WebAssembly features a spore module may use: WebAssembly 2.0 plus tail calls,
/// extended constant expressions and relaxed SIMD (run deterministically). No threads,
/// no 64-bit memories, no GC: they would break determinism or the 32-bit ABI. Without GC
/// there is no `externref` either (`funcref` stays): wasmtime is built without a
/// collector and could not compile a module that uses it.
pub const FEATURES: WasmFeatures = WasmFeatures::WASM2
    .difference(WasmFeatures::GC_TYPES)
    .union(WasmFeatures::TAIL_CALL)
    .union(WasmFeatures::EXTENDED_CONST)
    .union(WasmFeatures::RELAXED_SIMD);

/// Everything spore needs to know about a module without running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format, [`FORMAT`].
    pub format: u32,
    /// The hash of the module's bytes.
    pub module: Hash,
    /// The module's size in bytes.
    pub size: u64,
    /// The spore functions the module exports, each with the abilities it can reach
    /// (sorted, each once): what must be bound for it to run.
    pub functions: BTreeMap<ExportName, Vec<String>>,
    /// The ability operations the module imports, sorted and without repeats.
    pub imports: Vec<Import>,
    /// Initial and maximum linear memory, in 64 KiB pages.
    pub memory: MemoryLimits,
}

/// One imported ability operation, such as `kv.get`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Import {
    pub ability: String,
    pub operation: String,
}

/// The memory a module declares, in 64 KiB Wasm pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryLimits {
    pub initial_pages: u64,
    pub maximum_pages: Option<u64>,
}

/// Why bytes are not a spore module. Each variant says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    #[error(
        "not a WebAssembly module: it does not start with the bytes `\\0asm` (is this a .wasm file?)"
    )]
    NotWasm,
    #[error(
        "this is a WebAssembly component (or a newer binary format); spore runs core modules: build for wasm32-unknown-unknown"
    )]
    NotCoreModule,
    #[error("not a valid WebAssembly module: {message} (at byte offset {offset})")]
    Invalid { message: String, offset: usize },
    #[error(
        "the module does not export its memory as `memory`; spore functions must be built with spore-guest"
    )]
    NoMemory,
    #[error(
        "the module does not export `spore_alloc: (i32) -> i32`; spore functions must be built with spore-guest"
    )]
    NoAllocator,
    #[error(
        "the export `{0}` has the type of a spore function but is not a valid function name: {rule}",
        rule = ExportName::RULE
    )]
    BadFunctionName(String),
    #[error("the export `{name}` has the wrong type: expected {expected}")]
    WrongExportType {
        name: String,
        expected: &'static str,
    },
    #[error(
        "the module exports no spore function: a function export with type (i32, i32) -> i64 (mark functions with #[spore_guest::function])"
    )]
    NoFunctions,
    #[error(
        "the import `{module}.{name}` is not a function: a module may import only ability operations, never memories, tables or globals"
    )]
    NonFunctionImport { module: String, name: String },
    #[error(
        "the import `{module}.{name}` has type {found}: ability operations have type (i32, i32) -> i64"
    )]
    WrongImportType {
        module: String,
        name: String,
        found: String,
    },
    #[error(
        "the import `{module}.{name}` does not name an ability: ability and operation names are lowercase letters, digits, `_` and `-`, starting with a letter"
    )]
    BadAbilityName { module: String, name: String },
}

/// Why bytes are not a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestDecodeError {
    #[error("manifest is not valid CBOR: {0}")]
    Cbor(#[from] ValueError),
    #[error("manifest format {0} is newer than this spore understands ({FORMAT})")]
    UnknownFormat(u32),
}

impl Manifest {
    /// Validates `bytes` as a spore module and derives its manifest.
    pub fn derive(bytes: &[u8]) -> Result<Manifest, ModuleError> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {}
            Some([0, b'a', b's', b'm', ..]) => return Err(ModuleError::NotCoreModule),
            _ => return Err(ModuleError::NotWasm),
        }
        let types = Validator::new_with_features(FEATURES)
            .validate_all(bytes)
            .map_err(|e| ModuleError::Invalid {
                message: e.message().to_owned(),
                offset: e.offset(),
            })?;
        let types = types.as_ref();
        let func_type = |id: wasmparser::types::CoreTypeId| types[id].unwrap_func().clone();

        let mut imports = Vec::new();
        for (module, name, entity) in types.core_imports().into_iter().flatten() {
            let EntityType::Func(id) = entity else {
                return Err(ModuleError::NonFunctionImport {
                    module: module.to_owned(),
                    name: name.to_owned(),
                });
            };
            let ty = func_type(id);
            if !is_call_type(&ty) {
                return Err(ModuleError::WrongImportType {
                    module: module.to_owned(),
                    name: name.to_owned(),
                    found: describe(&ty),
                });
            }
            if !is_ability_word(module) || !is_ability_word(name) {
                return Err(ModuleError::BadAbilityName {
                    module: module.to_owned(),
                    name: name.to_owned(),
                });
            }
            imports.push(Import {
                ability: module.to_owned(),
                operation: name.to_owned(),
            });
        }
        imports.sort();
        imports.dedup();

        let mut memory = None;
        let mut has_alloc = false;
        let mut names = Vec::new();
        for (name, entity) in types.core_exports().into_iter().flatten() {
            match (name, entity) {
                (abi::MEMORY, EntityType::Memory(ty)) => memory = Some(ty),
                (abi::MEMORY, _) => return Err(wrong_type(name, "a memory")),
                (abi::ALLOC, EntityType::Func(id))
                    if is_type(&func_type(id), &[ValType::I32], &[ValType::I32]) =>
                {
                    has_alloc = true
                }
                (abi::ALLOC, _) => return Err(wrong_type(name, "a function (i32) -> i32")),
                (abi::PANIC_MESSAGE, EntityType::Func(id))
                    if is_type(&func_type(id), &[], &[ValType::I64]) => {}
                (abi::PANIC_MESSAGE, _) => return Err(wrong_type(name, "a function () -> i64")),
                // Other `spore_` exports are the ABI's own (`spec/abi.md`), never functions.
                (_, EntityType::Func(id))
                    if is_call_type(&func_type(id)) && !name.starts_with(abi::RESERVED_PREFIX) =>
                {
                    // A function no reference could name is refused rather than dropped
                    // without a word: its author meant it to be called.
                    name.parse::<ExportName>()
                        .map_err(|_| ModuleError::BadFunctionName(name.to_owned()))?;
                    names.push(name);
                }
                _ => {}
            }
        }
        let memory = memory.ok_or(ModuleError::NoMemory)?;
        if !has_alloc {
            return Err(ModuleError::NoAllocator);
        }
        if names.is_empty() {
            return Err(ModuleError::NoFunctions);
        }
        let mut reach = reach::reach(bytes, &names)?;
        let functions = names
            .iter()
            .map(|name| {
                let export = name.parse().expect("checked above");
                (export, reach.remove(*name).unwrap_or_default())
            })
            .collect();

        Ok(Manifest {
            format: FORMAT,
            module: Hash::of(bytes),
            size: bytes.len() as u64,
            functions,
            imports,
            memory: MemoryLimits {
                initial_pages: memory.initial,
                maximum_pages: memory.maximum,
            },
        })
    }

    /// The canonical CBOR encoding; the manifest's identity is the hash of these bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        value::to_canonical(self).expect("a manifest always encodes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestDecodeError> {
        let manifest: Manifest = value::decode_as(bytes)?;
        if manifest.format > FORMAT {
            return Err(ManifestDecodeError::UnknownFormat(manifest.format));
        }
        Ok(manifest)
    }

    pub fn hash(&self) -> Hash {
        Hash::of(&self.to_bytes())
    }

    /// The abilities the module needs, sorted, each once.
    pub fn abilities(&self) -> Vec<&str> {
        let mut abilities: Vec<&str> = self.imports.iter().map(|i| i.ability.as_str()).collect();
        abilities.dedup();
        abilities
    }

    pub fn has_function(&self, export: &ExportName) -> bool {
        self.functions.contains_key(export)
    }

    /// The abilities function `export` can reach (none for a function it does not have).
    pub fn reach(&self, export: &ExportName) -> &[String] {
        self.functions.get(export).map_or(&[], Vec::as_slice)
    }

    /// The names of the module's functions, sorted.
    pub fn function_names(&self) -> impl Iterator<Item = &ExportName> {
        self.functions.keys()
    }

    /// The function a reference means: the named export, or the module's only
    /// function when no export was named.
    pub fn resolve_export(&self, export: Option<&ExportName>) -> Result<ExportName, ExportError> {
        let available = || self.function_names().cloned().collect();
        match export {
            Some(export) if self.has_function(export) => Ok(export.clone()),
            Some(export) => Err(ExportError::NoSuchFunction {
                module: self.module,
                export: export.clone(),
                available: available(),
            }),
            None if self.functions.len() == 1 => {
                Ok(self.function_names().next().expect("one function").clone())
            }
            None => Err(ExportError::Unspecified {
                module: self.module,
                available: available(),
            }),
        }
    }
}

/// Why a reference does not pick out one function of a module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error(
        "module {module} has no function `{export}`; it has: {}",
        list(available)
    )]
    NoSuchFunction {
        module: Hash,
        export: ExportName,
        available: Vec<ExportName>,
    },
    #[error("module {module} has {} functions; say which with `{module}:NAME`, one of: {}", available.len(), list(available))]
    Unspecified {
        module: Hash,
        available: Vec<ExportName>,
    },
}

fn list(names: &[ExportName]) -> String {
    names
        .iter()
        .map(ExportName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_type(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    ty.params() == params && ty.results() == results
}

/// `(i32, i32) -> i64`: the type of every spore function and every ability operation.
fn is_call_type(ty: &FuncType) -> bool {
    is_type(ty, &[ValType::I32, ValType::I32], &[ValType::I64])
}

fn describe(ty: &FuncType) -> String {
    let list = |types: &[ValType]| {
        types
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}

/// Whether `word` may name an ability or an operation (`spec/abilities.md`).
pub fn is_ability_word(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && word.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn wrong_type(name: &str, expected: &'static str) -> ModuleError {
    ModuleError::WrongExportType {
        name: name.to_owned(),
        expected,
    }
}

impl Serialize for ExportName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExportName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(module
        (import "kv" "get" (func (param i32 i32) (result i64)))
        (import "log" "info" (func (param i32 i32) (result i64)))
        (import "kv" "get" (func (param i32 i32) (result i64)))
        (memory (export "memory") 2 10)
        (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
        (func (export "zeta") (param i32 i32) (result i64) i64.const 0)
        (func (export "alpha") (param i32 i32) (result i64) i64.const 0)
        (func (export "helper") (param i32) (result i32) i32.const 0))"#;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn derives_functions_imports_and_memory() {
        let bytes = module(GOOD);
        let manifest = Manifest::derive(&bytes).unwrap();
        assert_eq!(manifest.module, Hash::of(&bytes));
        assert_eq!(manifest.size, bytes.len() as u64);
        let names: Vec<_> = manifest.function_names().map(|f| f.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(manifest.abilities(), ["kv", "log"]);
        assert_eq!(manifest.imports.len(), 2);
        assert_eq!(
            manifest.memory,
            MemoryLimits {
                initial_pages: 2,
                maximum_pages: Some(10)
            }
        );
        let decoded = Manifest::from_bytes(&manifest.to_bytes()).unwrap();
        assert_eq!(decoded, manifest);
        assert_eq!(decoded.hash(), manifest.hash());
    }

    #[test]
    fn refuses_modules_that_break_the_abi() {
        type Expect = fn(&ModuleError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("(module)", |e| matches!(e, ModuleError::NoMemory)),
            (r#"(module (memory (export "memory") 1))"#, |e| {
                matches!(e, ModuleError::NoAllocator)
            }),
            (
                r#"(module (memory (export "memory") 1)
                    (func (export "spore_alloc") (param i32) (result i32) i32.const 0))"#,
                |e| matches!(e, ModuleError::NoFunctions),
            ),
            (
                r#"(module (memory (export "memory") 1)
                    (func (export "spore_alloc") (param i64) (result i32) i32.const 0))"#,
                |e| matches!(e, ModuleError::WrongExportType { .. }),
            ),
            (r#"(module (import "env" "mem" (memory 1)))"#, |e| {
                matches!(e, ModuleError::NonFunctionImport { .. })
            }),
            (
                r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
                |e| matches!(e, ModuleError::WrongImportType { .. }),
            ),
            (
                r#"(module (import "Env" "x" (func (param i32 i32) (result i64))))"#,
                |e| matches!(e, ModuleError::BadAbilityName { .. }),
            ),
        ];
        for (wat, expected) in cases {
            let error = Manifest::derive(&module(wat)).unwrap_err();
            assert!(expected(&error), "{wat}: unexpected {error:?}");
        }
    }

    #[test]
    fn refuses_bytes_that_are_not_wasm() {
        let error = Manifest::derive(b"\0asm\x01\0\0\0\x01").unwrap_err();
        assert!(matches!(error, ModuleError::Invalid { .. }), "{error:?}");
        assert_eq!(Manifest::derive(b"hello, world"), Err(ModuleError::NotWasm));
        assert_eq!(Manifest::derive(b"\0asm"), Err(ModuleError::NotWasm));
        let component = b"\0asm\x0d\0\x01\0";
        assert_eq!(Manifest::derive(component), Err(ModuleError::NotCoreModule));
    }

    #[test]
    fn export_resolution_names_the_choices() {
        let manifest = Manifest::derive(&module(GOOD)).unwrap();
        let alpha: ExportName = "alpha".parse().unwrap();
        assert_eq!(manifest.resolve_export(Some(&alpha)).unwrap(), alpha);
        let missing = manifest
            .resolve_export(Some(&"nope".parse().unwrap()))
            .unwrap_err();
        assert!(
            missing.to_string().ends_with("it has: alpha, zeta"),
            "{missing}"
        );
        assert!(matches!(
            manifest.resolve_export(None),
            Err(ExportError::Unspecified { .. })
        ));
        let single = Manifest {
            functions: [(alpha.clone(), Vec::new())].into(),
            ..manifest
        };
        assert_eq!(single.resolve_export(None).unwrap(), alpha);
    }

    #[test]
    fn each_function_reaches_only_the_abilities_its_code_can_call() {
        let wat = r#"(module
            (import "kv" "get" (func $kv (param i32 i32) (result i64)))
            (import "log" "info" (func $log (param i32 i32) (result i64)))
            (import "http" "request" (func $http (param i32 i32) (result i64)))
            (import "clock" "now" (func $clock (param i32 i32) (result i64)))
            (type $call (func (param i32 i32) (result i64)))
            (table 1 funcref)
            (elem (i32.const 0) $via_table)
            (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "pure") (param i32 i32) (result i64) (call $helper (local.get 0)))
            (func $helper (param i32) (result i64) i64.const 1)
            (func (export "counts") (param i32 i32) (result i64)
              (call $kv (local.get 0) (local.get 1)))
            (func (export "deep") (param i32 i32) (result i64) (call $middle))
            (func $middle (result i64) (return_call $log (i32.const 0) (i32.const 0)))
            (func $via_table (param i32 i32) (result i64) (call $http (local.get 0) (local.get 1)))
            (func (export "indirect") (param i32 i32) (result i64)
              (call_indirect (type $call) (local.get 0) (local.get 1) (i32.const 0)))
            (func $recursive (export "recursive") (param i32 i32) (result i64)
              (call $recursive (local.get 0) (local.get 1))))"#;
        let manifest = Manifest::derive(&module(wat)).unwrap();
        let reach = |name: &str| manifest.reach(&name.parse().unwrap()).to_vec();
        assert_eq!(reach("pure"), Vec::<String>::new());
        assert_eq!(reach("counts"), ["kv"]);
        assert_eq!(reach("deep"), ["log"]);
        assert_eq!(reach("indirect"), ["http"]);
        assert_eq!(reach("recursive"), Vec::<String>::new());
        assert_eq!(manifest.abilities(), ["clock", "http", "kv", "log"]);
        let decoded = Manifest::from_bytes(&manifest.to_bytes()).unwrap();
        assert_eq!(decoded, manifest);

        // The start function runs before every call: what it reaches, every function does.
        let with_start = r#"(module
            (import "clock" "now" (func $clock (param i32 i32) (result i64)))
            (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "pure") (param i32 i32) (result i64) i64.const 0)
            (func $init (drop (call $clock (i32.const 0) (i32.const 0))))
            (start $init))"#;
        let manifest = Manifest::derive(&module(with_start)).unwrap();
        assert_eq!(manifest.reach(&"pure".parse().unwrap()), ["clock"]);
    }

    #[test]
    fn a_function_with_a_name_no_reference_can_name_is_refused_by_name() {
        for name in ["foo-bar", "café", "9lives"] {
            let wat = format!(
                r#"(module (memory (export "memory") 1)
                    (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
                    (func (export "ok") (param i32 i32) (result i64) i64.const 0)
                    (func (export "{name}") (param i32 i32) (result i64) i64.const 0))"#
            );
            let error = Manifest::derive(&module(&wat)).unwrap_err();
            assert_eq!(error, ModuleError::BadFunctionName(name.into()));
            assert!(error.to_string().contains(name), "{error}");
        }
        // Names of other exports and the ABI's own are not spore functions.
        let fine = r#"(module (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "spore_future") (param i32 i32) (result i64) i64.const 0)
            (func (export "helper-fn") (param i32) (result i32) i32.const 0)
            (func (export "ok") (param i32 i32) (result i64) i64.const 0))"#;
        let manifest = Manifest::derive(&module(fine)).unwrap();
        assert_eq!(manifest.functions.len(), 1);
    }

    #[test]
    fn refuses_externref_which_the_engine_cannot_compile() {
        let externref = r#"(module (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "f") (param i32 i32) (result i64)
              (drop (ref.null extern)) i64.const 0))"#;
        let error = Manifest::derive(&module(externref)).unwrap_err();
        assert!(matches!(error, ModuleError::Invalid { .. }), "{error:?}");
        // Tables of functions, which rustc emits, are another matter.
        let funcref = r#"(module (memory (export "memory") 1) (table 2 funcref)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "f") (param i32 i32) (result i64)
              (drop (ref.null func)) i64.const 0))"#;
        Manifest::derive(&module(funcref)).unwrap();
    }

    #[test]
    fn refuses_threads() {
        let shared = r#"(module (memory (export "memory") 1 1 shared))"#;
        assert!(matches!(
            Manifest::derive(&module(shared)),
            Err(ModuleError::Invalid { .. })
        ));
    }
}

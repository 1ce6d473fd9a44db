//! What a module may cost a node before it is compiled: its size, its custom sections,
//! how many functions, exports and imports it has, and the shape of its largest
//! functions (`docs/configuration.md`, `[limits.module]`).
//!
//! Cranelift's time and memory grow faster than a module's size in a few places (one
//! huge function body, thousands of locals, a `br_table` with tens of thousands of
//! targets): a 23 KB module took 66 s to compile. These checks read the module's
//! sections once, without validating it, so that a module over a limit is refused in
//! milliseconds with the limit named, before validation and long before the compiler.

use wasmparser::{Operator, Parser, Payload};

/// The limits a module is checked against. [`ModuleLimits::DEFAULT`] are spore's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleLimits {
    /// The module's size in bytes.
    pub max_bytes: u64,
    /// The bytes of all its custom sections together (names, debug information).
    pub max_custom_bytes: u64,
    /// Functions, imported and defined.
    pub max_functions: u64,
    pub max_exports: u64,
    pub max_imports: u64,
    /// The size in bytes of any one function's body.
    pub max_function_bytes: u64,
    /// The locals any one function declares (its parameters not counted).
    pub max_locals: u64,
    /// The targets of any one `br_table`.
    pub max_br_table_targets: u64,
}

impl ModuleLimits {
    /// Generous for any module rustc builds (the largest test program is 376 KB with
    /// about 1,000 functions), and each far below where compiling costs seconds.
    pub const DEFAULT: ModuleLimits = ModuleLimits {
        max_bytes: 16 << 20,
        max_custom_bytes: 4 << 20,
        max_functions: 100_000,
        max_exports: 1_000,
        max_imports: 1_000,
        max_function_bytes: 1 << 20,
        max_locals: 10_000,
        max_br_table_targets: MAX_BR_TABLE_TARGETS,
    };

    /// The value of one limit.
    pub fn get(&self, limit: ModuleLimit) -> u64 {
        match limit {
            ModuleLimit::Bytes => self.max_bytes,
            ModuleLimit::CustomBytes => self.max_custom_bytes,
            ModuleLimit::Functions => self.max_functions,
            ModuleLimit::Exports => self.max_exports,
            ModuleLimit::Imports => self.max_imports,
            ModuleLimit::FunctionBytes => self.max_function_bytes,
            ModuleLimit::Locals => self.max_locals,
            ModuleLimit::BrTableTargets => self.max_br_table_targets,
        }
    }

    /// Refuses `bytes` if it is over any limit, naming the first one it is over. Bytes
    /// that do not parse pass: validation (`Manifest::derive`) says what is wrong with
    /// them better than this can.
    pub fn check(&self, bytes: &[u8]) -> Result<(), OverLimit> {
        self.at_most(ModuleLimit::Bytes, bytes.len() as u64, None)?;
        let mut custom = 0u64;
        let mut imports = 0u64;
        let mut functions = 0u64;
        let mut next_function = 0u32;
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else {
                return Ok(());
            };
            match payload {
                Payload::CustomSection(section) => {
                    custom += section.range().len() as u64;
                    self.at_most(ModuleLimit::CustomBytes, custom, None)?;
                }
                Payload::ImportSection(section) => {
                    for import in section.into_imports() {
                        if import.is_err() {
                            return Ok(());
                        }
                        imports += 1;
                        self.at_most(ModuleLimit::Imports, imports, None)?;
                    }
                    // Only functions may be imported (`Manifest::derive`); anything else
                    // is refused by validation, so every import counts as a function.
                    functions += imports;
                    next_function = u32::try_from(imports).unwrap_or(u32::MAX);
                    self.at_most(ModuleLimit::Functions, functions, None)?;
                }
                Payload::FunctionSection(section) => {
                    functions += u64::from(section.count());
                    self.at_most(ModuleLimit::Functions, functions, None)?;
                }
                Payload::ExportSection(section) => {
                    self.at_most(ModuleLimit::Exports, section.count().into(), None)?;
                }
                Payload::CodeSectionEntry(body) => {
                    let function = Some(next_function);
                    next_function = next_function.saturating_add(1);
                    let size = body.range().len() as u64;
                    self.at_most(ModuleLimit::FunctionBytes, size, function)?;
                    let Ok(declared) = body.get_locals_reader() else {
                        return Ok(());
                    };
                    let mut locals = 0u64;
                    for group in declared {
                        let Ok((count, _)) = group else {
                            return Ok(());
                        };
                        locals += u64::from(count);
                        self.at_most(ModuleLimit::Locals, locals, function)?;
                    }
                    let Ok(mut operators) = body.get_operators_reader() else {
                        return Ok(());
                    };
                    while !operators.eof() {
                        match operators.read() {
                            Ok(Operator::BrTable { targets }) => self.at_most(
                                ModuleLimit::BrTableTargets,
                                u64::from(targets.len()),
                                function,
                            )?,
                            Ok(_) => {}
                            Err(_) => return Ok(()),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn at_most(
        &self,
        limit: ModuleLimit,
        found: u64,
        function: Option<u32>,
    ) -> Result<(), OverLimit> {
        let max = self.get(limit);
        if found > max {
            return Err(OverLimit {
                limit,
                found,
                max,
                function,
            });
        }
        Ok(())
    }
}

impl Default for ModuleLimits {
    fn default() -> Self {
        ModuleLimits::DEFAULT
    }
}

/// Cranelift's own limit on the targets of one `br_table` (wasmtime's
/// `MAX_BR_TABLE_TARGETS`); a module with more does not compile.
pub const MAX_BR_TABLE_TARGETS: u64 = 65_520;

/// One of the [`ModuleLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModuleLimit {
    Bytes,
    CustomBytes,
    Functions,
    Exports,
    Imports,
    FunctionBytes,
    Locals,
    BrTableTargets,
}

impl ModuleLimit {
    pub const ALL: [ModuleLimit; 8] = [
        ModuleLimit::Bytes,
        ModuleLimit::CustomBytes,
        ModuleLimit::Functions,
        ModuleLimit::Exports,
        ModuleLimit::Imports,
        ModuleLimit::FunctionBytes,
        ModuleLimit::Locals,
        ModuleLimit::BrTableTargets,
    ];

    /// The limit's name, the same everywhere: its key in a node's `[limits.module]`.
    pub fn key(self) -> &'static str {
        match self {
            ModuleLimit::Bytes => "max_bytes",
            ModuleLimit::CustomBytes => "max_custom_bytes",
            ModuleLimit::Functions => "max_functions",
            ModuleLimit::Exports => "max_exports",
            ModuleLimit::Imports => "max_imports",
            ModuleLimit::FunctionBytes => "max_function_bytes",
            ModuleLimit::Locals => "max_locals",
            ModuleLimit::BrTableTargets => "max_br_table_targets",
        }
    }

    /// Whether the limit is a number of bytes (else a count).
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            ModuleLimit::Bytes | ModuleLimit::CustomBytes | ModuleLimit::FunctionBytes
        )
    }

    /// What is measured, as a sentence's subject.
    fn what(self) -> &'static str {
        match self {
            ModuleLimit::Bytes => "the module's size",
            ModuleLimit::CustomBytes => "the size of its custom sections",
            ModuleLimit::Functions => "its number of functions",
            ModuleLimit::Exports => "its number of exports",
            ModuleLimit::Imports => "its number of imports",
            ModuleLimit::FunctionBytes => "the size of the body of function",
            ModuleLimit::Locals => "the number of locals of function",
            ModuleLimit::BrTableTargets => "the number of targets of a br_table in function",
        }
    }
}

/// A module over one of the [`ModuleLimits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what}{function} is {found}{unit}, over the limit of {max}{unit} ({key})",
    what = limit.what(),
    function = function.map(|f| format!(" #{f}")).unwrap_or_default(),
    unit = if limit.is_bytes() { " bytes" } else { "" },
    key = limit.key(),
)]
pub struct OverLimit {
    pub limit: ModuleLimit,
    /// What the module has (for counts, at least this many: counting stops at the limit).
    pub found: u64,
    pub max: u64,
    /// The function it is in (its index among all functions, imported ones first), for
    /// limits on one function.
    pub function: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ModuleLimits {
        ModuleLimits {
            max_bytes: 4096,
            max_custom_bytes: 100,
            max_functions: 4,
            max_exports: 4,
            max_imports: 2,
            max_function_bytes: 200,
            max_locals: 20,
            max_br_table_targets: 10,
        }
    }

    fn module(body: &str) -> Vec<u8> {
        wat::parse_str(format!(r#"(module {body} (memory (export "memory") 1))"#)).unwrap()
    }

    fn over(bytes: &[u8]) -> Option<(ModuleLimit, u64, Option<u32>)> {
        limits()
            .check(bytes)
            .err()
            .map(|e| (e.limit, e.found, e.function))
    }

    #[test]
    fn a_module_within_every_limit_passes() {
        let bytes = module(
            r#"(import "kv" "get" (func (param i32 i32) (result i64)))
               (func (export "f") (param i32 i32) (result i64) (local i32 i32)
                 (block (br_table 0 0 0 (local.get 0))) i64.const 0)"#,
        );
        assert_eq!(over(&bytes), None);
    }

    #[test]
    fn each_limit_is_named_with_what_the_module_has() {
        let many = |n: usize, item: &str| item.repeat(n);
        let cases: Vec<(Vec<u8>, ModuleLimit, u64, Option<u32>)> = vec![
            (vec![0; 5000], ModuleLimit::Bytes, 5000, None),
            (
                {
                    let mut bytes = module("");
                    // A custom section named "x" carrying 120 bytes.
                    bytes.extend([0, 122, 1, b'x']);
                    bytes.extend([0; 120]);
                    bytes
                },
                ModuleLimit::CustomBytes,
                122,
                None,
            ),
            (module(&many(5, "(func)")), ModuleLimit::Functions, 5, None),
            (
                module(&many(
                    3,
                    r#"(import "kv" "get" (func (param i32 i32) (result i64)))"#,
                )),
                ModuleLimit::Imports,
                3,
                None,
            ),
            (
                module(
                    r#"(func (export "a")) (export "b" (func 0)) (export "c" (func 0)) (export "d" (func 0))"#,
                ),
                ModuleLimit::Exports,
                5,
                None,
            ),
            (
                module(&format!(
                    r#"(import "kv" "get" (func (param i32 i32) (result i64))) (func) (func {})"#,
                    many(300, "nop ")
                )),
                ModuleLimit::FunctionBytes,
                302,
                Some(2),
            ),
            (
                module(
                    "(func (local i32 i64) (local f32) (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32))",
                ),
                ModuleLimit::Locals,
                21,
                Some(0),
            ),
            (
                module(&format!(
                    "(func (block (br_table {} (i32.const 0))))",
                    many(12, "0 ")
                )),
                ModuleLimit::BrTableTargets,
                11,
                Some(0),
            ),
        ];
        for (bytes, limit, found, function) in cases {
            assert_eq!(over(&bytes), Some((limit, found, function)), "{limit:?}");
        }
    }

    #[test]
    fn the_message_names_the_limit_its_value_and_the_function() {
        let bytes = module(&format!("(func) (func {})", "nop ".repeat(300)));
        let error = limits().check(&bytes).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the size of the body of function #1 is 302 bytes, over the limit of 200 bytes (max_function_bytes)"
        );
    }

    #[test]
    fn bytes_that_do_not_parse_are_left_to_validation() {
        assert_eq!(over(b"\0asm\x01\0\0\0\x01\xff"), None);
        assert_eq!(over(b"hello"), None);
    }
}

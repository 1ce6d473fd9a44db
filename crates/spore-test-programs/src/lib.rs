//! The modules of `codebase/`, built for wasm32 when this crate is built, for the
//! host's tests and benchmarks.
//!
//! Each module has a constant with the absolute path of its `.wasm` file (`ARITH`,
//! `WORDS`, ...); [`ALL`] lists them all. The files live in `codebase/target`, so they
//! must not be deleted while tests run.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));

/// The path of the module called `name` (the crate name: `"arith"`), if there is one.
pub fn path(name: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|(module, _)| *module == name)
        .map(|(_, path)| *path)
}

/// The bytes of the module called `name`.
///
/// # Panics
///
/// If there is no such module or its file cannot be read: this crate is for tests.
pub fn bytes(name: &str) -> Vec<u8> {
    let Some(path) = path(name) else {
        let known: Vec<_> = ALL.iter().map(|(module, _)| *module).collect();
        panic!("no test program called `{name}`; the modules are {known:?}");
    };
    std::fs::read(path).unwrap_or_else(|error| {
        panic!(
            "cannot read test program `{name}` at {path} (was codebase/target cleaned?): {error}"
        )
    })
}

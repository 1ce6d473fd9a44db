//! The `call` ability: calling another spore function.
//!
//! The called function runs with the caller's remaining deadline and one more level of
//! depth; past the node's depth limit the call fails with kind `depth`. Its returned
//! error arrives as kind `guest_error`, with the error in [`AbilityError::value`]; a trap
//! or a limit as kind `trap`.
//!
//! Functions are named by reference: a module hash, `hash:export` or a name. Pass the
//! references a function needs as arguments rather than writing hashes into its code:
//! a module's hash depends on its code.
//!
//! ```no_run
//! use spore_guest::ability::kind;
//!
//! # fn main() -> Result<(), spore_guest::ability::AbilityError> {
//! # let add = "<hash>:add";
//! let sum: i64 = spore_guest::call(add, (2, 3))?;
//!
//! match spore_guest::call::invoke::<i64>(add, (i64::MAX, 1)) {
//!     Err(error) if error.kind() == kind::GUEST_ERROR => {
//!         let reason = error.value(); // what `add` returned as its error
//!     }
//!     other => { other?; }
//! }
//! # Ok(())
//! # }
//! ```

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ability::{AbilityError, kind};

spore_guest_macros::ability!(ops = "call" { invoke });

#[derive(Serialize)]
struct Invoke<'a> {
    function: &'a str,
    args: &'a Value,
}

/// Calls `function` with `args` and decodes its result into `R`.
///
/// `args` must encode as a CBOR array: a tuple (`(x,)` for one argument, note the
/// comma), an array or a `Vec`; `()` means no arguments. Anything else fails with
/// `bad_request` before the call. A single argument that is itself a `Vec` must still
/// be wrapped: `(items,)`.
pub fn invoke<R: DeserializeOwned>(
    function: &str,
    args: impl Serialize,
) -> Result<R, AbilityError> {
    let args = match Value::serialized(&args) {
        Ok(args @ Value::Array(_)) => args,
        Ok(Value::Null) => Value::Array(Vec::new()),
        Ok(_) => {
            return Err(AbilityError::new(
                kind::BAD_REQUEST,
                format!(
                    "the arguments of a call to `{function}` must be an array: pass a tuple \
                     such as `(x,)` or a Vec"
                ),
            ));
        }
        Err(error) => {
            return Err(AbilityError::new(
                kind::BAD_REQUEST,
                format!("cannot encode the arguments of a call to `{function}`: {error:?}"),
            ));
        }
    };
    ops::invoke(&Invoke {
        function,
        args: &args,
    })
}

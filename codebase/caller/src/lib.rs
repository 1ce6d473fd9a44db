//! Functions that call other functions through the `call` ability. The functions they
//! call are passed in as references (`<hash>:add`), never written into the code: a
//! module's hash depends on its code, so it cannot name itself.

use spore_guest::ability::{AbilityError, kind};
use spore_guest::{Value, call, function};

/// `function(function(x, x), x)`: with `<arith hash>:add`, `3 * x`.
#[function]
fn call_twice(function: String, x: i64) -> Result<i64, String> {
    let first: i64 = call(&function, (x, x)).map_err(|error| failed(&function, error))?;
    call(&function, (first, x)).map_err(|error| failed(&function, error))
}

/// Calls `function` (this very export, passed in by reference) with `(function, n + 1)`
/// until the node's depth limit stops it, and returns the deepest `n` reached: the
/// innermost call returns its `n` when its own call fails with kind `depth`, and every
/// caller passes that result up.
#[function]
fn depth(function: String, n: u64) -> Result<u64, String> {
    match call::<u64>(&function, (&function, n + 1)) {
        Ok(deepest) => Ok(deepest),
        Err(error) if error.kind() == kind::DEPTH => Ok(n),
        Err(error) => Err(failed(&function, error)),
    }
}

/// `x * x`, wrapping on overflow. Needs no ability, but lives in a module that imports
/// `call`, so a node must still bind `call` to run it.
#[function]
fn pure_square(x: i64) -> i64 {
    x.wrapping_mul(x)
}

/// Describes a failed call, with the called function's own error when it returned one.
fn failed(function: &str, error: AbilityError) -> String {
    match error.value() {
        Some(Value::Text(reason)) if error.kind() == kind::GUEST_ERROR => {
            format!("{function} returned an error: {reason}")
        }
        Some(value) if error.kind() == kind::GUEST_ERROR => {
            format!("{function} returned an error: {value:?}")
        }
        _ => format!("calling {function}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use spore_guest::Value;
    use spore_guest::testing::with_abilities;

    use super::*;

    /// Serves `call.invoke` like a node where `h:add` adds, `h:depth` is past the depth
    /// limit when `limit` is 0 and else returns `limit`, and anything else fails.
    fn fake_node(limit: u64) -> impl FnMut(&str, &str, Value) -> Result<Value, AbilityError> {
        move |_, _, request| {
            let entries = request.into_map().unwrap();
            let args = entries[1].1.as_array().unwrap();
            match entries[0].1.as_text().unwrap() {
                "h:add" => {
                    let sum: i128 = args
                        .iter()
                        .map(|a| i128::from(a.as_integer().unwrap()))
                        .sum();
                    Ok(Value::from(i64::try_from(sum).unwrap()))
                }
                "h:depth" if limit == 0 => Err(AbilityError::new(kind::DEPTH, "too deep")),
                "h:depth" => Ok(Value::from(limit)),
                "h:trap" => Err(AbilityError::new(kind::TRAP, "unreachable")),
                _ => Err(AbilityError::new(kind::GUEST_ERROR, "failed").with_value("no".into())),
            }
        }
    }

    #[test]
    fn call_twice_applies_the_function_twice() {
        with_abilities(fake_node(8), || {
            assert_eq!(call_twice("h:add".into(), 7), Ok(21));
            assert_eq!(
                call_twice("h:nope".into(), 7),
                Err("h:nope returned an error: no".into())
            );
        });
    }

    #[test]
    fn depth_returns_n_at_the_limit_and_passes_results_up() {
        with_abilities(fake_node(0), || {
            assert_eq!(depth("h:depth".into(), 5), Ok(5))
        });
        with_abilities(fake_node(8), || {
            assert_eq!(depth("h:depth".into(), 0), Ok(8))
        });
        with_abilities(fake_node(8), || {
            assert_eq!(
                depth("h:trap".into(), 0),
                Err("calling h:trap: trap: unreachable".into())
            );
        });
    }

    #[test]
    fn squares() {
        assert_eq!(pure_square(-12), 144);
        assert_eq!(pure_square(i64::MAX), 1);
    }
}

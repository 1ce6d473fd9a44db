//! Checked integer arithmetic: overflow and division by zero are errors, never wrong
//! answers.

use spore_guest::function;

#[function]
fn add(a: i64, b: i64) -> Result<i64, String> {
    a.checked_add(b)
        .ok_or_else(|| format!("{a} + {b} overflows a 64-bit integer"))
}

#[function]
fn sub(a: i64, b: i64) -> Result<i64, String> {
    a.checked_sub(b)
        .ok_or_else(|| format!("{a} - {b} overflows a 64-bit integer"))
}

#[function]
fn mul(a: i64, b: i64) -> Result<i64, String> {
    a.checked_mul(b)
        .ok_or_else(|| format!("{a} * {b} overflows a 64-bit integer"))
}

/// Integer division, rounding toward zero.
#[function]
fn div(a: i64, b: i64) -> Result<i64, String> {
    if b == 0 {
        return Err(format!("{a} / 0: division by zero"));
    }
    // The only other failure is i64::MIN / -1.
    a.checked_div(b)
        .ok_or_else(|| format!("{a} / {b} overflows a 64-bit integer"))
}

#[function]
fn sum(values: Vec<i64>) -> Result<i64, String> {
    values
        .iter()
        .try_fold(0i64, |total, &value| total.checked_add(value))
        .ok_or_else(|| "the sum overflows a 64-bit integer".to_owned())
}

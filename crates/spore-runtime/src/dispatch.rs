//! Ability imports: the host functions a module's imports are linked to, which hand each
//! request to the provider its node bound (`spec/abi.md`, "Ability imports").

use std::sync::Arc;

use ciborium::Value;
use spore_core::{Manifest, abi, value};
use wasmtime::{Caller, Linker};

use crate::ability::AbilityError;
use crate::invoke::CallState;
use spore_core::ErrorKind;

/// Links every import of `manifest` to a host function that dispatches to the
/// provider in the call's slot for that ability.
pub(crate) fn define_imports(
    linker: &mut Linker<CallState>,
    manifest: &Manifest,
) -> wasmtime::Result<()> {
    let abilities = manifest.abilities();
    for import in &manifest.imports {
        let slot = abilities
            .iter()
            .position(|ability| *ability == import.ability)
            .expect("every import's ability is among the module's abilities");
        let ability: Arc<str> = import.ability.as_str().into();
        let operation: Arc<str> = import.operation.as_str().into();
        linker.func_wrap(
            &import.ability,
            &import.operation,
            move |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
                perform(&mut caller, slot, &ability, &operation, ptr, len)
            },
        )?;
    }
    Ok(())
}

fn perform(
    caller: &mut Caller<'_, CallState>,
    slot: usize,
    ability: &str,
    operation: &str,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i64> {
    let state = caller.data();
    let (Some(memory), Some(alloc)) = (state.memory, state.alloc.clone()) else {
        wasmtime::bail!("`{ability}.{operation}` was called before the instance was ready");
    };
    let provider = state.providers[slot].clone();
    let cx = state.context.clone();

    let start = ptr as u32 as usize;
    let request = memory
        .data(&*caller)
        .get(start..start.saturating_add(len as u32 as usize))
        .ok_or_else(|| {
            wasmtime::format_err!("`{ability}.{operation}` request buffer lies outside memory")
        })?;
    let outcome = match value::decode(request) {
        Ok(request) => {
            // Only `call` can be pure, and its provider decides (by what it called).
            if ability != "call" {
                cx.mark_effectful();
            }
            let _span =
                tracing::debug_span!("ability", ability, operation, invocation = cx.invocation)
                    .entered();
            provider.call(&cx, operation, request)
        }
        Err(error) => Err(AbilityError::bad_request(format!(
            "the request is not one CBOR value: {error}"
        ))),
    };
    let response = encode_response(outcome);
    let out = alloc.call(&mut *caller, response.len() as i32)?;
    memory
        .write(&mut *caller, out as u32 as usize, &response)
        .map_err(|_| wasmtime::format_err!("`spore_alloc` returned a buffer outside memory"))?;
    Ok(abi::pack(out as u32, response.len() as u32))
}

/// Status byte, then the canonical CBOR of the result or the error map.
fn encode_response(outcome: Result<Value, AbilityError>) -> Vec<u8> {
    let encoded = match &outcome {
        Ok(result) => value::encode_canonical(result).map(|bytes| (abi::Status::Ok, bytes)),
        Err(error) => {
            value::encode_canonical(&error.to_value()).map(|bytes| (abi::Status::Err, bytes))
        }
    };
    let (status, bytes) = encoded.unwrap_or_else(|e| {
        let error = AbilityError::new(
            ErrorKind::Failed,
            format!("the provider's response does not encode: {e}"),
        );
        let bytes =
            value::encode_canonical(&error.to_value()).expect("an error map always encodes");
        (abi::Status::Err, bytes)
    });
    let mut response = Vec::with_capacity(1 + bytes.len());
    response.push(status as u8);
    response.extend_from_slice(&bytes);
    response
}

//! The `call` ability: one function invoking another by reference, placed like any
//! call, within the caller's own deadline, one level deeper, stopped with its caller.

use ciborium::Value;
use spore_core::{Args, ErrorKind, FunctionRef};
use spore_runtime::{
    AbilityContext, AbilityError, CallEnv, InvokeError, Provider, field, text_field,
};

use crate::NodeError;
use crate::handle::NodeHandle;

pub(crate) struct CallProvider {
    pub(crate) node: NodeHandle,
    pub(crate) max_depth: u32,
}

impl Provider for CallProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        _operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let node = self.node.get()?;
        let reference = text_field(&request, "function")?;
        let args = match field(&request, "args") {
            Some(Value::Array(args)) => Args::encode(args)
                .map_err(|e| AbilityError::bad_request(format!("call.invoke `args`: {e}")))?,
            None | Some(Value::Null) => Args::encode(&[]).expect("an empty array encodes"),
            Some(_) => return Err(AbilityError::bad_request("call.invoke `args` is an array")),
        };
        if cx.depth + 1 > self.max_depth {
            cx.mark_effectful();
            return Err(AbilityError::new(
                ErrorKind::Depth,
                format!(
                    "calling `{reference}` would exceed the call depth limit of {} (limits.call_depth)",
                    self.max_depth
                ),
            ));
        }
        // A call through a name or a prefix depends on what that resolves to today, so
        // only a call pinned to a full hash can keep the caller pure.
        let pinned = reference
            .parse::<FunctionRef>()
            .is_ok_and(|r| r.export.is_some());
        let function = node.function_ref(reference).map_err(|e| {
            cx.mark_effectful();
            AbilityError::new(e.kind(), format!("cannot call `{reference}`: {e}"))
        })?;
        // The callee inherits what bounds the caller: its deadline, its trace, and its
        // cancellation.
        let request = spore_core::CallRequest {
            deadline: cx.deadline,
            trace: cx.trace,
            ..node.request(function, args)
        };
        // The callee may use what the caller may, never more: a call a peer forwarded
        // cannot reach a binding it may not use by calling a function that uses it.
        let env = CallEnv {
            bindings: cx
                .bindings
                .clone()
                .unwrap_or_else(|| node.bindings().clone()),
            depth: cx.depth + 1,
            cancel: cx.cancel.clone(),
            log_budget: cx.log_budget.clone(),
        };
        let called = node.call_in(request, &env);
        cx.record_nested(called.path);
        match called.result {
            Ok(outcome) => {
                if outcome.effectful || !pinned {
                    cx.mark_effectful();
                }
                Ok(outcome.value)
            }
            Err(NodeError::Invoke(InvokeError::Guest { function, error })) => {
                if !pinned {
                    cx.mark_effectful();
                }
                Err(AbilityError {
                    kind: ErrorKind::GuestError,
                    message: format!("{function} returned an error"),
                    value: Some(error),
                })
            }
            Err(other) => {
                cx.mark_effectful();
                Err(invoke_error(other))
            }
        }
    }

    fn describe(&self) -> String {
        format!("functions on this node, depth limit {}", self.max_depth)
    }
}

/// How a failed call looks to the function that made it: its kind as it is.
pub(crate) fn invoke_error(error: NodeError) -> AbilityError {
    AbilityError::new(error.kind(), error.to_string())
}

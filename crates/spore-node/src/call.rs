//! The `call` ability: one function invoking another by reference, on this node, with
//! the caller's remaining deadline and one more level of depth.

use ciborium::Value;
use spore_core::FunctionRef;
use spore_runtime::{
    AbilityContext, AbilityError, CallEnv, ErrorKind, InvokeError, Limits, Provider, field,
    text_field,
};

use crate::handle::NodeHandle;
use crate::{InvokeOptions, NodeError};

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
            Some(Value::Array(args)) => args.clone(),
            None | Some(Value::Null) => Vec::new(),
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
        let mut path = Vec::new();
        let function = node
            .resolve_anywhere(reference, cx.deadline, &mut path)
            .map_err(|e| {
                cx.mark_effectful();
                resolve_error(reference, e)
            })?;
        let options = InvokeOptions {
            limits: Limits {
                deadline: cx.remaining(),
                memory_bytes: node.default_limits().memory_bytes,
            },
            memo: true,
        };
        let env = CallEnv {
            bindings: node.bindings().clone(),
            depth: cx.depth + 1,
        };
        let placement = crate::Placement::default();
        let result = node.invoke_placed(&function, &args, &options, &placement, &env, &mut path);
        crate::placement::record_nested(path);
        match result {
            Ok(outcome) => {
                if outcome.effectful || !pinned {
                    cx.mark_effectful();
                }
                Ok(outcome.value)
            }
            Err(NodeError::Invoke(InvokeError::Guest { error, .. })) => {
                if !pinned {
                    cx.mark_effectful();
                }
                let message = format!("{function} returned an error");
                Err(AbilityError {
                    kind: ErrorKind::GuestError,
                    message,
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

fn resolve_error(reference: &str, error: NodeError) -> AbilityError {
    AbilityError::new(error.kind(), format!("cannot call `{reference}`: {error}"))
}

/// How a failed invocation looks to the function that made the call: its kind as it is.
pub(crate) fn invoke_error(error: NodeError) -> AbilityError {
    AbilityError::new(error.kind(), error.to_string())
}

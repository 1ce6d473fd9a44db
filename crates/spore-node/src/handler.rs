//! Wasm handlers: an ability whose operations are the exports of a spore function module,
//! which in turn uses abilities of its own (`spec/abilities.md`, "Custom abilities").

use std::sync::{Arc, OnceLock};

use ciborium::Value;
use spore_core::ExportName;
use spore_runtime::{
    AbilityContext, AbilityError, Bindings, CallEnv, ErrorKind, InvokeError, Provider, field,
};

use crate::NodeError;
use crate::handle::NodeHandle;

pub(crate) struct HandlerProvider {
    pub(crate) node: NodeHandle,
    pub(crate) ability: String,
    /// The handler module, as configured (a name or a hash), resolved at each call so
    /// that re-pointing a name takes effect without a restart.
    pub(crate) function: String,
    /// Bindings for the handler's own imports that replace the node's (`uses`).
    pub(crate) uses: Vec<(String, Arc<dyn Provider>)>,
    /// The node's bindings with `uses` laid over them, made on first use.
    env: OnceLock<Arc<Bindings>>,
}

impl HandlerProvider {
    pub(crate) fn new(
        node: NodeHandle,
        ability: String,
        function: String,
        uses: Vec<(String, Arc<dyn Provider>)>,
    ) -> Self {
        HandlerProvider {
            node,
            ability,
            function,
            uses,
            env: OnceLock::new(),
        }
    }

    fn env(&self, node_bindings: &Bindings) -> Arc<Bindings> {
        self.env
            .get_or_init(|| {
                let mut bindings = node_bindings.clone();
                for (ability, provider) in &self.uses {
                    bindings.bind(ability.clone(), provider.clone());
                }
                Arc::new(bindings)
            })
            .clone()
    }
}

impl Provider for HandlerProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let node = self.node.get()?;
        let unavailable = |message: String| AbilityError::new(ErrorKind::Unavailable, message);
        let (module, _) = node.locate(&self.function).map_err(|e| {
            unavailable(format!(
                "the `{}` handler `{}` cannot be found: {e}",
                self.ability, self.function
            ))
        })?;
        let args = spore_core::Args::encode(std::slice::from_ref(&request))
            .map_err(|e| AbilityError::bad_request(format!("the request does not encode: {e}")))?;
        let export: ExportName = operation
            .parse()
            .map_err(|_| unavailable(format!("`{operation}` cannot be a handler export")))?;
        let function = spore_core::FunctionRef::new(module, export);
        let env = self.env(node.bindings());
        if let Some(own) = env.get(&self.ability)
            && std::ptr::addr_eq(Arc::as_ptr(own), self as *const Self)
            && node
                .manifest(&module)
                .is_ok_and(|m| m.abilities().contains(&self.ability.as_str()))
        {
            return Err(AbilityError::new(
                ErrorKind::Failed,
                format!(
                    "the `{}` handler `{}` uses `{0}` itself, which would call the handler again; bind its own `{0}` with [abilities.{0}.uses.{0}]",
                    self.ability, self.function
                ),
            ));
        }
        // The handler runs within the caller's deadline and is stopped with it; what it
        // returns is the operation's response, never a memoized one.
        let request = spore_core::CallRequest {
            deadline: cx.deadline,
            trace: cx.trace,
            memo: false,
            placement: spore_core::Placement::Local,
            ..node.request(function, args)
        };
        let env = CallEnv {
            bindings: env,
            depth: cx.depth + 1,
            cancel: cx.cancel.clone(),
            log_budget: cx.log_budget.clone(),
        };
        let called = node.call_in(request, &env);
        cx.record_nested(called.path);
        match called.result {
            Ok(outcome) => Ok(outcome.value),
            // A handler reports an operation's failure by returning an error value; when
            // it is shaped like an ability error (a text `kind` and a text `message`), its
            // kind and message pass through, else it is `failed` (`spec/abilities.md`).
            Err(NodeError::Invoke(InvokeError::Guest { error, .. })) => {
                let text = |key| field(&error, key).and_then(Value::as_text);
                let (kind, message) = match (text("kind"), text("message")) {
                    (Some(kind), Some(message)) => (ErrorKind::from_name(kind), message.to_owned()),
                    _ => (
                        ErrorKind::Failed,
                        spore_core::value::to_json(&error).to_string(),
                    ),
                };
                Err(AbilityError {
                    kind,
                    message,
                    value: Some(error),
                })
            }
            Err(other) => Err(crate::call_ability::invoke_error(other)),
        }
    }

    fn describe(&self) -> String {
        let uses: Vec<&str> = self.uses.iter().map(|(a, _)| a.as_str()).collect();
        if uses.is_empty() {
            format!("Wasm handler `{}`", self.function)
        } else {
            format!(
                "Wasm handler `{}` (its own {} bound separately)",
                self.function,
                uses.join(", ")
            )
        }
    }
}

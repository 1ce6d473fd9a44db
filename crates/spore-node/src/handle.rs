//! A weak way back to the node, for the providers that invoke functions (`call`,
//! Wasm handlers). The node owns its bindings, so the providers must not own the node.

use std::sync::{Arc, OnceLock, Weak};

use spore_runtime::{AbilityError, ErrorKind};

use crate::Node;

#[derive(Clone, Default)]
pub(crate) struct NodeHandle(Arc<OnceLock<Weak<Node>>>);

impl NodeHandle {
    pub(crate) fn set(&self, node: &Arc<Node>) {
        let _ = self.0.set(Arc::downgrade(node));
    }

    pub(crate) fn get(&self) -> Result<Arc<Node>, AbilityError> {
        self.0
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| AbilityError::new(ErrorKind::Unavailable, "the node is shutting down"))
    }
}

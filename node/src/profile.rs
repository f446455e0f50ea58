//! Changing this person's display name, location and bio after `init` (`profile edit`).
//!
//! The profile lives twice: in the home (`profile.json`, which `whoami` shows and which a
//! commons joined later gets) and as a signed profile document in every commons held. An
//! edit checks every value first, writes the home's copy, then signs one change in each
//! commons' profile document, so a failure halfway is finished by running it again.

use crate::communities::CommunityError;
use crate::home::{check_name, write_profile};
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::schema::{Edit, ValueError, MAX_BIO_BYTES, MAX_TITLE_BYTES};
use hedgerow_protocol::{CommonsId, DocGenesis};

impl Replicas {
    /// Sets the given parts of this device's profile (an empty location or bio clears it);
    /// returns the commons whose profile document took a change.
    pub fn edit_profile(
        &mut self,
        name: Option<String>,
        location: Option<String>,
        bio: Option<String>,
    ) -> Result<Vec<CommonsId>, NodeError> {
        let mut profile = self.profile.clone();
        let mut edits = Vec::new();
        if let Some(name) = name {
            check_name(&name)?;
            profile.name = name.trim().to_string();
            edits.push(Edit::Set {
                field: "name".into(),
                value: profile.name.clone(),
            });
        }
        if let Some(location) = location {
            profile.location = location.trim().to_string();
            check_len("location", &profile.location, MAX_TITLE_BYTES)?;
            edits.push(if profile.location.is_empty() {
                Edit::Unset {
                    field: "location".into(),
                }
            } else {
                Edit::Set {
                    field: "location".into(),
                    value: profile.location.clone(),
                }
            });
        }
        if let Some(bio) = bio {
            check_len("bio", &bio, MAX_BIO_BYTES)?;
            profile.bio = bio;
            edits.push(Edit::ReplaceText {
                field: "bio".into(),
                text: profile.bio.clone(),
            });
        }
        if edits.is_empty() {
            return Err(NodeError::Invalid(
                "nothing to change: give --set name=..., --set location=... or --set bio=..."
                    .into(),
            ));
        }
        write_profile(&self.home_root, &profile)?;
        self.profile = profile;
        let mut changed = Vec::new();
        for genesis in self.commons_list()? {
            let commons = genesis.body.id();
            let id = DocGenesis::profile(commons, self.author()).id();
            if self.store().doc_genesis(&id)?.is_none() {
                continue;
            }
            match self.edit_doc(&id, &edits) {
                Ok(Some(_)) => changed.push(commons),
                Ok(None) => {}
                // A stewarded commons that no longer takes this device's writes keeps the old
                // profile, as it keeps everything else the device wrote there.
                Err(NodeError::Community(CommunityError::NotAllowed { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }
}

/// Refuses a profile value over its limit before anything is written.
fn check_len(field: &str, value: &str, max: usize) -> Result<(), NodeError> {
    if value.len() > max {
        return Err(
            hedgerow_protocol::schema::EditError::from(ValueError::TooLong {
                field: field.to_string(),
                bytes: value.len(),
                max,
            })
            .into(),
        );
    }
    Ok(())
}

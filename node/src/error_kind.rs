//! The kind of a failure the user can act on, named by a stable string.
//!
//! Library errors say what went wrong; only the CLI knows its commands and flags, so it adds
//! what to do, by kind. A command answered by a running `serve` gets its error as a control
//! reply line, not as a Rust value, so the kind travels with the message
//! (`{"error": "...", "kind": "no-such-document", "what": "design"}`) and the CLI adds the
//! same instruction whichever way the command ran. [`ErrorKind::of`] finds the kind of any
//! error of this crate (or of the protocol crate) in an error's chain.

use crate::bundle::BundleError;
use crate::control::{ControlError, NodeRefusal};
use crate::home::HomeError;
use crate::replicas::NodeError;
use crate::serve::ServeError;
use crate::store::StoreError;
use hedgerow_protocol::licence::LicenceError;
use serde::{Deserialize, Serialize};

/// A failure the CLI has an instruction for; serialised as `{"kind": "kebab-case", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No commons matches an id or prefix.
    NoSuchCommons,
    /// No document matches an id or prefix.
    NoSuchDocument {
        /// design, event, note, or document when any kind would do.
        what: String,
    },
    /// Several commons are held and the command did not say which.
    ChooseCommons,
    /// No commons is held yet.
    NoCommons,
    /// A design has no release of that version.
    NoSuchRelease {
        /// The design's id.
        design: String,
    },
    /// A note was added without the design or event it belongs to.
    NoteWithoutTarget,
    /// `bundle import --commons` names a commons the bundle does not carry.
    NotInBundle,
    /// A share-alike design was forked to an incompatible licence.
    RelicenseRefused,
    /// Another process holds the store.
    StoreLocked,
    /// The store no longer reads back as written.
    StoreUnreadable,
    /// The store lost signed changes it had saved.
    StoreDamaged,
    /// A stored value does not decode.
    StoreCorrupt,
    /// The store's manifest cannot be read.
    BadManifest,
    /// There is no home at the path.
    NoHome,
    /// The directory is not a home.
    NotAHome,
    /// `init` on a directory holding other files.
    HomeNotEmpty,
    /// A second `serve` for a home.
    AlreadyServing,
    /// `serve` gave up waiting for another command to release the store.
    StoreBusy,
    /// The running node went away with the command in flight.
    Interrupted,
    /// Roles, invitations or moderation asked of an open commons.
    NotStewarded,
    /// This node lacks the commons' charter (an invitation accepted offline, or another
    /// issuer's invitation).
    CharterNotReceived,
    /// No member or author of the commons matches a key or prefix.
    NoSuchPerson,
    /// Removing or demoting the commons' last steward.
    LastSteward,
    /// Certifying a device on a device that does not hold the person key.
    NotCertifier,
    /// No device of the person has that name.
    NoSuchDevice,
    /// The home's person key file is damaged.
    PersonKeyDamaged,
    /// `block`/`unblock` name no author this node knows (or several).
    NoSuchAuthor,
    /// `unblock`/`unhide` of an author or document not on this node's lists.
    NotOnLocalList,
    /// `purge` of a document not hidden first.
    PurgeNotHidden {
        /// The document's id.
        id: String,
    },
    /// `show` of a document hidden on this node.
    HiddenLocally {
        /// The document's id.
        id: String,
    },
    /// `retract` of a document another key created.
    NotCreator {
        /// The document's id.
        id: String,
    },
    /// `sync` never reached its peer (refused, another peer there, no answer in time).
    PeerUnreachable,
    /// `serve` was asked to listen on a port another process holds.
    PortInUse,
    /// A write would replace a file that is not of the kind being written.
    WouldOverwrite,
    /// The command line itself was wrong (an unknown flag, a missing value).
    Usage,
    /// A failure with no kind of its own: the message says what happened.
    Other,
}

impl ErrorKind {
    /// The stable name, as on the control channel.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoSuchCommons => "no-such-commons",
            Self::NoSuchDocument { .. } => "no-such-document",
            Self::ChooseCommons => "choose-commons",
            Self::NoCommons => "no-commons",
            Self::NoSuchRelease { .. } => "no-such-release",
            Self::NoteWithoutTarget => "note-without-target",
            Self::NotInBundle => "not-in-bundle",
            Self::RelicenseRefused => "relicense-refused",
            Self::StoreLocked => "store-locked",
            Self::StoreUnreadable => "store-unreadable",
            Self::StoreDamaged => "store-damaged",
            Self::StoreCorrupt => "store-corrupt",
            Self::BadManifest => "bad-manifest",
            Self::NoHome => "no-home",
            Self::NotAHome => "not-a-home",
            Self::HomeNotEmpty => "home-not-empty",
            Self::AlreadyServing => "already-serving",
            Self::StoreBusy => "store-busy",
            Self::Interrupted => "interrupted",
            Self::NotStewarded => "not-stewarded",
            Self::CharterNotReceived => "charter-not-received",
            Self::NoSuchPerson => "no-such-person",
            Self::LastSteward => "last-steward",
            Self::NotCertifier => "not-certifier",
            Self::NoSuchDevice => "no-such-device",
            Self::PersonKeyDamaged => "person-key-damaged",
            Self::NoSuchAuthor => "no-such-author",
            Self::NotOnLocalList => "not-on-local-list",
            Self::PurgeNotHidden { .. } => "purge-not-hidden",
            Self::HiddenLocally { .. } => "hidden-locally",
            Self::NotCreator { .. } => "not-creator",
            Self::PeerUnreachable => "peer-unreachable",
            Self::PortInUse => "port-in-use",
            Self::WouldOverwrite => "would-overwrite",
            Self::Usage => "usage",
            Self::Other => "other",
        }
    }

    /// The kind of the first error in `error`'s chain that has one.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(kind) = Self::of_one(e) {
                return Some(kind);
            }
            cause = e.source();
        }
        None
    }

    /// The kind of `error` itself, not of its sources.
    fn of_one(error: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
        if let Some(e) = error.downcast_ref::<NodeError>() {
            Self::of_node(e)
        } else if let Some(e) = error.downcast_ref::<StoreError>() {
            Self::of_store(e)
        } else if let Some(e) = error.downcast_ref::<HomeError>() {
            Self::of_home(e)
        } else if let Some(e) = error.downcast_ref::<BundleError>() {
            Self::of_bundle(e)
        } else if let Some(e) = error.downcast_ref::<LicenceError>() {
            Self::of_licence(e)
        } else if let Some(e) = error.downcast_ref::<ServeError>() {
            match e {
                ServeError::Node(e) => Self::of_node(e),
                ServeError::StoreBusy { .. } => Some(Self::StoreBusy),
                ServeError::PeerUnreachable { .. } => Some(Self::PeerUnreachable),
                ServeError::Net(crate::net::NetError::PortInUse { .. }) => Some(Self::PortInUse),
                _ => None,
            }
        } else if let Some(e) = error.downcast_ref::<NodeRefusal>() {
            e.kind.clone()
        } else if let Some(e) = error.downcast_ref::<ControlError>() {
            matches!(e, ControlError::Interrupted).then_some(Self::Interrupted)
        } else {
            None
        }
    }

    /// The kind of a community command's refusal, when the CLI has an instruction for it.
    fn of_community(error: &crate::communities::CommunityError) -> Option<ErrorKind> {
        use crate::communities::CommunityError as E;
        match error {
            E::NotStewarded(_) => Some(Self::NotStewarded),
            E::CharterNotReceived(_) | E::NeedCharter { .. } => Some(Self::CharterNotReceived),
            E::UnknownPerson { .. } => Some(Self::NoSuchPerson),
            E::LastSteward(_) => Some(Self::LastSteward),
            _ => None,
        }
    }

    /// The kind of a node error (whose store, home and bundle errors are transparent, so not
    /// in the chain as sources).
    pub fn of_node(error: &NodeError) -> Option<ErrorKind> {
        match error {
            NodeError::Store(e) => Self::of_store(e),
            NodeError::Home(e) => Self::of_home(e),
            NodeError::Bundle(e) => Self::of_bundle(e),
            NodeError::Licence(e) => Self::of_licence(e),
            NodeError::UnknownCommons(_) => Some(Self::NoSuchCommons),
            NodeError::NeedFullId {
                what: "commons", ..
            } => Some(Self::NoSuchCommons),
            NodeError::NeedFullId { what, .. } => Some(Self::NoSuchDocument {
                what: (*what).to_string(),
            }),
            NodeError::Reference { error, .. } => Self::of_node(error),
            NodeError::UnknownDoc { what, .. } => Some(Self::NoSuchDocument {
                what: (*what).to_string(),
            }),
            NodeError::ChooseCommons(_) => Some(Self::ChooseCommons),
            NodeError::NoCommons => Some(Self::NoCommons),
            NodeError::UnknownRelease { doc, .. } => Some(Self::NoSuchRelease {
                design: doc.to_string(),
            }),
            NodeError::NoteWithoutTarget => Some(Self::NoteWithoutTarget),
            NodeError::Community(e) => Self::of_community(e),
            NodeError::Local(e) => e.kind(),
            NodeError::Device(e) => Self::of_device(e),
            _ => None,
        }
    }

    /// The kind of a device command's refusal, when the CLI has an instruction for it.
    fn of_device(error: &crate::devices::DeviceError) -> Option<ErrorKind> {
        use crate::devices::DeviceError as E;
        match error {
            E::NotCertifier => Some(Self::NotCertifier),
            E::UnknownDevice(_) => Some(Self::NoSuchDevice),
            E::NoCommons => Some(Self::NoCommons),
            _ => None,
        }
    }

    fn of_store(error: &StoreError) -> Option<ErrorKind> {
        match error {
            StoreError::Locked { .. } => Some(Self::StoreLocked),
            StoreError::Unreadable { .. } => Some(Self::StoreUnreadable),
            StoreError::Damaged { .. } => Some(Self::StoreDamaged),
            StoreError::Corrupt { .. } => Some(Self::StoreCorrupt),
            StoreError::BadManifest { .. } => Some(Self::BadManifest),
            _ => None,
        }
    }

    fn of_home(error: &HomeError) -> Option<ErrorKind> {
        match error {
            HomeError::Missing(_) => Some(Self::NoHome),
            HomeError::NotAHome(_) => Some(Self::NotAHome),
            HomeError::NotEmpty(_) => Some(Self::HomeNotEmpty),
            HomeError::AlreadyServing(_) => Some(Self::AlreadyServing),
            HomeError::BadPersonKey(_) => Some(Self::PersonKeyDamaged),
            _ => None,
        }
    }

    fn of_bundle(error: &BundleError) -> Option<ErrorKind> {
        match error {
            BundleError::NotInBundle(_) => Some(Self::NotInBundle),
            BundleError::WouldOverwrite { .. } => Some(Self::WouldOverwrite),
            _ => None,
        }
    }

    fn of_licence(error: &LicenceError) -> Option<ErrorKind> {
        match error {
            LicenceError::RelicenseRefused { .. } => Some(Self::RelicenseRefused),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind travels as `kind` plus its fields, and reads back the same.
    #[test]
    fn kinds_serialise_as_their_stable_names() {
        let kind = ErrorKind::NoSuchDocument {
            what: "design".into(),
        };
        let value = serde_json::to_value(&kind).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"kind": "no-such-document", "what": "design"})
        );
        assert_eq!(value["kind"], kind.as_str());
        assert_eq!(
            serde_json::from_value::<ErrorKind>(value).expect("reads back"),
            kind
        );
        for kind in [ErrorKind::StoreLocked, ErrorKind::NoteWithoutTarget] {
            let value = serde_json::to_value(&kind).expect("json");
            assert_eq!(value["kind"], kind.as_str());
        }
    }

    /// The kind is found through anyhow-style chains and transparent wrappers alike.
    #[test]
    fn kinds_are_found_in_a_chain() {
        let error = NodeError::UnknownCommons("abcd".into());
        assert_eq!(ErrorKind::of(&error), Some(ErrorKind::NoSuchCommons));
        let serve = ServeError::Node(NodeError::Store(StoreError::Locked { path: "/x".into() }));
        assert_eq!(ErrorKind::of(&serve), Some(ErrorKind::StoreLocked));
        assert_eq!(ErrorKind::of(&NodeError::Invalid("x".into())), None);
    }

    /// Library errors say what is wrong and leave the command to run to the CLI, which knows
    /// its own commands and flags: none of them names one.
    #[test]
    fn library_errors_name_no_commands_or_flags() {
        let doc = hedgerow_protocol::DocId([5; 32]);
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(NodeError::UnknownCommons("abcd".into())),
            Box::new(NodeError::UnknownDoc {
                what: "design",
                id: "abcd".into(),
            }),
            Box::new(NodeError::ChooseCommons(vec!["a".into(), "b".into()])),
            Box::new(NodeError::NoCommons),
            Box::new(NodeError::UnknownRelease {
                doc,
                version: "1.0".into(),
            }),
            Box::new(NodeError::NoteWithoutTarget),
            Box::new(BundleError::NotInBundle("abcd".into())),
            Box::new(HomeError::AlreadyServing("/h".into())),
            Box::new(HomeError::BadPersonKey("/h/person.key".into())),
            Box::new(NodeError::Device(crate::devices::DeviceError::NotCertifier)),
            Box::new(NodeError::Device(
                crate::devices::DeviceError::UnknownDevice("phone".into()),
            )),
            Box::new(NodeError::Device(crate::devices::DeviceError::NoCommons)),
            Box::new(ServeError::StoreBusy { path: "/s".into() }),
            Box::new(ServeError::PeerUnreachable {
                addr: "/ip4/127.0.0.1/tcp/1".into(),
                reason: "connection refused".into(),
            }),
            Box::new(ServeError::Net(crate::net::NetError::PortInUse {
                addr: "/ip4/127.0.0.1/tcp/4717".parse().expect("addr"),
                port: 4717,
            })),
            Box::new(BundleError::WouldOverwrite {
                path: "/s/back.bundle".into(),
                what: "a bundle",
            }),
            Box::new(ControlError::Interrupted),
            Box::new(LicenceError::RelicenseRefused {
                parent: "CERN-OHL-S-2.0".into(),
                child: "MIT".into(),
            }),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(!text.contains("`hedgerow "), "{text}");
            assert!(!text.contains(" --"), "{text}");
            assert!(
                ErrorKind::of(error.as_ref()).is_some(),
                "{text} has no kind"
            );
        }
    }
}

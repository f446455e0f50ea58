//! The page's words in English and French, chosen by the browser's `Accept-Language`.
//!
//! One [`Strings`] struct per language: a string added to one and not the other does not
//! compile. Peers' own text (names, steps, notes) is shown as written.

use axum::http::{header, HeaderMap};

/// A language the page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// French (L'Atelier Paysan's community writes French).
    Fr,
}

impl Lang {
    /// The language a request prefers among those the page has: the highest `q` of
    /// `Accept-Language`, English when it names none of them.
    pub fn of(headers: &HeaderMap) -> Lang {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map_or(Lang::En, Lang::parse)
    }

    /// [`Lang::of`] on the header's text.
    pub fn parse(accept: &str) -> Lang {
        let mut best = (Lang::En, -1.0f32);
        for part in accept.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "fr" => Lang::Fr,
                "en" => Lang::En,
                _ => continue,
            };
            if q > best.1 {
                best = (lang, q);
            }
        }
        best.0
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The page's words in this language.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }
}

/// Every word the page writes itself.
#[derive(Debug)]
pub struct Strings {
    /// Link that skips the navigation.
    pub skip: &'static str,
    /// Link from the home page to linking a browser or joining as a guest.
    pub write_here: &'static str,
    /// The main navigation's label.
    pub nav: &'static str,
    /// Commons (plural heading).
    pub commons: &'static str,
    /// Designs.
    pub designs: &'static str,
    /// Events.
    pub events: &'static str,
    /// People.
    pub people: &'static str,
    /// Notes.
    pub notes: &'static str,
    /// The search form's field label.
    pub search_label: &'static str,
    /// The search button.
    pub search: &'static str,
    /// Tag filter label.
    pub tag: &'static str,
    /// Tags heading.
    pub tags: &'static str,
    /// Stage filter label.
    pub stage: &'static str,
    /// No stage filter.
    pub any_stage: &'static str,
    /// A list with nothing in it.
    pub nothing: &'static str,
    /// Found in (search matches).
    pub found_in: &'static str,
    /// Summary heading.
    pub summary: &'static str,
    /// Bill of materials heading.
    pub bom: &'static str,
    /// Part name column.
    pub part: &'static str,
    /// Quantity column.
    pub quantity: &'static str,
    /// Unit column.
    pub unit: &'static str,
    /// Sourcing column.
    pub sourcing: &'static str,
    /// Build steps heading.
    pub steps: &'static str,
    /// Files heading.
    pub files: &'static str,
    /// A file whose bytes are not on this node.
    pub not_held: &'static str,
    /// Licence heading.
    pub licence: &'static str,
    /// Releases heading and selector label.
    pub releases: &'static str,
    /// The current state, in the release selector.
    pub current: &'static str,
    /// Show button (release selector without script).
    pub show: &'static str,
    /// Viewing a release.
    pub release_shown: &'static str,
    /// Lineage heading.
    pub lineage: &'static str,
    /// Derived from.
    pub derived_from: &'static str,
    /// Derivatives.
    pub derivatives: &'static str,
    /// Built by heading.
    pub built_by: &'static str,
    /// History link and heading.
    pub history: &'static str,
    /// Blame heading.
    pub blame: &'static str,
    /// "by" before an author.
    pub by: &'static str,
    /// Updated (list column).
    pub updated: &'static str,
    /// Signed changes.
    pub changes: &'static str,
    /// Fields changed (history column).
    pub fields_changed: &'static str,
    /// When.
    pub when: &'static str,
    /// Where.
    pub place: &'static str,
    /// Kind (of event or note).
    pub kind: &'static str,
    /// Other fields heading.
    pub details: &'static str,
    /// The page updates by itself (shown once the live stream is open).
    pub live: &'static str,
    /// The page just updated.
    pub refreshed: &'static str,
    /// Page not found.
    pub not_found: &'static str,
    /// The node could not answer.
    pub failed: &'static str,
    /// Location (profile).
    pub location: &'static str,
    /// Bio (profile).
    pub about: &'static str,
    /// Author key (profile).
    pub key: &'static str,
    /// Replies heading (a note's answers).
    pub in_reply_to: &'static str,
    /// Description of a commons.
    pub description: &'static str,
    /// Open conflicts.
    pub conflicts: &'static str,
}

/// English.
pub static EN: Strings = Strings {
    skip: "Skip to content",
    write_here: "Write from this browser: link it to yourself, or join an event as a guest",
    nav: "Main",
    commons: "Commons",
    designs: "Designs",
    events: "Events",
    people: "People",
    notes: "Notes",
    search_label: "Search designs (name, summary, steps)",
    search: "Search",
    tag: "Tag",
    tags: "Tags",
    stage: "Stage",
    any_stage: "Any stage",
    nothing: "Nothing here yet.",
    found_in: "found in",
    summary: "Summary",
    bom: "Bill of materials",
    part: "Part",
    quantity: "Quantity",
    unit: "Unit",
    sourcing: "Sourcing",
    steps: "Build steps",
    files: "Files",
    not_held: "not on this node yet",
    licence: "Licence",
    releases: "Releases",
    current: "Current",
    show: "Show",
    release_shown: "You are reading release",
    lineage: "Lineage",
    derived_from: "Derived from",
    derivatives: "Derivatives",
    built_by: "Built by",
    history: "History",
    blame: "Who wrote what",
    by: "by",
    updated: "Updated",
    changes: "signed changes",
    fields_changed: "Fields changed",
    when: "When",
    place: "Where",
    kind: "Kind",
    details: "Details",
    live: "This page updates by itself when a change arrives.",
    refreshed: "Updated with a new change.",
    not_found: "Nothing is held here under this address.",
    failed: "The node could not answer",
    location: "Location",
    about: "About",
    key: "Author key",
    in_reply_to: "In reply to",
    description: "About this commons",
    conflicts: "Fields in conflict",
};

/// French.
pub static FR: Strings = Strings {
    skip: "Aller au contenu",
    write_here: "Écrire depuis ce navigateur : le lier à vous, ou rejoindre un événement en invité",
    nav: "Navigation principale",
    commons: "Communs",
    designs: "Plans",
    events: "Événements",
    people: "Personnes",
    notes: "Notes",
    search_label: "Rechercher des plans (nom, résumé, étapes)",
    search: "Rechercher",
    tag: "Mot-clé",
    tags: "Mots-clés",
    stage: "Stade",
    any_stage: "Tous les stades",
    nothing: "Rien pour l'instant.",
    found_in: "trouvé dans",
    summary: "Résumé",
    bom: "Liste des matériaux",
    part: "Pièce",
    quantity: "Quantité",
    unit: "Unité",
    sourcing: "Approvisionnement",
    steps: "Étapes de fabrication",
    files: "Fichiers",
    not_held: "pas encore sur ce nœud",
    licence: "Licence",
    releases: "Versions",
    current: "Actuelle",
    show: "Afficher",
    release_shown: "Vous lisez la version",
    lineage: "Filiation",
    derived_from: "Dérivé de",
    derivatives: "Dérivés",
    built_by: "Construit par",
    history: "Historique",
    blame: "Qui a écrit quoi",
    by: "par",
    updated: "Mis à jour",
    changes: "modifications signées",
    fields_changed: "Champs modifiés",
    when: "Quand",
    place: "Où",
    kind: "Type",
    details: "Détails",
    live: "Cette page se met à jour d'elle-même quand une modification arrive.",
    refreshed: "Mise à jour avec une nouvelle modification.",
    not_found: "Rien n'est conservé ici à cette adresse.",
    failed: "Le nœud n'a pas pu répondre",
    location: "Lieu",
    about: "À propos",
    key: "Clé d'auteur",
    in_reply_to: "En réponse à",
    description: "À propos de ce commun",
    conflicts: "Champs en conflit",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::parse("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::parse("en-GB,fr;q=0.5"), Lang::En);
        assert_eq!(Lang::parse("de-DE,fr;q=0.7,en;q=0.3"), Lang::Fr);
        assert_eq!(Lang::parse("de"), Lang::En);
        assert_eq!(Lang::parse(""), Lang::En);
        assert_eq!(Lang::parse("en;q=0.2, fr;q=0.9"), Lang::Fr);
    }
}

//! Plausible farm-tool prose: names, build steps, bills of materials, notes.
//!
//! Text is assembled from a vocabulary drawn from Farm Hack and L'Atelier Paysan tool
//! pages, with numbers and dimensions mixed in, so it compresses like real
//! documentation (neither random bytes nor endless repetition).

use crate::rng::Rng;
use hedgerow_protocol::schema::BomLine;

const VERBS: &[&str] = &[
    "cut",
    "weld",
    "drill",
    "bolt",
    "grind",
    "mark",
    "clamp",
    "bend",
    "tack-weld",
    "fit",
    "tighten",
    "check",
    "paint",
    "assemble",
    "align",
    "deburr",
    "measure",
    "square up",
    "slide",
    "press",
    "thread",
    "mount",
    "hang",
    "offset",
    "countersink",
    "chamfer",
    "brace",
    "shim",
    "level",
    "rivet",
    "sharpen",
    "temper",
    "heat",
    "hammer",
    "trim",
    "file",
];
const PARTS: &[&str] = &[
    "frame",
    "drum",
    "tine",
    "blade",
    "shaft",
    "bearing housing",
    "hitch bracket",
    "axle",
    "top link",
    "lower link pin",
    "tool bar",
    "depth wheel",
    "skid",
    "chevron",
    "end cap",
    "gusset",
    "cross member",
    "handle",
    "seed hopper",
    "metering wheel",
    "coulter",
    "share",
    "mouldboard",
    "spring tine",
    "parallel linkage",
    "clamp plate",
    "spacer",
    "roller",
    "brush",
    "wheel hub",
    "sprocket",
    "chain guard",
    "tensioner",
    "stand",
    "pivot",
];
const MATERIALS: &[&str] = &[
    "steel tube 40x40x3",
    "flat bar 50x6",
    "angle iron 40x4",
    "round bar 20 mm",
    "square tube 60x60x4",
    "sheet steel 3 mm",
    "oak plank 27 mm",
    "UHMW-PE strip",
    "spring steel 8 mm",
    "galvanised pipe 1 inch",
    "threaded rod M16",
    "plywood 18 mm",
    "rectangular tube 80x40x3",
    "chain 08B",
    "bearing UCP 205",
    "flat bar 30x8",
];
const TOOLS: &[&str] = &[
    "angle grinder",
    "MIG welder",
    "stick welder",
    "pillar drill",
    "hand drill",
    "chop saw",
    "metal bandsaw",
    "vice",
    "square",
    "tape measure",
    "spirit level",
    "socket set",
    "torque wrench",
    "clamps",
    "marker",
    "centre punch",
    "hole saw",
    "tap and die set",
    "anvil",
    "forge",
    "files",
    "paint brush",
];
const ADJECTIVES: &[&str] = &[
    "left", "right", "front", "rear", "upper", "lower", "inner", "outer", "long", "short",
    "second", "third", "last", "central", "spare", "main", "small", "large", "new", "old",
];
const CONNECTORS: &[&str] = &[
    "then",
    "and",
    "so that",
    "before you",
    "after you",
    "while you",
    "until",
    "making sure",
    "taking care that",
    "leaving",
];
const COMMENT_WORDS: &[&str] = &[
    "we",
    "tried",
    "the",
    "prototype",
    "on",
    "heavy",
    "clay",
    "soil",
    "worked",
    "well",
    "rye",
    "vetch",
    "cover",
    "crop",
    "was",
    "flattened",
    "in",
    "one",
    "pass",
    "next",
    "time",
    "use",
    "thicker",
    "steel",
    "for",
    "the",
    "blades",
    "farmers",
    "asked",
    "about",
    "cost",
    "weight",
    "tractor",
    "hitch",
    "category",
    "two",
    "walking",
    "workshop",
    "build",
    "day",
    "three",
    "units",
    "finished",
    "by",
    "evening",
    "need",
    "better",
    "drawings",
    "of",
    "bearing",
    "mount",
    "decided",
    "to",
    "keep",
    "design",
    "simple",
    "question",
    "is",
    "whether",
    "a",
    "smaller",
    "version",
    "could",
    "work",
    "with",
    "horses",
    "market",
    "gardeners",
    "liked",
    "it",
    "because",
    "no",
    "till",
    "beds",
    "stay",
    "covered",
];
const NAME_HEADS: &[&str] = &[
    "Roller crimper",
    "Seed drill",
    "Broadfork",
    "Wheel hoe",
    "Bed shaper",
    "Flame weeder",
    "Finger weeder",
    "Tool bar",
    "Greens harvester",
    "Root washer",
    "Compost turner",
    "Mobile chicken coop",
    "Potato digger",
    "Rotary harrow",
    "Spader",
    "Bed former",
    "Transplanter",
    "Mulch layer",
    "Hand seeder",
    "Barrel washer",
    "Salad spinner",
    "Solar dryer",
    "Grain cleaner",
    "Tine weeder",
    "Ridger",
    "Cultivator",
    "Subsoiler",
];
const NAME_TAILS: &[&str] = &[
    "for walking tractors",
    "for market gardens",
    "3-point hitch",
    "1.2 m",
    "1.6 m",
    "horse-drawn",
    "for raised beds",
    "quick-change",
    "low-cost",
    "for heavy soils",
    "double row",
    "with depth wheels",
    "for no-till",
    "cargo-bike mounted",
    "electric",
];
const TAGS: &[&str] = &[
    "no-till",
    "cover crops",
    "market gardening",
    "weeding",
    "seeding",
    "harvest",
    "post-harvest",
    "soil preparation",
    "livestock",
    "poultry",
    "irrigation",
    "tractor",
    "walking tractor",
    "hand tool",
    "welding",
    "woodwork",
    "low-cost",
    "organic",
    "small farms",
    "composting",
    "drying",
    "storage",
    "animal traction",
    "electric",
];
const FIRST_NAMES: &[&str] = &[
    "Ada", "Bruno", "Chloé", "Dev", "Elif", "Fatou", "Gaspard", "Hana", "Ines", "Jonas", "Kemal",
    "Léa", "Malik", "Noor", "Oscar", "Pia", "Quentin", "Rosa", "Sami", "Tove", "Ugo", "Vera",
    "Wen", "Ximena", "Yann", "Zoé",
];
const LAST_NAMES: &[&str] = &[
    "Martin",
    "Okafor",
    "Dubois",
    "Nakamura",
    "Schmidt",
    "Costa",
    "Lindqvist",
    "Moreau",
    "Haddad",
    "Novak",
    "Ferrand",
    "Ibarra",
    "Keller",
    "Mensah",
    "Rossi",
    "Petit",
];
const PLACES: &[&str] = &[
    "Renage",
    "Die",
    "Crest",
    "Montpellier",
    "Vermont",
    "Maine",
    "Ghent",
    "Valais",
    "Brittany",
    "Drôme",
    "Ardèche",
    "Gers",
    "Tarn",
    "Quebec",
    "Wales",
    "Devon",
];
const SOURCING: &[&str] = &[
    "local steel merchant",
    "scrap yard",
    "agricultural dealer",
    "hardware store",
    "bearing supplier",
    "online",
    "co-op bulk order",
    "sawmill",
];

/// A dimension or quantity phrase such as "120 mm" or "4 holes of 12 mm".
fn measure(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("{} mm", rng.range(5, 1600)),
        1 => format!(
            "{} holes of {} mm",
            rng.range(2, 12),
            rng.pick(&[8, 10, 12, 14, 16, 20])
        ),
        2 => format!("{}.{} m", rng.range(0, 3), rng.range(0, 9)),
        _ => format!("{} degrees", rng.pick(&[15, 30, 45, 60, 90])),
    }
}

/// One build-instruction sentence.
pub fn sentence(rng: &mut Rng) -> String {
    let verb = rng.pick_skewed(VERBS);
    let adj = rng.pick(ADJECTIVES);
    let part = rng.pick_skewed(PARTS);
    let mut s = match rng.below(5) {
        0 => format!("{verb} the {adj} {part} from {}", rng.pick(MATERIALS)),
        1 => format!("{verb} the {part} to {}", measure(rng)),
        2 => format!("with the {} {verb} the {adj} {part}", rng.pick(TOOLS)),
        3 => format!("{verb} {} on the {part}", measure(rng)),
        _ => format!("{verb} the {part} to the {}", rng.pick_skewed(PARTS)),
    };
    if rng.chance(0.5) {
        s.push_str(&format!(
            " {} {} the {} {}",
            rng.pick(CONNECTORS),
            rng.pick(VERBS),
            rng.pick(ADJECTIVES),
            rng.pick(PARTS)
        ));
    }
    let mut chars = s.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>())
        .unwrap_or_default();
    format!("{first}{}.", chars.as_str())
}

/// Prose of `lo` to `hi` bytes (chosen at random) made of instruction sentences.
pub fn paragraph(rng: &mut Rng, lo: usize, hi: usize) -> String {
    let bytes = rng.range(lo, hi);
    let mut out = String::new();
    while out.len() < bytes {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&sentence(rng));
    }
    out
}

/// Conversational text (notes, summaries of discussions) of `lo` to `hi` bytes.
pub fn chatter(rng: &mut Rng, lo: usize, hi: usize) -> String {
    let bytes = rng.range(lo, hi);
    let mut out = String::new();
    let mut words_in_sentence = 0;
    while out.len() < bytes {
        let word = rng.pick_skewed(COMMENT_WORDS);
        if words_in_sentence == 0 {
            let mut c = word.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(word);
        }
        words_in_sentence += 1;
        if words_in_sentence > rng.range(6, 16) {
            out.push_str(". ");
            words_in_sentence = 0;
        }
    }
    out.push('.');
    out
}

/// A design name.
pub fn design_name(rng: &mut Rng) -> String {
    if rng.chance(0.6) {
        format!("{} {}", rng.pick(NAME_HEADS), rng.pick(NAME_TAILS))
    } else {
        rng.pick(NAME_HEADS).to_string()
    }
}

/// A tag.
pub fn tag(rng: &mut Rng) -> String {
    rng.pick_skewed(TAGS).to_string()
}

/// A tool needed for a build.
pub fn tool(rng: &mut Rng) -> String {
    rng.pick_skewed(TOOLS).to_string()
}

/// A person's name.
pub fn person(rng: &mut Rng) -> String {
    format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES))
}

/// A place name.
pub fn place(rng: &mut Rng) -> String {
    rng.pick(PLACES).to_string()
}

/// A bill-of-materials line.
pub fn bom_line(rng: &mut Rng) -> BomLine {
    let is_material = rng.chance(0.6);
    let name = if is_material {
        rng.pick(MATERIALS).to_string()
    } else {
        format!(
            "{} {}",
            rng.pick(&[
                "bolt M12x40",
                "bolt M16x80",
                "nut M12",
                "washer 12",
                "bearing",
                "spring",
                "pin 10 mm",
                "chain link",
                "grease nipple",
                "paint 1 l"
            ]),
            rng.range(1, 9)
        )
    };
    BomLine {
        name,
        quantity: Some(if is_material {
            rng.range(1, 120) as f64 / 10.0
        } else {
            rng.range(1, 24) as f64
        }),
        unit: Some(if is_material { "m" } else { "pcs" }.to_string()),
        sourcing: rng.chance(0.5).then(|| rng.pick(SOURCING).to_string()),
        reference: rng
            .chance(0.2)
            .then(|| format!("EN {}", rng.range(10000, 10300))),
    }
}

/// Rewrites one sentence of `text` (a typical small revision of a step).
pub fn revise(rng: &mut Rng, text: &str) -> String {
    let sentences: Vec<&str> = text.split_inclusive(". ").collect();
    if sentences.is_empty() {
        return sentence(rng);
    }
    let at = rng.below(sentences.len());
    let mut out = String::with_capacity(text.len() + 80);
    for (i, s) in sentences.iter().enumerate() {
        if i == at {
            out.push_str(&sentence(rng));
            out.push(' ');
        } else {
            out.push_str(s);
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_deterministic_and_sized() {
        let a = paragraph(&mut Rng::new(3), 500, 500);
        let b = paragraph(&mut Rng::new(3), 500, 500);
        assert_eq!(a, b);
        assert!(a.len() >= 500 && a.len() < 700, "{}", a.len());
        let revised = revise(&mut Rng::new(4), &a);
        assert_ne!(revised, a);
        assert!(bom_line(&mut Rng::new(5)).check_ok());
    }

    trait CheckOk {
        fn check_ok(&self) -> bool;
    }
    impl CheckOk for BomLine {
        fn check_ok(&self) -> bool {
            !self.name.is_empty() && self.quantity.is_some()
        }
    }
}

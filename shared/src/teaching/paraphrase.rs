//! The paraphrase world: every attribute value has three surface forms ("marsh", "swamp", "bog"),
//! a common one and two rarer ones, and a query and a passage draw theirs independently, so a
//! full match often lacks the query's word for a value. Passages also mention values that are *not* their
//! creature's: another creature's ("it is often confused with the crimson Quorl, which eats
//! fungi"), and values ruled out ("it never eats fish"), so a passage holding the asked words can
//! be irrelevant. Relevance is unchanged: the values a passage states (see the parent module).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Attribute, Creature, NOUNS, Passage, Rng, article, cardinality, clause_sentences, creature_name, filler,
    first_sentence, query_frame,
};

/// Forms of each value, in the lexical world's value order (its word first).
const SIZE_FORMS: [[&str; 3]; 5] = [
    ["tiny", "minute", "pocket-sized"],
    ["small", "little", "slight"],
    ["mid-sized", "medium-sized", "middling"],
    ["large", "big", "hefty"],
    ["enormous", "huge", "giant"],
];
const PATTERN_FORMS: [[&str; 3]; 6] = [
    ["striped", "stripy", "streaked"],
    ["spotted", "dotted", "dappled"],
    ["speckled", "flecked", "freckled"],
    ["banded", "barred", "belted"],
    ["mottled", "blotchy", "marbled"],
    ["ringed", "hooped", "ring-marked"],
];
const COLOUR_FORMS: [[&str; 3]; 10] = [
    ["red", "crimson", "scarlet"],
    ["orange", "amber", "tangerine"],
    ["yellow", "lemon", "canary"],
    ["green", "emerald", "jade"],
    ["blue", "azure", "cobalt"],
    ["purple", "violet", "lilac"],
    ["grey", "ashen", "slate"],
    ["black", "jet", "ebony"],
    ["white", "snowy", "ivory"],
    ["golden", "gilded", "honey-coloured"],
];
const HABITAT_FORMS: [[&str; 3]; 10] = [
    ["marsh", "swamp", "bog"],
    ["forest", "woods", "woodland"],
    ["desert", "dunes", "sands"],
    ["tundra", "frozen plains", "permafrost"],
    ["reef", "coral shallows", "lagoon"],
    ["caves", "caverns", "grottoes"],
    ["meadows", "grasslands", "fields"],
    ["cliffs", "crags", "rock faces"],
    ["rivers", "streams", "riverbanks"],
    ["mountains", "peaks", "highlands"],
];
const DIET_FORMS: [[&str; 3]; 10] = [
    ["berries", "fruit", "brambles"],
    ["insects", "beetles", "bugs"],
    ["fish", "minnows", "trout"],
    ["roots", "tubers", "bulbs"],
    ["seeds", "grain", "kernels"],
    ["mushrooms", "fungi", "toadstools"],
    ["moss", "lichen", "peat moss"],
    ["nectar", "pollen", "flower juice"],
    ["leaves", "foliage", "shoots"],
    ["snails", "slugs", "molluscs"],
];
/// (verb, noun) forms of each call.
const CALL_FORMS: [[(&str, &str); 3]; 8] = [
    [("hums", "hum"), ("drones", "drone"), ("buzzes", "buzz")],
    [("whistles", "whistle"), ("pipes", "piping"), ("toots", "toot")],
    [("croaks", "croak"), ("ribbits", "ribbit"), ("rasps", "rasp")],
    [("chirps", "chirp"), ("cheeps", "cheep"), ("tweets", "tweet")],
    [("growls", "growl"), ("snarls", "snarl"), ("rumbles", "rumble")],
    [("clicks", "click"), ("clacks", "clack"), ("ticks", "tick")],
    [("hisses", "hiss"), ("spits", "spit"), ("fizzes", "fizz")],
    [("sings", "song"), ("warbles", "warble"), ("croons", "croon")],
];

/// Every form of a value, as the world writes it (a region: its name and its adjective).
pub(super) fn forms(regions: &[String], attr: Attribute, v: usize) -> Vec<String> {
    let owned = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
    match attr {
        Attribute::Size => owned(&SIZE_FORMS[v]),
        Attribute::Pattern => owned(&PATTERN_FORMS[v]),
        Attribute::Colour => owned(&COLOUR_FORMS[v]),
        Attribute::Habitat => owned(&HABITAT_FORMS[v]),
        Attribute::Diet => owned(&DIET_FORMS[v]),
        Attribute::Call => CALL_FORMS[v].iter().flat_map(|(verb, noun)| [verb.to_string(), noun.to_string()]).collect(),
        Attribute::Region => vec![regions[v].clone(), region_adjective(&regions[v])],
    }
}

/// "Zorvia" → "Zorvian" (region names end in "ia").
fn region_adjective(region: &str) -> String {
    format!("{region}n")
}

/// How often a value is written in its common form (the first); otherwise one of the two rarer
/// ones. Drawn independently for queries and passages, so a full match shares the query's word
/// for a value 74 % of the time (0.85² + 0.15² / 2); with uniform forms (33 %), BM25's top 100 held
/// only 54 % of the relevant passages, too few for a reranking teacher (METHOD.md §7).
const COMMON_FORM_PERCENT: usize = 85;

fn pick_form<T: Copy>(rng: &mut Rng, forms: &[T]) -> T {
    if rng.chance(COMMON_FORM_PERCENT) { forms[0] } else { forms[1 + rng.below(forms.len() - 1)] }
}

fn adjective(rng: &mut Rng, attr: Attribute, v: usize) -> &'static str {
    match attr {
        Attribute::Size => pick_form(rng, &SIZE_FORMS[v]),
        Attribute::Pattern => pick_form(rng, &PATTERN_FORMS[v]),
        Attribute::Colour => pick_form(rng, &COLOUR_FORMS[v]),
        _ => unreachable!("{attr:?} is not written as an adjective"),
    }
}

/// A value other than `v` of `attr`.
fn other_value(rng: &mut Rng, attr: Attribute, v: usize) -> usize {
    (v + 1 + rng.below(cardinality(attr) - 1)) % cardinality(attr)
}

/// The verb phrase of a passage that states a clause attribute. Diets and habitats sometimes
/// add a value the creature does *not* have ("eats fungi but never fish"): the asked word is
/// there, the match is not.
fn stating_phrase(rng: &mut Rng, regions: &[String], attr: Attribute, v: usize) -> String {
    match attr {
        Attribute::Habitat => {
            let h = pick_form(rng, &HABITAT_FORMS[v]);
            let mut phrase = match rng.below(4) {
                0 => format!("lives in the {h}"),
                1 => format!("makes its home in the {h}"),
                2 => format!("is usually seen in the {h}"),
                _ => format!("dwells in the {h}"),
            };
            if rng.chance(25) {
                let o = other_value(rng, attr, v);
                phrase.push_str(&format!(", never in the {}", pick_form(rng, &HABITAT_FORMS[o])));
            }
            phrase
        }
        Attribute::Diet => {
            let d = pick_form(rng, &DIET_FORMS[v]);
            let mut phrase = match rng.below(4) {
                0 => format!("eats {d}"),
                1 => format!("feeds mostly on {d}"),
                2 => format!("lives on a diet of {d}"),
                _ => format!("forages for {d}"),
            };
            if rng.chance(25) {
                let o = other_value(rng, attr, v);
                phrase.push_str(&format!(" but never {}", pick_form(rng, &DIET_FORMS[o])));
            }
            phrase
        }
        Attribute::Call => {
            let (verb, noun) = pick_form(rng, &CALL_FORMS[v]);
            match rng.below(3) {
                0 => format!("{verb} at dusk"),
                1 => format!("is known for its {noun}"),
                _ => format!("{verb} when alarmed"),
            }
        }
        Attribute::Region => {
            let r = &regions[v];
            match rng.below(4) {
                0 => format!("is native to {r}"),
                1 => format!("comes from {r}"),
                2 => format!("is a {} native", region_adjective(r)),
                _ => format!("roams the {} lowlands", region_adjective(r)),
            }
        }
        _ => unreachable!("adjective attributes have no verb phrase"),
    }
}

/// A sentence ruling out value `v` of `attr` ("It never eats fish.").
fn ruling_out(rng: &mut Rng, regions: &[String], attr: Attribute, v: usize) -> String {
    match attr {
        Attribute::Size | Attribute::Pattern | Attribute::Colour => {
            format!("It is not {}.", adjective(rng, attr, v))
        }
        Attribute::Habitat => format!("It is never found in the {}.", pick_form(rng, &HABITAT_FORMS[v])),
        Attribute::Diet => format!("It will not touch {}.", pick_form(rng, &DIET_FORMS[v])),
        Attribute::Call => format!("It never {}.", pick_form(rng, &CALL_FORMS[v]).0),
        Attribute::Region => format!("It is not native to {}.", regions[v]),
    }
}

/// A sentence about another creature that names some of *its* values.
fn foil(rng: &mut Rng, regions: &[String], creatures: &[Creature], index: usize) -> String {
    let mut other = rng.below(creatures.len() - 1);
    if other >= index {
        other += 1;
    }
    let o = &creatures[other];
    let adj_attr = *rng.pick(&[Attribute::Size, Attribute::Pattern, Attribute::Colour]);
    let adj = adjective(rng, adj_attr, o.values[adj_attr.index()]);
    let name = &o.name;
    match rng.below(3) {
        0 => {
            let attr = *rng.pick(&[Attribute::Habitat, Attribute::Diet, Attribute::Call, Attribute::Region]);
            let vp = stating_phrase(rng, regions, attr, o.values[attr.index()]);
            let noun = *rng.pick(&NOUNS);
            format!("It is often confused with the {name}, {} {adj} {noun} that {vp}.", article(adj))
        }
        1 => {
            let verb = *rng.pick(&["preys on", "avoids", "is hunted by", "shares its range with"]);
            format!("It {verb} the {adj} {name}.")
        }
        _ => {
            let attr = *rng.pick(&[Attribute::Habitat, Attribute::Diet, Attribute::Call]);
            let vp = stating_phrase(rng, regions, attr, o.values[attr.index()]);
            format!("Its {adj} cousin, the {name}, {vp}.")
        }
    }
}

pub(super) fn creature_passage(rng: &mut Rng, regions: &[String], creatures: &[Creature], index: usize) -> Passage {
    let c = &creatures[index];
    let mut attrs = Attribute::ALL.to_vec();
    rng.shuffle(&mut attrs);
    attrs.truncate(3 + rng.below(3));
    attrs.sort();
    let stated: BTreeMap<Attribute, usize> = attrs.iter().map(|a| (*a, c.values[a.index()])).collect();
    let noun = *rng.pick(&NOUNS);
    let name = &c.name;

    let mut word = |a: Attribute| stated.get(&a).map(|&v| adjective(rng, a, v).to_string());
    let (size, pattern, colour) = (word(Attribute::Size), word(Attribute::Pattern), word(Attribute::Colour));
    let first = first_sentence(rng, name, noun, c.covering, [size, pattern, colour]);

    let clauses: Vec<String> = attrs
        .iter()
        .filter(|a| !a.is_adjective())
        .map(|&a| stating_phrase(rng, regions, a, c.values[a.index()]))
        .collect();
    let mut sentences = vec![first];
    sentences.extend(clause_sentences(rng, name, noun, clauses));
    // A value ruled out, for one attribute the passage does not state.
    let mut excluded = BTreeMap::new();
    let unstated: Vec<Attribute> = Attribute::ALL.into_iter().filter(|a| !stated.contains_key(a)).collect();
    if rng.chance(30) {
        let attr = *rng.pick(&unstated);
        let v = other_value(rng, attr, c.values[attr.index()]);
        excluded.insert(attr, v);
        sentences.push(ruling_out(rng, regions, attr, v));
    }
    if creatures.len() > 1 && rng.chance(60) {
        let at = 1 + rng.below(sentences.len());
        sentences.insert(at, foil(rng, regions, creatures, index));
    }
    sentences.extend(filler(rng, 25));
    Passage {
        id: String::new(),
        title: name.clone(),
        text: sentences.join(" "),
        creature: Some(index),
        stated,
        excluded,
    }
}

/// A near twin of the passage of `creatures[index]` just written from the generator state
/// `before` (see `TeachingConfig::twin_percent`): a new creature equal to it but for one stated
/// value, its passage written from the same state, so the two texts differ in that value (and in
/// the few draws that depend on the number of creatures), and half the time a sentence naming the
/// original value where it does not count: ruled out, or given to the original creature. A query
/// that asks for the original value finds the twin irrelevant although it may hold every asked word.
pub(super) fn near_twin(
    rng: &mut Rng,
    mut before: Rng,
    regions: &[String],
    creatures: &mut Vec<Creature>,
    index: usize,
    stated: &BTreeMap<Attribute, usize>,
    taken: &mut BTreeSet<String>,
) -> Passage {
    let attrs: Vec<Attribute> = stated.keys().copied().collect();
    let attr = *rng.pick(&attrs);
    let original = creatures[index].clone();
    let v = original.values[attr.index()];
    let mut values = original.values;
    values[attr.index()] = other_value(rng, attr, v);
    let name = creature_name(rng, taken);
    creatures.push(Creature { name, values, covering: original.covering });
    let mut twin = creature_passage(&mut before, regions, creatures, creatures.len() - 1);
    if rng.chance(50) {
        let trap = if rng.chance(50) {
            ruling_out(rng, regions, attr, v)
        } else if attr.is_adjective() {
            format!("It is often mistaken for the {}, which is {}.", original.name, adjective(rng, attr, v))
        } else {
            format!("Its cousin, the {}, {}.", original.name, stating_phrase(rng, regions, attr, v))
        };
        let mut sentences: Vec<&str> = twin.text.split_inclusive(". ").map(str::trim_end).collect();
        let at = 1 + rng.below(sentences.len());
        sentences.insert(at, &trap);
        twin.text = sentences.join(" ");
    }
    twin
}

pub(super) fn distractor_passage(rng: &mut Rng, regions: &[String], creatures: &[Creature]) -> Passage {
    let r = rng.pick(regions).clone();
    let mut any = |forms: &[[&'static str; 3]]| {
        let v = rng.below(forms.len());
        pick_form(rng, &forms[v])
    };
    let (h1, h2, d) = (any(&HABITAT_FORMS), any(&HABITAT_FORMS), any(&DIET_FORMS));
    let (colour, pattern, size) = (any(&COLOUR_FORMS), any(&PATTERN_FORMS), any(&SIZE_FORMS));
    let call_value = rng.below(CALL_FORMS.len());
    let (verb, call) = pick_form(rng, &CALL_FORMS[call_value]);
    let other = &rng.pick(creatures).name;
    let (title, text) = match rng.below(4) {
        0 => (
            r.clone(),
            format!(
                "{r} is a land of {h1} and {h2}. Travellers there meet creatures that eat {d} and one that {verb}."
            ),
        ),
        1 => (
            format!("Field notes: {r}"),
            format!(
                "Field notes from {r}: {colour} flowers, {pattern} stones in the {h1}, and the distant {call} of \
                 some {size} animal. Nobody saw what made it."
            ),
        ),
        2 => (
            format!("A guide to {r}"),
            format!(
                "A guide to {r}: pack for the {h1}, bring {d} for the journey, and expect to hear a {call} at night."
            ),
        ),
        _ => (
            other.clone(),
            format!(
                "Hunters in {r} tell stories about the {other}. Some say it is {colour}, others that it is \
                 {pattern}; none agree on where it lives or what it eats."
            ),
        ),
    };
    Passage { id: String::new(), title, text, creature: None, stated: BTreeMap::new(), excluded: BTreeMap::new() }
}

pub(super) fn query_text(rng: &mut Rng, regions: &[String], asked: &BTreeMap<Attribute, usize>) -> String {
    let noun = *rng.pick(&NOUNS);
    let mut np: Vec<&str> =
        asked.iter().filter(|(a, _)| a.is_adjective()).map(|(a, v)| adjective(rng, *a, *v)).collect();
    np.push(noun);
    let np = np.join(" ");
    let vps: Vec<String> = asked
        .iter()
        .filter(|(a, _)| !a.is_adjective())
        .map(|(a, &v)| match a {
            Attribute::Habitat => {
                let h = pick_form(rng, &HABITAT_FORMS[v]);
                match rng.below(3) {
                    0 => format!("lives in the {h}"),
                    1 => format!("is found in the {h}"),
                    _ => format!("makes its home in the {h}"),
                }
            }
            Attribute::Diet => {
                let d = pick_form(rng, &DIET_FORMS[v]);
                match rng.below(3) {
                    0 => format!("eats {d}"),
                    1 => format!("feeds on {d}"),
                    _ => format!("has a taste for {d}"),
                }
            }
            Attribute::Call => {
                let (verb, noun) = pick_form(rng, &CALL_FORMS[v]);
                if rng.chance(50) { verb.to_string() } else { format!("is known for its {noun}") }
            }
            Attribute::Region => match rng.below(3) {
                0 => format!("comes from {}", regions[v]),
                1 => format!("is native to {}", regions[v]),
                _ => format!("roams the {} lowlands", region_adjective(&regions[v])),
            },
            _ => unreachable!(),
        })
        .collect();
    query_frame(rng, &np, &vps)
}

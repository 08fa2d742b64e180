//! The lexical world (the demo's): every attribute value has one word, asked and stated in the
//! same form, so a passage that states a value always contains the query's word for it.

use std::collections::BTreeMap;

use super::{
    Attribute, CALLS, COLOURS, Creature, DIETS, HABITATS, NOUNS, PATTERNS, Passage, Rng, SIZES, clause_sentences,
    filler, first_sentence, query_frame, value_word,
};
/// The verb phrase that states a clause attribute, in one of a few wordings.
fn verb_phrase(rng: &mut Rng, regions: &[String], attr: Attribute, v: usize) -> String {
    match attr {
        Attribute::Habitat => {
            let h = HABITATS[v];
            match rng.below(4) {
                0 => format!("lives in the {h}"),
                1 => format!("makes its home in the {h}"),
                2 => format!("is usually seen in the {h}"),
                _ => format!("dwells in the {h}"),
            }
        }
        Attribute::Diet => {
            let d = DIETS[v];
            match rng.below(4) {
                0 => format!("eats {d}"),
                1 => format!("feeds mostly on {d}"),
                2 => format!("lives on a diet of {d}"),
                _ => format!("forages for {d}"),
            }
        }
        Attribute::Call => {
            let (verb, noun, _) = CALLS[v];
            match rng.below(3) {
                0 => format!("{verb} at dusk"),
                1 => format!("is known for its {noun}"),
                _ => format!("{verb} when alarmed"),
            }
        }
        Attribute::Region => {
            let r = &regions[v];
            match rng.below(3) {
                0 => format!("is native to {r}"),
                1 => format!("comes from {r}"),
                _ => format!("was first recorded in {r}"),
            }
        }
        _ => unreachable!("adjective attributes have no verb phrase"),
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

    let word = |a: Attribute| stated.get(&a).map(|&v| value_word(regions, a, v).to_string());
    let (size, pattern, colour) = (word(Attribute::Size), word(Attribute::Pattern), word(Attribute::Colour));
    let first = first_sentence(rng, name, noun, c.covering, [size, pattern, colour]);

    let clauses: Vec<String> = attrs
        .iter()
        .filter(|a| !a.is_adjective())
        .map(|&a| verb_phrase(rng, regions, a, c.values[a.index()]))
        .collect();
    let mut sentences = vec![first];
    sentences.extend(clause_sentences(rng, name, noun, clauses));
    sentences.extend(filler(rng, 35));
    Passage {
        id: String::new(),
        title: name.clone(),
        text: sentences.join(" "),
        creature: Some(index),
        stated,
        excluded: BTreeMap::new(),
    }
}

pub(super) fn distractor_passage(rng: &mut Rng, regions: &[String], creatures: &[Creature]) -> Passage {
    let r = rng.pick(regions).clone();
    let h1 = *rng.pick(&HABITATS);
    let h2 = *rng.pick(&HABITATS);
    let d = *rng.pick(&DIETS);
    let (_, call, base) = *rng.pick(&CALLS);
    let colour = *rng.pick(&COLOURS);
    let pattern = *rng.pick(&PATTERNS);
    let size = *rng.pick(&SIZES);
    let other = &rng.pick(creatures).name;
    let (title, text) = match rng.below(4) {
        0 => (
            r.clone(),
            format!(
                "{r} is a land of {h1} and {h2}. Travellers there meet creatures that eat {d} and others that {base}."
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
        asked.iter().filter(|(a, _)| a.is_adjective()).map(|(a, v)| value_word(regions, *a, *v)).collect();
    np.push(noun);
    let np = np.join(" ");
    let vps: Vec<String> = asked
        .iter()
        .filter(|(a, _)| !a.is_adjective())
        .map(|(a, v)| match a {
            Attribute::Habitat => format!("lives in the {}", HABITATS[*v]),
            Attribute::Diet => format!("eats {}", DIETS[*v]),
            Attribute::Call => CALLS[*v].0.to_string(),
            Attribute::Region => format!("comes from {}", regions[*v]),
            _ => unreachable!(),
        })
        .collect();
    query_frame(rng, &np, &vps)
}

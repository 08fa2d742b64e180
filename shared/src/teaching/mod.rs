//! A teaching set: a small, invented retrieval world in which *moderate relevance* can be seen
//! with the naked eye, for a class on ADAM's dark examples.
//!
//! **The world.** Invented creatures (names built from syllables) each have seven attributes:
//! size, pattern, colour, habitat, diet, call and home region (regions have invented names too).
//! A *creature passage* describes one creature through three to five of its attributes, in varied
//! sentences ("The Brelloth is a small striped creature. It lives in the marsh and feeds on
//! berries."); a creature may have two passages that state different attributes. *Distractor
//! passages* (travel notes about regions, rumours about a creature) use the same words without
//! describing any single creature.
//!
//! That is the **lexical** world (the demo's, [`World::Lexical`]): one word per value, asked and
//! stated in the same form. The **paraphrase** world ([`World::Paraphrase`], `paraphrase.rs`)
//! writes each value in one of three forms and adds values that are not the creature's, so that
//! word overlap neither makes nor proves relevance.
//!
//! **Queries** ask for two or three attribute values of one creature passage ("which striped
//! creature lives in the marsh and eats berries"). Every attribute combination is asked at most
//! once; the train, dev and test queries are disjoint.
//!
//! **Judgements.** For a query asking `k` values, a creature passage is
//! - **relevant, grade 2**, if it states all `k` values (every split);
//! - **partial, grade 1**, if it states `k - 1` of them and does not mention the remaining
//!   attribute at all (the creature *might* match; nothing contradicts it). Grade-1 judgements
//!   are written for the dev and test splits only, so that training data mined with the default
//!   threshold never treats a partial match as a positive, while evaluation (nDCG's graded
//!   gains) rewards ranking partial matches above non-matches. Use `--rel-threshold 2` for the
//!   binary measures and for mining negatives on dev/test.
//! - A passage that contradicts an asked value (states another one, or rules it out: "it never
//!   eats fish"), misses two, or is a distractor is not judged (irrelevant).
//!
//! Everything is computed from a [`SplitMix64`] seeded with [`TeachingConfig::seed`] and uses no
//! floating point, so one seed gives byte-identical files on every machine and in the browser.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::dark::SplitMix64;

mod lexical;
mod paraphrase;

/// Sizes and seed of a teaching set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeachingConfig {
    pub seed: u64,
    /// Passages in the corpus (creature passages and about one in eight distractors).
    pub passages: usize,
    pub train_queries: usize,
    pub dev_queries: usize,
    pub test_queries: usize,
    /// How values are written (see [`World`]).
    pub world: World,
    /// Percent of creature passages followed by a *near twin*: a passage about another creature
    /// that differs in one stated value, written with the same draws (so the texts differ in
    /// little more than that value), half the time naming the first creature's value in a sentence
    /// that rules it out or gives it to the first creature. Extra passages, for worlds that train
    /// a teacher (a minimal pair teaches which value belongs to whom); paraphrase world only.
    pub twin_percent: usize,
}

/// How the world writes attribute values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum World {
    /// One word per value, asked and stated in the same form: BM25's world (the demo's).
    #[default]
    Lexical,
    /// Several surface forms per value, drawn independently by queries and passages, plus
    /// negations and mentions of other creatures: word overlap neither necessary nor sufficient.
    Paraphrase,
}

impl World {
    pub fn name(self) -> &'static str {
        match self {
            World::Lexical => "lexical",
            World::Paraphrase => "paraphrase",
        }
    }
}

impl Default for TeachingConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            passages: 2000,
            train_queries: 1000,
            dev_queries: 200,
            test_queries: 200,
            world: World::Lexical,
            twin_percent: 0,
        }
    }
}

/// The attributes of a creature, in the order adjectives are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attribute {
    Size,
    Pattern,
    Colour,
    Habitat,
    Diet,
    Call,
    Region,
}

impl Attribute {
    pub const ALL: [Attribute; 7] = [
        Attribute::Size,
        Attribute::Pattern,
        Attribute::Colour,
        Attribute::Habitat,
        Attribute::Diet,
        Attribute::Call,
        Attribute::Region,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attribute::Size => "size",
            Attribute::Pattern => "pattern",
            Attribute::Colour => "colour",
            Attribute::Habitat => "habitat",
            Attribute::Diet => "diet",
            Attribute::Call => "call",
            Attribute::Region => "region",
        }
    }

    /// Size, pattern and colour are written as adjectives; the others as verb phrases.
    fn is_adjective(self) -> bool {
        matches!(self, Attribute::Size | Attribute::Pattern | Attribute::Colour)
    }

    fn index(self) -> usize {
        self as usize
    }
}

const SIZES: [&str; 5] = ["tiny", "small", "mid-sized", "large", "enormous"];
const PATTERNS: [&str; 6] = ["striped", "spotted", "speckled", "banded", "mottled", "ringed"];
const COLOURS: [&str; 10] = ["red", "orange", "yellow", "green", "blue", "purple", "grey", "black", "white", "golden"];
const HABITATS: [&str; 10] =
    ["marsh", "forest", "desert", "tundra", "reef", "caves", "meadows", "cliffs", "rivers", "mountains"];
const DIETS: [&str; 10] =
    ["berries", "insects", "fish", "roots", "seeds", "mushrooms", "moss", "nectar", "leaves", "snails"];
/// (verb, noun, base form) of each call.
const CALLS: [(&str, &str, &str); 8] = [
    ("hums", "hum", "hum"),
    ("whistles", "whistle", "whistle"),
    ("croaks", "croak", "croak"),
    ("chirps", "chirp", "chirp"),
    ("growls", "growl", "growl"),
    ("clicks", "click", "click"),
    ("hisses", "hiss", "hiss"),
    ("sings", "song", "sing"),
];
const REGIONS: usize = 6;
const NOUNS: [&str; 3] = ["creature", "animal", "beast"];
const COVERINGS: [&str; 4] = ["fur", "feathers", "scales", "a shell"];

const ONSETS: [&str; 22] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "gr", "kr", "tr", "th", "sh", "qu",
    "st",
];
const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ai", "ou", "y"];
const CODAS: [&str; 9] = ["", "", "", "n", "r", "l", "s", "k", "th"];

/// A creature: a name and one value index per attribute (in [`Attribute::ALL`] order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creature {
    pub name: String,
    pub values: [usize; 7],
    covering: usize,
}

/// A passage of the corpus. `creature` is `None` for distractors; `stated` holds the attribute
/// values the text states (empty for distractors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub id: String,
    pub title: String,
    pub text: String,
    pub creature: Option<usize>,
    pub stated: BTreeMap<Attribute, usize>,
    /// Values the text rules out ("it never eats fish") for attributes it does not state.
    pub excluded: BTreeMap<Attribute, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// A query: the attribute values it asks for, its split and its judgements (passage index →
/// grade; grade 1 only outside train).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeachingQuery {
    pub id: String,
    pub text: String,
    pub split: Split,
    pub asked: BTreeMap<Attribute, usize>,
    pub judgements: BTreeMap<usize, i32>,
}

/// A generated teaching set.
#[derive(Debug, Clone)]
pub struct TeachingSet {
    pub config: TeachingConfig,
    pub regions: Vec<String>,
    pub creatures: Vec<Creature>,
    pub passages: Vec<Passage>,
    pub queries: Vec<TeachingQuery>,
}

/// Every way `world` writes a value (the lexical world: its word, and a call's noun).
fn forms(world: World, regions: &[String], attr: Attribute, v: usize) -> Vec<String> {
    match world {
        World::Lexical if attr == Attribute::Call => vec![CALLS[v].0.to_string(), CALLS[v].1.to_string()],
        World::Lexical => vec![value_word(regions, attr, v).to_string()],
        World::Paraphrase => paraphrase::forms(regions, attr, v),
    }
}

/// The text of a value of an attribute (the call's verb form).
fn value_word(regions: &[String], attr: Attribute, v: usize) -> &str {
    match attr {
        Attribute::Size => SIZES[v],
        Attribute::Pattern => PATTERNS[v],
        Attribute::Colour => COLOURS[v],
        Attribute::Habitat => HABITATS[v],
        Attribute::Diet => DIETS[v],
        Attribute::Call => CALLS[v].0,
        Attribute::Region => &regions[v],
    }
}

fn cardinality(attr: Attribute) -> usize {
    match attr {
        Attribute::Size => SIZES.len(),
        Attribute::Pattern => PATTERNS.len(),
        Attribute::Colour => COLOURS.len(),
        Attribute::Habitat => HABITATS.len(),
        Attribute::Diet => DIETS.len(),
        Attribute::Call => CALLS.len(),
        Attribute::Region => REGIONS,
    }
}

#[derive(Clone)]
struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// A new creature's name: two syllables, three for two creatures in five.
fn creature_name(rng: &mut Rng, taken: &mut BTreeSet<String>) -> String {
    let syllables = 2 + usize::from(rng.chance(40));
    invent_name(rng, syllables, "", taken)
}

/// A new invented word of `syllables` syllables that is not in `taken`.
fn invent_name(rng: &mut Rng, syllables: usize, suffix: &str, taken: &mut BTreeSet<String>) -> String {
    loop {
        let mut w = String::new();
        for i in 0..syllables {
            w.push_str(ONSETS[rng.below(ONSETS.len())]);
            w.push_str(VOWELS[rng.below(VOWELS.len())]);
            if i + 1 == syllables || rng.chance(30) {
                w.push_str(CODAS[rng.below(CODAS.len())]);
            }
        }
        w.push_str(suffix);
        let w = capitalize(&w);
        if taken.insert(w.clone()) {
            return w;
        }
    }
}

/// Joins phrases as "a", "a and b", "a, b and c".
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl TeachingSet {
    /// Generates the world, passages, queries and judgements for `config`.
    pub fn generate(config: &TeachingConfig) -> Result<Self, String> {
        if config.passages < 20 {
            return Err(format!("a teaching set needs at least 20 passages, not {}", config.passages));
        }
        let total_queries = config.train_queries + config.dev_queries + config.test_queries;
        if total_queries == 0 {
            return Err("a teaching set needs at least one query".into());
        }
        if config.twin_percent > 0 && config.world != World::Paraphrase {
            return Err("near twins (twin_percent) exist only in the paraphrase world".into());
        }
        let mut rng = Rng(SplitMix64::new(config.seed));
        let mut taken = BTreeSet::new();
        let regions: Vec<String> = (0..REGIONS).map(|_| invent_name(&mut rng, 2, "ia", &mut taken)).collect();

        let distractors = config.passages / 8;
        let creature_passages = config.passages - distractors;
        // About one creature in two gets a second passage.
        let n_creatures = (creature_passages * 2).div_ceil(3);
        let mut creatures: Vec<Creature> = (0..n_creatures)
            .map(|_| {
                let name = creature_name(&mut rng, &mut taken);
                let mut values = [0; 7];
                for attr in Attribute::ALL {
                    values[attr.index()] = rng.below(cardinality(attr));
                }
                Creature { name, values, covering: rng.below(COVERINGS.len()) }
            })
            .collect();

        let mut passages: Vec<Passage> = Vec::with_capacity(config.passages);
        for c in 0..creature_passages {
            // Every creature first, then second passages for random ones.
            let creature = if c < n_creatures { c } else { rng.below(n_creatures) };
            let before = rng.clone();
            passages.push(match config.world {
                World::Lexical => lexical::creature_passage(&mut rng, &regions, &creatures, creature),
                World::Paraphrase => paraphrase::creature_passage(&mut rng, &regions, &creatures, creature),
            });
            if config.twin_percent > 0 && rng.chance(config.twin_percent) {
                let stated = &passages.last().expect("just pushed").stated;
                let twin =
                    paraphrase::near_twin(&mut rng, before, &regions, &mut creatures, creature, stated, &mut taken);
                passages.push(twin);
            }
        }
        for _ in 0..distractors {
            passages.push(match config.world {
                World::Lexical => lexical::distractor_passage(&mut rng, &regions, &creatures),
                World::Paraphrase => paraphrase::distractor_passage(&mut rng, &regions, &creatures),
            });
        }
        rng.shuffle(&mut passages);
        let width = config.passages.to_string().len().max(4);
        for (i, p) in passages.iter_mut().enumerate() {
            p.id = format!("p{:0width$}", i + 1);
        }

        let creature_idx: Vec<usize> = (0..passages.len()).filter(|&i| passages[i].creature.is_some()).collect();
        let mut seen: BTreeSet<Vec<(Attribute, usize)>> = BTreeSet::new();
        let mut queries = Vec::with_capacity(total_queries);
        let mut attempts = 0usize;
        while queries.len() < total_queries {
            attempts += 1;
            if attempts > total_queries * 50 {
                return Err(format!(
                    "could only make {} distinct queries from {} passages: ask for fewer queries or more passages",
                    queries.len(),
                    config.passages
                ));
            }
            let source = &passages[*rng.pick(&creature_idx)];
            let k = if rng.chance(55) { 3 } else { 2 };
            let mut attrs: Vec<Attribute> = source.stated.keys().copied().collect();
            rng.shuffle(&mut attrs);
            attrs.truncate(k);
            let asked: BTreeMap<Attribute, usize> = attrs.iter().map(|a| (*a, source.stated[a])).collect();
            if !seen.insert(asked.iter().map(|(a, v)| (*a, *v)).collect()) {
                continue;
            }
            let n = queries.len();
            let (split, number) = if n < config.train_queries {
                (Split::Train, n)
            } else if n < config.train_queries + config.dev_queries {
                (Split::Dev, n - config.train_queries)
            } else {
                (Split::Test, n - config.train_queries - config.dev_queries)
            };
            let text = match config.world {
                World::Lexical => lexical::query_text(&mut rng, &regions, &asked),
                World::Paraphrase => paraphrase::query_text(&mut rng, &regions, &asked),
            };
            let judgements = judge(&passages, &asked, split != Split::Train);
            queries.push(TeachingQuery {
                id: format!("{}-{:04}", split.name(), number + 1),
                text,
                split,
                asked,
                judgements,
            });
        }
        Ok(Self { config: config.clone(), regions, creatures, passages, queries })
    }

    /// Corpus passages and query texts, in file order: the text a tokenizer is trained on.
    pub fn texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = self.passages.iter().map(|p| format!("{} {}", p.title, p.text)).collect();
        texts.extend(self.queries.iter().map(|q| q.text.clone()));
        texts
    }

    /// The BEIR files of the set: `corpus.jsonl`, `queries.jsonl`, `qrels/{train,dev,test}.tsv`
    /// and `README.md`, as (relative path, content).
    pub fn files(&self) -> Vec<(String, String)> {
        #[derive(Serialize)]
        struct Doc<'a> {
            _id: &'a str,
            title: &'a str,
            text: &'a str,
        }
        #[derive(Serialize)]
        struct Q<'a> {
            _id: &'a str,
            text: &'a str,
        }
        let mut corpus = String::new();
        for p in &self.passages {
            let line = serde_json::to_string(&Doc { _id: &p.id, title: &p.title, text: &p.text }).expect("json");
            corpus.push_str(&line);
            corpus.push('\n');
        }
        let mut queries = String::new();
        for q in &self.queries {
            queries.push_str(&serde_json::to_string(&Q { _id: &q.id, text: &q.text }).expect("json"));
            queries.push('\n');
        }
        let mut files = vec![("corpus.jsonl".to_string(), corpus), ("queries.jsonl".to_string(), queries)];
        for split in Split::ALL {
            let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
            for q in self.queries.iter().filter(|q| q.split == split) {
                let mut judged: Vec<(&usize, &i32)> = q.judgements.iter().collect();
                judged.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (p, grade) in judged {
                    let _ = writeln!(qrels, "{}\t{}\t{grade}", q.id, self.passages[*p].id);
                }
            }
            files.push((format!("qrels/{}.tsv", split.name()), qrels));
        }
        files.push(("README.md".to_string(), self.readme()));
        files
    }

    /// The world behind the text, one JSON object per line (`profiles.jsonl`): first every
    /// attribute with its values' forms, then each passage's creature with the values it states
    /// and rules out, then each query's asked values (value indices into the attribute's list).
    /// Privileged knowledge no retriever reads: a teacher may learn from it (METHOD.md §7.1).
    pub fn profiles(&self) -> String {
        let values = |m: &BTreeMap<Attribute, usize>| -> serde_json::Map<String, serde_json::Value> {
            m.iter().map(|(a, v)| (a.name().to_string(), serde_json::json!(v))).collect()
        };
        let mut out = String::new();
        for attr in Attribute::ALL {
            let forms: Vec<Vec<String>> =
                (0..cardinality(attr)).map(|v| forms(self.config.world, &self.regions, attr, v)).collect();
            let line = serde_json::json!({"attribute": attr.name(), "forms": forms});
            let _ = writeln!(out, "{line}");
        }
        for p in &self.passages {
            let creature = p.creature.map(|c| self.creatures[c].name.clone());
            let line = serde_json::json!({"passage": p.id, "creature": creature, "stated": values(&p.stated),
                "excluded": values(&p.excluded)});
            let _ = writeln!(out, "{line}");
        }
        for q in &self.queries {
            let line = serde_json::json!({"query": q.id, "asked": values(&q.asked)});
            let _ = writeln!(out, "{line}");
        }
        out
    }

    fn readme(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(s, "# Teaching set (seed {})\n", c.seed);
        let _ = writeln!(
            s,
            "An invented retrieval world made by `adam teaching-set`: no third-party text. \
             Same seed and sizes, same bytes.\n"
        );
        let _ = writeln!(s, "## The world\n");
        let _ = writeln!(
            s,
            "{} invented creatures, each with one value of every attribute below. {} passages: {} describe a \
             creature through three to five of its attributes (a creature may have two passages that state \
             different ones); {} are distractors (travel notes, rumours) that use the same words without \
             describing any single creature.\n",
            self.creatures.len(),
            self.passages.len(),
            self.passages.iter().filter(|p| p.creature.is_some()).count(),
            self.passages.iter().filter(|p| p.creature.is_none()).count(),
        );
        match c.world {
            World::Lexical => {
                let _ = writeln!(s, "World `lexical`: each value has one word, asked and stated in the same form.\n");
            }
            World::Paraphrase => {
                let _ = writeln!(
                    s,
                    "World `paraphrase`: each value has three forms (`red / crimson / scarlet`), and a query and a \
                     passage pick theirs independently, so a passage can match without sharing the query's words. \
                     Passages also name values that are not their creature's: another creature's (\"it is often \
                     confused with the crimson Quorl\"), a value on the side (\"eats fungi but never fish\") or ruled \
                     out (\"it will not touch fish\"; a ruled-out value contradicts a query that asks for it), so \
                     sharing the query's words is not enough either.\n"
                );
            }
        }
        let _ = writeln!(s, "| attribute | values |\n|---|---|");
        for attr in Attribute::ALL {
            let values: Vec<String> =
                (0..cardinality(attr)).map(|v| forms(c.world, &self.regions, attr, v).join(" / ")).collect();
            let _ = writeln!(s, "| {} | {} |", attr.name(), values.join(", "));
        }
        let _ = writeln!(s, "\n## Queries and judgements\n");
        let _ = writeln!(
            s,
            "Each query asks for two or three attribute values of one creature passage; no combination is \
             asked twice, and the splits share no query. A passage is **relevant (grade 2)** if it states every \
             asked value, and **partial (grade 1)** if it states all but one and does not mention the last \
             attribute at all. Grade-1 judgements are in `qrels/dev.tsv` and `qrels/test.tsv` only. Use \
             `--rel-threshold 2` for binary measures (`adam eval`) and for `adam negatives` on dev or test.\n"
        );
        let _ = writeln!(s, "| split | queries | relevant / query | partial / query |\n|---|---|---|---|");
        for split in Split::ALL {
            let qs: Vec<&TeachingQuery> = self.queries.iter().filter(|q| q.split == split).collect();
            let count = |g: i32| qs.iter().map(|q| q.judgements.values().filter(|&&x| x == g).count()).sum::<usize>();
            let per = |n: usize| {
                if qs.is_empty() { "-".to_string() } else { format!("{:.1}", n as f64 / qs.len() as f64) }
            };
            let partial = if split == Split::Train { "(not judged)".to_string() } else { per(count(1)) };
            let _ = writeln!(s, "| {} | {} | {} | {} |", split.name(), qs.len(), per(count(2)), partial);
        }
        if let Some(q) = self.queries.iter().find(|q| q.split == Split::Test) {
            let _ = writeln!(s, "\n## Example (`{}`)\n", q.id);
            let _ = writeln!(s, "Query: *{}*\n", q.text);
            for grade in [2, 1] {
                if let Some((p, _)) = q.judgements.iter().find(|(_, g)| **g == grade) {
                    let p = &self.passages[*p];
                    let label = if grade == 2 { "relevant" } else { "partial" };
                    let _ = writeln!(s, "- {label} (grade {grade}), `{}`: {}", p.id, p.text);
                }
            }
        }
        let _ = writeln!(
            s,
            "\n## Files\n\n`corpus.jsonl`, `queries.jsonl`, `qrels/{{train,dev,test}}.tsv` (BEIR layout) and \
             `tokenizer.json` (a WordPiece vocabulary trained on this corpus and its queries)."
        );
        s
    }
}

/// The first sentence of a creature passage: its name, size and noun, with pattern and colour
/// on the creature or on its covering (40 %). Both worlds write it so, in the same draws.
fn first_sentence(
    rng: &mut Rng,
    name: &str,
    noun: &str,
    covering: usize,
    [size, pattern, colour]: [Option<String>; 3],
) -> String {
    let on_covering = (pattern.is_some() || colour.is_some()) && rng.chance(40);
    let mut np: Vec<String> = Vec::new();
    np.extend(size);
    if !on_covering {
        np.extend(pattern.clone());
        np.extend(colour.clone());
    }
    np.push(noun.to_string());
    let np = np.join(" ");
    let mut first = match rng.below(3) {
        0 => format!("The {name} is {} {np}", article(&np)),
        1 => format!("Meet the {name}, {} {np}", article(&np)),
        _ => format!("Naturalists describe the {name} as {} {np}", article(&np)),
    };
    if on_covering {
        let covering = COVERINGS[covering];
        let looks: Vec<String> = pattern.iter().chain(colour.iter()).cloned().collect();
        if covering == "a shell" {
            let _ = write!(first, " with {} {} shell", article(&looks[0]), looks.join(" "));
        } else {
            let _ = write!(first, " with {} {covering}", looks.join(" "));
        }
    }
    first.push('.');
    first
}

/// The verb-phrase clauses of a creature passage, shuffled and grouped one or two to a sentence
/// under a varied subject.
fn clause_sentences(rng: &mut Rng, name: &str, noun: &str, mut clauses: Vec<String>) -> Vec<String> {
    rng.shuffle(&mut clauses);
    let mut sentences = Vec::new();
    let mut rest = clauses.as_slice();
    while !rest.is_empty() {
        let take = if rest.len() >= 2 && rng.chance(50) { 2 } else { 1 };
        let subject = match rng.below(3) {
            0 => "It".to_string(),
            1 => format!("The {name}"),
            _ => format!("This {noun}"),
        };
        sentences.push(format!("{subject} {}.", join_and(&rest[..take])));
        rest = &rest[take..];
    }
    sentences
}

/// With probability `percent`, a sentence that says nothing about any value.
fn filler(rng: &mut Rng, percent: usize) -> Option<String> {
    const FILLERS: [&str; 5] = [
        "Travellers rarely see it.",
        "It is shy around people.",
        "Little else is recorded about it.",
        "Its numbers are thought to be stable.",
        "Young ones stay close to their parents.",
    ];
    rng.chance(percent).then(|| rng.pick(&FILLERS).to_string())
}

/// A query from its noun phrase (adjectives and noun) and its verb phrases.
fn query_frame(rng: &mut Rng, np: &str, vps: &[String]) -> String {
    if vps.is_empty() {
        return match rng.below(3) {
            0 => format!("name {} {np}", article(np)),
            1 => format!("looking for {} {np}", article(np)),
            _ => format!("find {} {np}", article(np)),
        };
    }
    let vps = join_and(vps);
    match rng.below(4) {
        0 => format!("which {np} {vps}"),
        1 => format!("what {np} {vps}"),
        2 => format!("name the {np} that {vps}"),
        _ => format!("find {} {np} that {vps}", article(np)),
    }
}

/// Judges every passage for a query (see the module doc).
fn judge(passages: &[Passage], asked: &BTreeMap<Attribute, usize>, partial: bool) -> BTreeMap<usize, i32> {
    let k = asked.len();
    let mut out = BTreeMap::new();
    for (i, p) in passages.iter().enumerate() {
        if p.creature.is_none() {
            continue;
        }
        let (mut matched, mut contradicted) = (0, 0);
        for (attr, v) in asked {
            match p.stated.get(attr) {
                Some(s) if s == v => matched += 1,
                Some(_) => contradicted += 1,
                None if p.excluded.get(attr) == Some(v) => contradicted += 1,
                None => {}
            }
        }
        match judgement(k, matched, contradicted) {
            2 => {
                out.insert(i, 2);
            }
            1 if partial => {
                out.insert(i, 1);
            }
            _ => {}
        }
    }
    out
}

/// The grade of a creature passage for a query asking `asked` values, of which the passage
/// states `matched` and contradicts `contradicted` (states another value of that attribute, or
/// rules the asked one out): 2 if it states every asked value, 1 (partial) if all but one and
/// it contradicts none, else 0.
pub fn judgement(asked: usize, matched: usize, contradicted: usize) -> i32 {
    if matched == asked {
        2
    } else if matched + 1 == asked && contradicted == 0 {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> TeachingConfig {
        TeachingConfig {
            seed: 7,
            passages: 300,
            train_queries: 60,
            dev_queries: 20,
            test_queries: 20,
            world: World::Lexical,
            twin_percent: 0,
        }
    }

    /// A near twin is another creature's passage that differs from the passage before it in one
    /// stated value, and the judgements (which read only the stated and excluded values) treat it
    /// as any other passage.
    #[test]
    fn near_twins_differ_from_their_original_in_one_stated_value() {
        let config = TeachingConfig { world: World::Paraphrase, twin_percent: 50, ..small() };
        let set = TeachingSet::generate(&config).unwrap();
        // As `generate` counts them: the creatures after these are twins.
        let first_twin = ((300 - 300 / 8) * 2usize).div_ceil(3);
        let twins: Vec<(&Passage, &Passage)> = set
            .passages
            .iter()
            .filter(|p| p.creature.is_some_and(|c| c >= first_twin))
            .map(|twin| {
                let values = set.creatures[twin.creature.unwrap()].values;
                let original = set
                    .passages
                    .iter()
                    .find(|p| {
                        p.creature.is_some_and(|c| {
                            p.stated.keys().eq(twin.stated.keys())
                                && set.creatures[c].values.iter().zip(values).filter(|(a, b)| **a != *b).count() == 1
                        })
                    })
                    .expect("a twin's original");
                (original, twin)
            })
            .collect();
        assert!(twins.len() > 60, "{} twins of ~130 expected", twins.len());
        for (original, twin) in &twins {
            let differing = original.stated.iter().filter(|(a, v)| twin.stated.get(a) != Some(v)).count();
            assert_eq!(differing, 1, "{}\n{}", original.text, twin.text);
        }
        // Same draws: most twins' first sentences differ from their original's in at most the name
        // and one value.
        let first = |t: &str| t.split(". ").next().unwrap().split(' ').map(str::to_string).collect::<Vec<_>>();
        let same_frame = twins
            .iter()
            .filter(|(o, t)| {
                let (a, b) = (first(&o.text), first(&t.text));
                a.len() == b.len() && a.iter().zip(&b).filter(|(x, y)| x != y).count() <= 2
            })
            .count();
        assert!(same_frame * 10 > twins.len() * 8, "{same_frame} of {}", twins.len());
        assert!(TeachingSet::generate(&TeachingConfig { twin_percent: 50, ..small() }).is_err());
    }

    #[test]
    fn same_seed_same_files_other_seed_other_files() {
        let a = TeachingSet::generate(&small()).unwrap().files();
        let b = TeachingSet::generate(&small()).unwrap().files();
        assert_eq!(a, b);
        let c = TeachingSet::generate(&TeachingConfig { seed: 8, ..small() }).unwrap().files();
        assert_ne!(a[0].1, c[0].1);
    }

    #[test]
    fn every_query_has_its_source_as_relevant_and_judgements_follow_the_rule() {
        for world in [World::Lexical, World::Paraphrase] {
            judgements_follow_the_rule(world);
        }
    }

    fn judgements_follow_the_rule(world: World) {
        let set = TeachingSet::generate(&TeachingConfig { world, ..small() }).unwrap();
        assert_eq!(set.passages.len(), 300);
        assert_eq!(set.queries.len(), 100);
        for q in &set.queries {
            assert!(q.judgements.values().any(|&g| g == 2), "{} has no relevant passage", q.id);
            for (&p, &g) in &q.judgements {
                let (stated, excluded) = (&set.passages[p].stated, &set.passages[p].excluded);
                let matched = q.asked.iter().filter(|(a, v)| stated.get(a) == Some(v)).count();
                let unknown = q.asked.keys().filter(|a| !stated.contains_key(a)).count();
                assert!(
                    q.asked.iter().all(|(a, v)| excluded.get(a) != Some(v)),
                    "{}: {p} rules out an asked value",
                    q.id
                );
                match g {
                    2 => assert_eq!(matched, q.asked.len()),
                    1 => {
                        assert_ne!(q.split, Split::Train);
                        assert_eq!((matched + 1, unknown), (q.asked.len(), 1));
                    }
                    _ => panic!("grade {g}"),
                }
            }
            // Every asked value appears in the query text, in one of its forms.
            for (a, v) in &q.asked {
                let forms = forms(world, &set.regions, *a, *v);
                assert!(forms.iter().any(|f| q.text.contains(f.as_str())), "{}: {}", q.id, q.text);
            }
        }
    }

    #[test]
    fn passages_state_their_values_in_words() {
        for world in [World::Lexical, World::Paraphrase] {
            let set = TeachingSet::generate(&TeachingConfig { world, ..small() }).unwrap();
            for p in set.passages.iter().filter(|p| p.creature.is_some()) {
                assert!((3..=5).contains(&p.stated.len()));
                for (a, v) in p.stated.iter().chain(&p.excluded) {
                    let forms = forms(world, &set.regions, *a, *v);
                    assert!(forms.iter().any(|f| p.text.contains(f.as_str())), "{a:?} {forms:?} not in {}", p.text);
                }
                if world == World::Lexical {
                    assert!(p.excluded.is_empty());
                }
            }
        }
    }

    /// The paraphrase world's point: a relevant passage often lacks the query's word for a value,
    /// and an irrelevant one often has every one of them.
    #[test]
    fn in_the_paraphrase_world_word_overlap_is_neither_necessary_nor_sufficient() {
        let words = |text: &str| -> BTreeSet<String> {
            text.split(|c: char| !c.is_alphanumeric() && c != '-').map(str::to_lowercase).collect()
        };
        for (world, shared_range, misleading_range) in
            [(World::Lexical, 0.9..=1.0, 0..=0), (World::Paraphrase, 0.6..=0.85, 20..=usize::MAX)]
        {
            let set = TeachingSet::generate(&TeachingConfig { world, ..TeachingConfig::default() }).unwrap();
            let passage_words: Vec<BTreeSet<String>> = set.passages.iter().map(|p| words(&p.text)).collect();
            let (mut shared, mut asked_values, mut misleading) = (0usize, 0usize, 0usize);
            for q in set.queries.iter().filter(|q| q.split == Split::Test) {
                // The query's word for each asked value (the form it used).
                let query_words = words(&q.text);
                let used: Vec<String> = q
                    .asked
                    .iter()
                    .filter_map(|(a, v)| {
                        forms(world, &set.regions, *a, *v)
                            .into_iter()
                            .find(|f| !f.contains(' ') && query_words.contains(f))
                    })
                    .collect();
                for (p, words) in passage_words.iter().enumerate() {
                    let has_all = used.iter().all(|w| words.contains(w));
                    match q.judgements.get(&p) {
                        Some(2) => {
                            asked_values += used.len();
                            shared += used.iter().filter(|w| words.contains(*w)).count();
                        }
                        None if has_all && set.passages[p].creature.is_some() && used.len() == q.asked.len() => {
                            misleading += 1
                        }
                        _ => {}
                    }
                }
            }
            let share = shared as f64 / asked_values as f64;
            assert!(
                shared_range.contains(&share),
                "{world:?}: relevant passages share {share:.2} of the query's value words"
            );
            assert!(
                misleading_range.contains(&misleading),
                "{world:?}: {misleading} irrelevant creature passages hold every asked word"
            );
        }
    }
}

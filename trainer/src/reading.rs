//! Reading labels: what a generated world's profiles (`adam teaching-set --profiles`) say about
//! each piece of a (query, passage) pair, for a teacher that learns to read before it ranks
//! (`adam teacher train --profiles`, METHOD.md §7.1). Only training sees them; the teacher it
//! makes is a plain cross-encoder.
//!
//! Three labels, each read by a linear head on one layer of the cross-encoder:
//! - *value* and *role* of every piece that writes an attribute value (any of its forms, so
//!   synonyms share a label): which value, and whether it is asked (a query's), the passage
//!   creature's own, or foreign (another creature's, ruled out, a distractor's);
//! - *match* of every query piece that writes a value: what the passage does with that
//!   attribute (states the asked value, contradicts it, leaves it unstated), the lookup a reader
//!   does before it judges;
//! - *states*, on the pooled vector: that lookup for every attribute (not asked when the query
//!   does not ask it), the judgement rule decomposed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use adam_core::config::BertConfig;
use adam_core::model::CrossEncoderModel;
use adam_core::teaching::{Attribute, judgement};

/// A piece's role: it writes no value, a value asked or stated of the creature, or a foreign one.
pub const NO_VALUE: i64 = 0;
pub const OWN: i64 = 1;
pub const FOREIGN: i64 = 2;
/// What a passage does with an asked attribute: not asked, states the asked value, contradicts
/// it (states another, or rules the asked one out), leaves it unstated.
pub const STATES: usize = 4;
/// A label no loss counts (special tokens, padding, pieces that write no value for `match`).
pub const IGNORED: i64 = -1;

#[derive(Debug, Clone, Default)]
struct PassageProfile {
    stated: [Option<usize>; 7],
    excluded: [Option<usize>; 7],
}

/// A world's profiles: every value's forms, what each passage states, what each query asks.
#[derive(Debug)]
pub struct Profiles {
    /// (lower-case words of a form, attribute, value), longest forms first.
    forms: Vec<(Vec<String>, usize, usize)>,
    /// Global id of each attribute's first value.
    offsets: [usize; 7],
    /// Values of every attribute together.
    pub values: usize,
    passages: HashMap<String, PassageProfile>,
    queries: HashMap<String, [Option<usize>; 7]>,
}

/// A value mention in a text: its byte span, attribute and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
    pub attribute: usize,
    pub value: usize,
}

/// Per-piece labels of one text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PieceLabels {
    /// 1 + global value id, or 0.
    pub value: Vec<i64>,
    pub role: Vec<i64>,
    /// The attribute of each piece that writes a value.
    pub attribute: Vec<Option<usize>>,
}

fn attribute_index(name: &str) -> Option<usize> {
    Attribute::ALL.iter().position(|a| a.name() == name)
}

impl Profiles {
    /// Reads `profiles.jsonl`; a bad line is an error naming file, line and field.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut by_attribute: Vec<Option<Vec<Vec<String>>>> = vec![None; 7];
        let mut passages = HashMap::new();
        let mut queries = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let at = || format!("{} line {}", path.display(), n + 1);
            if line.trim().is_empty() {
                continue;
            }
            let row: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
            let values = |field: &str| -> Result<[Option<usize>; 7]> {
                let mut out = [None; 7];
                let Some(map) = row.get(field).and_then(|v| v.as_object()) else {
                    bail!("{}: field `{field}` must be an object of attribute → value index", at());
                };
                for (name, v) in map {
                    let a = attribute_index(name)
                        .with_context(|| format!("{}: field `{field}`: unknown attribute `{name}`", at()))?;
                    let v = v
                        .as_u64()
                        .with_context(|| format!("{}: field `{field}.{name}` must be a value index", at()))?;
                    out[a] = Some(v as usize);
                }
                Ok(out)
            };
            if let Some(name) = row.get("attribute").and_then(|v| v.as_str()) {
                let a = attribute_index(name).with_context(|| format!("{}: unknown attribute `{name}`", at()))?;
                let forms: Vec<Vec<String>> = serde_json::from_value(row.get("forms").cloned().unwrap_or_default())
                    .with_context(|| format!("{}: field `forms` must be a list of lists of strings", at()))?;
                by_attribute[a] = Some(forms);
            } else if let Some(id) = row.get("passage").and_then(|v| v.as_str()) {
                passages.insert(
                    id.to_string(),
                    PassageProfile { stated: values("stated")?, excluded: values("excluded")? },
                );
            } else if let Some(id) = row.get("query").and_then(|v| v.as_str()) {
                queries.insert(id.to_string(), values("asked")?);
            } else {
                bail!("{}: a line needs `attribute`, `passage` or `query`", at());
            }
        }
        let mut offsets = [0; 7];
        let mut values = 0;
        let mut seen: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (a, forms) in by_attribute.iter().enumerate() {
            let forms = forms.as_ref().with_context(|| {
                format!("{}: no line gives the forms of `{}`", path.display(), Attribute::ALL[a].name())
            })?;
            offsets[a] = values;
            values += forms.len();
            for (v, written) in forms.iter().enumerate() {
                for form in written {
                    seen.entry(form.to_lowercase()).or_default().push((a, v));
                }
            }
        }
        // A form two values share says nothing about which: left unlabelled.
        let mut forms: Vec<(Vec<String>, usize, usize)> = seen
            .into_iter()
            .filter(|(_, owners)| owners.len() == 1)
            .map(|(form, owners)| (words(&form).into_iter().map(|(_, _, w)| w).collect(), owners[0].0, owners[0].1))
            .collect();
        forms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(Self { forms, offsets, values, passages, queries })
    }

    /// Every value form in `text`, left to right, the longest at each word.
    pub fn mentions(&self, text: &str) -> Vec<Mention> {
        let words = words(text);
        let mut out = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let hit = self.forms.iter().find(|(form, _, _)| {
                i + form.len() <= words.len() && form.iter().zip(&words[i..]).all(|(f, w)| *f == w.2)
            });
            match hit {
                Some((form, a, v)) => {
                    out.push(Mention { start: words[i].0, end: words[i + form.len() - 1].1, attribute: *a, value: *v });
                    i += form.len();
                }
                None => i += 1,
            }
        }
        out
    }

    /// Labels of a text's pieces (`offsets`: each piece's byte span in `text`). `own(attribute,
    /// value)` tells whether a mention is asked or the creature's own.
    fn label(&self, text: &str, offsets: &[(usize, usize)], own: impl Fn(usize, usize) -> bool) -> PieceLabels {
        let mentions = self.mentions(text);
        let mut labels = PieceLabels::default();
        for &(s, e) in offsets {
            match mentions.iter().find(|m| m.start <= s && e <= m.end && s < e) {
                Some(m) => {
                    labels.value.push(1 + (self.offsets[m.attribute] + m.value) as i64);
                    labels.role.push(if own(m.attribute, m.value) { OWN } else { FOREIGN });
                    labels.attribute.push(Some(m.attribute));
                }
                None => {
                    labels.value.push(0);
                    labels.role.push(NO_VALUE);
                    labels.attribute.push(None);
                }
            }
        }
        labels
    }

    /// Labels of a query's pieces: every value it writes is asked.
    pub fn query_labels(&self, text: &str, offsets: &[(usize, usize)]) -> PieceLabels {
        self.label(text, offsets, |_, _| true)
    }

    /// Labels of a passage's pieces; an error if the profiles do not know the passage.
    pub fn passage_labels(&self, id: &str, text: &str, offsets: &[(usize, usize)]) -> Result<PieceLabels> {
        let p = self.passages.get(id).with_context(|| format!("profiles.jsonl has no passage `{id}`"))?;
        Ok(self.label(text, offsets, |a, v| p.stated[a] == Some(v)))
    }

    /// Per attribute, what the passage does with the query's asked value (see [`STATES`]).
    pub fn states(&self, query: &str, passage: &str) -> Result<[i64; 7]> {
        let asked = self.queries.get(query).with_context(|| format!("profiles.jsonl has no query `{query}`"))?;
        let p = self.passages.get(passage).with_context(|| format!("profiles.jsonl has no passage `{passage}`"))?;
        let mut out = [0; 7];
        for a in 0..7 {
            out[a] = match (asked[a], p.stated[a]) {
                (None, _) => 0,
                (Some(v), Some(s)) if s == v => 1,
                (Some(_), Some(_)) => 2,
                (Some(v), None) if p.excluded[a] == Some(v) => 2,
                (Some(_), None) => 3,
            };
        }
        Ok(out)
    }
}

/// The grade of a pair from its [`Profiles::states`], by the teaching set's rule
/// ([`judgement`]).
pub fn grade(states: &[i64; 7]) -> i64 {
    let count = |state: i64| states.iter().filter(|&&s| s == state).count();
    let asked = states.iter().filter(|&&s| s != 0).count();
    i64::from(judgement(asked, count(1), count(2)))
}

/// Words as the world's forms are matched: maximal runs of letters, digits, `_` and `-`, with
/// their byte spans, lower-cased.
fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        let word = c.is_alphanumeric() || c == '_' || c == '-';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i, text[s..i].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The reading heads: linear layers on the cross-encoder's token vectors (value and role on
/// `--tag-layer`, match on `--match-layer`) and on its pooled vector (each attribute's state,
/// the judgement rule decomposed).
#[derive(Module, Debug)]
pub struct ReadingHeads {
    pub value: Linear,
    pub role: Linear,
    pub matched: Linear,
    pub states: Linear,
}

/// A cross-encoder with its reading heads, as it trains.
#[derive(Module, Debug)]
pub struct ReadingTeacher {
    pub teacher: CrossEncoderModel,
    pub heads: ReadingHeads,
}

impl ReadingTeacher {
    pub fn new(teacher: CrossEncoderModel, config: &BertConfig, values: usize, device: &Device) -> Self {
        let h = config.hidden_size;
        let linear = |n| LinearConfig::new(h, n).with_initializer(config.initializer()).init(device);
        let heads = ReadingHeads {
            value: linear(values + 1),
            role: linear(3),
            matched: linear(STATES),
            states: linear(Attribute::ALL.len() * STATES),
        };
        Self { teacher, heads }
    }
}

crate::train_loop::bare_trainee!(ReadingTeacher);

/// Mean cross-entropy of `logits` `[n, classes]` against `targets` (`[n]`, [`IGNORED`] where no
/// label counts); 0 when none counts.
pub fn masked_cross_entropy(logits: Tensor<2>, targets: &[i64], device: &Device) -> Tensor<1> {
    let n = targets.len();
    let counted = targets.iter().filter(|&&t| t != IGNORED).count();
    let picked = Tensor::<1, Int>::from_data(
        TensorData::new(targets.iter().map(|&t| t.max(0)).collect::<Vec<i64>>(), [n]),
        device,
    );
    let weights = Tensor::<1>::from_data(
        TensorData::new(targets.iter().map(|&t| if t == IGNORED { 0.0f32 } else { 1.0 }).collect::<Vec<f32>>(), [n]),
        device,
    );
    let nll = log_softmax(logits, 1).gather(1, picked.reshape([n, 1])).reshape([n]).neg();
    (nll * weights).sum().div_scalar(counted.max(1) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Profiles {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.jsonl");
        let mut text = String::new();
        for a in Attribute::ALL.map(Attribute::name) {
            let forms = match a {
                "colour" => r#"[["red","crimson"],["green","emerald"]]"#,
                "habitat" => r#"[["marsh","swamp"],["tundra","frozen plains"]]"#,
                "size" => r#"[["mid-sized","middling"],["tiny","minute"]]"#,
                _ => r#"[["x"],["y"]]"#,
            };
            text.push_str(&format!("{{\"attribute\":\"{a}\",\"forms\":{forms}}}\n"));
        }
        text.push_str(r#"{"passage":"p1","creature":"Zot","stated":{"colour":0,"habitat":1},"excluded":{"size":1}}"#);
        text.push('\n');
        text.push_str(r#"{"query":"q1","asked":{"colour":0,"habitat":0,"size":1}}"#);
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        Profiles::read(&path).unwrap()
    }

    #[test]
    fn mentions_take_the_longest_form_and_whole_words_only() {
        let p = profiles();
        let text = "The Zot is a crimson mid-sized beast of the Frozen Plains, never the swampy marsh.";
        let found: Vec<(&str, usize, usize)> =
            p.mentions(text).iter().map(|m| (&text[m.start..m.end], m.attribute, m.value)).collect();
        assert_eq!(
            found,
            vec![("crimson", 2, 0), ("mid-sized", 0, 0), ("Frozen Plains", 3, 1), ("marsh", 3, 0)],
            "`swampy` is not `swamp`"
        );
    }

    #[test]
    fn roles_follow_the_profile_and_states_the_judgement_rule() {
        let p = profiles();
        let text = "The Zot is red, unlike the green Quorl. It lives in the tundra, never in the swamp.";
        let words = words(text);
        let offsets: Vec<(usize, usize)> = words.iter().map(|w| (w.0, w.1)).collect();
        let labels = p.passage_labels("p1", text, &offsets).unwrap();
        let named: Vec<(&str, i64, i64)> = words
            .iter()
            .zip(labels.value.iter().zip(&labels.role))
            .filter(|(_, (v, _))| **v > 0)
            .map(|(w, (v, r))| (&text[w.0..w.1], *v, *r))
            .collect();
        // Global ids: size 0–1, pattern 2–3, colour 4–5, habitat 6–7 (+1 in the labels).
        assert_eq!(named, vec![("red", 5, OWN), ("green", 6, FOREIGN), ("tundra", 8, OWN), ("swamp", 7, FOREIGN)]);
        // colour asked and stated: 1; habitat asked marsh, stated tundra: 2; size asked tiny,
        // ruled out: 2; the rest not asked.
        assert_eq!(p.states("q1", "p1").unwrap(), [2, 0, 1, 2, 0, 0, 0]);
        assert_eq!(grade(&[2, 0, 1, 2, 0, 0, 0]), 0);
        assert_eq!(grade(&[1, 0, 1, 0, 0, 0, 1]), 2);
        assert_eq!(grade(&[1, 0, 3, 0, 0, 0, 1]), 1, "one asked value unstated: partial");
        assert_eq!(grade(&[1, 0, 2, 0, 0, 0, 1]), 0, "one contradicted: no match");
        assert!(p.states("q1", "p9").unwrap_err().to_string().contains("p9"));
    }

    /// The profiles `adam teaching-set` writes judge every pair as its qrels do, and every value
    /// a passage states is written in its text as that creature's own.
    #[test]
    fn a_generated_worlds_profiles_agree_with_its_judgements_and_its_text() {
        use adam_core::teaching::{Split, TeachingConfig, TeachingSet, World};
        let config = TeachingConfig {
            seed: 5,
            passages: 300,
            train_queries: 30,
            dev_queries: 20,
            test_queries: 20,
            world: World::Paraphrase,
            twin_percent: 0,
        };
        let set = TeachingSet::generate(&config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.jsonl");
        std::fs::write(&path, set.profiles()).unwrap();
        let profiles = Profiles::read(&path).unwrap();
        let mut grades = [0usize; 3];
        for q in set.queries.iter().filter(|q| q.split != Split::Train) {
            for (i, p) in set.passages.iter().enumerate() {
                let g = grade(&profiles.states(&q.id, &p.id).unwrap());
                assert_eq!(g, i64::from(q.judgements.get(&i).copied().unwrap_or(0)), "{} {}", q.id, p.id);
                grades[g as usize] += 1;
            }
        }
        assert!(grades[1] > 0 && grades[2] > 0, "{grades:?}");
        let mut foreign = 0;
        for p in &set.passages {
            let text = format!("{} {}", p.title, p.text);
            let words = words(&text);
            let offsets: Vec<(usize, usize)> = words.iter().map(|w| (w.0, w.1)).collect();
            let labels = profiles.passage_labels(&p.id, &text, &offsets).unwrap();
            for (attr, v) in &p.stated {
                let a = attribute_index(attr.name()).unwrap();
                let id = 1 + (profiles.offsets[a] + v) as i64;
                let own = labels.value.iter().zip(&labels.role).any(|(&x, &r)| x == id && r == OWN);
                assert!(own, "{}: {attr:?} {v} not written as its own in {text}", p.id);
            }
            foreign += labels.role.iter().filter(|&&r| r == FOREIGN).count();
        }
        assert!(foreign > 100, "other creatures' and ruled-out values are labelled foreign: {foreign}");
    }

    #[test]
    fn a_bad_line_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.jsonl");
        std::fs::write(&path, "{\"passage\":\"p1\",\"stated\":{\"colour\":\"red\"},\"excluded\":{}}\n").unwrap();
        let err = format!("{:#}", Profiles::read(&path).unwrap_err());
        assert!(err.contains("profiles.jsonl line 1") && err.contains("stated.colour"), "{err}");
    }

    #[test]
    fn masked_cross_entropy_skips_ignored_labels() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 0.0, 0.0, 5.0, 1.0, 1.0], [3, 2]), &device);
        let loss: f32 = masked_cross_entropy(logits, &[0, IGNORED, 1], &device).into_scalar();
        let nll = |a: f32, b: f32| -(a - (a.exp() + b.exp()).ln());
        let want = (nll(2.0, 0.0) + nll(1.0, 1.0)) / 2.0;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    }
}

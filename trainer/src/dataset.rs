//! Datasets: a local folder in BEIR or MS MARCO layout, or a Hugging Face Hub dataset
//! (`owner/name`) downloaded into the Hub cache.
//!
//! | layout | corpus | queries | qrels of a split |
//! |---|---|---|---|
//! | BEIR | `corpus.jsonl[.gz]` | `queries.jsonl[.gz]` | `qrels/<split>.tsv` |
//! | MS MARCO | `collection.tsv[.gz]` | `queries.<split>.tsv[.gz]` | `qrels.<split>.tsv` (TREC 4 columns) or `qrels/<split>.tsv` |
//!
//! A folder with `collection.tsv[.gz]` is MS MARCO; anything else is read as BEIR. Any file may
//! be gzip-compressed (chosen by its `.gz` name).

use std::path::{Path, PathBuf};

use adam_core::data::{
    Document, Qrels, Query, for_each_collection_document, for_each_document, read_collection_tsv, read_corpus,
    read_qrels, read_queries, read_queries_tsv,
};
use anyhow::{Result, anyhow, bail};

use crate::io::open_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Beir,
    MsMarco,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Beir => "BEIR",
            Layout::MsMarco => "MS MARCO",
        }
    }
}

/// Where the files of one split of a dataset are; `None` where the folder has no such file.
#[derive(Debug, Clone)]
pub struct DatasetFiles {
    /// The folder (for a Hub dataset, its snapshot in the cache).
    pub root: PathBuf,
    pub layout: Layout,
    pub split: String,
    pub corpus: Option<PathBuf>,
    pub queries: Option<PathBuf>,
    pub qrels: Option<PathBuf>,
}

/// File names looked for, per layout and role (first found wins).
fn candidates(layout: Layout, split: &str) -> [Vec<String>; 3] {
    match layout {
        Layout::Beir => [
            vec!["corpus.jsonl".into(), "corpus.jsonl.gz".into()],
            vec!["queries.jsonl".into(), "queries.jsonl.gz".into()],
            vec![format!("qrels/{split}.tsv"), format!("qrels/{split}.tsv.gz")],
        ],
        Layout::MsMarco => [
            vec!["collection.tsv".into(), "collection.tsv.gz".into()],
            vec![format!("queries.{split}.tsv"), format!("queries.{split}.tsv.gz")],
            vec![format!("qrels.{split}.tsv"), format!("qrels.{split}.tsv.gz"), format!("qrels/{split}.tsv")],
        ],
    }
}

fn detect_layout(has: impl Fn(&str) -> bool) -> Layout {
    if has("collection.tsv") || has("collection.tsv.gz") { Layout::MsMarco } else { Layout::Beir }
}

impl DatasetFiles {
    /// Finds the files of `split` in a local folder.
    pub fn locate(root: &Path, split: &str) -> Self {
        let layout = detect_layout(|name| root.join(name).is_file());
        let find = |names: &[String]| names.iter().map(|n| root.join(n)).find(|p| p.is_file());
        let [corpus, queries, qrels] = candidates(layout, split);
        Self {
            root: root.to_path_buf(),
            layout,
            split: split.to_string(),
            corpus: find(&corpus),
            queries: find(&queries),
            qrels: find(&qrels),
        }
    }

    /// A local folder, or a Hugging Face Hub dataset name (`owner/name`) that is not a folder.
    pub fn resolve(data: &Path, split: &str) -> Result<Self> {
        if data.is_dir() {
            return Ok(Self::locate(data, split));
        }
        if data.exists() {
            bail!("--data {}: not a folder (expected a BEIR or MS MARCO folder)", data.display());
        }
        match data.to_str().filter(|s| is_hub_name(s)) {
            Some(name) => hub::download(name, split),
            None => bail!(
                "--data {}: no such folder (and not a Hugging Face Hub dataset name `owner/name`)",
                data.display()
            ),
        }
    }

    fn missing(&self, role: &str) -> anyhow::Error {
        let idx = match role {
            "corpus" => 0,
            "queries" => 1,
            _ => 2,
        };
        let names = candidates(self.layout, &self.split)[idx].join(" or ");
        anyhow!(
            "{}: no {role} file for split `{}` ({} layout: expected {names})",
            self.root.display(),
            self.split,
            self.layout.name()
        )
    }

    pub fn corpus_path(&self) -> Result<&Path> {
        self.corpus.as_deref().ok_or_else(|| self.missing("corpus"))
    }

    pub fn queries_path(&self) -> Result<&Path> {
        self.queries.as_deref().ok_or_else(|| self.missing("queries"))
    }

    pub fn qrels_path(&self) -> Result<&Path> {
        self.qrels.as_deref().ok_or_else(|| self.missing("qrels"))
    }

    pub fn read_corpus(&self) -> Result<Vec<Document>> {
        let path = self.corpus_path()?;
        Ok(match self.layout {
            Layout::Beir => read_corpus(open_text(path)?, path)?,
            Layout::MsMarco => read_collection_tsv(open_text(path)?, path)?,
        })
    }

    /// Calls `f` with each document of the corpus in file order, holding one at a time (the
    /// streaming twin of [`Self::read_corpus`]); stops at the first error, `f`'s or the file's.
    pub fn for_each_document(&self, mut f: impl FnMut(Document) -> Result<()>) -> Result<()> {
        let path = self.corpus_path()?;
        let mut failed: Option<anyhow::Error> = None;
        let read = {
            // The reader wants adam-core's error; `f`'s own is kept aside and returned as it is.
            let mut call = |doc: Document| {
                f(doc).map_err(|e| {
                    failed = Some(e);
                    adam_core::Error::Invalid("stopped".into())
                })
            };
            match self.layout {
                Layout::Beir => for_each_document(open_text(path)?, path, &mut call),
                Layout::MsMarco => for_each_collection_document(open_text(path)?, path, &mut call),
            }
        };
        match failed {
            Some(e) => Err(e),
            None => Ok(read?),
        }
    }

    pub fn read_queries(&self) -> Result<Vec<Query>> {
        let path = self.queries_path()?;
        Ok(match self.layout {
            Layout::Beir => read_queries(open_text(path)?, path)?,
            Layout::MsMarco => read_queries_tsv(open_text(path)?, path)?,
        })
    }

    pub fn read_qrels(&self) -> Result<Qrels> {
        let path = self.qrels_path()?;
        Ok(read_qrels(open_text(path)?, path)?)
    }
}

/// A whole split in memory.
pub struct Dataset {
    pub files: DatasetFiles,
    pub corpus: Vec<Document>,
    pub queries: Vec<Query>,
    pub qrels: Qrels,
}

impl Dataset {
    pub fn load(data: &Path, split: &str) -> Result<Self> {
        let files = DatasetFiles::resolve(data, split)?;
        // Check all three are there before reading a large corpus.
        files.corpus_path()?;
        files.queries_path()?;
        files.qrels_path()?;
        let qrels = files.read_qrels()?;
        let queries = files.read_queries()?;
        let corpus = files.read_corpus()?;
        Ok(Self { files, corpus, queries, qrels })
    }
}

/// `owner/name` with the characters the Hub allows.
fn is_hub_name(s: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '-'])
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(s.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

mod hub {
    use std::path::{Path, PathBuf};

    use anyhow::{Result, anyhow};
    use hf_hub::api::sync::{ApiBuilder, ApiRepo};
    use hf_hub::{Cache, Repo, RepoType};

    use super::{DatasetFiles, candidates, detect_layout};

    fn offline() -> bool {
        std::env::var("HF_HUB_OFFLINE")
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
    }

    /// The snapshot folder that holds `file`, a cached `rfilename` of the repository.
    fn snapshot_root(file: &Path, rfilename: &str) -> PathBuf {
        let depth = Path::new(rfilename).components().count();
        file.ancestors().nth(depth).map(Path::to_path_buf).unwrap_or_default()
    }

    /// Downloads (or finds in the cache) the files of `split` of a Hub dataset; BEIR datasets on
    /// the Hub keep their qrels in a sibling repository `<name>-qrels` (`<split>.tsv`), which is
    /// tried when the dataset itself has none.
    pub fn download(name: &str, split: &str) -> Result<DatasetFiles> {
        fetch(name, split).map_err(|e| {
            anyhow!(
                "cannot get the dataset `{name}` from the Hugging Face Hub ({e:#}). Pass a local folder with \
                 --data DIR instead (BEIR: corpus.jsonl, queries.jsonl, qrels/{split}.tsv; MS MARCO: \
                 collection.tsv, queries.{split}.tsv, qrels.{split}.tsv)"
            )
        })
    }

    fn fetch(name: &str, split: &str) -> Result<DatasetFiles> {
        let cache = Cache::from_env();
        let repo = Repo::new(name.to_string(), RepoType::Dataset);
        let qrels_repo = Repo::new(format!("{name}-qrels"), RepoType::Dataset);
        if offline() {
            let cached = cache.repo(repo.clone());
            let layout = detect_layout(|f| cached.get(f).is_some());
            let get = |names: &[String]| names.iter().find_map(|n| cached.get(n).map(|p| (p, n.clone())));
            let [corpus, queries, qrels] = candidates(layout, split);
            let (corpus, rname) =
                get(&corpus).ok_or_else(|| anyhow!("HF_HUB_OFFLINE is set and it is not in the cache"))?;
            let qrels = get(&qrels).map(|(p, _)| p).or_else(|| cache.repo(qrels_repo).get(&format!("{split}.tsv")));
            return Ok(DatasetFiles {
                root: snapshot_root(&corpus, &rname),
                layout,
                split: split.to_string(),
                corpus: Some(corpus),
                queries: get(&queries).map(|(p, _)| p),
                qrels,
            });
        }
        let api = ApiBuilder::from_env().with_progress(true).build()?;
        let remote = api.repo(repo);
        let files: Vec<String> = remote.info()?.siblings.into_iter().map(|s| s.rfilename).collect();
        let layout = detect_layout(|f| files.iter().any(|x| x == f));
        let [corpus, queries, qrels] = candidates(layout, split);
        let get = |repo: &ApiRepo, names: &[String]| -> Result<Option<(PathBuf, String)>> {
            match names.iter().find(|n| files.contains(n)) {
                Some(n) => Ok(Some((repo.get(n)?, n.clone()))),
                None => Ok(None),
            }
        };
        let (corpus, rname) = get(&remote, &corpus)?
            .ok_or_else(|| anyhow!("the dataset has none of {} ({} layout)", corpus.join(", "), layout.name()))?;
        let queries = get(&remote, &queries)?.map(|(p, _)| p);
        let qrels = match get(&remote, &qrels)? {
            Some((p, _)) => Some(p),
            // A missing sibling repository just means no qrels; the caller names what is missing.
            None => api.repo(qrels_repo).get(&format!("{split}.tsv")).ok(),
        };
        Ok(DatasetFiles {
            root: snapshot_root(&corpus, &rname),
            layout,
            split: split.to_string(),
            corpus: Some(corpus),
            queries,
            qrels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names() {
        assert!(is_hub_name("BeIR/scifact"));
        assert!(is_hub_name("mteb/msmarco-v2.1"));
        assert!(!is_hub_name("scifact"));
        assert!(!is_hub_name("a/b/c"));
        assert!(!is_hub_name("../data"));
        assert!(!is_hub_name("./x"));
    }
}

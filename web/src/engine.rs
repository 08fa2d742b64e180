//! The models in the browser: backend choice (WebGPU when an adapter exists, else burn's CPU
//! backend), loading from downloaded bytes, and cached scoring for the lab and search.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use adam_core::demo::{Manifest, ModelInfo};
use adam_core::encoder::{CrossEncoder, SentenceEncoder};
use adam_core::loader::{CrossEncoderOptions, LoadOptions, ModelSource};
use adam_core::model::cube_matmul;
use adam_core::softlabels::{self, LabSettings, Mark, Segment};
use adam_core::tokenize::TextTokenizer;
use burn::tensor::{Device, Tensor};
use wasm_bindgen::JsValue;

use crate::fetch::now_ms;
use crate::state::url_param;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    WebGpu,
    Cpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }
}

/// WebGPU through burn's wgpu runtime when the browser gives a hardware adapter, else burn's flex
/// CPU backend; the string says why. A software adapter (SwiftShader, lavapipe, WARP) emulates the
/// GPU on the processor and runs these models several times slower than the CPU path
/// (BENCHMARKS.md, "SwiftShader's own kernel"), so the CPU is chosen there unless
/// `?backend=webgpu` asks for it; `?backend=cpu` skips WebGPU everywhere; any other value is named
/// in the reason and otherwise ignored.
pub async fn pick_device() -> (Backend, Device, String) {
    let asked = url_param("backend");
    let (backend, device, why) = choose_device(asked.as_deref()).await;
    match asked.as_deref() {
        Some(other) if !matches!(other, "cpu" | "webgpu") => {
            (backend, device, format!("?backend={other} is neither cpu nor webgpu, so it chose: {why}"))
        }
        _ => (backend, device, why),
    }
}

async fn choose_device(asked: Option<&str>) -> (Backend, Device, String) {
    if asked == Some("cpu") {
        return (Backend::Cpu, Device::flex(), "?backend=cpu".into());
    }
    let gpu = web_sys::window().and_then(|w| js_sys::Reflect::get(&w.navigator(), &JsValue::from_str("gpu")).ok());
    let Some(gpu) = gpu.filter(|g| !g.is_undefined() && !g.is_null()) else {
        return (Backend::Cpu, Device::flex(), "this browser has no WebGPU (navigator.gpu)".into());
    };
    let forced = asked == Some("webgpu");
    let adapter = default_adapter(&gpu).await;
    let software = adapter.as_ref().and_then(|a| a.software.clone());
    if !forced && let Some(name) = &software {
        return (
            Backend::Cpu,
            Device::flex(),
            format!("the WebGPU adapter is a software one ({name}), slower than the CPU here; ?backend=webgpu uses it"),
        );
    }
    let swiftshader = software.is_some_and(|name| name.to_lowercase().contains("swiftshader"));
    // Subgroups of one known width let the register-block kernel share rows' values across lanes
    // (BENCHMARKS.md, issue 19); wgpu does not ask for the `subgroups` feature on the web, so the
    // page asks for it.
    let subgroups = swiftshader && adapter.as_ref().is_some_and(|a| a.subgroups) && ask_for_subgroups();
    match Device::wgpu_options().init_async().await {
        Ok(device) => {
            let mut why = String::from(if forced { "?backend=webgpu" } else { "WebGPU adapter found" });
            // SwiftShader runs burn's matrix-product kernel (workgroup memory and barriers) 8-44x
            // slower than a register-block one (BENCHMARKS.md, issue 19).
            if swiftshader {
                cube_matmul::use_register_blocks(true);
                why.push_str("; on SwiftShader, matrix products by adam's register-block kernel");
                if let Some(lanes) = cube_matmul::fixed_plane_width(&device).filter(|_| subgroups) {
                    cube_matmul::use_plane_lanes(lanes);
                    why.push_str(&format!(", rows shared across subgroups of {lanes}"));
                }
            }
            (Backend::WebGpu, device, why)
        }
        Err(e) => {
            // wgpu's reason is long and technical: the console keeps it, the page says it briefly.
            web_sys::console::warn_1(&format!("adam: WebGPU unavailable, using the CPU: {e}").into());
            (
                Backend::Cpu,
                Device::flex(),
                "no usable WebGPU adapter; the CPU runs the models (details in the console)".into(),
            )
        }
    }
}

/// What the page needs to know of the browser's default WebGPU adapter.
struct AdapterFacts {
    /// Its name when it emulates a GPU in software: the adapter says so (`isFallbackAdapter`) or
    /// its vendor, architecture or description names a known software rasteriser.
    software: Option<String>,
    /// Whether it has the `subgroups` feature.
    subgroups: bool,
}

/// Asks the browser for its default adapter; `None` when there is none or it cannot be asked.
/// Read through `Reflect` because these fields are newer than web-sys' stable bindings.
async fn default_adapter(gpu: &JsValue) -> Option<AdapterFacts> {
    use js_sys::Reflect;
    use wasm_bindgen::JsCast;
    let request: js_sys::Function = Reflect::get(gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = Reflect::get(&adapter, &"info".into()).ok().filter(|i| i.is_object());
    let field = |key: &str| {
        info.as_ref().and_then(|i| Reflect::get(i, &key.into()).ok()).and_then(|v| v.as_string()).unwrap_or_default()
    };
    let name = ["vendor", "architecture", "description"]
        .map(field)
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    web_sys::console::log_1(&format!("adam: WebGPU adapter `{name}`").into());
    // Newer browsers keep the flag in `info`, older ones on the adapter.
    let flagged = [info.clone().unwrap_or(JsValue::UNDEFINED), adapter.clone()]
        .iter()
        .any(|o| Reflect::get(o, &"isFallbackAdapter".into()).ok().and_then(|v| v.as_bool()) == Some(true));
    let lower = name.to_lowercase();
    let named =
        ["swiftshader", "lavapipe", "llvmpipe", "microsoft basic render", "warp"].iter().any(|s| lower.contains(s));
    let software = (flagged || named).then(|| if name.is_empty() { "a fallback adapter".into() } else { name });
    // `features` is set-like, not a `Set`.
    let subgroups = Reflect::get(&adapter, &"features".into()).ok().and_then(|f| {
        let has: js_sys::Function = Reflect::get(&f, &"has".into()).ok()?.dyn_into().ok()?;
        has.call1(&f, &"subgroups".into()).ok()?.as_bool()
    }) == Some(true);
    Some(AdapterFacts { software, subgroups })
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function ask_for_subgroups() {
  const proto = globalThis.GPUAdapter && globalThis.GPUAdapter.prototype;
  if (!proto || typeof proto.requestDevice !== 'function') return false;
  if (proto.adamAsksForSubgroups) return true;
  const requestDevice = proto.requestDevice;
  proto.requestDevice = function (descriptor) {
    const d = Object.assign({}, descriptor || {});
    if (this.features.has('subgroups')) {
      const features = Array.from(d.requiredFeatures || []);
      if (!features.includes('subgroups')) features.push('subgroups');
      d.requiredFeatures = features;
    }
    return requestDevice.call(this, d);
  };
  proto.adamAsksForSubgroups = true;
  return true;
}
"#)]
extern "C" {
    /// Makes every WebGPU device the page creates ask for the `subgroups` feature where its
    /// adapter has it (wgpu 30 does not map that feature on the web); false where it cannot.
    fn ask_for_subgroups() -> bool;
}

/// A (query pieces, passage pieces) pair, the key of the teacher's score cache.
type PiecePair = (Vec<u32>, Vec<u32>);

/// The models' downloaded files (path in the folder → bytes).
pub struct ModelFiles {
    pub student: HashMap<String, Vec<u8>>,
    pub teacher: Option<HashMap<String, Vec<u8>>>,
}

fn source(info: &ModelInfo, files: HashMap<String, Vec<u8>>, base: &str) -> ModelSource {
    ModelSource::Memory { name: PathBuf::from(format!("{base}{}", info.dir)), files }
}

pub struct Engine {
    pub backend: Backend,
    pub student: SentenceEncoder,
    pub teacher: Option<CrossEncoder>,
    same_vocab: bool,
    /// (query pieces, passage pieces) → teacher score.
    teacher_cache: RefCell<HashMap<PiecePair, f32>>,
    /// student pieces → vector.
    student_cache: RefCell<HashMap<Vec<u32>, Vec<f32>>>,
}

/// Texts per forward pass: small enough to keep a phone's memory, big enough to use the GPU.
const BATCH: usize = 16;

impl Engine {
    /// Loads the models from their files (consumed: the weights are large).
    pub fn load(
        manifest: &Manifest,
        files: ModelFiles,
        backend: Backend,
        device: Device,
        base: &str,
    ) -> Result<Self, String> {
        let max_length = Some(manifest.max_length);
        let student = SentenceEncoder::load(
            &source(&manifest.student, files.student, base),
            &device,
            &LoadOptions { max_length, layers: None },
        )
        .map_err(|e| format!("loading the student: {e}"))?;
        let teacher = match (&manifest.teacher, files.teacher) {
            (Some(info), Some(files)) => Some(
                CrossEncoder::load(
                    &source(info, files, base),
                    &device,
                    &CrossEncoderOptions { max_length, new_head: false },
                )
                .map_err(|e| format!("loading the teacher: {e}"))?,
            ),
            _ => None,
        };
        let same_vocab = teacher.as_ref().is_some_and(|t| t.model.tokenizer.same_vocab(&student.model.tokenizer));
        Ok(Self {
            backend,
            student,
            teacher,
            same_vocab,
            teacher_cache: RefCell::default(),
            student_cache: RefCell::default(),
        })
    }

    pub fn teacher_tokenizer(&self) -> Option<&TextTokenizer> {
        self.teacher.as_ref().map(|t| &t.model.tokenizer)
    }

    async fn read(t: Tensor<1>) -> Result<Vec<f32>, String> {
        let data = t.into_data_async().await.map_err(|e| format!("reading scores from the device: {e:?}"))?;
        data.try_into_vec_as::<f32>().map_err(|e| format!("reading scores: {e:?}"))
    }

    /// Teacher scores of `query` with each passage (word pieces of the teacher's vocabulary).
    pub async fn teacher_scores(&self, query: &[u32], passages: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        let teacher = self.teacher.as_ref().ok_or("these assets have no teacher")?;
        let tok = &teacher.model.tokenizer;
        let missing: Vec<&Vec<u32>> = {
            let cache = self.teacher_cache.borrow();
            let mut m: Vec<&Vec<u32>> =
                passages.iter().filter(|p| !cache.contains_key(&(query.to_vec(), (*p).clone()))).collect();
            m.dedup();
            m
        };
        for chunk in missing.chunks(BATCH) {
            let pairs: Vec<(&[u32], &[u32])> = chunk.iter().map(|p| (query, &p[..])).collect();
            let scores = Self::read(teacher.score_batch(&tok.encode_piece_pairs(&pairs))).await?;
            let mut cache = self.teacher_cache.borrow_mut();
            for (p, s) in chunk.iter().zip(scores) {
                cache.insert((query.to_vec(), (*p).clone()), s);
            }
        }
        let cache = self.teacher_cache.borrow();
        Ok(passages.iter().map(|p| cache[&(query.to_vec(), p.clone())]).collect())
    }

    /// Student vectors of word-piece sequences of the student's vocabulary.
    pub async fn student_vectors(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> {
        let mut missing: Vec<&Vec<u32>> = {
            let cache = self.student_cache.borrow();
            seqs.iter().filter(|s| !cache.contains_key(*s)).collect()
        };
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(BATCH) {
            let refs: Vec<&[u32]> = chunk.iter().map(|s| &s[..]).collect();
            let vectors = self.embed(&refs).await?;
            let mut cache = self.student_cache.borrow_mut();
            for (s, v) in chunk.iter().zip(vectors) {
                cache.insert((*s).clone(), v);
            }
        }
        let cache = self.student_cache.borrow();
        Ok(seqs.iter().map(|s| cache[s].clone()).collect())
    }

    /// Student vectors, uncached.
    pub async fn embed(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        let tok = &self.student.model.tokenizer;
        let data = self
            .student
            .embed_batch(&tok.encode_pieces(seqs, usize::MAX))
            .into_data_async()
            .await
            .map_err(|e| format!("reading vectors from the device: {e:?}"))?;
        let flat = data.try_into_vec_as::<f32>().map_err(|e| format!("reading vectors: {e:?}"))?;
        Ok(flat.chunks(self.student.dim()).map(<[f32]>::to_vec).collect())
    }

    /// A query's student vector and how long encoding took (ms), without the cache.
    pub async fn encode_query(&self, text: &str) -> Result<(Vec<f32>, f64), String> {
        let pieces = self.student.model.tokenizer.word_pieces(text).map_err(|e| e.to_string())?;
        let start = now_ms();
        let mut v = self.embed(&[pieces.as_slice()]).await?;
        Ok((v.pop().unwrap_or_default(), now_ms() - start))
    }
}

/// A query with its positive and hard negatives, as the lab takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct LabInput {
    pub query: String,
    pub positive: String,
    pub negatives: Vec<String>,
    /// Keys the dark examples' random draws: the example's index (0 for typed input), as in
    /// `adam soft-labels`.
    pub key: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabRow {
    pub label: String,
    /// `positive`, `negative` or `dark`.
    pub kind: &'static str,
    pub segments: Vec<Segment>,
    pub teacher_score: f32,
    pub student_score: f32,
    pub teacher_prob: f64,
    pub student_prob: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabResult {
    pub rows: Vec<LabRow>,
    pub labels: softlabels::SoftLabels,
    pub walkthrough: softlabels::Walkthrough,
    pub settings: LabSettings,
    pub key: u64,
    pub millis: f64,
}

/// The lab for one input and settings: candidates, both models' scores, soft labels.
pub async fn run_lab(engine: &Engine, input: &LabInput, settings: &LabSettings) -> Result<LabResult, String> {
    settings.validate()?;
    let start = now_ms();
    let ttok = engine.teacher_tokenizer().ok_or("these assets have no teacher: the lab needs one")?;
    let stok = &engine.student.model.tokenizer;
    let pieces = |t: &str| ttok.word_pieces(t).map_err(|e| e.to_string());
    if input.query.trim().is_empty() || input.positive.trim().is_empty() {
        return Err("type a query and a positive passage".into());
    }
    let q = pieces(&input.query)?;
    let p = pieces(&input.positive)?;
    let n: Vec<Vec<u32>> = input.negatives.iter().map(|t| pieces(t.as_str())).collect::<Result<_, _>>()?;
    let config = settings.dark_config(ttok.max_length().saturating_sub(2));
    let candidates = softlabels::candidates(&q, &p, &n, &ttok.special(), &config, input.key);
    let ids: Vec<Vec<u32>> = candidates.iter().map(|c| c.ids.clone()).collect();
    let teacher_scores = engine.teacher_scores(&q, &ids).await?;
    let mut seqs = vec![stok.word_pieces(&input.query).map_err(|e| e.to_string())?];
    for c in &candidates {
        seqs.push(softlabels::to_student_pieces(&c.ids, ttok, stok, engine.same_vocab).map_err(|e| e.to_string())?);
    }
    let vectors = engine.student_vectors(&seqs).await?;
    let student_scores: Vec<f32> = vectors[1..].iter().map(|v| softlabels::dot(&vectors[0], v)).collect();
    let labels = softlabels::soft_labels(
        &teacher_scores, &student_scores, settings.teacher_temperature, settings.student_temperature,
    );
    let walkthrough = softlabels::walkthrough(&candidates, &teacher_scores, &labels, settings);
    let token = |id: u32| ttok.id_to_token(id);
    let rows = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| LabRow {
            label: c.label.clone(),
            kind: match c.kind {
                softlabels::CandidateKind::Positive => "positive",
                softlabels::CandidateKind::Negative { .. } => "negative",
                softlabels::CandidateKind::Dark { .. } => "dark",
            },
            segments: match &c.dark {
                Some(d) => softlabels::segments(&d.ids, &d.edits, token),
                None => softlabels::segments(&c.ids, &[], token),
            },
            teacher_score: teacher_scores[i],
            student_score: student_scores[i],
            teacher_prob: labels.teacher[i],
            student_prob: labels.student[i],
        })
        .collect();
    Ok(LabResult { rows, labels, walkthrough, settings: settings.clone(), key: input.key, millis: now_ms() - start })
}

/// The top `k` passages of the corpus for a query vector: (index, score), best first.
pub fn top_k(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> =
        vectors.chunks(dim).enumerate().map(|(i, v)| (i, softlabels::dot(query, v))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// Whether a segment is an edit worth a legend entry.
pub fn mark_class(mark: Mark) -> &'static str {
    match mark {
        Mark::Kept => "kept",
        Mark::Masked => "masked",
        Mark::Deleted => "deleted",
        Mark::FromPositive => "from-positive",
        Mark::FromQuery => "from-query",
    }
}

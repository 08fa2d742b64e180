//! What the page holds once loaded (models, data) and the loading sequence, plus the metrics
//! the end-to-end test reads (`window.__adam` and `adam-metric` console lines).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use adam_core::demo::{CorpusPassage, ExampleSet, Manifest, f16_to_f32};
use leptos::prelude::*;

use crate::engine::{Engine, ModelFiles, pick_device};
use crate::fetch::{fetch_bytes, next_frame, now_ms, text_of};

/// Everything downloaded and loaded.
pub struct Loaded {
    pub engine: Engine,
    pub manifest: Manifest,
    pub examples: Option<ExampleSet>,
    pub corpus: Option<(Vec<CorpusPassage>, Vec<f32>)>,
    pub report: Option<serde_json::Value>,
    /// URL prefix of the assets, e.g. `assets/`.
    pub base: String,
}

thread_local! {
    static LOADED: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

/// The loaded state (only called once the page is ready).
pub fn loaded() -> Rc<Loaded> {
    LOADED.with(|l| l.borrow().clone()).expect("views are shown only after loading")
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Loading { step: String, done: u64, total: u64 },
    Ready,
    Failed(String),
}

/// The assets' URL prefix: `?assets=URL` or `assets/` beside the page.
pub fn assets_base() -> String {
    let mut base = url_param("assets").filter(|b| !b.is_empty()).unwrap_or_else(|| "assets/".into());
    if !base.ends_with('/') {
        base.push('/');
    }
    base
}

/// The value of `?NAME=` in the page's address.
pub fn url_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}

/// Records a measurement in `window.__adam` and logs `adam-metric NAME=VALUE`.
pub fn metric(name: &str, value: impl Into<wasm_bindgen::JsValue> + std::fmt::Display + Clone) {
    web_sys::console::log_1(&format!("adam-metric {name}={value}").into());
    let Some(window) = web_sys::window() else { return };
    let key = wasm_bindgen::JsValue::from_str("__adam");
    let mut obj = js_sys::Reflect::get(&window, &key).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    if !obj.is_object() {
        obj = js_sys::Object::new().into();
        let _ = js_sys::Reflect::set(&window, &key, &obj);
    }
    let _ = js_sys::Reflect::set(&obj, &name.into(), &value.into());
}

/// Shows a fatal message over the page (from the panic hook).
pub fn show_fatal(message: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(div) = doc.create_element("div") else { return };
    div.set_class_name("fatal");
    let _ = div.set_attribute("role", "alert");
    let _ = div.set_attribute("data-testid", "error");
    div.set_text_content(Some(&format!("{message}. Reload the page to start again.")));
    if let Some(body) = doc.body() {
        let _ = body.prepend_with_node_1(&div);
    }
}

/// Downloads the assets, picks the backend, loads the models. Errors name the file.
pub async fn load(phase: RwSignal<Phase>, backend: RwSignal<Option<(String, String)>>) -> Result<(), String> {
    let base = assets_base();
    let step = |s: &str, done: u64, total: u64| phase.set(Phase::Loading { step: s.into(), done, total });
    step("Reading the manifest", 0, 0);
    let manifest_url = format!("{base}manifest.json");
    let bytes = fetch_bytes(&manifest_url, |_| {}).await?;
    let manifest =
        Manifest::from_json(text_of(&bytes, &manifest_url)?.as_bytes(), &manifest_url).map_err(|e| e.to_string())?;

    let (kind, device, why) = pick_device().await;
    backend.set(Some((kind.name().to_string(), why.clone())));
    metric("backend", kind.name());
    web_sys::console::log_1(&format!("adam backend: {} ({why})", kind.name()).into());

    // Every file but the plots (the browser loads those itself).
    let sizes: HashMap<String, u64> = manifest.files.iter().map(|f| (f.path.clone(), f.bytes)).collect();
    let images: Vec<String> = manifest.report.iter().flat_map(|r| r.images.clone()).collect();
    let total: u64 = manifest.files.iter().filter(|f| !images.contains(&f.path)).map(|f| f.bytes).sum();
    let done = Rc::new(Cell::new(0u64));
    let get = |rel: String| {
        let done = done.clone();
        let url = format!("{base}{rel}");
        let expected = sizes.get(&rel).copied();
        async move {
            let bytes = fetch_bytes(&url, |n| {
                done.set(done.get() + n);
                phase.set(Phase::Loading { step: format!("Downloading {rel}"), done: done.get(), total });
            })
            .await?;
            if let Some(want) = expected
                && want != bytes.len() as u64
            {
                return Err(format!(
                    "{url}: {} bytes arrived, manifest.json says {want}: the file is broken or from another export — export the assets again",
                    bytes.len()
                ));
            }
            Ok::<_, String>(bytes)
        }
    };
    let mut student = HashMap::new();
    for f in &manifest.student.files {
        student.insert(f.clone(), get(format!("{}/{f}", manifest.student.dir)).await?);
    }
    let mut teacher = None;
    if let Some(info) = &manifest.teacher {
        let mut files = HashMap::new();
        for f in &info.files {
            files.insert(f.clone(), get(format!("{}/{f}", info.dir)).await?);
        }
        teacher = Some(files);
    }
    let examples = match &manifest.examples {
        Some(rel) => {
            let url = format!("{base}{rel}");
            let bytes = get(rel.clone()).await?;
            let set: ExampleSet = serde_json::from_str(text_of(&bytes, &url)?)
                .map_err(|e| format!("{url}: not an examples file ({e})"))?;
            Some(set)
        }
        None => None,
    };
    let corpus = match &manifest.corpus {
        Some(c) => {
            let url = format!("{base}{}", c.passages);
            let bytes = get(c.passages.clone()).await?;
            let passages: Vec<CorpusPassage> =
                serde_json::from_str(text_of(&bytes, &url)?).map_err(|e| format!("{url}: not a corpus file ({e})"))?;
            let vurl = format!("{base}{}", c.vectors);
            let vectors = f16_to_f32(&get(c.vectors.clone()).await?).map_err(|e| format!("{vurl}: {e}"))?;
            if passages.len() != c.count || vectors.len() != c.count * c.dim {
                return Err(format!(
                    "{vurl}: {} passages and {} values do not make {} vectors of {} — export the assets again",
                    passages.len(),
                    vectors.len(),
                    c.count,
                    c.dim
                ));
            }
            Some((passages, vectors))
        }
        None => None,
    };
    let report = match manifest.report.as_ref().and_then(|r| r.json.clone()) {
        Some(rel) => {
            let url = format!("{base}{rel}");
            let bytes = get(rel).await?;
            Some(serde_json::from_str(text_of(&bytes, &url)?).map_err(|e| format!("{url}: not JSON ({e})"))?)
        }
        None => None,
    };
    metric("download_ms", now_ms());

    step(&format!("Loading the models on {}", kind.name()), total, total);
    next_frame().await;
    let engine = Engine::load(&manifest, ModelFiles { student, teacher }, kind, device, &base)?;
    if let Some(c) = &manifest.corpus
        && c.dim != engine.student.dim()
    {
        return Err(format!(
            "{base}{}: vectors of {} values, but the student makes {}: the corpus is from another model — export again",
            c.vectors,
            c.dim,
            engine.student.dim()
        ));
    }
    metric("load_ms", now_ms());
    LOADED.with(|l| *l.borrow_mut() = Some(Rc::new(Loaded { engine, manifest, examples, corpus, report, base })));
    phase.set(Phase::Ready);
    Ok(())
}

//! The page: a header with the backend notice, loading progress or a readable error, then four
//! views behind tabs — dark-example lab, self-paced selection, search, training report.

use std::cell::RefCell;

use adam_core::dark::NoisyMode;
use adam_core::selfpaced::{ConfidenceMeasure, Schedule, Selection, SelfPacedConfig, confidence};
use adam_core::softlabels::{LabSettings, Walkthrough};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::engine::{LabInput, LabResult, mark_class, run_lab, top_k};
use crate::fetch::now_ms;
use crate::state::{Phase, load, loaded, metric};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Lab,
    SelfPaced,
    Search,
    Report,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Lab, Tab::SelfPaced, Tab::Search, Tab::Report];

    fn title(self) -> &'static str {
        match self {
            Tab::Lab => "Dark example lab",
            Tab::SelfPaced => "Self-paced",
            Tab::Search => "Search",
            Tab::Report => "Training report",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Tab::Lab => "lab",
            Tab::SelfPaced => "selfpaced",
            Tab::Search => "search",
            Tab::Report => "report",
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[component]
pub fn App() -> impl IntoView {
    let phase = RwSignal::new(Phase::Loading { step: "Starting".into(), done: 0, total: 0 });
    let backend = RwSignal::new(None::<(String, String)>);
    spawn_local(async move {
        if let Err(e) = load(phase, backend).await {
            web_sys::console::error_1(&e.clone().into());
            phase.set(Phase::Failed(e));
        }
    });
    let tab = RwSignal::new(Tab::Lab);
    view! {
        <header class="top">
            <h1>"ADAM: dark examples and soft labels"</h1>
            <p class="tagline">
                "A cross-encoder teacher's soft labels, distilled into a dual-encoder student — with dark examples of moderate relevance. "
                "Everything runs in your browser."
            </p>
            <p class="backend-line">
                "Backend: "
                <strong data-testid="backend" class="backend">
                    {move || match (backend.get(), phase.get()) {
                        (Some(b), _) => b.0,
                        // The page failed before a backend was chosen: nothing runs.
                        (None, Phase::Failed(_)) => "none".into(),
                        (None, _) => "choosing…".into(),
                    }}
                </strong>
                <span class="why">{move || backend.get().map(|b| format!(" — {}", b.1)).unwrap_or_default()}</span>
            </p>
        </header>
        <main>
            {move || match phase.get() {
                Phase::Loading { step, done, total } => {
                    let pct = if total > 0 { done as f64 / total as f64 * 100.0 } else { 0.0 };
                    view! {
                        <section class="loading" aria-live="polite" data-testid="loading">
                            <p>{step}</p>
                            <progress max="100" value=format!("{pct:.1}")></progress>
                            <p class="muted">
                                {if total > 0 { format!("{} of {}", mib(done), mib(total)) } else { String::new() }}
                            </p>
                        </section>
                    }
                        .into_any()
                }
                Phase::Failed(message) => {
                    view! {
                        <section class="error" role="alert" data-testid="error">
                            <h2>"The demo could not start"</h2>
                            <p>{message}</p>
                        </section>
                    }
                        .into_any()
                }
                Phase::Ready => view! { <Ready tab=tab /> }.into_any(),
            }}
        </main>
        <footer>
            <p>
                "ADAM: Dense Retrieval Distillation with Adaptive Dark Examples (Tao et al., arXiv 2212.10192), "
                "reimplemented in Rust with burn and Leptos."
            </p>
        </footer>
    }
}

#[component]
fn Ready(tab: RwSignal<Tab>) -> impl IntoView {
    let l = loaded();
    let total: u64 = l.manifest.files.iter().map(|f| f.bytes).sum();
    let total_gz: u64 = l.manifest.files.iter().map(|f| f.gzip_bytes.unwrap_or(f.bytes)).sum();
    let summary = format!(
        "Data: {} ({} split, {} negatives). Student: {}{}. Assets {} ({} gzipped).",
        l.manifest.dataset.name,
        l.manifest.dataset.split,
        l.manifest.dataset.negatives,
        l.manifest.student.source,
        l.manifest.teacher.as_ref().map(|t| format!(", teacher: {}", t.source)).unwrap_or_default(),
        mib(total),
        mib(total_gz),
    );
    view! {
        <p class="muted summary">{summary}</p>
        <nav class="tabs" role="tablist" aria-label="Views">
            {Tab::ALL
                .into_iter()
                .map(|t| {
                    view! {
                        <button
                            role="tab"
                            id=format!("tab-{}", t.id())
                            aria-controls=format!("panel-{}", t.id())
                            aria-selected=move || (tab.get() == t).to_string()
                            class:active=move || tab.get() == t
                            on:click=move |_| tab.set(t)
                        >
                            {t.title()}
                        </button>
                    }
                })
                .collect_view()}
        </nav>
        // Views stay mounted (their state survives switching); only the chosen one is shown.
        {Tab::ALL
            .into_iter()
            .map(|t| {
                view! {
                    <section
                        role="tabpanel"
                        id=format!("panel-{}", t.id())
                        aria-labelledby=format!("tab-{}", t.id())
                        class="panel"
                        hidden=move || tab.get() != t
                    >
                        {match t {
                            Tab::Lab => view! { <Lab /> }.into_any(),
                            Tab::SelfPaced => view! { <SelfPaced /> }.into_any(),
                            Tab::Search => view! { <Search /> }.into_any(),
                            Tab::Report => view! { <Report /> }.into_any(),
                        }}
                    </section>
                }
            })
            .collect_view()}
    }
}

/// Lab jobs: at most one runs; while it runs only the newest request waits (sliders send many).
#[derive(Default)]
struct LabQueue {
    running: bool,
    pending: Option<(LabInput, LabSettings)>,
    first_done: bool,
}

thread_local! {
    static LAB_QUEUE: RefCell<LabQueue> = RefCell::default();
}

fn request_lab(
    job: (LabInput, LabSettings),
    result: RwSignal<Option<LabResult>>,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
) {
    let start = LAB_QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.pending = Some(job);
        !std::mem::replace(&mut q.running, true)
    });
    if !start {
        return;
    }
    busy.set(true);
    spawn_local(async move {
        let l = loaded();
        while let Some((input, settings)) = LAB_QUEUE.with(|q| q.borrow_mut().pending.take()) {
            match run_lab(&l.engine, &input, &settings).await {
                Ok(r) => {
                    let first = LAB_QUEUE.with(|q| !std::mem::replace(&mut q.borrow_mut().first_done, true));
                    if first {
                        metric("first_soft_labels_ms", now_ms());
                    }
                    metric("last_lab_ms", r.millis);
                    result.set(Some(r));
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        }
        LAB_QUEUE.with(|q| q.borrow_mut().running = false);
        busy.set(false);
    });
}

const CUSTOM: usize = usize::MAX;

fn join_probs(p: &[f64]) -> String {
    p.iter().map(|x| format!("{x:.8}")).collect::<Vec<_>>().join(" ")
}

#[component]
fn Slider(
    id: &'static str,
    label: &'static str,
    min: f32,
    max: f32,
    step: f32,
    value: Signal<f32>,
    set: Callback<f32>,
    #[prop(default = 2)] digits: usize,
) -> impl IntoView {
    view! {
        <div class="slider">
            <label for=id>
                {label} " " <output>{move || format!("{:.*}", digits, value.get())}</output>
            </label>
            <input
                id=id
                type="range"
                min=min.to_string()
                max=max.to_string()
                step=step.to_string()
                prop:value=move || value.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f32>() {
                        set.run(v);
                    }
                }
            />
        </div>
    }
}

#[component]
fn Lab() -> impl IntoView {
    let l = loaded();
    if l.engine.teacher.is_none() {
        return view! {
            <p class="notice">
                "These assets have no teacher, so there are no soft labels to show. Export with "
                <code>"--teacher DIR"</code> " to get the lab."
            </p>
        }
        .into_any();
    }
    let examples = l.examples.clone().map(|s| s.examples).unwrap_or_default();
    let selected = RwSignal::new(if examples.is_empty() { CUSTOM } else { 0 });
    let settings = RwSignal::new(l.manifest.settings.clone());
    let custom_query = RwSignal::new(String::new());
    let custom_positive = RwSignal::new(String::new());
    let custom_negatives = RwSignal::new(String::new());
    let applied = RwSignal::new(None::<LabInput>);
    let result = RwSignal::new(None::<LabResult>);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    let ex = examples.clone();
    let input = Memo::new(move |_| {
        let i = selected.get();
        if i == CUSTOM {
            applied.get()
        } else {
            ex.get(i).map(|e| LabInput {
                query: e.query.clone(),
                positive: e.positive.text.clone(),
                negatives: e.negatives.iter().map(|n| n.text.clone()).collect(),
                key: i as u64,
            })
        }
    });
    Effect::new(move |_| {
        if let Some(inp) = input.get() {
            request_lab((inp, settings.get()), result, busy, error);
        }
    });

    let apply_custom = move |_| {
        let negatives: Vec<String> =
            custom_negatives.get().lines().map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        applied.set(Some(LabInput { query: custom_query.get(), positive: custom_positive.get(), negatives, key: 0 }));
    };

    let options = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let q: String = e.query.chars().take(70).collect();
            view! { <option value=i.to_string() selected={i == 0}>{format!("{}. {q}", i + 1)}</option> }
        })
        .collect_view();

    view! {
        <div class="lab">
            <div class="controls">
                <div class="field">
                    <label for="example">"Example"</label>
                    <select
                        id="example"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            selected.set(v.parse().unwrap_or(CUSTOM));
                        }
                    >
                        {options}
                        <option value="custom" selected={examples.is_empty()}>"Your own query and passages…"</option>
                    </select>
                </div>
                <Show when=move || selected.get() == CUSTOM>
                    <div class="custom">
                        <label for="cq">"Query"</label>
                        <input id="cq" type="text" prop:value=move || custom_query.get()
                            on:input=move |ev| custom_query.set(event_target_value(&ev)) />
                        <label for="cp">"Relevant passage (positive)"</label>
                        <textarea id="cp" rows="3" prop:value=move || custom_positive.get()
                            on:input=move |ev| custom_positive.set(event_target_value(&ev))></textarea>
                        <label for="cn">"Hard negatives, one per line"</label>
                        <textarea id="cn" rows="4" prop:value=move || custom_negatives.get()
                            on:input=move |ev| custom_negatives.set(event_target_value(&ev))></textarea>
                        <button on:click=apply_custom>"Compute soft labels"</button>
                    </div>
                </Show>
                <div class="field">
                    <label for="noisy">"Noisy positives"</label>
                    <select
                        id="noisy"
                        on:change=move |ev| {
                            let mode = if event_target_value(&ev) == "delete" { NoisyMode::Delete } else { NoisyMode::Mask };
                            settings.update(|s| s.noisy_mode = mode);
                        }
                    >
                        <option value="mask" prop:selected=move || settings.get().noisy_mode == NoisyMode::Mask>
                            "mask pieces"
                        </option>
                        <option value="delete" prop:selected=move || settings.get().noisy_mode == NoisyMode::Delete
                            title="for a teacher trained from scratch, which never learned what [MASK] means">
                            "delete pieces"
                        </option>
                    </select>
                </div>
                <Slider id="mask" label="Noise ratio (noisy positives)" min=0.0 max=0.95 step=0.05
                    value=Signal::derive(move || settings.get().mask_ratio)
                    set=Callback::new(move |v| settings.update(|s| s.mask_ratio = v)) />
                <Slider id="mix" label="Mix ratio (mixed negatives)" min=0.0 max=0.95 step=0.05
                    value=Signal::derive(move || settings.get().mix_ratio)
                    set=Callback::new(move |v| settings.update(|s| s.mix_ratio = v)) />
                <Slider id="tt" label="Teacher temperature T_t" min=0.1 max=5.0 step=0.1
                    value=Signal::derive(move || settings.get().teacher_temperature)
                    set=Callback::new(move |v| settings.update(|s| s.teacher_temperature = v)) />
                <Slider id="ts" label="Student temperature T_s" min=0.01 max=0.5 step=0.01
                    value=Signal::derive(move || settings.get().student_temperature)
                    set=Callback::new(move |v| settings.update(|s| s.student_temperature = v)) />
                <div class="field">
                    <label for="seed">"Seed"</label>
                    <input id="seed" type="number" min="0" step="1"
                        prop:value=move || settings.get().seed.to_string()
                        on:change=move |ev| {
                            if let Ok(v) = event_target_value(&ev).parse::<u64>() {
                                settings.update(|s| s.seed = v);
                            }
                        } />
                </div>
            </div>
            <div class="results" aria-live="polite">
                <p class="status muted">
                    {move || if busy.get() { "Computing…".to_string() } else {
                        result.get().map(|r| format!("Computed in {:.0} ms.", r.millis)).unwrap_or_default()
                    }}
                </p>
                {move || error.get().map(|e| view! { <p class="error" role="alert" data-testid="lab-error">{e}</p> })}
                {move || result.get().map(|r| view! { <LabView r=r /> })}
            </div>
        </div>
    }
        .into_any()
}

#[component]
fn LabView(r: LabResult) -> impl IntoView {
    let teacher = join_probs(&r.labels.teacher);
    let student = join_probs(&r.labels.student);
    let settings_json = serde_json::to_string(&r.settings).unwrap_or_default();
    let rows = r
        .rows
        .iter()
        .map(|row| {
            let segments = row
                .segments
                .iter()
                .map(|s| {
                    let text = format!("{}{}", if s.space_before { " " } else { "" }, s.text);
                    let class = mark_class(s.mark);
                    if class == "kept" {
                        view! { <span>{text}</span> }.into_any()
                    } else {
                        view! { <mark class=class title=class.replace('-', " ")>{text}</mark> }.into_any()
                    }
                })
                .collect_view();
            let pt = row.teacher_prob * 100.0;
            let ps = row.student_prob * 100.0;
            view! {
                <li class=format!("cand {}", row.kind)>
                    <div class="cand-head">
                        <span class="cand-label">{row.label.clone()}</span>
                        <span class="cand-scores muted">
                            {format!("teacher {:.3} · student {:.3}", row.teacher_score, row.student_score)}
                        </span>
                    </div>
                    <p class="cand-text">{segments}</p>
                    <div class="bars" aria-hidden="true">
                        <span class="bar-name">"P_T"</span>
                        <span class="track"><span class="fill teacher" style=format!("width:{pt:.2}%")></span></span>
                        <span class="num">{format!("{:.3}", row.teacher_prob)}</span>
                        <span class="bar-name">"P_S"</span>
                        <span class="track"><span class="fill student" style=format!("width:{ps:.2}%")></span></span>
                        <span class="num">{format!("{:.3}", row.student_prob)}</span>
                    </div>
                </li>
            }
        })
        .collect_view();
    let walkthrough = view! { <ClassSteps w=r.walkthrough.clone() /> };
    view! {
        <div data-testid="lab-result" data-example=r.key.to_string() data-settings=settings_json>
            {walkthrough}
            <dl class="stats">
                <div><dt>"H(P_T)"</dt><dd>{format!("{:.4}", r.labels.teacher_entropy)}</dd></div>
                <div><dt>"H(P_S)"</dt><dd>{format!("{:.4}", r.labels.student_entropy)}</dd></div>
                <div><dt>"KL(P_T ‖ P_S)"</dt><dd data-testid="kl">{format!("{:.4}", r.labels.kl)}</dd></div>
                <div><dt>"T_t² · KL"</dt><dd>{format!("{:.4}", r.labels.kd_loss)}</dd></div>
            </dl>
            <p class="legend">
                <span class="key teacher"></span>" teacher P_T  "
                <span class="key student"></span>" student P_S  "
                <mark class="masked">"masked"</mark>" "
                <mark class="deleted">"deleted"</mark>" "
                <mark class="from-positive">"from the positive"</mark>" "
                <mark class="from-query">"from the query"</mark>
            </p>
            <ol class="cands">{rows}</ol>
            <details class="raw">
                <summary>"Probabilities as numbers"</summary>
                <p>"P_T: " <span data-testid="teacher-probs" data-probs=teacher.clone()>{teacher.clone()}</span></p>
                <p>"P_S: " <span data-testid="student-probs" data-probs=student.clone()>{student.clone()}</span></p>
            </details>
        </div>
    }
}

/// The teacher's confidence on each exported training instance (those with teacher scores), as
/// self-paced distillation ranks them.
fn exported_confidences() -> Vec<f32> {
    loaded()
        .examples
        .as_ref()
        .map(|s| {
            s.examples
                .iter()
                .filter_map(|e| e.teacher.as_ref())
                .map(|t| confidence(&t.all(), ConfidenceMeasure::Softmax, 1.0))
                .collect()
        })
        .unwrap_or_default()
}

/// The lab's three steps for a class, with this query's numbers (they follow the sliders).
#[component]
fn ClassSteps(w: Walkthrough) -> impl IntoView {
    let ln_n = (w.plain as f64).ln();
    let verdict = if w.best_negative.is_some_and(|n| n > w.positive) {
        "It ranks a negative above the positive here: on this query its labels would teach the student something wrong."
    } else if w.plain_positive >= 0.9 {
        "Near one-hot: these labels say little beyond which passage is right, so there is little dark knowledge to distil."
    } else if w.plain_positive >= 0.5 {
        "Already soft: the negatives hold some of the probability, and so some dark knowledge."
    } else {
        "The teacher is unsure here, or wrong: its labels are far from one-hot."
    };
    let step1 = format!(
        "On the query's own candidates (the positive and its {} mined negatives) it gives the \
         positive P_T = {:.3}; entropy {:.2} nats, where one-hot is 0 and uniform is ln {} = {:.2}. {verdict}",
        w.plain - 1,
        w.plain_positive,
        w.plain_entropy,
        w.plain,
        ln_n,
    );
    let band = adam_core::dark::DarkConfig::default();
    let step2 = match (w.dark_low, w.dark_high) {
        (Some(lo), Some(hi)) => {
            let neg = w.best_negative.map(|p| format!("{p:.3}")).unwrap_or_else(|| "none".into());
            let where_ = match w.in_band {
                Some(k) => format!(
                    "{k} of {} score inside the target band, {:.0}–{:.0} % of the way from the best negative to the positive",
                    w.dark,
                    band.band_low * 100.0,
                    band.band_high * 100.0
                ),
                None => {
                    "the teacher does not score the positive above the best negative, so there is no band here".into()
                }
            };
            let lesson = if w.in_band.is_some_and(|k| k > 0) {
                " Those in the band carry moderate relevance: what the student can learn beyond the right answer."
            } else {
                ""
            };
            format!(
                "Its {} dark examples get P_T from {lo:.3} to {hi:.3} over all candidates \
                 (the positive {:.3}, the best negative {neg}): {where_}.{lesson}",
                w.dark, w.positive,
            )
        }
        _ => "None at these ratios.".into(),
    };
    let confidences = exported_confidences();
    let start = SelfPacedConfig::default().select(0, 1000, &confidences);
    let step3 = match start.threshold {
        Some(t) if !confidences.is_empty() => format!(
            "The teacher's confidence on this instance is {:.3} (the positive's probability among its own \
             candidates, at T = 1). At the start of training ADAM keeps the distillation term (soft labels, dark examples \
             included) for the most confident {:.0} % of each batch; among the {} exported instances those are the {} with \
             confidence ≥ {t:.3}: this one is {}. The Self-paced tab shows the share growing.",
            w.confidence,
            start.lambda * 100.0,
            confidences.len(),
            start.kept.len(),
            if w.confidence >= t { "among them" } else { "not yet among them" },
        ),
        _ => format!(
            "The teacher's confidence on this instance is {:.3} (the positive's probability among its own \
             candidates, at T = 1); ADAM distils the most confident instances first.",
            w.confidence
        ),
    };
    view! {
        <ol class="walkthrough" data-testid="walkthrough"
            data-plain-positive=format!("{}", w.plain_positive)
            data-in-band=w.in_band.map(|k| k.to_string()).unwrap_or_default()
            data-confidence=format!("{}", w.confidence)>
            <li><strong>"Is the teacher confident? "</strong>{step1}</li>
            <li><strong>"Where do the dark examples land? "</strong>{step2}</li>
            <li><strong>"Self-paced distillation. "</strong>{step3}</li>
        </ol>
    }
}

#[component]
fn SelfPaced() -> impl IntoView {
    let confidences = exported_confidences();
    if confidences.is_empty() {
        return view! {
            <p class="notice">"No training instances with teacher scores were exported (export with --teacher)."</p>
        }
        .into_any();
    }
    let n = confidences.len();
    let defaults = SelfPacedConfig::default();
    let progress = RwSignal::new(0.25f32);
    let lambda0 = RwSignal::new(defaults.lambda0);
    let schedule = RwSignal::new(defaults.schedule);
    let conf = confidences.clone();
    let selection = Memo::new(move |_| {
        let config = SelfPacedConfig { lambda0: lambda0.get(), schedule: schedule.get(), ..SelfPacedConfig::default() };
        let total = 1000;
        config.select((progress.get() * total as f32).round() as usize, total, &conf)
    });
    const BINS: usize = 10;
    let histogram = move || {
        let s: Selection = selection.get();
        let mut kept = [0usize; BINS];
        let mut dropped = [0usize; BINS];
        for (c, w) in s.confidences.iter().zip(&s.weights) {
            let b = ((c * BINS as f32) as usize).min(BINS - 1);
            if *w > 0.0 { kept[b] += 1 } else { dropped[b] += 1 }
        }
        let max = (0..BINS).map(|b| kept[b] + dropped[b]).max().unwrap_or(1).max(1) as f32;
        let (w, h, pad) = (320.0f32, 150.0f32, 20.0f32);
        let bw = w / BINS as f32;
        let bars = (0..BINS)
            .map(|b| {
                let x = b as f32 * bw + 2.0;
                let hk = kept[b] as f32 / max * (h - pad);
                let hd = dropped[b] as f32 / max * (h - pad);
                let label = format!("confidence {:.1}–{:.1}: {} kept, {} left out", b as f32 / 10.0, (b + 1) as f32 / 10.0, kept[b], dropped[b]);
                view! {
                    <g>
                        <title>{label}</title>
                        <rect class="kept" x=x.to_string() y=(h - hk).to_string() width=(bw - 4.0).to_string() height=hk.to_string() />
                        <rect class="dropped" x=x.to_string() y=(h - hk - hd).to_string() width=(bw - 4.0).to_string() height=hd.to_string() />
                    </g>
                }
            })
            .collect_view();
        view! {
            <svg class="hist" viewBox=format!("0 0 {w} {}", h + 18.0) role="img"
                aria-label="Histogram of the teacher's confidence; kept instances in the lower part of each bar">
                {bars}
                <line x1="0" y1=h.to_string() x2=w.to_string() y2=h.to_string() class="axis" />
                <text x="0" y=(h + 14.0).to_string() class="tick">"0"</text>
                <text x=(w / 2.0).to_string() y=(h + 14.0).to_string() class="tick" text-anchor="middle">"0.5"</text>
                <text x=w.to_string() y=(h + 14.0).to_string() class="tick" text-anchor="end">"1"</text>
            </svg>
        }
    };
    view! {
        <div class="selfpaced">
            <p>
                "Self-paced distillation keeps the distillation term only for the instances the teacher is most confident about "
                "(softmax probability of the positive among its original candidates), admitting more as training goes on. "
                {format!("Histogram over the {n} exported training instances.")}
            </p>
            <div class="controls">
                <Slider id="progress" label="Training progress" min=0.0 max=1.0 step=0.01
                    value=Signal::derive(move || progress.get()) set=Callback::new(move |v| progress.set(v)) />
                <Slider id="lambda0" label="λ0 (share kept at the start)" min=0.05 max=1.0 step=0.05
                    value=Signal::derive(move || lambda0.get()) set=Callback::new(move |v| lambda0.set(v)) />
                <div class="field">
                    <label for="schedule">"Schedule"</label>
                    <select id="schedule" on:change=move |ev| schedule.set(match event_target_value(&ev).as_str() {
                        "linear" => Schedule::Linear,
                        "constant" => Schedule::Constant,
                        _ => Schedule::Root,
                    })>
                        <option value="root" selected=true>"root"</option>
                        <option value="linear">"linear"</option>
                        <option value="constant">"constant"</option>
                    </select>
                </div>
            </div>
            {histogram}
            <p class="legend"><span class="key kept"></span>" kept  "<span class="key dropped"></span>" left out"</p>
            <p data-testid="selfpaced-share" class="big">
                {move || {
                    let s = selection.get();
                    format!(
                        "λ = {:.3}: {} of {} instances ({:.0}%) keep their distillation term{}.",
                        s.lambda,
                        s.kept.len(),
                        n,
                        s.kept.len() as f32 / n as f32 * 100.0,
                        s.threshold.map(|t| format!(", confidence ≥ {t:.3}")).unwrap_or_default()
                    )
                }}
            </p>
        </div>
    }
        .into_any()
}

#[component]
fn Search() -> impl IntoView {
    let l = loaded();
    if l.corpus.is_none() {
        return view! { <p class="notice">"No search corpus was exported (use --corpus N with N > 0)."</p> }.into_any();
    }
    let count = l.corpus.as_ref().map(|c| c.0.len()).unwrap_or(0);
    let query = RwSignal::new(String::new());
    // The hits, the query's encoding time and how many searches have finished (a test waits on
    // the count: two encodings can take the same time).
    let results = RwSignal::new(None::<(Vec<(usize, f32)>, f64, u32)>);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let backend = l.engine.backend.name();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = query.get();
        if text.trim().is_empty() || busy.get() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let l = loaded();
            match l.engine.encode_query(&text).await {
                Ok((v, ms)) => {
                    metric("query_encode_ms", ms);
                    let (_, vectors) = l.corpus.as_ref().expect("checked above");
                    let done = results.get_untracked().map_or(0, |r| r.2) + 1;
                    results.set(Some((top_k(vectors, l.engine.student.dim(), &v, 10), ms, done)));
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="search">
            <p>{format!("The student embeds your query and ranks the {count} bundled passages by cosine similarity (their vectors were computed by adam export-web).")}</p>
            <form on:submit=submit class="search-form" role="search">
                <label for="q" class="visually-hidden">"Query"</label>
                <input id="q" type="search" data-testid="search-input" placeholder="Type a question…"
                    prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev)) />
                <button type="submit" disabled=move || busy.get()>"Search"</button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || results.get().map(|(hits, ms, done)| {
                let l = loaded();
                let (passages, _) = l.corpus.as_ref().expect("checked above");
                let items = hits.iter().map(|&(i, s)| view! {
                    <li>
                        <span class="score">{format!("{s:.3}")}</span>
                        <span class="doc">{passages[i].text.clone()}</span>
                        <span class="docid muted">{passages[i].id.clone()}</span>
                    </li>
                }).collect_view();
                view! {
                    <p class="muted" data-testid="search-timing" data-encode-ms=format!("{ms:.2}") data-searches=done>
                        {format!("Query encoded in {ms:.1} ms on {backend}.")}
                    </p>
                    <ol class="hits" data-testid="search-results">{items}</ol>
                }
            })}
        </div>
    }
        .into_any()
}

/// A JSON value as a table when it is a list of flat objects, else as text.
fn json_view(name: String, value: &serde_json::Value) -> AnyView {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            n.as_f64().map(|x| if x.fract() == 0.0 { format!("{x}") } else { format!("{x:.4}") }).unwrap_or_default()
        }
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => {
            let s = other.to_string();
            if s.len() > 60 {
                format!("{}…", &s[..s.char_indices().nth(60).map(|c| c.0).unwrap_or(s.len())])
            } else {
                s
            }
        }
    };
    if let Value::Array(items) = value
        && !items.is_empty()
        && items.iter().all(Value::is_object)
    {
        let mut cols: Vec<String> = Vec::new();
        for item in items {
            for (k, v) in item.as_object().expect("checked") {
                if !v.is_array() && !v.is_object() && !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
        let head = cols.iter().map(|c| view! { <th scope="col">{c.clone()}</th> }).collect_view();
        let body = items
            .iter()
            .map(|item| {
                let cells = cols
                    .iter()
                    .map(|c| view! { <td>{item.get(c).map(scalar).unwrap_or_default()}</td> })
                    .collect_view();
                view! { <tr>{cells}</tr> }
            })
            .collect_view();
        return view! {
            <div class="table-wrap">
                <table><caption>{name}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
            </div>
        }
        .into_any();
    }
    if let Value::Object(map) = value {
        let rows = map
            .iter()
            .filter(|(_, v)| !v.is_array() && !v.is_object())
            .map(|(k, v)| view! { <tr><th scope="row">{k.clone()}</th><td>{scalar(v)}</td></tr> })
            .collect_view();
        let nested = map
            .iter()
            .filter(|(_, v)| {
                v.is_array() && v.as_array().is_some_and(|a| a.iter().all(Value::is_object)) || v.is_object()
            })
            .map(|(k, v)| json_view(format!("{name} › {k}"), v))
            .collect_view();
        return view! {
            <div class="table-wrap"><table><caption>{name}</caption><tbody>{rows}</tbody></table></div>
            {nested}
        }
        .into_any();
    }
    view! { <pre>{scalar(value)}</pre> }.into_any()
}

/// One method's row of a report's comparison: its name, run count and each measure's cell.
struct ComparisonRow {
    method: String,
    runs: u64,
    cells: Vec<(f64, Option<f64>)>,
}

/// The comparison in `report.json` as `adam report` and `adam demo` write it (`methods`: each
/// with `method`, `runs` and `metrics` of `{mean, std}`): the measures in the report's order
/// (nDCG@10, MRR@10, Recall@100 first) and one row per method. `None` for JSON of another shape,
/// which the page then shows as generic tables.
fn comparison(report: &serde_json::Value) -> Option<(Vec<String>, Vec<ComparisonRow>)> {
    const FIRST: [&str; 3] = ["ndcg@10", "mrr@10", "recall@100"];
    let methods = report.get("methods")?.as_array()?;
    let mut measures: Vec<String> = Vec::new();
    for m in methods {
        for name in m.get("metrics")?.as_object()?.keys() {
            if !measures.contains(name) {
                measures.push(name.clone());
            }
        }
    }
    let rank = |n: &str| FIRST.iter().position(|f| *f == n).unwrap_or(FIRST.len());
    measures.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let rows = methods
        .iter()
        .map(|m| {
            let metrics = m.get("metrics")?.as_object()?;
            let cells = measures
                .iter()
                .map(|name| {
                    let s = metrics.get(name)?;
                    Some((s.get("mean")?.as_f64()?, s.get("std").and_then(serde_json::Value::as_f64)))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(ComparisonRow {
                method: m.get("method")?.as_str()?.to_string(),
                runs: m.get("runs")?.as_u64()?,
                cells,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (!rows.is_empty() && !measures.is_empty()).then_some((measures, rows))
}

fn comparison_table(measures: Vec<String>, rows: Vec<ComparisonRow>) -> AnyView {
    let head = measures.iter().map(|m| view! { <th scope="col">{m.clone()}</th> }).collect_view();
    let body = rows
        .into_iter()
        .map(|r| {
            let cells = r
                .cells
                .iter()
                .map(|&(mean, std)| {
                    let text = match std {
                        Some(sd) => format!("{mean:.4} ± {sd:.4}"),
                        None => format!("{mean:.4}"),
                    };
                    view! { <td class="num" data-mean=format!("{mean}")>{text}</td> }
                })
                .collect_view();
            view! { <tr><th scope="row">{r.method}</th><td class="num">{r.runs}</td>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table data-testid="report-table">
                <caption>"The comparison: mean ± sample s.d. over seeds (one run: no ± part)"</caption>
                <thead><tr><th scope="col">"method"</th><th scope="col">"runs"</th>{head}</tr></thead>
                <tbody>{body}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn Report() -> impl IntoView {
    let l = loaded();
    let Some(info) = l.manifest.report.clone() else {
        return view! {
            <p class="notice">"No training report was exported. Pass " <code>"--report DIR"</code> " to adam export-web to show one here."</p>
        }
            .into_any();
    };
    let base = l.base.clone();
    let images = info
        .images
        .iter()
        .map(|img| {
            let src = format!("{base}{img}");
            let alt = format!("Training report plot {img}");
            view! { <figure><img src=src alt=alt loading="lazy" /><figcaption>{img.clone()}</figcaption></figure> }
        })
        .collect_view();
    // The comparison first, as a table of numbers; the whole file stays readable below it.
    let table = l.report.as_ref().and_then(comparison).map(|(measures, rows)| comparison_table(measures, rows));
    let json = l.report.as_ref().map(|v| {
        let tables = json_view("report.json".into(), v);
        if table.is_some() {
            view! { <details><summary>"report.json, every field"</summary>{tables}</details> }.into_any()
        } else {
            tables
        }
    });
    view! { <div class="report" data-testid="report">{table}{images}{json}</div> }.into_any()
}

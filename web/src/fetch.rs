//! Fetching the asset files with progress, and readable errors naming the file.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

/// A JavaScript error as text.
pub fn js_error(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The bytes at `url`; `progress(n)` is called as each chunk of `n` bytes arrives.
pub async fn fetch_bytes(url: &str, mut progress: impl FnMut(u64)) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: cannot be fetched ({}); is the page served over http?", js_error(&e)))?;
    let response: Response = response.dyn_into().map_err(|_| format!("{url}: not an HTTP response"))?;
    if !response.ok() {
        let hint = if response.status() == 404 {
            " — the file is missing: export the assets with `adam export-web --output web/assets` (see the README)"
        } else {
            ""
        };
        return Err(format!("{url}: HTTP {} {}{hint}", response.status(), response.status_text()));
    }
    let Some(body) = response.body() else {
        let buffer = JsFuture::from(response.array_buffer().map_err(|e| format!("{url}: {}", js_error(&e)))?)
            .await
            .map_err(|e| format!("{url}: reading failed ({})", js_error(&e)))?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        progress(bytes.len() as u64);
        return Ok(bytes);
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("{url}: download interrupted ({})", js_error(&e)))?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done")).map(|v| v.is_truthy()).unwrap_or(true);
        if done {
            break;
        }
        let value =
            Reflect::get(&chunk, &JsValue::from_str("value")).map_err(|e| format!("{url}: {}", js_error(&e)))?;
        let array = Uint8Array::new(&value);
        let start = out.len();
        out.resize(start + array.length() as usize, 0);
        array.copy_to(&mut out[start..]);
        progress(array.length() as u64);
    }
    Ok(out)
}

/// UTF-8 text of `bytes`, or a message that says what came instead (an HTML page usually means
/// the server answered a missing file with its index page).
pub fn text_of<'a>(bytes: &'a [u8], url: &str) -> Result<&'a str, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{url}: not UTF-8 text ({e})"))?;
    if text.trim_start().starts_with('<') {
        return Err(format!(
            "{url}: the server sent an HTML page instead of the file — the assets folder is probably missing: \
             export it with `adam export-web --output web/assets` (see the README)"
        ));
    }
    Ok(text)
}

/// Lets the browser render (progress bars) before a long synchronous step.
pub async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Milliseconds since the page started.
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

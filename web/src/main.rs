//! The ADAM demo in the browser: the dark-example lab (teacher and student soft labels, live),
//! self-paced selection, search with the student, and the training report. Assets come from
//! `adam export-web`; see the README.

mod app;
mod engine;
mod fetch;
mod state;

// The static constructors (`inventory`'s, which register cubecl's IR dialects) run once, below.
// A module that never calls them itself is linked "command-style": the linker runs them at the
// start of every call into the wasm (each WebGPU callback, each JS value handed over), which was
// half of the page's own time in a re-score on WebGPU (BENCHMARKS.md, issue 19; the remedy is
// `inventory`'s documented one).
#[cfg(target_family = "wasm")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    // SAFETY: called once, first, before anything reads what the constructors register.
    #[cfg(target_family = "wasm")]
    unsafe {
        __wasm_call_ctors();
    }
    // A panic must never leave a blank page: show it, readable, and keep it in the console.
    std::panic::set_hook(Box::new(|info| {
        let message = format!("The demo stopped on an internal error: {info}");
        web_sys::console::error_1(&message.clone().into());
        state::show_fatal(&message);
    }));
    leptos::mount::mount_to_body(app::App);
}

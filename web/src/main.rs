//! The ADAM demo in the browser: the dark-example lab (teacher and student soft labels, live),
//! self-paced selection, search with the student, and the training report. Assets come from
//! `adam export-web`; see the README.

mod app;
mod engine;
mod fetch;
mod state;

fn main() {
    // A panic must never leave a blank page: show it, readable, and keep it in the console.
    std::panic::set_hook(Box::new(|info| {
        let message = format!("The demo stopped on an internal error: {info}");
        web_sys::console::error_1(&message.clone().into());
        state::show_fatal(&message);
    }));
    leptos::mount::mount_to_body(app::App);
}

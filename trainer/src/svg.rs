//! Hand-written SVG, as `adam report` (dev curves) and `adam teacher inspect` (histograms) draw it:
//! the document's opening and title, and escaping.

use std::fmt::Write as _;

/// The opening `<svg>` element of a `width` × `height` figure in a sans-serif font of
/// `font_size`, and its white background.
pub fn start(width: f64, height: f64, font_size: u32) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="{font_size}">"#
    );
    let _ = writeln!(s, r##"<rect width="{width}" height="{height}" fill="#ffffff"/>"##);
    s
}

/// A title centred on `x`, its baseline at `y`.
pub fn title(s: &mut String, x: f64, y: f64, font_size: u32, text: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="{font_size}">{}</text>"#,
        xml_escape(text)
    );
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

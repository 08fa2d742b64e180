//! The files `adam export-web` writes for the browser demo and the page reads: the manifest, the
//! examples with the teacher's scores, and the bundled search corpus. One definition for both
//! sides keeps them in step.

use serde::{Deserialize, Serialize};

use crate::softlabels::LabSettings;
use crate::{Error, Result};

/// Version of the asset layout; the page refuses other versions with a readable message.
pub const FORMAT_VERSION: u32 = 1;

/// `manifest.json`: what the asset folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// `adam` version that wrote it.
    pub generator: String,
    pub dataset: DatasetInfo,
    pub student: ModelInfo,
    /// Absent for a student-only export (no lab, no self-paced view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<ModelInfo>,
    /// The lab's starting settings.
    pub settings: LabSettings,
    /// Tokens per text (student) and per (query, passage) pair (teacher).
    pub max_length: usize,
    /// `examples.json`, when there is a teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<CorpusInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportInfo>,
    /// Every file, relative to the folder, with its size.
    pub files: Vec<FileInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Folder name of the BEIR dataset, e.g. `wikiqa`.
    pub name: String,
    pub split: String,
    /// Where the hard negatives came from, e.g. `bm25`.
    pub negatives: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Subfolder, e.g. `student`.
    pub dir: String,
    /// Files of the folder (relative to it) the loader needs.
    pub files: Vec<String>,
    /// Weights' float type as stored (`f16` or `f32`); the loader computes in f32 either way.
    pub dtype: String,
    /// Where the model came from (the folder name given to export-web).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// JSON array of [`CorpusPassage`].
    pub passages: String,
    /// Little-endian f16 vectors, row-major `[count, dim]`, the student's embeddings.
    pub vectors: String,
    pub count: usize,
    pub dim: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusPassage {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInfo {
    /// Subfolder holding the copied report.
    pub dir: String,
    /// `report.json`, if the report had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// Plots (SVG/PNG), relative to the asset folder.
    pub images: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub bytes: u64,
    /// Size after gzip -6, what a compressing server sends (absent where it was not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_bytes: Option<u64>,
}

/// `examples.json`: training instances with the teacher's scores of their original candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleSet {
    pub dataset: String,
    pub split: String,
    pub examples: Vec<Example>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub query_id: String,
    pub query: String,
    pub positive: Passage,
    pub negatives: Vec<Passage>,
    /// The teacher's scores of the positive and of each negative.
    pub teacher: Option<ExampleScores>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleScores {
    pub positive: f32,
    pub negatives: Vec<f32>,
}

impl ExampleScores {
    /// Positive first, as `selfpaced::confidence` takes them.
    pub fn all(&self) -> Vec<f32> {
        std::iter::once(self.positive).chain(self.negatives.iter().copied()).collect()
    }
}

impl Manifest {
    /// Parses `manifest.json` and checks its version; `name` names it in errors.
    pub fn from_json(bytes: &[u8], name: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Version {
            format: Option<u32>,
        }
        let v: Version = serde_json::from_slice(bytes)
            .map_err(|e| Error::format(std::path::Path::new(name), Some(e.line()), format!("not a manifest: {e}")))?;
        if v.format != Some(FORMAT_VERSION) {
            return Err(Error::Invalid(format!(
                "{name}: asset format {:?}, this page reads format {FORMAT_VERSION}: export the assets again with this version of adam export-web",
                v.format
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| Error::format(std::path::Path::new(name), Some(e.line()), e))
    }
}

/// Decodes little-endian f16 bytes into f32 values.
pub fn f16_to_f32(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::Invalid(format!("{} bytes is not a whole number of f16 values", bytes.len())));
    }
    Ok(bytes.chunks_exact(2).map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect())
}

/// IEEE 754 binary16 → f32 (exact).
pub fn half_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: value = frac · 2^-24.
            let v = frac as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// f32 → IEEE 754 binary16, rounding to nearest even (as `half::f16::from_f32`).
pub fn f32_to_half(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00; // overflow → infinity
    }
    if e <= 0 {
        if e < -10 {
            return sign; // underflow → ±0
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let mid = 1 << (shift - 1);
        let round = rem > mid || (rem == mid && half & 1 == 1);
        return sign | (half + round as u32) as u16;
    }
    let half = ((e as u32) << 10) | (mant >> 13);
    let rem = mant & 0x1fff;
    let round = rem > 0x1000 || (rem == 0x1000 && half & 1 == 1);
    sign | (half + round as u32) as u16 // a carry into the exponent is the correct rounding
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_round_trip_and_rounding() {
        for (x, h) in [(0.0f32, 0x0000u16), (1.0, 0x3c00), (-2.0, 0xc000), (65504.0, 0x7bff), (0.5, 0x3800)] {
            assert_eq!(f32_to_half(x), h, "{x}");
            assert_eq!(half_to_f32(h), x);
        }
        assert_eq!(f32_to_half(1e6), 0x7c00);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f32_to_half(2f32.powi(-24)), 0x0001);
        // Every half value survives f16 → f32 → f16.
        for h in 0..=u16::MAX {
            let x = half_to_f32(h);
            if x.is_nan() {
                continue;
            }
            assert_eq!(f32_to_half(x), h, "{h:#06x}");
        }
        // Ties to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
        assert_eq!(f32_to_half(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_half(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        let bytes = [0x00, 0x3c, 0x00, 0xc0];
        assert_eq!(f16_to_f32(&bytes).unwrap(), vec![1.0, -2.0]);
        assert!(f16_to_f32(&bytes[..3]).is_err());
    }

    #[test]
    fn manifest_version_is_checked() {
        let err = Manifest::from_json(br#"{"format": 99}"#, "assets/manifest.json").unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
        assert!(Manifest::from_json(b"<html>", "assets/manifest.json").is_err());
    }
}

//! Splitting one job into `N` shards (`--shard i/N`) that separate processes or machines run,
//! and finding their files again to merge them (`--merge N`).
//!
//! A job is a sequence of units (chunks of texts, batches of documents, batches of queries) that
//! the unsharded command would process in that order. Shard `i` of `N` takes a contiguous run of
//! whole units, so each shard computes exactly the batches the unsharded run computes and the
//! merged output has the same bytes.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Result, bail};

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("`{s}` is not a shard: write I/N, e.g. 2/4 for the second of four (1 <= I <= N)");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let index: usize = i.trim().parse().map_err(|_| usage())?;
        let count: usize = n.trim().parse().map_err(|_| usage())?;
        if count == 0 || index == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Every shard of `count`, in order.
    pub fn all(count: usize) -> impl Iterator<Item = Shard> {
        (1..=count).map(move |index| Shard { index, count })
    }

    /// The units of this shard among `units`: contiguous, in order, sizes differing by at most
    /// one; the shards of one count cover `0..units` once.
    pub fn units(&self, units: usize) -> Range<usize> {
        (self.index - 1) * units / self.count..self.index * units / self.count
    }

    /// The units of this shard when unit `u` costs `costs[u]`: contiguous and in order as
    /// [`Shard::units`], with boundaries where the running cost comes closest to each `k / count`
    /// of the total, so shards of a job sorted by cost (longest texts first) take similar times.
    pub fn weighted_units(&self, costs: &[u64]) -> Range<usize> {
        let total: u128 = costs.iter().map(|&c| c as u128).sum();
        let boundary = |k: usize| -> usize {
            if k == 0 {
                return 0;
            }
            if k == self.count {
                return costs.len();
            }
            // The unit count whose running cost is closest to k / count of the total (the
            // smaller on a tie).
            let target = total * k as u128;
            let mut running: u128 = 0;
            let mut best = (u128::MAX, 0);
            for u in 0..=costs.len() {
                let scaled = running * self.count as u128;
                let distance = scaled.abs_diff(target);
                if distance < best.0 {
                    best = (distance, u);
                }
                if scaled >= target || u == costs.len() {
                    break;
                }
                running += costs[u] as u128;
            }
            best.1
        };
        boundary(self.index - 1)..boundary(self.index)
    }

    /// The items of this shard among `items` processed in units of `unit` items (the last unit
    /// may be short): whole units only.
    pub fn items(&self, items: usize, unit: usize) -> Range<usize> {
        let unit = unit.max(1);
        let r = self.units(items.div_ceil(unit));
        (r.start * unit).min(items)..(r.end * unit).min(items)
    }

    /// `path` with `.shard-I-of-N` appended to its file name: where a shard's output goes.
    pub fn path(&self, path: &Path) -> PathBuf {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        path.with_file_name(format!("{name}.{}", self.suffix()))
    }

    /// `shard-I-of-N`.
    pub fn suffix(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// The shard files of `output` for a merge of `count`, or an error that names every missing one
/// and the command to make it.
pub fn existing_paths(output: &Path, count: usize, rerun_hint: &str) -> Result<Vec<PathBuf>> {
    if count == 0 {
        bail!("--merge needs the number of shards (at least 1)");
    }
    let paths: Vec<PathBuf> = Shard::all(count).map(|s| s.path(output)).collect();
    let missing: Vec<String> = Shard::all(count).filter(|s| !s.path(output).exists()).map(|s| s.to_string()).collect();
    if !missing.is_empty() {
        bail!(
            "cannot merge {}: shard(s) {} not found ({} ...); run {rerun_hint} with --shard I/{count} for each",
            output.display(),
            missing.join(", "),
            Shard { index: 1, count }.path(output).display()
        );
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_form_to_use() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in ["0/4", "5/4", "2", "a/4", "2/0", "", "-1/4"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_cover_every_unit_once_in_order() {
        for units in [0, 1, 2, 7, 100] {
            for count in 1..=9 {
                let mut next = 0;
                for s in Shard::all(count) {
                    let r = s.units(units);
                    assert_eq!(r.start, next, "{units} units, shard {s}");
                    assert!(r.len() <= units.div_ceil(count) && r.len() >= units / count);
                    next = r.end;
                }
                assert_eq!(next, units);
            }
        }
    }

    #[test]
    fn weighted_shards_balance_cost_and_cover_every_unit_once() {
        // Sorted costs, as in a corpus encoded longest first: the first shard takes fewer units.
        let costs = [40, 30, 10, 10, 10, 10, 10, 10, 10, 10];
        let got: Vec<_> = Shard::all(2).map(|s| s.weighted_units(&costs)).collect();
        assert_eq!(got, vec![0..2, 2..10]);
        let got: Vec<_> = Shard::all(3).map(|s| s.weighted_units(&costs)).collect();
        assert_eq!(got, vec![0..1, 1..5, 5..10]);
        for count in 1..=12 {
            let mut next = 0;
            for s in Shard::all(count) {
                let r = s.weighted_units(&costs);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, costs.len());
        }
        // Equal costs: shard sizes differ by at most one.
        let flat = [7u64; 9];
        for count in 1..=9 {
            let sizes: Vec<usize> = Shard::all(count).map(|s| s.weighted_units(&flat).len()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{count}: {sizes:?}");
            assert_eq!(sizes.iter().sum::<usize>(), 9);
        }
        assert_eq!(Shard { index: 1, count: 3 }.weighted_units(&[]), 0..0);
    }

    #[test]
    fn items_split_at_unit_boundaries() {
        // 10 items in units of 4: [0..4), [4..8), [8..10).
        let got: Vec<_> = Shard::all(2).map(|s| s.items(10, 4)).collect();
        assert_eq!(got, vec![0..4, 4..10]);
        let got: Vec<_> = Shard::all(3).map(|s| s.items(10, 4)).collect();
        assert_eq!(got, vec![0..4, 4..8, 8..10]);
        // More shards than units: some shards are empty.
        let got: Vec<_> = Shard::all(4).map(|s| s.items(5, 4)).collect();
        assert_eq!(got, vec![0..0, 0..4, 4..4, 4..5]);
    }

    #[test]
    fn paths_name_the_shard() {
        let s = Shard { index: 3, count: 8 };
        assert_eq!(s.path(Path::new("out/scores.jsonl")), PathBuf::from("out/scores.jsonl.shard-3-of-8"));
        let dir = std::env::temp_dir().join(format!("adam-shard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("v.jsonl");
        std::fs::write(Shard { index: 2, count: 3 }.path(&out), "").unwrap();
        let e = existing_paths(&out, 3, "`adam embed`").unwrap_err().to_string();
        assert!(e.contains("1/3, 3/3") && e.contains("--shard I/3"), "{e}");
        std::fs::write(Shard { index: 1, count: 3 }.path(&out), "").unwrap();
        std::fs::write(Shard { index: 3, count: 3 }.path(&out), "").unwrap();
        assert_eq!(existing_paths(&out, 3, "x").unwrap().len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

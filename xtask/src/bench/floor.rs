//! The "floors" table of docs/PERFORMANCE.md (`<!-- bench:floor -->`): each operation's time
//! beside the least work it must do, measured in the same `cargo xtask bench` run.
//!
//! - split K-of-N of L bytes: the larger of the generator's time for its (K-1)·L random bytes
//!   (`floor/<t>/<size>/rng`) and the time to read the secret and write N buffers
//!   (`floor/<t>/<size>/copy`);
//! - rebuild: the time to read K buffers and write one, their XOR (`floor/<t>/<size>/xor`);
//! - put and get at 1 MiB: HMAC-SHA256 alone over 1 MiB (`hmac_sha256/1MiB` of the e2e
//!   suite, the suite that measures them).
//!
//! Split and rebuild are the `floor/<t>/<size>/split` and `.../rebuild` cases, measured in
//! the seconds around their floors (the sharing suite's `bench_floors` says why), with
//! `.../clock`, a chain of 10^6 dependent multiplies (3 cycles each), from which the table
//! estimates the core clock during each case. All of them come from `cargo bench -p
//! vaultdb-core --bench sharing` except put, get and their HMAC (`cargo bench -p vaultdb-fs
//! --bench e2e`). The targets are those of the issue that added the GFNI kernels and the
//! VAES generator.

use std::fmt::Write as _;

use serde_json::Value;

/// Split and rebuild must stay within this factor of their floors.
const WITHIN_FLOOR: f64 = 1.25;
/// put and get at 1 MiB: at least this share of HMAC-SHA256's throughput.
const PUT_OF_HMAC: f64 = 0.70;
const GET_OF_HMAC: f64 = 0.80;
/// On a CPU with GFNI: split 2-of-3 at 1 MiB at least this much faster than the split before
/// (`split_before/2of3/avx2/1MiB`: AES-NI generator, 16 KiB steps, AVX2 kernel).
const GFNI_VS_BEFORE: f64 = 1.5;

/// One target's outcome, for the summary table of `bench.rs`.
pub(super) struct FloorVerdict {
    pub(super) target: String,
    pub(super) measured: String,
    pub(super) met: Option<bool>,
    pub(super) text: String,
}

/// The table (after `caption`) and its targets' verdicts.
pub(super) fn render(results: &Value, caption: &str) -> (String, Vec<FloorVerdict>) {
    let r = Results(results);
    let isa = r.best_isa();
    let mut verdicts = Vec::new();
    let mut s = caption.to_owned();
    let _ = writeln!(
        s,
        "CPU `{}`; kernel `{isa}` (the fastest this CPU has, chosen at run time). Times are \
         criterion medians; \"x floor\" is the time over its floor's time (1.00x = as fast as \
         the least work the operation must do). Split's floor is the larger of the \
         generator's time for its (K-1)·L random bytes and the time to read the secret and \
         write N buffers (N `copy_from_slice`); rebuild's is reading K buffers and writing \
         one (the same K shares XOR-ed into the same output buffer, through the same kernel with \
         every weight 1); put's and get's is \
         HMAC-SHA256 alone over the same 1 MiB in the same suite. Each split and rebuild is \
         measured in the seconds around its floors (criterion group `floor`), not minutes \
         away in its own group: the clock moves, and it moves the split (bound by the AES \
         rounds) but not the copy (bound by memory).\n",
        results["machine"]["cpu"].as_str().unwrap_or("?")
    );
    s.push_str("| operation | size | time | floor | floor time | x floor | target |\n");
    s.push_str("|---|---|---:|---|---:|---:|---|\n");
    for size in ["64KiB", "1MiB"] {
        for (t, n, k) in [("2of3", 3, 2), ("3of5", 5, 3)] {
            let case = |what: &str| r.us("sharing", &format!("floor/{t}/{size}/{what}"));
            let rng = case("rng");
            let copy = case("copy");
            let floor = rng.zip(copy).map(|(a, b)| a.max(b));
            let which = match (rng, copy) {
                (Some(a), Some(b)) if a >= b => format!("generator, {} x L bytes", k - 1),
                (Some(_), Some(_)) => format!("copy 1 -> {n}"),
                _ => "n/a".into(),
            };
            let split = case("split");
            let name = format!("split {}", pretty(t));
            row(&mut s, &mut verdicts, &name, size, split, &which, floor, Some(WITHIN_FLOOR));

            let xor = case("xor");
            let rebuild = case("rebuild");
            let name = format!("rebuild {}", pretty(t));
            let which = format!("XOR {k} -> 1");
            row(&mut s, &mut verdicts, &name, size, rebuild, &which, xor, Some(WITHIN_FLOOR));
        }
    }
    let hmac = r.us("e2e", "hmac_sha256/1MiB");
    for (op, share) in [("put", PUT_OF_HMAC), ("get", GET_OF_HMAC)] {
        let time = r.us("e2e", &format!("e2e_{op}/memory/1MiB"));
        let name = format!("{op}, memory backends, 2-of-3");
        row(&mut s, &mut verdicts, &name, "1MiB", time, "HMAC-SHA256", hmac, Some(1.0 / share));
    }
    s.push_str("\nThe floors themselves, and the generator for L bytes:\n\n");
    s.push_str("| floor | 64 KiB | 1 MiB |\n|---|---:|---:|\n");
    let floors = [
        ("generator (AES-256-CTR), L bytes (2-of-3)", "floor/2of3/{size}/rng"),
        ("generator, 2 L bytes (3-of-5)", "floor/3of5/{size}/rng"),
        ("copy 1 -> 3", "floor/2of3/{size}/copy"),
        ("copy 1 -> 5", "floor/3of5/{size}/copy"),
        ("XOR 2 -> 1", "floor/2of3/{size}/xor"),
        ("XOR 3 -> 1", "floor/3of5/{size}/xor"),
        ("HMAC-SHA256 (sharing suite)", "hmac_sha256/{size}"),
    ];
    for (name, id) in floors {
        let cell = |size: &str| dur(r.us("sharing", &id.replace("{size}", size)));
        let _ = writeln!(s, "| {name} | {} | {} |", cell("64KiB"), cell("1MiB"));
    }
    let clocks: Vec<String> = ["64KiB", "1MiB"]
        .into_iter()
        .flat_map(|size| ["2of3", "3of5"].map(move |t| (t, size)))
        .filter_map(|(t, size)| {
            let us = r.us("sharing", &format!("floor/{t}/{size}/clock"))?;
            Some(format!("{} at {}: {:.2} GHz", pretty(t), size_text(size), clock_ghz(us)))
        })
        .collect();
    if !clocks.is_empty() {
        let _ = writeln!(
            s,
            "\nThe core clock during each case, estimated from a chain of 10^6 dependent \
             64-bit multiplies (3 cycles each on x86-64): {}.",
            clocks.join("; ")
        );
    }

    // GFNI against the split before it, same run.
    let best = r.us("sharing", &format!("split/2of3/{isa}/1MiB"));
    let before = r.us("sharing", "split_before/2of3/avx2/1MiB");
    let kernels: Vec<(String, f64)> = r
        .ids("sharing")
        .into_iter()
        .filter_map(|id| {
            let isa = id.strip_prefix("split_kernels/2of3/")?.strip_suffix("/1MiB")?;
            Some((isa.to_owned(), r.us("sharing", &id)?))
        })
        .collect();
    if !kernels.is_empty() || before.is_some() {
        s.push_str(
            "\nsplit 2-of-3 at 1 MiB on every kernel of this CPU, and as it was before:\n\n",
        );
        s.push_str("| split 2-of-3, 1 MiB | time | speed-up of the current split |\n");
        s.push_str("|---|---:|---:|\n");
        let mut line = |name: String, t: Option<f64>| {
            let up = best.zip(t).map_or("n/a".into(), |(b, t)| format!("{:.2}x", t / b));
            let _ = writeln!(s, "| {name} | {} | {up} |", dur(t));
        };
        for (k, t) in &kernels {
            line(format!("`{k}` kernel"), Some(*t));
        }
        line("before: `aes` 0.8 (AES-NI) generator, 16 KiB steps, `avx2` kernel".into(), before);
    }
    if isa.contains("gfni") {
        let up = best.zip(before).map(|(b, o)| o / b);
        let (met, text) = at_least(up, GFNI_VS_BEFORE);
        verdicts.push(FloorVerdict {
            target: format!(
                "split 2-of-3 @ 1 MiB on `{isa}` >= {GFNI_VS_BEFORE}x the split before (AVX2)"
            ),
            measured: up.map_or("n/a".into(), |u| format!("{u:.2}x")),
            met,
            text,
        });
    }
    (s, verdicts)
}

/// Multiplies in the sharing suite's `floor/<t>/<size>/clock` chain.
const CLOCK_CHAIN: f64 = 1e6;

/// The clock in GHz from the chain's time in microseconds, at 3 cycles per multiply.
fn clock_ghz(us: f64) -> f64 {
    3.0 * CLOCK_CHAIN / (us * 1e3)
}

/// One row of the main table, and its verdict when `limit` (a bound on time / floor) is set.
#[allow(clippy::too_many_arguments)]
fn row(
    s: &mut String,
    verdicts: &mut Vec<FloorVerdict>,
    name: &str,
    size: &str,
    time: Option<f64>,
    which: &str,
    floor: Option<f64>,
    limit: Option<f64>,
) {
    let x = time.zip(floor).map(|(t, f)| t / f);
    let mut target = String::new();
    if let Some(limit) = limit {
        let (met, text) = at_most(x, limit);
        let goal = format!("{name} @ {} <= {limit:.2}x its floor ({which})", size_text(size));
        target = format!("<= {limit:.2}x: {text}");
        verdicts.push(FloorVerdict {
            target: goal,
            measured: x.map_or("n/a".into(), |x| format!("{x:.2}x")),
            met,
            text,
        });
    }
    let _ = writeln!(
        s,
        "| {name} | {} | {} | {which} | {} | {} | {target} |",
        size_text(size),
        dur(time),
        dur(floor),
        x.map_or("n/a".into(), |x| format!("{x:.2}x"))
    );
}

fn pretty(t: &str) -> String {
    t.replace("of", "-of-")
}

fn size_text(size: &str) -> String {
    size.replace("KiB", " KiB").replace("MiB", " MiB")
}

/// `measured >= target`.
fn at_least(measured: Option<f64>, target: f64) -> (Option<bool>, String) {
    match measured {
        None => (None, "not measured".into()),
        Some(m) if m >= target => (Some(true), format!("met ({:.2}x the target)", m / target)),
        Some(m) => (Some(false), format!("**missed by {:.0}%**", (1.0 - m / target) * 100.0)),
    }
}

/// `measured <= limit`.
fn at_most(measured: Option<f64>, limit: f64) -> (Option<bool>, String) {
    match measured {
        None => (None, "not measured".into()),
        Some(m) if m <= limit => (Some(true), "met".into()),
        Some(m) => (Some(false), format!("**missed by {:.0}%**", (m / limit - 1.0) * 100.0)),
    }
}

/// A duration given in microseconds.
fn dur(us: Option<f64>) -> String {
    match us {
        None => "n/a".into(),
        Some(x) if x < 10.0 => format!("{x:.2} us"),
        Some(x) if x < 1000.0 => format!("{x:.1} us"),
        Some(x) => format!("{:.2} ms", x / 1e3),
    }
}

/// Read access to the saved results (`<target>/vaultdb-bench/results.json`).
struct Results<'a>(&'a Value);

impl Results<'_> {
    /// A criterion case's median, in microseconds.
    fn us(&self, suite: &str, id: &str) -> Option<f64> {
        self.0["criterion"][suite][id]["median_ns"].as_f64().map(|ns| ns / 1e3)
    }

    fn ids(&self, suite: &str) -> Vec<String> {
        self.0["criterion"][suite]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The kernel of the `split/2of3/<isa>/1MiB` case that is not the portable one.
    fn best_isa(&self) -> String {
        self.ids("sharing")
            .iter()
            .filter_map(|id| id.strip_prefix("split/2of3/")?.strip_suffix("/1MiB"))
            .find(|isa| *isa != "portable")
            .unwrap_or("portable")
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn case(ns: f64) -> Value {
        json!({"median_ns": ns, "bytes": 1048576})
    }

    #[test]
    fn floors_and_verdicts() {
        let results = json!({
            "machine": {"cpu": "Test CPU"},
            "criterion": {
                "sharing": {
                    "split/2of3/avx512-gfni/1MiB": case(99_000.0),
                    "split/2of3/portable/1MiB": case(900_000.0),
                    "floor/2of3/1MiB/split": case(120_000.0),
                    "floor/2of3/1MiB/rng": case(80_000.0),
                    "floor/2of3/1MiB/copy": case(100_000.0),
                    "floor/2of3/1MiB/rebuild": case(40_000.0),
                    "floor/2of3/1MiB/xor": case(30_000.0),
                    "floor/2of3/1MiB/clock": case(750_000.0),
                    "split_before/2of3/avx2/1MiB": case(300_000.0),
                    "split_kernels/2of3/avx2/1MiB": case(200_000.0),
                },
                "e2e": {
                    "hmac_sha256/1MiB": case(500_000.0),
                    "e2e_put/memory/1MiB": case(800_000.0),
                    "e2e_get/memory/1MiB": case(600_000.0),
                }
            }
        });
        let (table, verdicts) = render(&results, "caption\n\n");
        assert!(table.starts_with("caption"));
        assert!(table.contains("Test CPU") && table.contains("`avx512-gfni`"));
        let find = |s: &str| verdicts.iter().find(|v| v.target.contains(s)).unwrap();
        // split 2-of-3 at 1 MiB: 120 / max(80, 100) = 1.20x, met (the `floor` group's
        // split, not the `split` group's 99).
        let split = find("split 2-of-3 @ 1 MiB");
        assert_eq!((split.measured.as_str(), split.met), ("1.20x", Some(true)));
        // rebuild: 40 / 30 = 1.33x > 1.25x, missed.
        let rebuild = find("rebuild 2-of-3 @ 1 MiB");
        assert_eq!((rebuild.measured.as_str(), rebuild.met), ("1.33x", Some(false)));
        // put: 800 / 500 = 1.60x > 1/0.7; get 600 / 500 = 1.20x <= 1.25x.
        assert_eq!(find("put").met, Some(false));
        assert_eq!(find("get").met, Some(true));
        // 64 KiB was not measured.
        assert_eq!(find("split 2-of-3 @ 64 KiB").met, None);
        // GFNI against before, in the `split` group: 300 / 99 = 3.03x.
        let gfni = find("the split before");
        assert_eq!((gfni.measured.as_str(), gfni.met), ("3.03x", Some(true)));
        assert!(table.contains("| `avx2` kernel | 200.0 us | 2.02x |"));
        // 3e6 cycles in 750 us: 4.00 GHz; the copy in the floors' table.
        assert!(table.contains("2-of-3 at 1 MiB: 4.00 GHz"), "{table}");
        assert!(table.contains("| copy 1 -> 3 | n/a | 100.0 us |"), "{table}");
    }
}

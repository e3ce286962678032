//! `cargo xtask bench [--quick] [--render-only] [--only modes|roundtrips]`: runs the benchmark suites
//! and regenerates the tables of docs/PERFORMANCE.md.
//!
//! 1. **Build** every benchmark binary first (and the `stream_rss` example of vaultdb-fs, if
//!    its source exists), so that compiling is not part of the measured time.
//! 2. **Run**, in this order, on the machine as it is:
//!    - `cargo bench -p vaultdb-core --bench sharing` (criterion: split, rebuild, the
//!      generator, HMAC-SHA256, memcpy, record encode/decode, the four peer crates);
//!    - `cargo bench -p vaultdb-fs --bench e2e` restricted to HMAC-SHA256 and put/get with
//!      memory backends (criterion);
//!    - `cargo bench -p vaultdb-fs --bench latency` (per-operation p50/p99, concurrent
//!      clients, a slow backend; JSON lines on stdout);
//!    - `cargo bench -p vaultdb-core --bench modes` (the storage modes side by side: bytes
//!      stored per byte held, put/get at 1 MiB, the codecs; JSON lines on stdout);
//!    - `cargo run --release -p vaultdb-fs --example stream_rss` when
//!      `crates/vaultdb-fs/examples/stream_rss.rs` exists (peak RSS of a 1 GiB streamed put
//!      and get; JSON lines such as `{"op":"put","bytes":..,"segment_size":..,
//!      "peak_rss_kib":..,"secs":..}`).
//!
//!    Criterion results are read from `<target>/criterion/**/new/{benchmark,estimates}.json`
//!    right after each criterion suite (both suites have an `hmac_sha256` group, so each
//!    table compares against the HMAC of its own suite), and only files written by this run
//!    count. `--quick` sets `VAULTDB_BENCH_QUICK=1` (short measurement times) for all of
//!    them: a smoke test, not numbers to publish.
//! 3. **Save** everything (machine, crate versions from Cargo.lock, every result) to
//!    `<target>/vaultdb-bench/results.json`.
//! 4. **Render** the tables, with each target's verdict, between the marker comments
//!    `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` of docs/PERFORMANCE.md; everything
//!    outside the markers is left as written. A missing pair is appended at the end.
//!    `--render-only` skips steps 1-3 and renders the saved results again.
//!
//! `--only modes` builds and runs the modes suite alone, replaces its results in the saved
//! run (if there is one) and renders and splices its block (`modes`) alone. `--only
//! roundtrips` does the same for the latency suite's `roundtrips` section (table 7: round
//! trips and request cost on slow backends).
//!
//! The code, by concern: `measure.rs` builds and runs the suites and collects their
//! results (steps 1 and 2); `machine.rs` describes the machine and the crate versions;
//! `results.rs` reads a saved run; `verdicts.rs` holds the targets and judges a measurement
//! against one; `format.rs` formats numbers, sizes and dates; `tables.rs` renders tables
//! 1-6, `modes.rs` the storage modes block, `floor.rs` the floor table (each operation against the cost it cannot go below), and `render.rs` the other blocks and splices them all into the document (step 4).

mod floor;
mod format;
mod machine;
mod measure;
mod modes;
mod render;
mod results;
mod tables;
mod verdicts;

use serde_json::Value;

use crate::root;

struct Opts {
    quick: bool,
    render_only: bool,
    only_modes: bool,
    only_roundtrips: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut opts =
        Opts { quick: false, render_only: false, only_modes: false, only_roundtrips: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--render-only" => opts.render_only = true,
            "--only" => match it.next().map(String::as_str) {
                Some("modes") => opts.only_modes = true,
                Some("roundtrips") => opts.only_roundtrips = true,
                other => {
                    return Err(format!(
                        "bench: --only takes `modes` or `roundtrips`, not {other:?}"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "bench: unknown argument {other:?} (use --quick, --render-only, --only \
                     modes; to run one suite by hand see docs/PERFORMANCE.md, Reproducing)"
                ));
            }
        }
    }
    let target = crate::target_dir()?;
    let out_dir = target.join("vaultdb-bench");
    let saved = out_dir.join("results.json");
    if opts.only_modes {
        let suite = Only {
            section: "modes",
            block: "modes",
            what: "the modes block",
            measure: Box::new(|| measure::modes(&opts, &target)),
            render: modes::render,
        };
        return only(&opts, &saved, suite);
    }
    if opts.only_roundtrips {
        let suite = Only {
            section: "roundtrips",
            block: "table7",
            what: "table 7",
            measure: Box::new(|| measure::roundtrips(&opts)),
            render: tables::table7,
        };
        return only(&opts, &saved, suite);
    }
    let results = if opts.render_only {
        let text = std::fs::read_to_string(&saved)
            .map_err(|e| format!("{}: {e} (run `cargo xtask bench` first)", saved.display()))?;
        serde_json::from_str::<Value>(&text).map_err(|e| format!("{}: {e}", saved.display()))?
    } else {
        let r = measure::measure(&opts, &target)?;
        std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
        let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
        std::fs::write(&saved, text).map_err(|e| format!("{}: {e}", saved.display()))?;
        println!("xtask: results saved to {}", saved.display());
        r
    };
    let tables = render::render(&results);
    let doc = root().join("docs/PERFORMANCE.md");
    let old = std::fs::read_to_string(&doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let new = render::splice(&old, &tables);
    std::fs::write(&doc, new).map_err(|e| format!("{}: {e}", doc.display()))?;
    println!("xtask: wrote {}", doc.display());
    println!("{}", tables.get("summary").map_or("", String::as_str));
    Ok(())
}

/// A suite's run: its lines, when it started (Unix seconds) and the machine's load.
type Suite = (Vec<Value>, u64, String);

/// One suite of `--only`: its section of the saved run, the block it renders and how it
/// measures.
struct Only<'a> {
    /// The saved run's keys: `<section>`, `<section>_started_unix`, `_load`, `_quick`.
    section: &'static str,
    /// The document's block (`modes`, `table7`), and what the message calls it.
    block: &'static str,
    what: &'static str,
    /// Runs the suite.
    measure: Box<dyn FnOnce() -> Result<Suite, String> + 'a>,
    render: fn(&results::Run<'_>, &mut Vec<verdicts::Verdict>) -> String,
}

/// `--only <suite>`: the suite into the saved run (unless `--render-only`), and its block
/// into the document.
fn only(opts: &Opts, saved: &std::path::Path, suite: Only<'_>) -> Result<(), String> {
    let mut results = std::fs::read_to_string(saved)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if !opts.render_only {
        let (lines, started, load) = (suite.measure)()?;
        let section = suite.section;
        results[section] = Value::Array(lines);
        results[format!("{section}_started_unix")] = serde_json::json!(started);
        results[format!("{section}_load")] = Value::String(load);
        results[format!("{section}_quick")] = Value::Bool(opts.quick);
        if let Some(dir) = saved.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        std::fs::write(saved, text).map_err(|e| format!("{}: {e}", saved.display()))?;
    }
    let run = results::Run { r: &results };
    let mut verdicts = Vec::new();
    let mut tables = std::collections::BTreeMap::new();
    tables.insert(suite.block, (suite.render)(&run, &mut verdicts));
    let doc = root().join("docs/PERFORMANCE.md");
    let old = std::fs::read_to_string(&doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    std::fs::write(&doc, render::splice(&old, &tables))
        .map_err(|e| format!("{}: {e}", doc.display()))?;
    println!("xtask: wrote {} of {}", suite.what, doc.display());
    println!("{}", tables[suite.block]);
    Ok(())
}

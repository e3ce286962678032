//! `cargo xtask bench [--quick] [--render-only] [--only modes|roundtrips|rest-list|binary-rss]`:
//! runs the benchmark suites and regenerates the tables of docs/PERFORMANCE.md.
//!
//! 1. **Build** every benchmark binary first (the `stream_rss` example of vaultdb-fs, if its
//!    source exists, and the release `vaultdb` binary), so that compiling is not part of the
//!    measured time.
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
//!      "peak_rss_kib":..,"secs":..}`);
//!    - `binary.rs`'s suites, which run the release `vaultdb` binary as separate processes:
//!      `rest-list` (a 100,000-record store listed through `vaultdb serve`: the first page,
//!      the whole walk, the server's peak RSS) and `binary-rss` (1 GiB through `vaultdb put
//!      -` / `vaultdb get` and through REST `PUT`/`GET /raw`, each process's peak RSS).
//!      `--quick` shrinks them (10,000 records, 128 MiB); `VAULTDB_BENCH_LIST_RECORDS` and
//!      `VAULTDB_BENCH_STREAM_MIB` set the sizes.
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
//! trips and request cost on slow backends), `--only rest-list` and `--only binary-rss` for
//! the binary's suites (blocks `rest-list` and `binary-rss`), building the release binary
//! first.
//!
//! The code, by concern: `measure.rs` builds and runs the suites and collects their
//! results (steps 1 and 2); `machine.rs` describes the machine and the crate versions;
//! `results.rs` reads a saved run; `verdicts.rs` holds the targets and judges a measurement
//! against one; `format.rs` formats numbers, sizes and dates; `tables.rs` renders tables
//! 1-6, `modes.rs` the storage modes block, `floor.rs` the floor table (each operation
//! against the cost it cannot go below), `binary.rs` runs the release binary's suites and
//! `binary_tables.rs` renders their blocks, and `render.rs` the other blocks and splices them
//! all into the document (step 4).

mod binary;
mod binary_tables;
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
    /// `--only <suite>`: `modes`, `roundtrips`, `rest-list` or `binary-rss`.
    only: Option<String>,
}

/// The suites `--only` takes.
const ONLY: [&str; 4] = ["modes", "roundtrips", "rest-list", "binary-rss"];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Opts { quick: false, render_only: false, only: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--render-only" => opts.render_only = true,
            "--only" => match it.next().map(String::as_str) {
                Some(o) if ONLY.contains(&o) => opts.only = Some(o.to_owned()),
                other => {
                    return Err(format!(
                        "bench: --only takes one of {}, not {other:?}",
                        ONLY.join(", ")
                    ));
                }
            },
            "--help" | "-h" => {
                println!(
                    "cargo xtask bench [--quick] [--render-only] [--only {}]\n\
                     (see the module docs of xtask/src/bench/mod.rs and docs/PERFORMANCE.md)",
                    ONLY.join("|")
                );
                return Ok(());
            }
            other => {
                return Err(format!(
                    "bench: unknown argument {other:?} (use --quick, --render-only, --only \
                     {}; to run one suite by hand see docs/PERFORMANCE.md, Reproducing)",
                    ONLY.join("|")
                ));
            }
        }
    }
    let target = crate::target_dir()?;
    let out_dir = target.join("vaultdb-bench");
    let saved = out_dir.join("results.json");
    if let Some(only_suite) = opts.only.as_deref() {
        let suite = match only_suite {
            "modes" => Only {
                section: "modes",
                block: "modes",
                what: "the modes block",
                measure: Box::new(|| measure::modes(&opts, &target)),
                render: modes::render,
            },
            "roundtrips" => Only {
                section: "roundtrips",
                block: "table7",
                what: "table 7",
                measure: Box::new(|| measure::roundtrips(&opts)),
                render: tables::table7,
            },
            "rest-list" => Only {
                section: "rest-list",
                block: "rest-list",
                what: "the REST listing block (section 8b)",
                measure: Box::new(|| measure::binary_suite(&opts, "rest-list")),
                render: binary_tables::rest_list,
            },
            _ => Only {
                section: "binary-rss",
                block: "binary-rss",
                what: "the binary's peak RSS block (section 5b)",
                measure: Box::new(|| measure::binary_suite(&opts, "binary-rss")),
                render: binary_tables::binary_rss,
            },
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
        // The versions of crates the saved run does not name yet (from Cargo.lock as it is
        // now); those it names stay those of its own run.
        if let Value::Object(now) = machine::versions()? {
            for (k, v) in now {
                if results["versions"].get(&k).is_none() {
                    results["versions"][k] = v;
                }
            }
        }
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

//! Rendering: every block of docs/PERFORMANCE.md from one run's results (tables 1-6 in
//! `tables.rs`; here the summary, the machine and the full sharing table), and splicing the
//! blocks between their markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::format::{gbps, utc};
use super::machine::VERSIONED;
use super::results::Run;
use super::tables::{table1, table2, table3, table4, table5, table6, table7};
use super::verdicts::Verdict;

/// Renders every table: marker name -> markdown.
pub(super) fn render(results: &Value) -> BTreeMap<&'static str, String> {
    let run = Run { r: results };
    let mut verdicts = Vec::new();
    let mut t = BTreeMap::new();
    t.insert("machine", machine_table(&run));
    t.insert("table1", table1(&run, &mut verdicts));
    t.insert("table2", table2(&run, &mut verdicts));
    t.insert("table3", table3(&run, &mut verdicts));
    t.insert("table4", table4(&run, &mut verdicts));
    t.insert("table5", table5(&run, &mut verdicts));
    t.insert("table6", table6(&run, &mut verdicts));
    t.insert("binary-rss", super::binary_tables::binary_rss(&run, &mut verdicts));
    t.insert("table7", table7(&run, &mut verdicts));
    t.insert("rest-list", super::binary_tables::rest_list(&run, &mut verdicts));
    t.insert("sharing-all", sharing_all(&run));
    t.insert("modes", super::modes::render(&run, &mut verdicts));
    let caption = run.caption("`cargo bench -p vaultdb-core --bench sharing` and the e2e suite");
    let (floor, floor_verdicts) = super::floor::render(results, &caption);
    t.insert("floor", floor);
    verdicts.extend(floor_verdicts.into_iter().map(|v| Verdict {
        table: "floor",
        target: v.target,
        measured: v.measured,
        met: v.met,
        text: v.text,
    }));
    t.insert("summary", summary(&run, &verdicts));
    t
}

fn summary(run: &Run<'_>, verdicts: &[Verdict]) -> String {
    let mut s = run.caption("the run described under Machine");
    let met = verdicts.iter().filter(|v| v.met == Some(true)).count();
    let missed = verdicts.iter().filter(|v| v.met == Some(false)).count();
    let _ = writeln!(
        s,
        "{met} of {} targets met, {missed} missed{}.\n",
        verdicts.len(),
        match verdicts.len() - met - missed {
            0 => String::new(),
            n => format!(", {n} not measured"),
        }
    );
    s.push_str("| table | target | measured | verdict |\n|---|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(s, "| {} | {} | {} | {} |", v.table, v.target, v.measured, v.text);
    }
    s
}

fn machine_table(run: &Run<'_>) -> String {
    let r = run.r;
    let m = &r["machine"];
    let s_ = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- Run: {} ({}), {:.0} s of measurements (builds excluded), commit `{}`{}.",
        r["started_unix"].as_u64().map(utc).unwrap_or_default(),
        if run.quick() { "`cargo xtask bench --quick`" } else { "`cargo xtask bench`" },
        r["measured_secs"].as_f64().unwrap_or(0.0),
        s_(&r["git"]),
        if s_(&r["git"]).ends_with("-dirty") {
            " (`-dirty`: the work tree had uncommitted changes, which were measured)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "- CPU: `{}` (/proc/cpuinfo; family {}, model {}, `cpu MHz` {}, cache {}), {} cores \
         ({} usable by this process); features used or relevant: {}.",
        s_(&m["cpu"]),
        s_(&m["family"]),
        s_(&m["model"]),
        s_(&m["mhz"]),
        s_(&m["cache"]),
        m["cores"],
        m["parallelism"],
        s_(&m["flags"])
    );
    let _ = writeln!(
        s,
        "- Memory {:.1} GiB; Linux {}; {}; `bench` profile (opt-level 3, no `-C target-cpu`: \
         kernels are chosen at run time, `{}` here).",
        m["mem_kib"].as_f64().unwrap_or(0.0) / 1024.0 / 1024.0,
        s_(&m["kernel"]),
        s_(&m["rustc"]),
        run.isa()
    );
    let _ = writeln!(
        s,
        "- Load average (1, 5, 15 min) at the start: {}; at the end: {}. Other work on the \
         machine (builds) shares the cores and shows up as noise.",
        s_(&m["load_start"]),
        s_(&m["load_end"])
    );
    if let Some(env) = run.env() {
        let _ = writeln!(
            s,
            "- File-system backends (tables 3 and 4): a temporary directory under `{}` ({}), \
             fsync on.",
            s_(&env["fs_dir"]),
            env["fs_type"].as_str().unwrap_or("unknown file system")
        );
    }
    let secs: Vec<String> = r["suites"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k} {:.0} s", v["secs"].as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(s, "- Suite times: {}.", secs.join(", "));
    s.push_str("\n| crate (from Cargo.lock) | version |\n|---|---|\n");
    for c in VERSIONED {
        let _ = writeln!(s, "| {c} | {} |", run.version(c));
    }
    s
}

/// Every case of the sharing suite: rows by case, columns by size, GB/s.
fn sharing_all(run: &Run<'_>) -> String {
    let sizes = ["1KiB", "64KiB", "1MiB", "16MiB"];
    let mut rows: BTreeMap<String, BTreeMap<&str, Option<f64>>> = BTreeMap::new();
    for id in run.crit_ids("sharing") {
        let Some((case, size)) = id.rsplit_once('/') else { continue };
        let Some(size) = sizes.iter().find(|s| **s == size) else { continue };
        rows.entry(case.to_owned()).or_default().insert(size, run.crit_gbps("sharing", &id));
    }
    let order = |case: &str| {
        let groups = ["split/", "rebuild/", "rebuild_alloc/", "rng_csrng", "hmac_sha256", "memcpy"];
        groups.iter().position(|g| case.starts_with(g)).unwrap_or(if case.starts_with("record") {
            6
        } else {
            7
        })
    };
    let mut cases: Vec<&String> = rows.keys().collect();
    cases.sort_by_key(|c| (order(c), (*c).clone()));
    let mut s = run.caption("`cargo bench -p vaultdb-core --bench sharing`");
    s.push_str(
        "Every case of the suite, GB/s (10^9 bytes of secret per second, criterion median); \
         the row is the criterion id without its size. split uses a seeded `CsRng` (its cost \
         included); rebuild interpolates at 0 from shares 3, 2 (5, 4, 3 for 3-of-5) into a \
         preallocated buffer; `rebuild_alloc` is the allocating `Xorida::rebuild` including \
         the drop (wipe) of its result.\n\n| case | 1 KiB | 64 KiB | 1 MiB | 16 MiB |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for case in cases {
        let r = &rows[case];
        let cells: Vec<String> =
            sizes.iter().map(|z| r.get(z).map_or(String::new(), |v| gbps(*v))).collect();
        let _ = writeln!(s, "| `{case}` | {} |", cells.join(" | "));
    }
    s
}

/// Replaces the text between each `<!-- bench:NAME -->` / `<!-- /bench:NAME -->` pair with
/// the table of that name; appends pairs that are missing.
pub(super) fn splice(doc: &str, tables: &BTreeMap<&'static str, String>) -> String {
    let mut out = doc.to_owned();
    for (name, body) in tables {
        let open = format!("<!-- bench:{name} -->");
        let close = format!("<!-- /bench:{name} -->");
        let block = format!("{open}\n{}\n{close}", body.trim_end());
        match (out.find(&open), out.find(&close)) {
            (Some(a), Some(b)) if a < b => out.replace_range(a..b + close.len(), &block),
            _ => {
                eprintln!("xtask: docs/PERFORMANCE.md has no {open} ... {close}; appending");
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                let _ = write!(out, "\n{block}\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn splice_keeps_the_prose() {
        let doc = "a\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nb\n";
        let mut t = BTreeMap::new();
        t.insert("x", "new\n".to_owned());
        t.insert("y", "added".to_owned());
        let out = splice(doc, &t);
        assert_eq!(
            out,
            "a\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nb\n\n<!-- bench:y -->\nadded\n<!-- /bench:y -->\n"
        );
        assert_eq!(splice(&out, &t), out, "splicing again changes nothing");
    }

    #[test]
    fn table7_judges_round_trips_and_list_calls_and_prices_the_calls() {
        let rt = |op: &str, rts: f64, puts: f64, gets: f64, lists: f64| {
            json!({"kind": "roundtrips", "op": op, "n": 10, "delay_ms": 20, "round_trips": rts,
                   "puts": puts, "gets": gets, "deletes": 0.0, "lists": lists, "records": 1000})
        };
        let results = json!({"roundtrips": [
            rt("get_settled", 1.05, 0.0, 6.0, 0.0),
            rt("put_existing", 1.5, 6.0, 0.0, 3.0),
            rt("delete", 2.1, 6.0, 0.0, 3.0),
            rt("list_page_middle", 1.1, 0.0, 0.0, 3.0),
        ], "roundtrips_started_unix": 0, "roundtrips_load": "0.1"});
        let run = Run { r: &results };
        let mut v = Vec::new();
        let t = super::super::tables::table7(&run, &mut v);
        let met: Vec<Option<bool>> = v.iter().map(|v| v.met).collect();
        assert_eq!(met, [Some(true), Some(false), Some(true), Some(true)], "{t}");
        // 6 GETs at $0.40 per million on S3.
        assert!(t.contains("| get (settled) | 1.05 | 0.0 | 6.0 | 0.0 | 0.0 | 2.40 |"), "{t}");
        assert!(t.contains("--only roundtrips"), "{t}");
    }

    #[test]
    fn renders_an_empty_run() {
        let t = render(&json!({"quick": true}));
        assert!(t["table5"].contains("not run"));
        assert!(t["summary"].contains("not measured"));
    }
}

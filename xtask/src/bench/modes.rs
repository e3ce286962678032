//! The storage modes table (block `modes` of docs/PERFORMANCE.md): `shamir` and `compact`
//! side by side, from the JSON lines of `cargo bench -p vaultdb-core --bench modes` (saved
//! under `modes` in the results).

use std::fmt::Write as _;

use serde_json::Value;

use super::format::{gbps, ratio};
use super::results::Run;
use super::verdicts::{Verdict, at_least, at_most};

/// Compact 2-of-3 stores at most this many bytes per byte held, for records of 100 KiB and
/// more.
pub(super) const COMPACT_2OF3_MAX_RATIO: f64 = 1.6;

const MODES: [&str; 2] = ["shamir", "compact"];
const SHAPES: [(u64, u64); 2] = [(2, 3), (3, 5)];
const SIZES: [(u64, &str); 3] = [(1 << 10, "1 KiB"), (100 << 10, "100 KiB"), (1 << 20, "1 MiB")];

fn lines<'a>(run: &Run<'a>, kind: &str) -> Vec<&'a Value> {
    run.r["modes"]
        .as_array()
        .map(|a| a.iter().filter(|l| l["kind"] == kind).collect())
        .unwrap_or_default()
}

fn find<'a>(ls: &[&'a Value], pred: impl Fn(&Value) -> bool) -> Option<&'a Value> {
    ls.iter().copied().find(|l| pred(l))
}

/// The caption, dated by the modes suite's own run (`--only modes`) if it had one.
fn caption(run: &Run<'_>) -> String {
    let what = "`cargo bench -p vaultdb-core --bench modes`";
    run.own_caption("modes", what, "**quick run** (noisy numbers)")
        .unwrap_or_else(|| run.caption(what))
}

/// The block, and its verdicts.
pub(super) fn render(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let mut s = caption(run);
    let storage = lines(run, "storage");
    let throughput = lines(run, "throughput");
    let codec = lines(run, "codec");
    if storage.is_empty() && throughput.is_empty() {
        s.push_str("Not run.\n");
        return s;
    }
    let ratio_of = |mode: &str, k: u64, n: u64, size: u64| {
        find(&storage, |l| {
            l["mode"] == mode && l["k"] == k && l["n"] == n && l["record_bytes"] == size
        })
        .and_then(|l| l["ratio"].as_f64())
    };
    s.push_str(
        "Bytes stored per byte held (every share object on every backend over the records' \
         data; default settings, Padmé padding included; the keyring left out):\n\n\
         | mode | K-of-N | 1 KiB | 100 KiB | 1 MiB |\n|---|---|---|---|---|\n",
    );
    for (k, n) in SHAPES {
        for mode in MODES {
            let cells: Vec<String> = SIZES
                .iter()
                .map(|&(size, _)| ratio_of(mode, k, n, size).map_or("-".into(), ratio))
                .collect();
            let _ = writeln!(s, "| {mode} | {k}-of-{n} | {} |", cells.join(" | "));
        }
    }
    let gb = |mode: &str, k: u64, n: u64, op: &str| {
        find(&throughput, |l| l["mode"] == mode && l["k"] == k && l["n"] == n && l["op"] == op)
            .and_then(|l| l["gbps"].as_f64())
    };
    s.push_str(
        "\nPut and get of one 1 MiB record, memory backends, median (GB/s = 10^9 bytes of \
         data per second):\n\n| mode | K-of-N | put | get |\n|---|---|---|---|\n",
    );
    for (k, n) in SHAPES {
        for mode in MODES {
            let _ = writeln!(
                s,
                "| {mode} | {k}-of-{n} | {} | {} |",
                gbps(gb(mode, k, n, "put")),
                gbps(gb(mode, k, n, "get"))
            );
        }
    }
    if !codec.is_empty() {
        let (simd, rse) = (run.version("reed-solomon-simd"), run.version("reed-solomon-erasure"));
        let _ = write!(
            s,
            "\nThe codecs alone on a 1 MiB secret (GB/s): the XorIDA split and rebuild, the \
             compact split and rebuild (rebuilt from the last K shares, so with the erasure \
             code's decoding), and the compact mode's parts: the AES-256-CTR keystream and \
             the erasure code's encode and decode, by `reed-solomon-simd` {simd} (`rs_`, the \
             one compact uses: Leopard-RS over GF(2^16), SIMD kernels chosen at run time) and, \
             on the same shards, by `reed-solomon-erasure` {rse} (`rse_`: GF(2^8), its default \
             pure-Rust build, without the C `simd-accel` feature). Encode allocates the \
             recovery shards in both; decode rebuilds as many missing original shards as \
             there are recovery shards (the worst case for a read), into new buffers \
             (`reed-solomon-simd`) or buffers given (`reed-solomon-erasure`):\n\n\
             | codec | 2-of-3 | 3-of-5 |\n|---|---|---|\n",
        );
        let cell = |what: &str, k: u64, n: u64| {
            find(&codec, |l| l["what"] == what && l["k"] == k && l["n"] == n)
                .and_then(|l| l["gbps"].as_f64())
        };
        for what in [
            "xorida_split",
            "compact_split",
            "xorida_rebuild",
            "compact_rebuild",
            "aes256_ctr",
            "rs_encode",
            "rse_encode",
            "rs_decode",
            "rse_decode",
        ] {
            let _ = writeln!(
                s,
                "| `{what}` | {} | {} |",
                gbps(cell(what, 2, 3)),
                gbps(cell(what, 3, 5))
            );
        }
        for op in ["encode", "decode"] {
            let rel = |k: u64, n: u64| {
                cell(&format!("rs_{op}"), k, n)
                    .zip(cell(&format!("rse_{op}"), k, n))
                    .map_or("n/a".into(), |(a, b)| ratio(a / b))
            };
            let _ = writeln!(
                s,
                "| {op}: `reed-solomon-simd` / `reed-solomon-erasure` | {} | {} |",
                rel(2, 3),
                rel(3, 5)
            );
        }
    }
    for size in [100 << 10, 1 << 20] {
        let m = ratio_of("compact", 2, 3, size);
        let (met, text) = at_most(m, COMPACT_2OF3_MAX_RATIO);
        verdicts.push(Verdict {
            table: "modes",
            target: format!(
                "compact 2-of-3 stores <= {COMPACT_2OF3_MAX_RATIO}x at {}",
                if size == 100 << 10 { "100 KiB" } else { "1 MiB" }
            ),
            measured: m.map_or("-".into(), ratio),
            met,
            text,
        });
    }
    for op in ["put", "get"] {
        let (c, sh) = (gb("compact", 2, 3, op), gb("shamir", 2, 3, op));
        let rel = c.zip(sh).map(|(c, sh)| c / sh);
        let (met, text) = at_least(rel, 1.0);
        verdicts.push(Verdict {
            table: "modes",
            target: format!("compact 2-of-3 {op} at 1 MiB >= shamir's"),
            measured: format!("{} vs {}", gbps(c), gbps(sh)),
            met,
            text,
        });
    }
    let _ = writeln!(s, "\n| target | measured | verdict |\n|---|---|---|");
    for v in verdicts.iter().filter(|v| v.table == "modes") {
        let _ = writeln!(s, "| {} | {} | {} |", v.target, v.measured, v.text);
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_both_modes_and_judges_the_targets() {
        let r = json!({"quick": false, "modes": [
            {"kind": "storage", "mode": "compact", "k": 2, "n": 3, "record_bytes": 102400,
             "ratio": 1.53},
            {"kind": "storage", "mode": "compact", "k": 2, "n": 3, "record_bytes": 1048576,
             "ratio": 1.7},
            {"kind": "throughput", "mode": "compact", "k": 2, "n": 3, "op": "put", "gbps": 0.5},
            {"kind": "throughput", "mode": "shamir", "k": 2, "n": 3, "op": "put", "gbps": 0.4},
        ]});
        let mut v = Vec::new();
        let s = render(&Run { r: &r }, &mut v);
        assert!(s.contains("| compact | 2-of-3 | - | 1.53x | 1.70x |"), "{s}");
        let met: Vec<Option<bool>> = v.iter().map(|v| v.met).collect();
        assert_eq!(met, [Some(true), Some(false), Some(true), None]);
        let mut v = Vec::new();
        assert!(render(&Run { r: &json!({}) }, &mut v).contains("Not run"));
    }
}

//! An attack on the re-share's version floor (`VaultDb::reshare`, docs/SECURITY.md
//! "Re-sharing"), alone in its test binary: the clock it attacks is process-wide, and a
//! poisoned clock would break the other tests running in the same process.
//!
//! Runs on virtual time (the fence's wait passes at once).

mod support;

use support::*;
use vaultdb_core::{Record, Version};

/// One backend of the old store lists a share object whose version is stamped at the end of
/// time. The floor must not take it: every client of the new store observes the floor, and a
/// clock pushed to its end stamps every later version with the same timestamp and a random
/// half, so a later write is older than an earlier one half of the time (lost updates).
#[tokio::test(start_paused = true)]
async fn one_old_backend_listing_a_far_future_version_does_not_break_the_new_stores_order() {
    let old_cfg = cfg(&["a", "b", "c"], 2, "v1");
    let old = open(&old_cfg).await;
    old.put(Record::new("x", "old")).await.unwrap();
    old.flush().await;
    // Backend a lists a share of x stamped u64::MAX microseconds (a forged name: no data).
    let real = old_cfg.nodes[0]
        .mem
        .keys()
        .into_iter()
        .find(|k| k.starts_with("v1/r/") && k.contains('.'))
        .expect("a share of x");
    let (dir, file) = real.rsplit_once('/').unwrap();
    let (_, id_share) = file.split_once('.').unwrap();
    let forged = format!("{dir}/{}.{id_share}", Version::from_parts(u64::MAX, 0).to_text());
    let share = old_cfg.nodes[0].mem.raw_get(&real).unwrap();
    old_cfg.nodes[0].mem.raw_put(forged, share);

    let new_cfg = cfg(&["d", "e", "f"], 2, "v2");
    let new = open_migrating(&new_cfg, &old).await;
    let report = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    let floor = report.floor.unwrap();

    let fresh = open(&new_cfg).await;
    let mut lost = Vec::new();
    for i in 0..24 {
        let value = format!("write {i}");
        let put = fresh.put(Record::new("x", value.clone())).await.unwrap();
        let read = data(&fresh, "x").await.unwrap();
        if read != value.as_bytes() {
            lost.push((i, put.version));
        }
    }
    assert!(
        lost.is_empty(),
        "floor {floor:?} (micros {}): acknowledged writes read back as an older one: {lost:?}",
        floor.micros()
    );
}

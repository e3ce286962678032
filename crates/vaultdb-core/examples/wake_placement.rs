//! Does a woken helper thread run beside its waker, or after it on the same core?
//!
//! A get of a large record wakes a pooled thread to rebuild chunks and check CRCs while the
//! calling thread checks the MAC (`src/pair.rs`). This program times that pattern without
//! VaultDB: the caller wakes a parked helper, then works 500 us; the helper works 200 us.
//! If the two run side by side, one round takes about 500 us; if the scheduler puts the
//! woken helper on the caller's core, about 700 us. Each gap is how long both were idle
//! before the round.
//!
//! On the 2-vCPU VM of docs/PERFORMANCE.md, on 2026-12-07 at 06:44 UTC, it printed 515-518 us
//! after idle gaps of 0-500 us (side by side) and 706 us after 1,000 and 2,000 us (one after
//! the other). A C version that also printed each thread's CPU (not in the repository) saw
//! the helper on the caller's core in 282 of 300 rounds after 1,000 us gaps. The get of the
//! bench suite leaves its helper idle for about 500-800 us between gets, but keeping the
//! helper awake between gets did not make them faster (docs/PERFORMANCE.md): this is a
//! property of the machine worth knowing, not the explanation of the get's times.
//!
//! Run: `cargo run --release -p vaultdb-core --example wake_placement`.

#![forbid(unsafe_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;

fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

fn main() {
    // (round asked for, round done), with one condvar for each direction.
    let state = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new(), Condvar::new()));
    let helper = {
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            let (lock, ask, done) = &*state;
            for round in 1..=ROUNDS * 5 {
                let mut s = lock.lock().unwrap();
                while s.0 < round {
                    s = ask.wait(s).unwrap();
                }
                drop(s);
                spin(Duration::from_micros(200));
                lock.lock().unwrap().1 = round;
                done.notify_one();
            }
        })
    };
    let (lock, ask, done) = &*state;
    let mut round = 0;
    for gap_us in [0u64, 300, 500, 1000, 2000] {
        let mut walls = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            round += 1;
            std::thread::sleep(Duration::from_micros(gap_us));
            let t0 = Instant::now();
            lock.lock().unwrap().0 = round;
            ask.notify_one();
            spin(Duration::from_micros(500));
            let mut s = lock.lock().unwrap();
            while s.1 < round {
                s = done.wait(s).unwrap();
            }
            drop(s);
            walls.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        walls.sort_by(f64::total_cmp);
        println!(
            "idle gap {gap_us:>4} us: round p50 {:.0} us, p90 {:.0} us (500 = side by side, 700 = one after the other)",
            walls[ROUNDS / 2],
            walls[ROUNDS * 9 / 10]
        );
    }
    helper.join().unwrap();
}

//! Cross-engine tests: every region kernel this CPU can run must produce exactly the portable
//! kernel's bytes, for every operation, at awkward lengths and unaligned offsets.
//!
//! On an AVX-512 machine with GFNI this checks the AVX-512 GFNI, AVX-512BW, AVX2 GFNI, AVX2
//! and SSSE3 kernels (the test prints the CPU model and the kernels it ran); `gf256::tests`
//! checks detection against the CPU flags Linux reports, so a CPU that has a feature cannot
//! silently skip its kernel here.

use proptest::prelude::*;
use vaultdb_core::gf256::{Isa, Kernel};
use vaultdb_core::rng::{CsRng, RandomSource, SplitStep};
use vaultdb_core::{Threshold, Xorida};

/// Lengths around the vector widths (16, 32, 64) and page size.
const LENS: [usize; 14] = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 4095, 4096, 100_000];

/// The SIMD kernels (everything available except the portable one itself).
fn simd_kernels() -> Vec<Kernel> {
    Kernel::available().into_iter().filter(|k| k.isa() != Isa::Portable).collect()
}

fn random_bytes(rng: &mut CsRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Runs all three region operations on `k` and on the portable kernel, with the source, base
/// and destination slices starting at the given offsets into bigger buffers, and compares the
/// whole destination buffers (so writes outside the slice would be caught too).
fn compare(k: Kernel, c: u8, len: usize, offs: [usize; 3], rng: &mut CsRng) {
    let [os, ob, od] = offs;
    let src_buf = random_bytes(rng, len + 64);
    let base_buf = random_bytes(rng, len + 64);
    let dst_buf = random_bytes(rng, len + 64);
    let (src, base) = (&src_buf[os..os + len], &base_buf[ob..ob + len]);
    let p = Kernel::portable();
    let ctx = format!("{} c={c} len={len} offsets={offs:?}", k.isa());

    let mut want = dst_buf.clone();
    let mut got = dst_buf.clone();
    p.mul_acc(c, src, &mut want[od..od + len]);
    k.mul_acc(c, src, &mut got[od..od + len]);
    assert!(got == want, "mul_acc differs: {ctx}");

    let mut want = dst_buf.clone();
    let mut got = dst_buf.clone();
    p.mul_add_into(c, src, base, &mut want[od..od + len]);
    k.mul_add_into(c, src, base, &mut got[od..od + len]);
    assert!(got == want, "mul_add_into differs: {ctx}");

    let mut want = dst_buf.clone();
    let mut got = dst_buf;
    p.mul_into(c, src, &mut want[od..od + len]);
    k.mul_into(c, src, &mut got[od..od + len]);
    assert!(got == want, "mul_into differs: {ctx}");
}

#[test]
fn every_kernel_matches_portable_at_odd_lengths_and_offsets() {
    vaultdb_testkit::report_kernels("engine", &Kernel::available());
    let mut rng = CsRng::from_seed([0xe1; 32]);
    let mut consts = [0u8; 4];
    rng.fill_bytes(&mut consts);
    let consts = [0, 1, 2, 255, consts[0], consts[1], consts[2], consts[3]];
    for k in simd_kernels() {
        for len in LENS {
            // Every starting offset 1..=31 for short buffers; a spread for long ones.
            let offsets: Vec<usize> =
                if len <= 4096 { (1..=31).collect() } else { vec![1, 7, 16, 31] };
            for &off in &offsets {
                for c in consts {
                    // Source, base and destination at different misalignments.
                    let offs = [off, (off * 7) % 31 + 1, (off * 13) % 31 + 1];
                    compare(k, c, len, offs, &mut rng);
                }
            }
        }
    }
}

#[test]
fn every_kernel_matches_portable_for_all_constants() {
    let mut rng = CsRng::from_seed([0xe2; 32]);
    for k in simd_kernels() {
        for c in 0..=255u8 {
            compare(k, c, 4096 + 77, [3, 5, 9], &mut rng);
        }
    }
}

#[test]
fn the_best_kernel_is_the_fastest_available() {
    let avail = Kernel::available();
    assert!(!avail.is_empty());
    assert!(avail.contains(&Kernel::portable()));
    // Unless the portable kernel is forced, `best` is the first (fastest) available one.
    if std::env::var_os("VAULTDB_FORCE_PORTABLE").is_none_or(|v| v != "1") {
        assert_eq!(Kernel::best(), avail[0]);
    }
}

/// A `CsRng` that counts the split steps its fused kernel computed.
struct Counting {
    rng: CsRng,
    fused_steps: usize,
}

impl RandomSource for Counting {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest)
    }

    fn fill_bytes_at(&mut self, offset: u64, dest: &mut [u8]) -> bool {
        self.rng.fill_bytes_at(offset, dest)
    }

    fn split_step_at(&mut self, step: SplitStep, secret: &[u8], outs: &mut [&mut [u8]]) -> bool {
        let done = self.rng.split_step_at(step, secret, outs);
        self.fused_steps += usize::from(done);
        done
    }

    fn advance(&mut self, n: u64) {
        self.rng.advance(n)
    }
}

/// The split on every kernel, and through the fused kernel (keystream in registers, K <= 5,
/// N <= 7)
/// where the CPU has it, gives the portable kernel's shares and leaves the generator at the
/// same position, for K = 2 to 6 (6 is past the fused kernel), several N, lengths around the
/// vector, loop and step widths, and generator positions on and off 16-byte blocks (so the
/// coefficients start at different offsets into the keystream blocks).
#[test]
fn split_matches_portable_on_every_kernel_and_the_fused_path() {
    let fused = CsRng::from_seed([0; 32]).has_fused_split();
    let best = Kernel::best().isa();
    // Written to stderr directly, like `report_kernels`, so that it shows past the capture.
    let report = |line: String| {
        use std::io::Write;
        let _ = std::io::stderr().write_all(line.as_bytes());
    };
    report(format!(
        "engine split: kernels {:?}; fused split kernel (VAES, K <= 5, N <= 7, avx512-gfni): {}\n",
        Kernel::available().iter().map(|k| k.isa().to_string()).collect::<Vec<_>>(),
        if fused { "available, checked" } else { "not available on this CPU" }
    ));
    let thresholds =
        [(2, 2), (2, 3), (2, 5), (3, 3), (3, 5), (3, 8), (4, 5), (4, 7), (5, 5), (5, 9), (6, 8)];
    let lens = [0usize, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 8191, 8192, 8193, 20_000];
    let secret: Vec<u8> = (0..20_000u32).map(|i| (i * 131 + 17) as u8 ^ (i >> 9) as u8).collect();
    let mut cases = 0;
    let mut fused_steps = 0;
    for (k, n) in thresholds {
        let t = Threshold::new(k, n).unwrap();
        for len in lens {
            for lead in [0usize, 5, 16, 33] {
                let start = |kernel: Kernel| {
                    let mut rng = Counting { rng: CsRng::from_seed([0x77; 32]), fused_steps: 0 };
                    rng.fill_bytes(&mut vec![0u8; lead]);
                    let shares = Xorida::with_kernel(kernel).split(t, &secret[..len], &mut rng);
                    let mut next = [0u8; 32];
                    rng.fill_bytes(&mut next);
                    (shares, next, rng.fused_steps)
                };
                let (want, want_next, _) = start(Kernel::portable());
                for kernel in Kernel::available() {
                    let (got, got_next, steps) = start(kernel);
                    let case = format!("{} {t} len={len} lead={lead}", kernel.isa());
                    assert!(got == want, "shares differ: {case}");
                    assert_eq!(got_next, want_next, "generator position differs: {case}");
                    let expect_fused =
                        fused && kernel.isa() == Isa::Avx512Gfni && k <= 5 && n <= 7 && len > 0;
                    assert_eq!(steps > 0, expect_fused, "fused path taken: {case}");
                    fused_steps += steps;
                    cases += 1;
                }
            }
        }
    }
    report(format!(
        "engine split: {cases} cases (best kernel {best}), {fused_steps} fused steps\n"
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_every_kernel_matches_portable(
        c in any::<u8>(),
        src_buf in proptest::collection::vec(any::<u8>(), 0..3000),
        base_seed in any::<u8>(),
        os in 0usize..32,
        ob in 0usize..32,
        od in 0usize..32,
    ) {
        let len = src_buf.len().saturating_sub(os);
        let src = &src_buf[os.min(src_buf.len())..];
        let base_buf: Vec<u8> =
            (0..len + ob).map(|i| (i as u8).wrapping_mul(base_seed) ^ 0x3c).collect();
        let base = &base_buf[ob..];
        let dst_buf: Vec<u8> = (0..len + od).map(|i| (i as u8) ^ base_seed).collect();
        let p = Kernel::portable();
        for k in simd_kernels() {
            let mut want = dst_buf.clone();
            let mut got = dst_buf.clone();
            p.mul_acc(c, src, &mut want[od..]);
            k.mul_acc(c, src, &mut got[od..]);
            prop_assert_eq!(&got, &want, "mul_acc {}", k.isa());

            p.mul_add_into(c, src, base, &mut want[od..]);
            k.mul_add_into(c, src, base, &mut got[od..]);
            prop_assert_eq!(&got, &want, "mul_add_into {}", k.isa());

            p.mul_into(c, src, &mut want[od..]);
            k.mul_into(c, src, &mut got[od..]);
            prop_assert_eq!(&got, &want, "mul_into {}", k.isa());
        }
    }

    /// The region operations agree with the scalar field multiplication byte by byte.
    #[test]
    fn prop_region_ops_are_bytewise_field_ops(
        c in any::<u8>(),
        src in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let base: Vec<u8> = src.iter().map(|b| b.rotate_left(3) ^ 0x9d).collect();
        for k in Kernel::available() {
            let mut acc = base.clone();
            k.mul_acc(c, &src, &mut acc);
            let mut into = vec![0xaa; src.len()];
            k.mul_add_into(c, &src, &base, &mut into);
            for i in 0..src.len() {
                let want = base[i] ^ vaultdb_core::gf256::mul(c, src[i]);
                prop_assert_eq!(acc[i], want, "{} byte {}", k.isa(), i);
                prop_assert_eq!(into[i], want, "{} byte {}", k.isa(), i);
            }
        }
    }
}

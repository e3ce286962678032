//! Formatting numbers, sizes, durations and dates for the tables.

use serde_json::Value;

/// `YYYY-MM-DD HH:MM UTC` (days to civil date after H. Hinnant).
pub(super) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

pub(super) fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}x")
    } else if x >= 10.0 {
        format!("{x:.1}x")
    } else {
        format!("{x:.2}x")
    }
}

pub(super) fn gbps(x: Option<f64>) -> String {
    match x {
        None => "n/a".into(),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) if x >= 1.0 => format!("{x:.2}"),
        Some(x) if x >= 0.1 => format!("{x:.3}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// A duration given in microseconds.
pub(super) fn dur_us(x: Option<f64>) -> String {
    match x {
        None => "n/a".into(),
        Some(x) if x < 10.0 => format!("{x:.2} us"),
        Some(x) if x < 1000.0 => format!("{x:.1} us"),
        Some(x) if x < 100_000.0 => format!("{:.2} ms", x / 1e3),
        Some(x) => format!("{:.1} ms", x / 1e3),
    }
}

pub(super) fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

pub(super) fn pair(l: Option<&Value>) -> String {
    match l {
        None => "n/a".into(),
        Some(l) => format!("{} / {}", dur_us(l["p50_us"].as_f64()), dur_us(l["p99_us"].as_f64())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_798_761_600 + 3_600 + 120), "2027-01-01 01:02 UTC");
    }
}

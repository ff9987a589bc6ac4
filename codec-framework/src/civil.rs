//! UTC calendar dates, for every date Strait writes (HTTP `Date`, admin timestamps,
//! access-log start times): no time-zone database, no allocation.

use std::time::{SystemTime, UNIX_EPOCH};

/// The (year, month 1–12, day 1–31) of `days` since 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// `at` as RFC 3339 UTC: `2026-12-02T09:30:45Z`, or with `millis`
/// `2026-12-02T09:30:45.123Z`. Times before 1970 print as the epoch.
pub fn rfc3339(at: SystemTime, millis: bool) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    if millis {
        let ms = since.subsec_millis();
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_utc() {
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(rfc3339(at(0), false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400_000), false), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(at(1_796_203_845_007), true),
            "2026-12-02T09:30:45.007Z"
        );
    }
}

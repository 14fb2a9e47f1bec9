//! UTC timestamps of rollout lines, `YYYY-MM-DDTHH:MM:SS.mmmZ`, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i128 = 86_400_000;

/// Formats `time` as UTC with millisecond precision, e.g. `2026-05-15T10:00:00.123Z`.
///
/// Times before the epoch are formatted too (the proleptic Gregorian calendar); sub-millisecond
/// digits are truncated toward the past.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use compactor_rollout_trace::format_timestamp;
///
/// let t = UNIX_EPOCH + Duration::from_millis(1_778_839_200_123);
/// assert_eq!(format_timestamp(t), "2026-05-15T10:00:00.123Z");
/// ```
pub fn format_timestamp(time: SystemTime) -> String {
    let unix_ms = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX).div_euclid(1_000_000),
        Err(before) => {
            let nanos = i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX);
            (-nanos).div_euclid(1_000_000)
        }
    };
    format_unix_ms(unix_ms)
}

/// Formats milliseconds since the Unix epoch as [`format_timestamp`] does.
pub(crate) fn format_unix_ms(unix_ms: i128) -> String {
    let days = unix_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = unix_ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = ms_of_day / 3_600_000;
    let minute = ms_of_day / 60_000 % 60;
    let second = ms_of_day / 1_000 % 60;
    let millis = ms_of_day % 1_000;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// The Gregorian date of `days` after 1970-01-01: (year, month 1-12, day 1-31).
///
/// The calendar repeats every 400 years (146 097 days). Counting from 0000-03-01 puts the leap
/// day at the end of each year, so a day of the year maps to a month with one linear formula.
pub(crate) fn civil_from_days(days: i128) -> (i128, i128, i128) {
    // Days from 0000-03-01 to 1970-01-01.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;

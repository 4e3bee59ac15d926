//! Time-of-day windows per weekday in a named time zone.
//!
//! Windows are kept in local wall-clock terms ("Mon–Fri 14:00–16:00
//! Europe/Berlin") and only turned into UTC instants for a given `now`, so
//! daylight-saving changes move the UTC hours as people expect.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

const OVERNIGHT: &str =
    "the window's end must be after its start; split an overnight window in two";
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Allowed weekdays and a local time range within each, in one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindow {
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
}

impl TimeWindow {
    /// Builds a window; `days` runs Mon..Sun and at least one must be set.
    pub fn new(days: [bool; 7], start: NaiveTime, end: NaiveTime, tz: Tz) -> Result<Self, String> {
        if !days.contains(&true) {
            return Err("a window needs at least one day".to_string());
        }
        if end <= start {
            return Err(OVERNIGHT.to_string());
        }
        Ok(TimeWindow {
            days,
            start,
            end,
            tz,
        })
    }

    /// Allowed weekdays, Monday first.
    pub fn days(&self) -> [bool; 7] {
        self.days
    }

    /// Local start time (inclusive).
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Local end time (exclusive).
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// The zone the local times are in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Canonical ASCII form, which `FromStr` reads back.
    pub fn spec(&self) -> String {
        self.render("-")
    }

    /// Local weekday allowed and start <= local time < end, in the window's zone.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz);
        let day = local.weekday().num_days_from_monday() as usize;
        let time = local.time();
        self.days[day] && self.start <= time && time < self.end
    }

    /// When `now` is inside an instance of this window, the UTC instant that instance ends.
    pub fn end_of_instance(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.contains(now) {
            return None;
        }
        let local_end = now.with_timezone(&self.tz).date_naive().and_time(self.end);
        Some(self.local_end_to_utc(local_end, now))
    }

    /// Resolves a local end time: a time skipped by a DST change ends at the
    /// first instant after the gap; a repeated one at the earlier instant,
    /// unless that has already passed (`now` in the repeated hour), then the later.
    fn local_end_to_utc(&self, local: NaiveDateTime, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                let (early, late) = (a.min(b), a.max(b));
                if early > now { early } else { late }
            }
            LocalResult::None => self.first_instant_after(local),
        }
    }

    /// The earliest instant whose local time is past `local`; used for a
    /// local time inside a DST gap, where that instant is the gap's end.
    fn first_instant_after(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let guess = local.and_utc().timestamp();
        let past = |secs: i64| match DateTime::from_timestamp(secs, 0) {
            Some(t) => t.with_timezone(&self.tz).naive_local() > local,
            None => true,
        };
        // Offsets stay within a day of UTC, so the answer lies in this range.
        let (mut lo, mut hi) = (guess - 86_400, guess + 86_400);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if past(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0).unwrap_or_else(|| local.and_utc())
    }

    fn render(&self, dash: &str) -> String {
        format!(
            "{} {}{dash}{} {}",
            render_days(&self.days, dash),
            self.start.format("%H:%M"),
            self.end.format("%H:%M"),
            self.tz.name()
        )
    }
}

/// Contiguous runs (wrapping past Sunday) as ranges, the rest comma-separated,
/// ordered by the weekday each run starts on.
fn render_days(days: &[bool; 7], dash: &str) -> String {
    let Some(gap) = days.iter().position(|d| !d) else {
        return format!("Mon{dash}Sun");
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for step in 1..=7 {
        let day = (gap + step) % 7;
        match (days[day], current) {
            (true, Some((first, _))) => current = Some((first, day)),
            (true, None) => current = Some((day, day)),
            (false, Some(run)) => {
                runs.push(run);
                current = None;
            }
            (false, None) => {}
        }
    }
    runs.extend(current);
    runs.sort_by_key(|&(first, _)| first);
    runs.iter()
        .map(|&(first, last)| {
            if first == last {
                DAY_NAMES[first].to_string()
            } else {
                format!("{}{dash}{}", DAY_NAMES[first], DAY_NAMES[last])
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_day(s: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("\"{s}\" is not a day; use Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
}

fn parse_days(s: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (parse_day(a)?, parse_day(b)?);
                let mut day = first;
                loop {
                    days[day] = true;
                    if day == last {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => days[parse_day(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("\"{s}\" is not a time of day; use HH:MM, such as 09:00"))
}

impl std::str::FromStr for TimeWindow {
    type Err = String;

    /// Reads "DAYS HH:MM-HH:MM ZONE"; en dashes are accepted for dashes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.replace('\u{2013}', "-");
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() < 3 {
            return Err(format!(
                "\"{}\" is not a window; write it like \"Mon-Fri 14:00-16:00 Europe/Berlin\"",
                s.trim()
            ));
        }
        let zone = words[words.len() - 1];
        let times = words[words.len() - 2];
        let days = words[..words.len() - 2].concat();

        let days = parse_days(&days)?;
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| format!("\"{times}\" is not a time range; write it like 14:00-16:00"))?;
        let (start, end) = (parse_time(start)?, parse_time(end)?);
        let tz: Tz = zone.parse().map_err(|_| {
            format!("\"{zone}\" is not a known time zone; use a name such as Europe/Berlin or UTC")
        })?;
        TimeWindow::new(days, start, end, tz)
    }
}

impl std::fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render("\u{2013}"))
    }
}

/// Among the windows containing `now`, the one whose instance ends last, with that end.
pub fn latest_containing(
    windows: &[TimeWindow],
    now: DateTime<Utc>,
) -> Option<(&TimeWindow, DateTime<Utc>)> {
    windows
        .iter()
        .filter_map(|w| w.end_of_instance(now).map(|end| (w, end)))
        .max_by_key(|&(_, end)| end)
}

/// No windows means no restriction: Ok(None). Inside one: Ok(Some(latest end among windows containing now)).
/// Outside all: Err("outside the allowed window Mon–Fri 14:00–16:00 Europe/Berlin") — several windows joined with " or ".
pub fn check_windows(
    windows: &[TimeWindow],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    if windows.is_empty() {
        return Ok(None);
    }
    match latest_containing(windows, now) {
        Some((_, end)) => Ok(Some(end)),
        None => {
            let list: Vec<String> = windows.iter().map(ToString::to_string).collect();
            Err(format!("outside the allowed window {}", list.join(" or ")))
        }
    }
}

/// The window a final approval grants at `now` for a request planned as
/// `[starts_at, ends_at)`: one approved late starts now and keeps its
/// length, but never runs past the end of the time-of-day window it starts
/// in; and no window runs past the end of the requester's eligibility
/// (`eligible_until`; `None` = no end).
pub fn granted_window(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    windows: &[TimeWindow],
    eligible_until: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let (start, mut end) = if starts_at >= now {
        (starts_at, ends_at)
    } else {
        let mut end = now + (ends_at - starts_at);
        if let Ok(Some(window_end)) = check_windows(windows, now) {
            end = end.min(window_end);
        }
        (now, end)
    };
    if let Some(until) = eligible_until {
        end = end.min(until);
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instant in 2026: (month, day, hour, minute) in UTC.
    type At = (u32, u32, u32, u32);

    fn at((mo, d, h, mi): At) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, mo, d, h, mi, 0).unwrap()
    }

    fn w(s: &str) -> TimeWindow {
        s.parse().unwrap()
    }

    /// Asserts both `contains` and `end_of_instance` for each (now, end) pair.
    fn check(spec: &str, cases: &[(At, Option<At>)]) {
        let win = w(spec);
        for &(now, end) in cases {
            let got = win.end_of_instance(at(now));
            assert_eq!(got, end.map(at), "{spec} at {now:?}");
            assert_eq!(win.contains(at(now)), end.is_some(), "{spec} at {now:?}");
        }
    }

    #[test]
    fn parses_the_accepted_forms_and_round_trips() {
        for (input, spec) in [
            ("Mon-Fri 14:00-16:00 Europe/Berlin", None),
            ("Mon,Wed,Fri 09:00-17:30 UTC", None),
            ("Sat 10:00-12:00 America/New_York", None),
            ("Fri-Mon 08:00-09:00 UTC", None),
            ("Mon-Sun 00:00-23:59 UTC", None),
            ("mon–FRI 14:00–16:00 UTC", Some("Mon-Fri 14:00-16:00 UTC")),
            ("Sun,Mon 09:00-10:00 UTC", Some("Sun-Mon 09:00-10:00 UTC")),
            (
                "Tue, Sat-Sun 09:00-10:00 UTC",
                Some("Tue,Sat-Sun 09:00-10:00 UTC"),
            ),
        ] {
            let parsed = w(input);
            assert_eq!(parsed.spec(), spec.unwrap_or(input));
            assert_eq!(w(&parsed.spec()), parsed);
        }
        let berlin = w(BERLIN);
        assert_eq!(berlin.to_string(), "Mon–Fri 14:00–16:00 Europe/Berlin");
        assert_eq!(w(&berlin.to_string()), berlin);
        let wrap = w("Fri-Mon 08:00-09:00 UTC").days();
        assert_eq!(wrap, [true, false, false, false, true, true, true]);
    }

    #[test]
    fn refuses_bad_input_with_sentences() {
        let err = |s: &str| s.parse::<TimeWindow>().unwrap_err();
        let overnight =
            "the window's end must be after its start; split an overnight window in two";
        assert_eq!(err("Mon 16:00-14:00 UTC"), overnight);
        assert_eq!(err("Mon 14:00-14:00 UTC"), overnight);
        let zone = err("Mon 14:00-16:00 Europe/Berln");
        assert!(zone.contains("\"Europe/Berln\" is not a known time zone"));
        assert!(err("Mo 14:00-16:00 UTC").contains("\"Mo\" is not a day"));
        assert!(err("Mon 25:00-26:00 UTC").contains("is not a time of day"));
        assert!(err("Mon 14:00 UTC").contains("is not a time range"));
        assert!(err("").contains("is not a window"));
        assert!(err("Mon-Fri 14:00-16:00").contains("is not a window"));
    }

    const BERLIN: &str = "Mon-Fri 14:00-16:00 Europe/Berlin";

    #[test]
    fn berlin_spring_and_autumn_changes() {
        let cases = [
            ((3, 27, 12, 30), None), // Fri 27 March, CET (UTC+1): 13:30 local
            ((3, 27, 13, 30), Some((3, 27, 15, 0))),
            ((3, 27, 15, 0), None),
            ((3, 30, 11, 59), None), // Mon 30 March, CEST (UTC+2): 13:59 local
            ((3, 30, 12, 0), Some((3, 30, 14, 0))),
            ((3, 30, 12, 30), Some((3, 30, 14, 0))),
            ((3, 30, 14, 0), None),
            ((10, 23, 11, 30), None), // Fri 23 October, still CEST
            ((10, 23, 12, 30), Some((10, 23, 14, 0))),
            ((10, 26, 12, 30), None), // Mon 26 October, CET again
            ((10, 26, 13, 30), Some((10, 26, 15, 0))),
        ];
        check(BERLIN, &cases);
    }

    #[test]
    fn ends_inside_a_gap_or_a_repeated_hour() {
        // 29 March 02:00 CET jumps to 03:00 CEST (01:00 UTC): 02:30 never happens,
        // so the instance ends when the gap does.
        let gap = [((3, 29, 0, 30), Some((3, 29, 1, 0))), ((3, 29, 1, 0), None)];
        check("Sun 01:00-02:30 Europe/Berlin", &gap);
        check("Sun 02:00-02:30 Europe/Berlin", &[((3, 29, 0, 59), None)]);
        // 25 October 03:00 CEST falls back to 02:00 CET (01:00 UTC): 02:30 happens
        // twice; the earlier end is used unless it has already passed.
        let repeated = [
            ((10, 25, 0, 15), Some((10, 25, 0, 30))),
            ((10, 25, 0, 45), None),
            ((10, 25, 1, 15), Some((10, 25, 1, 30))),
            ((10, 25, 1, 30), None),
        ];
        check("Sun 01:00-02:30 Europe/Berlin", &repeated);
    }

    #[test]
    fn new_york_and_wrapping_days() {
        // Sat 28 March in EDT, UTC-4.
        let sat = [
            ((3, 28, 13, 59), None),
            ((3, 28, 14, 0), Some((3, 28, 16, 0))),
        ];
        check("Sat 10:00-12:00 America/New_York", &sat);
        let (sun, mon, tue) = ((3, 29, 8, 30), (3, 30, 8, 30), (3, 31, 8, 30));
        let wrap = [
            (sun, Some((3, 29, 9, 0))),
            (mon, Some((3, 30, 9, 0))),
            (tue, None),
        ];
        check("Fri-Mon 08:00-09:00 UTC", &wrap);
    }

    #[test]
    fn check_windows_cases() {
        let now = at((3, 30, 12, 30));
        assert_eq!(check_windows(&[], now), Ok(None));
        let both = [w(BERLIN), w("Mon 12:00-15:00 UTC")];
        assert_eq!(check_windows(&both, now), Ok(Some(at((3, 30, 15, 0)))));
        assert_eq!(check_windows(&both[..1], now), Ok(Some(at((3, 30, 14, 0)))));
        let outside = check_windows(&both, at((3, 28, 12, 30))).unwrap_err();
        let expected = "outside the allowed window Mon–Fri 14:00–16:00 Europe/Berlin \
                        or Mon 12:00–15:00 UTC";
        assert_eq!(outside, expected);
    }

    #[test]
    fn a_late_approval_keeps_its_length_but_not_past_eligibility() {
        let t = |m: i64| {
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 2, 10, 0, 0).unwrap()
                + chrono::Duration::minutes(m)
        };
        // On time: as planned, cut to the eligibility.
        assert_eq!(
            granted_window(t(10), t(40), t(0), &[], None),
            (t(10), t(40))
        );
        assert_eq!(
            granted_window(t(10), t(40), t(0), &[], Some(t(30))),
            (t(10), t(30))
        );
        // Late: starts now, keeps its 60 minutes, unless eligibility ends first.
        assert_eq!(
            granted_window(t(0), t(60), t(20), &[], None),
            (t(20), t(80))
        );
        assert_eq!(
            granted_window(t(0), t(60), t(20), &[], Some(t(60))),
            (t(20), t(60))
        );
        // And not past the end of the time-of-day window it starts in.
        let w: TimeWindow = "Mon-Fri 09:00-11:00 UTC".parse().unwrap();
        assert_eq!(
            granted_window(t(0), t(60), t(30), &[w], None),
            (t(30), t(60))
        );
    }
}

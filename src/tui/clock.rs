//! The clocks on the screen and how often each changes (its granularity).
//!
//! Every change of a drawn clock costs bytes on the wire (ratatui redraws
//! the cells that changed), so each clock ticks only as often as a human
//! needs it:
//!
//! | clock                                   | granularity                              |
//! |-----------------------------------------|------------------------------------------|
//! | a running step's elapsed time, the ETA  | 5 s below a minute, then minutes, hours  |
//! | a source's age                          | `ok` within 2 probe intervals, then as above |
//! | a check's `for` countdown (`fails in`)  | every second: it is the news             |
//! | a finished step's duration              | exact seconds (it never changes)         |
//!
//! [`next_change`] says when the next of these changes, so the cockpit
//! sleeps until then instead of ticking.

use jiff::Timestamp;

/// A duration that keeps running (a running step's elapsed time, the time
/// left in the plan), in `s` seconds: `0s`, `5s` … `55s` (floored to 5 s
/// steps), then whole minutes `1m` … `59m`, then hours and minutes
/// `1h05m`. Negative input reads `0s`.
pub fn running(s: f64) -> String {
    let s = s.max(0.0);
    if s < 60.0 {
        format!("{}s", (s / 5.0).floor() as u64 * 5)
    } else if s < 3600.0 {
        format!("{}m", (s / 60.0).floor() as u64)
    } else {
        let m = (s / 60.0).floor() as u64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

/// A countdown of `s` seconds left (a check's `for` window), to the
/// second: `23s` (rounded up, so `0s` only when it ran out), `1m05s`.
pub fn countdown(s: f64) -> String {
    let s = s.max(0.0).ceil() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A duration that no longer changes (a finished step), in `s` seconds:
/// `7s`, `3m`, `2h` (rounded).
pub fn fixed(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.0}h", s / 3600.0)
    }
}

/// The age of a source's last good answer, `age_s` seconds, for a source
/// probed every `interval_s` seconds: `ok` while an answer within two
/// probe intervals is in hand (its exact age then only tells when the
/// next probe happens to land, and would tick every second), else how old
/// it is ([`running`]), so a late source shows its age.
pub fn source_age(age_s: f64, interval_s: f64) -> String {
    if age_s < fresh_s(interval_s) {
        "ok".into()
    } else {
        running(age_s)
    }
}

/// Below this age (seconds) a source reads fresh: two probe intervals,
/// rounded up to 5 s.
fn fresh_s(interval_s: f64) -> f64 {
    ((2.0 * interval_s.max(0.0)) / 5.0).ceil().max(1.0) * 5.0
}

/// Seconds from `s` until [`running`]`(s)` next changes.
pub fn running_next(s: f64) -> f64 {
    let s = s.max(0.0);
    let step = if s < 60.0 { 5.0 } else { 60.0 };
    ((s / step).floor() + 1.0) * step - s
}

/// Seconds from `left` until [`running`]`(left)` next changes while
/// `left` falls (the time left in the plan).
pub fn running_down_next(left: f64) -> Option<f64> {
    // Below the first step it reads `0s` until the end.
    if left < 5.0 {
        return None;
    }
    let step = if left < 60.0 { 5.0 } else { 60.0 };
    // Shown floored: changes just after `left` falls below its floor.
    Some(left - (left / step).floor() * step + 0.001)
}

/// Seconds from `left` seconds left until [`countdown`]`(left)` next
/// changes (`None`: it reads `0s` for good).
pub fn countdown_next(left: f64) -> Option<f64> {
    if left <= 0.0 {
        return None;
    }
    // Shown rounded up: changes when `left` falls to the integer below.
    let below = left.ceil() - 1.0;
    Some(left - below)
}

/// Seconds from `age_s` until [`source_age`] next changes.
pub fn source_age_next(age_s: f64, interval_s: f64) -> f64 {
    let fresh = fresh_s(interval_s);
    if age_s < fresh {
        fresh - age_s
    } else {
        running_next(age_s)
    }
}

/// Clock changes this close together (seconds) are drawn as one frame,
/// at the last of them.
pub const TOGETHER_S: f64 = 0.05;

/// The next instant after `now` at which a clock changes, from the
/// seconds-until-change of every clock on the screen (`waits`); `None`
/// when nothing drawn depends on the clock. Changes within [`TOGETHER_S`]
/// of the soonest are waited for too (one frame, not two), and the
/// answer is never earlier than 50 ms from now.
pub fn next_change(now: Timestamp, waits: impl IntoIterator<Item = f64>) -> Option<Timestamp> {
    let waits: Vec<f64> = waits
        .into_iter()
        .filter(|w| w.is_finite() && *w >= 0.0)
        .collect();
    let soonest = waits.iter().copied().reduce(f64::min)?;
    let last = waits
        .iter()
        .copied()
        .filter(|w| *w <= soonest + TOGETHER_S)
        .fold(soonest, f64::max);
    let ms = (last * 1000.0).round().max(50.0) as i64;
    now.checked_add(jiff::SignedDuration::from_millis(ms)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words() {
        assert_eq!(running(0.0), "0s");
        assert_eq!(running(4.9), "0s");
        assert_eq!(running(5.0), "5s");
        assert_eq!(running(59.9), "55s");
        assert_eq!(running(60.0), "1m");
        assert_eq!(running(3599.0), "59m");
        assert_eq!(running(3900.0), "1h05m");
        assert_eq!(countdown(23.2), "24s");
        assert_eq!(countdown(0.0), "0s");
        assert_eq!(countdown(65.0), "1m05s");
        assert_eq!(fixed(7.4), "7s");
        assert_eq!(source_age(3.0, 5.0), "ok");
        assert_eq!(source_age(12.0, 5.0), "10s");
        assert_eq!(source_age(75.0, 5.0), "1m");
    }

    /// The text at `f(x)` for x sampled every 100 ms over `[0, end)`:
    /// how many times it changed.
    fn changes(end: f64, f: impl Fn(f64) -> String) -> usize {
        let mut last = f(0.0);
        let mut n = 0;
        for i in 1..(end * 10.0) as usize {
            let s = f(i as f64 / 10.0);
            if s != last {
                n += 1;
                last = s;
            }
        }
        n
    }

    #[test]
    fn running_clocks_change_every_5_s_in_the_first_minute_then_per_minute() {
        assert_eq!(changes(60.0, running), 11);
        // then 1m at 60 s … 9m at 540 s.
        assert_eq!(changes(600.0, running), 11 + 9);
        // A countdown is news: every second.
        assert_eq!(changes(30.0, |s| countdown(30.0 - s)), 29); // 30s … 1s
        // A fresh source polled every 5 s does not tick at all.
        assert_eq!(changes(9.9, |s| source_age(s, 5.0)), 0);
    }

    proptest! {
        /// The text does not change before the instant `*_next` names,
        /// and does change at it.
        #[test]
        fn next_names_the_next_change(s in 0.0f64..20_000.0, interval in 1.0f64..60.0) {
            let n = running_next(s);
            prop_assert!(n > 0.0);
            prop_assert_eq!(running(s + n * 0.999), running(s));
            prop_assert_ne!(running(s + n + 1e-6), running(s));

            let n = source_age_next(s, interval);
            prop_assert!(n > 0.0);
            prop_assert_eq!(source_age(s + n * 0.999, interval), source_age(s, interval));
            prop_assert_ne!(source_age(s + n + 1e-6, interval), source_age(s, interval));

            if let Some(n) = running_down_next(s) {
                prop_assert!(n > 0.0);
                prop_assert_eq!(running(s - (n - 0.001) * 0.999), running(s));
                prop_assert_ne!(running(s - n), running(s));
            }

            if let Some(n) = countdown_next(s) {
                prop_assert!(n > 0.0 && n <= 1.0);
                prop_assert_eq!(countdown(s - n * 0.999), countdown(s));
                prop_assert_ne!(countdown(s - n - 1e-6), countdown(s));
            }
        }
    }
}

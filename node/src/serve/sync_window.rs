//! `serve --sync-window 01:00-05:00`: the hours of the node's local day in which it does bulk
//! sync (see README "Metered links and sync windows" for what counts as bulk).
//!
//! The window is a pure value over the second of the day; the node's local time comes from a
//! [`LocalClock`], which the running node reads from the system (`localtime_r`, so `TZ` applies)
//! and tests set.

use std::sync::Arc;

/// Seconds in a day.
pub const DAY_SECS: u32 = 24 * 3600;

/// Hours of the local day, start included, end excluded; it wraps midnight when the end comes
/// before the start (`22:00-06:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncWindow {
    /// Start, in minutes after local midnight.
    start: u32,
    /// End, in minutes after local midnight (1440 for `24:00`).
    end: u32,
}

/// Why a `--sync-window` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    /// Not `HH:MM-HH:MM`.
    #[error("`{0}` is not a window of local time such as 01:00-05:00 (HH:MM-HH:MM, 24-hour; it may wrap midnight, as 22:00-06:00)")]
    Unreadable(String),
    /// Start and end are the same time.
    #[error("`{0}` is empty (it starts when it ends); use 00:00-24:00 for always")]
    Empty(String),
}

impl SyncWindow {
    /// A window from `start` to `end`, in minutes after local midnight (`end` up to 1440).
    pub fn from_minutes(start: u32, end: u32) -> Option<Self> {
        (start < 1440 && end <= 1440 && start != end % 1440 || (start == 0 && end == 1440))
            .then_some(Self { start, end })
    }

    /// Whether `second` of the local day falls inside.
    pub fn contains(&self, second: u32) -> bool {
        let minute = (second % DAY_SECS) / 60;
        if self.start < self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Seconds from `second` of the local day until the window opens (0 inside it).
    pub fn secs_until_open(&self, second: u32) -> u32 {
        if self.contains(second) {
            return 0;
        }
        let second = second % DAY_SECS;
        let start = self.start * 60;
        (start + DAY_SECS - second) % DAY_SECS
    }

    /// Seconds from `second` of the local day until the window closes (0 outside it).
    pub fn secs_until_close(&self, second: u32) -> u32 {
        if !self.contains(second) {
            return 0;
        }
        if self.start == 0 && self.end == 1440 {
            return DAY_SECS;
        }
        let second = second % DAY_SECS;
        let end = (self.end % 1440) * 60;
        (end + DAY_SECS - second) % DAY_SECS
    }
}

impl std::str::FromStr for SyncWindow {
    type Err = WindowError;

    fn from_str(text: &str) -> Result<Self, WindowError> {
        let unreadable = || WindowError::Unreadable(text.to_string());
        let minutes = |part: &str| -> Result<u32, WindowError> {
            let (h, m) = part.trim().split_once(':').ok_or_else(unreadable)?;
            let digits =
                |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
            if !digits(h) || m.len() != 2 || !digits(m) {
                return Err(unreadable());
            }
            let (h, m): (u32, u32) = (
                h.parse().map_err(|_| unreadable())?,
                m.parse().map_err(|_| unreadable())?,
            );
            if m >= 60 || h > 24 || (h == 24 && m != 0) {
                return Err(unreadable());
            }
            Ok(h * 60 + m)
        };
        let (start, end) = text.split_once('-').ok_or_else(unreadable)?;
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start == 1440 {
            return Err(unreadable());
        }
        Self::from_minutes(start, end).ok_or_else(|| WindowError::Empty(text.to_string()))
    }
}

impl std::fmt::Display for SyncWindow {
    /// `01:00-05:00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// The second of the node's local day, as the window reads it.
#[derive(Clone)]
pub struct LocalClock(Arc<dyn Fn() -> u32 + Send + Sync>);

impl LocalClock {
    /// The system's local time (`TZ` and `/etc/localtime`, as `date` shows it).
    pub fn system() -> Self {
        Self(Arc::new(system_second_of_day))
    }

    /// A clock that says what `second` returns (tests).
    pub fn from_fn(second: impl Fn() -> u32 + Send + Sync + 'static) -> Self {
        Self(Arc::new(second))
    }

    /// The second of the local day now.
    pub fn second_of_day(&self) -> u32 {
        (self.0)() % DAY_SECS
    }
}

impl std::fmt::Debug for LocalClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalClock({})", self.second_of_day())
    }
}

/// The second of the local day from the C library (UTC if it cannot tell).
fn system_second_of_day() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = libc::time_t::try_from(now).unwrap_or(0);
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the
    // call and localtime_r keeps neither.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !filled {
        return (now % u64::from(DAY_SECS)) as u32;
    }
    let second = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec.min(59);
    u32::try_from(second).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> u32 {
        h * 3600 + m * 60
    }

    #[test]
    fn a_window_holds_its_hours_and_wraps_midnight() {
        let night: SyncWindow = "01:00-05:00".parse().expect("window");
        assert!(night.contains(at(1, 0)));
        assert!(night.contains(at(4, 59)));
        assert!(!night.contains(at(5, 0)));
        assert!(!night.contains(at(0, 59)));
        assert_eq!(night.secs_until_open(at(0, 30)), 1800);
        assert_eq!(night.secs_until_open(at(5, 0)), at(20, 0));
        assert_eq!(night.secs_until_close(at(4, 0)), 3600);

        let wrap: SyncWindow = "22:00-06:00".parse().expect("window");
        assert!(wrap.contains(at(23, 0)) && wrap.contains(at(0, 0)) && wrap.contains(at(5, 59)));
        assert!(!wrap.contains(at(6, 0)) && !wrap.contains(at(21, 59)));
        assert_eq!(wrap.secs_until_open(at(21, 0)), 3600);
        assert_eq!(wrap.secs_until_close(at(23, 0)), at(7, 0));

        let always: SyncWindow = "00:00-24:00".parse().expect("window");
        assert!(always.contains(0) && always.contains(DAY_SECS - 1));
        assert_eq!(always.to_string(), "00:00-24:00");
        assert_eq!(night.to_string(), "01:00-05:00");
        assert_eq!(
            "1:30-2:00".parse::<SyncWindow>().expect("w").to_string(),
            "01:30-02:00"
        );
    }

    #[test]
    fn bad_windows_are_refused_with_the_form() {
        for bad in [
            "",
            "1-5",
            "01:00",
            "25:00-01:00",
            "01:60-02:00",
            "a:00-b:00",
            "24:00-01:00",
            "01:00-05:00-06:00",
        ] {
            let error = bad.parse::<SyncWindow>().expect_err(bad);
            assert!(error.to_string().contains("01:00-05:00"), "{bad}: {error}");
        }
        assert!(matches!(
            "03:00-03:00".parse::<SyncWindow>(),
            Err(WindowError::Empty(_))
        ));
    }

    #[test]
    fn the_system_clock_gives_a_second_of_the_day() {
        assert!(LocalClock::system().second_of_day() < DAY_SECS);
        assert_eq!(LocalClock::from_fn(|| DAY_SECS + 5).second_of_day(), 5);
    }
}

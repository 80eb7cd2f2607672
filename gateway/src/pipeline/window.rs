//! Maintenance windows (rule 12): daily periods, in the operator's local time,
//! during which uploads are still received and accepted but checks wait; afterwards they
//! run in arrival order. Announced outages (rule 26) are dated periods that behave the
//! same: `YYYY-MM-DD HH:MM-HH:MM` (one day) or `YYYY-MM-DDTHH:MM/YYYY-MM-DDTHH:MM`. Written as `HH:MM-HH:MM` with a fixed UTC offset (`+08:00`):
//! Taiwan has no daylight saving, so a time-zone database would add nothing but weight.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    /// (start, end) in minutes after local midnight; end < start wraps past midnight.
    spans: Vec<(u32, u32)>,
    offset_secs: i64,
    /// Announced outages: [start, end) in unix seconds.
    dated: Vec<(i64, i64)>,
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && hhmm.trim().len() == 5).then_some(h * 60 + m)
}

fn offset(s: &str) -> Option<i64> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let m = minutes(&s[1..])?;
    Some(sign * i64::from(m) * 60)
}

impl Windows {
    pub fn parse(spans: &[String], utc_offset: &str) -> Result<Windows, String> {
        let offset_secs = offset(utc_offset)
            .ok_or_else(|| format!("`{utc_offset}` is not an offset like +08:00"))?;
        let spans = spans
            .iter()
            .map(|s| {
                let (a, b) = s
                    .split_once('-')
                    .ok_or_else(|| format!("`{s}` is not HH:MM-HH:MM"))?;
                match (minutes(a), minutes(b)) {
                    (Some(a), Some(b)) if a != b => Ok((a, b)),
                    _ => Err(format!("`{s}` is not HH:MM-HH:MM with two different times")),
                }
            })
            .collect::<Result<_, String>>()?;
        Ok(Windows {
            spans,
            offset_secs,
            dated: Vec::new(),
        })
    }

    /// Adds announced outages (local time at the same offset).
    pub fn with_outages(mut self, outages: &[String]) -> Result<Windows, String> {
        for o in outages {
            let bad = || {
                format!(
                    "`{o}` is not `YYYY-MM-DD HH:MM-HH:MM` or `YYYY-MM-DDTHH:MM/YYYY-MM-DDTHH:MM`"
                )
            };
            let local = |date: &str, hhmm: &str| -> Option<i64> {
                let day = crate::util::parse_instant(date.trim())?;
                Some(day + i64::from(minutes(hhmm)?) * 60 - self.offset_secs)
            };
            let (start, end) = if let Some((a, b)) = o.split_once('/') {
                let (da, ta) = a.split_once('T').ok_or_else(bad)?;
                let (db, tb) = b.split_once('T').ok_or_else(bad)?;
                (local(da, ta), local(db, tb))
            } else {
                let (date, times) = o.trim().split_once(' ').ok_or_else(bad)?;
                let (ta, tb) = times.split_once('-').ok_or_else(bad)?;
                (local(date, ta), local(date, tb))
            };
            match (start, end) {
                (Some(s), Some(e)) if s < e => self.dated.push((s, e)),
                _ => return Err(bad()),
            }
        }
        Ok(self)
    }

    pub fn none() -> Windows {
        Windows {
            spans: Vec::new(),
            offset_secs: 0,
            dated: Vec::new(),
        }
    }

    /// Seconds until the window containing `unix_secs` ends; `None` outside every window.
    pub fn remaining(&self, unix_secs: i64) -> Option<u64> {
        let daily = self.daily_remaining(unix_secs);
        let dated = self
            .dated
            .iter()
            .filter(|(s, e)| (*s..*e).contains(&unix_secs))
            .map(|(_, e)| u64::try_from(e - unix_secs).unwrap_or(0))
            .max();
        daily.max(dated)
    }

    fn daily_remaining(&self, unix_secs: i64) -> Option<u64> {
        let local_min = ((unix_secs + self.offset_secs).rem_euclid(86_400) / 60) as u32;
        let sec_in_min = (unix_secs + self.offset_secs).rem_euclid(60) as u64;
        self.spans
            .iter()
            .filter_map(|&(start, end)| {
                let inside = if start < end {
                    (start..end).contains(&local_min)
                } else {
                    local_min >= start || local_min < end
                };
                inside.then(|| u64::from((end + 1440 - local_min) % 1440) * 60 - sec_in_min)
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, m: i64) -> i64 {
        // 2026-11-22 in UTC, then h:m local at +08:00.
        1_795_305_600 + (h - 8) * 3600 + m * 60
    }

    #[test]
    fn taipei_maintenance_window() {
        let w = Windows::parse(&["05:00-08:00".into()], "+08:00").unwrap();
        assert_eq!(w.remaining(at(4, 59)), None);
        assert_eq!(w.remaining(at(5, 0)), Some(3 * 3600));
        assert_eq!(w.remaining(at(7, 30)), Some(30 * 60));
        assert_eq!(w.remaining(at(8, 0)), None);
        let night = Windows::parse(&["23:00-01:00".into()], "+08:00").unwrap();
        assert_eq!(night.remaining(at(23, 30)), Some(90 * 60));
        assert_eq!(night.remaining(at(24, 30)), Some(30 * 60));
        assert_eq!(night.remaining(at(12, 0)), None);
        for bad in ["5-8", "05:00", "25:00-26:00", "05:00-05:00"] {
            assert!(Windows::parse(&[bad.into()], "+08:00").is_err(), "{bad}");
        }
        assert!(Windows::parse(&[], "Asia/Taipei").is_err());
    }

    #[test]
    fn announced_outages_pause_checks_on_their_dates_only() {
        // 107.10.28 11:30–15:30 (seed 003), and one across midnight.
        let w = Windows::parse(&[], "+08:00")
            .unwrap()
            .with_outages(&[
                "2026-11-22 11:30-15:30".into(),
                "2026-11-22T23:00/2026-11-23T01:00".into(),
            ])
            .unwrap();
        assert_eq!(w.remaining(at(11, 29)), None);
        assert_eq!(w.remaining(at(11, 30)), Some(4 * 3600));
        assert_eq!(w.remaining(at(15, 0)), Some(30 * 60));
        assert_eq!(w.remaining(at(15, 30)), None);
        assert_eq!(w.remaining(at(23, 30)), Some(90 * 60));
        assert_eq!(w.remaining(at(11, 30) + 86_400), None, "the next day runs");
        for bad in [
            "2026-11-22",
            "2026-11-22 15:30-11:30",
            "22/11/2026 11:30-15:30",
        ] {
            assert!(
                Windows::none().with_outages(&[bad.into()]).is_err(),
                "{bad}"
            );
        }
    }
}

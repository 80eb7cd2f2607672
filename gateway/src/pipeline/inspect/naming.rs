//! Naming rules of the `nhi-review` profile (rules 7 and 8).
//!
//! - Review records: `LL C K… NNNNNN[-n|_n].ext` — level-1 code, category A–D, case
//!   classification (one character for the inpatient codes 21 and 22, two for every
//!   other; letters or digits), case serial, optional split suffix: `12A03123345.pdf`
//!   (11 characters), `22A1123456.pdf` (10). The parsed parts are indexed the same way
//!   for both forms so the review system can query by case.
//! - Batch archives: `<hospital code>_<ROC date yyyMMdd>_<seq>.zip`, where the code must
//!   be the uploader's own and the ROC date (year − 1911) a real date.
//!
//! A trailing `.age` (the sealed form) is ignored; only the last path component counts
//! (case folders are free-form).

use crate::checks::{Check, Severity};

/// Level-1 codes and what they mean (rule 7).
const LEVEL1: [(&str, &str); 12] = [
    ("11", "clinic outpatient"),
    ("12", "hospital outpatient"),
    ("13", "dental"),
    ("14", "Chinese medicine"),
    ("15", "outpatient dialysis"),
    ("19", "other outpatient"),
    ("21", "clinic inpatient"),
    ("22", "hospital inpatient"),
    ("29", "other inpatient"),
    ("30", "contracted pharmacy"),
    ("40", "physiotherapy"),
    ("50", "contracted laboratory"),
];

/// The parts of a review record name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseName {
    pub level1: String,
    pub level1_meaning: &'static str,
    /// `A` record body, `B` imaging reports, `C` non-imaging reports, `D` other.
    pub category: char,
    pub case_class: String,
    pub serial: String,
    pub part: Option<u32>,
}

/// The last component of `name`, without a trailing `.age`.
pub fn base_name(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.strip_suffix(".age").unwrap_or(last)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a review record name, or says what is wrong with it.
pub fn parse_case_name(name: &str) -> Result<CaseName, String> {
    let base = base_name(name);
    let (stem, _ext) = base
        .rsplit_once('.')
        .ok_or_else(|| format!("`{base}` has no extension"))?;
    let (core, part) = match stem.find(['-', '_']) {
        Some(i) => (&stem[..i], Some(&stem[i + 1..])),
        None => (stem, None),
    };
    let expected = "LL C KK NNNNNN[-n].ext (inpatient 21/22: LL C K NNNNNN), \
        e.g. 12A03123345.pdf or 22A1123456.pdf";
    if !core.is_ascii() || core.len() < 3 {
        return Err(format!("`{base}` is not {expected}"));
    }
    let l1 = &core[..2];
    // Table 1 of the review rules: the inpatient rows give the case class one character.
    let class_len = if matches!(l1, "21" | "22") { 1 } else { 2 };
    if core.len() != 3 + class_len + 6 {
        return Err(format!("`{base}` is not {expected}"));
    }
    let (cat, kk, serial) = (
        core.as_bytes()[2] as char,
        &core[3..3 + class_len],
        &core[3 + class_len..],
    );
    let meaning = LEVEL1
        .iter()
        .find(|(c, _)| *c == l1)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            format!("`{l1}` is not a level-1 code (11–15, 19, 21, 22, 29, 30, 40, 50)")
        })?;
    if !matches!(cat, 'A'..='D') {
        return Err(format!("category `{cat}` is not A, B, C or D"));
    }
    if !kk.bytes().all(|b| b.is_ascii_alphanumeric()) || !digits(serial) {
        return Err(format!("`{base}` is not {expected}"));
    }
    let part = match part {
        None => None,
        Some(p) => Some(
            p.parse::<u32>()
                .ok()
                .filter(|n| *n > 0 && digits(p))
                .ok_or_else(|| format!("split suffix `{p}` is not a number from 1"))?,
        ),
    };
    Ok(CaseName {
        level1: l1.into(),
        level1_meaning: meaning,
        category: cat,
        case_class: kk.into(),
        serial: serial.into(),
        part,
    })
}

/// The check for a review record name; `Ok` carries the parsed parts for the index.
pub fn check_case_name(name: &str) -> Result<(Check, CaseName), Check> {
    match parse_case_name(name) {
        Ok(c) => Ok((
            Check::new(
                "naming.case",
                Severity::Info,
                format!(
                    "case {}{}{}{} ({}, category {})",
                    c.level1, c.category, c.case_class, c.serial, c.level1_meaning, c.category
                ),
            ),
            c,
        )),
        Err(why) => Err(Check::new("naming.case_invalid", Severity::Error, why)
            .with_detail(serde_json::json!({ "name": base_name(name) }))),
    }
}

/// A parsed batch archive name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchName {
    pub hospital: String,
    /// The ROC date as written (`yyyMMdd`) and as an ISO date.
    pub roc_date: String,
    pub date: String,
    pub seq: u32,
}

/// Checks `<code>_<yyyMMdd>_<seq>.zip` for the uploader `tenant`.
pub fn check_batch_name(name: &str, tenant: &str) -> Result<BatchName, Check> {
    let base = base_name(name);
    let fail = |code: &str, why: String| {
        Err(Check::new(code, Severity::Error, why).with_detail(serde_json::json!({ "name": base })))
    };
    let Some(stem) = base.strip_suffix(".zip") else {
        return fail(
            "naming.batch_invalid",
            format!("`{base}` does not end in .zip"),
        );
    };
    let parts: Vec<&str> = stem.split('_').collect();
    let [code, roc, seq] = parts[..] else {
        return fail(
            "naming.batch_invalid",
            format!("`{base}` is not <hospital code>_<ROC date yyyMMdd>_<seq>.zip"),
        );
    };
    if code.len() != 10
        || !digits(code)
        || roc.len() != 7
        || !digits(roc)
        || seq.len() != 3
        || !digits(seq)
    {
        return fail(
            "naming.batch_invalid",
            format!("`{base}` is not <10-digit hospital code>_<yyyMMdd>_<3-digit seq>.zip"),
        );
    }
    if code != tenant {
        return fail(
            "naming.batch_hospital",
            format!("the batch names hospital {code}, but it was uploaded by {tenant}"),
        );
    }
    let (y, m, d) = (
        roc[..3].parse::<i32>().unwrap_or(0) + 1911,
        roc[3..5].parse::<u32>().unwrap_or(0),
        roc[5..].parse::<u32>().unwrap_or(0),
    );
    if !valid_date(y, m, d) {
        return fail(
            "naming.batch_date",
            format!("`{roc}` is not a real ROC date (year {y}, month {m}, day {d})"),
        );
    }
    Ok(BatchName {
        hospital: code.into(),
        roc_date: roc.into(),
        date: format!("{y:04}-{m:02}-{d:02}"),
        seq: seq.parse().unwrap_or(0),
    })
}

fn valid_date(y: i32, m: u32, d: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_names_parse_into_their_parts() {
        let c = parse_case_name("case-7/12A03123345.pdf.age").unwrap();
        assert_eq!(
            (
                c.level1.as_str(),
                c.category,
                c.case_class.as_str(),
                c.serial.as_str(),
                c.part
            ),
            ("12", 'A', "03", "123345", None)
        );
        assert_eq!(parse_case_name("13B19012345_1.pdf").unwrap().part, Some(1));
        assert_eq!(parse_case_name("11B09001352-2.jpg").unwrap().part, Some(2));
        let inpatient = parse_case_name("22A1123456.pdf").unwrap();
        assert_eq!(
            (
                inpatient.level1.as_str(),
                inpatient.category,
                inpatient.case_class.as_str(),
                inpatient.serial.as_str()
            ),
            ("22", 'A', "1", "123456")
        );
        let split = parse_case_name("21C3000123-2.pdf").unwrap();
        assert_eq!((split.case_class.as_str(), split.part), ("3", Some(2)));
        assert_eq!(
            parse_case_name("12BA1123456.pdf").unwrap().case_class,
            "A1",
            "a case class is characters, not only digits"
        );
        assert_eq!(parse_case_name("22DE123456.pdf").unwrap().case_class, "E");
        for bad in [
            "22A11123456.pdf",
            "12A1123456.pdf",
            "29A1123456.pdf",
            "22A#123456.pdf",
            "16A03123345.pdf",
            "12E03123345.pdf",
            "12A0312334.pdf",
            "12A03123345",
            "12A03123345-0.pdf",
            "12A03123345-x.pdf",
            "12A.3123345.pdf",
            "12A0312334X.pdf",
        ] {
            assert!(parse_case_name(bad).is_err(), "{bad}");
        }
        let err = check_case_name("報告.pdf").unwrap_err();
        assert_eq!(err.code, "naming.case_invalid");
    }

    #[test]
    fn batch_names_check_hospital_and_roc_date() {
        let b = check_batch_name("3501200000_1030101_001.zip", "3501200000").unwrap();
        assert_eq!((b.date.as_str(), b.seq), ("2014-01-01", 1));
        assert_eq!(
            check_batch_name("3501200000_1130229_002.zip.age", "3501200000")
                .unwrap()
                .date,
            "2024-02-29"
        );
        let code = |n: &str| check_batch_name(n, "3501200000").unwrap_err().code;
        assert_eq!(code("1101020018_1030101_001.zip"), "naming.batch_hospital");
        assert_eq!(code("3501200000_1120229_001.zip"), "naming.batch_date",);
        assert_eq!(code("3501200000_1031301_001.zip"), "naming.batch_date");
        assert_eq!(code("3501200000_103011_001.zip"), "naming.batch_invalid");
        assert_eq!(code("3501200000_1030101.zip"), "naming.batch_invalid");
    }
}

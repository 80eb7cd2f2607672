//! QIDO-RS `includefield`: which optional attributes an answer carries (PS3.18
//! §8.3.4.3). A series-level answer holds series attributes and the study's UID; the
//! patient and study attributes come when asked for by keyword, by tag or with `all`.
//! An attribute the index does not hold is named in a `Warning` rather than dropped
//! without a word.

use dicom_core::dictionary::DataDictionary;
use dicom_dictionary_std::StandardDataDictionary;
use serde_json::Value;

/// Patient and study attributes a series-level answer leaves out unless asked.
const STUDY_LEVEL: [&str; 11] = [
    "00080020", "00080030", "00080050", "00080080", "00080090", "00081030", "00100010", "00100020",
    "00100030", "00100040", "00200010",
];

/// Every attribute the index holds and answers can carry (json.rs writes them).
const HELD: [&str; 24] = [
    "00080020", "00080030", "00080050", "00080080", "00080090", "00081030", "00100010", "00100020",
    "00100030", "00100040", "0020000D", "00200010", "00080061", "00201206", "00201208", "00080060",
    "0008103E", "0020000E", "00200011", "00201209", "00080016", "00080018", "00083002", "00200013",
];

/// What `includefield` asked for.
#[derive(Debug, Default)]
pub struct Include {
    all: bool,
    tags: Vec<String>,
    /// Asked for but not held by the index (keywords or tags as given).
    pub missing: Vec<String>,
}

/// `GGGGEEEE` for a keyword or a tag given as `GGGGEEEE` (any case), if it is one.
fn tag_of(field: &str) -> Option<String> {
    if field.len() == 8 && field.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(field.to_ascii_uppercase());
    }
    let entry = StandardDataDictionary.by_name(field)?;
    let t = entry.tag.inner();
    Some(format!("{:04X}{:04X}", t.group(), t.element()))
}

impl Include {
    /// Adds one `includefield` value (comma-separated fields, or `all`). An unknown
    /// keyword is a bad query.
    pub fn add(&mut self, value: &str) -> Result<(), String> {
        for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            if field.eq_ignore_ascii_case("all") {
                self.all = true;
                continue;
            }
            let Some(tag) = tag_of(field) else {
                return Err(format!(
                    "includefield: `{field}` is neither a DICOM keyword nor a tag (GGGGEEEE)"
                ));
            };
            if !HELD.contains(&tag.as_str()) {
                self.missing.push(field.to_string());
            }
            self.tags.push(tag);
        }
        Ok(())
    }

    fn wants(&self, tag: &str) -> bool {
        self.all || self.tags.iter().any(|t| t == tag)
    }

    /// Drops from a series-level answer the study attributes nobody asked for.
    pub fn trim_series(&self, item: &mut Value) {
        if let Value::Object(o) = item {
            o.retain(|k, _| !STUDY_LEVEL.contains(&k.as_str()) || self.wants(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_by_keyword_or_tag_and_unheld_ones_are_reported() {
        let mut i = Include::default();
        i.add("PatientName, 00080020,Rows").unwrap();
        assert!(i.wants("00100010") && i.wants("00080020") && !i.wants("00100020"));
        assert_eq!(i.missing, ["Rows"]);
        assert!(i.add("NoSuchKeyword").is_err());
        let mut all = Include::default();
        all.add("all").unwrap();
        assert!(all.wants("00100020"));
        let mut item =
            serde_json::json!({ "00100010": {}, "00100020": {}, "0020000D": {}, "0020000E": {} });
        i.trim_series(&mut item);
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["00100010", "0020000D", "0020000E"]);
    }
}

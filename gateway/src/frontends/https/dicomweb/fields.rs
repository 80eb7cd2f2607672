//! QIDO-RS `includefield` and matching on attributes without a column (PS3.18
//! §8.3.4). A series-level answer holds series attributes and the study's UID; the
//! patient and study attributes come when asked for by keyword, by tag or with `all`.
//! Any other attribute comes from the instance's short attributes the index keeps
//! (`dicom_json::indexable`): at instance level `all` brings every one, at study and
//! series level those named, from the group's first instance. Sequences are not kept:
//! one asked for is named in a `Warning` rather than dropped without a word.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use serde_json::Value;

use crate::backends::catalog::{AttributeMatch, AttributeValue};

/// Patient and study attributes a series-level answer leaves out unless asked.
const STUDY_LEVEL: [&str; 11] = [
    "00080020", "00080030", "00080050", "00080080", "00080090", "00081030", "00100010", "00100020",
    "00100030", "00100040", "00200010",
];

/// What `includefield` asked for.
#[derive(Debug, Default)]
pub struct Include {
    all: bool,
    tags: Vec<String>,
    /// Sequences asked for, which the index does not keep (keywords or tags as given).
    pub missing: Vec<String>,
}

/// The dictionary's VR of `GGGGEEEE` (`None`: private or unknown).
fn vr_of(tag: &str) -> Option<VR> {
    let group = u16::from_str_radix(tag.get(..4)?, 16).ok()?;
    let element = u16::from_str_radix(tag.get(4..)?, 16).ok()?;
    // Context-dependent VRs are numbers (US or SS) or binary (OB or OW) either way.
    Some(
        StandardDataDictionary
            .by_tag(Tag(group, element))?
            .vr()
            .relaxed(),
    )
}

/// `GGGGEEEE` for a keyword or a tag given as `GGGGEEEE` (any case), if it is one.
pub fn tag_of(field: &str) -> Option<String> {
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
            if vr_of(&tag) == Some(VR::SQ) {
                self.missing.push(field.to_string());
            }
            self.tags.push(tag);
        }
        Ok(())
    }

    fn wants(&self, tag: &str) -> bool {
        self.all || self.tags.iter().any(|t| t == tag)
    }

    /// Adds to an answer the kept attributes (`attributes`, a DICOM JSON object) asked
    /// for; `all` brings every one only at instance level (`instance`).
    pub fn merge(&self, attributes: &str, instance: bool, item: &mut Value) {
        if !(self.all && instance) && self.tags.is_empty() {
            return;
        }
        let (Ok(Value::Object(kept)), Value::Object(o)) =
            (serde_json::from_str::<Value>(attributes), item)
        else {
            return;
        };
        for (k, v) in kept {
            if (self.all && instance) || self.tags.contains(&k) {
                o.entry(k).or_insert(v);
            }
        }
    }

    /// Drops from a series-level answer the study attributes nobody asked for.
    pub fn trim_series(&self, item: &mut Value) {
        if let Value::Object(o) = item {
            o.retain(|k, _| !STUDY_LEVEL.contains(&k.as_str()) || self.wants(k));
        }
    }
}

/// Matching on an attribute without a column, `tag` (`GGGGEEEE`) = `value`: numbers
/// by value, dates and times by value or range, anything else (a private attribute
/// too) as text with wildcards. Binary values and sequences cannot be matched.
pub fn attribute_match(tag: String, value: &str) -> Result<AttributeMatch, String> {
    let value = match vr_of(&tag) {
        Some(VR::SQ | VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN | VR::AT) => {
            return Err(format!(
                "{tag}: binary values and sequences cannot be matched"
            ));
        }
        Some(
            VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV | VR::FL | VR::FD | VR::DS | VR::IS,
        ) => AttributeValue::Number(
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{tag}: a number"))?,
        ),
        Some(VR::DA | VR::TM | VR::DT) if value.contains('-') => {
            let (from, to) = value.split_once('-').unwrap_or((value, value));
            let bound = |s: &str| (!s.is_empty()).then(|| s.to_string());
            if from.is_empty() && to.is_empty() {
                return Err(format!("{tag}: a value or a range like 20040101-20041231"));
            }
            AttributeValue::Range(bound(from), bound(to))
        }
        _ => AttributeValue::Text(value.to_string()),
    };
    Ok(AttributeMatch { tag, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_by_keyword_or_tag_and_unheld_ones_are_reported() {
        let mut i = Include::default();
        i.add("PatientName, 00080020,Rows").unwrap();
        assert!(i.wants("00100010") && i.wants("00080020") && !i.wants("00100020"));
        assert!(i.missing.is_empty());
        i.add("ReferencedImageSequence").unwrap();
        assert_eq!(i.missing, ["ReferencedImageSequence"]);
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

    #[test]
    fn kept_attributes_are_merged_as_asked() {
        let kept = r#"{"00280010":{"vr":"US","Value":[512]},"00091001":{"vr":"LO","Value":["x"]}}"#;
        let mut rows = Include::default();
        rows.add("Rows").unwrap();
        let mut item = serde_json::json!({ "0020000D": {} });
        rows.merge(kept, false, &mut item);
        assert_eq!(item["00280010"]["Value"][0], 512);
        assert!(item.get("00091001").is_none());
        let mut all = Include::default();
        all.add("all").unwrap();
        let mut study = serde_json::json!({});
        all.merge(kept, false, &mut study);
        assert_eq!(
            study,
            serde_json::json!({}),
            "all at study level: columns only"
        );
        let mut inst = serde_json::json!({});
        all.merge(kept, true, &mut inst);
        assert_eq!(inst["00091001"]["Value"][0], "x");
    }

    #[test]
    fn attribute_matches_follow_the_vr() {
        let m = |k: &str, v: &str| attribute_match(tag_of(k).unwrap(), v).map(|m| m.value);
        assert_eq!(m("Rows", "512"), Ok(AttributeValue::Number(512.0)));
        assert!(m("Rows", "many").is_err());
        assert_eq!(
            m("SliceThickness", " 2.50"),
            Ok(AttributeValue::Number(2.5))
        );
        assert_eq!(
            m("AcquisitionDate", "20040101-"),
            Ok(AttributeValue::Range(Some("20040101".into()), None))
        );
        assert_eq!(
            m("BodyPartExamined", "CH*"),
            Ok(AttributeValue::Text("CH*".into()))
        );
        assert_eq!(m("00091001", "x"), Ok(AttributeValue::Text("x".into())));
        assert!(m("ReferencedImageSequence", "1").is_err());
        assert!(m("PixelData", "1").is_err());
    }
}

//! DICOM JSON (PS3.18 Annex F) of a data set read by dicom-rs: what WADO-RS metadata
//! answers, and the small attributes the index keeps for QIDO-RS `includefield` and
//! matching ([`indexable`]).

use dicom_core::header::HasLength;
use serde_json::{Map, Value, json};

/// Binary values longer than this are not inlined in metadata but given as a
/// BulkDataURI (PS3.18 §8.7.3.3.2): a viewer fetches them when it needs them.
pub const BULK_THRESHOLD: usize = 1024;

/// A whole data set (a header read up to the pixel data) as DICOM JSON; binary values
/// over [`BULK_THRESHOLD`] become BulkDataURIs under `bulk` (`…/bulkdata`, the element's
/// tag appended, and for one inside a sequence `SEQTAG/ITEM/TAG`). Written here
/// rather than with the `dicom-json` crate because that crate turns on serde_json's
/// `preserve_order` for the whole program, changing every other JSON document we write.
pub fn dataset(obj: &dicom_object::InMemDicomObject, bulk: &str) -> Value {
    let mut o = Map::new();
    for e in obj {
        let tag = e.header().tag;
        let key = format!("{:04X}{:04X}", tag.group(), tag.element());
        let here = format!("{bulk}/{key}");
        o.insert(key, element(e, &here));
    }
    Value::Object(o)
}

/// Attributes the index has columns for (and answers from them, json.rs in DICOMweb),
/// including those it computes (ModalitiesInStudy, the related counts): left out of
/// [`indexable`] so each has one source.
pub const IN_COLUMNS: [&str; 24] = [
    "00080020", "00080030", "00080050", "00080080", "00080090", "00081030", "00100010", "00100020",
    "00100030", "00100040", "0020000D", "00200010", "00080061", "00201206", "00201208", "00080060",
    "0008103E", "0020000E", "00200011", "00201209", "00080016", "00080018", "00083002", "00200013",
];

/// Longest value (as stored) of one attribute the index keeps — a name, a number list, a
/// short inline binary — and most stored bytes of one instance's together: a CT header's
/// short attributes take 3–6 KiB; a longer value stays in the file, for WADO-RS
/// metadata.
pub const INDEXED_VALUE_MAX: u32 = 256;
pub const INDEXED_TOTAL_MAX: usize = 16 * 1024;

/// The top-level attributes the index keeps beside its columns, for QIDO-RS
/// `includefield` and matching on any attribute: short ones only
/// ([`INDEXED_VALUE_MAX`]), no sequences, in tag order until [`INDEXED_TOTAL_MAX`].
/// Lengths are looked at before any value is decoded: this runs for every instance
/// indexed, so a header's large values cost nothing here.
pub fn indexable(obj: &dicom_object::InMemDicomObject) -> Value {
    let mut o = Map::new();
    let mut total = 0;
    for e in obj {
        let Some(len) = e.header().length().get() else {
            continue;
        };
        if e.vr() == dicom_core::VR::SQ || len > INDEXED_VALUE_MAX {
            continue;
        }
        let tag = e.header().tag;
        let key = format!("{:04X}{:04X}", tag.group(), tag.element());
        if IN_COLUMNS.contains(&key.as_str()) {
            continue;
        }
        let size = len as usize + 32;
        if total + size > INDEXED_TOTAL_MAX {
            break;
        }
        total += size;
        o.insert(key, element(e, ""));
    }
    Value::Object(o)
}

/// A person name as DICOM JSON wants it (PS3.18 F.2.2): its `=`-separated component
/// groups as `Alphabetic`, `Ideographic` and `Phonetic`, empty groups left out.
pub fn person_name(n: &str) -> Value {
    let decoded = super::dicom_charset::decode(n);
    let n = decoded.as_deref().unwrap_or(n);
    let mut o = Map::new();
    for (key, group) in ["Alphabetic", "Ideographic", "Phonetic"]
        .iter()
        .zip(n.trim_end_matches(['\0', ' ']).split('='))
    {
        if !group.is_empty() {
            o.insert((*key).to_string(), json!(group));
        }
    }
    Value::Object(o)
}

fn element(e: &dicom_object::mem::InMemElement, here: &str) -> Value {
    use base64::Engine;
    use dicom_core::VR;
    let vr = e.vr();
    let mut v = Map::new();
    v.insert("vr".into(), json!(vr.to_string()));
    let value: Option<Value> = match vr {
        VR::SQ => e.items().map(|items| {
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| dataset(item, &format!("{here}/{i}")))
                    .collect(),
            )
        }),
        VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN => {
            let bytes = e.to_bytes().map(|b| b.into_owned()).unwrap_or_default();
            if bytes.len() > BULK_THRESHOLD {
                v.insert("BulkDataURI".into(), json!(here));
            } else if !bytes.is_empty() {
                v.insert(
                    "InlineBinary".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
                );
            }
            None
        }
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV => {
            e.to_multi_int::<i64>().ok().map(|n| json!(n))
        }
        VR::FL | VR::FD | VR::DS => e.to_multi_float64().ok().map(|n| json!(n)),
        VR::IS => e.to_multi_int::<i64>().ok().map(|n| json!(n)),
        VR::AT => match e.value() {
            dicom_core::DicomValue::Primitive(dicom_core::PrimitiveValue::Tags(tags)) => Some(
                tags.iter()
                    .map(|t| json!(format!("{:04X}{:04X}", t.group(), t.element())))
                    .collect(),
            ),
            _ => None,
        },
        VR::PN => e
            .to_multi_str()
            .ok()
            .map(|names| Value::Array(names.iter().map(|n| person_name(n)).collect())),
        _ => e.to_multi_str().ok().map(|s| {
            Value::Array(
                s.iter()
                    .map(|x| {
                        let x = super::dicom_charset::decode(x).unwrap_or_else(|| x.to_string());
                        json!(x.trim_end_matches(['\0', ' ']))
                    })
                    .collect(),
            )
        }),
    };
    if let Some(val) = value.filter(|x| x.as_array().is_some_and(|a| !a.is_empty())) {
        v.insert("Value".into(), val);
    }
    Value::Object(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn person_names_keep_their_component_groups() {
        assert_eq!(
            super::person_name("Yamada^Tarou=YI^ideo=ya^phon "),
            serde_json::json!({ "Alphabetic": "Yamada^Tarou", "Ideographic": "YI^ideo", "Phonetic": "ya^phon" })
        );
        assert_eq!(
            super::person_name("=Ideo"),
            serde_json::json!({ "Ideographic": "Ideo" })
        );
        assert_eq!(
            super::person_name("DOE^JOHN"),
            serde_json::json!({ "Alphabetic": "DOE^JOHN" })
        );
    }
}

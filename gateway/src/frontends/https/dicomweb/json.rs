//! DICOM JSON (PS3.18 Annex F) for what the index holds: the attributes QIDO-RS
//! answers with at each level, built from catalog rows.

use serde_json::{Map, Value, json};

use crate::backends::catalog::{DicomGroup, DicomRow};

/// One attribute: `"GGGGEEEE": {"vr": …, "Value": […]}`; empty values carry no `Value`.
fn put(obj: &mut Map<String, Value>, tag: &str, vr: &str, value: &str) {
    let v = if value.is_empty() {
        json!({ "vr": vr })
    } else {
        match vr {
            "PN" => json!({ "vr": vr, "Value": [{ "Alphabetic": value }] }),
            "IS" => match value.trim().parse::<i64>() {
                Ok(n) => json!({ "vr": vr, "Value": [n] }),
                Err(_) => json!({ "vr": vr }),
            },
            _ => json!({ "vr": vr, "Value": value.split('\\').collect::<Vec<_>>() }),
        }
    };
    obj.insert(tag.to_string(), v);
}

fn put_int(obj: &mut Map<String, Value>, tag: &str, n: i64) {
    obj.insert(tag.to_string(), json!({ "vr": "IS", "Value": [n] }));
}

fn study_attrs(obj: &mut Map<String, Value>, r: &DicomRow) {
    put(obj, "00080020", "DA", &r.study_date);
    put(obj, "00080030", "TM", &r.study_time);
    put(obj, "00080050", "SH", &r.accession_number);
    put(obj, "00080080", "LO", &r.institution_name);
    put(obj, "00080090", "PN", &r.referring_physician);
    put(obj, "00081030", "LO", &r.study_description);
    put(obj, "00100010", "PN", &r.patient_name);
    put(obj, "00100020", "LO", &r.patient_id);
    put(obj, "00100030", "DA", &r.patient_birth_date);
    put(obj, "00100040", "CS", &r.patient_sex);
    put(obj, "0020000D", "UI", &r.study_uid);
    put(obj, "00200010", "SH", &r.study_id);
}

fn series_attrs(obj: &mut Map<String, Value>, r: &DicomRow) {
    put(obj, "00080060", "CS", &r.modality);
    put(obj, "0008103E", "LO", &r.series_description);
    put(obj, "0020000E", "UI", &r.series_uid);
    put(obj, "00200011", "IS", &r.series_number);
}

fn retrieve(obj: &mut Map<String, Value>, url: String) {
    obj.insert("00081190".into(), json!({ "vr": "UR", "Value": [url] }));
}

/// A study-level answer.
pub fn study(g: &DicomGroup, base: &str) -> Value {
    let mut o = Map::new();
    study_attrs(&mut o, &g.row);
    put(&mut o, "00080061", "CS", &g.modalities.join("\\"));
    put_int(&mut o, "00201206", g.series);
    put_int(&mut o, "00201208", g.instances);
    retrieve(&mut o, format!("{base}/studies/{}", g.row.study_uid));
    Value::Object(o)
}

/// A series-level answer, with its study's attributes (fields.rs leaves out those not
/// asked for by `includefield`).
pub fn series(g: &DicomGroup, base: &str) -> Value {
    let mut o = Map::new();
    study_attrs(&mut o, &g.row);
    series_attrs(&mut o, &g.row);
    put_int(&mut o, "00201209", g.instances);
    retrieve(
        &mut o,
        format!(
            "{base}/studies/{}/series/{}",
            g.row.study_uid, g.row.series_uid
        ),
    );
    Value::Object(o)
}

/// An instance-level answer.
pub fn instance(r: &DicomRow, base: &str) -> Value {
    let mut o = Map::new();
    study_attrs(&mut o, r);
    series_attrs(&mut o, r);
    put(&mut o, "00080016", "UI", &r.sop_class_uid);
    put(&mut o, "00080018", "UI", &r.sop_uid);
    put(&mut o, "00083002", "UI", &r.transfer_syntax);
    put(&mut o, "00200013", "IS", &r.instance_number);
    if let Some(n) = r.number_of_frames {
        put_int(&mut o, "00280008", i64::from(n));
    }
    retrieve(
        &mut o,
        format!(
            "{base}/studies/{}/series/{}/instances/{}",
            r.study_uid, r.series_uid, r.sop_uid
        ),
    );
    Value::Object(o)
}

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

/// A person name as DICOM JSON wants it (PS3.18 F.2.2): its `=`-separated component
/// groups as `Alphabetic`, `Ideographic` and `Phonetic`, empty groups left out.
fn person_name(n: &str) -> Value {
    let decoded = super::charset::decode(n);
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
                        let x = super::charset::decode(x).unwrap_or_else(|| x.to_string());
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

//! DICOM JSON (PS3.18 Annex F) for what the index holds: the attributes QIDO-RS
//! answers with at each level, built from catalog rows.

use serde_json::{Map, Value, json};

use crate::backends::catalog::{DicomGroup, DicomRow};
use crate::pipeline::inspect::dicom_json;

/// One attribute: `"GGGGEEEE": {"vr": …, "Value": […]}`; empty values carry no `Value`.
fn put(obj: &mut Map<String, Value>, tag: &str, vr: &str, value: &str) {
    let v = if value.is_empty() {
        json!({ "vr": vr })
    } else {
        match vr {
            "PN" => json!({ "vr": vr, "Value": [dicom_json::person_name(value)] }),
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

//! The file index's contract: versions of a name, duplicates of a content, findings and
//! the DICOM instances an upload yields.

use super::{OTHER, T, accepted, file, sha};
use crate::backends::catalog::{CatalogStore, DicomRow};
use crate::checks::{Check, Severity, Status};

pub async fn run(c: &dyn CatalogStore) {
    // Starts from the uploads the queue suite leaves behind.
    super::queue::run(c).await;
    indexing_versions_and_duplicates(c).await;
}

async fn indexing_versions_and_duplicates(c: &dyn CatalogStore) {
    let u1 = c.upload("u1").await.unwrap().unwrap();
    let checks = [
        Check::new("type.allowed", Severity::Info, "a PDF"),
        Check::new("x.note", Severity::Warning, "note").with_detail(serde_json::json!({"k": 1})),
    ];
    let mut f1 = file("u1", &u1.name, &sha(1), 800);
    let inst = DicomRow {
        path: "IMAGES/IM1".into(),
        patient_id: "P1".into(),
        study_uid: "1.2.3".into(),
        series_uid: "1.2.3.4".into(),
        sop_uid: "1.2.3.4.5".into(),
        number_of_frames: Some(2),
        ..DicomRow::default()
    };
    f1.instances = vec![inst.clone()];
    c.index_upload(&u1, &f1, &checks, &f1.indexed_event(&u1, &checks))
        .await
        .unwrap();
    assert!(
        c.index_upload(&u1, &f1, &checks, &f1.indexed_event(&u1, &checks))
            .await
            .is_err(),
        "an upload is indexed once"
    );
    let result = c.check_result("u1").await.unwrap().unwrap();
    assert_eq!(result.status, Status::Passed);
    assert_eq!(
        result.checks, checks,
        "findings keep their order and detail"
    );
    let listed: Vec<Check> = c
        .checks_under(T, "")
        .await
        .unwrap()
        .into_iter()
        .filter(|(id, _)| id == "u1")
        .map(|(_, check)| check)
        .collect();
    assert_eq!(listed, checks, "a listing's findings match the result's");
    assert!(
        c.checks_under(T, "elsewhere/").await.unwrap().is_empty(),
        "only names under the prefix"
    );
    assert_eq!(c.outbox_count("file.indexed").await.unwrap(), 1);
    assert_eq!(
        c.indexed_files("u1").await.unwrap(),
        [(f1.id.clone(), sha(1), f1.object_key.clone())]
    );
    let same = c.same_content(T, &sha(1)).await.unwrap().unwrap();
    assert_eq!(
        (same.file_id.as_str(), same.name.as_str()),
        ("fu1", "a/12A03123345.pdf")
    );
    assert!(c.same_content(OTHER, &sha(1)).await.unwrap().is_none());
    assert_eq!(c.study_instances(T, "1.2.3").await.unwrap(), [inst]);
    assert!(c.study_instances(OTHER, "1.2.3").await.unwrap().is_empty());

    // A new version of the same name supersedes the old one.
    accepted(c, "u4", "a/12A03123345.pdf", &sha(4), 900).await;
    let u4 = c.claim_next_accepted().await.unwrap().unwrap();
    assert_eq!(u4.id, "u4");
    let f4 = file("u4", &u4.name, &sha(4), 900);
    c.index_upload(&u4, &f4, &[], &f4.indexed_event(&u4, &[]))
        .await
        .unwrap();
    assert!(
        c.same_content(T, &sha(1)).await.unwrap().is_none(),
        "superseded"
    );
    let under = c.current_files_under(T, "a/").await.unwrap();
    assert_eq!(
        under
            .iter()
            .map(|f| (f.name.as_str(), f.size, f.sha256.clone()))
            .collect::<Vec<_>>(),
        [("a/12A03123345.pdf", 900, sha(4))]
    );
    assert!(
        c.current_files_under(T, "a_").await.unwrap().is_empty(),
        "`_` is literal"
    );
    assert!(c.current_files_under(OTHER, "a/").await.unwrap().is_empty());
    let all = c.all_indexed().await.unwrap();
    assert_eq!(all, [("u1".into(), sha(1)), ("u4".into(), sha(4))]);
}

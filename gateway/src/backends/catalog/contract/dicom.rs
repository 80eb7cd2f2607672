//! The DICOM index's contract: one SOP Instance UID is one instance at every level —
//! a later file's instance replaces the earlier one in searches, counts and retrieval.

use super::{OTHER, T, accepted, file, sha};
use crate::backends::catalog::{CatalogStore, DicomLevel, DicomQuery, DicomRow};

pub async fn run(c: &dyn CatalogStore) {
    an_instance_sent_again_replaces_the_earlier_one(c).await;
}

fn instance(sop: &str, number: &str) -> DicomRow {
    DicomRow {
        path: format!("IM{number}"),
        patient_id: "P1".into(),
        study_uid: "1.2.3".into(),
        series_uid: "1.2.3.4".into(),
        sop_uid: sop.into(),
        instance_number: number.into(),
        modality: "CT".into(),
        ..DicomRow::default()
    }
}

/// Accepts, claims and indexes upload `id` (named `name`) holding `instances`.
async fn index(c: &dyn CatalogStore, id: &str, name: &str, n: u8, instances: Vec<DicomRow>) {
    accepted(c, id, name, &sha(n), 100).await;
    let row = c.claim_next_accepted().await.unwrap().unwrap();
    assert_eq!(row.id, id);
    let mut f = file(id, name, &sha(n), 100);
    f.instances = instances;
    c.index_upload(&row, &f, &[], &f.indexed_event(&row, &[]))
        .await
        .unwrap();
}

async fn an_instance_sent_again_replaces_the_earlier_one(c: &dyn CatalogStore) {
    index(
        c,
        "d1",
        "ct/first.dcm",
        1,
        vec![instance("1.2.3.4.1", "1"), instance("1.2.3.4.2", "2")],
    )
    .await;
    // The same study again under another name: instance 1 corrected, instance 3 new.
    index(
        c,
        "d2",
        "ct/again.dcm",
        2,
        vec![instance("1.2.3.4.1", "11"), instance("1.2.3.4.3", "3")],
    )
    .await;

    let mut q = DicomQuery::new(DicomLevel::Instance, Some(vec![T.into()]));
    q.study_uids = vec!["1.2.3".into()];
    let found = c.dicom_instances(&q).await.unwrap();
    let listed: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|l| {
            (
                l.row.sop_uid.as_str(),
                l.row.instance_number.as_str(),
                l.file_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("1.2.3.4.2", "2", "fd1"),
            ("1.2.3.4.3", "3", "fd2"),
            ("1.2.3.4.1", "11", "fd2")
        ],
        "each SOP Instance UID once, the latest version"
    );
    let mut by_sop = DicomQuery::new(DicomLevel::Instance, Some(vec![T.into()]));
    by_sop.sop_uids = vec!["1.2.3.4.1".into()];
    let one = c.dicom_instances(&by_sop).await.unwrap();
    assert_eq!(one.len(), 1, "retrieval finds the current version only");
    assert_eq!(one[0].file_id, "fd2");

    let study = c
        .dicom_groups(&DicomQuery::new(DicomLevel::Study, Some(vec![T.into()])))
        .await
        .unwrap();
    assert_eq!(study.len(), 1);
    assert_eq!(
        (study[0].series, study[0].instances),
        (1, 3),
        "counts count instances once"
    );
    let series = c
        .dicom_groups(&DicomQuery::new(DicomLevel::Series, Some(vec![T.into()])))
        .await
        .unwrap();
    assert_eq!(series[0].instances, 3);
    assert_eq!(c.study_instances(T, "1.2.3").await.unwrap().len(), 3);

    // Another hospital's instance with the same UID replaces nothing of this one's.
    accepted_other(c, "d3", 3).await;
    assert_eq!(c.dicom_instances(&q).await.unwrap().len(), 3);
    let mut theirs = DicomQuery::new(DicomLevel::Instance, Some(vec![OTHER.into()]));
    theirs.sop_uids = vec!["1.2.3.4.1".into()];
    assert_eq!(c.dicom_instances(&theirs).await.unwrap().len(), 1);
}

/// Indexes upload `id` for the other hospital, holding instance 1.2.3.4.1.
async fn accepted_other(c: &dyn CatalogStore, id: &str, n: u8) {
    c.create_upload(id, OTHER, "ct/x.dcm", "test", None)
        .await
        .unwrap();
    c.accept_upload(id, 300, 100, &sha(n)).await.unwrap();
    let row = c.claim_next_accepted().await.unwrap().unwrap();
    let mut f = file(id, "ct/x.dcm", &sha(n), 100);
    f.instances = vec![instance("1.2.3.4.1", "1")];
    c.index_upload(&row, &f, &[], &f.indexed_event(&row, &[]))
        .await
        .unwrap();
}

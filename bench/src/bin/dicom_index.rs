//! Fills a gateway data directory's catalog with COUNT indexed DICOM instances (one
//! file each: 50 instances per series, 2 series per study, studies spread over
//! patients, modalities and dates), through the catalog API the pipeline uses, so that
//! `bench/run-dicomweb.sh` can time QIDO-RS over a large index without pushing every
//! instance through ingest first. No object bytes are written: QIDO reads only the index.
//!
//! `dicom_index DATA_DIR TENANT COUNT`

use std::time::Instant;

use anyhow::{Context, Result};
use gateway::backends::catalog::{self, DicomRow, NewFile};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, tenant, count] = args.as_slice() else {
        anyhow::bail!("usage: dicom_index DATA_DIR TENANT COUNT");
    };
    let count: u64 = count.parse().context("COUNT")?;
    std::fs::create_dir_all(dir)?;
    let c = catalog::open("", std::path::Path::new(dir)).await?;
    let started = Instant::now();
    for n in 0..count {
        let (study, series) = (n / 100, n / 50);
        let id = format!("bench{n:09}");
        let sha = format!("{:064x}", n + 1);
        c.create_upload(
            &id,
            tenant,
            &format!("dicom/{study}/{n}.dcm"),
            "bench",
            None,
        )
        .await?;
        c.accept_upload(&id, 4096, 4000, &sha).await?;
        let row = c.claim_next_accepted().await?.context("claimed")?;
        let modality = ["CT", "MR", "US", "CR"][(study % 4) as usize];
        let instance = DicomRow {
            path: String::new(),
            patient_id: format!("P{:05}", study % 500),
            patient_name: format!("PATIENT^{:05}", study % 500),
            study_uid: format!("2.25.1{study:09}"),
            series_uid: format!("2.25.2{series:09}"),
            sop_uid: format!("2.25.3{n:09}"),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            modality: modality.into(),
            study_date: format!("2026{:02}{:02}", 1 + study % 12, 1 + study % 28),
            study_time: format!("{:02}0000", study % 24),
            accession_number: format!("A{study:07}"),
            institution_name: "Bench hospital".into(),
            number_of_frames: None,
            patient_birth_date: "19700101".into(),
            patient_sex: "O".into(),
            study_description: format!("{modality} study {study}"),
            study_id: format!("{study}"),
            referring_physician: "REF^DOCTOR".into(),
            series_description: format!("series {series}"),
            series_number: format!("{}", series % 2 + 1),
            instance_number: format!("{}", n % 50 + 1),
            attributes: r#"{"00280010":{"vr":"US","Value":[512]}}"#.into(),
        };
        let file = NewFile {
            id: format!("f{id}"),
            name: row.name.clone(),
            sha256: sha.clone(),
            size: 4000,
            media_type: "application/dicom".into(),
            object_key: format!("sha256/{sha}"),
            metadata: serde_json::json!({}),
            retain_secs: None,
            instances: vec![instance],
            request_id: None,
        };
        c.index_upload(&row, &file, &[], &file.indexed_event(&row, &[]))
            .await?;
    }
    c.close().await;
    eprintln!(
        "indexed {count} instances in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

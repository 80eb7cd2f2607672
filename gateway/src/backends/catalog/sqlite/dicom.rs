//! The DICOM index as DICOMweb reads it: QIDO-RS queries at study, series and
//! instance level (grouped and counted in SQL, so a page of studies does not drag
//! every instance through the process), and where an instance's bytes are (WADO-RS).
//! Only current files count: superseded and expired ones are not found; and only the
//! latest instance of a SOP Instance UID (an earlier one is `replaced_by` a later file).

use sqlx::{QueryBuilder, Row, Sqlite};

use super::SqliteCatalog;
use crate::backends::catalog::{
    AttributeMatch, AttributeValue, CatalogError, DicomGroup, DicomLevel, DicomLocation,
    DicomQuery, rows,
};

/// A DICOM wildcard pattern (`*`, `?`) as a GLOB pattern: the wildcards mean the same,
/// matching is case-sensitive as DICOM's is, and only `[` needs escaping. SQLite turns
/// a GLOB's literal prefix into an index range, which LIKE (case-insensitive) cannot.
fn glob(pattern: &str) -> String {
    pattern.replace('[', "[[]")
}

fn push_list(q: &mut QueryBuilder<Sqlite>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    q.push(format!(" AND {column} IN ("));
    let mut list = q.separated(", ");
    for v in values {
        list.push_bind(v.clone());
    }
    list.push_unseparated(")");
}

fn push_match(q: &mut QueryBuilder<Sqlite>, column: &str, value: &Option<String>) {
    let Some(v) = value else {
        return;
    };
    if v.contains(['*', '?']) {
        q.push(format!(" AND {column} GLOB ")).push_bind(glob(v));
    } else {
        q.push(format!(" AND {column} = ")).push_bind(v.clone());
    }
}

fn push_range(
    q: &mut QueryBuilder<Sqlite>,
    column: &str,
    from: &Option<String>,
    to: &Option<String>,
) {
    if let Some(f) = from {
        q.push(format!(" AND {column} >= ")).push_bind(f.clone());
    }
    if let Some(t) = to {
        q.push(format!(" AND {column} <= ")).push_bind(t.clone());
    }
}

/// One attribute of `d.attributes` (DICOM JSON) matched by any of its values; a person
/// name by its Alphabetic group.
fn push_attribute(q: &mut QueryBuilder<Sqlite>, m: &AttributeMatch) {
    q.push(" AND EXISTS (SELECT 1 FROM json_each(d.attributes, ")
        .push_bind(format!("$.\"{}\".Value", m.tag))
        .push(") j WHERE ");
    let value =
        "(CASE j.type WHEN 'object' THEN json_extract(j.value, '$.Alphabetic') ELSE j.value END)";
    match &m.value {
        AttributeValue::Number(n) => {
            q.push("j.value = ").push_bind(*n);
        }
        AttributeValue::Text(t) if t.contains(['*', '?']) => {
            q.push(format!("{value} GLOB ")).push_bind(glob(t));
        }
        AttributeValue::Text(t) => {
            q.push(format!("{value} = ")).push_bind(t.clone());
        }
        AttributeValue::Range(from, to) => {
            q.push("1");
            if let Some(f) = from {
                q.push(" AND j.value >= ").push_bind(f.clone());
            }
            if let Some(t) = to {
                q.push(" AND j.value <= ").push_bind(t.clone());
            }
        }
    }
    q.push(")");
}

fn push_filters(q: &mut QueryBuilder<Sqlite>, f: &DicomQuery) {
    q.push(
        " FROM dicom_instances d JOIN files f ON f.id = d.file_id \
             WHERE f.superseded_by IS NULL AND f.expired_at IS NULL AND d.replaced_by IS NULL",
    );
    if let Some(tenants) = &f.tenants {
        q.push(" AND d.tenant IN (");
        let mut list = q.separated(", ");
        for t in tenants {
            list.push_bind(t.clone());
        }
        list.push_unseparated(if tenants.is_empty() { "NULL)" } else { ")" });
    }
    push_list(q, "d.study_uid", &f.study_uids);
    push_list(q, "d.series_uid", &f.series_uids);
    push_list(q, "d.sop_uid", &f.sop_uids);
    push_match(q, "d.patient_name", &f.patient_name);
    push_match(q, "d.patient_id", &f.patient_id);
    push_match(q, "d.accession_number", &f.accession_number);
    push_match(q, "d.study_description", &f.study_description);
    push_match(q, "d.study_id", &f.study_id);
    push_match(q, "d.referring_physician", &f.referring_physician);
    push_match(q, "d.series_number", &f.series_number);
    push_match(q, "d.instance_number", &f.instance_number);
    push_match(q, "d.sop_class_uid", &f.sop_class_uid);
    push_range(q, "d.study_date", &f.study_date_from, &f.study_date_to);
    push_range(q, "d.study_time", &f.study_time_from, &f.study_time_to);
    if f.level != DicomLevel::Study {
        push_match(q, "d.modality", &f.modality);
    }
    for m in &f.attributes {
        push_attribute(q, m);
    }
}

impl SqliteCatalog {
    /// Studies or series matching `query`, with their counts and modalities.
    pub async fn dicom_groups(&self, query: &DicomQuery) -> Result<Vec<DicomGroup>, CatalogError> {
        let key = match query.level {
            DicomLevel::Study => "d.study_uid",
            _ => "d.series_uid",
        };
        // First the page of keys, then the counts of just those: the filters pick
        // studies (or series) through whichever index suits them and stop after the
        // page, and the counts cover every instance of a study, not only those that
        // matched (NumberOfStudyRelatedInstances is the study's).
        let mut page = QueryBuilder::new(format!("SELECT DISTINCT d.tenant, {key} AS k"));
        push_filters(&mut page, query);
        if query.level == DicomLevel::Study {
            push_match(&mut page, "d.modality", &query.modality);
        }
        page.push(" ORDER BY d.tenant, k LIMIT ")
            .push_bind(query.limit)
            .push(" OFFSET ")
            .push_bind(query.offset);
        let keys: Vec<(String, String)> = page
            .build()
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("tenant")?, r.try_get("k")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups = Vec::with_capacity(keys.len());
        let mut tenants: Vec<&str> = keys.iter().map(|(t, _)| t.as_str()).collect();
        tenants.dedup();
        for tenant in tenants {
            let mine: Vec<&String> = keys
                .iter()
                .filter(|(t, _)| t == tenant)
                .map(|(_, k)| k)
                .collect();
            // One min() makes SQLite take the bare columns from that (the first) row.
            let mut q = QueryBuilder::new(
                "SELECT d.*, MIN(d.rowid) AS first_row, COUNT(DISTINCT d.series_uid) AS n_series, \
                 COUNT(*) AS n_instances, GROUP_CONCAT(d.modality) AS mods \
                 FROM dicom_instances d JOIN files f ON f.id = d.file_id \
                 WHERE f.superseded_by IS NULL AND f.expired_at IS NULL AND d.replaced_by IS NULL AND d.tenant = ",
            );
            q.push_bind(tenant.to_string());
            q.push(format!(" AND {key} IN ("));
            let mut list = q.separated(", ");
            for k in mine {
                list.push_bind(k.clone());
            }
            q.push(format!(") GROUP BY {key} ORDER BY {key}"));
            let rows = q.build().fetch_all(&self.reads).await?;
            for r in &rows {
                groups.push(rows::group(r)?);
            }
        }
        Ok(groups)
    }

    /// Refreshes the planner's statistics (a sampled `ANALYZE`), so that searches use
    /// the selective index (a patient's, an accession's) instead of walking the study
    /// index: without statistics SQLite prefers the index that avoids a sort.
    pub async fn refresh_statistics(&self) -> Result<(), CatalogError> {
        self.write(|c| {
            c.execute_batch("ANALYZE")?;
            Ok(())
        })
        .await
    }

    /// Instances matching `query`, in study, series and instance-number order.
    pub async fn dicom_instances(
        &self,
        query: &DicomQuery,
    ) -> Result<Vec<DicomLocation>, CatalogError> {
        let mut q = QueryBuilder::new("SELECT d.*, f.object_key, f.media_type");
        push_filters(&mut q, query);
        q.push(
            " ORDER BY d.study_uid, d.series_uid, CAST(d.instance_number AS INTEGER), d.sop_uid LIMIT ",
        )
        .push_bind(query.limit)
        .push(" OFFSET ")
        .push_bind(query.offset);
        let rows = q.build().fetch_all(&self.reads).await?;
        rows.iter()
            .map(|r| {
                Ok(DicomLocation {
                    tenant: r.try_get("tenant")?,
                    file_id: r.try_get("file_id")?,
                    object_key: r.try_get("object_key")?,
                    media_type: r.try_get("media_type")?,
                    path: r.try_get("path")?,
                    row: rows::dicom(r)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(CatalogError::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dicom_wildcards_become_glob_patterns() {
        assert_eq!(super::glob("DOE^J*"), "DOE^J*");
        assert_eq!(super::glob("?AB[1]"), "?AB[[]1]");
    }
}

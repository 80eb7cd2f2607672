//! The DICOM index as DICOMweb reads it, on PostgreSQL: the same queries as
//! `sqlite/dicom.rs` (which says why they are shaped so), in PostgreSQL's terms:
//! wildcards as LIKE patterns (case-sensitive here, as DICOM matching is), the
//! instance attributes through `jsonb`, a group's first instance by its `row_id`.

use sqlx::{Postgres, QueryBuilder};

use super::PgCatalog;
use crate::backends::catalog::{
    AttributeMatch, AttributeValue, CatalogError, DicomGroup, DicomLevel, DicomLocation,
    DicomQuery, rows,
};

/// A DICOM wildcard pattern (`*`, `?`) as a LIKE pattern, LIKE's own wildcards and
/// escape character escaped.
fn like(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            '?' => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

fn push_list(q: &mut QueryBuilder<Postgres>, column: &str, values: &[String]) {
    if !values.is_empty() {
        q.push(format!(" AND {column} = ANY("))
            .push_bind(values.to_vec())
            .push(")");
    }
}

fn push_match(q: &mut QueryBuilder<Postgres>, column: &str, value: &Option<String>) {
    let Some(v) = value else {
        return;
    };
    if v.contains(['*', '?']) {
        q.push(format!(" AND {column} LIKE ")).push_bind(like(v));
    } else {
        q.push(format!(" AND {column} = ")).push_bind(v.clone());
    }
}

fn push_range(
    q: &mut QueryBuilder<Postgres>,
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
fn push_attribute(q: &mut QueryBuilder<Postgres>, m: &AttributeMatch) {
    q.push(" AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d.attributes::jsonb -> ")
        .push_bind(m.tag.clone())
        .push(" -> 'Value') = 'array' THEN d.attributes::jsonb -> ")
        .push_bind(m.tag.clone())
        .push(" -> 'Value' ELSE '[]'::jsonb END) j(v) WHERE ");
    let text = "(CASE jsonb_typeof(j.v) WHEN 'object' THEN j.v ->> 'Alphabetic' \
                ELSE j.v #>> '{}' END) COLLATE \"C\"";
    match &m.value {
        AttributeValue::Number(n) => {
            q.push("jsonb_typeof(j.v) = 'number' AND (j.v #>> '{}')::float8 = ")
                .push_bind(*n);
        }
        AttributeValue::Text(t) if t.contains(['*', '?']) => {
            q.push(format!("{text} LIKE ")).push_bind(like(t));
        }
        AttributeValue::Text(t) => {
            q.push(format!("{text} = ")).push_bind(t.clone());
        }
        AttributeValue::Range(from, to) => {
            q.push("TRUE");
            if let Some(f) = from {
                q.push(format!(" AND {text} >= ")).push_bind(f.clone());
            }
            if let Some(t) = to {
                q.push(format!(" AND {text} <= ")).push_bind(t.clone());
            }
        }
    }
    q.push(")");
}

const CURRENT: &str = " FROM dicom_instances d JOIN files f ON f.id = d.file_id \
     WHERE f.superseded_by IS NULL AND f.expired_at IS NULL AND d.replaced_by IS NULL";

fn push_filters(q: &mut QueryBuilder<Postgres>, f: &DicomQuery) {
    q.push(CURRENT);
    if let Some(tenants) = &f.tenants {
        q.push(" AND d.tenant = ANY(")
            .push_bind(tenants.clone())
            .push(")");
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

impl PgCatalog {
    /// Studies or series matching `query`, with their counts and modalities: first the
    /// page of keys, then the counts of just those (over every instance of a study).
    pub async fn dicom_groups(&self, query: &DicomQuery) -> Result<Vec<DicomGroup>, CatalogError> {
        let key = match query.level {
            DicomLevel::Study => "d.study_uid",
            _ => "d.series_uid",
        };
        let mut page = QueryBuilder::new(format!("SELECT DISTINCT d.tenant, {key} AS k"));
        push_filters(&mut page, query);
        if query.level == DicomLevel::Study {
            push_match(&mut page, "d.modality", &query.modality);
        }
        page.push(" ORDER BY d.tenant, k LIMIT ")
            .push_bind(query.limit)
            .push(" OFFSET ")
            .push_bind(query.offset);
        let keys: Vec<(String, String)> = page.build_query_as().fetch_all(&self.pool).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (tenants, ks): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
        let mut q = QueryBuilder::new(format!(
            "SELECT d.*, g.n_series, g.n_instances, g.mods FROM (SELECT d.tenant, {key} AS k, \
             MIN(d.row_id) AS first_row, COUNT(DISTINCT d.series_uid) AS n_series, \
             COUNT(*) AS n_instances, string_agg(d.modality, ',') AS mods{CURRENT} \
             AND (d.tenant, {key}) IN (SELECT * FROM unnest("
        ));
        q.push_bind(tenants)
            .push("::text[], ")
            .push_bind(ks)
            .push(format!(
                "::text[])) GROUP BY d.tenant, {key}) g JOIN dicom_instances d ON d.row_id = g.first_row \
                 ORDER BY g.tenant, g.k"
            ));
        let found = q.build().fetch_all(&self.pool).await?;
        Ok(found.iter().map(rows::group).collect::<Result<_, _>>()?)
    }

    /// Instances matching `query`, in study, series and instance-number order (a number
    /// that does not parse sorts as 0, as SQLite's CAST makes it).
    pub async fn dicom_instances(
        &self,
        query: &DicomQuery,
    ) -> Result<Vec<DicomLocation>, CatalogError> {
        let mut q = QueryBuilder::new("SELECT d.*, f.object_key, f.media_type");
        push_filters(&mut q, query);
        q.push(
            " ORDER BY d.study_uid, d.series_uid, \
             COALESCE(substring(d.instance_number from '^\\s*([+-]?[0-9]{1,18})')::bigint, 0), \
             d.sop_uid LIMIT ",
        )
        .push_bind(query.limit)
        .push(" OFFSET ")
        .push_bind(query.offset);
        let found = q.build().fetch_all(&self.pool).await?;
        found
            .iter()
            .map(|r| {
                use rows::Columns;
                Ok(DicomLocation {
                    tenant: r.text("tenant")?,
                    file_id: r.text("file_id")?,
                    object_key: r.text("object_key")?,
                    media_type: r.text("media_type")?,
                    path: r.text("path")?,
                    row: rows::dicom(r)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dicom_wildcards_become_like_patterns() {
        assert_eq!(super::like("DOE^J*"), "DOE^J%");
        assert_eq!(super::like("?A_B%1\\"), "_A\\_B\\%1\\\\");
    }
}

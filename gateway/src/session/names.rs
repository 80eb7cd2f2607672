//! Upload names: ASCII letters, digits and `._-` only (rule 5 notes: no Chinese
//! characters), one path component, no leading dot. Folder structure, where a protocol
//! has it (SFTP case folders), is kept as `/`-separated components each obeying this.

const MAX_LEN: usize = 255;

/// The folder pre-checks live under (rule 21): `/precheck/` over SFTP, tus
/// metadata `precheck`. A pre-check of `a.pdf` is the upload named `precheck/a.pdf`, so
/// it never resumes, supersedes or counts as the real `a.pdf`.
pub const PRECHECK: &str = "precheck/";

/// Whether `name` is a pre-check's.
pub fn is_precheck(name: &str) -> bool {
    name.starts_with(PRECHECK)
}

/// The name of the pre-check of `name`.
pub fn precheck(name: &str) -> String {
    format!("{PRECHECK}{name}")
}

/// A name a client chose for a real upload: [`check`], and not in the pre-check folder
/// (in any case), which only the pre-check paths of the front ends reach.
pub fn check_client(name: &str) -> Result<(), &'static str> {
    check(name)?;
    let first = name.split('/').next().unwrap_or_default();
    if first.eq_ignore_ascii_case(PRECHECK.trim_end_matches('/')) {
        return Err(
            "`precheck` is reserved for pre-checks (SFTP /precheck/, tus metadata `precheck`)",
        );
    }
    Ok(())
}

pub fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_LEN {
        return Err("it is longer than 255 characters");
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Err("it has an empty path component");
        }
        if part.starts_with('.') {
            return Err("a component starts with a dot");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, check_client, precheck};

    #[test]
    fn accepts_review_names_and_refuses_the_rest() {
        for ok in [
            "12A03123345.pdf.age",
            "13B19012345_1.pdf",
            "case-7/DICOMDIR",
            "3501200000_1030101_001.zip",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "病歷.pdf",
            "../x",
            "a//b",
            ".hidden",
            "a b.pdf",
            "x\\y",
            &"a".repeat(256),
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_precheck_folder_is_reserved_for_prechecks() {
        assert!(check_client("case-7/a.pdf").is_ok());
        assert!(check_client("prechecks/a.pdf").is_ok());
        for reserved in ["precheck/a.pdf", "PreCheck/a.pdf", "precheck"] {
            assert!(check_client(reserved).is_err(), "{reserved}");
        }
        assert!(check(&precheck("a.pdf")).is_ok());
    }
}

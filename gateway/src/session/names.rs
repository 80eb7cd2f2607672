//! Upload names: ASCII letters, digits and `._-` only (DOMAIN rule 5 notes: no Chinese
//! characters), one path component, no leading dot. Folder structure, where a protocol
//! has it (SFTP case folders), is kept as `/`-separated components each obeying this.

const MAX_LEN: usize = 255;

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
    use super::check;

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
}

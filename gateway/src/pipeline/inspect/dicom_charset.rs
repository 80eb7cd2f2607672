//! Text in ISO 2022 code extensions (PS3.5 §6.1.2.5), as Japanese and Korean modalities
//! write it: `SpecificCharacterSet` `\ISO 2022 IR 87` or `\ISO 2022 IR 149`, the value
//! switching character sets with escape sequences. dicom-rs decodes a value with the
//! first character set only, so such text reaches DICOM JSON with its escapes in place
//! (and 8-bit bytes read as Latin-1); here it is decoded to Unicode, with the codecs
//! dicom-rs itself uses (the `encoding` crate).

use encoding::{DecoderTrap, Encoding};

/// `ESC $ ) C`: KS X 1001 (ISO 2022 IR 149) designated to G1, bytes with the high bit.
const KS_X_1001: &str = "\u{1b}$)C";

/// The Unicode text of a value that holds ISO 2022 escapes, or `None` for any other
/// (left as dicom-rs decoded it). Each run from one escape to the next is decoded on
/// its own; the text before the first escape (the first character set's, for example
/// half-width katakana of ISO 2022 IR 13) is kept as dicom-rs decoded it.
pub fn decode(text: &str) -> Option<String> {
    let first = text.find('\u{1b}')?;
    let mut out = String::from(&text[..first]);
    let starts: Vec<usize> = text
        .char_indices()
        .filter(|(_, c)| *c == '\u{1b}')
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    for w in starts.windows(2) {
        let run = &text[w[0]..w[1]];
        // Back to the bytes as stored: dicom-rs read them one character per byte.
        let Some(bytes) = run
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            out.push_str(run);
            continue;
        };
        let decoded = match bytes.strip_prefix(KS_X_1001.as_bytes()) {
            Some(korean) => encoding::all::WINDOWS_949.decode(korean, DecoderTrap::Replace),
            None => encoding::all::ISO_2022_JP.decode(&bytes, DecoderTrap::Replace),
        };
        out.push_str(&decoded.unwrap_or_else(|_| run.to_string()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn japanese_and_korean_escapes_decode_to_unicode() {
        // PS3.5 Annex H / I examples, as dicom-rs hands them over.
        let jp = "Yamada^Tarou=\u{1b}$B;3ED\u{1b}(B^\u{1b}$BB@O:\u{1b}(B";
        assert_eq!(super::decode(jp).unwrap(), "Yamada^Tarou=山田^太郎");
        let ko: String = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7"
            .iter()
            .map(|&b| char::from(b))
            .collect();
        assert_eq!(super::decode(&ko).unwrap(), "Hong^Gildong=洪^吉洞");
        assert_eq!(super::decode("plain"), None);
        // The first set's text (IR 13 katakana, decoded by dicom-rs) stays as it is.
        let mixed = "ﾔﾏﾀﾞ^ﾀﾛｳ=\u{1b}$B;3ED\u{1b}(J^\u{1b}$BB@O:\u{1b}(J";
        assert_eq!(super::decode(mixed).unwrap(), "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎");
    }
}

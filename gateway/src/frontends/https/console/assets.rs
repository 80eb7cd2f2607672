//! The console's files, compiled into the binary from `gateway/console/` (no build
//! step, nothing to install beside the binary). The two libraries under `vendor/` are
//! npm packages bundled once by `scripts/console-vendor.sh`; see
//! `gateway/console/vendor/README.md` for their versions and licences.

pub struct Asset {
    pub mime: &'static str,
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $mime:literal),* $(,)?) => {
        const ASSETS: &[(&str, Asset)] = &[
            $(($path, Asset {
                mime: $mime,
                body: include_bytes!(concat!("../../../../console/", $path)),
            }),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "js/main.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/i18n.js" => "text/javascript; charset=utf-8",
    "js/hospital.js" => "text/javascript; charset=utf-8",
    "js/findings.js" => "text/javascript; charset=utf-8",
    "js/transfers.js" => "text/javascript; charset=utf-8",
    "js/sealed.js" => "text/javascript; charset=utf-8",
    "js/seal-worker.js" => "text/javascript; charset=utf-8",
    "js/reviewer.js" => "text/javascript; charset=utf-8",
    "js/ui.js" => "text/javascript; charset=utf-8",
    "vendor/tus.min.js" => "text/javascript; charset=utf-8",
    "vendor/age.js" => "text/javascript; charset=utf-8",
}

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_page_script_is_an_asset_and_none_is_inline() {
        let index = std::str::from_utf8(super::find("index.html").unwrap().body).unwrap();
        for tag in index.split("<script").skip(1) {
            let src = tag.split("src=\"").nth(1).and_then(|s| s.split('"').next());
            let src = src.expect("every script has a src (no inline script)");
            let path = src.trim_start_matches("/console/");
            assert!(super::find(path).is_some(), "{src} is served");
        }
        assert!(!index.contains(" style="), "no inline style");
        assert!(!index.contains(" on"), "no inline event handlers");
    }

    #[test]
    fn every_check_code_has_words_in_chinese() {
        let words = std::str::from_utf8(super::find("js/findings.js").unwrap().body).unwrap();
        let docs = include_str!("../../../../../docs/check-results.md");
        let mut missing = Vec::new();
        for line in docs.lines() {
            // A row names one code, or several (`a` / `b`, `a`, `b`); `family.*` rows
            // point to another page.
            let Some(cell) = line
                .strip_prefix("| `")
                .and_then(|l| l.split_once("` | "))
                .filter(|(_, rest)| {
                    ["info", "warning", "error"]
                        .iter()
                        .any(|s| rest.starts_with(s))
                })
                .map(|(cell, _)| cell)
            else {
                continue;
            };
            let codes = cell.split(['`', '/', ',', ' ']).filter(|c| c.contains('.'));
            for code in codes.filter(|c| !c.ends_with(".*")) {
                if !words.contains(&format!("\"{code}\":")) {
                    missing.push(code);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "codes without Chinese words in findings.js: {missing:?}"
        );
    }
}

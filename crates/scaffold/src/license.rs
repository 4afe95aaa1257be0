//! The licenses a new plugin can get, by SPDX id, with their full texts
//! shipped in this crate (`licenses/`), never fetched. The copyright line
//! of the licenses that have one is filled in.

/// A license a plugin can be created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct License {
    /// The SPDX identifier, e.g. `MIT`.
    pub id: &'static str,
    /// The full text; `<year>` and `<copyright holders>` stand for the
    /// copyright line's values where the license has one.
    template: &'static str,
}

/// Every license offered, the default first.
pub const LICENSES: [License; 4] = [
    License { id: "Apache-2.0", template: include_str!("../licenses/Apache-2.0.txt") },
    License { id: "MIT", template: include_str!("../licenses/MIT.txt") },
    License { id: "BSD-3-Clause", template: include_str!("../licenses/BSD-3-Clause.txt") },
    License { id: "MPL-2.0", template: include_str!("../licenses/MPL-2.0.txt") },
];

impl License {
    /// The license whose SPDX id is `id` (compared ignoring case, as SPDX
    /// ids are).
    pub fn find(id: &str) -> Option<License> {
        LICENSES.iter().copied().find(|l| l.id.eq_ignore_ascii_case(id))
    }

    /// The SPDX ids offered, for help and error messages.
    pub fn ids() -> Vec<&'static str> {
        LICENSES.iter().map(|l| l.id).collect()
    }

    /// The text of the `LICENSE` file, with the copyright line filled in.
    pub fn text(&self, year: i64, holders: &str) -> String {
        self.template.replace("<year>", &year.to_string()).replace("<copyright holders>", holders)
    }
}

impl Default for License {
    fn default() -> License {
        LICENSES[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_the_full_spdx_texts() {
        let mit = License::find("mit").unwrap().text(2026, "Ada");
        assert!(mit.starts_with("MIT License\n\nCopyright (c) 2026 Ada\n\nPermission is hereby granted"));
        assert!(mit.trim_end().ends_with("OTHER DEALINGS IN THE\nSOFTWARE."), "{mit}");
        let apache = License::find("Apache-2.0").unwrap().text(2026, "Ada");
        assert!(apache.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
        assert!(apache.contains("9. Accepting Warranty or Additional Liability."));
        assert!(apache.contains("APPENDIX: How to apply the Apache License to your work."));
        let bsd = License::find("BSD-3-Clause").unwrap().text(2026, "Ada");
        assert!(bsd.starts_with("Copyright (c) 2026, Ada\n"));
        assert!(bsd.contains("3. Neither the name of the copyright holder nor the names of its"));
        let mpl = License::find("MPL-2.0").unwrap().text(2026, "Ada");
        assert!(mpl.contains("Exhibit B - \"Incompatible With Secondary Licenses\" Notice"));
        for license in LICENSES {
            let text = license.text(2026, "Ada");
            assert!(!text.contains("<year>") && !text.contains("<copyright holders>"), "{}", license.id);
        }
    }

    #[test]
    fn unknown_ids_are_none() {
        assert_eq!(License::find("GPL-9.0"), None);
        assert_eq!(License::default().id, "Apache-2.0");
    }
}

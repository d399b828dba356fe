//! Which characters a text field may hold (SPEC §8.1), as fixed code-point lists so that
//! every implementation refuses the same messages whatever its Unicode tables.
//!
//! Refused everywhere: the format characters (general category Cf: bidi embeddings,
//! overrides and isolates, the marks LRM/RLM/ALM, zero-width space, joiners, word joiner,
//! the byte-order mark, invisible operators, tag characters…) and the line and paragraph
//! separators U+2028/U+2029. They can reverse how a subject reads or hide it entirely.
//! Controls (Cc) are handled by the field's shape: a *text* field allows line feed and tab.

/// Category Cf of Unicode 16.0, as inclusive ranges.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Line separator and paragraph separator (categories Zl, Zp).
const SEPARATORS: &[(u32, u32)] = &[(0x2028, 0x2029)];

/// Characters that are allowed but show nothing on their own: a required field made only
/// of these and white space is blank (fillers, the combining grapheme joiner, variation
/// selectors, the blank braille pattern).
const INVISIBLE: &[(u32, u32)] = &[
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180D),
    (0x180F, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
];

fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let code = u32::from(c);
    ranges
        .iter()
        .any(|&(first, last)| (first..=last).contains(&code))
}

/// Whether `c` is refused in every text field: a format character or a line/paragraph
/// separator.
pub fn is_refused_everywhere(c: char) -> bool {
    in_ranges(FORMAT, c) || in_ranges(SEPARATORS, c)
}

/// The first character of `text` refused in every text field, if any.
pub fn first_refused(text: &str) -> Option<char> {
    text.chars().find(|&c| is_refused_everywhere(c))
}

/// Whether `text` shows nothing: only white space (Unicode `White_Space`) and invisible
/// characters, or empty.
pub fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || in_ranges(INVISIBLE, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_class_is_refused() {
        let refused = [
            ('\u{202A}', "LRE"),
            ('\u{202B}', "RLE"),
            ('\u{202C}', "PDF"),
            ('\u{202D}', "LRO"),
            ('\u{202E}', "RLO"),
            ('\u{2066}', "LRI"),
            ('\u{2067}', "RLI"),
            ('\u{2068}', "FSI"),
            ('\u{2069}', "PDI"),
            ('\u{200E}', "LRM"),
            ('\u{200F}', "RLM"),
            ('\u{061C}', "ALM"),
            ('\u{200B}', "zero-width space"),
            ('\u{200C}', "zero-width non-joiner"),
            ('\u{200D}', "zero-width joiner"),
            ('\u{2060}', "word joiner"),
            ('\u{FEFF}', "byte-order mark"),
            ('\u{00AD}', "soft hyphen"),
            ('\u{E0041}', "tag A"),
            ('\u{2028}', "line separator"),
            ('\u{2029}', "paragraph separator"),
        ];
        for (c, name) in refused {
            let text = format!("a.example{c}");
            assert_eq!(first_refused(&text), Some(c), "{name}");
        }
    }

    #[test]
    fn ordinary_text_of_many_scripts_passes() {
        for text in [
            "Beschlagnahme bei a.example — § 100a StPO",
            "مصادرة الخادم",
            "תפיסת שרת",
            "Обыск в дата-центре",
            "サーバー押収",
            "🔥 seized 🖥",
            "tab\tand line\nfeed are the shape's business",
        ] {
            assert_eq!(first_refused(text), None, "{text}");
            assert!(!is_blank(text), "{text}");
        }
    }

    #[test]
    fn white_space_and_fillers_alone_are_blank() {
        for text in [
            "",
            " \t",
            "\u{3000}",
            "\u{3164}",
            "\u{2800} \u{FE0F}",
            "\u{115F}",
        ] {
            assert!(is_blank(text), "{text:?}");
        }
        assert!(!is_blank("\u{3164}x"));
    }
}

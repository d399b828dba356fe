//! The rules every text, list and date field of a body is checked by (SPEC §8.1), one
//! function per rule, shared by the kinds in [`crate::payload`].

use crate::payload::{
    FieldError, FieldProblem, MAX_KIND_BYTES, MAX_LIST_ITEMS, MAX_SHORT_TEXT_BYTES,
};

/// Whether a kind name has the allowed shape.
pub fn is_valid_kind_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_KIND_BYTES
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"./-".contains(&b))
}

/// Whether `code` is two ASCII capital letters (ISO 3166-1 alpha-2 shape).
pub fn is_jurisdiction_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[derive(Clone, Copy)]
pub(crate) enum TextShape {
    /// No control characters at all.
    OneLine,
    /// Line feeds and tabs allowed, no other control characters.
    MultiLine,
}

pub(crate) fn problem(field: &'static str, rule: &'static str) -> FieldError {
    FieldError {
        field,
        problem: FieldProblem::Rule(rule),
    }
}

pub(crate) fn too_many(field: &'static str, given: usize, max: usize) -> Result<(), FieldError> {
    if given > max {
        return Err(FieldError {
            field,
            problem: FieldProblem::TooManyItems { max, given },
        });
    }
    Ok(())
}

pub(crate) fn text(
    field: &'static str,
    value: &str,
    max: usize,
    shape: TextShape,
) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError {
            field,
            problem: FieldProblem::TooLong {
                max,
                given: value.len(),
            },
        });
    }
    let allowed = |c: char| match shape {
        TextShape::OneLine => !c.is_control(),
        TextShape::MultiLine => !c.is_control() || c == '\n' || c == '\t',
    };
    if !value.chars().all(allowed) {
        return Err(problem(field, "contains control characters"));
    }
    if let Some(refused) = crate::text::first_refused(value) {
        return Err(FieldError {
            field,
            problem: FieldProblem::Invisible(refused),
        });
    }
    Ok(())
}

pub(crate) fn required(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if crate::text::is_blank(value) {
        return Err(problem(field, "must not be empty"));
    }
    text(field, value, max, TextShape::OneLine)
}

pub(crate) fn optional(
    field: &'static str,
    value: Option<&str>,
    max: usize,
    shape: TextShape,
) -> Result<(), FieldError> {
    value.map_or(Ok(()), |value| text(field, value, max, shape))
}

pub(crate) fn optional_line(field: &'static str, value: Option<&str>) -> Result<(), FieldError> {
    optional(field, value, MAX_SHORT_TEXT_BYTES, TextShape::OneLine)
}

pub(crate) fn list(field: &'static str, items: &[String]) -> Result<(), FieldError> {
    too_many(field, items.len(), MAX_LIST_ITEMS)?;
    items.iter().try_for_each(|item| {
        required(field, item, MAX_SHORT_TEXT_BYTES).map_err(|mut error| {
            if let FieldProblem::TooLong { max, given } = error.problem {
                error.problem = FieldProblem::ItemTooLong { max, given };
            }
            error
        })
    })
}

pub(crate) fn jurisdictions(field: &'static str, codes: &[String]) -> Result<(), FieldError> {
    too_many(field, codes.len(), MAX_LIST_ITEMS)?;
    if !codes.iter().all(|code| is_jurisdiction_code(code)) {
        return Err(problem(
            field,
            "must hold ISO 3166-1 alpha-2 codes such as FR",
        ));
    }
    Ok(())
}

/// Whether `date` is a real calendar date written `YYYY-MM-DD` (valid month, day and leap
/// year). Authors check it before signing; receivers check only the shape (SPEC §8.1).
pub fn is_calendar_date(date: &str) -> bool {
    if !is_iso_date(date) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| date[range].parse::<u32>().ok();
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

pub(crate) fn is_iso_date(date: &str) -> bool {
    let bytes = date.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
}

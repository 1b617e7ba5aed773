//! CSV fields, written one way for every export (the audit log, the security report, the CLI's
//! user list): RFC 4180 quoting, and no field a spreadsheet would run as a formula.

/// Characters that make a spreadsheet read a field as a formula when they lead it.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Appends `value` as one CSV field: a leading `=`, `+`, `-`, `@`, tab or carriage return is
/// prefixed with `'` (so the cell shows the text instead of running it), and a field holding a
/// comma, quote or line break is quoted with its quotes doubled.
pub fn push_field(out: &mut String, value: &str) {
    let guarded;
    let value = if value.starts_with(FORMULA_START) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// `value` as one CSV field; see [`push_field`].
pub fn field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_field(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn plain_text_is_left_as_it_is() {
        assert_eq!(field("alice"), "alice");
        assert_eq!(field(""), "");
        assert_eq!(field("a'b c"), "a'b c");
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn a_leading_formula_character_is_defused() {
        for start in ["=", "+", "-", "@", "\t"] {
            let value = format!("{start}HYPERLINK(\"x\")");
            let got = field(&value);
            assert!(
                got.starts_with("\"'") || got.starts_with('\''),
                "{value:?} became {got:?}"
            );
        }
        assert_eq!(field("=1+1"), "'=1+1");
        assert_eq!(field("-2"), "'-2");
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(field("\rx"), "\"'\rx\"");
        assert_eq!(field("=a,b"), "\"'=a,b\"");
        assert_eq!(field("a=b"), "a=b", "only a leading character counts");
    }
}

//! Text an agent chose, rendered so an approver sees what it is: characters that change how text around them
//! reads without being seen themselves (bidirectional overrides and isolates, zero-width characters, other
//! format characters) are shown as a marked `U+XXXX`, never applied. A resource `invoice-\u{202e}fdp.exe` must
//! not read as `invoice-exe.pdf` on the page a human approves from. The rest is escaped by maud as usual.

use maud::{Markup, Render, html};

/// Renders its text with every invisible or direction-changing character made visible.
pub(crate) struct Visible<'a>(pub(crate) &'a str);

/// Whether `c` changes the text's direction, or is invisible: Unicode's format characters (category Cf, which
/// holds the bidirectional controls and the zero-width ones), the other controls, and the line and paragraph
/// separators.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
        || (c.is_control() && !matches!(c, '\n' | '\t'))
}

impl Render for Visible<'_> {
    fn render(&self) -> Markup {
        if !self.0.chars().any(hidden) {
            return html! { (self.0) };
        }
        html! {
            @for part in self.0.split_inclusive(hidden) {
                @let (text, marked) = match part.chars().last() {
                    Some(c) if hidden(c) => (&part[..part.len() - c.len_utf8()], Some(c)),
                    _ => (part, None),
                };
                (text)
                @if let Some(c) = marked {
                    mark.hidden-char title="an invisible character" { (format!("U+{:04X}", u32::from(c))) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_overrides_and_invisible_characters_are_shown_not_applied() {
        let shown = Visible("invoice-\u{202e}fdp.exe").render().into_string();
        assert_eq!(
            shown,
            "invoice-<mark class=\"hidden-char\" title=\"an invisible character\">U+202E</mark>fdp.exe"
        );
        for c in [
            '\u{2066}', '\u{2069}', '\u{200b}', '\u{200f}', '\u{feff}', '\u{061c}',
        ] {
            let shown = Visible(&format!("a{c}b")).render().into_string();
            assert!(!shown.contains(c), "{c:?} reached the page: {shown}");
            assert!(
                shown.contains(&format!("U+{:04X}", u32::from(c))),
                "{shown}"
            );
        }
        assert_eq!(
            Visible("<plain> & text").render().into_string(),
            "&lt;plain&gt; &amp; text"
        );
    }
}

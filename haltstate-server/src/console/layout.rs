//! What every console page shares: the frame (navigation with the count of approvals waiting, who is signed in),
//! the style (one column on a phone, tables as cards), refusal pages, and URL encoding for links.

use maud::{DOCTYPE, Markup, html};

use haltstate_types::Role;

use super::session::Session;

/// One style sheet, inline (the CSP allows inline style, no other origin). Colours meet WCAG AA contrast on their
/// backgrounds; below 720 px every table becomes one card per row, with each cell's label (`data-label`) before it.
const STYLE: &str = "*{box-sizing:border-box}body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fff}\
a{color:#0645ad}header{background:#1d1d1f;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.4em 1.1em;align-items:center}\
header a{color:#fff}header nav{display:flex;flex-wrap:wrap;gap:.4em 1em}.who{margin-left:auto;font-size:.9em}\
.count{display:inline-block;min-width:1.5em;padding:0 .4em;border-radius:1em;background:#ffd33d;color:#1d1d1f;font-weight:600;text-align:center}\
main{padding:1em;max-width:80em}h1{font-size:1.5em;margin:.3em 0 .6em}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #d0d7de;padding:.45em;text-align:left;vertical-align:top}\
pre{margin:0;white-space:pre-wrap;font-size:14px}.notice{background:#fff4ce;padding:.6em;margin:0 0 1em;border-left:4px solid #9a6700}\
.error{background:#ffebe9;padding:.6em;margin:0 0 1em;border-left:4px solid #cf222e}form.inline{display:inline}\
button{cursor:pointer;font:inherit;padding:.35em .9em;border-radius:6px;border:1px solid #8c959f;background:#f6f8fa;color:#1d1d1f;min-height:2.4em}\
button.approve{background:#1a7f37;border-color:#116329;color:#fff}button.reject{background:#cf222e;border-color:#a40e26;color:#fff}\
button.danger{background:#cf222e;border-color:#a40e26;color:#fff}button:focus-visible,a:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid #0969da;outline-offset:2px}\
input{font:inherit;padding:.3em;border:1px solid #8c959f;border-radius:4px;max-width:100%}code{word-break:break-all}\
mark.hidden-char{background:#fd8;font:smaller monospace}.muted{color:#57606a}.params{margin:0;padding:0;list-style:none;font-size:.92em}\
.params li{word-break:break-word}details.reject summary{cursor:pointer;color:#a40e26;margin-top:.4em}\
.decide{display:flex;flex-wrap:wrap;gap:.4em;align-items:center}.decide label{display:flex;flex-direction:column;font-size:.9em}\
.scroll{overflow-x:auto}.cols{display:flex;flex-wrap:wrap;gap:1em 2em}.cols>section{flex:1 1 20em;min-width:0}\
svg{max-width:100%;height:auto}.legend span{display:inline-block;margin-right:1em}.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}\
.skip{position:absolute;left:-999px}.skip:focus{left:1em;top:1em;background:#fff;color:#0645ad;padding:.3em;z-index:2}\
@media (max-width:720px){main{padding:.7em}table thead{display:none}table tr{display:block;border:1px solid #d0d7de;border-radius:8px;margin:0 0 1em;padding:.4em}\
table td,table th{display:block;border:0;padding:.25em .3em}td[data-label]::before{content:attr(data-label);display:block;font-size:.8em;color:#57606a}\
.who{margin-left:0;width:100%}input{width:100%}}";

/// A page: the navigation (with the count of approvals waiting) when signed in, then `body`.
pub(crate) fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · HaltState" }
                style { (STYLE) }
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header {
                    strong { "HaltState" }
                    @if let Some(session) = session {
                        nav aria-label="Console" {
                            @if session.principal.role == Role::Admin {
                                a href="/ui/keys" { "Keys" }
                            } @else {
                                a href="/ui/inbox" {
                                    "Inbox"
                                    @if let Some(count) = session.pending {
                                        " " span.count id="pending-count" aria-label=(format!("{count} waiting")) { (count) }
                                    }
                                }
                                a href="/ui/overview" { "Overview" }
                                a href="/ui/history" { "History" }
                                a href="/ui/kill" { "Kill switch" }
                                a href="/ui/keys" { "Keys" }
                                a href="/ui/webhooks" { "Webhooks" }
                                a href="/ui/shadow" { "Shadow" }
                            }
                        }
                        span.who { (session.principal.name) " · " (session.principal.tenant) " · " (session.principal.role.as_str()) }
                        form.inline method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
                @if session.is_some() { script src="/ui/console.js" {} }
            }
        }
    }
}

/// A query parameter's value, percent-encoded (maud escapes HTML, not URLs).
pub(crate) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A refusal page (bad CSRF token, unknown approval) with its status.
pub(crate) fn refused(session: Option<&Session>, title: &str, why: &str) -> Markup {
    layout(
        title,
        session,
        html! {
            h1 { (title) }
            p.error role="alert" { (why) }
            p { a href="/ui/inbox" { "Back to the inbox" } }
        },
    )
}

//! Form helpers: messages next to fields, a banner for the rest, and the page-level handling of
//! errors (sign-in redirect, permission notice).

use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_location};

use crate::{api::AppError, ui::pages::not_found::ErrorPanel};

/// The messages for `field` in a validation error.
pub fn messages_for(error: &Option<AppError>, field: &str) -> Vec<String> {
    match error {
        Some(e) => e.fields.get(field).cloned().unwrap_or_default(),
        None => Vec::new(),
    }
}

/// The messages of a field, shown under its input (`id` is what `aria-describedby` points at).
#[component]
pub fn FieldErrors(
    #[prop(into)] error: Signal<Option<AppError>>,
    field: &'static str,
    id: &'static str,
) -> impl IntoView {
    view! {
        <div class="field-errors" id=id role="alert" aria-live="polite">
            {move || {
                messages_for(&error.get(), field)
                    .into_iter()
                    .map(|m| view! { <p class="field-error">{format!("{} {m}", label_of(field))}</p> })
                    .collect_view()
            }}
        </div>
    }
}

fn label_of(field: &str) -> String {
    let mut s = field.replace('_', " ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

/// A banner for errors that belong to no single field, and for validation errors on fields the
/// form does not show.
#[component]
pub fn FormError(
    #[prop(into)] error: Signal<Option<AppError>>,
    #[prop(optional)] fields: &'static [&'static str],
) -> impl IntoView {
    move || {
        let message = match error.get() {
            None => return None,
            Some(e) if !e.fields.is_empty() => {
                let others: Vec<String> = e
                    .fields
                    .iter()
                    .filter(|(f, _)| !fields.contains(&f.as_str()))
                    .flat_map(|(f, msgs)| msgs.iter().map(move |m| format!("{} {m}", label_of(f))))
                    .collect();
                if others.is_empty() {
                    "Please correct the highlighted fields.".to_string()
                } else {
                    others.join("; ")
                }
            }
            Some(other) => other.to_string(),
        };
        Some(view! { <div class="alert alert-error" role="alert">{message}</div> })
    }
}

/// What a page shows when loading its data failed: a trip to the sign-in page when the session is
/// missing, otherwise an explanation.
pub fn page_error(error: AppError) -> AnyView {
    if error.is_enrolment_required() {
        view! { <Redirect path="/account/mfa" /> }.into_any()
    } else if error.is_unauthorized() {
        view! { <SignInRedirect /> }.into_any()
    } else if error.is_forbidden() {
        view! { <ErrorPanel message="You do not have permission to see this page. Ask an administrator for a role that grants it.".to_string() /> }.into_any()
    } else {
        view! { <ErrorPanel message=error.to_string() /> }.into_any()
    }
}

#[component]
fn SignInRedirect() -> impl IntoView {
    let location = use_location();
    let next = location.pathname.get_untracked();
    view! { <Redirect path=format!("/login?next={}", encode(&next)) /> }
}

/// Percent-encodes a path for a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

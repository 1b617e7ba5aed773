//! The account page's "Delete my account" section (privacy.yml `right_to_be_forgotten`): ask for
//! the erasure of your account and everything about you, with your password again; see when it
//! runs and cancel it until then.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    api::erasure::{CancelErasure, ErasureRow, RequestErasure, my_erasure},
    ui::forms::{FieldErrors, FormError, page_error},
};

#[component]
pub fn ErasureSection() -> impl IntoView {
    let query = use_query_map();
    let request = ServerAction::<RequestErasure>::new();
    let cancel = ServerAction::<CancelErasure>::new();
    let mine = Resource::new(
        move || (query.get(), request.version().get(), cancel.version().get()),
        |_| my_erasure(),
    );
    let error = Signal::derive(move || {
        request
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| cancel.value().get().and_then(Result::err))
    });
    view! {
        <section class="card card-danger" id="erasure" aria-labelledby="erasure-title">
            <h2 id="erasure-title">"Delete my account"</h2>
            <p class="muted">"Erase your account and the personal data this platform holds about you: your sessions and tokens, your modules and their runs, your shares and exports. The audit trail keeps what happened, under a pseudonym, without your name, email, addresses or browser."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match mine.await {
                        Ok(Some(row)) if row.cancellable() || row.status == "running" => status_view(row, cancel, error).into_any(),
                        Ok(other) => view! {
                            {other.filter(|r| r.status == "rejected").map(|r| view! {
                                <div class="alert alert-error" role="status">
                                    "An administrator declined your last request"
                                    {r.note.map(|n| format!(": {n}"))}
                                </div>
                            })}
                            {request_form(request, error)}
                        }.into_any(),
                        Err(e) => page_error(e),
                    }
                })}
            </Transition>
        </section>
    }
}

fn status_view(
    row: ErasureRow,
    cancel: ServerAction<CancelErasure>,
    error: Signal<Option<crate::api::AppError>>,
) -> impl IntoView {
    let text = match (row.status.as_str(), &row.run_at) {
        ("scheduled", Some(at)) => format!(
            "Your account and data will be erased on {at}. Until then you can still sign in and cancel."
        ),
        ("requested", _) => {
            "Your request waits for an administrator's decision. You can cancel it until then."
                .to_string()
        }
        _ => "Your account and data are being erased.".to_string(),
    };
    let cancellable = row.cancellable();
    view! {
        <div class="alert alert-info" role="status" data-testid="erasure-status">{text}</div>
        <FormError error fields=&[] />
        {cancellable.then(|| view! {
            <ActionForm action=cancel attr:class="form">
                <input type="hidden" name="id" value=row.id.clone() />
                <button class="button" type="submit">"Cancel the erasure"</button>
            </ActionForm>
        })}
    }
}

fn request_form(
    request: ServerAction<RequestErasure>,
    error: Signal<Option<crate::api::AppError>>,
) -> impl IntoView {
    view! {
        <FormError error fields=&["password", "user"] />
        <ActionForm action=request attr:class="form" attr:data-testid="erasure-form">
            <div class="field">
                <label for="erasure-password">"Your password, to confirm"</label>
                <input id="erasure-password" name="password" type="password" autocomplete="current-password" required aria-describedby="erasure-password-errors" />
                <FieldErrors error field="password" id="erasure-password-errors" />
            </div>
            <button class="button button-danger" type="submit">"Delete my account and data"</button>
        </ActionForm>
    }
}

//! The settings forms of the Compliance page: privacy.yml and soc2.yml as in force, each value
//! beside the file's own, editable with `system:config` (read-only otherwise). A save names the
//! stamp the page was rendered with, so a save from a page older than the file on disk or another
//! administrator's save is refused with who or what changed it.

use leptos::prelude::*;

use crate::api::{
    AppError,
    compliance::{SaveSettings, SettingEdit, SettingsEditView, SettingsFileEdit},
};

/// The messages for one setting (keyed by its dotted key) in a save's error.
fn messages(error: &Option<AppError>, key: &str) -> Vec<String> {
    error
        .as_ref()
        .and_then(|e| e.fields.get(key).cloned())
        .unwrap_or_default()
}

/// What belongs to no single field: a stale page, a file that does not load, a forbidden save.
/// Only errors about `file` (without JavaScript every form of the page receives the error).
fn banner(error: Option<AppError>, file: &str, keys: &[String]) -> Option<String> {
    let e = error?;
    let prefix = format!("{}.", file.trim_end_matches(".yml"));
    let about_file =
        e.fields.keys().any(|k| k.starts_with(&prefix)) || e.to_string().contains(file);
    if !about_file {
        return None;
    }
    if e.fields.is_empty() {
        return Some(e.to_string());
    }
    let others: Vec<String> = e
        .fields
        .iter()
        .filter(|(k, _)| !keys.contains(k))
        .flat_map(|(_, m)| m.clone())
        .collect();
    Some(if others.is_empty() {
        "Nothing was saved: please correct the highlighted settings.".to_string()
    } else {
        others.join("; ")
    })
}

pub fn settings_section(
    v: SettingsEditView,
    saves: [ServerAction<SaveSettings>; 2],
    reset: ServerAction<SaveSettings>,
) -> impl IntoView {
    let can_edit = v.can_edit;
    view! {
        <section class="card" id="settings" aria-labelledby="settings-edit-title" data-testid="settings">
            <h2 id="settings-edit-title">"Settings"</h2>
            <p class="muted">
                "privacy.yml and soc2.yml as the platform applies them now. A change saved here applies at once on every replica, without a restart; it is kept in the database over the file (the file itself is not rewritten) and recorded as config_change with the values before and after."
            </p>
            {(!can_edit).then(|| view! {
                <p class="alert" role="note" data-testid="settings-read-only">"Read-only: changing settings needs the system:config permission (administrators have it)."</p>
            })}
            <div class="grid">
                {v.files.into_iter().zip(saves).map(|(f, save)| file_form(f, save, reset, can_edit)).collect_view()}
            </div>
        </section>
    }
}

fn file_form(
    f: SettingsFileEdit,
    save: ServerAction<SaveSettings>,
    reset: ServerAction<SaveSettings>,
    can_edit: bool,
) -> impl IntoView {
    let anchor = format!("settings-{}", f.file.trim_end_matches(".yml"));
    let title_id = format!("{anchor}-title");
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    // "Use the file's values" of this file, or of the other: `banner` keeps what is about this one.
    let reset_error = Signal::derive(move || reset.value().get().and_then(Result::err));
    let name = f.file.clone();
    let keys: Vec<String> = f.settings.iter().map(|s| s.key.clone()).collect();
    let any_override = f.settings.iter().any(|s| s.overridden);
    let testid = format!("settings-{}", f.file);
    let (file, stamp) = (f.file.clone(), f.stamp.clone());
    let (reset_file, reset_stamp) = (f.file.clone(), f.stamp.clone());
    view! {
        <div class="settings-file" id=anchor.clone() data-testid=testid>
            <h3 id=title_id.clone()><code>{f.file.clone()}</code></h3>
            {f.updated.clone().map(|u| view! { <p class="muted">{format!("Changed here by {u}.")}</p> })}
            {f.problem.clone().map(|p| view! {
                <p class="alert alert-error" role="alert" data-testid="settings-problem">{format!("The file on disk does not load, so the previous values stay in force: {p}")}</p>
            })}
            {move || banner(error.get().or_else(|| reset_error.get()), &name, &keys).map(|m| view! { <div class="alert alert-error" role="alert" data-testid="settings-error">{m}</div> })}
            <ActionForm action=save attr:class="form" attr:aria-labelledby=title_id>
                <input type="hidden" name="file" value=file />
                <input type="hidden" name="stamp" value=stamp />
                {f.settings.into_iter().map(|s| setting_field(s, error, can_edit)).collect_view()}
                {can_edit.then(|| view! {
                    <button class="button" type="submit" data-testid="settings-save">{format!("Save {}", f.file)}</button>
                })}
            </ActionForm>
            {(can_edit && any_override).then(|| view! {
                <ActionForm action=reset attr:class="form-inline">
                    <input type="hidden" name="file" value=reset_file />
                    <input type="hidden" name="stamp" value=reset_stamp />
                    <input type="hidden" name="reset" value="file" />
                    <button class="button button-small" type="submit" data-testid="settings-reset">"Use the file's values"</button>
                </ActionForm>
            })}
        </div>
    }
}

fn setting_field(s: SettingEdit, error: Signal<Option<AppError>>, can_edit: bool) -> impl IntoView {
    let id = format!("setting-{}", s.key.replace('.', "-"));
    let hint_id = format!("{id}-hint");
    let errors_id = format!("{id}-errors");
    let described = format!("{hint_id} {errors_id}");
    let name = format!("values[{}]", s.key);
    let key = s.key.clone();
    let input = match s.kind.as_str() {
        "bool" => {
            let on = s.value == "true";
            view! {
                <select id=id.clone() name=name disabled=!can_edit aria-describedby=described>
                    // The property too: after a save the page re-renders into the same elements.
                    <option value="true" selected=on prop:selected=on>"On"</option>
                    <option value="false" selected=!on prop:selected=!on>"Off"</option>
                </select>
            }
            .into_any()
        }
        _ => view! {
            <input id=id.clone() name=name type="text" value=s.value.clone() prop:value=s.value.clone() disabled=!can_edit
                maxlength="1024" autocomplete="off" aria-describedby=described />
        }
        .into_any(),
    };
    let from_file = if s.overridden {
        let file_value = if s.file_value.is_empty() {
            "(unset)".to_string()
        } else {
            s.file_value.clone()
        };
        Some(
            view! { " " <span class="pill pill-warn" data-testid="overridden">{format!("changed here; file: {file_value}")}</span> },
        )
    } else {
        None
    };
    view! {
        <div class="field" data-setting=s.key.clone()>
            <label for=id>{s.label.clone()}</label>
            {input}
            <p class="hint" id=hint_id>{s.help.clone()}" "<code>{s.key.clone()}</code>{from_file}</p>
            <div class="field-errors" id=errors_id role="alert" aria-live="polite">
                {move || messages(&error.get(), &key).into_iter().map(|m| view! { <p class="field-error">{m}</p> }).collect_view()}
            </div>
        </div>
    }
}

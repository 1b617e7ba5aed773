//! Server functions of the Modules dashboard (upload itself is a plain multipart endpoint,
//! `POST /modules/upload`, so the browser can report progress).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// One finding of the static analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingView {
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub function: Option<u32>,
    pub function_name: Option<String>,
    pub offset: Option<usize>,
}

/// A module as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub kind: String,
    pub status: String,
    pub risk_score: u8,
    pub suspicious: bool,
    pub findings: Vec<FindingView>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub capability_group: Option<String>,
    pub review_note: Option<String>,
    /// `(kind, name)`: kind is `user` or `role`.
    pub shares: Vec<(String, String)>,
    pub created_at: String,
    pub last_run_at: Option<String>,
}

/// One page of the module list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModulesPage {
    pub modules: Vec<ModuleView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// What the module page needs beyond the module: what the viewer may do there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDetail {
    pub module: ModuleView,
    pub can_review: bool,
    pub can_delete: bool,
    pub can_share: bool,
    pub can_execute: bool,
    /// sandbox.yml `module_capabilities` groups.
    pub capability_groups: Vec<String>,
}

pub const MODULES_PER_PAGE: u64 = 25;

#[cfg(feature = "ssr")]
impl From<platform::modules::ModuleInfo> for ModuleView {
    fn from(m: platform::modules::ModuleInfo) -> Self {
        use platform::modules::Grantee;
        fn to_value(v: &impl Serialize) -> String {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }
        Self {
            id: m.id,
            name: m.name,
            description: m.description,
            owner: m.owner,
            size_bytes: m.size_bytes,
            sha256: m.sha256,
            kind: m.kind,
            status: m.status.as_str().to_string(),
            risk_score: m.analysis.risk_score,
            suspicious: m.analysis.suspicious,
            findings: m
                .analysis
                .findings
                .iter()
                .map(|f| FindingView {
                    rule: to_value(&f.rule),
                    severity: to_value(&f.severity),
                    message: f.message.clone(),
                    function: f.location.function,
                    function_name: f.location.function_name.clone(),
                    offset: f.location.offset,
                })
                .collect(),
            imports: m.analysis.imports,
            exports: m.analysis.exports,
            capability_group: m.capability_group,
            review_note: m.review_note,
            shares: m
                .shares
                .into_iter()
                .map(|g| match g {
                    Grantee::User(u) => ("user".to_string(), u),
                    Grantee::Role(r) => ("role".to_string(), r),
                })
                .collect(),
            created_at: m.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            last_run_at: m
                .last_run_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        }
    }
}

/// Modules the caller may see, filtered, one page at a time (1-based).
#[server(endpoint = "modules/list", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_modules(
    #[server(default)] status: String,
    #[server(default)] q: String,
    #[server(default)] page: u64,
) -> Result<ModulesPage, AppError> {
    use platform::modules::{ModuleFilter, ModuleStatus};
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let page = page.max(1);
    let filter = ModuleFilter {
        status: ModuleStatus::parse(&status),
        owner: None,
        q: Some(q),
    };
    let (modules, total) = platform
        .modules()
        .list(
            &principal,
            &filter,
            (page - 1) * MODULES_PER_PAGE,
            MODULES_PER_PAGE,
        )
        .await?;
    Ok(ModulesPage {
        modules: modules.into_iter().map(ModuleView::from).collect(),
        total,
        page,
        per_page: MODULES_PER_PAGE,
    })
}

/// One module and what the caller may do with it.
#[server(endpoint = "modules/get", input = leptos::server_fn::codec::GetUrl)]
pub async fn get_module(id: String) -> Result<ModuleDetail, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let module = platform.modules().get(&principal, &id).await?;
    let owner = principal.id() == Some(module.owner_id.as_str());
    let admin = principal.can("modules", "*");
    Ok(ModuleDetail {
        can_review: admin,
        can_delete: principal.can("modules", "delete"),
        can_share: owner || admin,
        can_execute: principal.can("modules", "execute"),
        capability_groups: platform
            .config()
            .sandbox
            .sandbox
            .module_capabilities
            .keys()
            .cloned()
            .collect(),
        module: module.into(),
    })
}

/// The review queue: modules in review or quarantined (admins).
#[server(endpoint = "modules/review_queue", input = leptos::server_fn::codec::GetUrl)]
pub async fn review_queue() -> Result<Vec<ModuleView>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    Ok(platform
        .modules()
        .review_queue(&principal)
        .await?
        .into_iter()
        .map(ModuleView::from)
        .collect())
}

/// Deletes a module, with an optional reason for the audit log.
#[server(endpoint = "modules/delete")]
pub async fn delete_module(id: String, #[server(default)] reason: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let reason = Some(reason).filter(|r| !r.trim().is_empty());
    platform.modules().delete(&principal, &id, reason).await?;
    leptos_axum::redirect("/modules?deleted=1");
    Ok(())
}

/// Releases a module from review or quarantine, or quarantines it; the reason is audited.
#[server(endpoint = "modules/review")]
pub async fn review_module(
    id: String,
    decision: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let quarantine = match decision.as_str() {
        "release" => false,
        "quarantine" => true,
        _ => {
            return Err(AppError::invalid(
                "decision",
                "must be release or quarantine",
            ));
        }
    };
    platform
        .modules()
        .set_quarantine(&principal, &id, quarantine, &reason)
        .await?;
    Ok(())
}

/// Shares a module with a user or a role (`kind` is `user` or `role`).
#[server(endpoint = "modules/share")]
pub async fn share_module(id: String, kind: String, name: String) -> Result<(), AppError> {
    use platform::modules::Grantee;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let grantee = if kind == "role" {
        Grantee::Role(name.trim().to_string())
    } else {
        Grantee::User(name.trim().to_string())
    };
    platform.modules().share(&principal, &id, grantee).await?;
    Ok(())
}

/// Withdraws a share.
#[server(endpoint = "modules/unshare")]
pub async fn unshare_module(id: String, kind: String, name: String) -> Result<(), AppError> {
    use platform::modules::Grantee;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let grantee = if kind == "role" {
        Grantee::Role(name)
    } else {
        Grantee::User(name)
    };
    platform.modules().unshare(&principal, &id, grantee).await?;
    Ok(())
}

/// Assigns a sandbox.yml capability group to a module, or none (empty).
#[server(endpoint = "modules/capability_group")]
pub async fn set_capability_group(
    id: String,
    #[server(default)] group: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let group = Some(group).filter(|g| !g.is_empty());
    platform
        .modules()
        .set_capability_group(&principal, &id, group)
        .await?;
    Ok(())
}

/// The outcome of a run from the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run_id: String,
    pub ok: bool,
    /// `success`, or the `sandbox.<kind>` code.
    pub outcome: String,
    pub message: Option<String>,
    pub results: Vec<String>,
    pub exit_code: Option<i32>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub truncated: bool,
    pub duration_ms: f64,
    pub iterations: u64,
    pub peak_memory_bytes: u64,
}

/// A past run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: String,
    pub actor: String,
    pub mode: String,
    pub outcome: String,
    pub duration_ms: f64,
    pub peak_memory_bytes: u64,
    pub started_at: String,
    /// Results, exit code and output, or the error message, in one line; empty unless
    /// `output_visible`.
    pub summary: String,
    /// Whether the viewer may see the run's output (who ran it, or `modules:*`).
    pub output_visible: bool,
    /// Whether the history keeps only the start of the output.
    pub truncated: bool,
}

#[cfg(feature = "ssr")]
fn summarize(result: &serde_json::Value) -> String {
    let clip = |s: &str| {
        if s.chars().count() > 200 {
            format!("{}…", s.chars().take(200).collect::<String>())
        } else {
            s.to_string()
        }
    };
    if let Some(e) = result["error"].as_str() {
        return clip(e);
    }
    let mut parts = Vec::new();
    if let Some(values) = result["results"].as_array() {
        let shown: Vec<String> = values
            .iter()
            .map(|v| format!("{}:{}", v["type"].as_str().unwrap_or(""), v["value"]))
            .collect();
        parts.push(format!("results [{}]", shown.join(", ")));
    }
    if let Some(code) = result["exit_code"].as_i64() {
        parts.push(format!("exit {code}"));
    }
    if let Some(out) = result["stdout"].as_str().filter(|s| !s.is_empty()) {
        parts.push(format!("stdout: {}", clip(out.trim_end())));
    }
    parts.join(" · ")
}

/// Arguments typed as `i32:2 i64:7 f64:1.5`, or bare numbers (integers are i32, others f64).
pub fn parse_args(text: &str) -> Result<Vec<serde_json::Value>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|token| {
            let (ty, value) = match token.split_once(':') {
                Some((ty, v)) => (ty.to_string(), v),
                None if token.parse::<i32>().is_ok() => ("i32".to_string(), token),
                None => ("f64".to_string(), token),
            };
            let value = match ty.as_str() {
                "i32" => serde_json::json!(
                    value
                        .parse::<i32>()
                        .map_err(|_| format!("\"{value}\" is not an i32"))?
                ),
                "i64" => serde_json::json!(
                    value
                        .parse::<i64>()
                        .map_err(|_| format!("\"{value}\" is not an i64"))?
                ),
                "f32" => serde_json::json!(
                    value
                        .parse::<f32>()
                        .map_err(|_| format!("\"{value}\" is not an f32"))?
                ),
                "f64" => serde_json::json!(
                    value
                        .parse::<f64>()
                        .map_err(|_| format!("\"{value}\" is not an f64"))?
                ),
                other => {
                    return Err(format!(
                        "unknown type \"{other}\" (use i32, i64, f32 or f64)"
                    ));
                }
            };
            Ok(serde_json::json!({ "type": ty, "value": value }))
        })
        .collect()
}

/// Environment lines typed as `KEY=VALUE`, one per line; blank lines are skipped and the key is
/// trimmed (the value is kept as typed, spaces and further `=` included).
pub fn parse_env(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("\"{l}\" is not KEY=VALUE"))
        })
        .collect()
}

/// Runs a module from its page: `mode` is `call` (function and arguments) or `command` (WASI
/// arguments, `KEY=VALUE` environment lines and stdin).
#[server(endpoint = "modules/execute")]
pub async fn execute_module(
    id: String,
    mode: String,
    #[server(default)] function: String,
    #[server(default)] args: String,
    #[server(default)] env: String,
    #[server(default)] stdin: String,
) -> Result<RunView, AppError> {
    use platform::modules::execute::{ExecuteError, ExecuteRequest};
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let request = if mode == "command" {
        let env = parse_env(&env)
            .map_err(|m| AppError::invalid("env", m))?
            .into_iter()
            .collect();
        ExecuteRequest::Command {
            args: args.split_whitespace().map(str::to_string).collect(),
            env,
            stdin,
        }
    } else {
        if function.trim().is_empty() {
            return Err(AppError::invalid(
                "function",
                "name the exported function to call",
            ));
        }
        let values = parse_args(&args).map_err(|m| AppError::invalid("args", m))?;
        let args = serde_json::from_value(serde_json::Value::Array(values))
            .map_err(|e| AppError::invalid("args", e.to_string()))?;
        ExecuteRequest::Call {
            function: function.trim().to_string(),
            args,
        }
    };
    match platform.modules().execute(&principal, &id, request).await {
        Ok(r) => Ok(RunView {
            run_id: r.run_id,
            ok: true,
            outcome: "success".to_string(),
            message: None,
            results: r
                .results
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    serde_json::to_value(v)
                        .map(|j| format!("{}:{}", j["type"].as_str().unwrap_or(""), j["value"]))
                        .unwrap_or_default()
                })
                .collect(),
            exit_code: r.exit_code,
            stdout: r.stdout,
            stderr: r.stderr,
            truncated: r.stdout_truncated || r.stderr_truncated,
            duration_ms: r.duration_ms,
            iterations: r.iterations,
            peak_memory_bytes: r.peak_memory_bytes,
        }),
        Err(ExecuteError::Module(e)) => Err(e.into()),
        Err(e @ ExecuteError::Busy(_)) => Err(e.into()),
        Err(e) => Ok(RunView {
            run_id: e.run_id().unwrap_or_default().to_string(),
            ok: false,
            outcome: e.sandbox_code().unwrap_or("sandbox.trap").to_string(),
            message: Some(e.to_string()),
            results: Vec::new(),
            exit_code: None,
            stdout: None,
            stderr: None,
            truncated: false,
            duration_ms: 0.0,
            iterations: 0,
            peak_memory_bytes: 0,
        }),
    }
}

/// The latest runs of a module.
#[server(endpoint = "modules/runs", input = leptos::server_fn::codec::GetUrl)]
pub async fn module_runs(id: String) -> Result<Vec<RunRow>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    Ok(platform
        .modules()
        .runs(&principal, &id, 20)
        .await?
        .into_iter()
        .map(|r| RunRow {
            id: r.id,
            actor: r.actor,
            mode: r.mode,
            outcome: r.outcome,
            duration_ms: r.duration_ms,
            peak_memory_bytes: r.peak_memory_bytes,
            started_at: r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            summary: summarize(&r.result),
            output_visible: r.output_visible,
            truncated: r.truncated,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{parse_args, parse_env};
    use serde_json::json;

    #[test]
    fn arguments_are_typed_or_take_the_type_of_their_number() {
        assert_eq!(
            parse_args("i32:2, i64:7 f32:0.5 f64:1.5").unwrap(),
            vec![
                json!({"type": "i32", "value": 2}),
                json!({"type": "i64", "value": 7}),
                json!({"type": "f32", "value": 0.5}),
                json!({"type": "f64", "value": 1.5}),
            ]
        );
        assert_eq!(
            parse_args(" 3,\t-4  2.25 ").unwrap(),
            vec![
                json!({"type": "i32", "value": 3}),
                json!({"type": "i32", "value": -4}),
                json!({"type": "f64", "value": 2.25}),
            ]
        );
        assert_eq!(parse_args("").unwrap(), Vec::<serde_json::Value>::new());
        // Past i32 without a type: a float, as the hint says.
        assert_eq!(
            parse_args("3000000000").unwrap(),
            vec![json!({"type": "f64", "value": 3_000_000_000.0})]
        );
    }

    #[test]
    fn bad_arguments_say_which_and_why() {
        assert_eq!(
            parse_args("i32:3000000000").unwrap_err(),
            "\"3000000000\" is not an i32"
        );
        assert_eq!(parse_args("i64:x").unwrap_err(), "\"x\" is not an i64");
        assert_eq!(parse_args("seven").unwrap_err(), "\"seven\" is not an f64");
        assert_eq!(
            parse_args("u8:1").unwrap_err(),
            "unknown type \"u8\" (use i32, i64, f32 or f64)"
        );
    }

    #[test]
    fn environment_lines_are_key_value() {
        assert_eq!(
            parse_env("A=1\n\n  B = two words \nC=x=y\n").unwrap(),
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), " two words ".to_string()),
                ("C".to_string(), "x=y".to_string()),
            ]
        );
        assert_eq!(parse_env("").unwrap(), Vec::new());
        assert_eq!(
            parse_env("A=1\nnot a pair").unwrap_err(),
            "\"not a pair\" is not KEY=VALUE"
        );
    }
}

//! Secrets of a sink's config (`user`/`password`/`token`): inline, from an
//! environment variable (`*_env`) or from a file (`*_file`, e.g. a mounted
//! Kubernetes/Docker secret), read at connect time. Errors name the variable
//! or file, never a value.

use std::path::PathBuf;

/// The value of `<section>.<key>` from whichever of the three is set.
pub fn pick(
    section: &str,
    key: &str,
    v: &Option<String>,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<String>, String> {
    if let Some(v) = v {
        return Ok(Some(v.clone()));
    }
    if let Some(name) = env {
        return std::env::var(name)
            .map(Some)
            .map_err(|_| format!("environment variable {name} is not set"));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    // The error names the file only: io errors never carry contents.
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {section}.{key}_file {}: {e}", path.display()))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(format!("{section}.{key}_file {} is empty", path.display()));
    }
    Ok(Some(text.to_string()))
}

/// Offline checks of one secret's three sources: at most one set, names valid.
/// Err((key relative to the section, reason)).
pub fn validate(
    key: &str,
    v: &Option<String>,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<(), (String, String)> {
    if v.is_some() && env.is_some() {
        return Err((
            format!("{key}_env"),
            format!("set either {key} or {key}_env, not both"),
        ));
    }
    if file.is_some() && (v.is_some() || env.is_some()) {
        return Err((
            format!("{key}_file"),
            format!("set only one of {key}, {key}_env, {key}_file"),
        ));
    }
    if file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err((format!("{key}_file"), "must not be empty".into()));
    }
    if let Some(e) = env {
        if e.is_empty() || e.contains('=') || e.contains('\0') {
            return Err((
                format!("{key}_env"),
                "not a valid environment variable name".into(),
            ));
        }
    }
    Ok(())
}

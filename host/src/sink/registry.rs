//! The destinations this binary loads into, and everything that picks one by its
//! scheme: [`open`], [`open_existing`], the unknown-scheme error, the `--dest` help and
//! `connector-host list`. Each kind declares its [`Registration`] beside its store; a
//! scheme is written there and nowhere else.
//!
//! A plain static slice rather than `inventory` (which registers connectors): every
//! destination lives in this crate, so there is no crate to link that the host might
//! forget, and the slice fixes the order help texts list them in (the default first).

use connector_api::{Error, Result};

use super::{Destination, Registration, Spec, files, redact_destination, sql};

/// Every destination, in the order help texts list them.
pub static DESTINATIONS: &[&Registration] =
    &[&sql::sqlite::DESTINATION, &sql::postgres::DESTINATION, &files::JSONL, &files::CSV];

/// The registration whose scheme `spec` starts with, and `spec` split at it.
pub fn find(spec: &str) -> Option<(&'static Registration, Spec<'_>)> {
    DESTINATIONS.iter().find_map(|entry| {
        entry
            .schemes
            .iter()
            .find_map(|scheme| spec.strip_prefix(scheme))
            .map(|rest| (*entry, Spec { full: spec, rest }))
    })
}

/// Opens the destination `spec` names, creating what a first run needs.
pub async fn open(spec: &str) -> Result<Box<dyn Destination>> {
    connector_api::secret::register_url_credentials(spec);
    let (entry, spec) = find(spec).ok_or_else(|| unknown(spec))?;
    (entry.open)(spec).await
}

/// Opens a destination that must already hold a hub, for commands that only look at
/// (or tidy) what runs left: a mistyped `sqlite:` path or folder is reported, not
/// created empty.
pub async fn open_existing(spec: &str) -> Result<Box<dyn Destination>> {
    connector_api::secret::register_url_credentials(spec);
    let (entry, spec) = find(spec).ok_or_else(|| unknown(spec))?;
    (entry.open_existing)(spec).await
}

/// The error for a spec no registration's scheme starts: it lists the known schemes.
fn unknown(spec: &str) -> Error {
    let schemes: Vec<&str> = DESTINATIONS.iter().flat_map(|e| e.schemes.iter().copied()).collect();
    Error::config(
        "dest",
        format!(
            "unknown destination `{}`: it starts with none of {}",
            redact_destination(spec),
            schemes.join(", ")
        ),
    )
    .with_hint(format!("Use {}", forms(|form| form.to_string())))
}

/// Every registration's form, each shown by `show`, joined for a sentence
/// (`a, b, c or d`).
pub fn forms(show: impl Fn(&str) -> String) -> String {
    let shown: Vec<String> = DESTINATIONS.iter().map(|e| show(e.form)).collect();
    match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => shown.join(""),
    }
}

/// The `--dest` help of commands that read a hub (without a final stop, as clap
/// shows one-line help).
pub fn read_help() -> String {
    format!("Destination to read: {}", forms(|f| format!("`{f}`")))
}

/// The `--dest` help of `run`, whose default is `default`.
pub fn run_help(default: &str) -> String {
    format!(
        "Destination: {}. Overrides `destination` in the config file; default `{default}`",
        forms(|f| format!("`{f}`"))
    )
}

#[cfg(test)]
mod tests {
    use connector_api::ErrorKind;

    use super::*;

    #[tokio::test]
    async fn bad_destinations_are_config_errors() {
        for spec in ["sqlite:", "jsonl:", "mysql://x", "datahub.db"] {
            let err = open(spec).await.err().expect(spec);
            assert_eq!(err.kind(), ErrorKind::Config, "{spec}: {err}");
            assert_eq!(err.context_value("field"), Some("dest"), "{spec}");
        }
    }

    #[test]
    fn unknown_schemes_list_the_known_ones_without_secrets() {
        let err = unknown("mysql://u:hunter2@h/db");
        for scheme in DESTINATIONS.iter().flat_map(|e| e.schemes) {
            assert!(err.message().contains(scheme), "{err}");
        }
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(err.hint(), Some("Use sqlite:PATH, postgres://user@host/db, jsonl:DIR or csv:DIR"));
    }

    #[test]
    fn every_scheme_is_unique_and_every_example_finds_its_entry() {
        let mut schemes: Vec<&str> = DESTINATIONS.iter().flat_map(|e| e.schemes.iter().copied()).collect();
        let n = schemes.len();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), n, "a scheme is registered twice");
        for entry in DESTINATIONS {
            let (found, _) = find(entry.example).expect(entry.example);
            assert!(std::ptr::eq(found, *entry), "{} finds another entry", entry.example);
            assert!(entry.schemes.iter().any(|s| entry.form.starts_with(s)), "{}", entry.form);
        }
    }

    #[test]
    fn help_lists_every_form() {
        assert_eq!(
            run_help("sqlite:./datahub.db"),
            "Destination: `sqlite:PATH`, `postgres://user@host/db`, `jsonl:DIR` or `csv:DIR`. Overrides \
             `destination` in the config file; default `sqlite:./datahub.db`"
        );
    }
}

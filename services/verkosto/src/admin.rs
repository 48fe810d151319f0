//! `verkosto admin bootstrap`: the first agency and admin of a real
//! deployment, bound to a subject of the identity provider, and the claims
//! the provider must then issue. Works on either store, whether or not
//! Verkosto is running; writes only through the directory's commands.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verkosto_auth::Verifier;
use verkosto_directory::bootstrap::{Bootstrap, Done};
use verkosto_directory::domain::{AgencyKind, LocalizedName};
use verkosto_directory::{Directory, DirectoryProjection};
use verkosto_eventlog::{EventLog, Progress};
use verkosto_http::{AuthState, Problem};

use crate::config::{BootstrapArgs, StoreArgs};

pub async fn bootstrap(store: &StoreArgs, args: &BootstrapArgs) -> anyhow::Result<()> {
    // Bad input is refused before the store is touched.
    let input = input(args)?;
    input.check().map_err(|p| flag_error(args, p))?;

    let log = EventLog::connect(&store.url()).await?;
    verkosto_directory::migrate(log.db()).await?;
    // The directory's read model, current with the log, kept current while
    // this runs: its checks read it. Any process of a running deployment
    // that feeds it takes turns with this one on its checkpoint.
    log.catch_up(&DirectoryProjection).await?;
    let (progress_tx, progress) = Progress::channel();
    let stop = CancellationToken::new();
    let feeder = tokio::spawn(verkosto_eventlog::run_local(
        log.clone(),
        Arc::new(DirectoryProjection),
        progress_tx,
        Duration::from_millis(100),
        stop.clone(),
    ));
    let directory = Directory {
        log: log.clone(),
        progress,
        // Nothing is served here: a verifier that accepts no token at all.
        auth: AuthState {
            verifier: Arc::new(Verifier::from_jwks_json(
                r#"{"keys":[]}"#,
                String::new(),
                String::new(),
                Vec::new(),
            )?),
        },
        dev: None,
    };
    let outcome = input.run(&directory).await;
    stop.cancel();
    let _ = feeder.await;
    log.db().close().await;
    let report = outcome.map_err(|p| flag_error(args, p))?;

    let agency = &input.agency_id;
    let subject = &input.admin_subject;
    match (report.agency, report.admin) {
        (Done::Unchanged, Done::Unchanged) => println!(
            "nothing changed: agency {agency} and its admin {subject} were registered already"
        ),
        (agency_done, admin_done) => {
            let said = |d: Done| match d {
                Done::Registered => "registered",
                Done::Unchanged => "already registered, unchanged:",
            };
            println!(
                "{} agency {agency} ({}, {:?})",
                said(agency_done),
                input.agency_kind.as_str(),
                input.agency_name.en
            );
            println!(
                "{} admin {subject} ({:?}) of agency {agency}",
                said(admin_done),
                input.admin_name
            );
        }
    }
    print!("{}", claims(args, &input));
    Ok(())
}

/// The command's input, from the flags.
fn input(args: &BootstrapArgs) -> anyhow::Result<Bootstrap> {
    let kind = AgencyKind::parse(args.agency_kind.trim()).ok_or_else(|| {
        let kinds: Vec<&str> = AgencyKind::ALL.iter().map(AgencyKind::as_str).collect();
        anyhow::anyhow!(
            "--agency-kind: `{}` is not an agency kind; one of {}",
            args.agency_kind,
            kinds.join(", ")
        )
    })?;
    let name = |own: &Option<String>| own.clone().unwrap_or_else(|| args.agency_name.clone());
    Ok(Bootstrap {
        agency_id: args.agency_id.clone(),
        agency_kind: kind,
        agency_name: LocalizedName {
            fi: name(&args.agency_name_fi),
            sv: name(&args.agency_name_sv),
            en: name(&args.agency_name_en),
        },
        admin_subject: args.admin_subject.clone(),
        admin_name: args.admin_name.clone(),
        another_admin: args.another_admin,
        operator: args.operator.clone(),
    })
}

/// A refusal as one line naming the flag to change.
fn flag_error(args: &BootstrapArgs, p: Problem) -> anyhow::Error {
    let Some(field) = p.field.as_deref() else {
        return anyhow::anyhow!("{}", p.detail);
    };
    let flag = match field {
        "agency_name.fi" if args.agency_name_fi.is_some() => "--agency-name-fi",
        "agency_name.sv" if args.agency_name_sv.is_some() => "--agency-name-sv",
        "agency_name.en" if args.agency_name_en.is_some() => "--agency-name-en",
        f if f.starts_with("agency_name") => "--agency-name",
        "agency_id" => "--agency-id",
        "admin_subject" => "--admin-subject",
        "admin_name" => "--admin-name",
        "another_admin" => "--another-admin",
        "operator" => "--operator",
        _ => return anyhow::anyhow!("{}", p.detail),
    };
    let detail = p
        .detail
        .strip_prefix(&format!("{field}: "))
        .unwrap_or(&p.detail);
    anyhow::anyhow!("{flag}: {detail}")
}

/// What the provider must put into the admin's tokens, value by value.
fn claims(args: &BootstrapArgs, input: &Bootstrap) -> String {
    let issuer = args
        .jwt_issuer
        .as_deref()
        .filter(|i| !i.trim().is_empty())
        .map_or_else(
            || "<the issuer URL that `verkosto serve --jwt-issuer` is given>".to_string(),
            |i| format!("{i:?}"),
        );
    format!(
        "\nThe identity provider must issue this admin access tokens with these claims \
         (deploy/RUNBOOK.md, \"First run with Keycloak\"):\n\
         \x20 iss     {issuer}\n\
         \x20 aud     {audience:?} (alone, or in a list)\n\
         \x20 sub     {subject:?}\n\
         \x20 agency  {agency:?}\n\
         \x20 roles   [\"admin\"] (only Verkosto's role names: admin, facilitator, liaison, auditor; \
         any other refuses the token)\n\
         \x20 exp     the expiry, as every token has\n\
         signed with a key in the provider's JWKS (`serve --jwks-url`) by an algorithm of \
         `serve --jwt-algorithms` (default RS256, ES256, EdDSA). For the web app's sign-in \
         the ID token carries the same sub, agency and roles, with the web client's id as \
         its audience.\n",
        audience = args.jwt_audience,
        subject = input.admin_subject,
        agency = input.agency_id,
    )
}

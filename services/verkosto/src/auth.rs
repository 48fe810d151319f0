//! Choosing how tokens are verified: dev keys or the identity provider's JWKS.

use verkosto_auth::{DevIssuer, Verifier};

use crate::config::ServeArgs;

pub fn verifier(args: &ServeArgs) -> anyhow::Result<(Verifier, Option<DevIssuer>)> {
    if args.dev_auth_on() {
        let (verifier, issuer) = match &args.dev_key_seed {
            Some(hex_seed) => {
                let seed = parse_seed(hex_seed)?;
                Verifier::dev_from_seed(&seed)
            }
            None => Verifier::dev(),
        };
        tracing::warn!(
            "authentication: dev tokens (--demo or --dev-auth on): anyone who reaches this \
             port can get any user's token at /api/v1/dev/token; never in production"
        );
        return Ok((verifier, Some(issuer)));
    }
    // An empty value (an unset variable in a compose file) is no value.
    let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let url = given(&args.jwks_url).ok_or_else(|| anyhow::anyhow!("{NO_SIGN_IN}"))?;
    let issuer = given(&args.jwt_issuer).ok_or_else(|| {
        anyhow::anyhow!("--jwt-issuer (VERKOSTO_JWT_ISSUER) is required with --jwks-url")
    })?;
    let algorithms = args
        .jwt_algorithms
        .iter()
        .map(|a| a.trim().parse::<verkosto_auth::Algorithm>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--jwt-algorithms: {e}"))?;
    tracing::info!(
        jwks = %url, %issuer, audience = %args.jwt_audience,
        "authentication: tokens of the identity provider, checked against its JWKS"
    );
    Ok((
        Verifier::jwks(url, issuer, args.jwt_audience.clone(), algorithms),
        None,
    ))
}

/// What `serve` says when nothing lets anyone sign in.
const NO_SIGN_IN: &str = "no sign-in is configured: give your identity provider's \
    --jwks-url and --jwt-issuer (VERKOSTO_JWKS_URL, VERKOSTO_JWT_ISSUER), or --demo \
    (or --dev-auth on) for a local trial with dev tokens that anyone can take";

fn parse_seed(hex_seed: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = (0..hex_seed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex_seed.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| anyhow::anyhow!("--dev-key-seed must be 64 hex digits"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("--dev-key-seed must be 64 hex digits"))
}

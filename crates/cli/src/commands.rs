//! Every subcommand: the service calls and the three output formats.

use std::io::IsTerminal as _;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bulwark_client::interface::ops::Access;
use bulwark_client::psa::key::Type;
use bulwark_client::{
    Algorithm, AsymmetricEncryption, AsymmetricSignature, Attributes, Client, EccFamily, Hash,
    KeyInfo, Lifetime, Opcode, Policy, ProviderId, UsageFlags,
};
use clap::CommandFactory as _;
use serde_json::{json, Map, Value};

use crate::cli::{AuthenticatorArg, Cli, Command, CreateCsr, HashAlg, OutputFormat};
use crate::error::{Exit, Failure};
use crate::output::{self, escape, print};
use crate::{describe, encoding, input, log, signing, Session};

/// Runs the command `cli` names.
pub(crate) fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "bulwark", &mut text);
            return print(&String::from_utf8_lossy(&text));
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|e| Failure::generic(format!("cannot render the manual page: {e}")))?;
            return print(&String::from_utf8_lossy(&text));
        }
        _ => {}
    }
    let s = Session::new(cli, needs_identity(&cli.command))?;
    match &cli.command {
        Command::Ping => ping(&s),
        Command::ListProviders => list_providers(&s),
        Command::ListAuthenticators => list_authenticators(&s),
        Command::ListOpcodes { provider } => list_opcodes(&s, *provider),
        Command::ListKeys { pattern } => list_keys(&s, pattern.as_deref()),
        Command::GenerateRandom { nbytes } => generate_random(&s, *nbytes),
        Command::ExportPublicKey { key, pkcs1 } => export_public_key(&s, &key.key_name, *pkcs1),
        Command::CreateRsaKey {
            key,
            for_signing,
            for_signing_pss,
            bits,
            oaep,
            exportable,
        } => {
            let (kind, alg): (&str, Algorithm) = if *for_signing {
                (
                    "signing",
                    AsymmetricSignature::RsaPkcs1v15Sign {
                        hash_alg: Hash::Sha256.into(),
                    }
                    .into(),
                )
            } else if *for_signing_pss {
                (
                    "signing",
                    AsymmetricSignature::RsaPss {
                        hash_alg: Hash::Sha256.into(),
                    }
                    .into(),
                )
            } else if *oaep {
                (
                    "encryption",
                    AsymmetricEncryption::RsaOaep {
                        hash_alg: Hash::Sha256,
                    }
                    .into(),
                )
            } else {
                ("encryption", AsymmetricEncryption::RsaPkcs1v15Crypt.into())
            };
            log::info(format_args!("Creating RSA {kind} key..."));
            let attributes = key_attributes(Type::RsaKeyPair, *bits, alg, *exportable);
            create_key(&s, &key.key_name, attributes, true)
        }
        Command::CreateEccKey { key, exportable } => {
            log::info(format_args!("Creating ECC signing key..."));
            let alg = AsymmetricSignature::Ecdsa {
                hash_alg: Hash::Sha256.into(),
            };
            let key_type = Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            };
            let attributes = key_attributes(key_type, 256, alg.into(), *exportable);
            create_key(&s, &key.key_name, attributes, false)
        }
        Command::Decrypt { key, input } => decrypt(&s, &key.key_name, &input::read(input)?),
        Command::Encrypt { key, input } => encrypt(&s, &key.key_name, &input::read(input)?),
        Command::Sign { key, input } => sign(&s, &key.key_name, &input::read(input)?),
        Command::Verify {
            key,
            signature,
            input,
        } => verify(&s, &key.key_name, signature, &input::read(input)?),
        Command::DeleteKey { key } => delete_key(&s, &key.key_name),
        Command::ListClients => list_clients(&s),
        Command::Status => status(&s),
        Command::DeleteClient {
            client,
            authenticator,
        } => delete_client(&s, client, *authenticator),
        Command::CreateCsr(args) => create_csr(&s, args),
        Command::Hash { alg, input } => hash(&s, *alg, &input::read(input)?),
        Command::ExportKey { key } => export_key(&s, &key.key_name),
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}

/// Whether the command's session needs an identity and a crypto provider, found by asking the
/// service. An operation open to anyone and answered by the core provider (the operations
/// table's access and served-by columns) needs neither: its session makes no call before the
/// command's own, as parsec-tool's unauthenticated one.
fn needs_identity(command: &Command) -> bool {
    !operation(command).is_some_and(|opcode| opcode.is_core() && opcode.access() == Access::Open)
}

/// The operation a command is named after; `None` for the commands answered without the
/// service. The other calls a command makes (a key's attributes, through ListKeys) need an
/// identity too, so this one decides what its session needs.
fn operation(command: &Command) -> Option<Opcode> {
    Some(match command {
        Command::Ping => Opcode::Ping,
        Command::ListProviders => Opcode::ListProviders,
        Command::ListAuthenticators => Opcode::ListAuthenticators,
        Command::ListOpcodes { .. } => Opcode::ListOpcodes,
        Command::ListKeys { .. } => Opcode::ListKeys,
        Command::GenerateRandom { .. } => Opcode::PsaGenerateRandom,
        Command::ExportPublicKey { .. } => Opcode::PsaExportPublicKey,
        Command::CreateRsaKey { .. } | Command::CreateEccKey { .. } => Opcode::PsaGenerateKey,
        Command::Decrypt { .. } => Opcode::PsaAsymmetricDecrypt,
        Command::Encrypt { .. } => Opcode::PsaAsymmetricEncrypt,
        Command::Sign { .. } | Command::CreateCsr(_) => Opcode::PsaSignHash,
        Command::Verify { .. } => Opcode::PsaVerifyHash,
        Command::DeleteKey { .. } => Opcode::PsaDestroyKey,
        Command::ListClients => Opcode::ListClients,
        Command::Status => Opcode::BulwarkStatus,
        Command::DeleteClient { .. } => Opcode::DeleteClient,
        Command::Hash { .. } => Opcode::PsaHashCompute,
        Command::ExportKey { .. } => Opcode::PsaExportKey,
        Command::Completions { .. } | Command::Man => return None,
    })
}

fn provider_json(id: ProviderId, providers: &[bulwark_client::ProviderInfo]) -> (Value, Value) {
    (
        json!(id.value()),
        json!(describe::provider_name_of(id, providers)),
    )
}

fn ping(s: &Session) -> Result<(), Failure> {
    let (major, minor) = s.call(Client::ping)?;
    log::info(format_args!("Service wire protocol version"));
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "wire_protocol_version": format!("{major}.{minor}"),
            "major": major,
            "minor": minor,
        })),
        _ => print(&format!("{major}.{minor}\n")),
    }
}

fn list_providers(s: &Session) -> Result<(), Failure> {
    let providers = s.call(Client::list_providers)?;
    log::info(format_args!("Available providers:"));
    let version = |p: &bulwark_client::ProviderInfo| {
        format!("{}.{}.{}", p.version_maj, p.version_min, p.version_rev)
    };
    match s.format {
        OutputFormat::Parsec => {
            let mut text = String::new();
            for p in &providers {
                text.push_str(&format!("ID: 0x{:02x} ({})\n", p.id.value(), p.id));
                text.push_str(&format!("Description: {}\n", escape(&p.description)));
                text.push_str(&format!("Version: {}\n", version(p)));
                let vendor = if p.vendor.is_empty() {
                    "Unspecified"
                } else {
                    &p.vendor
                };
                text.push_str(&format!("Vendor: {}\n", escape(vendor)));
                text.push_str(&format!("UUID: {}\n\n", p.uuid));
            }
            print(&text)
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = providers
                .iter()
                .map(|p| {
                    vec![
                        format!("0x{:02x}", p.id.value()),
                        describe::provider_name(p),
                        version(p),
                        p.vendor.clone(),
                        p.uuid.to_string(),
                        p.description.clone(),
                    ]
                })
                .collect();
            print(&output::table(
                &["ID", "NAME", "VERSION", "VENDOR", "UUID", "DESCRIPTION"],
                &rows,
            ))
        }
        OutputFormat::Json => output::json(&json!({
            "providers": providers.iter().map(|p| json!({
                "id": p.id.value(),
                "name": describe::provider_name(p),
                "description": p.description,
                "version": version(p),
                "vendor": p.vendor,
                "uuid": p.uuid.to_string(),
            })).collect::<Vec<_>>()
        })),
    }
}

fn list_authenticators(s: &Session) -> Result<(), Failure> {
    let authenticators = s.call(Client::list_authenticators)?;
    log::info(format_args!("Available authenticators:"));
    let version = |a: &bulwark_client::AuthenticatorInfo| {
        format!("{}.{}.{}", a.version_maj, a.version_min, a.version_rev)
    };
    match s.format {
        OutputFormat::Parsec => {
            let mut text = String::new();
            for a in &authenticators {
                text.push_str(&format!(
                    "ID: 0x{:02x} ({})\n",
                    a.id.value(),
                    describe::auth_type(a.id)
                ));
                text.push_str(&format!("Description: {}\n", escape(&a.description)));
                text.push_str(&format!("Version: {}\n\n", version(a)));
            }
            print(&text)
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = authenticators
                .iter()
                .map(|a| {
                    vec![
                        format!("0x{:02x}", a.id.value()),
                        describe::auth_type(a.id).to_owned(),
                        version(a),
                        a.description.clone(),
                    ]
                })
                .collect();
            print(&output::table(
                &["ID", "NAME", "VERSION", "DESCRIPTION"],
                &rows,
            ))
        }
        OutputFormat::Json => output::json(&json!({
            "authenticators": authenticators.iter().map(|a| json!({
                "id": a.id.value(),
                "name": describe::auth_type(a.id),
                "description": a.description,
                "version": version(a),
            })).collect::<Vec<_>>()
        })),
    }
}

fn list_opcodes(s: &Session, provider: Option<u8>) -> Result<(), Failure> {
    let provider = match provider {
        Some(id) => ProviderId::try_from(id).map_err(|_| {
            Failure::generic(format!(
                "provider ID {id} does not exist: use one of the IDs `bulwark list-providers` \
                 prints (0 to 5)"
            ))
        })?,
        None => s.client().provider(),
    };
    let opcodes = s.call(|c: &Client| c.list_opcodes(provider))?;
    log::info(format_args!("Available opcodes for {provider}:"));
    match s.format {
        OutputFormat::Parsec => print(
            &opcodes
                .iter()
                .map(|op| format!("0x{:02x} ({})\n", op.value(), op.name()))
                .collect::<String>(),
        ),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = opcodes
                .iter()
                .map(|op| vec![format!("0x{:02x}", op.value()), op.name().to_owned()])
                .collect();
            print(&output::table(&["ID", "NAME"], &rows))
        }
        OutputFormat::Json => {
            let providers = s.call(Client::list_providers)?;
            let (id, name) = provider_json(provider, &providers);
            output::json(&json!({
                "provider_id": id,
                "provider": name,
                "opcodes": opcodes.iter().map(|op| json!({
                    "id": op.value(),
                    "name": op.name(),
                })).collect::<Vec<_>>(),
            }))
        }
    }
}

fn key_json(key: &KeyInfo, providers: &[bulwark_client::ProviderInfo]) -> Value {
    let a = &key.attributes;
    let (provider_id, provider) = provider_json(key.provider_id, providers);
    let mut object = Map::new();
    object.insert("name".into(), json!(key.name));
    object.insert("provider_id".into(), provider_id);
    object.insert("provider".into(), provider);
    object.insert("type".into(), json!(describe::key_type_name(a.key_type)));
    if let Some((field, value)) = describe::family(a.key_type) {
        object.insert(field.into(), value);
    }
    object.insert("bits".into(), json!(a.bits));
    object.insert(
        "algorithm".into(),
        json!(format!("{:?}", a.policy.permitted_algorithms)),
    );
    object.insert(
        "algorithm_description".into(),
        json!(describe::algorithm(a.policy.permitted_algorithms)),
    );
    object.insert(
        "usage_flags".into(),
        json!(describe::usage_flags(a.policy.usage_flags)),
    );
    Value::Object(object)
}

fn list_keys(s: &Session, pattern: Option<&str>) -> Result<(), Failure> {
    let keys = match pattern {
        Some(pattern) => s.call(|client| client.list_keys_matching(pattern))?,
        None => s.call(Client::list_keys)?,
    };
    if keys.is_empty() {
        log::info(format_args!("No keys currently available."));
    } else {
        log::info(format_args!("Available keys:"));
    }
    match s.format {
        OutputFormat::Parsec => print(
            &keys
                .iter()
                .map(|k| {
                    format!(
                        "* {} ({}, {:?}, {} bits, permitted algorithm: {:?})\n",
                        escape(&k.name),
                        k.provider_id,
                        k.attributes.key_type,
                        k.attributes.bits,
                        k.attributes.policy.permitted_algorithms
                    )
                })
                .collect::<String>(),
        ),
        OutputFormat::Table if keys.is_empty() => Ok(()),
        OutputFormat::Table => {
            let providers = s.call(Client::list_providers)?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.name.clone(),
                        describe::provider_name_of(k.provider_id, &providers),
                        describe::key_type(k.attributes.key_type),
                        k.attributes.bits.to_string(),
                        describe::algorithm(k.attributes.policy.permitted_algorithms),
                    ]
                })
                .collect();
            print(&output::table(
                &["NAME", "PROVIDER", "TYPE", "BITS", "ALGORITHM"],
                &rows,
            ))
        }
        OutputFormat::Json => {
            let providers = s.call(Client::list_providers)?;
            output::json(&json!({
                "keys": keys.iter().map(|k| key_json(k, &providers)).collect::<Vec<_>>()
            }))
        }
    }
}

fn generate_random(s: &Session, nbytes: usize) -> Result<(), Failure> {
    log::info(format_args!("Generating {nbytes} random bytes..."));
    let bytes = s.call(|c: &Client| c.generate_random(nbytes))?;
    log::info(format_args!("Random bytes:"));
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "nbytes": bytes.len(),
            "hex": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "base64": BASE64.encode(&bytes[..]),
        })),
        _ => {
            let mut text: String = bytes.iter().map(|b| format!("{b:02X} ")).collect();
            text.push('\n');
            print(&text)
        }
    }
}

fn export_public_key(s: &Session, key: &str, pkcs1: bool) -> Result<(), Failure> {
    let public = s.call(|c: &Client| c.export_public_key(key))?;
    let attributes = s.call(|c: &Client| c.key_attributes(key))?;
    let is_rsa = matches!(attributes.key_type, Type::RsaKeyPair | Type::RsaPublicKey);
    let (tag, der, format) = if pkcs1 {
        if !is_rsa {
            return Err(Failure::new(
                Exit::NotPermitted,
                format!(
                    "PKCS1 format doesn't support ECC keys (key {key:?} is {}): export it \
                     without --pkcs1",
                    describe::key_type(attributes.key_type)
                ),
            ));
        }
        ("RSA PUBLIC KEY", public, "pkcs1")
    } else {
        let der = encoding::spki_der(attributes.key_type, attributes.bits, &public)?;
        ("PUBLIC KEY", der, "spki")
    };
    let pem = encoding::pem(tag, &der);
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "key_name": key,
            "type": describe::key_type_name(attributes.key_type),
            "bits": attributes.bits,
            "format": format,
            "pem": pem,
        })),
        _ => print(&pem),
    }
}

fn key_attributes(key_type: Type, bits: usize, alg: Algorithm, exportable: bool) -> Attributes {
    let mut usage_flags = UsageFlags::default();
    match alg {
        Algorithm::AsymmetricSignature(_) => {
            usage_flags
                .set_sign_hash()
                .set_verify_hash()
                .set_sign_message()
                .set_verify_message();
        }
        _ => {
            usage_flags.set_encrypt().set_decrypt();
        }
    }
    if exportable {
        usage_flags.set_export();
    }
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type,
        bits,
        policy: Policy {
            usage_flags,
            permitted_algorithms: alg,
        },
    }
}

/// A spinner on standard error while `f` runs, when standard error is a terminal.
fn with_spinner<T>(message: String, f: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() || !log::info_enabled() {
        return f();
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    let result = f();
    spinner.finish_and_clear();
    result
}

fn create_key(s: &Session, key: &str, attributes: Attributes, slow: bool) -> Result<(), Failure> {
    let generate = || s.call(|c: &Client| c.generate_key(key, attributes));
    if slow {
        with_spinner(
            format!(
                "generating a {}-bit {} (this can take a while)",
                attributes.bits,
                describe::key_type(attributes.key_type)
            ),
            generate,
        )?;
    } else {
        generate()?;
    }
    log::info(format_args!("Key \"{key}\" created."));
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "key_name": key,
            "created": true,
            "type": describe::key_type_name(attributes.key_type),
            "bits": attributes.bits,
            "algorithm": format!("{:?}", attributes.policy.permitted_algorithms),
            "usage_flags": describe::usage_flags(attributes.policy.usage_flags),
        })),
        _ => Ok(()),
    }
}

fn encryption_algorithm(
    s: &Session,
    key: &str,
    what: &str,
) -> Result<AsymmetricEncryption, Failure> {
    let alg = s
        .call(|c: &Client| c.key_attributes(key))?
        .policy
        .permitted_algorithms;
    match alg {
        Algorithm::AsymmetricEncryption(alg) => Ok(alg),
        Algorithm::Cipher(_) | Algorithm::Aead(_) => Err(Failure::not_supported(format!(
            "key {key:?} has the algorithm {alg:?}, which is not currently supported for \
             {what}: use an RSA key (create-rsa-key)"
        ))),
        other => Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "key {key:?} has the algorithm {other:?}, which cannot be used for {what}: use \
                 an RSA encryption key (create-rsa-key without --for-signing)"
            ),
        )),
    }
}

fn encrypt(s: &Session, key: &str, plaintext: &[u8]) -> Result<(), Failure> {
    let alg = encryption_algorithm(s, key, "encryption")?;
    log::info(format_args!("Encrypting data with {alg:?}..."));
    let ciphertext = s.call(|c: &Client| c.asymmetric_encrypt(key, alg, plaintext, None))?;
    let ciphertext = BASE64.encode(ciphertext);
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "key_name": key,
            "algorithm": format!("{alg:?}"),
            "ciphertext": ciphertext,
        })),
        _ => print(&format!("{ciphertext}\n")),
    }
}

fn decode_base64(text: &[u8], what: &str) -> Result<Vec<u8>, Failure> {
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    BASE64
        .decode(text)
        .map_err(|e| Failure::generic(format!("the {what} is not valid base64 ({e})")))
}

fn decrypt(s: &Session, key: &str, input: &[u8]) -> Result<(), Failure> {
    let ciphertext = decode_base64(input, "ciphertext")?;
    let alg = encryption_algorithm(s, key, "decryption")?;
    log::info(format_args!("Decrypting data with {alg:?}..."));
    let plaintext = s.call(|c: &Client| c.asymmetric_decrypt(key, alg, &ciphertext, None))?;
    let text = String::from_utf8_lossy(&plaintext);
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "key_name": key,
            "algorithm": format!("{alg:?}"),
            "plaintext": text,
            "plaintext_base64": BASE64.encode(&plaintext[..]),
        })),
        _ => print(&format!("{text}\n")),
    }
}

fn sign(s: &Session, key: &str, message: &[u8]) -> Result<(), Failure> {
    let attributes = s.call(|c: &Client| c.key_attributes(key))?;
    let (alg, signature) = signing::sign(s, key, &attributes, message, None)?;
    let signature = BASE64.encode(signature);
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "key_name": key,
            "algorithm": format!("{alg:?}"),
            "signature": signature,
        })),
        _ => print(&format!("{signature}\n")),
    }
}

fn verify(s: &Session, key: &str, signature: &str, message: &[u8]) -> Result<(), Failure> {
    let signature = decode_base64(signature.as_bytes(), "signature")?;
    let attributes = s.call(|c: &Client| c.key_attributes(key))?;
    let result = signing::verify(s, key, &attributes, message, &signature);
    let valid = match &result {
        Ok(_) => true,
        Err(f) if f.exit == Exit::InvalidSignature => false,
        Err(_) => return result.map(|_| ()),
    };
    if valid {
        log::info(format_args!("Signature verified."));
    }
    if s.format == OutputFormat::Json {
        output::json(&json!({ "key_name": key, "valid": valid }))?;
    }
    result.map(|_| ())
}

fn delete_key(s: &Session, key: &str) -> Result<(), Failure> {
    log::info(format_args!("Deleting a key..."));
    s.call(|c: &Client| c.destroy_key(key))?;
    log::info(format_args!("Key \"{key}\" deleted."));
    match s.format {
        OutputFormat::Json => output::json(&json!({ "key_name": key, "deleted": true })),
        _ => Ok(()),
    }
}

fn list_clients(s: &Session) -> Result<(), Failure> {
    let answer = s.call(|c: &Client| {
        c.call::<bulwark_client::interface::ops::ListClients>(
            ProviderId::Core,
            bulwark_client::interface::ops::list_clients::Request,
        )
    })?;
    let clients = answer.clients;
    // Who owns keys under which authenticator, when the service says (Bulwark); the default
    // output stays parsec-tool's.
    let owners: Vec<(String, String)> = answer
        .owners
        .into_iter()
        .map(|owner| (owner.name, owner.auth_type.display_name().to_owned()))
        .collect();
    if clients.is_empty() {
        log::info(format_args!("No clients in the service."));
    } else {
        log::info(format_args!("Parsec clients:"));
    }
    match s.format {
        OutputFormat::Parsec => print(
            &clients
                .iter()
                .map(|c| format!("{}\n", escape(c)))
                .collect::<String>(),
        ),
        OutputFormat::Table if clients.is_empty() => Ok(()),
        OutputFormat::Table if owners.is_empty() => {
            let rows: Vec<Vec<String>> = clients.iter().map(|c| vec![c.clone()]).collect();
            print(&output::table(&["CLIENT"], &rows))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = owners
                .iter()
                .map(|(name, auth)| vec![name.clone(), auth.clone()])
                .collect();
            print(&output::table(&["CLIENT", "AUTHENTICATOR"], &rows))
        }
        OutputFormat::Json => {
            let owners: Vec<_> = owners
                .iter()
                .map(|(name, auth)| json!({ "name": name, "authenticator": auth }))
                .collect();
            output::json(&json!({ "clients": clients, "owners": owners }))
        }
    }
}

fn status(s: &Session) -> Result<(), Failure> {
    let status = s.call(Client::status)?;
    let health = |problem: &Option<String>| match problem {
        None => "ok".to_owned(),
        Some(problem) => format!("failing ({problem})"),
    };
    match s.format {
        OutputFormat::Parsec | OutputFormat::Table => {
            let up = status.uptime_seconds;
            let mut text = format!(
                "Version: {}\nUptime: {}d {:02}:{:02}:{:02}\n",
                escape(&status.version),
                up / 86_400,
                up / 3_600 % 24,
                up / 60 % 60,
                up % 60
            );
            for a in &status.authenticators {
                text.push_str(&format!(
                    "Authenticator: 0x{:02x} ({})\n",
                    a.id.value(),
                    describe::auth_type(a.id)
                ));
            }
            text.push_str(&format!(
                "Connections open: {}\nRequests in flight: {} ({} queued)\n\
                 Keys: {}\nClients with keys: {}\n\
                 Audit log: {} ({} records lost, {} denials folded)\nLog lines lost: {}\n\n",
                status.connections_open,
                status.requests_in_flight,
                status.requests_queued,
                status.keys,
                status.clients,
                escape(&status.audit.sink),
                status.audit.records_lost,
                status.audit.denials_folded,
                status.log_lines_lost
            ));
            let rows: Vec<Vec<String>> = status
                .providers
                .iter()
                .map(|p| {
                    vec![
                        format!("0x{:02x}", p.id.value()),
                        p.name.clone(),
                        p.keys.to_string(),
                        health(&p.problem),
                    ]
                })
                .collect();
            text.push_str(&output::table(&["ID", "PROVIDER", "KEYS", "HEALTH"], &rows));
            print(&text)
        }
        OutputFormat::Json => output::json(&json!({
            "version": status.version,
            "uptime_seconds": status.uptime_seconds,
            "providers": status.providers.iter().map(|p| json!({
                "id": p.id.value(),
                "name": p.name,
                "keys": p.keys,
                "healthy": p.problem.is_none(),
                "problem": p.problem,
            })).collect::<Vec<_>>(),
            "authenticators": status.authenticators.iter().map(|a| json!({
                "id": a.id.value(),
                "name": describe::auth_type(a.id),
                "description": a.description,
            })).collect::<Vec<_>>(),
            "connections_open": status.connections_open,
            "requests_in_flight": status.requests_in_flight,
            "requests_queued": status.requests_queued,
            "keys": status.keys,
            "clients": status.clients,
            "audit_log": {
                "sink": status.audit.sink,
                "records_lost": status.audit.records_lost,
                "denials_folded": status.audit.denials_folded,
            },
            "log_lines_lost": status.log_lines_lost,
        })),
    }
}

fn delete_client(
    s: &Session,
    client: &str,
    authenticator: Option<AuthenticatorArg>,
) -> Result<(), Failure> {
    match authenticator {
        Some(under) => s.call(|c: &Client| c.delete_client_under(client, under.auth_type()))?,
        None => s.call(|c: &Client| c.delete_client(client))?,
    }
    log::info(format_args!("Client \"{client}\" deleted."));
    match s.format {
        OutputFormat::Json => output::json(&json!({ "client": client, "deleted": true })),
        _ => Ok(()),
    }
}

fn create_csr(s: &Session, args: &CreateCsr) -> Result<(), Failure> {
    let key = args.key_name.as_str();
    let public = s.call(|c: &Client| c.export_public_key(key))?;
    let attributes = s.call(|c: &Client| c.key_attributes(key))?;
    let algorithm = signing::x509_algorithm(key, &attributes)?;
    let spki = encoding::spki_der(attributes.key_type, attributes.bits, &public)?;
    let info = crate::csr::request_info(args, &spki)?;
    let to_sign = der::Encode::to_der(&info)
        .map_err(|e| Failure::generic(format!("cannot encode the CSR: {e}")))?;
    let digest = signing::digest(s, &to_sign, algorithm.hash)?;
    log::info(format_args!("Signing data with {:?}...", algorithm.alg));
    let signature = s.call(|c: &Client| c.sign_hash(key, algorithm.alg, &digest))?;
    let signature = if algorithm.alg.is_ecc_alg() {
        encoding::ecdsa_to_der(&signature)?
    } else {
        signature
    };
    let pem = crate::csr::finish(info, algorithm.identifier, &signature)?;
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "key_name": key,
            "signature_algorithm": algorithm.name,
            "pem": pem,
        })),
        _ => print(&pem),
    }
}

fn psa_hash(alg: HashAlg) -> Hash {
    match alg {
        HashAlg::Ripemd160 => Hash::Ripemd160,
        HashAlg::Sha224 => Hash::Sha224,
        HashAlg::Sha256 => Hash::Sha256,
        HashAlg::Sha384 => Hash::Sha384,
        HashAlg::Sha512 => Hash::Sha512,
        HashAlg::Sha512_224 => Hash::Sha512_224,
        HashAlg::Sha512_256 => Hash::Sha512_256,
        HashAlg::Sha3_224 => Hash::Sha3_224,
        HashAlg::Sha3_256 => Hash::Sha3_256,
        HashAlg::Sha3_384 => Hash::Sha3_384,
        HashAlg::Sha3_512 => Hash::Sha3_512,
    }
}

fn hash(s: &Session, alg: HashAlg, data: &[u8]) -> Result<(), Failure> {
    let hash = psa_hash(alg);
    log::info(format_args!("Hashing data with {hash:?}..."));
    let digest = s.call(|c: &Client| c.hash_compute(hash, data))?;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    match s.format {
        OutputFormat::Json => output::json(&json!({
            "algorithm": describe::hash(hash),
            "hash": hex,
        })),
        _ => print(&format!("{hex}\n")),
    }
}

fn export_key(s: &Session, key: &str) -> Result<(), Failure> {
    let data = s.call(|c: &Client| c.export_key(key)).map_err(|f| {
        if f.exit == Exit::NotPermitted {
            Failure::new(
                Exit::NotPermitted,
                format!(
                    "key {key:?} is not exportable: its policy does not allow export; create the \
                     key with --exportable (create-ecc-key, create-rsa-key)"
                ),
            )
        } else {
            f
        }
    })?;
    let text = BASE64.encode(&data[..]);
    match s.format {
        OutputFormat::Json => output::json(&json!({ "key_name": key, "data": text })),
        _ => print(&format!("{text}\n")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// The discovery commands make no call before their own; every other one finds its
    /// provider and authenticator first, as parsec-tool does.
    #[test]
    fn only_open_core_commands_go_without_identity() {
        let needs = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["bulwark"], args].concat()).unwrap();
            needs_identity(&cli.command)
        };
        for open in [
            &["ping"][..],
            &["list-providers"],
            &["list-authenticators"],
            &["list-opcodes", "-p", "1"],
        ] {
            assert!(!needs(open), "{open:?}");
        }
        for identified in [
            &["generate-random", "-n", "8"][..],
            &["hash", "--alg", "sha256"],
            &["list-keys"],
            &["list-clients"],
            &["status"],
            &["delete-key", "--key-name", "k"],
        ] {
            assert!(needs(identified), "{identified:?}");
        }
    }
}

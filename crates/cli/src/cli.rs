//! The command line: every parsec-tool subcommand and flag, plus bulwark's own.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The application name used when the service authenticates by name (Direct), as parsec-tool
/// does, so keys made by scripts with parsec-tool stay visible.
pub(crate) const DEFAULT_APP_NAME: &str = "parsec-tool";

const AFTER_LONG_HELP: &str = "\
The service is found as every Parsec client finds it: PARSEC_SERVICE_ENDPOINT \
(unix:/path/to/socket), else /run/parsec/parsec.sock. ping, list-providers, list-authenticators \
and list-opcodes are sent without identity; the other commands ask the service which \
provider and authenticator to use, as parsec-tool does (application name \"parsec-tool\" when \
it authenticates by name).

Results go to standard output, logs and errors to standard error (RUST_LOG=error or off \
silences the logs).

Output formats (--output):
  parsec  the default: exactly parsec-tool's output
  table   aligned columns with a header for the list-* commands (others as parsec)
  json    one JSON object per command; field names are stable (see README.md)

Exit status:
  0  success
  1  any other failure, or bad arguments (as parsec-tool)
  3  the service cannot be reached (not running, wrong endpoint, no answer in time)
  4  no key of that name for this application
  5  a key of that name already exists
  6  not permitted (key policy, or administrator operation)
  7  the signature or hash does not match (verify)
  8  the service refused this client's authentication
  9  not supported (key type, algorithm or size)";

/// The long help's closing text, for the tests that check every exit status is documented.
#[cfg(test)]
pub(crate) const AFTER_LONG_HELP_FOR_TESTS: &str = AFTER_LONG_HELP;

/// Talk to a Parsec-compatible security service (bulwarkd or Parsec): a superset of
/// parsec-tool.
#[derive(Debug, Parser)]
#[command(
    name = "bulwark",
    version,
    about = "Command-line interface to Parsec operations (bulwarkd or Parsec): a superset of \
             parsec-tool",
    after_long_help = AFTER_LONG_HELP)]
pub struct Cli {
    /// The ID of the provider to target for the command. Will use the default provider if not
    /// specified
    #[arg(short = 'p', long = "provider", value_name = "PROVIDER")]
    pub provider: Option<u8>,

    /// The timeout time used for all commands in seconds. Will use the client's default (60)
    /// if not specified. If set to 0, will not use any timeout and will block indefinitely
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<u32>,

    /// Output format of the results
    #[arg(
        long,
        value_enum,
        default_value_t = OutputFormat::Parsec,
        global = true,
        help_heading = "Global options"
    )]
    pub output: OutputFormat,

    /// Application name sent when the service authenticates by name (Direct)
    #[arg(
        long,
        value_name = "NAME",
        default_value = DEFAULT_APP_NAME,
        global = true,
        help_heading = "Global options"
    )]
    pub app_name: String,

    /// How to authenticate: unix (peer credentials), direct (--app-name), jwt-svid or token
    /// (both read from --token-file). By default the first authenticator the service lists
    /// that this tool can use
    #[arg(
        long,
        value_enum,
        value_name = "METHOD",
        global = true,
        help_heading = "Global options"
    )]
    pub auth: Option<AuthMethod>,

    /// A file holding the JWT-SVID or authentication token, read again whenever it changes;
    /// without --auth, offered to whichever token authenticator the service lists first
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        help_heading = "Global options"
    )]
    pub token_file: Option<PathBuf>,

    /// The subcommand
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// parsec-tool's output, byte for byte
    Parsec,
    /// Aligned columns for the list-* commands
    Table,
    /// JSON objects with stable field names
    Json,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ping the Parsec service and prints the wire protocol version
    Ping,

    /// List the available providers supported by the Parsec service
    ListProviders,

    /// List the available authenticators supported by the Parsec service
    ListAuthenticators,

    /// List the supported opcodes for a given provider
    ListOpcodes {
        /// ID of the provider
        #[arg(short = 'p', long = "provider", value_name = "PROVIDER")]
        provider: Option<u8>,
    },

    /// List all keys belonging to the application
    ListKeys {
        /// Only the keys whose names match: `*` within one path segment, `**` across segments
        /// (for example '/keys/rsa/*'); quote it so the shell does not expand it
        #[arg(long = "match", value_name = "PATTERN")]
        pattern: Option<String>,
    },

    /// Generate a sequence of random bytes
    GenerateRandom {
        /// How many bytes
        #[arg(short = 'n', long = "nbytes")]
        nbytes: usize,
    },

    /// Export the public part of the key pair in PEM format
    ExportPublicKey {
        #[command(flatten)]
        key: KeyName,
        /// Export RSA Public Key in PKCS#1 format
        #[arg(long)]
        pkcs1: bool,
    },

    /// Create a RSA key pair (2048 bits). Used by default for asymmetric encryption with RSA
    /// PKCS#1 v1.5
    CreateRsaKey {
        #[command(flatten)]
        key: KeyName,
        /// This command creates RSA encryption keys by default. Supply this flag to create a
        /// signing key instead. Signing keys, by default, will specify the SHA-256 hash
        /// algorithm and use PKCS#1 v1.5
        #[arg(short = 's', long = "for-signing")]
        for_signing: bool,
        /// Create a signing key using RSA-PSS with SHA-256 (--for-signing wins over it)
        #[arg(short = 'r', long = "for-signing-pss")]
        for_signing_pss: bool,
        /// Specifies the size (strength) of the key in bits. The default size for RSA keys is
        /// 2048 bits
        #[arg(short = 'b', long = "bits", default_value_t = 2048)]
        bits: usize,
        /// Specifies if the RSA key should be created with permitted RSA OAEP (SHA256)
        /// encryption algorithm instead of the default RSA PKCS#1 v1.5 one
        #[arg(short = 'o', long = "oaep")]
        oaep: bool,
        /// Allow the key pair to be exported (bulwark export-key)
        #[arg(long)]
        exportable: bool,
    },

    /// Create a ECC key pair (curve secp256r1). Used by default for asymmetric signing with
    /// ECDSA (SHA-256)
    CreateEccKey {
        #[command(flatten)]
        key: KeyName,
        /// Allow the private key to be exported (bulwark export-key)
        #[arg(long)]
        exportable: bool,
    },

    /// Decrypt data using the algorithm of the key
    Decrypt {
        #[command(flatten)]
        key: KeyName,
        #[command(flatten)]
        input: Input,
    },

    /// Sign data using the algorithm of the key (base64 signature)
    Sign {
        #[command(flatten)]
        key: KeyName,
        #[command(flatten)]
        input: Input,
    },

    /// Verify a base64 signature made by `sign` (exit status 7 when it does not match)
    Verify {
        #[command(flatten)]
        key: KeyName,
        /// The signature, base64 encoded (as `sign` prints it)
        #[arg(short = 's', long, value_name = "BASE64")]
        signature: String,
        #[command(flatten)]
        input: Input,
    },

    /// Delete a key
    DeleteKey {
        #[command(flatten)]
        key: KeyName,
    },

    /// Lists all clients currently having data in the service (admin operation)
    ListClients,

    /// Show what the service is doing: version, uptime, providers and their health,
    /// connections, requests, keys, audit log (admin operation, Bulwark services only)
    Status,

    /// Delete all data a client has in the service (admin operation)
    DeleteClient {
        /// The client (application) whose keys are deleted
        #[arg(short = 'c', long = "client")]
        client: String,
        /// Only its keys under this authenticator (a service running several; Bulwark
        /// services only): by default, under every authenticator
        #[arg(long = "authenticator", value_name = "AUTHENTICATOR")]
        authenticator: Option<AuthenticatorArg>,
    },

    /// Create a Certificate Signing Request (CSR) from a keypair
    ///
    /// Creates an X509 Certificate Signing Request (CSR) from a keypair, using the signing
    /// algorithm that is associated with the key.
    ///
    /// The CSR is written to the standard output in PEM format by default.
    CreateCsr(CreateCsr),

    /// Encrypt data using the algorithm of the key
    Encrypt {
        #[command(flatten)]
        key: KeyName,
        #[command(flatten)]
        input: Input,
    },

    /// Hash data with the service (hexadecimal digest)
    Hash {
        /// The hash algorithm
        #[arg(short = 'a', long = "alg", value_enum, default_value_t = HashAlg::Sha256)]
        alg: HashAlg,
        #[command(flatten)]
        input: Input,
    },

    /// Export a key's material (its policy must allow export), base64 encoded
    ExportKey {
        #[command(flatten)]
        key: KeyName,
    },

    /// Print a shell completion script (e.g. `bulwark completions bash > /etc/bash_completion.d/bulwark`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff), e.g. `bulwark man | man -l -`
    Man,
}

/// `-k/--key-name`, shared by every command on a key.
#[derive(Debug, Args)]
pub struct KeyName {
    /// The name of the key
    #[arg(short = 'k', long = "key-name")]
    pub key_name: String,
}

/// The data of sign, verify, encrypt, decrypt and hash.
#[derive(Debug, Args)]
pub struct Input {
    /// The data: text (sign, verify, encrypt, hash) or a base64 ciphertext (decrypt). `-`, or
    /// nothing when standard input is not a terminal, reads standard input
    #[arg(value_name = "INPUT-DATA", conflicts_with = "input_file")]
    pub input_data: Option<String>,

    /// Read the data from this file instead
    #[arg(long, value_name = "PATH")]
    pub input_file: Option<PathBuf>,
}

/// The arguments of `create-csr`.
#[derive(Debug, Args)]
pub struct CreateCsr {
    /// The name of the key to use for signing. This must be an existing key that is
    /// accessible to the user, and it must be a signing key (either an RSA key or an elliptic
    /// curve key).
    ///
    /// Elliptic curve keys must use the NIST P256 or P384 curves.
    #[arg(short = 'k', long = "key-name")]
    pub key_name: String,

    /// The common name to be used within the Distinguished Name (DN) specification of the CSR
    #[arg(long = "cn", value_name = "COMMON-NAME")]
    pub common_name: Option<String>,

    /// The locality name to be used within the Distinguished Name (DN) specification of the
    /// CSR
    #[arg(long = "l", value_name = "LOCALITY")]
    pub locality: Option<String>,

    /// The organization name to be used within the Distinguished Name (DN) specification of
    /// the CSR
    #[arg(long = "o", value_name = "ORGANIZATION")]
    pub organization: Option<String>,

    /// The organizational unit name to be used within the Distinguished Name (DN)
    /// specification of the CSR
    #[arg(long = "ou", value_name = "ORGANIZATIONAL-UNIT")]
    pub organizational_unit: Option<String>,

    /// The state name to be used within the Distinguished Name (DN) specification of the CSR
    #[arg(long = "st", value_name = "STATE")]
    pub state: Option<String>,

    /// The country name to be used within the Distinguished Name (DN) specification of the CSR
    #[arg(long = "c", value_name = "COUNTRY")]
    pub country: Option<String>,

    /// The serial number to be used within the Distinguished Name (DN) specification of the
    /// CSR
    #[arg(long = "serialNumber", value_name = "SERIAL-NUMBER")]
    pub serial_number: Option<String>,

    /// A Subject Alternative Name (SAN) for the domain of the CSR (repeatable; an IP address
    /// becomes an iPAddress name)
    #[arg(long = "san", value_name = "SUBJECT-ALTERNATIVE-NAME", num_args = 1..)]
    pub san: Vec<String>,
}

/// How the tool authenticates (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMethod {
    /// Unix peer credentials: this process's uid
    Unix,
    /// Direct authentication: the --app-name
    Direct,
    /// A JWT-SVID, from --token-file
    JwtSvid,
    /// An authentication token, from --token-file (also `jwt`, as delete-client names it)
    #[value(alias = "jwt")]
    Token,
}

/// An authenticator, as `delete-client --authenticator` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthenticatorArg {
    /// Unix peer credentials (names are uids)
    Unix,
    /// Direct authentication (names as the clients give them)
    Direct,
    /// JWT-SVID (names are SPIFFE IDs)
    JwtSvid,
    /// Authentication tokens
    Jwt,
}

impl AuthenticatorArg {
    /// The auth type on the wire.
    pub fn auth_type(self) -> bulwark_client::AuthType {
        use bulwark_client::AuthType;
        match self {
            AuthenticatorArg::Unix => AuthType::UnixPeerCredentials,
            AuthenticatorArg::Direct => AuthType::Direct,
            AuthenticatorArg::JwtSvid => AuthType::JwtSvid,
            AuthenticatorArg::Jwt => AuthType::Jwt,
        }
    }
}

/// The hashes `bulwark hash` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashAlg {
    /// RIPEMD-160
    Ripemd160,
    /// SHA-224
    Sha224,
    /// SHA-256
    Sha256,
    /// SHA-384
    Sha384,
    /// SHA-512
    Sha512,
    /// SHA-512/224
    #[value(name = "sha512-224")]
    Sha512_224,
    /// SHA-512/256
    #[value(name = "sha512-256")]
    Sha512_256,
    /// SHA3-224
    #[value(name = "sha3-224")]
    Sha3_224,
    /// SHA3-256
    #[value(name = "sha3-256")]
    Sha3_256,
    /// SHA3-384
    #[value(name = "sha3-384")]
    Sha3_384,
    /// SHA3-512
    #[value(name = "sha3-512")]
    Sha3_512,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_provider_and_list_opcodes_provider_are_distinct() {
        let cli =
            Cli::try_parse_from(["bulwark", "-p", "1", "list-opcodes", "-p", "0"]).expect("parses");
        assert_eq!(cli.provider, Some(1));
        assert!(matches!(
            cli.command,
            Command::ListOpcodes { provider: Some(0) }
        ));
    }
}

//! The operations table: the single list of every operation Bulwark knows.
//!
//! Each operation has one module here holding its native `Request` and `Response` types, their
//! conversions from and to the generated protobuf messages (conversion *is* validation of the
//! encoding: a `Request` that exists is well formed), the policy checks that need the key's
//! attributes (`validate`), and its tests. The table in `__operation_table!` below is the only
//! other place an operation is named: it generates the module declarations, the [`Opcode`] enum,
//! a marker type per operation implementing [`Operation`], the metadata the service uses to route
//! and police requests, and [`for_each_operation!`](crate::for_each_operation) for code that
//! needs one entry per operation.
//!
//! Adding an operation: write `proto/<module>.proto`, write `ops/<module>.rs`, add one line to the
//! table. Everything else in this crate and the service's routing (dispatch, registration,
//! `ListOpcodes`, the client's generic call) follows from it; what remains is the providers'
//! handlers and their tests (ARCHITECTURE.md, "Adding an operation").

use std::fmt;

use prost::Message;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;
use zeroize::{Zeroize, Zeroizing};

use crate::error::BodyError;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, also without authentication (auth type 0).
    Open,
    /// Only a caller with an authenticated identity.
    Identity,
    /// Only an authenticated caller listed as an administrator.
    Admin,
}

/// Which kind of provider serves an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Served by the core provider (id 0) only.
    Core,
    /// Served by crypto providers (ids 1..=5) only.
    Crypto,
}

/// A kind of provider, by the operations it serves. The table's `served by` column lists, for
/// each operation, the families that serve it, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// The core provider (id 0).
    Core,
    /// The Mbed Crypto provider (id 1).
    Mbed,
    /// The OpenSSL provider (id 1, in place of Mbed Crypto).
    OpenSsl,
    /// The PKCS #11 provider (id 2).
    Pkcs11,
    /// The TPM provider (id 3).
    Tpm,
}

impl Family {
    /// Every family, in the order the table lists them.
    pub const ALL: &'static [Family] = &[
        Family::Core,
        Family::Mbed,
        Family::OpenSsl,
        Family::Pkcs11,
        Family::Tpm,
    ];
}

/// What answering an operation costs, which decides whether the service may answer it on the
/// thread that read the request rather than hand it to its blocking pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A small answer of fixed size that waits on nothing (Ping, the core provider's
    /// descriptions of itself).
    Fixed,
    /// Computation on the request's own data, tens to hundreds of microseconds when the
    /// provider never blocks (signatures, hashes, MACs, ciphers, random bytes).
    Short,
    /// May wait on the key store, a lock or a device, or grows with what the service holds
    /// (key creation and destruction, key agreement, listings of keys and clients).
    Long,
}

/// A Parsec operation: its opcode, its native types and its protobuf messages.
///
/// Implemented only by the marker types the operations table generates.
pub trait Operation: Send + Sync + 'static {
    /// The opcode carried in the header.
    const OPCODE: Opcode;
    /// The native request, valid by construction.
    type Request: fmt::Debug
        + Send
        + TryFrom<Self::ProtoRequest, Error = BodyError>
        + TryInto<Self::ProtoRequest, Error = BodyError>;
    /// The native response.
    type Response: fmt::Debug
        + Send
        + TryFrom<Self::ProtoResponse, Error = BodyError>
        + TryInto<Self::ProtoResponse, Error = BodyError>;
    /// The protobuf `Operation` message of the operation's package.
    type ProtoRequest: Message + Default + Zeroize;
    /// The protobuf `Result` message of the operation's package.
    type ProtoResponse: Message + Default + Zeroize;
    /// The key the operation works on, from the table's key column: [`NoKey`], [`NewKey`] or
    /// [`ExistingKey`]. The service resolves it before a provider sees the request.
    type Key: KeyKind;

    /// The name of the key `request` creates or uses; `None` for operations of no key.
    fn key_name(request: &Self::Request) -> Option<&str>;

    /// The policy check an existing key must pass for `request`, against the key's recorded
    /// attributes (the operation module's `validate`). Operations of no key, key creations,
    /// and uses that need no usage flag (destruction, public export) accept every key.
    ///
    /// # Errors
    /// `NotPermitted` and the other refusals of the operation's `validate`.
    fn check_key(request: &Self::Request, attributes: Attributes) -> Result<(), PsaError> {
        let _ = (request, attributes);
        Ok(())
    }
}

/// How an operation reaches a key, as the operations table states it: [`NoKey`], [`NewKey`] or
/// [`ExistingKey`], and nothing else.
pub trait KeyKind: sealed::Sealed + 'static {}

/// The operation works on no key (ListKeys, PsaHashCompute, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoKey {}

/// The operation creates the key its request names (PsaGenerateKey, PsaImportKey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {}

/// The operation uses an existing key of the caller, named by its request, which must pass the
/// operation's [`Operation::check_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingKey {}

impl KeyKind for NoKey {}
impl KeyKind for NewKey {}
impl KeyKind for ExistingKey {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoKey {}
    impl Sealed for super::NewKey {}
    impl Sealed for super::ExistingKey {}
}

/// Decodes a request body of operation `O`.
///
/// # Errors
/// [`BodyError::Deserialize`] when the bytes are not the operation's protobuf message, or the
/// conversion error when a field holds a value its type does not allow.
pub fn decode_request<O: Operation>(body: &[u8]) -> Result<O::Request, BodyError> {
    let proto = O::ProtoRequest::decode(body).map_err(|_| BodyError::Deserialize)?;
    O::Request::try_from(proto)
}

/// Encodes a request of operation `O` into a body.
///
/// # Errors
/// [`BodyError::Serialize`] when a native value has no wire form.
pub fn encode_request<O: Operation>(request: O::Request) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    encode_message(request.try_into()?)
}

/// Decodes a response body of operation `O`.
///
/// # Errors
/// As [`decode_request`].
pub fn decode_response<O: Operation>(body: &[u8]) -> Result<O::Response, BodyError> {
    let proto = O::ProtoResponse::decode(body).map_err(|_| BodyError::Deserialize)?;
    O::Response::try_from(proto)
}

/// Encodes a response of operation `O` into a body.
///
/// # Errors
/// [`BodyError::Serialize`] when a native value has no wire form.
pub fn encode_response<O: Operation>(
    response: O::Response,
) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    encode_message(response.try_into()?)
}

/// Decodes a request body of the operation `opcode` names and encodes it again.
///
/// Used where the operation is only known at run time: the golden-vector tests, the fuzzers,
/// and checks that a body is well formed for an operation no provider serves.
///
/// # Errors
/// As [`decode_request`] and [`encode_request`].
pub fn reencode_request(opcode: Opcode, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    macro_rules! arm {
        ($op:ty) => {
            if opcode == <$op as Operation>::OPCODE {
                return encode_request::<$op>(decode_request::<$op>(body)?);
            }
        };
    }
    crate::for_each_operation!(arm);
    Err(BodyError::OpcodeDoesNotExist(opcode.value()))
}

/// Decodes a response body of the operation `opcode` names and encodes it again.
///
/// # Errors
/// As [`decode_response`] and [`encode_response`].
pub fn reencode_response(opcode: Opcode, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    macro_rules! arm {
        ($op:ty) => {
            if opcode == <$op as Operation>::OPCODE {
                return encode_response::<$op>(decode_response::<$op>(body)?);
            }
        };
    }
    crate::for_each_operation!(arm);
    Err(BodyError::OpcodeDoesNotExist(opcode.value()))
}

/// Encodes a message and wipes the message's own copy of any secret it held.
fn encode_message<M: Message + Zeroize>(mut message: M) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    let bytes = Zeroizing::new(message.encode_to_vec());
    message.zeroize();
    Ok(bytes)
}

/// The operations table: one line per operation. This is the only list of operations in the
/// workspace; everything that differs between operations and is not behaviour of their own
/// module is a column here.
///
/// - opcode `=>` marker type, module (`ops::<module>`, `proto::<module>`, `proto/<module>.proto`);
/// - served by: the [`Family`]s of providers that serve it, in the order of [`Family::ALL`];
///   `[Core]` alone makes it a core operation ([`Target::Core`]);
/// - access: who may call it ([`Access`]);
/// - cost: whether it may be answered on the thread that read it ([`Cost`]);
/// - `listed` or `unlisted`: whether ListOpcodes names it when a provider serves it
///   ([`Opcode::is_listed`]);
/// - key: `none()`, `new(field)` (the request's `field` names a key to create), or
///   `uses(field)` / `uses(field, check)` (the request's `field`, or `field()`, names an
///   existing key of the caller, which must pass the request's method `check` against its
///   attributes).
#[doc(hidden)]
#[macro_export]
macro_rules! __operation_table {
    ($m:ident ($($args:tt)*)) => {
        $crate::$m! { ($($args)*)
            // Opcode     Marker, module, served by, access, cost, ListOpcodes, key.
            0x0001 => Ping, ping, [Core], Open, Fixed, listed, none();
            0x0002 => PsaGenerateKey, psa_generate_key, [Mbed OpenSsl Pkcs11 Tpm], Identity, Long, listed, new(key_name);
            0x0003 => PsaDestroyKey, psa_destroy_key, [Mbed OpenSsl Pkcs11 Tpm], Identity, Long, listed, uses(key_name);
            0x0004 => PsaSignHash, psa_sign_hash, [Mbed OpenSsl Pkcs11 Tpm], Identity, Short, listed, uses(key_name, validate);
            0x0005 => PsaVerifyHash, psa_verify_hash, [Mbed OpenSsl Pkcs11 Tpm], Identity, Short, listed, uses(key_name, validate);
            0x0006 => PsaImportKey, psa_import_key, [Mbed OpenSsl Pkcs11 Tpm], Identity, Long, listed, new(key_name);
            0x0007 => PsaExportPublicKey, psa_export_public_key, [Mbed OpenSsl Pkcs11 Tpm], Identity, Short, listed, uses(key_name);
            0x0008 => ListProviders, list_providers, [Core], Open, Fixed, listed, none();
            0x0009 => ListOpcodes, list_opcodes, [Core], Open, Fixed, listed, none();
            0x000A => PsaAsymmetricEncrypt, psa_asymmetric_encrypt, [Mbed OpenSsl Pkcs11 Tpm], Identity, Long, listed, uses(key_name, validate);
            0x000B => PsaAsymmetricDecrypt, psa_asymmetric_decrypt, [Mbed OpenSsl Pkcs11 Tpm], Identity, Long, listed, uses(key_name, validate);
            0x000C => PsaExportKey, psa_export_key, [Mbed OpenSsl], Identity, Long, listed, uses(key_name, validate);
            0x000D => PsaGenerateRandom, psa_generate_random, [Mbed OpenSsl Pkcs11 Tpm], Open, Short, listed, none();
            0x000E => ListAuthenticators, list_authenticators, [Core], Open, Fixed, listed, none();
            0x000F => PsaHashCompute, psa_hash_compute, [Mbed OpenSsl], Open, Short, listed, none();
            0x0010 => PsaHashCompare, psa_hash_compare, [Mbed OpenSsl], Open, Short, listed, none();
            0x0011 => PsaAeadEncrypt, psa_aead_encrypt, [Mbed OpenSsl], Identity, Short, listed, uses(key_name, validate);
            0x0012 => PsaAeadDecrypt, psa_aead_decrypt, [Mbed OpenSsl], Identity, Short, listed, uses(key_name, validate);
            0x0013 => PsaRawKeyAgreement, psa_raw_key_agreement, [Mbed OpenSsl], Identity, Long, listed, uses(private_key_name, validate);
            0x0014 => PsaCipherEncrypt, psa_cipher_encrypt, [Mbed OpenSsl], Identity, Short, listed, uses(key_name, validate);
            0x0015 => PsaCipherDecrypt, psa_cipher_decrypt, [Mbed OpenSsl], Identity, Short, listed, uses(key_name, validate);
            // Not listed: upstream clients fail to decode a ListOpcodes answer holding an
            // opcode they do not know, and they know neither of the MAC operations.
            0x0016 => PsaMacCompute, psa_mac_compute, [Mbed OpenSsl], Identity, Short, unlisted, uses(key_name, validate);
            0x0017 => PsaMacVerify, psa_mac_verify, [Mbed OpenSsl], Identity, Short, unlisted, uses(key_name, validate);
            0x0018 => PsaSignMessage, psa_sign_message, [Mbed OpenSsl], Identity, Short, listed, uses(key_name, validate);
            0x0019 => PsaVerifyMessage, psa_verify_message, [Mbed OpenSsl], Identity, Short, listed, uses(key_name, validate);
            0x001A => ListKeys, list_keys, [Core], Identity, Long, listed, none();
            // The administrative operations are not listed either: the reference service does
            // not name them, and clients find them by being administrators.
            0x001B => ListClients, list_clients, [Core], Admin, Long, unlisted, none();
            0x001C => DeleteClient, delete_client, [Core], Admin, Long, unlisted, none();
            0x001E => AttestKey, attest_key, [Tpm], Identity, Long, listed, uses(attested_key_name);
            0x001F => PrepareKeyAttestation, prepare_key_attestation, [Tpm], Identity, Long, listed, uses(attested_key_name());
            0x0020 => CanDoCrypto, can_do_crypto, [Mbed OpenSsl Pkcs11 Tpm], Identity, Long, listed, none();
            // Bulwark's own operations. Upstream assigns 0x0001..=0x0020 and its API overview
            // groups operations in low decimal ranges (PSA ones in 1000..=1999); values with the
            // top bit set are outside every range it lays out, so no future upstream opcode can
            // collide, and upstream services answer them OpcodeDoesNotExist.
            0x8000_0001 => BulwarkStatus, bulwark_status, [Core], Admin, Long, unlisted, none();
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __define_operations {
    (() $($value:literal => $marker:ident, $module:ident, $served:tt, $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;)*) => {
        $(pub mod $module;)*

        /// Every opcode of the wire protocol (docs/protocol.md#opcodes), with its wire value.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Opcode {
            $(#[doc = concat!("Opcode of [`", stringify!($marker), "`].")] $marker = $value,)*
        }

        impl Opcode {
            /// Every opcode, in wire-value order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$marker,)*];

            /// The value carried on the wire.
            pub const fn value(self) -> u32 {
                self as u32
            }

            /// The operation's name, as the upstream interface spells it.
            pub const fn name(self) -> &'static str {
                match self { $(Opcode::$marker => stringify!($marker),)* }
            }

            /// Which kind of provider serves the operation.
            pub const fn target(self) -> Target {
                match self { $(Opcode::$marker => $crate::__target!($served),)* }
            }

            /// The families of providers that serve the operation, in the order of
            /// [`Family::ALL`].
            pub const fn families(self) -> &'static [Family] {
                match self { $(Opcode::$marker => $crate::__families!($served),)* }
            }

            /// Whether providers of `family` serve the operation.
            pub fn is_served_by(self, family: Family) -> bool {
                self.families().contains(&family)
            }

            /// What answering the operation costs.
            pub const fn cost(self) -> Cost {
                match self { $(Opcode::$marker => Cost::$cost,)* }
            }

            /// Who may call the operation.
            pub const fn access(self) -> Access {
                match self { $(Opcode::$marker => Access::$access,)* }
            }

            /// Whether the operation goes to the core provider (id 0).
            pub const fn is_core(self) -> bool {
                matches!(self.target(), Target::Core)
            }

            /// Whether ListOpcodes names the operation when a provider serves it.
            ///
            /// Two kinds are served but not named (the table says why): the MAC operations,
            /// which upstream clients do not know, and the administrative ones.
            pub const fn is_listed(self) -> bool {
                match self { $(Opcode::$marker => $crate::__listed!($listed),)* }
            }

            /// Whether the operation is reserved to administrators.
            pub const fn is_admin(self) -> bool {
                matches!(self.access(), Access::Admin)
            }

            /// Whether the operation uses an existing key that must pass a policy check
            /// ([`Operation::check_key`]): the table's key column reads `uses(field, check)`.
            pub const fn checks_key_policy(self) -> bool {
                match self { $(Opcode::$marker => $crate::__checks_policy!($key $keyargs),)* }
            }
        }

        impl TryFrom<u32> for Opcode {
            type Error = u32;
            /// Fails with the value itself when no operation has it.
            fn try_from(value: u32) -> Result<Self, u32> {
                match value {
                    $($value => Ok(Opcode::$marker),)*
                    other => Err(other),
                }
            }
        }

        $(
            #[doc = concat!("The `", stringify!($marker), "` operation; types in [`", stringify!($module), "`].")]
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct $marker;

            impl Operation for $marker {
                const OPCODE: Opcode = Opcode::$marker;
                type Request = $module::Request;
                type Response = $module::Response;
                type ProtoRequest = $crate::proto::$module::Operation;
                type ProtoResponse = $crate::proto::$module::Result;
                $crate::__key_column!($key $keyargs);
            }
        )*

    };
}

/// The table's `served by` column as a [`Target`].
#[doc(hidden)]
#[macro_export]
macro_rules! __target {
    ([Core]) => {
        $crate::ops::Target::Core
    };
    ([$($family:ident)*]) => {
        $crate::ops::Target::Crypto
    };
}

/// The table's `served by` column as a slice of [`Family`].
#[doc(hidden)]
#[macro_export]
macro_rules! __families {
    ([$($family:ident)*]) => {
        &[$($crate::ops::Family::$family),*]
    };
}

/// The table's ListOpcodes column as a `bool`.
#[doc(hidden)]
#[macro_export]
macro_rules! __listed {
    (listed) => {
        true
    };
    (unlisted) => {
        false
    };
}

/// Whether the table's key column names a policy check, as a `bool`.
#[doc(hidden)]
#[macro_export]
macro_rules! __checks_policy {
    (uses ($field:ident, $check:ident)) => {
        true
    };
    ($key:ident $keyargs:tt) => {
        false
    };
}

/// Generates one protobuf module per operation in [`crate::proto`], from `proto/<module>.proto`.
#[doc(hidden)]
#[macro_export]
macro_rules! __proto_modules {
    (() $($value:literal => $marker:ident, $module:ident, $served:tt, $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;)*) => {
        $(
            #[doc = concat!("The messages of ", stringify!($marker), " (`proto/", stringify!($module), ".proto`).")]
            pub mod $module {
                include!(concat!(env!("OUT_DIR"), "/", stringify!($module), ".rs"));
            }
        )*
    };
}

/// Picks the rows of the operations table that providers of one [`Family`] serve, one row at a
/// time, and hands their marker types to the visitor (see [`operations_served_by!`]).
///
/// The `served by` column lists families in the order of [`Family::ALL`], which is what lets
/// each family's rule match it with a fixed pattern.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_served {
    ((($family:ident $visit:ident { $($args:tt)* }) [$($selected:tt)*])) => {
        $visit! { $($args)* $($selected)* }
    };
    (((Core $visit:ident $args:tt) [$($selected:tt)*])
        $value:literal => $marker:ident, $module:ident, [Core], $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;
        $($rest:tt)*) => {
        $crate::__select_served! { ((Core $visit $args) [$($selected)* $crate::ops::$marker,]) $($rest)* }
    };
    (((Mbed $visit:ident $args:tt) [$($selected:tt)*])
        $value:literal => $marker:ident, $module:ident, [Mbed $($other:ident)*], $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;
        $($rest:tt)*) => {
        $crate::__select_served! { ((Mbed $visit $args) [$($selected)* $crate::ops::$marker,]) $($rest)* }
    };
    (((OpenSsl $visit:ident $args:tt) [$($selected:tt)*])
        $value:literal => $marker:ident, $module:ident, [$(Mbed)? OpenSsl $($other:ident)*], $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;
        $($rest:tt)*) => {
        $crate::__select_served! { ((OpenSsl $visit $args) [$($selected)* $crate::ops::$marker,]) $($rest)* }
    };
    (((Pkcs11 $visit:ident $args:tt) [$($selected:tt)*])
        $value:literal => $marker:ident, $module:ident, [$(Mbed)? $(OpenSsl)? Pkcs11 $($other:ident)*], $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;
        $($rest:tt)*) => {
        $crate::__select_served! { ((Pkcs11 $visit $args) [$($selected)* $crate::ops::$marker,]) $($rest)* }
    };
    (((Tpm $visit:ident $args:tt) [$($selected:tt)*])
        $value:literal => $marker:ident, $module:ident, [$(Mbed)? $(OpenSsl)? $(Pkcs11)? Tpm], $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;
        $($rest:tt)*) => {
        $crate::__select_served! { ((Tpm $visit $args) [$($selected)* $crate::ops::$marker,]) $($rest)* }
    };
    (($chosen:tt [$($selected:tt)*])
        $value:literal => $marker:ident, $module:ident, $served:tt, $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;
        $($rest:tt)*) => {
        $crate::__select_served! { ($chosen [$($selected)*]) $($rest)* }
    };
}

/// Invokes the macro `$visit` once with the marker types of every operation that providers of
/// a [`Family`](crate::ops::Family) serve, after the arguments given:
/// `operations_served_by!(Tpm => visit! { args })` expands to
/// `visit! { args bulwark_interface::ops::PsaGenerateKey, ..., bulwark_interface::ops::AttestKey, }`,
/// in table order. The service builds each provider family's trait and registration from it.
#[macro_export]
macro_rules! operations_served_by {
    ($family:ident => $visit:ident! { $($args:tt)* }) => {
        $crate::__operation_table! { __select_served(($family $visit { $($args)* }) []) }
    };
}

/// The items of [`Operation`] that the table's key column gives.
#[doc(hidden)]
#[macro_export]
macro_rules! __key_column {
    (none ()) => {
        type Key = $crate::ops::NoKey;
        fn key_name(_: &Self::Request) -> Option<&str> {
            None
        }
    };
    (new ($field:ident)) => {
        type Key = $crate::ops::NewKey;
        fn key_name(request: &Self::Request) -> Option<&str> {
            Some(request.$field.as_str())
        }
    };
    (uses ($field:ident)) => {
        type Key = $crate::ops::ExistingKey;
        fn key_name(request: &Self::Request) -> Option<&str> {
            Some(request.$field.as_str())
        }
    };
    (uses ($method:ident ())) => {
        type Key = $crate::ops::ExistingKey;
        fn key_name(request: &Self::Request) -> Option<&str> {
            Some(request.$method())
        }
    };
    (uses ($field:ident, $check:ident)) => {
        type Key = $crate::ops::ExistingKey;
        fn key_name(request: &Self::Request) -> Option<&str> {
            Some(request.$field.as_str())
        }
        fn check_key(
            request: &Self::Request,
            attributes: ::psa_crypto::types::key::Attributes,
        ) -> Result<(), ::psa_crypto::types::status::Error> {
            request.$check(attributes)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __each_operation {
    (($visit:ident) $($value:literal => $marker:ident, $module:ident, $served:tt, $access:ident, $cost:ident, $listed:ident, $key:ident $keyargs:tt;)*) => {
        $($visit!($crate::ops::$marker);)*
    };
}

/// Invokes the macro `$visit` once per operation with the operation's marker type, e.g.
/// `visit!(bulwark_interface::ops::PsaSignHash)`; used to build per-operation tables.
#[macro_export]
macro_rules! for_each_operation {
    ($visit:ident) => {
        $crate::__operation_table!(__each_operation($visit))
    };
}

__operation_table!(__define_operations());

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Opcode {
    /// The value the protocol's next operation would take: one past the table's highest opcode
    /// outside Bulwark's own range (values with the top bit set). No operation has it, so it is
    /// the unknown opcode that tests and probes send; it moves along when that operation joins
    /// the table.
    pub fn next_unassigned() -> u32 {
        Opcode::ALL
            .iter()
            .map(|op| op.value())
            .filter(|value| value & 0x8000_0000 == 0)
            .max()
            .unwrap_or(0)
            + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_values_match_the_wire_table() {
        assert_eq!(Opcode::ALL.len(), 32);
        for op in Opcode::ALL {
            assert_eq!(Opcode::try_from(op.value()), Ok(*op));
        }
        for missing in [0u32, 0x1D, Opcode::next_unassigned(), 0x7777, u32::MAX] {
            assert_eq!(Opcode::try_from(missing), Err(missing));
        }
        assert_eq!(Opcode::PsaMacCompute.value(), 0x16);
        assert_eq!(Opcode::PsaMacVerify.value(), 0x17);
    }

    #[test]
    fn listed_operations_leave_out_mac_and_admin_ones() {
        let unlisted: Vec<_> = Opcode::ALL
            .iter()
            .filter(|o| !o.is_listed())
            .map(|o| o.value())
            .collect();
        assert_eq!(unlisted, vec![0x16, 0x17, 0x1B, 0x1C, 0x8000_0001]);
        let core: Vec<_> = Opcode::ALL
            .iter()
            .filter(|o| o.is_core() && o.is_listed())
            .map(|o| o.value())
            .collect();
        assert_eq!(
            core,
            vec![1, 8, 9, 14, 26],
            "core's ListOpcodes answer, as upstream"
        );
    }

    #[test]
    fn core_operations_are_the_seven_of_the_spec_and_bulwark_status() {
        let core: Vec<_> = Opcode::ALL
            .iter()
            .filter(|o| o.is_core())
            .map(|o| o.value())
            .collect();
        assert_eq!(core, vec![1, 8, 9, 14, 26, 27, 28, 0x8000_0001]);
    }

    #[test]
    fn administrative_operations_are_never_listed() {
        for op in Opcode::ALL.iter().filter(|o| o.is_admin()) {
            assert!(!op.is_listed(), "{op}");
        }
    }

    #[test]
    fn served_by_lists_families_in_order_and_core_alone() {
        for op in Opcode::ALL {
            let families = op.families();
            assert!(!families.is_empty(), "{op}: served by no one");
            assert!(
                families.windows(2).all(|pair| pair[0] < pair[1]),
                "{op}: families out of the order of Family::ALL"
            );
            assert_eq!(
                op.is_core(),
                families.contains(&Family::Core),
                "{op}: target and families disagree"
            );
            if op.is_core() {
                assert_eq!(
                    families,
                    [Family::Core],
                    "{op}: the core provider serves it alone"
                );
            }
        }
    }

    /// What each provider family serves, as docs/protocol.md#operations-per-provider says.
    #[test]
    fn families_serve_the_operations_of_the_spec() {
        let served = |family| -> Vec<u32> {
            Opcode::ALL
                .iter()
                .filter(|o| o.is_served_by(family))
                .map(|o| o.value())
                .collect()
        };
        assert_eq!(
            served(Family::Core),
            vec![1, 8, 9, 14, 26, 27, 28, 0x8000_0001]
        );
        // The software providers: every crypto operation but key attestation.
        let software: Vec<u32> = (2..=0x19)
            .chain([0x20])
            .filter(|v| ![8, 9, 14].contains(v))
            .collect();
        assert_eq!(served(Family::Mbed), software);
        assert_eq!(served(Family::OpenSsl), software);
        assert_eq!(
            served(Family::Pkcs11),
            vec![2, 3, 4, 5, 6, 7, 10, 11, 13, 0x20]
        );
        assert_eq!(
            served(Family::Tpm),
            vec![2, 3, 4, 5, 6, 7, 10, 11, 13, 0x1E, 0x1F, 0x20]
        );
    }

    /// The selection macro reads the same column as [`Opcode::families`].
    #[test]
    fn operations_served_by_agrees_with_the_column() {
        macro_rules! opcodes {
            ($($op:path,)*) => {
                vec![$(<$op as Operation>::OPCODE),*]
            };
        }
        for (family, selected) in [
            (
                Family::Core,
                crate::operations_served_by!(Core => opcodes! {}),
            ),
            (
                Family::Mbed,
                crate::operations_served_by!(Mbed => opcodes! {}),
            ),
            (
                Family::OpenSsl,
                crate::operations_served_by!(OpenSsl => opcodes! {}),
            ),
            (
                Family::Pkcs11,
                crate::operations_served_by!(Pkcs11 => opcodes! {}),
            ),
            (
                Family::Tpm,
                crate::operations_served_by!(Tpm => opcodes! {}),
            ),
        ] {
            let column: Vec<Opcode> = Opcode::ALL
                .iter()
                .copied()
                .filter(|o| o.is_served_by(family))
                .collect();
            assert_eq!(selected, column, "{family:?}");
        }
    }

    #[test]
    fn only_core_descriptions_are_fixed_and_only_crypto_operations_short() {
        let of = |cost| -> Vec<u32> {
            Opcode::ALL
                .iter()
                .filter(|o| o.cost() == cost)
                .map(|o| o.value())
                .collect()
        };
        assert_eq!(of(Cost::Fixed), vec![1, 8, 9, 14]);
        assert_eq!(
            of(Cost::Short),
            vec![4, 5, 7, 13, 15, 16, 0x11, 0x12, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19]
        );
        for op in Opcode::ALL {
            match op.cost() {
                Cost::Fixed => assert!(op.is_core() && op.access() == Access::Open, "{op}"),
                Cost::Short => assert!(!op.is_core(), "{op}"),
                Cost::Long => {}
            }
        }
    }

    /// The operations that use a key under a usage flag: every key use but destruction,
    /// public export and the attestation ones, which need no flag.
    #[test]
    fn policy_checked_key_uses_are_those_of_a_usage_flag() {
        let checked: Vec<u32> = Opcode::ALL
            .iter()
            .filter(|o| o.checks_key_policy())
            .map(|o| o.value())
            .collect();
        assert_eq!(
            checked,
            vec![4, 5, 0xA, 0xB, 0xC, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19]
        );
    }

    #[test]
    fn identity_rules_follow_the_spec() {
        let open: Vec<_> = Opcode::ALL
            .iter()
            .filter(|o| o.access() == Access::Open)
            .map(|o| o.value())
            .collect();
        assert_eq!(open, vec![1, 8, 9, 13, 14, 15, 16]);
        assert!(Opcode::ListClients.is_admin() && Opcode::DeleteClient.is_admin());
        assert_eq!(Opcode::ListKeys.access(), Access::Identity);
    }
}

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
//! table. Everything else (dispatch, `ListOpcodes`, the client's generic call) follows from it.

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

/// The operations table: one line per operation — opcode, marker type, module, which kind of
/// provider serves it, who may call it, and the key it works on. This is the only list of
/// operations in the workspace.
///
/// The key column is `none()`, `new(field)` (the request's `field` names a key to create), or
/// `uses(field)` / `uses(field, check)` (the request's `field`, or `field()`, names an existing
/// key of the caller, which must pass the request's method `check` against its attributes).
#[doc(hidden)]
#[macro_export]
macro_rules! __operation_table {
    ($m:ident ($($args:tt)*)) => {
        $crate::$m! { ($($args)*)
            0x0001 => Ping, ping, Core, Open, none();
            0x0002 => PsaGenerateKey, psa_generate_key, Crypto, Identity, new(key_name);
            0x0003 => PsaDestroyKey, psa_destroy_key, Crypto, Identity, uses(key_name);
            0x0004 => PsaSignHash, psa_sign_hash, Crypto, Identity, uses(key_name, validate);
            0x0005 => PsaVerifyHash, psa_verify_hash, Crypto, Identity, uses(key_name, validate);
            0x0006 => PsaImportKey, psa_import_key, Crypto, Identity, new(key_name);
            0x0007 => PsaExportPublicKey, psa_export_public_key, Crypto, Identity, uses(key_name);
            0x0008 => ListProviders, list_providers, Core, Open, none();
            0x0009 => ListOpcodes, list_opcodes, Core, Open, none();
            0x000A => PsaAsymmetricEncrypt, psa_asymmetric_encrypt, Crypto, Identity, uses(key_name, validate);
            0x000B => PsaAsymmetricDecrypt, psa_asymmetric_decrypt, Crypto, Identity, uses(key_name, validate);
            0x000C => PsaExportKey, psa_export_key, Crypto, Identity, uses(key_name, validate);
            0x000D => PsaGenerateRandom, psa_generate_random, Crypto, Open, none();
            0x000E => ListAuthenticators, list_authenticators, Core, Open, none();
            0x000F => PsaHashCompute, psa_hash_compute, Crypto, Open, none();
            0x0010 => PsaHashCompare, psa_hash_compare, Crypto, Open, none();
            0x0011 => PsaAeadEncrypt, psa_aead_encrypt, Crypto, Identity, uses(key_name, validate);
            0x0012 => PsaAeadDecrypt, psa_aead_decrypt, Crypto, Identity, uses(key_name, validate);
            0x0013 => PsaRawKeyAgreement, psa_raw_key_agreement, Crypto, Identity, uses(private_key_name, validate);
            0x0014 => PsaCipherEncrypt, psa_cipher_encrypt, Crypto, Identity, uses(key_name, validate);
            0x0015 => PsaCipherDecrypt, psa_cipher_decrypt, Crypto, Identity, uses(key_name, validate);
            0x0016 => PsaMacCompute, psa_mac_compute, Crypto, Identity, uses(key_name, validate);
            0x0017 => PsaMacVerify, psa_mac_verify, Crypto, Identity, uses(key_name, validate);
            0x0018 => PsaSignMessage, psa_sign_message, Crypto, Identity, uses(key_name, validate);
            0x0019 => PsaVerifyMessage, psa_verify_message, Crypto, Identity, uses(key_name, validate);
            0x001A => ListKeys, list_keys, Core, Identity, none();
            0x001B => ListClients, list_clients, Core, Admin, none();
            0x001C => DeleteClient, delete_client, Core, Admin, none();
            0x001E => AttestKey, attest_key, Crypto, Identity, uses(attested_key_name);
            0x001F => PrepareKeyAttestation, prepare_key_attestation, Crypto, Identity, uses(attested_key_name());
            0x0020 => CanDoCrypto, can_do_crypto, Crypto, Identity, none();
            // Bulwark's own operations. Upstream assigns 0x0001..=0x0020 and its API overview
            // groups operations in low decimal ranges (PSA ones in 1000..=1999); values with the
            // top bit set are outside every range it lays out, so no future upstream opcode can
            // collide, and upstream services answer them OpcodeDoesNotExist.
            0x8000_0001 => BulwarkStatus, bulwark_status, Core, Admin, none();
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __define_operations {
    (() $($value:literal => $marker:ident, $module:ident, $target:ident, $access:ident, $key:ident $keyargs:tt;)*) => {
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
                match self { $(Opcode::$marker => Target::$target,)* }
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
            /// Two kinds are served but not named. The MAC operations: upstream clients fail to
            /// decode a ListOpcodes answer holding an opcode they do not know, and they know
            /// neither of these. The administrative operations: the reference service does not
            /// name them either, and clients find them by being administrators.
            pub const fn is_listed(self) -> bool {
                !matches!(self, Opcode::PsaMacCompute | Opcode::PsaMacVerify)
                    && !matches!(self.access(), Access::Admin)
            }

            /// Whether the operation is reserved to administrators.
            pub const fn is_admin(self) -> bool {
                matches!(self.access(), Access::Admin)
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
    (($visit:ident) $($value:literal => $marker:ident, $module:ident, $target:ident, $access:ident, $key:ident $keyargs:tt;)*) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_values_match_the_wire_table() {
        assert_eq!(Opcode::ALL.len(), 32);
        for op in Opcode::ALL {
            assert_eq!(Opcode::try_from(op.value()), Ok(*op));
        }
        for missing in [0u32, 0x1D, 0x21, 0x7777, u32::MAX] {
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

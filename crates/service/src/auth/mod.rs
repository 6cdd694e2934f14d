//! Authenticators: turning a request's auth bytes and the socket peer into an [`Identity`].
//!
//! One or several authenticators are active, at most one per auth type, in configuration order
//! ([`Authenticators`]; docs/protocol.md#authentication). A request with auth type 0 carries no
//! identity; a request is authenticated by the authenticator of its auth type, and refused
//! whatever its opcode, before anything else is looked at, when none is configured for it.
//! An identity remembers which authenticator vouched for it, and only that authenticator's
//! administrators are administrators.
//!
//! The token authenticators (JWT-SVID, auth type 4; authentication tokens, auth type 2) are in
//! [`token`], with the keys they trust ([`keys`]) and their cache of validated tokens
//! ([`cache`]); JWT bundles from the SPIFFE Workload API are followed by `workload`.

pub mod cache;
pub mod keys;
pub mod setup;
pub mod token;
#[cfg(feature = "workload-api")]
pub mod workload;

use std::collections::HashSet;
use std::sync::Arc;

use bulwark_interface::ids::AuthType;

use crate::error::AuthError;
use token::{TokenKind, TokenValidator};

/// The caller's process, as the kernel reports it for the socket (SO_PEERCRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Process id, when known.
    pub pid: Option<i32>,
}

/// An authenticated application.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Application name, in the form the authenticator produces (a decimal uid for Unix peer
    /// credentials, the name itself for Direct).
    pub name: String,
    /// The authenticator that vouched for the name; part of every key's identity, so the same
    /// name under two authenticators owns two distinct sets of keys.
    pub auth_type: AuthType,
    /// Whether the name is listed in `[[authenticator]] admins`.
    pub is_admin: bool,
}

/// Which authenticator the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The auth bytes are the application name. Only safe among mutually trusted clients.
    Direct,
    /// The auth bytes are the caller's uid, which must match the socket peer's.
    UnixPeerCredentials,
    /// The auth bytes are a token signed by a configured issuer (authentication tokens).
    Jwt,
    /// The auth bytes are a JWT-SVID, checked against its trust domain's bundle.
    JwtSvid,
}

impl Method {
    /// The auth type this method answers to.
    pub fn auth_type(self) -> AuthType {
        match self {
            Method::Direct => AuthType::Direct,
            Method::UnixPeerCredentials => AuthType::UnixPeerCredentials,
            Method::Jwt => AuthType::Jwt,
            Method::JwtSvid => AuthType::JwtSvid,
        }
    }

    /// What ListAuthenticators says about this method.
    pub fn description(self) -> &'static str {
        match self {
            Method::Direct => {
                "Direct authentication: the application name is taken from the request as \
                 given. Only for clients that trust each other."
            }
            Method::UnixPeerCredentials => {
                "Unix peer credentials: the uid a client declares is checked against the \
                 uid the kernel reports for its socket."
            }
            Method::Jwt => {
                "Authentication tokens: a JWT signed by a configured identity provider, \
                 checked against its public keys, audience and validity period."
            }
            Method::JwtSvid => {
                "JWT-SVID: a JWT SPIFFE Verifiable Identity Document, checked against the \
                 JWT bundle of its trust domain."
            }
        }
    }
}

/// The active authenticator and the administrators' names.
#[derive(Debug, Clone)]
pub struct Authenticator {
    method: Method,
    admins: HashSet<String>,
    /// The validator of a token method ([`Method::Jwt`], [`Method::JwtSvid`]).
    tokens: Option<Arc<TokenValidator>>,
}

impl Authenticator {
    /// An authenticator with the given administrators. A token method built this way has no
    /// validator and refuses every token: use [`Authenticator::with_tokens`].
    pub fn new(method: Method, admins: impl IntoIterator<Item = String>) -> Self {
        Authenticator {
            method,
            admins: admins.into_iter().collect(),
            tokens: None,
        }
    }

    /// A token authenticator (its method follows from the validator's kind).
    pub fn with_tokens(
        validator: Arc<TokenValidator>,
        admins: impl IntoIterator<Item = String>,
    ) -> Self {
        let method = match validator.kind() {
            TokenKind::JwtSvid => Method::JwtSvid,
            TokenKind::Issued => Method::Jwt,
        };
        Authenticator {
            method,
            admins: admins.into_iter().collect(),
            tokens: Some(validator),
        }
    }

    /// The token validator, for a token method.
    pub fn tokens(&self) -> Option<&Arc<TokenValidator>> {
        self.tokens.as_ref()
    }

    /// The active method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Authenticates one request.
    ///
    /// Returns `Ok(None)` for auth type 0 (no identity, whatever bytes were sent).
    ///
    /// # Errors
    /// [`AuthError::NotRegistered`] when the auth type is not the active one;
    /// [`AuthError::Rejected`] when the credentials do not hold.
    pub fn authenticate(
        &self,
        auth_type: AuthType,
        auth: &[u8],
        peer: Option<&PeerCredentials>,
    ) -> Result<Option<Identity>, AuthError> {
        if auth_type == AuthType::NoAuth {
            return Ok(None);
        }
        if auth_type != self.method.auth_type() {
            return Err(AuthError::NotRegistered);
        }
        let name = match self.method {
            Method::Direct => {
                if auth.is_empty() {
                    return Err(AuthError::Rejected("empty application name"));
                }
                std::str::from_utf8(auth)
                    .map_err(|_| AuthError::Rejected("application name is not UTF-8"))?
                    .to_owned()
            }
            Method::UnixPeerCredentials => {
                let declared: [u8; 4] = auth
                    .try_into()
                    .map_err(|_| AuthError::Rejected("uid must be exactly 4 bytes"))?;
                let declared = u32::from_le_bytes(declared);
                let peer = peer.ok_or(AuthError::Rejected("no peer credentials"))?;
                if declared != peer.uid {
                    return Err(AuthError::Rejected("declared uid is not the peer's uid"));
                }
                declared.to_string()
            }
            Method::Jwt | Method::JwtSvid => {
                let token = std::str::from_utf8(auth).map_err(|_| AuthError::InvalidEncoding)?;
                self.tokens
                    .as_ref()
                    .ok_or(AuthError::Rejected("no trusted keys"))?
                    .validate(token)?
            }
        };
        let is_admin = self.admins.contains(&name);
        Ok(Some(Identity {
            name,
            auth_type,
            is_admin,
        }))
    }
}

/// The configured authenticators, in configuration order, at most one per auth type.
#[derive(Debug, Clone)]
pub struct Authenticators(Vec<Authenticator>);

impl Authenticators {
    /// The authenticators of `list`, in that order.
    ///
    /// # Errors
    /// The auth type of the second authenticator of the same type (configuration validation
    /// refuses such files first), or `None` for an empty list.
    pub fn new(list: Vec<Authenticator>) -> Result<Self, Option<AuthType>> {
        if list.is_empty() {
            return Err(None);
        }
        for (i, authenticator) in list.iter().enumerate() {
            let auth_type = authenticator.method.auth_type();
            if list[..i].iter().any(|a| a.method.auth_type() == auth_type) {
                return Err(Some(auth_type));
            }
        }
        Ok(Authenticators(list))
    }

    /// The methods, in configuration order (what ListAuthenticators lists).
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        self.0.iter().map(Authenticator::method)
    }

    /// Authenticates one request with the authenticator of its auth type.
    ///
    /// Returns `Ok(None)` for auth type 0 (no identity, whatever bytes were sent).
    ///
    /// # Errors
    /// [`AuthError::NotRegistered`] when no authenticator of that auth type is configured;
    /// [`AuthError::Rejected`] when the credentials do not hold.
    pub fn authenticate(
        &self,
        auth_type: AuthType,
        auth: &[u8],
        peer: Option<&PeerCredentials>,
    ) -> Result<Option<Identity>, AuthError> {
        if auth_type == AuthType::NoAuth {
            return Ok(None);
        }
        self.0
            .iter()
            .find(|a| a.method.auth_type() == auth_type)
            .ok_or(AuthError::NotRegistered)?
            .authenticate(auth_type, auth, peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: PeerCredentials = PeerCredentials {
        uid: 1000,
        gid: 1000,
        pid: Some(42),
    };

    #[test]
    fn no_auth_gives_no_identity_even_with_bytes() {
        let a = Authenticator::new(Method::Direct, []);
        assert_eq!(a.authenticate(AuthType::NoAuth, b"junk", None), Ok(None));
    }

    #[test]
    fn direct_takes_the_name_verbatim() {
        let a = Authenticator::new(Method::Direct, ["root-app".to_owned()]);
        let id = a
            .authenticate(AuthType::Direct, b" app ", None)
            .unwrap()
            .unwrap();
        assert_eq!(id.name, " app ");
        assert!(!id.is_admin);
        let admin = a
            .authenticate(AuthType::Direct, b"root-app", None)
            .unwrap()
            .unwrap();
        assert!(admin.is_admin);
        assert!(matches!(
            a.authenticate(AuthType::Direct, b"", None),
            Err(AuthError::Rejected(_))
        ));
        assert!(matches!(
            a.authenticate(AuthType::Direct, &[0xff, 0xfe], None),
            Err(AuthError::Rejected(_))
        ));
    }

    #[test]
    fn other_auth_types_are_not_registered() {
        let a = Authenticator::new(Method::Direct, []);
        for t in [
            AuthType::Jwt,
            AuthType::UnixPeerCredentials,
            AuthType::JwtSvid,
        ] {
            assert_eq!(
                a.authenticate(t, b"x", Some(&PEER)),
                Err(AuthError::NotRegistered)
            );
        }
    }

    #[test]
    fn peer_credentials_must_match_the_socket() {
        let a = Authenticator::new(Method::UnixPeerCredentials, ["1000".to_owned()]);
        let id = a
            .authenticate(
                AuthType::UnixPeerCredentials,
                &1000u32.to_le_bytes(),
                Some(&PEER),
            )
            .unwrap()
            .unwrap();
        assert_eq!((id.name.as_str(), id.is_admin), ("1000", true));
        for bad in [
            &1001u32.to_le_bytes()[..],
            &[0xe8, 0x03, 0, 0, 0][..],
            &[][..],
        ] {
            assert!(matches!(
                a.authenticate(AuthType::UnixPeerCredentials, bad, Some(&PEER)),
                Err(AuthError::Rejected(_))
            ));
        }
        assert!(matches!(
            a.authenticate(AuthType::UnixPeerCredentials, &1000u32.to_le_bytes(), None),
            Err(AuthError::Rejected(_))
        ));
    }

    #[test]
    fn each_request_goes_to_the_authenticator_of_its_type_with_its_own_admins() {
        let both = Authenticators::new(vec![
            Authenticator::new(Method::UnixPeerCredentials, ["1000".to_owned()]),
            Authenticator::new(Method::Direct, ["alice".to_owned()]),
        ])
        .unwrap();
        assert_eq!(
            both.methods().collect::<Vec<_>>(),
            [Method::UnixPeerCredentials, Method::Direct]
        );
        let unix = both
            .authenticate(
                AuthType::UnixPeerCredentials,
                &1000u32.to_le_bytes(),
                Some(&PEER),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            (unix.name.as_str(), unix.auth_type, unix.is_admin),
            ("1000", AuthType::UnixPeerCredentials, true)
        );
        // The same name through the other authenticator is another identity, and the
        // administrators of one are not administrators under the other.
        let direct = both
            .authenticate(AuthType::Direct, b"1000", Some(&PEER))
            .unwrap()
            .unwrap();
        assert_eq!(
            (direct.name.as_str(), direct.auth_type, direct.is_admin),
            ("1000", AuthType::Direct, false)
        );
        assert_ne!(unix, direct);
        assert!(
            both.authenticate(AuthType::Direct, b"alice", None)
                .unwrap()
                .unwrap()
                .is_admin
        );
        assert_eq!(
            both.authenticate(AuthType::JwtSvid, b"x", Some(&PEER)),
            Err(AuthError::NotRegistered)
        );
        assert_eq!(both.authenticate(AuthType::NoAuth, b"x", None), Ok(None));
    }

    #[test]
    fn two_authenticators_of_one_type_or_none_are_refused() {
        assert_eq!(
            Authenticators::new(vec![
                Authenticator::new(Method::Direct, []),
                Authenticator::new(Method::UnixPeerCredentials, []),
                Authenticator::new(Method::Direct, []),
            ])
            .unwrap_err(),
            Some(AuthType::Direct)
        );
        assert_eq!(Authenticators::new(vec![]).unwrap_err(), None);
    }
}

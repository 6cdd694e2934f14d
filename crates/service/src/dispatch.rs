//! The registry: `(provider, opcode)` to a type-erased handler, built once at start-up.
//!
//! Registration is generic over the operation, so the erased wrapper that decodes the body,
//! enforces the operation's identity rule, calls the provider and encodes the result is written
//! once for all operations. A provider can only register an operation it implements
//! (`P: Handles<O>` is checked at compile time), and the wrapper resolves the operation's key
//! (its name, the caller's scope, the policy check) before the provider is called, so every
//! provider gets the same checks in the same order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::{self, Access, Opcode, Operation};
use bulwark_interface::BodyError;
use zeroize::Zeroizing;

use crate::error::{DispatchError, ServiceError};
use crate::providers::{self, Handles, RequestContext, Resolve};

type Handler = Box<
    dyn Fn(&RequestContext<'_>, &[u8]) -> Result<Zeroizing<Vec<u8>>, ServiceError> + Send + Sync,
>;

/// Every registered `(provider, opcode)` pair and its handler.
#[derive(Default)]
pub struct Registry {
    handlers: HashMap<(ProviderId, Opcode), Handler>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("operations", &self.handlers.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// A registrar that adds operations for `provider`.
    pub fn registrar(&mut self, provider: ProviderId) -> Registrar<'_> {
        Registrar {
            registry: self,
            provider,
        }
    }

    /// The opcodes registered for `provider`.
    pub fn opcodes(&self, provider: ProviderId) -> BTreeSet<Opcode> {
        self.handlers
            .keys()
            .filter(|(p, _)| *p == provider)
            .map(|(_, o)| *o)
            .collect()
    }

    /// Runs steps E1–F2 of docs/protocol.md#request-pipeline for one request.
    ///
    /// An operation the provider does not register still has its body decoded and its
    /// identity rule checked first, so malformed bodies are reported as such everywhere.
    ///
    /// # Errors
    /// Decode errors, `NotAuthenticated`, `NotSupported`, or the provider's error.
    pub fn dispatch(
        &self,
        provider: ProviderId,
        opcode: Opcode,
        ctx: &RequestContext<'_>,
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        if let Some(handler) = self.handlers.get(&(provider, opcode)) {
            return handler(ctx, body);
        }
        decode_only(opcode, body)?;
        check_identity(opcode, ctx)?;
        Err(DispatchError::NotSupported.into())
    }
}

/// Adds operations for one provider.
#[derive(Debug)]
pub struct Registrar<'r> {
    registry: &'r mut Registry,
    provider: ProviderId,
}

impl Registrar<'_> {
    /// Registers operation `O`, served by `provider`.
    ///
    /// The handler made here resolves the operation's key for the caller and runs its policy
    /// check before the provider is called ([`providers::serve`](crate::providers)).
    pub fn add<O, P>(&mut self, provider: &Arc<P>) -> &mut Self
    where
        O: Operation,
        O::Key: Resolve,
        P: Handles<O>,
    {
        let provider = Arc::clone(provider);
        let provider_id = self.provider;
        let handler: Handler = Box::new(move |ctx, body| {
            let request = ops::decode_request::<O>(body)?;
            check_identity(O::OPCODE, ctx)?;
            let response = providers::serve::<O, P>(&*provider, provider_id, ctx, request)?;
            Ok(ops::encode_response::<O>(response)?)
        });
        self.registry
            .handlers
            .insert((self.provider, O::OPCODE), handler);
        self
    }
}

/// Step E3: operations that need an identity refuse requests without one.
fn check_identity(opcode: Opcode, ctx: &RequestContext<'_>) -> Result<(), DispatchError> {
    match (opcode.access(), ctx.identity()) {
        (Access::Open, _) => Ok(()),
        (Access::Identity | Access::Admin, Some(_)) => Ok(()),
        (Access::Identity | Access::Admin, None) => Err(DispatchError::NotAuthenticated),
    }
}

/// Decodes a body for an operation no provider serves here, only to report decode errors.
fn decode_only(opcode: Opcode, body: &[u8]) -> Result<(), BodyError> {
    macro_rules! try_decode {
        ($op:ty) => {
            if opcode == <$op as Operation>::OPCODE {
                return ops::decode_request::<$op>(body).map(drop);
            }
        };
    }
    bulwark_interface::for_each_operation!(try_decode);
    Ok(())
}

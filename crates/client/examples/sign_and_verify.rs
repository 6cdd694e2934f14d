//! Creates an ECC key, signs a message with it, verifies the signature, prints it, and deletes
//! the key.
//!
//! ```text
//! PARSEC_SERVICE_ENDPOINT=unix:/run/parsec/parsec.sock cargo run --example sign_and_verify
//! ```

use bulwark_client::{attributes, Client, EccFamily};

fn main() -> Result<(), bulwark_client::Error> {
    // Finds the service, its provider and its authenticator; "sign-and-verify-example" is our
    // name if the service authenticates applications by name.
    let client = Client::new("sign-and-verify-example")?;
    let key = "sign-and-verify-example-key";

    client.generate_key(key, attributes::ecc_signing_key(EccFamily::SecpR1, 256))?;
    let result = sign_and_verify(&client, key);
    // Delete the key whatever happened, then report.
    let destroyed = client.destroy_key(key);
    result?;
    destroyed?;
    println!("key {key} deleted");
    Ok(())
}

fn sign_and_verify(client: &Client, key: &str) -> Result<(), bulwark_client::Error> {
    let message = b"The quick brown fox jumps over the lazy dog";
    // The algorithm (ECDSA with SHA-256) comes from the key's policy.
    let signature = client.sign_message(key, message)?;
    client.verify_message(key, message, &signature)?;
    let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    println!("signature ({} bytes): {hex}", signature.len());
    println!("verified with key {key}");
    Ok(())
}

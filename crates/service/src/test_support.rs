//! Set-ups shared by unit tests, the benchmarks, the fuzz targets and their replay tests.
//! Hidden from the documentation: not part of the service's API, and free to change with its
//! users.

use std::path::Path;

use anyhow::Context;

use crate::builder::{build, Resources};
use crate::config::Config;
use crate::service::Service;

/// The configuration of a service with `allow_root`, the Direct authenticator, one provider of
/// type `provider_type` (`"MbedCrypto"`, `"OpenSsl"`, ...) and a SQLite key store at
/// `dir/kim/keys.sqlite3`. Its socket, `dir/unused.sock`, is for a listener none of the users
/// starts.
///
/// # Errors
/// `provider_type` is no provider type.
pub fn config_in(dir: &Path, provider_type: &str) -> anyhow::Result<Config> {
    let text = format!(
        r#"
[core_settings]
allow_root = true

[listener]
listener_type = "DomainSocket"
timeout = 200
socket_path = "{dir}/unused.sock"

[authenticator]
auth_type = "Direct"

[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "{dir}/kim/keys.sqlite3"

[[provider]]
provider_type = "{provider_type}"
key_info_manager = "sqlite-manager"
"#,
        dir = dir.display()
    );
    Config::parse(&text).context("in-process service configuration")
}

/// An in-process service, built as bulwarkd would build it from [`config_in`]`(dir,
/// "MbedCrypto")`. Nothing listens: callers drive it through [`Service::handle_bytes`].
///
/// Changes the working directory of the whole process to `dir` first, since Mbed TLS keeps
/// its key files in the working directory. `dir` must outlive the service.
///
/// # Errors
/// The working directory cannot be changed, or the service cannot be built (an unwritable
/// `dir`, for instance).
pub fn mbed_service_in(dir: &Path) -> anyhow::Result<Service> {
    std::env::set_current_dir(dir).context("chdir to the service's directory")?;
    let config = config_in(dir, "MbedCrypto")?;
    build(&config, &mut Resources::new()).context("in-process service")
}

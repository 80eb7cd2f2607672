//! Protocol front ends. Each one only translates its protocol into calls on the
//! shared ingest session; none holds business rules of its own.

pub mod admin;
pub mod https;
pub mod proxy;
pub mod sftp;

use std::sync::Arc;

use crate::backends::catalog::Catalog;
use crate::backends::objects::ObjectStore;
use crate::config::Config;
use crate::keys::GatewayKeys;
use crate::session::IngestCore;
use crate::tenants::Registry;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub catalog: Catalog,
    pub tenants: Registry,
    pub keys: Arc<GatewayKeys>,
    pub objects: Arc<dyn ObjectStore>,
    pub ingest: Arc<IngestCore>,
}

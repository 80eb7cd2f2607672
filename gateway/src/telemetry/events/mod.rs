//! Typed internal events. Each `emit()` logs one structured line and updates the
//! matching metric; call sites never touch `tracing` or `prometheus` for these.

mod access;
mod jobs;
mod uploads;

pub use access::*;
pub use jobs::*;
pub use uploads::*;

use std::net::SocketAddr;

use super::metrics::METRICS;

pub trait InternalEvent {
    fn emit(self);
}

pub struct ListenerStarted<'a> {
    pub name: &'a str,
    pub addr: SocketAddr,
}

impl InternalEvent for ListenerStarted<'_> {
    fn emit(self) {
        tracing::info!(listener = self.name, addr = %self.addr, "listening");
    }
}

pub struct TenantsLoaded<'a> {
    pub path: &'a std::path::Path,
    pub tenants: usize,
    pub principals: usize,
    pub reload: bool,
}

impl InternalEvent for TenantsLoaded<'_> {
    fn emit(self) {
        METRICS.tenants_loaded.set(self.tenants as i64);
        if self.reload {
            METRICS.tenants_reloads.with_label_values(&["ok"]).inc();
        }
        tracing::info!(
            path = %self.path.display(),
            tenants = self.tenants,
            principals = self.principals,
            reload = self.reload,
            "tenants loaded"
        );
    }
}

pub struct TenantsReloadFailed<'a> {
    pub error: &'a dyn std::error::Error,
    pub code: &'static str,
}

impl InternalEvent for TenantsReloadFailed<'_> {
    fn emit(self) {
        METRICS.tenants_reloads.with_label_values(&["error"]).inc();
        tracing::error!(code = self.code, error = %self.error, "tenants reload failed; keeping the previous tenants");
    }
}

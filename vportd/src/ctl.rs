//! The control socket (placeholder: grows into the full `vportctl`
//! command set).

use crate::daemon::Switch;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;

/// The running control server.
pub struct CtlHandle;

impl CtlHandle {
    /// Stops serving and removes the socket.
    pub fn stop(self) {}
}

/// Starts the control socket server.
pub fn start(_switch: &Arc<Switch>, _path: Option<PathBuf>, _metrics: Option<String>) -> Result<CtlHandle> {
    Ok(CtlHandle)
}

//! OpenFlow layer.

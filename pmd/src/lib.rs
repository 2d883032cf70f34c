//! PMD layer.
